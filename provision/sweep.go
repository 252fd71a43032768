package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
)

// Policy is what the sweeper needs of the server config.
type Policy struct {
	// MaxLifetime returns a profile's maximum lifetime, or the longest of any
	// profile for an unknown one.
	MaxLifetime func(profile string) time.Duration
	// Grace is how long a managed VM without a readable expiry may live.
	Grace time.Duration
}

// Swept is a VM the sweeper terminated.
type Swept struct {
	LaunchID, Region, InstanceID, Reason string
}

// Overdue decides whether a managed instance must end now, and why. Pure.
func Overdue(in ec2.Instance, now time.Time, pol Policy) string {
	exp, expErr := time.Parse(time.RFC3339, in.Tags[ec2.TagExpiresAt])
	hard, hardErr := time.Parse(time.RFC3339, in.Tags[ec2.TagHardExpiresAt])
	switch {
	case expErr == nil && now.After(exp):
		return "expired at " + exp.UTC().Format(time.RFC3339)
	case hardErr == nil && now.After(hard):
		return "past its hard expiry " + hard.UTC().Format(time.RFC3339)
	case !in.LaunchTime.IsZero() && now.After(in.LaunchTime.Add(pol.MaxLifetime(in.Tags[TagProfile]))):
		return "older than its profile's maximum lifetime"
	case expErr != nil && !in.LaunchTime.IsZero() && now.After(in.LaunchTime.Add(pol.Grace)):
		return "no readable expiry tag after the grace period"
	}
	return ""
}

// Sweep terminates every managed VM past its time, in every region, needing
// only AWS. It returns what it terminated and the live VMs it left running.
func (p *Provisioner) Sweep(ctx context.Context, pol Policy, now time.Time) (swept []Swept, live []ec2.Instance, err error) {
	var errs []error
	for _, region := range p.cloud.Regions() {
		instances, err := p.cloud.ListManaged(ctx, region)
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", region, err))
			continue
		}
		for _, in := range instances {
			reason := Overdue(in, now, pol)
			if reason == "" {
				live = append(live, in)
				continue
			}
			if err := p.cloud.Terminate(ctx, region, in.ID); err != nil {
				errs = append(errs, fmt.Errorf("sweep %s: %w", in.ID, err))
				continue
			}
			p.log.Info("sweeper terminated a VM", "launch", in.Tags[ec2.TagLaunch], "instance", in.ID, "region", region, "reason", reason)
			swept = append(swept, Swept{LaunchID: in.Tags[ec2.TagLaunch], Region: region, InstanceID: in.ID, Reason: reason})
		}
	}
	return swept, live, errors.Join(errs...)
}

// LaunchLookup reads launch records (*store.Store).
type LaunchLookup interface {
	GetLaunch(ctx context.Context, id string) (*store.Launch, error)
}

// orphanAge is how old a per-launch template must be before it can go
// without a record saying so (a launch may still be starting).
const orphanAge = 2 * time.Hour

// CleanTemplates deletes per-launch templates whose instance is gone:
// ended launches, and templates older than orphanAge that no live VM uses.
func (p *Provisioner) CleanTemplates(ctx context.Context, recs LaunchLookup, live []ec2.Instance, now time.Time) (deleted int, err error) {
	used := map[string]bool{}
	for _, in := range live {
		used[in.LaunchTemplateID] = true
	}
	var errs []error
	for _, region := range p.cloud.Regions() {
		templates, err := p.cloud.ListManagedTemplates(ctx, region)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, t := range templates {
			if t.LaunchID == "" || used[t.ID] {
				continue // bootstrap base templates carry no launch id
			}
			l, lerr := recs.GetLaunch(ctx, t.LaunchID)
			switch {
			case lerr != nil && !errors.Is(lerr, store.ErrNotFound):
				errs = append(errs, lerr)
				continue
			case lerr == nil && l.State.Ended():
				// its instance is gone: delete now
			case now.Sub(t.CreatedAt) < orphanAge:
				continue // a launch may still be starting from it
			}
			if err := p.cloud.DeleteLaunchTemplate(ctx, region, t.ID); err != nil {
				errs = append(errs, err)
				continue
			}
			deleted++
		}
	}
	return deleted, errors.Join(errs...)
}
