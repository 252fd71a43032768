package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/store"
)

// A launch's life, as a state machine over its record (store.Launch):
//
//	waiting ──build ready──▶ accepted ──▶ launching ──▶ running ──▶ terminated
//	   │                        │             │            (expiry, stop, PR closed,
//	   └──cancelled/failed──────┴──failed─────┘             uninstall, sweeper)
//
// Every transition goes through the store's guarded update, which never
// revives an ended record. Lifecycle decides; a Reporter (the GitHub side)
// shows each outcome on the launch's pull request.

// Queue kinds of the lifecycle's own jobs.
const (
	JobLaunch = "launch"
	JobExpire = "expire"
	JobWarn   = "warn"
	// JobPackitWait polls the build a waiting launch waits for; its handler
	// is the GitHub side's (it reads Packit's check runs), its timers are these.
	JobPackitWait = "packit-wait"
	// JobReservationPoll is one look at a launching launch's reservation.
	JobReservationPoll = "reservation-poll"
	// JobReport reports a launch whose ready comment waited for sshd.
	JobReport = "report"
)

// End reasons the lifecycle gives on its own.
const (
	ReasonExpired     = "its lifetime ended"
	ReasonPRClosed    = "the pull request was closed"
	ReasonUninstalled = "the GitHub App was uninstalled from the repository"
	ReasonUntrusted   = "the repository is no longer trusted by this instance"
	reasonGone        = "its instance was already gone"
)

const (
	// launchRetries bounds attempts at a launch whose errors may pass (with
	// exponential backoff, hours); the last attempt reports the failure.
	launchRetries    = 20
	lifecycleRetries = 20
	warnBefore       = 15 * time.Minute
	// reportFor bounds how long a settled launch keeps trying to tell its PR.
	reportFor = 24 * time.Hour
	// packitPollEvery is how often a waiting launch looks at Packit's build.
	packitPollEvery = time.Minute
)

// Reporter shows a launch on its pull request. Lifecycle calls it after each
// transition; an error from it retries the job that called it.
type Reporter interface {
	// Outcome puts a settled launch's outcome on its PR, once, and keeps
	// it in step with whatever happened to the launch meanwhile.
	Outcome(ctx context.Context, l *store.Launch) error
	// Refresh brings the PR's sticky comment and check run in step with a
	// launch already reported.
	Refresh(ctx context.Context, l *store.Launch) error
	// Slow tells the PR once that a launch is slower than usual: cause is
	// the last attempt's failure ("" while the Launch service is working),
	// until when it is retried.
	Slow(ctx context.Context, l *store.Launch, cause string, until time.Time)
	// Warn tells the owner that the VM ends soon.
	Warn(ctx context.Context, l *store.Launch) error
	// Ended tells the PR of a VM that ended without its record (best effort).
	Ended(ctx context.Context, vm EndedVM)
	// Denied tells the PR that its VM is past its time but AWS refused to
	// terminate it (best effort): it runs until the operators end it.
	Denied(ctx context.Context, vm EndedVM)
	// WaitingForSSH shows that a running VM's ready comment waits for its
	// sshd, until l.SSH.WaitUntil (best effort).
	WaitingForSSH(ctx context.Context, l *store.Launch)
}

// Lifecycle carries launches from the decision to the end of their VM.
type Lifecycle struct {
	// MaxRetry bounds attempts at a launch job; the last one reports.
	MaxRetry int
	// StillTryingAfter is when a launch that has not got through to the
	// Launch service or AWS tells its PR it is still being retried.
	StillTryingAfter time.Duration
	// PackitPollEvery is how often a launch waiting for Packit's build looks.
	PackitPollEvery time.Duration
	// SSHPollEvery is how often a running VM's sshd is probed until it
	// answers; ConsolePollEvery how often its console is read after that.
	SSHPollEvery, ConsolePollEvery time.Duration

	cfg     *config.Server
	records *store.Store
	queue   *store.Queue
	prov    *Provisioner
	report  Reporter
	clock   atomic.Pointer[func() time.Time] // nil: time.Now
	log     *slog.Logger
	blocked atomic.Pointer[string] // why new launches are refused, when the setup is broken
}

// NewLifecycle wires the lifecycle to its records and queue; report shows
// its outcomes.
func NewLifecycle(cfg *config.Server, st *store.Store, prov *Provisioner, report Reporter, log *slog.Logger) *Lifecycle {
	return &Lifecycle{MaxRetry: launchRetries, StillTryingAfter: 3 * time.Minute, PackitPollEvery: packitPollEvery, SSHPollEvery: sshPollEvery, ConsolePollEvery: consolePollEvery,
		cfg: cfg, records: st, queue: st.Queue(), prov: prov, report: report, log: log}
}

// SetClock replaces the lifecycle's clock (tests move time, while its jobs
// run: hence atomic).
func (lc *Lifecycle) SetClock(now func() time.Time) { lc.clock.Store(&now) }

// Now is the lifecycle's time.
func (lc *Lifecycle) Now() time.Time { return lc.now() }

func (lc *Lifecycle) now() time.Time {
	if c := lc.clock.Load(); c != nil {
		return (*c)()
	}
	return time.Now()
}

// Block refuses new launches (the lifecycle of running VMs goes on) until
// Unblock; reason is for the logs. It reports whether this changed anything.
func (lc *Lifecycle) Block(reason string) bool { return lc.blocked.Swap(&reason) == nil }

// Unblock lets new launches through again; it reports whether they were blocked.
func (lc *Lifecycle) Unblock() bool { return lc.blocked.Swap(nil) != nil }

// Accepting refuses a new launch while the setup check fails, and is nil otherwise.
func (lc *Lifecycle) Accepting() error {
	if reason := lc.blocked.Load(); reason != nil {
		lc.log.Warn("launch refused: the setup check failed", "problem", *reason)
		return refuse("I cannot launch VMs right now: this packit-launch instance's setup check is failing (its operators can see why in its log). Please tell them; VMs already running are not affected.")
	}
	return nil
}

// Handlers are the lifecycle's own jobs by queue kind.
func (lc *Lifecycle) Handlers() map[string]func(context.Context, []byte) error {
	return map[string]func(context.Context, []byte) error{
		JobLaunch:          lc.HandleLaunch,
		JobReservationPoll: lc.HandleReservationPoll,
		JobExpire:          lc.HandleExpire,
		JobWarn:            lc.HandleWarn,
		JobSSHPoll:         lc.HandleSSHPoll,
		JobReport:          lc.HandleReport,
	}
}

// Get reads a launch record; one that is gone (retention passed, or never
// the bot's) is nil.
func (lc *Lifecycle) Get(ctx context.Context, id string) (*store.Launch, error) {
	l, err := lc.records.GetLaunch(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return l, err
}

// OnPR lists a pull request's launches, oldest first.
func (lc *Lifecycle) OnPR(ctx context.Context, repo string, pr int) ([]*store.Launch, error) {
	return lc.records.LaunchesByPR(ctx, repo, pr)
}

// StopRequested is the reason a stop was asked for a launch still in flight, or "".
func (lc *Lifecycle) StopRequested(ctx context.Context, id string) (string, error) {
	return lc.records.StopRequested(ctx, id)
}

// Request is a launch the decision allowed.
type Request struct {
	Launch store.Launch // who, where and what; id, times and state are set here
	// Lifetime and MaxLifetime start at the launch (for a waiting one, at
	// the end of its wait).
	Lifetime, MaxLifetime time.Duration
	// Wait: the image is a Packit build still in progress.
	Wait bool
}

// Accept records an allowed launch once per command, under one lock so
// that quotas hold across replicas. A repeated command gets the launch
// already recorded. Refusals are *config.Refusal.
func (lc *Lifecycle) Accept(ctx context.Context, req Request) (*store.Launch, error) {
	if err := lc.Accepting(); err != nil {
		return nil, err
	}
	in := req.Launch
	project, ok := lc.cfg.ProjectFor(in.Repo)
	if !ok {
		return nil, refuse("This repository is no longer trusted by this instance.")
	}
	// The TTL outlasts the AWS listing under it (each call has 30 s).
	unlock, err := lc.records.Lock(ctx, "quota", 3*time.Minute, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("quota lock: %w", err)
	}
	defer unlock()
	existing, err := lc.existing(ctx, in.Repo, in.PR, in.CommandCommentID)
	if err != nil || existing != nil {
		return existing, err // a retried or repeated command
	}
	if stop, err := lc.records.StopMark(ctx, in.Repo, in.PR, in.Owner); err != nil {
		return nil, err
	} else if in.CommandCommentID != 0 && stop > in.CommandCommentID {
		return nil, refuse("You asked me to stop your VMs on this pull request after writing this `/launch`, so I did not launch it. Comment `/launch` again if you want a VM.")
	}
	now := lc.now().UTC()
	if err := lc.checkQuotas(ctx, project, in.Owner, in.Repo, req.Lifetime, now); err != nil {
		return nil, err
	}
	in.ID, in.Project, in.CreatedAt = "", project.Name(), now
	in.ExpiresAt, in.HardExpiresAt = now.Add(req.Lifetime), now.Add(req.MaxLifetime)
	in.Lifetime, in.State = req.Lifetime, store.StateAccepted
	if req.Wait {
		in.State = store.StateWaiting
	}
	in.Events = []store.Event{{At: now, Name: "accept", State: in.State}}
	l, created, err := lc.records.CreateLaunch(ctx, &in)
	if err != nil {
		return nil, fmt.Errorf("record launch: %w", err)
	}
	if created {
		lc.log.With(l.LogAttrs()...).Info("launch recorded", "repo", l.Repo, "pr", l.PR, "machine", l.Machine, "key", l.KeyFingerprint, "expires", l.ExpiresAt)
	}
	if created && l.State != store.StateWaiting { // a wait counts when its VM is launched
		lc.countHours(ctx, l, l.Lifetime)
	}
	return l, nil
}

// StopBefore remembers login's stop comment on a PR: commands run in
// parallel, so a quick /launch stop may be answered before the /launch it
// follows is recorded; that /launch is then refused (Accept).
func (lc *Lifecycle) StopBefore(ctx context.Context, repo string, pr int, login string, commentID int64) error {
	return lc.records.MarkStop(ctx, repo, pr, login, commentID)
}

// existing returns the launch already recorded for a command, if any.
func (lc *Lifecycle) existing(ctx context.Context, repo string, pr int, commentID int64) (*store.Launch, error) {
	launches, err := lc.records.LaunchesByPR(ctx, repo, pr)
	if err != nil {
		return nil, err
	}
	for _, l := range launches {
		if l.CommandCommentID == commentID {
			return l, nil
		}
	}
	return nil, nil
}

func (lc *Lifecycle) countHours(ctx context.Context, l *store.Launch, d time.Duration) {
	if _, err := lc.records.AddInstanceHours(ctx, l.Project, lc.now(), d.Hours()); err != nil {
		lc.log.With(l.LogAttrs()...).Warn("count instance-hours", "err", err)
	}
}

// Start queues an accepted launch's job (once: the id dedupes).
func (lc *Lifecycle) Start(ctx context.Context, l *store.Launch) error {
	err := lc.queue.Enqueue(ctx, store.Job{Kind: JobLaunch, ID: "launch:" + l.ID, Payload: []byte(l.ID), Queue: store.QueueLifecycle, MaxRetry: lc.MaxRetry})
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		return err
	}
	return nil
}

// HandleLaunch runs a launch job: provision, then report. It is safe to run
// again at any point: the record says what is done. Once the reservation
// is made, the wait for it goes on as scheduled looks (HandleReservationPoll).
func (lc *Lifecycle) HandleLaunch(ctx context.Context, payload []byte) error {
	l, err := lc.records.GetLaunch(ctx, string(payload))
	if errors.Is(err, store.ErrNotFound) {
		return store.SkipRetry(err)
	}
	if err != nil {
		return err
	}
	if l.State == store.StateWaiting {
		return nil // its Packit wait starts the launch when the image is there
	}
	return lc.advance(ctx, l, false)
}

// HandleReport runs the report job of a launch whose launch job left its
// report to the wait for sshd: it reports once that wait is over, or the
// launch ended.
func (lc *Lifecycle) HandleReport(ctx context.Context, payload []byte) error {
	l, err := lc.records.GetLaunch(ctx, string(payload))
	if errors.Is(err, store.ErrNotFound) {
		return store.SkipRetry(err)
	}
	if err != nil || l.Reported {
		return err
	}
	return lc.advance(ctx, l, true)
}

// HandleReservationPoll runs one look at a launch's reservation, if it is
// the launch's live poll, and then goes on as HandleLaunch does.
func (lc *Lifecycle) HandleReservationPoll(ctx context.Context, payload []byte) error {
	var j ReservationPoll
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	l, err := lc.Get(ctx, j.LaunchID)
	if err != nil || l == nil || !l.ReservationPollAt.Equal(j.At.UTC().Truncate(time.Millisecond)) {
		return err // a stale or duplicate look
	}
	if l.State != store.StateLaunching && l.Reported {
		return nil
	}
	// Launching: look. Settled by this very look but not told (the process
	// died in between): finish the report.
	return lc.advance(ctx, l, false)
}

// advance takes l as far as it can go now: provision it, and once it is
// settled set its timers, honour a stop that came meanwhile and report:
// the launch job itself, unless it left the report to the wait for sshd,
// whose report job (reporting) then reports.
func (lc *Lifecycle) advance(ctx context.Context, l *store.Launch, reporting bool) error {
	log := lc.log.With("launch", l.ID, "repo", l.Repo, "pr", l.PR)
	if !l.State.Ended() && l.State != store.StateRunning {
		err := lc.provision(ctx, l, log)
		if errors.Is(err, ErrPending) {
			return lc.ScheduleReservationPoll(ctx, l, lc.prov.NextLook(l))
		}
		if err != nil {
			return err
		}
	}
	if l.State == store.StateRunning {
		// Timers first: a VM must never run without its end scheduled.
		if err := lc.schedule(ctx, l); err != nil {
			return err
		}
		// A stop, PR close or uninstall that came while it was launching.
		if reason, err := lc.records.StopRequested(ctx, l.ID); err != nil {
			return err
		} else if reason != "" {
			if err := lc.prov.Terminate(ctx, l, reason); err != nil {
				return err
			}
		}
	}
	if !l.Reported && !reporting {
		if waiting, err := lc.checkSSH(ctx, l); err != nil || waiting {
			return err // the ready comment waits for sshd
		}
		if !l.SSH.WaitUntil.IsZero() {
			return lc.enqueueReport(ctx, l) // the wait is over (this job ran late): one reporter
		}
	}
	// The settled state reaches a replica before the PR hears of it.
	if err := confirmWrites(ctx, lc.records); err != nil {
		return err
	}
	told := l.Reported
	err := lc.report.Outcome(ctx, l)
	if err == nil && !told && l.State == store.StateRunning {
		// One job reports a launch (its launch job, or the report job once
		// the wait for sshd is over): counted once.
		if err := lc.records.ObserveReady(ctx, lc.now(), lc.now().Sub(l.CreatedAt)); err != nil {
			log.Warn("count the time to ready for the day", "err", err)
		}
	}
	if err != nil && store.FinalAttempt(ctx) && ctx.Err() == nil && lc.now().Sub(l.CreatedAt) < reportFor {
		// Settled but not told: a check run must not stay in progress, so
		// the report is tried again later as a fresh job.
		log.Error("reporting the launch kept failing; trying again later", "err", err)
		return store.HoldUntil(lc.now().Add(10*time.Minute), err)
	}
	return err
}

// provision is one attempt at bringing l to running; nil once l is settled
// (running, failed or ended), an error to try again.
func (lc *Lifecycle) provision(ctx context.Context, l *store.Launch, log *slog.Logger) error {
	until := l.CreatedAt.Add(store.RetrySpan(lc.MaxRetry))
	err := lc.prov.Launch(ctx, l, func() { lc.report.Slow(ctx, l, "", until) })
	if errors.Is(err, ErrEndedElsewhere) {
		return nil // l is now the stored, ended record: report it
	}
	var failure *Failure
	if err == nil || errors.As(err, &failure) {
		return nil
	}
	if errors.Is(err, ErrPending) {
		return err
	}
	if !store.FinalAttempt(ctx) || ctx.Err() != nil {
		log.Warn("launch attempt failed; will retry", "err", err)
		if lc.now().Sub(l.CreatedAt) >= lc.StillTryingAfter && ctx.Err() == nil {
			lc.report.Slow(ctx, l, Cause(err), until)
		}
		return err
	}
	if l.ReservationID != 0 || l.State == store.StateLaunching {
		// A VM may still come of it: the sweeper's reconciler settles it
		// from AWS instead of telling the PR it failed.
		log.Error("launch attempts exhausted with a reservation in flight; left to the reconciler", "err", err)
		return err
	}
	lc.prov.GiveUp(ctx, l, err)
	return nil
}

func refuse(format string, args ...any) error {
	return &config.Refusal{Reason: fmt.Sprintf(format, args...)}
}
