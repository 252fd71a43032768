package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/commands"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/store"
)

// MaxCommandAge is how old a command may be when the worker gets to it;
// older ones (redelivered days later, or stuck behind a backlog) are
// answered instead of run.
const MaxCommandAge = 30 * time.Minute

// maxHeldAge bounds how long after it was received a command waiting on
// GitHub (its rate limit, its errors) is still run.
const maxHeldAge = 2 * time.Hour

// untrustedNoticeTTL: an untrusted PR hears the explanation once, not per command.
const untrustedNoticeTTL = 90 * 24 * time.Hour

// clientSource gives a GitHub client for an installation.
type clientSource interface {
	Client(ctx context.Context, installationID int64) (*github.Client, error)
}

// notices remembers one-time answers, and counts each person's commands.
type notices interface {
	FirstNotice(ctx context.Context, key string, ttl time.Duration) (bool, error)
	ForgetNotice(ctx context.Context, key string) error
	CountCommand(ctx context.Context, key, delivery string, keep int, ttl time.Duration) (int, error)
}

// Launcher launches what the decision allowed, and manages what it launched.
type Launcher interface {
	Launch(ctx context.Context, req LaunchRequest) error
	// Manage runs /launch status, extend and stop.
	Manage(ctx context.Context, t *Thread, job CommandJob, cmd commands.Command) error
}

// LaunchRequest is an accepted /launch: who, where, and the checked spec.
type LaunchRequest struct {
	Job  CommandJob
	Spec config.LaunchSpec
	// Packit is the build whose image the launch uses, or, with
	// WaitForPackit, the build of the PR's head it waits for.
	Packit        *packitBuild
	WaitForPackit bool
	// HeadSHA and BaseRef are the PR's at decision time.
	HeadSHA string
	BaseRef string
	Thread  *Thread
}

// Worker turns queued commands into decisions and answers on the PR.
type Worker struct {
	cfg      *config.Server
	clients  clientSource
	notices  notices
	launcher Launcher
	now      func() time.Time
	log      *slog.Logger
}

// NewWorker wires a worker; launcher may be nil while launching is not set up.
func NewWorker(cfg *config.Server, clients clientSource, n notices, launcher Launcher, log *slog.Logger) *Worker {
	return &Worker{cfg: cfg, clients: clients, notices: n, launcher: launcher, now: time.Now, log: log}
}

// Register adds the worker's handlers to a queue worker.
func (w *Worker) Register(qw *store.Worker) {
	qw.Handle(JobCommand, w.HandleCommand)
	qw.Handle(JobConfigCheck, holdingRateLimits(w.HandleConfigCheck, w.now, w.log))
}

// HandleCommand runs one queued command. A returned error retries the job.
func (w *Worker) HandleCommand(ctx context.Context, payload []byte) error {
	var job CommandJob
	if err := json.Unmarshal(payload, &job); err != nil {
		return store.SkipRetry(fmt.Errorf("decode command job: %w", err))
	}
	log := w.log.With("delivery", job.Delivery, "repo", job.Repo, "pr", job.Number, "user", job.User)
	overBudget := w.budget(ctx, job, log)
	if overBudget == budgetSilent {
		commandsTotal.WithLabelValues(commandName(job.Line), "over_budget").Inc()
		log.Debug("command not answered: its author is over the commands budget")
		return nil
	}
	gh, err := w.clients.Client(ctx, job.InstallationID)
	if err != nil {
		return store.SkipRetry(fmt.Errorf("github client for installation %d: %w", job.InstallationID, err))
	}
	t := newThread(gh, job.Repo, job.Number, job.CommentID, job.User, job.Line, log)
	var outcome error
	if overBudget == budgetTell {
		log.Warn("commands budget spent: this person's commands of this minute go unanswered", "per_minute", w.cfg.Limits.CommandsPerMinute)
		start := w.budgetTime(job).UTC().Truncate(budgetWindow)
		outcome = refuse("You sent more than %d commands within the minute from %s UTC, so I am not answering the rest of that minute's. Comment again after %s UTC.",
			w.cfg.Limits.CommandsPerMinute, start.Format("15:04"), start.Add(budgetWindow).Format("15:04"))
	} else {
		outcome = w.handle(ctx, t, job, log)
	}
	err = w.answer(ctx, t, job, outcome, log)
	if err == nil {
		return nil
	}
	if until, ok := waitOnGitHub(err, job.ReceivedAt, w.now()); ok {
		log.Warn("GitHub is failing or rate limiting: command held", "until", until, "err", err)
		if _, limited := rateLimitWait(err, w.now()); limited {
			rateLimitedTotal.WithLabelValues("held").Inc()
		}
		return store.HoldUntil(until, err)
	}
	if gone(err) {
		return store.SkipRetry(err) // answered already, as well as GitHub lets it be
	}
	return err
}

// The commands budget's verdicts on one command.
const (
	budgetOK     = iota // answered as usual
	budgetTell          // the first over the budget: told so
	budgetSilent        // further ones in the same minute: not answered
)

// budgetWindow is the commands budget's window. A window's count is kept
// as long as a job may be held for GitHub (maxHeldAge), so that a held
// command comes back to the place it had.
const budgetWindow = time.Minute

// budget counts a command against its author's budget for the minute it
// was written in (GitHub's time, from the signed delivery): a retried,
// held or redelivered job lands in the same window and keeps its place
// there (CountCommand numbers a delivery once). When Redis cannot count, the
// command is answered: the budget must not silence anyone.
func (w *Worker) budget(ctx context.Context, job CommandJob, log *slog.Logger) int {
	perMinute := w.cfg.Limits.CommandsPerMinute
	window := w.budgetTime(job).Unix() / int64(budgetWindow/time.Second)
	key := fmt.Sprintf("%s:%d", strings.ToLower(job.User), window)
	n, err := w.notices.CountCommand(ctx, key, job.Delivery, perMinute+1, maxHeldAge+budgetWindow)
	switch {
	case err != nil:
		log.Warn("commands budget not counted: answering the command anyway", "err", err)
		return budgetOK
	case n <= perMinute:
		return budgetOK
	case n == perMinute+1:
		if _, trusted := w.cfg.ProjectFor(job.Repo); !trusted {
			return budgetSilent // an untrusted project hears one explanation per PR, and nothing more
		}
		return budgetTell
	}
	return budgetSilent
}

// budgetTime is the time a command counts at: when it was written, or,
// for a delivery without it, when the bot received it.
func (w *Worker) budgetTime(job CommandJob) time.Time {
	if job.CommentedAt.IsZero() {
		return w.received(job)
	}
	return job.CommentedAt
}

// received is when the bot received a job's command (now, for a job queued
// before intake recorded it).
func (w *Worker) received(job CommandJob) time.Time {
	if job.ReceivedAt.IsZero() {
		return w.now()
	}
	return job.ReceivedAt
}

// gone reports GitHub saying the pull request, its repository or the
// comment is not there (any more): no retry can change that.
func gone(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && (er.Response.StatusCode == http.StatusNotFound || er.Response.StatusCode == http.StatusGone)
}

// answer turns a command's outcome into its answer: a refusal is told, and
// a failure on the last attempt gets an apology rather than silence.
func (w *Worker) answer(ctx context.Context, t *Thread, job CommandJob, err error, log *slog.Logger) error {
	var refusal *config.Refusal
	if errors.As(err, &refusal) {
		log.Info("command refused", "line", job.Line, "reason", refusal.Reason)
		if err := t.Refuse(ctx, refusal.Reason); err != nil {
			return err
		}
		commandsTotal.WithLabelValues(commandName(job.Line), "refused").Inc()
		return nil
	}
	if err == nil {
		commandsTotal.WithLabelValues(commandName(job.Line), "answered").Inc()
		return nil
	}
	if gone(err) {
		log.Warn("command dropped: GitHub says what it is about is gone", "line", job.Line, "err", err)
		if rerr := t.Refuse(ctx, "GitHub says this pull request (or something it needs, such as its repository or branch) no longer exists, so I stopped here."); rerr != nil {
			log.Warn("could not tell the PR either", "err", rerr)
		}
		commandsTotal.WithLabelValues(commandName(job.Line), "gone").Inc()
		return err
	}
	log.Error("command failed", "line", job.Line, "err", err)
	if _, held := waitOnGitHub(err, job.ReceivedAt, w.now()); held || !store.FinalAttempt(ctx) || ctx.Err() != nil {
		return err
	}
	// Every command gets an answer, even when GitHub kept failing.
	if rerr := t.Refuse(ctx, "Something went wrong while handling this command (GitHub, AWS or the bot's storage kept failing). Please comment it again in a few minutes."); rerr != nil {
		log.Error("could not tell the PR either", "err", rerr)
		commandsTotal.WithLabelValues(commandName(job.Line), "unanswered").Inc()
		return err
	}
	commandsTotal.WithLabelValues(commandName(job.Line), "failed").Inc()
	return err
}

func (w *Worker) handle(ctx context.Context, t *Thread, job CommandJob, log *slog.Logger) error {
	if err := t.React(ctx, "eyes"); err != nil {
		return err
	}
	if !job.OnPullRequest {
		return refuse("`/launch` works on pull requests only: comment it on the pull request whose changes you want to try.")
	}
	// Untrusted projects hear one explanation per PR, whatever they comment.
	project, ok := w.cfg.ProjectFor(job.Repo)
	if !ok {
		return w.untrusted(ctx, t, job)
	}
	if err := w.stale(job); err != nil {
		return err
	}
	cmd, err := commands.Parse(job.Line)
	var usage *commands.UsageError
	if errors.As(err, &usage) {
		return &config.Refusal{Reason: usage.Markdown()}
	}
	if err != nil {
		return store.SkipRetry(err)
	}
	if cmd.Kind == commands.KindHelp {
		return t.Comment(ctx, commands.Help())
	}
	if cmd.Kind == commands.KindLaunch && w.cfg.Paused {
		return &config.Refusal{Reason: w.cfg.PausedMessage}
	}
	if cmd.Kind != commands.KindLaunch {
		if w.launcher == nil {
			return refuse("%s is not available: this packit-launch instance is not set up to launch VMs. Please tell its operators.", mdsafe.Code("/launch "+string(cmd.Kind)))
		}
		return w.launcher.Manage(ctx, t, job, cmd)
	}
	return w.launch(ctx, t, job, project, cmd, log)
}

// stale refuses a command too old to act on. Its age is measured to when
// the bot received it: time spent waiting for GitHub's rate limit to reset
// does not make a command stale, up to maxHeldAge.
func (w *Worker) stale(job CommandJob) error {
	received := w.received(job)
	if held := w.now().Sub(received); held > maxHeldAge {
		return refuse("This command reached me at %s UTC, but GitHub kept failing or limiting me until now, so I did not act on it. Comment it again if you still want it.",
			received.UTC().Format("2006-01-02 15:04"))
	}
	age := received.Sub(job.CommentedAt)
	if !job.FailedDeliveryAt.IsZero() {
		// A redelivery the bot asked for: its age also counts from GitHub's
		// first try, and the answer says why it came late.
		if age = max(age, received.Sub(job.FailedDeliveryAt)); age > MaxCommandAge {
			return refuse("This command reached me late: GitHub failed to deliver it at %s UTC, and it was delivered again at my request. Comment it again if you still want it.",
				job.FailedDeliveryAt.UTC().Format("2006-01-02 15:04"))
		}
	}
	if age > MaxCommandAge {
		return refuse("This command was written at %s UTC, more than %d minutes ago (it reached me late or was delivered again), so I did not act on it. Comment it again if you still want it.",
			job.CommentedAt.UTC().Format("2006-01-02 15:04"), int(MaxCommandAge.Minutes()))
	}
	return nil
}

// launch decides a /launch (permission, open PR, the base branch's
// machines, Packit's build) and hands it to the launcher.
func (w *Worker) launch(ctx context.Context, t *Thread, job CommandJob, project *config.Project, cmd commands.Command, log *slog.Logger) error {
	if err := authorize(ctx, t.gh, w.cfg, job.Repo, job.User, config.ActionLaunch, ""); err != nil {
		return err
	}
	pr, _, err := t.gh.PullRequests.Get(ctx, job.Owner(), job.Name(), job.Number)
	if err != nil {
		return fmt.Errorf("get pull request: %w", err)
	}
	if pr.GetState() != "open" {
		return refuse("This pull request is %s; `/launch` works on open pull requests.", pr.GetState())
	}
	// Machines come from the base branch (bounded by the operator's
	// profiles); who may launch came from the default branch above.
	base, ref := pr.GetBase().GetRef(), pr.GetBase().GetRef()
	if ref == pr.GetBase().GetRepo().GetDefaultBranch() {
		ref = "" // the very request authorize made: asked again, GitHub answers 304, which costs no rate limit
	}
	repoCfg, err := readRepoConfig(ctx, t.gh, w.cfg, project, job.Repo, base, ref)
	if err != nil {
		return err
	}
	spec, err := w.cfg.Resolve(project, repoCfg, cmd)
	if err != nil {
		return err
	}
	var build *packitBuild
	waiting := false
	if spec.PackitTarget != "" {
		if build, waiting, err = w.resolvePackit(ctx, t.gh, job.Repo, job.Number, pr.GetHead().GetSHA(), &spec); err != nil {
			return err
		}
	}
	log.Info("launch accepted", "machine", spec.Machine, "image", spec.Image, "type", spec.InstanceType, "region", spec.Region, "lifetime", spec.Lifetime)
	if w.launcher == nil {
		return refuse("Your request is allowed (machine %s, %s in %s), but this packit-launch instance is not set up to launch VMs yet. Please tell its operators.",
			mdsafe.Code(spec.Machine), mdsafe.Code(spec.InstanceType), mdsafe.Code(spec.Region))
	}
	return w.launcher.Launch(ctx, LaunchRequest{Job: job, Spec: spec, HeadSHA: pr.GetHead().GetSHA(), BaseRef: base, Thread: t, Packit: build, WaitForPackit: waiting})
}

// readRepoConfig reads .packit-launch.yaml from the PR's base branch, never
// the head: a PR must not loosen its own limits.
// ref is the ref to read it at ("": the default branch, which base may be).
func readRepoConfig(ctx context.Context, gh *github.Client, cfg *config.Server, project *config.Project, repo, base, ref string) (*config.Repo, error) {
	owner, name, _ := strings.Cut(repo, "/")
	content, sha, err := contentsAt(ctx, gh, owner, name, config.RepoConfigPath, ref)
	var large *fileTooLarge
	if errors.As(err, &large) {
		return nil, refuse("`%s` on branch %s cannot be read: %s. A maintainer needs to make it smaller there.", config.RepoConfigPath, mdsafe.Code(base), large)
	}
	if err == nil && sha == "" {
		return nil, refuse("This repository has no `%s` on its base branch %s, so there is no machine to launch. "+
			"A maintainer can add one; see the [example](https://github.com/packit/packit-launch/blob/main/examples/.packit-launch.yaml).", config.RepoConfigPath, mdsafe.Code(base))
	}
	if err != nil {
		return nil, err
	}
	repoCfg, err := cfg.ParseRepo(content, project)
	var problems config.Problems
	if errors.As(err, &problems) {
		return nil, refuse("`%s` on branch %s has problems; a maintainer needs to fix them there:\n\n- %s",
			config.RepoConfigPath, mdsafe.Code(base), strings.Join(problems, "\n- "))
	}
	return repoCfg, err
}

func (w *Worker) untrusted(ctx context.Context, t *Thread, job CommandJob) error {
	key := fmt.Sprintf("untrusted:%s#%d", strings.ToLower(job.Repo), job.Number)
	first, err := w.notices.FirstNotice(ctx, key, untrustedNoticeTTL)
	if err != nil {
		return err
	}
	if !first {
		t.log.Info("untrusted project; already told on this PR")
		return t.React(ctx, "confused")
	}
	if err := t.Refuse(ctx, w.cfg.UntrustedMessage); err != nil {
		// Not told after all: let the retry tell.
		if ferr := w.notices.ForgetNotice(context.WithoutCancel(ctx), key); ferr != nil {
			t.log.Error("forget notice", "err", ferr)
		}
		return err
	}
	return nil
}

func refuse(format string, args ...any) error {
	return &config.Refusal{Reason: fmt.Sprintf(format, args...)}
}
