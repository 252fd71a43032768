package provision

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/packit/packit-launch/commands"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
)

// Stop ends a launch's VM for reason and shows it on the PR. A launch that
// has asked nothing of the Launch service yet (waiting for its image, or
// accepted) just ends: no reservation is made for it. One with a
// reservation in flight is asked to end as soon as its VM is up
// (ErrStillLaunching). l becomes the saved record.
func (lc *Lifecycle) Stop(ctx context.Context, l *store.Launch, reason string) error {
	if l.State == store.StateWaiting || l.State == store.StateAccepted {
		if cancelled, err := lc.cancel(ctx, l, reason); err != nil || cancelled {
			return err
		}
		// It moved on meanwhile (l is the saved record): stopped as launches are.
	}
	err := lc.prov.Terminate(ctx, l, reason)
	if errors.Is(err, ErrStillLaunching) {
		if rerr := lc.records.RequestStop(ctx, l.ID, reason); rerr != nil {
			return rerr
		}
		// It may have come up between our read and the request.
		fresh, ferr := lc.records.GetLaunch(ctx, l.ID)
		if ferr != nil || fresh.InstanceID == "" || fresh.State.Ended() {
			return err
		}
		*l = *fresh
		err = lc.prov.Terminate(ctx, l, reason)
	}
	if err != nil {
		return err
	}
	return lc.tellEnded(ctx, l)
}

// tellEnded shows an ended launch on its PR: its report edited, or, when
// the wait for sshd held the report back (its launch job left it to the
// report job), the report itself.
func (lc *Lifecycle) tellEnded(ctx context.Context, l *store.Launch) error {
	if !l.Reported && !l.SSH.WaitUntil.IsZero() {
		return lc.enqueueReport(ctx, l)
	}
	return lc.report.Refresh(ctx, l)
}

// cancel ends a launch that has asked nothing of the Launch service yet,
// through the record's guard (the launch job's own step to launching is
// refused once it has ended), and gives back the instance-hours it counted.
// cancelled reports whether it ended here; l becomes the saved record.
func (lc *Lifecycle) cancel(ctx context.Context, l *store.Launch, reason string) (cancelled bool, err error) {
	now := lc.now().UTC()
	var counted bool
	saved, err := update(ctx, lc.records, l.ID, lc.now(), func(x *store.Launch) error {
		cancelled = x.State == store.StateWaiting || x.State == store.StateAccepted
		if !cancelled {
			return store.ErrNoChange
		}
		counted = x.State == store.StateAccepted // a wait counts when its VM is launched
		x.State, x.EndedAt, x.EndReason = store.StateEnded, now, reason
		return nil
	})
	if err != nil {
		return false, err
	}
	*l = *saved
	if !cancelled {
		return false, nil
	}
	if counted {
		lc.countHours(ctx, l, -l.Lifetime)
	}
	lc.log.With(l.LogAttrs()...).Info("launch cancelled before its VM was asked for", "reason", reason)
	return true, lc.report.Refresh(ctx, l)
}

// Abandon fails a launch whose command could not finish starting it (its
// check run could not be opened, its job not queued, GitHub kept failing):
// nothing was asked of the Launch service yet, so it ends here, its quota
// and instance-hours freed, rather than holding them until the reconciler
// finds it. A launch that moved on is left alone; l becomes the saved record.
func (lc *Lifecycle) Abandon(ctx context.Context, l *store.Launch, cause string) error {
	now := lc.now().UTC()
	var abandoned, counted bool
	saved, err := update(ctx, lc.records, l.ID, lc.now(), func(x *store.Launch) error {
		abandoned = x.State == store.StateWaiting || x.State == store.StateAccepted
		if !abandoned {
			return store.ErrNoChange
		}
		counted = x.State == store.StateAccepted
		x.State, x.EndedAt = store.StateFailed, now
		x.Failure, x.FailureAdvice = "the bot could not finish starting it ("+cause+")", "Comment `/launch` again in a few minutes."
		return nil
	})
	if err != nil {
		return err
	}
	*l = *saved
	if abandoned {
		if counted {
			lc.countHours(ctx, l, -l.Lifetime)
		}
		countOutcome(ctx, lc.records, lc.now(), "failed", lc.log.With(l.LogAttrs()...))
		lc.log.With(l.LogAttrs()...).Warn("launch abandoned: its command could not start it", "cause", cause)
	}
	return nil
}

// PRClosed ends a closed PR's launches, unless its repository keeps VMs
// until their expiry (keep_on_close, which the GitHub side read from the
// default branch: a PR must not decide that its own VMs outlive it).
func (lc *Lifecycle) PRClosed(ctx context.Context, repo string, pr int, keepOnClose bool) error {
	if keepOnClose {
		lc.log.Info("PR closed; VMs kept until expiry (keep_on_close)", "repo", repo, "pr", pr)
		return nil
	}
	return lc.EndPR(ctx, repo, pr)
}

// ended records a launch whose VM is already gone and shows it on the PR.
func (lc *Lifecycle) ended(ctx context.Context, l *store.Launch, reason string) error {
	if err := lc.prov.MarkEnded(ctx, l, reason); err != nil {
		return err
	}
	return lc.tellEnded(ctx, l)
}

// stopAll stops each launch, leaving those still in flight to end once up.
func (lc *Lifecycle) stopAll(ctx context.Context, launches []*store.Launch, reason string) error {
	var errs []error
	for _, l := range launches {
		if err := lc.Stop(ctx, l, reason); err != nil && !errors.Is(err, ErrStillLaunching) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// EndPR stops a closed pull request's launches.
func (lc *Lifecycle) EndPR(ctx context.Context, repo string, pr int) error {
	launches, err := lc.records.LaunchesByPR(ctx, repo, pr)
	if err != nil {
		return err
	}
	return lc.stopAll(ctx, liveOnly(launches), ReasonPRClosed)
}

// EndInstallation ends the launches of an installation that is gone, or of
// the repositories removed from it (all of them when repos is empty). The
// App can no longer write to their PRs: the VMs and records end, untold.
func (lc *Lifecycle) EndInstallation(ctx context.Context, installationID int64, repos []string) error {
	index, err := lc.records.ActiveIndex(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range index {
		if a.InstallationID != installationID || len(repos) > 0 && !containsFold(repos, a.Repo) {
			continue
		}
		l, err := lc.Get(ctx, a.ID)
		if err != nil || l == nil || l.State.Ended() {
			errs = append(errs, err)
			continue
		}
		if l.State == store.StateWaiting {
			// No VM yet: end the record only, if it still waits.
			_, err := update(ctx, lc.records, l.ID, lc.now(), func(x *store.Launch) error {
				if x.State != store.StateWaiting {
					return store.ErrNoChange
				}
				x.State, x.EndedAt, x.EndReason = store.StateEnded, lc.now().UTC(), ReasonUninstalled
				return nil
			})
			errs = append(errs, err)
			continue
		}
		err = lc.prov.Terminate(ctx, l, ReasonUninstalled)
		if errors.Is(err, ErrStillLaunching) {
			err = lc.records.RequestStop(ctx, l.ID, ReasonUninstalled)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Extend moves a running launch's expiry by d (its extend step when 0),
// once per delivery: a retried or held job (its answer failed, or one of
// several VMs did) does not extend it again. l becomes the saved record.
// ErrAtHardExpiry: it cannot move; refusals are *config.Refusal.
func (lc *Lifecycle) Extend(ctx context.Context, delivery string, l *store.Launch, d time.Duration, by string) error {
	key := "extend:" + delivery + ":" + l.ID
	first, err := lc.records.FirstNotice(ctx, key, 24*time.Hour)
	if err != nil {
		return err
	}
	if !first {
		return nil
	}
	err = lc.extend(ctx, l, d)
	if err == nil {
		lc.note(ctx, l, "extend", by)
	}
	if err != nil && !errors.Is(err, ErrAtHardExpiry) && !isRefusal(err) {
		// Not applied: let the retry extend it.
		if ferr := lc.records.ForgetNotice(context.WithoutCancel(ctx), key); ferr != nil {
			lc.log.With(l.LogAttrs()...).Warn("forget extension", "err", ferr)
		}
	}
	return err
}

func (lc *Lifecycle) extend(ctx context.Context, l *store.Launch, d time.Duration) error {
	if d == 0 {
		d = l.ExtendStep
	}
	if err := lc.checkBudget(ctx, l, d); err != nil {
		return err
	}
	before := l.ExpiresAt
	if err := lc.prov.Extend(ctx, l, d); err != nil {
		return err
	}
	if err := lc.schedule(ctx, l); err != nil {
		return err
	}
	lc.countHours(ctx, l, l.ExpiresAt.Sub(before))
	if err := lc.report.Refresh(ctx, l); err != nil {
		lc.log.With(l.LogAttrs()...).Warn("refresh after extend", "err", err)
	}
	return nil
}

// checkBudget refuses an extension that would pass its project's daily
// instance-hours.
func (lc *Lifecycle) checkBudget(ctx context.Context, l *store.Launch, d time.Duration) error {
	project, ok := lc.cfg.ProjectFor(l.Repo)
	if !ok || project.Limits.DailyInstanceHours <= 0 {
		return nil
	}
	used, err := lc.records.InstanceHours(ctx, project.Name(), lc.now())
	if err != nil {
		return err
	}
	if used+d.Hours() > project.Limits.DailyInstanceHours {
		return refuse("Extending `%s` by %s would pass this project's %.0f instance-hours for today (UTC; %.1f used).",
			l.ID, commands.FormatDuration(d), project.Limits.DailyInstanceHours, used)
	}
	return nil
}

// CancelWaiting ends a launch still waiting for its image (or accepted and
// not yet launching), through the record's guard: if it moved on
// meanwhile, it is stopped the way a launch is. cancelled reports whether
// it ended here.
func (lc *Lifecycle) CancelWaiting(ctx context.Context, l *store.Launch, reason string) (cancelled bool, err error) {
	cancelled, err = lc.cancel(ctx, l, reason)
	if err != nil || cancelled {
		return cancelled, err
	}
	return false, lc.Stop(ctx, l, reason)
}

// FailWaiting ends a waiting launch as failed; failed reports whether it
// still waited. l becomes the saved record.
func (lc *Lifecycle) FailWaiting(ctx context.Context, l *store.Launch, failure, advice string) (failed bool, err error) {
	now := lc.now().UTC()
	saved, err := update(ctx, lc.records, l.ID, lc.now(), func(x *store.Launch) error {
		failed = x.State == store.StateWaiting
		if !failed {
			return store.ErrNoChange
		}
		x.State, x.Failure, x.FailureAdvice, x.EndedAt = store.StateFailed, failure, advice, now
		return nil
	})
	if err != nil || !failed {
		return false, err
	}
	*l = *saved
	return true, lc.report.Refresh(ctx, l)
}

// BuildReady moves a waiting launch on to launching the image Packit built:
// its lifetime starts now, not when it began to wait, and its outcome will
// be a new comment. started reports whether it still waited; l becomes the
// saved record. The caller starts it (Start) once the PR is told.
func (lc *Lifecycle) BuildReady(ctx context.Context, l *store.Launch, image, buildURL string) (started bool, err error) {
	now := lc.now()
	saved, err := update(ctx, lc.records, l.ID, lc.now(), func(x *store.Launch) error {
		started = x.State == store.StateWaiting
		if !started {
			return store.ErrNoChange
		}
		shift := now.Sub(x.CreatedAt)
		x.CreatedAt, x.ExpiresAt, x.HardExpiresAt = now, x.ExpiresAt.Add(shift), x.HardExpiresAt.Add(shift)
		x.Image, x.PackitBuildURL, x.State, x.Reported, x.CommentID = image, buildURL, store.StateAccepted, false, 0
		return nil
	})
	if err != nil || !started {
		return false, err
	}
	*l = *saved
	lc.log.With(l.LogAttrs()...).Info("Packit's build finished; launching", "image", image, "build", buildURL)
	lc.countHours(ctx, l, l.Lifetime)
	return true, nil
}

// VM is a live VM of the bot's as AWS shows it, for a launch whose record is gone.
type VM struct {
	Region, InstanceID string
	Owner              string // from its tags
	ExpiresAt          string // its expiry tag, as written
	tags               ec2.Tags
}

// FindUnrecorded finds the live VM of a launch whose record is gone; nil if
// there is none.
func (lc *Lifecycle) FindUnrecorded(ctx context.Context, launchID, repo string) (*VM, error) {
	live, err := lc.prov.ListManaged(ctx, lc.cfg.Regions())
	if err != nil {
		return nil, err
	}
	for _, in := range live {
		if in.Tags.Get(ec2.TagLaunch) == launchID && in.Tags.Get(ec2.TagRepo) == repo {
			return &VM{Region: in.Region, InstanceID: in.ID, Owner: in.Tags.Get(ec2.TagOwner), ExpiresAt: in.Tags.Get(ec2.TagExpiresAt), tags: in.Tags}, nil
		}
	}
	return nil, nil
}

// EndUnrecorded terminates a VM found by FindUnrecorded and tells its PR.
func (lc *Lifecycle) EndUnrecorded(ctx context.Context, vm *VM, reason string) error {
	if err := lc.prov.TerminateInstance(ctx, vm.Region, vm.InstanceID); err != nil {
		return err
	}
	lc.log.Info("terminated a VM without a record", "instance", vm.InstanceID, "reason", reason)
	if ended, ok := EndedVMFromTags(vm.InstanceID, vm.tags, lc.now(), reason); ok {
		lc.report.Ended(ctx, ended)
	}
	return nil
}

func liveOnly(ls []*store.Launch) []*store.Launch {
	var out []*store.Launch
	for _, l := range ls {
		if !l.State.Ended() {
			out = append(out, l)
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func isRefusal(err error) bool {
	var refusal *config.Refusal
	return errors.As(err, &refusal)
}
