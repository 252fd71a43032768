package app

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
)

// RunSweeper sweeps every interval until ctx ends. Every replica runs one:
// the AWS part needs no coordination, the Redis part takes a lock.
func (ls *Launches) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ls.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep ends every VM past its time using AWS alone, then, when Redis
// answers, brings records, timers and templates in line with AWS.
func (ls *Launches) Sweep(ctx context.Context) {
	now := ls.now()
	active, err := ls.records.ActiveLaunches(ctx)
	if err != nil {
		ls.log.Warn("sweep: Redis unavailable; sweeping AWS anyway", "err", err)
	}
	res, err := ls.prov.Sweep(ctx, ls.regions(active), provision.PolicyFor(ls.cfg), now)
	if err != nil {
		ls.log.Error("sweep", "err", err)
	}
	unlock, err := ls.records.TryLock(ctx, "sweeper", 5*time.Minute)
	if err != nil {
		if !errors.Is(err, store.ErrLocked) { // locked: another replica does the Redis part
			ls.log.Warn("sweep: Redis unavailable; AWS was swept anyway", "err", err)
		}
		return
	}
	defer unlock()
	for _, s := range res.Swept {
		if l, err := ls.records.GetLaunch(ctx, s.LaunchID); err == nil && !l.State.Ended() {
			if err := ls.ended(ctx, l, reasonExpired+" (found by the sweeper: "+s.Reason+")"); err != nil {
				ls.log.Warn("sweep: report", "launch", l.ID, "err", err)
			}
		}
	}
	ls.reconcile(ctx, res.Live, now)
	ls.settle(ctx, res, now)
	if n, err := ls.prov.CleanTemplates(ctx, ls.records, res, now); err != nil {
		ls.log.Warn("sweep: templates", "err", err)
	} else if n > 0 {
		ls.log.Info("sweep: deleted launch templates", "count", n)
	}
	// Pubkeys once a day: the lock is left to expire, not released.
	if _, err := ls.records.TryLock(ctx, "pubkey-cleanup", 24*time.Hour); err == nil {
		if n, err := ls.prov.CleanPubkeys(ctx, ls.records); err != nil {
			ls.log.Warn("sweep: pubkeys", "err", err)
		} else if n > 0 {
			ls.log.Info("sweep: deleted pubkeys unused for 30 days", "count", n)
		}
	}
}

// regions are those the config allows plus any a live record still names:
// a VM launched under an older config must still be found and ended.
func (ls *Launches) regions(active []*store.Launch) []string {
	regions := ls.cfg.Regions()
	for _, l := range active {
		if l.Region != "" && !slices.Contains(regions, l.Region) {
			regions = append(regions, l.Region)
		}
	}
	return regions
}

// stuckAfter is longer than any launch can take (the wait gives up after 35 min).
const stuckAfter = 45 * time.Minute

// settle repairs records that AWS contradicts: launches stuck in flight (a
// lost job, retries exhausted), and running records whose VM is gone.
func (ls *Launches) settle(ctx context.Context, res provision.SweepResult, now time.Time) {
	live := map[string]ec2.Instance{}
	for _, in := range res.Live {
		live[in.Tags[ec2.TagLaunch]] = in
	}
	active, err := ls.records.ActiveLaunches(ctx)
	if err != nil {
		ls.log.Warn("settle", "err", err)
		return
	}
	for _, l := range active {
		in, isLive := live[l.ID]
		var err error
		switch {
		case l.State == store.StateRunning && !isLive && res.Listed[l.Region]:
			err = ls.ended(ctx, l, "its instance was already gone")
		case (l.State == store.StateAccepted || l.State == store.StateLaunching) && now.Sub(l.CreatedAt) > stuckAfter:
			err = ls.settleStuck(ctx, l, in, isLive, res.Listed[l.Region])
		}
		if err != nil {
			ls.log.Warn("settle", "launch", l.ID, "err", err)
		}
	}
}

// settleStuck adopts the VM a stuck launch produced, or fails it when AWS
// shows none, and tells the PR either way.
func (ls *Launches) settleStuck(ctx context.Context, l *store.Launch, in ec2.Instance, isLive, listed bool) error {
	t, err := ls.thread(ctx, l)
	if err != nil {
		return err
	}
	if isLive {
		saved, err := ls.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
			x.State, x.InstanceID, x.PublicIPv4, x.PublicDNS, x.PrivateIPv4 = store.StateRunning, in.ID, in.PublicIPv4, in.PublicDNS, in.PrivateIPv4
			x.LaunchedAt = in.LaunchTime
			if exp, err := time.Parse(time.RFC3339, in.Tags[ec2.TagExpiresAt]); err == nil {
				x.ExpiresAt = exp
			}
			return nil
		})
		if err != nil {
			return err
		}
		ls.log.Info("settle: adopted the VM of a stuck launch", "launch", l.ID, "instance", in.ID)
		if err := ls.schedule(ctx, saved); err != nil {
			return err
		}
		return ls.reportOnce(ctx, t, saved)
	}
	if !listed {
		return nil // AWS did not answer for its region: judge next time
	}
	ls.prov.GiveUp(ctx, l, errors.New("the launch never completed"))
	return ls.reportOnce(ctx, t, l)
}

// reconcile re-creates missing timers for live VMs and ends the VMs of
// projects the config no longer trusts.
func (ls *Launches) reconcile(ctx context.Context, live []ec2.Instance, now time.Time) {
	for _, in := range live {
		id := in.Tags[ec2.TagLaunch]
		exp, err := time.Parse(time.RFC3339, in.Tags[ec2.TagExpiresAt])
		if id == "" || err != nil {
			continue // the sweeper's grace rule handles it
		}
		l, err := ls.records.GetLaunch(ctx, id)
		if err != nil {
			l = &store.Launch{ID: id, Region: in.Region, InstanceID: in.ID} // the record was lost: time by tags
		}
		if _, trusted := ls.cfg.ProjectFor(in.Tags[ec2.TagRepo]); !trusted && l.Repo != "" {
			if err := ls.terminate(ctx, l, reasonUntrusted); err != nil {
				ls.log.Warn("sweep: end untrusted VM", "launch", id, "err", err)
			}
			continue
		}
		l.ExpiresAt = exp
		if l.InstanceID == "" {
			l.InstanceID, l.Region = in.ID, in.Region
		}
		if err := ls.schedule(ctx, l); err != nil {
			ls.log.Warn("sweep: timer", "launch", id, "err", err)
		}
	}
}
