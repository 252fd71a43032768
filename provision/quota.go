package provision

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
)

// holder is a VM counted against a quota.
type holder struct{ launchID, owner, repo string }

// countHolders is AWS's view of live managed VMs plus launches still in
// flight (they have no instance yet), each counted once.
func (lc *Lifecycle) countHolders(ctx context.Context) ([]holder, error) {
	seen := map[string]bool{}
	var out []holder
	active, err := lc.records.ActiveIndex(ctx)
	if err != nil {
		return nil, err
	}
	// The configured regions only: a region a record still names may refuse
	// access, and must not block every /launch (its records count below).
	live, err := lc.prov.recentFleet(ctx, lc.cfg.Regions())
	if err != nil {
		return nil, err
	}
	// A VM whose tags were overridden or not yet set is known by its
	// instance id, or, while its launch is still coming up, by its template.
	byRef := map[string]store.Active{}
	for _, l := range active {
		for _, ref := range []string{l.InstanceID, l.TemplateID} {
			if ref != "" {
				byRef[ref] = l
			}
		}
	}
	for _, in := range live {
		h := in.holder
		l, ok := byRef[in.id]
		if !ok && in.templateID != "" {
			l, ok = byRef[in.templateID]
		}
		if ok && h.launchID == "" {
			h = holder{launchID: l.ID, owner: l.Owner, repo: l.Repo}
		}
		if h.launchID == "" {
			h.launchID = in.id
		}
		seen[h.launchID] = true
		out = append(out, h)
	}
	for _, l := range active {
		// In flight, or running but not (yet) visible in AWS's listing.
		if !seen[l.ID] && !l.State.Ended() {
			seen[l.ID] = true
			out = append(out, holder{launchID: l.ID, owner: l.Owner, repo: l.Repo})
		}
	}
	return out, nil
}

// fleetFresh is how long one AWS listing serves the quota decisions after
// it: a burst of /launch costs one listing, not one each.
const fleetFresh = 10 * time.Second

// fleetCache keeps the last listing for fleetFresh. It can only count too
// much, never too little: a VM launched since has a live record, counted
// from it; a VM this process ends drops the listing (one another replica
// ends stays counted until the listing is fresh no more).
type fleetCache struct {
	mu       sync.Mutex
	regions  string
	listedAt time.Time
	vms      []fleetVM
}

// fleetVM is what a quota decision needs of a listed VM: kept for
// fleetFresh, it is a tenth of an ec2.Instance (10,000 VMs: 1.5 MB, not 16).
type fleetVM struct {
	id, templateID string
	holder         // from its tags
}

// recentFleet is ListManaged, shared by the calls of the next fleetFresh.
func (p *Provisioner) recentFleet(ctx context.Context, regions []string) ([]fleetVM, error) {
	c, key, now := &p.fleet, strings.Join(regions, ","), p.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.regions == key && !c.listedAt.IsZero() && !now.Before(c.listedAt) && now.Sub(c.listedAt) < fleetFresh {
		return c.vms, nil
	}
	listed, err := p.ListManaged(ctx, regions)
	if err != nil {
		return nil, err
	}
	vms := make([]fleetVM, len(listed))
	for i, in := range listed {
		vms[i] = fleetVM{id: in.ID, templateID: in.LaunchTemplateID,
			holder: holder{launchID: in.Tags.Get(ec2.TagLaunch), owner: in.Tags.Get(ec2.TagOwner), repo: in.Tags.Get(ec2.TagRepo)}}
	}
	c.regions, c.listedAt, c.vms = key, now, vms
	return vms, nil
}

// forget drops the listing: a VM has just ended.
func (c *fleetCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listedAt, c.vms = time.Time{}, nil
}

// checkQuotas refuses a launch that would pass a limit, naming the limit and
// the VMs that hold it. The caller holds the quota lock.
func (lc *Lifecycle) checkQuotas(ctx context.Context, project *config.Project, owner, repo string, lifetime time.Duration, now time.Time) error {
	holders, err := lc.countHolders(ctx)
	if ec2.IsSetupError(err) {
		lc.log.Error("count VMs: AWS refused the bot's access", "err", err)
		return refuse("I cannot launch right now: AWS refused the bot's access (%s) when counting running VMs. This is a problem with the bot's setup, not with your pull request; please tell the operators.", ec2.ErrorCode(err))
	}
	if err != nil {
		return fmt.Errorf("count VMs: %w", err)
	}
	check := func(limit int, what string, match func(holder) bool) error {
		if limit <= 0 {
			return nil
		}
		var ids []string
		for _, h := range holders {
			if match(h) {
				ids = append(ids, mdsafe.Code(h.launchID)) // from AWS tags anyone in the account can set
			}
		}
		if len(ids) < limit {
			return nil
		}
		return refuse("%s %d of %d allowed VMs running (%s). Stop one with `/launch stop ID` or wait for one to end.",
			what, len(ids), limit, strings.Join(ids, ", "))
	}
	if err := check(project.Limits.PerOwner, "You already have", func(h holder) bool { return strings.EqualFold(h.owner, owner) }); err != nil {
		return err
	}
	if err := check(project.Limits.PerRepo, "This repository already has", func(h holder) bool { return strings.EqualFold(h.repo, repo) }); err != nil {
		return err
	}
	if err := check(lc.cfg.Limits.TotalVMs, "This packit-launch instance already has", func(holder) bool { return true }); err != nil {
		return err
	}
	if budget := project.Limits.DailyInstanceHours; budget > 0 {
		used, err := lc.records.InstanceHours(ctx, project.Name(), now)
		if err != nil {
			return err
		}
		if used+lifetime.Hours() > budget {
			return refuse("This project has used %.1f of its %.0f instance-hours for today (UTC), and this launch would need %.1f more. Ask for a shorter `--lifetime`, or try again tomorrow.",
				used, budget, lifetime.Hours())
		}
	}
	return nil
}
