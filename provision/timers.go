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
	return lc.report.Warn(ctx, l)
}

// PackitPoll is the job of one poll of a waiting launch's build.
type PackitPoll struct {
	LaunchID string    `json:"launch_id"`
	At       time.Time `json:"at"` // the poll this job is; see store.Launch.PackitPollAt
}

// SchedulePackitPoll makes the poll at `at` the waiting launch's one live
// poll (an older one still queued then does nothing) and queues it.
func (lc *Lifecycle) SchedulePackitPoll(ctx context.Context, l *store.Launch, at time.Time) error {
	at = at.UTC().Truncate(time.Millisecond)
	saved, err := update(ctx, lc.records, l.ID, lc.now(), func(x *store.Launch) error {
		if x.State != store.StateWaiting {
			return store.ErrNoChange
		}
		x.PackitPollAt = at
		return nil
	})
	if err != nil {
		return err
	}
	*l = *saved
	if l.State != store.StateWaiting {
		return nil
	}
	payload, _ := json.Marshal(PackitPoll{LaunchID: l.ID, At: at})
	err = lc.queue.EnqueueAt(ctx, store.Job{Kind: JobPackitWait, ID: fmt.Sprintf("packit-wait:%s:%d", l.ID, at.UnixMilli()), Payload: payload,
		Queue: store.QueueLifecycle, MaxRetry: 5}, at)
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		return fmt.Errorf("schedule Packit wait: %w", err)
	}
	return nil
}

// IsLivePoll reports whether a poll job is the waiting launch's one live poll.
func IsLivePoll(l *store.Launch, at time.Time) bool {
	return l.State == store.StateWaiting && l.PackitPollAt.Equal(at.UTC().Truncate(time.Millisecond))
}

// ReservationPoll is the job of one look at a launching launch's reservation.
type ReservationPoll struct {
	LaunchID string    `json:"launch_id"`
	At       time.Time `json:"at"` // the look this job is; see store.Launch.ReservationPollAt
}

// ScheduleReservationPoll makes the look at `at` the launching launch's one
// live poll and queues it. Each look is a short job: no worker waits while
// the Launch service works.
func (lc *Lifecycle) ScheduleReservationPoll(ctx context.Context, l *store.Launch, at time.Time) error {
	// The queue runs jobs by the whole second; rounding to the nearest one
	// keeps the interval between looks right on average (a look may come
	// early: it only asks).
	at = at.UTC().Round(time.Second)
	saved, err := update(ctx, lc.records, l.ID, lc.now(), func(x *store.Launch) error {
		if x.State != store.StateLaunching || x.ReservationID == 0 {
			return store.ErrNoChange
		}
		x.ReservationPollAt = at
		return nil
	})
	if err != nil {
		return err
	}
	*l = *saved
	if !IsLiveReservationPoll(l, at) {
		return nil
	}
	payload, _ := json.Marshal(ReservationPoll{LaunchID: l.ID, At: at})
	err = lc.queue.EnqueueAt(ctx, store.Job{Kind: JobReservationPoll, ID: fmt.Sprintf("reservation-poll:%s:%d", l.ID, at.UnixMilli()), Payload: payload,
		Queue: store.QueueLifecycle, MaxRetry: lc.MaxRetry}, at)
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		return fmt.Errorf("schedule a look at the reservation: %w", err)
	}
	return nil
}

// IsLiveReservationPoll reports whether a look is the launch's one live poll.
func IsLiveReservationPoll(l *store.Launch, at time.Time) bool {
	return l.State == store.StateLaunching && l.ReservationID != 0 && l.ReservationPollAt.Equal(at.UTC().Truncate(time.Millisecond))
}
