package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
)

// JobLaunch is the queue kind of an accepted launch; its payload is the launch id.
const JobLaunch = "launch"

// launchRetries bounds attempts at a launch whose errors may pass (with
// exponential backoff, hours); the last attempt reports the failure on the PR.
const launchRetries = 20

// launchRecords keeps launch records, locks and quota counters (*store.Store).
type launchRecords interface {
	CreateLaunch(ctx context.Context, l *store.Launch) (*store.Launch, bool, error)
	GetLaunch(ctx context.Context, id string) (*store.Launch, error)
	LaunchesByPR(ctx context.Context, repo string, pr int) ([]*store.Launch, error)
	ActiveLaunches(ctx context.Context) ([]*store.Launch, error)
	UpdateLaunch(ctx context.Context, id string, fn func(*store.Launch) error) (*store.Launch, error)
	RequestStop(ctx context.Context, id, reason string) error
	StopRequested(ctx context.Context, id string) (string, error)
	FirstNotice(ctx context.Context, key string, ttl time.Duration) (bool, error)
	ForgetNotice(ctx context.Context, key string) error
	TryLock(ctx context.Context, name string, ttl time.Duration) (func(), error)
	Lock(ctx context.Context, name string, ttl, wait time.Duration) (func(), error)
	AddInstanceHours(ctx context.Context, project string, day time.Time, hours float64) (float64, error)
	InstanceHours(ctx context.Context, project string, day time.Time) (float64, error)
	provision.PubkeyUse
}

// scheduler queues jobs now or later (*store.Queue).
type scheduler interface {
	Enqueue(ctx context.Context, j store.Job) error
	EnqueueAt(ctx context.Context, j store.Job, at time.Time) error
}

// provisioner carries a launch's VM through its life (*provision.Provisioner).
type provisioner interface {
	Launch(ctx context.Context, l *store.Launch, onSlow func()) error
	GiveUp(ctx context.Context, l *store.Launch, cause error) *provision.Failure
	CleanUpFailed(ctx context.Context, l *store.Launch)
	Terminate(ctx context.Context, l *store.Launch, reason string) error
	MarkEnded(ctx context.Context, l *store.Launch, reason string) error
	TerminateInstance(ctx context.Context, region, instanceID string) error
	InstanceTags(ctx context.Context, region, instanceID string) (map[string]string, error)
	Extend(ctx context.Context, l *store.Launch, d time.Duration) error
	Due(ctx context.Context, region, instanceID string, now time.Time) (due bool, expiresAt time.Time, gone bool, err error)
	Sweep(ctx context.Context, regions []string, pol provision.Policy, now time.Time) (provision.SweepResult, error)
	CleanTemplates(ctx context.Context, recs provision.LaunchLookup, res provision.SweepResult, now time.Time) (int, error)
	ListManaged(ctx context.Context, regions []string) ([]ec2.Instance, error)
	CleanPubkeys(ctx context.Context, use provision.PubkeyUse) (int, error)
}

// Launches accepts allowed /launch commands and carries them to a running
// VM and an answer on the PR: 👀 and an in-progress check run at once, then
// the comment with how to connect, 🚀, and the completed check run.
type Launches struct {
	// MaxRetry bounds attempts at a launch job; the last one reports.
	MaxRetry int
	// StillTryingAfter is when a launch that has not got through to the
	// Launch service or AWS tells its PR it is still being retried.
	StillTryingAfter time.Duration
	// PackitPollEvery is how often a launch waiting for Packit's build looks.
	PackitPollEvery time.Duration
	cfg             *config.Server
	records         launchRecords
	queue           scheduler
	prov            provisioner
	clients         clientSource
	now             func() time.Time
	log             *slog.Logger
	blocked         atomic.Pointer[string] // why new launches are refused, when the setup is broken
}

// Block refuses new launches (the lifecycle of running VMs goes on) until
// Unblock; reason is for the logs. It reports whether this changed anything.
func (ls *Launches) Block(reason string) bool { return ls.blocked.Swap(&reason) == nil }

// Unblock lets new launches through again; it reports whether they were blocked.
func (ls *Launches) Unblock() bool { return ls.blocked.Swap(nil) != nil }

// NewLaunches wires the launch stage and the lifecycle after it.
func NewLaunches(cfg *config.Server, recs launchRecords, q scheduler, prov provisioner, clients clientSource, log *slog.Logger) *Launches {
	return &Launches{MaxRetry: launchRetries, StillTryingAfter: 3 * time.Minute, PackitPollEvery: packitPollEvery, cfg: cfg, records: recs, queue: q, prov: prov, clients: clients, now: time.Now, log: log}
}

// Register adds the launch and lifecycle jobs to a queue worker.
func (ls *Launches) Register(qw *store.Worker) {
	for kind, fn := range ls.Handlers() {
		qw.Handle(kind, fn)
	}
}

// Handlers are the launch and lifecycle jobs by queue kind; each waits out
// GitHub's rate limits instead of spending its retries on them.
func (ls *Launches) Handlers() map[string]func(context.Context, []byte) error {
	handlers := map[string]func(context.Context, []byte) error{
		JobLaunch:       ls.HandleLaunch,
		JobExpire:       ls.HandleExpire,
		JobWarn:         ls.HandleWarn,
		JobButton:       ls.HandleButton,
		JobPRClosed:     ls.HandlePRClosed,
		JobUninstalled:  ls.HandleInstallation,
		JobReposRemoved: ls.HandleInstallation,
		JobPackitWait:   ls.HandlePackitWait,
		JobTellEnded:    ls.HandleTellEnded,
	}
	for kind, fn := range handlers {
		handlers[kind] = holdingRateLimits(fn, ls.now, ls.log)
	}
	return handlers
}

// Launch accepts an allowed launch: picks the person's key, records the
// launch (once per delivery), opens the check run and queues the launch job.
func (ls *Launches) Launch(ctx context.Context, req LaunchRequest) error {
	if reason := ls.blocked.Load(); reason != nil {
		ls.log.Warn("launch refused: the setup check failed", "problem", *reason)
		return refuse("I cannot launch VMs right now: this packit-launch instance's setup check is failing (its operators can see why in its log). Please tell them; VMs already running are not affected.")
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
	now := ls.now().UTC()
	l, err := ls.record(ctx, req, key, now)
	if err != nil {
		return err
	}
	if l.CheckRunID == 0 && !l.State.Ended() {
		title, summary := launchingTitle(l), launchingSummary(l)
		if l.State == store.StateWaiting {
			title, summary = waitingTitle(l), waitingText(l)
		}
		cr, _, err := t.gh.Checks.CreateCheckRun(ctx, t.owner, t.name, github.CreateCheckRunOptions{
			Name:       checkRunName(l),
			HeadSHA:    l.HeadSHA,
			ExternalID: github.String(l.ID),
			Status:     github.String("in_progress"),
			StartedAt:  &github.Timestamp{Time: now},
			Output:     &github.CheckRunOutput{Title: github.String(title), Summary: github.String(summary)},
		})
		if err != nil {
			return fmt.Errorf("create check run: %w", err)
		}
		saved, err := ls.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error { x.CheckRunID = cr.GetID(); return nil })
		if err != nil {
			return err
		}
		*l = *saved
	}
	if l.State == store.StateWaiting {
		return ls.startWaiting(ctx, t, l)
	}
	err = ls.queue.Enqueue(ctx, store.Job{Kind: JobLaunch, ID: "launch:" + l.ID, Payload: []byte(l.ID), Queue: store.QueueLifecycle, MaxRetry: ls.MaxRetry})
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		return err
	}
	return nil
}

// record checks the quotas and records the launch, once per command, under
// one lock so that quotas hold across replicas.
func (ls *Launches) record(ctx context.Context, req LaunchRequest, key SSHKey, now time.Time) (*store.Launch, error) {
	project, ok := ls.cfg.ProjectFor(req.Job.Repo)
	if !ok {
		return nil, refuse("This repository is no longer trusted by this instance.")
	}
	// The TTL outlasts the AWS listing under it (each call has 30 s).
	unlock, err := ls.records.Lock(ctx, "quota", 3*time.Minute, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("quota lock: %w", err)
	}
	defer unlock()
	existing, err := ls.existing(ctx, req.Job)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return existing, nil // a retried or repeated command
	}
	if err := ls.checkQuotas(ctx, project, req.Job.User, req.Job.Repo, req.Spec.Lifetime, now); err != nil {
		return nil, err
	}
	state := store.StateAccepted
	if req.WaitForPackit {
		state = store.StateWaiting
	}
	l, created, err := ls.records.CreateLaunch(ctx, &store.Launch{
		Delivery: req.Job.Delivery, InstallationID: req.Job.InstallationID,
		Owner: req.Job.User, Repo: req.Job.Repo, PR: req.Job.Number, HeadSHA: req.HeadSHA,
		CommandCommentID: req.Job.CommentID, Command: req.Job.Line,
		Machine: req.Spec.Machine, Image: req.Spec.Image, Region: req.Spec.Region, InstanceType: req.Spec.InstanceType,
		PackitTarget: req.Spec.PackitTarget, PackitSHA: req.Packit.sha(), PackitBuildURL: req.Packit.url(),
		SSHUser: req.Spec.SSHUser, Profile: req.Spec.Profile, LaunchTemplateID: req.Spec.LaunchTemplateID,
		SecurityGroupIDs: req.Spec.SecurityGroupIDs, SubnetID: req.Spec.SubnetID, Project: project.Name(),
		Lifetime: req.Spec.Lifetime, ExtendStep: req.Spec.ExtendStep,
		KeyFingerprint: key.Fingerprint, KeyType: key.Type, KeyBody: key.Body,
		CreatedAt: now, ExpiresAt: now.Add(req.Spec.Lifetime), HardExpiresAt: now.Add(req.Spec.MaxLifetime),
		State: state,
	})
	if err != nil {
		return nil, fmt.Errorf("record launch: %w", err)
	}
	if created {
		ls.log.Info("launch recorded", "launch", l.ID, "repo", l.Repo, "pr", l.PR, "machine", l.Machine, "key", l.KeyFingerprint, "expires", l.ExpiresAt)
	}
	if created && l.State != store.StateWaiting { // a wait counts when its VM is launched
		if _, err := ls.records.AddInstanceHours(ctx, l.Project, now, l.Lifetime.Hours()); err != nil {
			ls.log.Warn("count instance-hours", "launch", l.ID, "err", err)
		}
	}
	return l, nil
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

// HandleLaunch runs a launch job: provision, then report. It is safe to run
// again at any point: the record says what is done.
func (ls *Launches) HandleLaunch(ctx context.Context, payload []byte) error {
	l, err := ls.records.GetLaunch(ctx, string(payload))
	if errors.Is(err, store.ErrNotFound) {
		return store.SkipRetry(err)
	}
	if err != nil {
		return err
	}
	log := ls.log.With("launch", l.ID, "repo", l.Repo, "pr", l.PR)
	gh, err := ls.clients.Client(ctx, l.InstallationID)
	if err != nil {
		return err
	}
	t := newThread(gh, l.Repo, l.PR, l.CommandCommentID, l.Owner, l.Command, log)
	if l.State == store.StateWaiting {
		return nil // its Packit wait queues the launch when the image is there
	}
	if !l.State.Ended() && l.State != store.StateRunning {
		err := ls.prov.Launch(ctx, l, func() { ls.tellSlow(ctx, t, l, nil) })
		if errors.Is(err, provision.ErrEndedElsewhere) {
			err = nil // l is now the stored, ended record: report it
		}
		var failure *provision.Failure
		if err != nil && !errors.As(err, &failure) {
			if !store.FinalAttempt(ctx) || ctx.Err() != nil {
				log.Warn("launch attempt failed; will retry", "err", err)
				if ls.now().Sub(l.CreatedAt) >= ls.StillTryingAfter && ctx.Err() == nil {
					ls.tellSlow(ctx, t, l, err)
				}
				return err
			}
			if l.ReservationID != 0 || l.State == store.StateLaunching {
				// A VM may still come of it: the sweeper's reconciler settles
				// it from AWS instead of telling the PR it failed.
				log.Error("launch attempts exhausted with a reservation in flight; left to the reconciler", "err", err)
				return err
			}
			ls.prov.GiveUp(ctx, l, err)
		}
	}
	if l.State == store.StateRunning {
		// Timers first: a VM must never run without its end scheduled.
		if err := ls.schedule(ctx, l); err != nil {
			return err
		}
		// A stop, PR close or uninstall that came while it was launching.
		if reason, err := ls.records.StopRequested(ctx, l.ID); err != nil {
			return err
		} else if reason != "" {
			if err := ls.prov.Terminate(ctx, l, reason); err != nil {
				return err
			}
		}
	}
	err = ls.reportOnce(ctx, t, l)
	if err != nil && store.FinalAttempt(ctx) && ctx.Err() == nil && ls.now().Sub(l.CreatedAt) < reportFor {
		// Settled but not told: a check run must not stay in progress, so
		// the report is tried again later as a fresh job.
		log.Error("reporting the launch kept failing; trying again later", "err", err)
		return store.HoldUntil(ls.now().Add(10*time.Minute), err)
	}
	return err
}

// reportFor bounds how long a settled launch keeps trying to tell its PR.
const reportFor = 24 * time.Hour

// reportOnce puts the outcome on the PR once, then keeps it in step with
// whatever happened to the launch meanwhile.
func (ls *Launches) reportOnce(ctx context.Context, t *Thread, l *store.Launch) error {
	if l.Reported {
		return nil
	}
	if err := ls.report(ctx, t, l); err != nil {
		return err
	}
	reported := l.State
	saved, err := ls.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
		x.Reported, x.CommentID = true, l.CommentID
		return nil
	})
	if err != nil {
		return err
	}
	if saved.State != reported || !saved.ExpiresAt.Equal(l.ExpiresAt) {
		return ls.refresh(ctx, saved)
	}
	return nil
}

// existing returns the launch already recorded for a command, if any.
func (ls *Launches) existing(ctx context.Context, job CommandJob) (*store.Launch, error) {
	launches, err := ls.records.LaunchesByPR(ctx, job.Repo, job.Number)
	if err != nil {
		return nil, err
	}
	for _, l := range launches {
		if l.CommandCommentID == job.CommentID {
			return l, nil
		}
	}
	return nil, nil
}

// tellSlow tells the PR once that the launch is slow: the sticky comment
// (the final answer replaces it) and the check run say what is happening and
// until when it is retried. cause is the last attempt's error, nil while the
// Launch service is still working on the reservation.
func (ls *Launches) tellSlow(ctx context.Context, t *Thread, l *store.Launch, cause error) {
	if l.Slow {
		return
	}
	until := l.CreatedAt.Add(store.RetrySpan(ls.MaxRetry))
	what := ""
	if cause != nil {
		what = provision.Cause(cause)
	}
	id, err := t.Post(ctx, l.CommentID, slowComment(l, what, until))
	if err != nil {
		t.log.Warn("tell the PR the launch is slow", "err", err)
		return // the next attempt tells
	}
	saved, err := ls.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
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
		body, reaction = readyComment(l, now), "rocket"
	case store.StateEnded: // stopped while it was launching
		body, reaction = endedComment(l), "eyes"
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
		if _, err := ls.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error { x.CommentID = id; return nil }); err != nil {
			return err
		}
	}
	return t.React(ctx, reaction)
}
