package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/store"
)

// reportMarks saves what the report itself keeps on a launch record (its
// comment id, whether it was told, whether it was slow), through the
// record's guarded update (*store.Store).
type reportMarks interface {
	UpdateReport(ctx context.Context, id string, fn func(*store.Report) error) (*store.Launch, error)
}

// Launches is the GitHub side of launches: it turns commands, buttons and
// pull request events into calls of the lifecycle (provision.Lifecycle), and
// shows the lifecycle's outcomes on the PR (it is its provision.Reporter):
// 👀 and an in-progress check run at once, then the comment with how to
// connect, 🚀, and the completed check run.
type Launches struct {
	cfg     *config.Server
	lc      *provision.Lifecycle
	marks   reportMarks
	queue   *store.Queue
	clients clientSource
	log     *slog.Logger
}

// NewLaunches wires the lifecycle and its GitHub side.
func NewLaunches(cfg *config.Server, st *store.Store, prov *provision.Provisioner, clients clientSource, log *slog.Logger) *Launches {
	ls := &Launches{cfg: cfg, marks: st, queue: st.Queue(), clients: clients, log: log}
	ls.lc = provision.NewLifecycle(cfg, st, prov, ls, log)
	return ls
}

// Lifecycle is the lifecycle these launches report for.
func (ls *Launches) Lifecycle() *provision.Lifecycle { return ls.lc }

func (ls *Launches) now() time.Time { return ls.lc.Now() }

// Register adds the launch and lifecycle jobs to a queue worker.
func (ls *Launches) Register(qw *store.Worker) {
	for kind, fn := range ls.Handlers() {
		qw.Handle(kind, fn)
	}
}

// Handlers are the lifecycle's jobs and the GitHub events that end VMs, by
// queue kind; each waits out GitHub's rate limits instead of spending its
// retries on them (the lifecycle's jobs report on the PR too).
func (ls *Launches) Handlers() map[string]func(context.Context, []byte) error {
	handlers := ls.lc.Handlers()
	for kind, fn := range map[string]func(context.Context, []byte) error{
		JobButton:               ls.HandleButton,
		JobPRClosed:             ls.HandlePRClosed,
		JobUninstalled:          ls.HandleInstallation,
		JobReposRemoved:         ls.HandleInstallation,
		provision.JobPackitWait: ls.HandlePackitWait,
		JobTellEnded:            ls.HandleTellEnded,
	} {
		handlers[kind] = fn
	}
	for kind, fn := range handlers {
		handlers[kind] = holdingRateLimits(fn, ls.now, ls.log)
	}
	return handlers
}

// Launch accepts an allowed launch: picks the person's key, has the
// lifecycle record it (once per delivery), opens the check run and starts it.
func (ls *Launches) Launch(ctx context.Context, req LaunchRequest) error {
	if err := ls.lc.Accepting(); err != nil {
		return err // before asking GitHub for anything
	}
	t := req.Thread
	key, err := ls.pickKey(ctx, t.gh, req.Job.User, req.Spec.Key)
	var noKey *noUsableKeyError
	if errors.As(err, &noKey) {
		return &config.Refusal{Reason: noKey.reason}
	}
	if err != nil {
		return err
	}
	l, err := ls.lc.Accept(ctx, acceptRequest(req, key))
	if err != nil {
		return err
	}
	err = ls.start(ctx, t, l)
	if err != nil && ctx.Err() == nil {
		_, held := waitOnGitHub(err, req.Job.ReceivedAt, ls.now())
		if gone(err) || store.FinalAttempt(ctx) && !held {
			// The command's last attempt: its launch must not hold a
			// quota, nor show in /launch status, with nothing to run it.
			if aerr := ls.lc.Abandon(ctx, l, "GitHub or the bot's storage kept failing"); aerr != nil {
				ls.log.With(l.LogAttrs()...).Error("abandon the launch its command could not start", "err", aerr)
			}
		}
	}
	return err
}

// start opens an accepted launch's check run and starts it (or its wait).
func (ls *Launches) start(ctx context.Context, t *Thread, l *store.Launch) error {
	if l.CheckRunID == 0 && !l.State.Ended() {
		if err := ls.openCheckRun(ctx, t, l); err != nil {
			return err
		}
	}
	if l.State == store.StateWaiting {
		return ls.startWaiting(ctx, t, l)
	}
	return ls.lc.Start(ctx, l)
}

// acceptRequest is what the lifecycle records of an allowed /launch.
func acceptRequest(req LaunchRequest, key SSHKey) provision.Request {
	s := req.Spec
	return provision.Request{
		Launch: store.Launch{
			Delivery: req.Job.Delivery, InstallationID: req.Job.InstallationID,
			Owner: req.Job.User, Repo: req.Job.Repo, PR: req.Job.Number, HeadSHA: req.HeadSHA,
			CommandCommentID: req.Job.CommentID, Command: req.Job.Line,
			Machine: s.Machine, Image: s.Image, Region: s.Region, InstanceType: s.InstanceType,
			PackitTarget: s.PackitTarget, PackitSHA: req.Packit.sha(), PackitBuildURL: req.Packit.url(),
			SSHUser: s.SSHUser, Profile: s.Profile, LaunchTemplateID: s.LaunchTemplateID,
			SecurityGroupIDs: s.SecurityGroupIDs, SubnetID: s.SubnetID, ExtendStep: s.ExtendStep,
			KeyFingerprint: key.Fingerprint, KeyType: key.Type, KeyBody: key.Body,
		},
		Lifetime: s.Lifetime, MaxLifetime: s.MaxLifetime, Wait: req.WaitForPackit,
	}
}

// openCheckRun opens a launch's check run, in progress, and keeps its id.
func (ls *Launches) openCheckRun(ctx context.Context, t *Thread, l *store.Launch) error {
	title, summary := launchingTitle(l), launchingSummary(l)
	if l.State == store.StateWaiting {
		title, summary = waitingTitle(l), waitingText(l)
	}
	cr, _, err := t.gh.Checks.CreateCheckRun(ctx, t.owner, t.name, github.CreateCheckRunOptions{
		Name:       checkRunName(l),
		HeadSHA:    l.HeadSHA,
		ExternalID: github.String(l.ID),
		Status:     github.String("in_progress"),
		StartedAt:  &github.Timestamp{Time: ls.now().UTC()},
		Output:     &github.CheckRunOutput{Title: github.String(title), Summary: github.String(summary)},
		DetailsURL: optional(ls.pageOf(l)),
	})
	if err != nil {
		return fmt.Errorf("create check run: %w", err)
	}
	saved, err := ls.marks.UpdateReport(ctx, l.ID, func(x *store.Report) error { x.CheckRunID = cr.GetID(); return nil })
	if err != nil {
		return err
	}
	*l = *saved
	return nil
}

// pageOf is the launch's page in the web view, "" when it is not served.
func (ls *Launches) pageOf(l *store.Launch) string {
	if !ls.cfg.WebOn() {
		return ""
	}
	return strings.TrimRight(ls.cfg.Web.PublicURL, "/") + "/launches/" + l.ID
}

// optional is s, or nil when it is empty (a field GitHub must not get).
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// rebuilt reports a record the sweeper rebuilt from its VM's tags.
func rebuilt(l *store.Launch) bool {
	return len(l.Events) > 0 && l.Events[0].Name == "rebuild"
}

// lostSticky finds, by its marker, the sticky comment of a launch whose
// record was lost with the comment's id, so that the answer replaces it
// rather than repeating it; 0 when none is found.
func (ls *Launches) lostSticky(ctx context.Context, t *Thread, l *store.Launch) int64 {
	rc, ok := ls.clients.(repoClients)
	if !ok {
		return 0
	}
	_, bot, err := rc.ForRepo(ctx, l.Repo)
	var id int64
	if err == nil {
		id, err = findSticky(ctx, t.gh, bot, provision.EndedVM{LaunchID: l.ID, Repo: l.Repo, PR: l.PR})
	}
	if err != nil {
		t.log.Warn("look for the sticky comment of a rebuilt launch", "err", err)
	}
	return id
}

// pickKey reads the person's keys from GitHub (all pages) and selects one.
func (ls *Launches) pickKey(ctx context.Context, gh *github.Client, user, fingerprint string) (SSHKey, error) {
	var keys []string
	opts := &github.ListOptions{PerPage: 100}
	for {
		page, resp, err := gh.Users.ListKeys(ctx, user, opts)
		if err != nil {
			return SSHKey{}, fmt.Errorf("list %s's keys: %w", user, err)
		}
		for _, k := range page {
			keys = append(keys, k.GetKey())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return selectKey(user, keys, fingerprint)
}

// Outcome puts the outcome on the PR once, then keeps it in step with
// whatever happened to the launch meanwhile.
func (ls *Launches) Outcome(ctx context.Context, l *store.Launch) error {
	if l.Reported {
		return nil
	}
	t, err := ls.thread(ctx, l)
	if err != nil {
		return err
	}
	if err := ls.report(ctx, t, l); err != nil {
		return err
	}
	reported := l.State
	saved, err := ls.marks.UpdateReport(ctx, l.ID, func(x *store.Report) error {
		x.Reported, x.CommentID, x.SSHShown = true, l.CommentID, l.SSH.Rev
		return nil
	})
	if err != nil {
		return err
	}
	if saved.State != reported || !saved.ExpiresAt.Equal(l.ExpiresAt) || saved.SSH.Rev != l.SSH.Rev {
		return ls.Refresh(ctx, saved)
	}
	return nil
}

// Slow tells the PR once that the launch is slow: the sticky comment (the
// final answer replaces it) and the check run say what is happening and
// until when it is retried.
func (ls *Launches) Slow(ctx context.Context, l *store.Launch, what string, until time.Time) {
	if l.Slow {
		return
	}
	t, err := ls.thread(ctx, l)
	if err != nil {
		ls.log.With(l.LogAttrs()...).Warn("tell the PR the launch is slow", "err", err)
		return
	}
	id, err := t.Post(ctx, l.CommentID, slowComment(l, what, until))
	if err != nil {
		t.log.Warn("tell the PR the launch is slow", "err", err)
		return // the next attempt tells
	}
	saved, err := ls.marks.UpdateReport(ctx, l.ID, func(x *store.Report) error {
		x.Slow, x.CommentID = true, id // id is the comment written: a deleted one is posted anew
		return nil
	})
	if err != nil {
		t.log.Warn("save slow mark", "err", err)
		return
	}
	l.Slow, l.CommentID = saved.Slow, saved.CommentID
	if l.CheckRunID != 0 {
		if err := ls.patchCheckRun(ctx, t, l, "in_progress", "", slowTitle(l), slowSummary(l, what, until), []*github.CheckRunAction{}, ls.now()); err != nil {
			t.log.Warn("show the slow launch on its check run", "err", err)
		}
	}
}

// WaitingForSSH shows on the check run that the VM runs and the ready
// comment waits for its sshd.
func (ls *Launches) WaitingForSSH(ctx context.Context, l *store.Launch) {
	if l.CheckRunID == 0 {
		return
	}
	t, err := ls.thread(ctx, l)
	if err == nil {
		err = ls.patchCheckRun(ctx, t, l, "in_progress", "", sshWaitTitle(l), sshWaitSummary(l), []*github.CheckRunAction{}, ls.now())
	}
	if err != nil {
		ls.log.With(l.LogAttrs()...).Warn("show the wait for ssh on the check run", "err", err)
	}
}

// report puts the outcome on the PR: the completed check run first (it
// must never stay in progress once the launch is settled, whatever becomes
// of the comment), then the comment (kept in place on retries) and the reaction.
func (ls *Launches) report(ctx context.Context, t *Thread, l *store.Launch) error {
	now := ls.now()
	if err := ls.updateCheckRun(ctx, t, l, now); err != nil {
		return err
	}
	body, reaction := failedComment(l), "confused"
	switch l.State {
	case store.StateRunning:
		body, reaction = readyComment(l, now, ls.pageOf(l)), "rocket"
	case store.StateEnded: // stopped while it was launching
		body, reaction = endedComment(l), "eyes"
	}
	if l.CommentID == 0 && rebuilt(l) {
		l.CommentID = ls.lostSticky(ctx, t, l)
	}
	id, err := t.Post(ctx, l.CommentID, body)
	if errors.Is(err, errAnswerRefused) {
		t.log.Error("the outcome could not be posted on the PR; the check run shows it", "launch", l.ID, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if l.CommentID != id {
		l.CommentID = id
		if _, err := ls.marks.UpdateReport(ctx, l.ID, func(x *store.Report) error { x.CommentID = id; return nil }); err != nil {
			return err
		}
	}
	return t.React(ctx, reaction)
}
