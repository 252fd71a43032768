package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/store"
)

// JobPackitWait is the queue kind of a poll of the Packit build a waiting
// launch waits for; its timers are the lifecycle's own, not command retries.
const JobPackitWait = "packit-wait"

type packitWaitJob struct {
	LaunchID string `json:"launch_id"`
}

// schedulePackitWait queues the next poll of a waiting launch.
func (ls *Launches) schedulePackitWait(ctx context.Context, l *store.Launch, at time.Time) error {
	payload, _ := json.Marshal(packitWaitJob{LaunchID: l.ID})
	err := ls.queue.EnqueueAt(ctx, store.Job{Kind: JobPackitWait, ID: fmt.Sprintf("packit-wait:%s:%d", l.ID, at.Unix()), Payload: payload,
		Queue: store.QueueLifecycle, MaxRetry: 5}, at)
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		return fmt.Errorf("schedule Packit wait: %w", err)
	}
	return nil
}

// startWaiting tells the PR that the launch waits for Packit's build (the
// sticky comment the answer later replaces) and schedules the first poll.
func (ls *Launches) startWaiting(ctx context.Context, t *Thread, l *store.Launch) error {
	if !l.Reported {
		id, err := t.Post(ctx, l.CommentID, waitingComment(l))
		if err != nil {
			return err
		}
		saved, err := ls.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
			x.CommentID, x.Reported = id, true
			return nil
		})
		if err != nil {
			return err
		}
		*l = *saved
	}
	return ls.schedulePackitWait(ctx, l, ls.now().Add(ls.PackitPollEvery))
}

// HandlePackitWait polls the build a waiting launch waits for: a new push or
// a closed PR ends the wait, a failed build fails the launch, a successful
// one is launched once the person may still launch; otherwise it polls
// again, until packitWaitFor has passed.
func (ls *Launches) HandlePackitWait(ctx context.Context, payload []byte) error {
	var j packitWaitJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	l, err := ls.findLaunch(ctx, j.LaunchID)
	if err != nil || l == nil || l.State != store.StateWaiting {
		return err // gone, stopped, or already on its way
	}
	t, err := ls.thread(ctx, l)
	if err != nil {
		return err
	}
	if reason, err := ls.records.StopRequested(ctx, l.ID); err != nil {
		return err
	} else if reason != "" {
		return ls.ended(ctx, l, reason)
	}
	owner, name, _ := strings.Cut(l.Repo, "/")
	pr, _, err := t.gh.PullRequests.Get(ctx, owner, name, l.PR)
	if err != nil {
		return fmt.Errorf("get pull request: %w", err)
	}
	switch {
	case pr.GetState() != "open":
		return ls.ended(ctx, l, reasonPRClosed)
	case pr.GetHead().GetSHA() != l.PackitSHA:
		return ls.ended(ctx, l, fmt.Sprintf("a new push (%s) replaced the commit whose build it waited for; comment `/launch` again once Packit has built the new one", shortSHA(pr.GetHead().GetSHA())))
	}
	builds, _, err := packitBuilds(ctx, t.gh, l.Repo, l.PackitSHA, l.PackitTarget, ls.cfg.Packit.AppSlugs)
	if err != nil {
		return err
	}
	now := ls.now()
	if len(builds) == 0 || !builds[0].done() {
		if now.Sub(l.CreatedAt) > packitWaitFor {
			return ls.failWaiting(ctx, l, fmt.Sprintf("Packit's build did not finish within %s", packitWaitFor),
				"Comment `/launch` again when the build has finished.")
		}
		return ls.schedulePackitWait(ctx, l, now.Add(ls.PackitPollEvery))
	}
	b := builds[0]
	if !b.succeeded() {
		return ls.failWaiting(ctx, l, fmt.Sprintf("Packit's build ended with %s and reported no AWS image", b.Conclusion),
			"Comment `/packit vm-image-build` to build it again, then `/launch`.")
	}
	// Re-check who asked: access may have changed while it waited.
	err = authorize(ctx, t.gh, ls.cfg, l.Repo, l.Owner, config.ActionLaunch, "")
	var refusal *config.Refusal
	if errors.As(err, &refusal) {
		return ls.failWaiting(ctx, l, "the person who asked may no longer launch here", refusal.Reason)
	}
	if err != nil {
		return err
	}
	if b.Region != l.Region {
		return ls.failWaiting(ctx, l, fmt.Sprintf("Packit built the image in %s, but the machine launches in %s", b.Region, l.Region),
			"A maintainer can set the machine's `region` to the image's (if its profile allows it).")
	}
	started := false
	_, err = ls.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
		if x.State != store.StateWaiting {
			started = false
			return store.ErrNoChange
		}
		// Its lifetime starts now, not when it began to wait.
		shift := now.Sub(x.CreatedAt)
		x.CreatedAt, x.ExpiresAt, x.HardExpiresAt = now, x.ExpiresAt.Add(shift), x.HardExpiresAt.Add(shift)
		x.Image, x.PackitBuildURL, x.State, x.Reported = b.AMI, b.URL, store.StateAccepted, false
		started = true
		return nil
	})
	if err != nil || !started {
		return err
	}
	ls.log.Info("Packit's build finished; launching", "launch", l.ID, "image", b.AMI, "build", b.URL)
	err = ls.queue.Enqueue(ctx, store.Job{Kind: JobLaunch, ID: "launch:" + l.ID, Payload: []byte(l.ID), Queue: store.QueueLifecycle, MaxRetry: ls.MaxRetry})
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		return err
	}
	return nil
}

// failWaiting ends a waiting launch as failed, saying why and what to do.
func (ls *Launches) failWaiting(ctx context.Context, l *store.Launch, failure, advice string) error {
	now := ls.now().UTC()
	saved, err := ls.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
		if x.State != store.StateWaiting {
			return store.ErrNoChange
		}
		x.State, x.Failure, x.FailureAdvice, x.EndedAt = store.StateFailed, failure, advice, now
		return nil
	})
	if err != nil {
		return err
	}
	if saved.State != store.StateFailed {
		return nil
	}
	return ls.refresh(ctx, saved)
}
