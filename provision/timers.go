package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/packit/packit-launch/store"
)

// expireJob is self-sufficient: it can end the VM even if Redis lost the record.
type expireJob struct {
	LaunchID   string    `json:"launch_id"`
	Region     string    `json:"region"`
	InstanceID string    `json:"instance_id"`
	ExpiresAt  time.Time `json:"expires_at"`
}

type warnJob struct {
	LaunchID  string    `json:"launch_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// schedule sets the timers of a running launch: the terminate job at its
// expiry and the warning before it. Job ids carry the expiry, so scheduling
// the same expiry twice is harmless and an extension adds new timers; the
// old ones find a later expiry on the instance and do nothing.
func (lc *Lifecycle) schedule(ctx context.Context, l *store.Launch) error {
	if err := lc.scheduleExpiry(ctx, expireJob{LaunchID: l.ID, Region: l.Region, InstanceID: l.InstanceID, ExpiresAt: l.ExpiresAt}); err != nil {
		return err
	}
	if warnAt := l.ExpiresAt.Add(-warnBefore); warnAt.After(lc.now()) {
		w, _ := json.Marshal(warnJob{LaunchID: l.ID, ExpiresAt: l.ExpiresAt})
		err := lc.queue.EnqueueAt(ctx, store.Job{Kind: JobWarn, ID: fmt.Sprintf("warn:%s:%d", l.ID, l.ExpiresAt.Unix()), Payload: w, Queue: store.QueueLifecycle, MaxRetry: 3}, warnAt)
		if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
			return fmt.Errorf("schedule warning: %w", err)
		}
	}
	return nil
}

// scheduleExpiry queues the terminate job for j.ExpiresAt (once per expiry).
func (lc *Lifecycle) scheduleExpiry(ctx context.Context, j expireJob) error {
	payload, _ := json.Marshal(j)
	err := lc.queue.EnqueueAt(ctx, store.Job{Kind: JobExpire, ID: fmt.Sprintf("expire:%s:%d", j.LaunchID, j.ExpiresAt.Unix()), Payload: payload,
		Queue: store.QueueLifecycle, MaxRetry: lifecycleRetries}, j.ExpiresAt)
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		return fmt.Errorf("schedule termination: %w", err)
	}
	return nil
}

// HandleExpire terminates a VM at its expiry, after checking the expiry the
// instance itself carries: an extension may have moved it.
func (lc *Lifecycle) HandleExpire(ctx context.Context, payload []byte) error {
	var j expireJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	due, carried, gone, err := lc.prov.Due(ctx, j.Region, j.InstanceID, lc.now())
	if err != nil {
		return err
	}
	if !gone && !due {
		if !carried.After(j.ExpiresAt) {
			// Fired early (a replica's clock is off): this very job is the
			// timer for that expiry, so it must run again, not re-queue itself.
			return fmt.Errorf("expiry timer for %s fired %s early", j.LaunchID, carried.Sub(lc.now()).Round(time.Second))
		}
		// Extended: the timer for the later expiry takes over.
		j.ExpiresAt = carried
		return lc.scheduleExpiry(ctx, j)
	}
	if due {
		// The VM first, whatever the record says (it may be lost, stale or unaware of this instance).
		if err := lc.prov.TerminateInstance(ctx, j.Region, j.InstanceID); err != nil {
			return err
		}
	}
	l, err := lc.records.GetLaunch(ctx, j.LaunchID)
	if errors.Is(err, store.ErrNotFound) {
		lc.log.Warn("ended a VM without a launch record; telling its PR from its tags", "launch", j.LaunchID, "instance", j.InstanceID)
		if tags, err := lc.prov.InstanceTags(ctx, j.Region, j.InstanceID); err != nil {
			lc.log.Warn("read the ended VM's tags", "launch", j.LaunchID, "err", err)
		} else if vm, ok := EndedVMFromTags(j.InstanceID, tags, lc.now(), ReasonExpired); ok {
			lc.report.Ended(ctx, vm)
		}
		return nil
	}
	if err != nil {
		return err // retried: the VM is gone by then, and the record gets ended
	}
	if l.State.Ended() {
		return nil
	}
	reason := ReasonExpired
	if gone && !due {
		reason = reasonGone
	}
	if l.InstanceID == "" {
		l.InstanceID = j.InstanceID
	}
	return lc.ended(ctx, l, reason)
}

// HandleWarn tells the owner a VM ends soon, unless it was extended or ended.
func (lc *Lifecycle) HandleWarn(ctx context.Context, payload []byte) error {
	var j warnJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	l, err := lc.Get(ctx, j.LaunchID)
	if err != nil || l == nil || l.State != store.StateRunning || !l.ExpiresAt.Equal(j.ExpiresAt) {
		return err
	}
	if err := lc.report.Warn(ctx, l); err != nil {
		return err
	}
	lc.note(ctx, l, "warn", "")
	return nil
}

// Poll is the job of one look a launch takes at what it waits for
// (Packit's build, its reservation). The record names the one live look
// (PackitPollAt, ReservationPollAt): a job for another time is a stale
// duplicate and does nothing.
type Poll struct {
	LaunchID string    `json:"launch_id"`
	At       time.Time `json:"at"`
}

// PackitPoll is the job of one poll of a waiting launch's build.
type PackitPoll = Poll

// ReservationPoll is the job of one look at a launching launch's reservation.
type ReservationPoll = Poll

// pollKind is what a kind of wait polls with.
type pollKind struct {
	job      string
	maxRetry int
	waits    func(*store.Launch) bool       // the launch still waits
	liveAt   func(*store.Launch) *time.Time // its live look
}

var packitPolls = pollKind{job: JobPackitWait, maxRetry: 5,
	waits:  func(l *store.Launch) bool { return l.State == store.StateWaiting },
	liveAt: func(l *store.Launch) *time.Time { return &l.PackitPollAt }}

func (lc *Lifecycle) reservationPolls() pollKind {
	return pollKind{job: JobReservationPoll, maxRetry: lc.MaxRetry,
		waits:  func(l *store.Launch) bool { return l.State == store.StateLaunching && l.ReservationID != 0 },
		liveAt: func(l *store.Launch) *time.Time { return &l.ReservationPollAt }}
}

// schedulePoll makes the look at `at` the launch's one live look (an older
// one still queued then does nothing) and queues it, while it still waits.
func (lc *Lifecycle) schedulePoll(ctx context.Context, l *store.Launch, k pollKind, at time.Time) error {
	saved, err := update(ctx, lc.records, l.ID, lc.now(), func(x *store.Launch) error {
		if !k.waits(x) {
			return store.ErrNoChange
		}
		*k.liveAt(x) = at
		return nil
	})
	if err != nil {
		return err
	}
	*l = *saved
	if !k.waits(l) || !k.liveAt(l).Equal(at) {
		return nil
	}
	return lc.enqueuePoll(ctx, l, k, at)
}

// enqueuePoll queues the look at `at` (once: the id dedupes).
func (lc *Lifecycle) enqueuePoll(ctx context.Context, l *store.Launch, k pollKind, at time.Time) error {
	payload, _ := json.Marshal(Poll{LaunchID: l.ID, At: at})
	err := lc.queue.EnqueueAt(ctx, store.Job{Kind: k.job, ID: fmt.Sprintf("%s:%s:%d", k.job, l.ID, at.UnixMilli()), Payload: payload,
		Queue: store.QueueLifecycle, MaxRetry: k.maxRetry}, at)
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		return fmt.Errorf("schedule %s: %w", k.job, err)
	}
	return nil
}

// isLive reports whether a poll job is the launch's one live look.
func (k pollKind) isLive(l *store.Launch, at time.Time) bool {
	return k.waits(l) && k.liveAt(l).Equal(at.UTC().Truncate(time.Millisecond))
}

// SchedulePackitPoll makes the poll at `at` the waiting launch's one live
// poll and queues it.
func (lc *Lifecycle) SchedulePackitPoll(ctx context.Context, l *store.Launch, at time.Time) error {
	return lc.schedulePoll(ctx, l, packitPolls, at.UTC().Truncate(time.Millisecond))
}

// IsLivePoll reports whether a poll job is the waiting launch's one live poll.
func IsLivePoll(l *store.Launch, at time.Time) bool { return packitPolls.isLive(l, at) }

// ScheduleReservationPoll makes the look at `at` the launching launch's one
// live look and queues it. Each look is a short job: no worker waits while
// the Launch service works. The queue runs jobs by the whole second;
// rounding to the nearest one keeps the interval between looks right on
// average (a look may come early: it only asks).
func (lc *Lifecycle) ScheduleReservationPoll(ctx context.Context, l *store.Launch, at time.Time) error {
	return lc.schedulePoll(ctx, l, lc.reservationPolls(), at.UTC().Round(time.Second))
}
