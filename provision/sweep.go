package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/packit/packit-launch/config"
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

// PolicyFor is the sweep policy of a server config.
func PolicyFor(cfg *config.Server) Policy {
	return Policy{
		MaxLifetime: func(profile string) time.Duration {
			if p, ok := cfg.Profiles[profile]; ok {
				return p.MaxLifetime.D()
			}
			return cfg.MaxLifetime()
		},
		Grace: cfg.SweepGrace.D(),
	}
}

// Swept is a VM the sweeper terminated.
type Swept struct {
	LaunchID, Region, InstanceID, Reason string
	Tags                                 ec2.Tags // the instance's: they tell its PR when the record is gone
}

// Overdue decides whether a managed instance must end now, and why. Pure.
func Overdue(in ec2.Instance, now time.Time, pol Policy) string {
	exp, expErr := time.Parse(time.RFC3339, in.Tags.Get(ec2.TagExpiresAt))
	hard, hardErr := time.Parse(time.RFC3339, in.Tags.Get(ec2.TagHardExpiresAt))
	switch {
	case expErr == nil && now.After(exp):
		return "expired at " + exp.UTC().Format(time.RFC3339)
	case hardErr == nil && now.After(hard):
		return "past its hard expiry " + hard.UTC().Format(time.RFC3339)
	case !in.LaunchTime.IsZero() && now.After(in.LaunchTime.Add(pol.MaxLifetime(in.Tags.Get(TagProfile)))):
		return "older than its profile's maximum lifetime"
	case expErr != nil && !in.LaunchTime.IsZero() && now.After(in.LaunchTime.Add(pol.Grace)):
		return "no readable expiry tag after the grace period"
	}
	return ""
}

// SweepResult is what a sweep did and saw.
type SweepResult struct {
	Swept []Swept
	// Live are the managed VMs left running; Listed the regions whose
	// listing succeeded (only those may be judged by what is missing).
	Live   []ec2.Instance
	Listed map[string]bool
	// Denied are VMs past their time that AWS refused to terminate.
	Denied []Swept
}

// Sweep terminates every managed VM past its time in the given regions
// (the configured ones, plus any region a launch record still names),
// needing only AWS.
func (p *Provisioner) Sweep(ctx context.Context, regions []string, pol Policy, now time.Time) (SweepResult, error) {
	res := SweepResult{Listed: map[string]bool{}}
	if p.cloud == nil {
		return res, errNoAWS
	}
	var errs []error
	for _, region := range regions {
		instances, err := p.cloud.ListManaged(ctx, region)
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", region, err))
			continue
		}
		res.Listed[region] = true
		for _, in := range instances {
			reason := Overdue(in, now, pol)
			if reason == "" {
				res.Live = append(res.Live, in)
				continue
			}
			if err := p.cloud.Terminate(ctx, region, in.ID); err != nil {
				errs = append(errs, fmt.Errorf("sweep %s: %w", in.ID, err))
				if ec2.IsSetupError(err) {
					// Every sweep tries again, loudly: the VM runs (and costs)
					// until an operator ends it or fixes the policy.
					terminateDeniedTotal.Inc()
					p.log.Error("AWS denied terminating a VM past its time: end it by hand (packit-launch vms terminate) and check the run-time policy (deploy/iam-policy.json)",
						"launch", in.Tags.Get(ec2.TagLaunch), "instance", in.ID, "region", region, "reason", reason, "code", ec2.ErrorCode(err))
					res.Denied = append(res.Denied, Swept{LaunchID: in.Tags.Get(ec2.TagLaunch), Region: region, InstanceID: in.ID, Reason: reason, Tags: in.Tags})
				}
				continue
			}
			p.terminated("sweeper")
			p.log.Info("sweeper terminated a VM", "launch", in.Tags.Get(ec2.TagLaunch), "instance", in.ID, "region", region, "reason", reason)
			res.Swept = append(res.Swept, Swept{LaunchID: in.Tags.Get(ec2.TagLaunch), Region: region, InstanceID: in.ID, Reason: reason, Tags: in.Tags})
		}
	}
	if err := errors.Join(errs...); err != nil {
		sweepsTotal.WithLabelValues("error").Inc()
		return res, err
	}
	sweepsTotal.WithLabelValues("ok").Inc()
	sweepLastSuccess.Set(float64(p.now().Unix()))
	managedVMs.Set(float64(len(res.Live)))
	return res, nil
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
// active are the live launch records; only templates younger than
// orphanAge of other launches are looked up one by one. Only regions whose
// listing succeeded are judged, and a template is deleted only once EC2
// confirms that no live instance was launched from it.
func (p *Provisioner) CleanTemplates(ctx context.Context, recs LaunchLookup, active []store.Active, res SweepResult, now time.Time) (deleted int, err error) {
	used := map[string]bool{}
	for _, in := range res.Live {
		used[in.LaunchTemplateID] = true
	}
	live := make(map[string]store.State, len(active))
	for _, a := range active {
		live[a.ID] = a.State
	}
	var errs []error
	for region := range res.Listed {
		templates, err := p.cloud.ListManagedTemplates(ctx, region)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var doomed []string
		for _, t := range templates {
			if t.LaunchID == "" || used[t.ID] {
				continue // bootstrap base templates carry no launch id
			}
			gone, err := templateGone(ctx, recs, live, t, now)
			if err != nil {
				errs = append(errs, err)
			} else if gone {
				doomed = append(doomed, t.ID)
			}
		}
		n, err := p.deleteTemplates(ctx, region, doomed)
		deleted += n
		errs = append(errs, err)
	}
	return deleted, errors.Join(errs...)
}

// templateGone decides whether a per-launch template no listed VM uses can go.
func templateGone(ctx context.Context, recs LaunchLookup, live map[string]store.State, t ec2.Template, now time.Time) (bool, error) {
	if state, ok := live[t.LaunchID]; ok {
		inFlight := state == store.StateAccepted || state == store.StateLaunching
		return !inFlight && now.Sub(t.CreatedAt) >= orphanAge, nil // in flight: the reconciler settles it first
	}
	if now.Sub(t.CreatedAt) >= orphanAge {
		return true, nil
	}
	l, err := recs.GetLaunch(ctx, t.LaunchID) // young: only an ended record lets it go now
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // a launch may still be starting from it
	}
	return err == nil && l.State.Ended(), err
}

// deleteTemplates deletes templates, except those EC2 still shows a live
// instance of (one ListManaged did not list: its tags lost while a sibling
// was found by its own): those stay, so that the next listing finds it.
func (p *Provisioner) deleteTemplates(ctx context.Context, region string, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	stillUsed, err := p.cloud.LiveFromTemplates(ctx, region, ids)
	if err != nil {
		return 0, err
	}
	keep := map[string]bool{}
	for _, in := range stillUsed {
		keep[in.LaunchTemplateID] = true
		p.log.Warn("a VM the listing missed runs from a template about to be deleted; the template stays so that the next sweep finds it", "instance", in.ID, "template", in.LaunchTemplateID, "region", region)
	}
	var errs []error
	deleted := 0
	for _, id := range ids {
		if keep[id] {
			continue
		}
		if err := p.cloud.DeleteLaunchTemplate(ctx, region, id); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
}
