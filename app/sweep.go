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
		reason := reasonExpired + " (found by the sweeper: " + s.Reason + ")"
		l, err := ls.records.GetLaunch(ctx, s.LaunchID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Its record is gone: its tags still say whose PR to tell.
			if vm, ok := EndedVMFromTags(s.InstanceID, s.Tags, now, reason); ok {
				ls.tellEnded(ctx, vm)
			}
		case err == nil && !l.State.Ended():
			if err := ls.ended(ctx, l, reason); err != nil {
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

// stuckAfter is longer than any launch can take, retries included (the
// wait gives up after 35 min; the job's retries back off for about 2 h).
const stuckAfter = 4 * time.Hour

// settleGrace keeps the reconciler off VMs that came up after AWS was listed.
const settleGrace = 10 * time.Minute

// settle repairs records that AWS contradicts: launches stuck in flight (a
// lost job, retries exhausted), and running records whose VM is gone.
func (ls *Launches) settle(ctx context.Context, res provision.SweepResult, now time.Time) {
	byLaunch, byInstance := map[string]ec2.Instance{}, map[string]bool{}
	for _, in := range res.Live {
		byLaunch[in.Tags[ec2.TagLaunch]] = in
		byInstance[in.ID] = true
	}
	active, err := ls.records.ActiveLaunches(ctx)
	if err != nil {
		ls.log.Warn("settle", "err", err)
		return
	}
	for _, l := range active {
		in, isLive := byLaunch[l.ID]
		isLive = isLive || (l.InstanceID != "" && byInstance[l.InstanceID])
		var err error
		switch {
		case l.State == store.StateRunning && !isLive && res.Listed[l.Region] && now.Sub(l.LaunchedAt) > settleGrace:
			err = ls.settleGone(ctx, l, now)
		case (l.State == store.StateAccepted || l.State == store.StateLaunching) && now.Sub(l.CreatedAt) > stuckAfter:
			err = ls.settleStuck(ctx, l, in, isLive, res.Listed[l.Region])
		case l.State == store.StateWaiting && now.Sub(l.PackitPollAt) > 10*ls.PackitPollEvery:
			// Its polls stopped (a worker lost it, or it was never scheduled):
			// poll again; past its wait, the poll ends it.
			ls.log.Warn("settle: a launch waiting for Packit had no poll; polling again", "launch", l.ID)
			err = ls.schedulePackitWait(ctx, l, now)
		}
		if err != nil {
			ls.log.Warn("settle", "launch", l.ID, "err", err)
		}
	}
}

// settleGone ends a running record whose VM AWS no longer lists, after
// asking EC2 about that very instance.
func (ls *Launches) settleGone(ctx context.Context, l *store.Launch, now time.Time) error {
	if _, _, gone, err := ls.prov.Due(ctx, l.Region, l.InstanceID, now); err != nil || !gone {
		return err
	}
	return ls.ended(ctx, l, "its instance was already gone")
}

// settleStuck adopts the VM a stuck launch produced (ending it at once if a
// stop was asked for), or fails the launch when AWS shows none. The PR is
// told when GitHub can be reached; the records never wait for it.
func (ls *Launches) settleStuck(ctx context.Context, l *store.Launch, in ec2.Instance, isLive, listed bool) error {
	stop, err := ls.records.StopRequested(ctx, l.ID)
	if err != nil {
		return err
	}
	switch {
	case isLive:
		saved, err := ls.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
			if x.State.Ended() {
				return store.ErrNoChange
			}
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
		*l = *saved
		if stop != "" {
			if err := ls.prov.Terminate(ctx, l, stop); err != nil {
				return err
			}
		} else if err := ls.schedule(ctx, l); err != nil {
			return err
		}
	case listed:
		ls.prov.CleanUpFailed(ctx, l) // whatever the reservation made after all
		ls.prov.GiveUp(ctx, l, errors.New("the launch never completed"))
	default:
		return nil // AWS did not answer for its region: judge next time
	}
	t, err := ls.thread(ctx, l)
	if err != nil {
		ls.log.Warn("settle: cannot tell the PR", "launch", l.ID, "err", err)
		return nil
	}
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
