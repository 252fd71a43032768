// Package app is everything GitHub: webhook intake, the handlers that turn
// a queued command into answers on the PR, and the installation clients.
package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/commands"
	"github.com/packit/packit-launch/store"
)

// MaxWebhookBytes is GitHub's own cap on a delivery.
const MaxWebhookBytes = 25 << 20

// JobCommand is the queue kind of a comment that holds a command.
const JobCommand = "command"

// deliveries remembers which deliveries were already accepted.
type deliveries interface {
	// ClaimDelivery claims a delivery id (first: nobody had) and tells a
	// delivery the bot asked GitHub to redeliver, in one round trip.
	ClaimDelivery(ctx context.Context, id string) (first bool, r store.Redelivery, redeliveryErr, err error)
	ConfirmDelivery(ctx context.Context, id string) error
	ForgetDelivery(ctx context.Context, id string) error
}

// enqueuer hands work to the worker.
type enqueuer interface {
	Enqueue(ctx context.Context, j store.Job) error
}

// Intake receives GitHub webhooks. It verifies, filters cheaply, and queues
// only deliveries that can be commands; it never calls GitHub.
type Intake struct {
	secrets    [][]byte
	deliveries deliveries
	queue      enqueuer
	log        *slog.Logger
	now        func() time.Time

	macs sync.Pool // of *secretMACs keyed with the secrets (a pointer: a slice put in a Pool would allocate)
	// confirm, when set, asks Redis replicas to confirm a queued job
	// before the 202 (see ConfirmWith).
	confirm func(ctx context.Context) error
	budget  *bodyBudget
}

// NewIntake returns the webhook handler. secret must not be empty; while
// the secret is being changed, previous holds the old one and a delivery
// signed with either is taken. Each is used whole: any byte may be part of
// a secret.
func NewIntake(secret, previous string, d deliveries, q enqueuer, log *slog.Logger) *Intake {
	in := &Intake{deliveries: d, queue: q, log: log, now: time.Now, budget: newBodyBudget(largePoolBytes)}
	if secret == "" {
		panic("app: NewIntake without a webhook secret")
	}
	in.secrets = append(in.secrets, []byte(secret))
	if previous != "" && previous != secret {
		in.secrets = append(in.secrets, []byte(previous))
	}
	in.macs.New = func() any {
		m := make(secretMACs, len(in.secrets))
		for i, s := range in.secrets {
			m[i] = hmac.New(sha256.New, s)
		}
		return &m
	}
	return in
}

// ConfirmWith makes the intake ask fn (store.Store.Confirm) to have
// replicas confirm each queued job before answering 202.
func (in *Intake) ConfirmWith(fn func(ctx context.Context) error) *Intake {
	in.confirm = fn
	return in
}

// secretMACs are a body's HMACs, one per secret.
type secretMACs []hash.Hash

func (m secretMACs) Reset() {
	for _, h := range m {
		h.Reset()
	}
}

func (m secretMACs) Write(p []byte) {
	for _, h := range m {
		h.Write(p)
	}
}

// match reports whether any secret's HMAC is want.
func (m secretMACs) match(want []byte) bool {
	var got [sha256.Size]byte
	ok := false
	for _, h := range m {
		ok = hmac.Equal(h.Sum(got[:0]), want) || ok // every one, in constant time
	}
	return ok
}

// wantedEvents are the events whose bodies the bot may decode; the rest
// are verified and answered without keeping a byte.
var wantedEvents = map[string]bool{
	"issue_comment": true, "check_run": true, "pull_request": true,
	"installation": true, "installation_repositories": true,
}

// readTime bounds reading a body of size bytes (-1: unknown). GitHub sends
// a delivery whole at once, and waits 10 s for the whole answer; a slow
// sender gets no more than a real one needs, so it cannot hold a connection.
func readTime(size int64) time.Duration {
	if size < 0 {
		return 3 * time.Second // GitHub always announces the length
	}
	return min(2*time.Second+time.Duration(size)*time.Second/(2<<20), 10*time.Second)
}

func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	want, ok := parseSignature(r.Header.Get("X-Hub-Signature-256"))
	if !ok {
		http.Error(w, "missing or malformed X-Hub-Signature-256", http.StatusUnauthorized)
		return
	}
	if r.ContentLength > MaxWebhookBytes {
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	// A slow body must not hold its memory for the server's whole ReadTimeout.
	deadline := time.Now().Add(readTime(r.ContentLength)) // wall time, not the injected clock
	rc := http.NewResponseController(w)
	setDeadline := func(t time.Time) { _ = rc.SetReadDeadline(t) } // not supported by test recorders
	event := r.Header.Get("X-GitHub-Event")
	body, err := in.readSigned(r.Context(), deadline, r.Body, want, wantedEvents[event], r.ContentLength, setDeadline)
	defer body.release()
	if errors.Is(err, errTooLarge) {
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		http.Error(w, "body not received in time", http.StatusRequestTimeout)
		return
	}
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if !body.valid {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	switch body.outcome {
	case bodyNotWanted:
		if event == "ping" {
			writeText(w, http.StatusOK, "pong")
			return
		}
		// The common case: nothing to do, and nothing logged.
		w.WriteHeader(http.StatusNoContent)
		return
	case bodyTooLarge:
		in.log.Error("signed delivery too large to decode; not accepted", "delivery", r.Header.Get("X-GitHub-Delivery"), "event", event, "max_bytes", MaxKeptBytes)
		http.Error(w, "payload too large to process", http.StatusRequestEntityTooLarge)
		return
	case bodyNoBudget:
		// Only while many large bodies are in flight at once (a flood):
		// GitHub's delivery log keeps it for redelivery.
		in.log.Error("signed delivery not kept: the webhook memory budget is in use (many large requests in flight); redeliver it from the App's advanced settings",
			"delivery", r.Header.Get("X-GitHub-Delivery"), "event", event)
		http.Error(w, "busy; redeliver later", http.StatusServiceUnavailable)
		return
	case bodyTooSlow:
		// GitHub sends a delivery whole within milliseconds; keepFor is far above that.
		in.log.Error("signed delivery not kept: its body arrived too slowly; redeliver it from the App's advanced settings",
			"delivery", r.Header.Get("X-GitHub-Delivery"), "event", event, "keep_for", keepFor)
		http.Error(w, "body arrived too slowly; redeliver later", http.StatusServiceUnavailable)
		return
	}
	in.route(w, r, event, body.bytes)
}

// route hands a verified body to the intake of its event, after the cheap
// filter: only deliveries that can be work are decoded.
func (in *Intake) route(w http.ResponseWriter, r *http.Request, event string, body []byte) {
	switch {
	case event == "issue_comment" && commands.MayContain(body):
		in.acceptComment(w, r, body)
	case event == "check_run" && bytes.Contains(body, []byte(`"requested_action"`)):
		in.acceptButton(w, r, body)
	case event == "pull_request" && prActionRE.Match(body):
		in.acceptPullRequest(w, r, body)
	case event == "installation" && bytes.Contains(body, []byte(`"deleted"`)),
		event == "installation_repositories" && bytes.Contains(body, []byte(`"removed"`)):
		in.acceptInstallation(w, r, event, body)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// CommandJob is a comment holding a command, as queued for the worker.
type CommandJob struct {
	Delivery       string    `json:"delivery"`
	InstallationID int64     `json:"installation_id"`
	Repo           string    `json:"repo"` // owner/name
	Number         int       `json:"number"`
	OnPullRequest  bool      `json:"on_pull_request"`
	CommentID      int64     `json:"comment_id"`
	User           string    `json:"user"`
	Line           string    `json:"line"`
	CommentedAt    time.Time `json:"commented_at"`
	ReceivedAt     time.Time `json:"received_at"`
	// FailedDeliveryAt is when GitHub first failed to deliver the command,
	// when this is a redelivery the bot asked for (see Redeliverer).
	FailedDeliveryAt time.Time `json:"failed_delivery_at,omitzero"`
}

// Owner and Name split Repo.
func (j CommandJob) Owner() string { o, _, _ := strings.Cut(j.Repo, "/"); return o }
func (j CommandJob) Name() string  { _, n, _ := strings.Cut(j.Repo, "/"); return n }

// commentDelivery is what a command job needs of an issue_comment
// delivery. Decoding github.IssueCommentEvent (the repository, the issue and
// three users, ~12 KB) took most of intake's time per /launch.
type commentDelivery struct {
	Action string `json:"action"`
	Sender struct {
		Type string `json:"type"`
	} `json:"sender"`
	Comment struct {
		ID        int64     `json:"id"`
		Body      string    `json:"body"`
		CreatedAt time.Time `json:"created_at"`
		User      struct {
			Login string `json:"login"`
			Type  string `json:"type"`
		} `json:"user"`
	} `json:"comment"`
	Issue struct {
		Number      int              `json:"number"`
		PullRequest *json.RawMessage `json:"pull_request"` // present on a pull request's issue
	} `json:"issue"`
	Repo struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`
}

func (in *Intake) acceptComment(w http.ResponseWriter, r *http.Request, body []byte) {
	delivery := r.Header.Get("X-GitHub-Delivery")
	var ev commentDelivery
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "malformed JSON payload", http.StatusBadRequest)
		return
	}
	if ev.Action != "created" || ev.Sender.Type == "Bot" || ev.Comment.User.Type == "Bot" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	line, ok := commands.Find(ev.Comment.Body)
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if delivery == "" || ev.Repo.FullName == "" || ev.Comment.ID == 0 {
		http.Error(w, "payload lacks delivery id, repository or comment", http.StatusBadRequest)
		return
	}
	if ev.Installation.ID == 0 {
		// Not sent to an app installation: there is no one to answer as.
		in.log.Warn("command without an installation ignored", "delivery", delivery, "repo", ev.Repo.FullName)
		writeText(w, http.StatusOK, "ignored: no installation in payload")
		return
	}
	job := CommandJob{
		Delivery:       delivery,
		InstallationID: ev.Installation.ID,
		Repo:           ev.Repo.FullName,
		Number:         ev.Issue.Number,
		OnPullRequest:  ev.Issue.PullRequest != nil,
		CommentID:      ev.Comment.ID,
		User:           ev.Comment.User.Login,
		Line:           line,
		CommentedAt:    ev.Comment.CreatedAt,
		ReceivedAt:     in.now().UTC(),
	}
	log := in.log.With("delivery", delivery, "repo", job.Repo, "pr", job.Number, "user", job.User, "line", job.Line)
	in.enqueueWith(w, r, JobCommand, func(rec store.Redelivery) any {
		// The payload cannot tell a redelivery from the first delivery.
		job.FailedDeliveryAt = rec.FailedAt
		return job
	}, log)
}

func (in *Intake) acceptButton(w http.ResponseWriter, r *http.Request, body []byte) {
	var ev github.CheckRunEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "malformed JSON payload", http.StatusBadRequest)
		return
	}
	if ev.GetAction() != "requested_action" || ev.GetRequestedAction() == nil || ev.GetCheckRun().GetExternalID() == "" || ev.GetInstallation().GetID() == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	job := ButtonJob{Delivery: r.Header.Get("X-GitHub-Delivery"), InstallationID: ev.GetInstallation().GetID(), Repo: ev.GetRepo().GetFullName(), LaunchID: ev.GetCheckRun().GetExternalID(),
		Action: ev.GetRequestedAction().Identifier, Sender: ev.GetSender().GetLogin(), CheckRunID: ev.GetCheckRun().GetID()}
	if prs := ev.GetCheckRun().PullRequests; len(prs) > 0 {
		job.PR = prs[0].GetNumber()
	}
	in.enqueue(w, r, JobButton, job, in.log.With("repo", job.Repo, "launch", job.LaunchID, "action", job.Action, "user", job.Sender))
}

// prActionRE finds the pull_request actions the bot acts on, cheaply.
var prActionRE = regexp.MustCompile(`"(closed|opened|reopened|synchronize)"`)

// acceptPullRequest queues a closed PR's end of its VMs, and the config
// check of a PR opened or pushed to.
func (in *Intake) acceptPullRequest(w http.ResponseWriter, r *http.Request, body []byte) {
	var ev github.PullRequestEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "malformed JSON payload", http.StatusBadRequest)
		return
	}
	id, repo, number := ev.GetInstallation().GetID(), ev.GetRepo().GetFullName(), ev.GetNumber()
	log := in.log.With("repo", repo, "pr", number)
	switch action := ev.GetAction(); {
	case id == 0:
	case action == "closed":
		in.enqueue(w, r, JobPRClosed, PRClosedJob{InstallationID: id, Repo: repo, Number: number}, log)
		return
	case action == "opened" || action == "reopened" || action == "synchronize":
		in.enqueue(w, r, JobConfigCheck, ConfigCheckJob{InstallationID: id, Repo: repo, Number: number,
			HeadSHA: ev.GetPullRequest().GetHead().GetSHA(), BaseSHA: ev.GetPullRequest().GetBase().GetSHA()}, log)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (in *Intake) acceptInstallation(w http.ResponseWriter, r *http.Request, event string, body []byte) {
	var ev struct {
		Action       string `json:"action"`
		Installation struct {
			ID int64 `json:"id"`
		} `json:"installation"`
		RepositoriesRemoved []struct {
			FullName string `json:"full_name"`
		} `json:"repositories_removed"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "malformed JSON payload", http.StatusBadRequest)
		return
	}
	job := InstallationJob{InstallationID: ev.Installation.ID}
	kind := JobUninstalled
	switch {
	case event == "installation" && ev.Action == "deleted":
	case event == "installation_repositories" && ev.Action == "removed" && len(ev.RepositoriesRemoved) > 0:
		kind = JobReposRemoved
		for _, repo := range ev.RepositoriesRemoved {
			job.Repos = append(job.Repos, repo.FullName)
		}
	default:
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if job.InstallationID == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	in.enqueue(w, r, kind, job, in.log.With("installation", job.InstallationID))
}

// enqueue dedupes a delivery and queues its job; the answer says whether
// GitHub may consider it delivered.
func (in *Intake) enqueue(w http.ResponseWriter, r *http.Request, kind string, job any, log *slog.Logger) {
	in.enqueueWith(w, r, kind, func(store.Redelivery) any { return job }, log)
}

// enqueueWith queues the job made, once the delivery is claimed, from what
// the bot knows of its redelivery.
func (in *Intake) enqueueWith(w http.ResponseWriter, r *http.Request, kind string, job func(store.Redelivery) any, log *slog.Logger) {
	delivery := r.Header.Get("X-GitHub-Delivery")
	if delivery == "" {
		http.Error(w, "missing X-GitHub-Delivery", http.StatusBadRequest)
		return
	}
	log = log.With("delivery", delivery)
	status, msg := in.queueOnce(r.Context(), kind, delivery, job, log)
	writeText(w, status, msg)
}

func (in *Intake) queueOnce(ctx context.Context, kind, delivery string, job func(store.Redelivery) any, log *slog.Logger) (int, string) {
	first, rec, recErr, err := in.deliveries.ClaimDelivery(ctx, delivery)
	if err != nil {
		log.Error("dedupe failed; delivery not accepted", "err", err)
		return http.StatusServiceUnavailable, "state store unavailable; redeliver later"
	}
	if !first {
		log.Info("duplicate delivery ignored")
		return http.StatusOK, "duplicate delivery"
	}
	if recErr != nil {
		log.Warn("cannot tell whether the delivery was redelivered; a command is judged by its age alone", "err", recErr)
	}
	payload, err := json.Marshal(job(rec))
	if err != nil {
		log.Error("encode job", "err", err)
		return http.StatusInternalServerError, "cannot encode job"
	}
	queued := store.Job{Kind: kind, ID: "delivery:" + delivery, Payload: payload, Queue: store.QueueLifecycle, MaxRetry: eventRetries}
	if kind == JobCommand || kind == JobConfigCheck {
		// A command is answered within seconds or not at all (its last
		// attempt says so); the config check is the worker's too.
		queued.Queue, queued.MaxRetry = store.QueueCommands, 3
	}
	err = in.queue.Enqueue(ctx, queued)
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		// Forget it so a redelivery is taken as new, not as a duplicate.
		if ferr := in.deliveries.ForgetDelivery(context.WithoutCancel(ctx), delivery); ferr != nil {
			log.Error("forget delivery", "err", ferr)
		}
		log.Error("enqueue failed; delivery not accepted", "err", err)
		return http.StatusServiceUnavailable, "queue unavailable; redeliver later"
	}
	if err := in.deliveries.ConfirmDelivery(ctx, delivery); err != nil {
		log.Warn("confirm delivery; a redelivery after a few minutes would be queued again (the job id still dedupes it)", "err", err)
	}
	// GitHub does not resend a delivery it saw accepted: the job and its
	// delivery id reach a replica first, where one is asked for.
	if in.confirm != nil {
		if err := in.confirm(ctx); err != nil {
			log.Warn("Redis replicas did not confirm the queued job; answering 503 so that the delivery is redelivered (the job runs once)", "err", err)
			return http.StatusServiceUnavailable, "state store replicas did not confirm; redeliver later"
		}
	}
	log.Info("queued", "job", kind)
	return http.StatusAccepted, "queued"
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}
