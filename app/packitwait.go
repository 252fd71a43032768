package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/store"
)

// startWaiting tells the PR that the launch waits for Packit's build (the
// sticky comment) and starts polling, once: a retried command finds both done.
func (ls *Launches) startWaiting(ctx context.Context, t *Thread, l *store.Launch) error {
	if !l.Reported {
		id, err := t.Post(ctx, l.CommentID, waitingComment(l))
		if err != nil {
			return err
		}
		saved, err := ls.marks.UpdateReport(ctx, l.ID, func(x *store.Report) error {
			x.CommentID, x.Reported = id, true
			return nil
		})
		if err != nil {
			return err
		}
		*l = *saved
	}
	if !l.PackitPollAt.IsZero() {
		return nil
	}
	return ls.lc.SchedulePackitPoll(ctx, l, ls.now().Add(ls.lc.PackitPollEvery))
}

// HandlePackitWait polls the build a waiting launch waits for: a new push or
// a closed PR ends the wait, a failed build fails the launch, a successful
// one is launched once the person may still launch; otherwise it polls
// again, until provision.PackitWaitFor has passed (provision decides; this
// gathers the facts and shows the outcome). A poll that fails (GitHub, Redis)
// does not end the chain: the next poll is scheduled all the same.
func (ls *Launches) HandlePackitWait(ctx context.Context, payload []byte) error {
	var j provision.PackitPoll
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	l, err := ls.lc.Get(ctx, j.LaunchID)
	if err != nil || l == nil {
		return err
	}
	switch {
	case l.State == store.StateAccepted && l.PackitTarget != "" && !l.Reported:
		// An earlier run moved it on but may not have queued its launch.
		return ls.lc.Start(ctx, l)
	case !provision.IsLivePoll(l, j.At):
		return nil // stopped, on its way, or a stale duplicate poll
	}
	err = ls.pollPackit(ctx, l)
	if err == nil || ctx.Err() != nil {
		return err
	}
	ls.log.With(l.LogAttrs()...).Warn("Packit wait: poll failed; polling again", "err", err)
	if serr := ls.lc.SchedulePackitPoll(ctx, l, ls.now().Add(ls.lc.PackitPollEvery)); serr != nil {
		return errors.Join(err, serr) // retried as a job
	}
	return nil
}

// pollPackit is one look at a waiting launch's build.
func (ls *Launches) pollPackit(ctx context.Context, l *store.Launch) error {
	t, err := ls.thread(ctx, l)
	if err != nil {
		return err
	}
	f, err := ls.packitFacts(ctx, t, l)
	if err != nil {
		return err
	}
	now := ls.now()
	switch step := provision.DecidePackitWait(l, f, now); step.Action {
	case provision.PackitCancel:
		return ls.cancelWaiting(ctx, t, l, step.Reason, step.Tell)
	case provision.PackitFail:
		return ls.failWaiting(ctx, t, l, step.Reason, step.Advice)
	case provision.PackitPollAgain:
		return ls.lc.SchedulePackitPoll(ctx, l, now.Add(ls.lc.PackitPollEvery))
	}
	b := f.Build
	waitComment := l.CommentID
	// The answer is a new comment, so that the person hears of it.
	if started, err := ls.lc.BuildReady(ctx, l, b.AMI, b.URL); err != nil || !started {
		return err
	}
	if _, err := t.Post(ctx, waitComment, fmt.Sprintf("%s Packit's build %s of %s finished; launching %s (launch `%s`).",
		mdsafe.Mention(l.Owner), mdsafe.Code("vm-image-build:"+l.PackitTarget), shortSHA(l.PackitSHA), mdsafe.Code(l.Machine), l.ID)); err != nil {
		t.log.Warn("edit the waiting comment", "err", err)
	}
	if err := ls.patchCheckRun(ctx, t, l, "in_progress", "", launchingTitle(l), launchingSummary(l), []*github.CheckRunAction{}, now); err != nil {
		t.log.Warn("show the launch on its check run", "err", err)
	}
	return ls.lc.Start(ctx, l)
}

// packitFacts gathers what the lifecycle decides a waiting launch's next
// step on: a stop asked for, the PR's state and head, the build and, once
// it is ready, whether the person may still launch.
func (ls *Launches) packitFacts(ctx context.Context, t *Thread, l *store.Launch) (provision.PackitFacts, error) {
	var f provision.PackitFacts
	var err error
	if f.Stop, err = ls.lc.StopRequested(ctx, l.ID); err != nil || f.Stop != "" {
		return f, err
	}
	owner, name, _ := strings.Cut(l.Repo, "/")
	pr, _, err := t.gh.PullRequests.Get(ctx, owner, name, l.PR)
	if err != nil {
		return f, fmt.Errorf("get pull request: %w", err)
	}
	f.PROpen, f.HeadSHA = pr.GetState() == "open", pr.GetHead().GetSHA()
	if !f.PROpen || f.HeadSHA != l.PackitSHA {
		return f, nil
	}
	builds, _, err := packitBuilds(ctx, t.gh, l.Repo, l.PackitSHA, l.PackitTarget, ls.cfg.Packit.AppSlugs)
	if err != nil || len(builds) == 0 {
		return f, err
	}
	b := builds[0]
	f.Build = &provision.PackitBuild{Done: b.done(), Succeeded: b.succeeded(), Conclusion: b.Conclusion, Region: b.Region, AMI: b.AMI, URL: b.URL}
	if b.succeeded() {
		f.NotAllowed, f.Advice = ls.mayStillLaunch(ctx, t, l)
	}
	return f, nil
}

// mayStillLaunch re-checks, when the build is done, what a /launch is
// checked for: the instance, the project and the person may have changed
// during the wait. A non-empty why says what stops it.
func (ls *Launches) mayStillLaunch(ctx context.Context, t *Thread, l *store.Launch) (why, advice string) {
	if _, ok := ls.cfg.ProjectFor(l.Repo); !ok {
		return "this repository is no longer trusted by this instance", "Ask its operators."
	}
	if ls.cfg.Paused {
		return "launching is paused by the operators", ls.cfg.PausedMessage
	}
	if ls.lc.Accepting() != nil {
		return "this instance's setup check is failing", "Please tell its operators; comment `/launch` again later."
	}
	err := authorize(ctx, t.gh, ls.cfg, l.Repo, l.Owner, config.ActionLaunch, "")
	var refusal *config.Refusal
	if errors.As(err, &refusal) {
		return "you may no longer launch here", refusal.Reason
	}
	if err != nil {
		return "your permission could not be checked", "Comment `/launch` again in a few minutes."
	}
	return "", ""
}

// cancelWaiting ends a launch that is still waiting (if it moved on
// meanwhile, it is stopped the way a launch is). tell posts a new comment,
// for ends the person did not ask for.
func (ls *Launches) cancelWaiting(ctx context.Context, t *Thread, l *store.Launch, reason string, tell bool) error {
	cancelled, err := ls.lc.CancelWaiting(ctx, l, reason)
	if err != nil || !cancelled || !tell {
		return err
	}
	return t.Comment(ctx, fmt.Sprintf("%s %s", mdsafe.Mention(l.Owner), endedText(l)))
}

// failWaiting ends a waiting launch as failed, saying why and what to do in
// a new comment (the person may have waited hours).
func (ls *Launches) failWaiting(ctx context.Context, t *Thread, l *store.Launch, failure, advice string) error {
	failed, err := ls.lc.FailWaiting(ctx, l, failure, advice)
	if err != nil || !failed {
		return err
	}
	return t.Comment(ctx, failedComment(l))
}
