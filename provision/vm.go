package provision

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
)

// cloud is the bot's own AWS access: everything the Launch service cannot do.
type cloud interface {
	EnsureLaunchTemplate(ctx context.Context, region string, in ec2.TemplateInput) (string, time.Time, error)
	DeleteLaunchTemplate(ctx context.Context, region, templateID string) error
	ListManagedTemplates(ctx context.Context, region string) ([]ec2.Template, error)
	TemplateTags(ctx context.Context, region, templateID string) (map[string]string, error)
	TagInstance(ctx context.Context, region, instanceID string, tags map[string]string) error
	Describe(ctx context.Context, region, instanceID string) (*ec2.Instance, error)
	ListManaged(ctx context.Context, region string) ([]ec2.Instance, error)
	LiveFromTemplates(ctx context.Context, region string, templateIDs []string) ([]ec2.Instance, error)
	Terminate(ctx context.Context, region string, instanceIDs ...string) error
	PublicAddress(ctx context.Context, region, instanceID string) (ipv4, dns string, err error)
	ConsoleOutput(ctx context.Context, region, instanceID string) (string, error)
	Regions() []string
}

// TagProfile names the profile a VM was launched under, so the sweeper can
// apply its maximum lifetime without Redis.
const TagProfile = "packit-launch:profile"

// Birth tags that let the sweeper rebuild a running VM's lost record.
const (
	TagInstallation = "packit-launch:installation-id"
	TagComment      = "packit-launch:comment-id" // the /launch comment
	TagSSHUser      = "packit-launch:ssh-user"
	TagMachine      = "packit-launch:machine"
	TagImage        = "packit-launch:image"
	TagKey          = "packit-launch:key"
)

// EarlyTolerance is how early a timer may fire and still terminate: queues
// fire a little early or late.
const EarlyTolerance = 30 * time.Second

// BirthTags are put on the launch template, and through it on the instance
// and its volumes at birth, so a VM carries its own expiry before the bot
// ever sees its id.
func BirthTags(l *store.Launch) map[string]string {
	tags := map[string]string{
		ec2.TagManaged:       "true",
		ec2.TagLaunch:        l.ID,
		ec2.TagRepo:          l.Repo,
		ec2.TagPR:            strconv.Itoa(l.PR),
		ec2.TagOwner:         l.Owner,
		ec2.TagExpiresAt:     formatTime(l.ExpiresAt),
		ec2.TagHardExpiresAt: formatTime(l.HardExpiresAt),
		TagProfile:           l.Profile,
	}
	if l.CheckRunID != 0 {
		tags[ec2.TagCheckRun] = strconv.FormatInt(l.CheckRunID, 10)
	}
	// What a lost record's ready comment needs, so the sweeper can rebuild it.
	for key, value := range map[string]string{TagInstallation: strconv.FormatInt(l.InstallationID, 10), TagComment: strconv.FormatInt(l.CommandCommentID, 10), TagSSHUser: l.SSHUser,
		TagMachine: l.Machine, TagImage: l.Image, TagKey: l.KeyFingerprint} {
		if value != "" && value != "0" && len(value) <= 256 {
			tags[key] = value
		}
	}
	return tags
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// errNoAWS: a provisioner without the bot's own AWS access (tests of the
// Launch service part) cannot act on VMs.
var errNoAWS = errors.New("provision: no AWS access configured")

// ErrStillLaunching means a launch has no VM to act on yet.
var ErrStillLaunching = errors.New("still launching")

// ErrAtHardExpiry means an extension cannot move the expiry any later.
var ErrAtHardExpiry = errors.New("already at its latest possible end")

// Terminate ends a launch's VM and records when and why. Terminating an
// already ended launch does nothing; l is updated to the saved record.
func (p *Provisioner) Terminate(ctx context.Context, l *store.Launch, reason string) error {
	if l.State.Ended() {
		return nil
	}
	if l.InstanceID == "" {
		return ErrStillLaunching
	}
	if p.cloud == nil {
		return errNoAWS
	}
	if err := p.cloud.Terminate(ctx, l.Region, l.InstanceID); err != nil {
		return fmt.Errorf("terminate launch %s: %w", l.ID, err)
	}
	p.log.With(l.LogAttrs()...).Info("launch terminated", "instance", l.InstanceID, "reason", reason)
	p.fleet.forget()
	ended, err := p.markEnded(ctx, l, reason)
	if ended { // counted once, by whoever ended the record
		p.terminated("record")
	}
	return err
}

// markEnded records a launch's VM as gone, unless another writer already
// did; ended says whether this call did.
func (p *Provisioner) markEnded(ctx context.Context, l *store.Launch, reason string) (ended bool, err error) {
	instance, now := l.InstanceID, p.now().UTC()
	saved, err := update(ctx, p.records, l.ID, p.now(), func(x *store.Launch) error {
		if x.State.Ended() {
			ended = false
			return store.ErrNoChange
		}
		ended = true
		x.State, x.EndedAt, x.EndReason = store.StateEnded, now, reason
		if x.InstanceID == "" {
			x.InstanceID = instance
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	*l = *saved
	return ended, nil
}

// EndRecord records that a launch's VM was ended outside the bot (an
// operator's packit-launch vms terminate): the launch ends too, so that its
// quota is free at once and /launch status tells the truth. A record
// already ended, gone, or naming another instance is left; ended says
// whether this call ended it.
func EndRecord(ctx context.Context, st *store.Store, launchID, instanceID, reason string, now time.Time) (ended bool, err error) {
	_, err = update(ctx, st, launchID, now, func(x *store.Launch) error {
		if x.State.Ended() || x.InstanceID != "" && x.InstanceID != instanceID {
			return store.ErrNoChange
		}
		x.State, x.EndedAt, x.EndReason = store.StateEnded, now.UTC(), reason
		x.InstanceID, ended = instanceID, true
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return ended, err
}

// MarkEnded records a launch whose VM is already gone.
func (p *Provisioner) MarkEnded(ctx context.Context, l *store.Launch, reason string) error {
	_, err := p.markEnded(ctx, l, reason)
	return err
}

// Extend moves a running launch's expiry by d from its current expiry,
// never past its hard expiry: the instance's tag first (the sweeper's
// truth), then the record. l is updated to the saved record.
func (p *Provisioner) Extend(ctx context.Context, l *store.Launch, d time.Duration) error {
	cur, err := update(ctx, p.records, l.ID, p.now(), func(*store.Launch) error { return store.ErrNoChange }) // a fresh read
	if err != nil {
		return err
	}
	if cur.State != store.StateRunning {
		if cur.State.Ended() {
			return fmt.Errorf("launch %s has ended", l.ID)
		}
		return ErrStillLaunching
	}
	if p.cloud == nil {
		return errNoAWS
	}
	next := earliest(cur.ExpiresAt.Add(d), cur.HardExpiresAt)
	if !next.After(cur.ExpiresAt) {
		*l = *cur
		return ErrAtHardExpiry
	}
	if err := p.cloud.TagInstance(ctx, cur.Region, cur.InstanceID, map[string]string{ec2.TagExpiresAt: formatTime(next)}); err != nil {
		return fmt.Errorf("extend launch %s: %w", l.ID, err)
	}
	saved, err := update(ctx, p.records, l.ID, p.now(), func(x *store.Launch) error {
		if x.State != store.StateRunning || !next.After(x.ExpiresAt) {
			return store.ErrNoChange
		}
		x.ExpiresAt = next
		return nil
	})
	if err != nil {
		return err
	}
	*l = *saved
	return nil
}

// Due decides, from the instance's own tags, whether a timer that fired now
// should terminate it. It returns the expiry the instance carries; gone
// reports an instance that is already terminated or unknown.
func (p *Provisioner) Due(ctx context.Context, region, instanceID string, now time.Time) (due bool, expiresAt time.Time, gone bool, err error) {
	if p.cloud == nil {
		return false, time.Time{}, false, errNoAWS
	}
	in, err := p.cloud.Describe(ctx, region, instanceID)
	var nf *ec2.NotFoundError
	if errors.As(err, &nf) {
		return false, time.Time{}, true, nil
	}
	if err != nil {
		return false, time.Time{}, false, err
	}
	if in.State == "shutting-down" || in.State == "terminated" {
		return false, time.Time{}, true, nil
	}
	exp, err := time.Parse(time.RFC3339, in.Tags.Get(ec2.TagExpiresAt))
	if err != nil { // no readable expiry: the timer's own time stands
		return true, time.Time{}, false, nil
	}
	if hard, err := time.Parse(time.RFC3339, in.Tags.Get(ec2.TagHardExpiresAt)); err == nil && hard.Before(exp) {
		exp = hard
	}
	return !now.Add(EarlyTolerance).Before(exp), exp, false, nil
}

// InstanceTags are an instance's tags (terminated ones keep theirs for a
// while): what is known of a launch whose record is gone.
func (p *Provisioner) InstanceTags(ctx context.Context, region, instanceID string) (ec2.Tags, error) {
	if p.cloud == nil {
		return nil, errNoAWS
	}
	in, err := p.cloud.Describe(ctx, region, instanceID)
	if err != nil || in == nil {
		return nil, err
	}
	return in.Tags, nil
}

// TerminateInstance ends an instance known only by its tags (its record may
// be gone).
func (p *Provisioner) TerminateInstance(ctx context.Context, region, instanceID string) error {
	if p.cloud == nil {
		return errNoAWS
	}
	if err := p.cloud.Terminate(ctx, region, instanceID); err != nil {
		return err
	}
	p.terminated("timer")
	return nil
}

// CleanUpFailed terminates whatever instance a failed reservation left.
func (p *Provisioner) CleanUpFailed(ctx context.Context, l *store.Launch) {
	if p.cloud == nil || l.ReservationID == 0 {
		return
	}
	res, err := p.api.GetAWSReservation(ctx, l.ReservationID)
	if err != nil {
		p.log.With(l.LogAttrs()...).Warn("failed launch: cannot look for instances to clean up (the sweeper will find them)", "err", err)
		return
	}
	for _, in := range res.Instances {
		if in.ID == "" {
			continue
		}
		if err := p.cloud.Terminate(ctx, l.Region, in.ID); err != nil {
			p.log.With(l.LogAttrs()...).Warn("failed launch: terminate its instance (the sweeper will retry)", "instance", in.ID, "err", err)
			continue
		}
		l.InstanceID = in.ID
		p.terminated("failed_launch")
		p.log.With(l.LogAttrs()...).Info("failed launch: terminated the instance it left", "instance", in.ID)
	}
}

// ListManaged lists the live managed VMs of the given regions: AWS's view.
func (p *Provisioner) ListManaged(ctx context.Context, regions []string) ([]ec2.Instance, error) {
	if p.cloud == nil {
		return nil, errNoAWS
	}
	var all []ec2.Instance
	for _, region := range regions {
		in, err := p.cloud.ListManaged(ctx, region)
		if err != nil {
			return nil, fmt.Errorf("list VMs in %s: %w", region, err)
		}
		all = append(all, in...)
	}
	return all, nil
}

// terminated counts a VM the bot ended, by how, and drops the cached
// listing that still shows it.
func (p *Provisioner) terminated(how string) {
	terminatedTotal.WithLabelValues(how).Inc()
	p.fleet.forget()
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
