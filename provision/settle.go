package provision

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
)

// RunSweeper sweeps every interval until ctx ends. Every replica runs one:
// the AWS part needs no coordination, the Redis part takes a lock.
func (lc *Lifecycle) RunSweeper(ctx context.Context, interval time.Duration) {
	lc.Sweep(ctx)
	Every(ctx, interval, lc.Sweep)
}

// Every runs fn every interval until ctx ends, the first time one interval from now.
func Every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

// Sweep ends every VM past its time using AWS alone, then, when Redis
// answers, brings records, timers and templates in line with AWS.
//
// It reads the live launches' one-line summaries, not their records: at
// 10,000 launches the records held 10 MB more for the sweep's length.
// Records are read only for launches not running with a listed VM (settle)
// and for VMs whose timers or trust reconcile must act on.
func (lc *Lifecycle) Sweep(ctx context.Context) {
	now := lc.now()
	active, activeErr := lc.records.ActiveIndex(ctx)
	if activeErr != nil {
		lc.log.Warn("sweep: Redis unavailable; sweeping AWS anyway", "err", activeErr)
	}
	res, err := lc.prov.Sweep(ctx, lc.regions(active), PolicyFor(lc.cfg), now)
	if err != nil {
		lc.log.Error("sweep", "err", err)
	}
	unlock, err := lc.records.TryLock(ctx, "sweeper", 5*time.Minute)
	if err != nil {
		if !errors.Is(err, store.ErrLocked) { // locked: another replica does the Redis part
			lc.log.Warn("sweep: Redis unavailable; AWS was swept anyway", "err", err)
		}
		return
	}
	defer unlock()
	for _, d := range res.Denied {
		// Once a day per VM: the log and the metric say it every sweep.
		if _, err := lc.records.TryLock(ctx, "denied-told:"+d.InstanceID, 24*time.Hour); err != nil {
			continue
		}
		if vm, ok := EndedVMFromTags(d.InstanceID, d.Tags, now, d.Reason); ok {
			lc.report.Denied(ctx, vm)
		}
	}
	for _, s := range res.Swept {
		reason := ReasonExpired + " (found by the sweeper: " + s.Reason + ")"
		l, err := lc.records.GetLaunch(ctx, s.LaunchID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Its record is gone: its tags still say whose PR to tell.
			if vm, ok := EndedVMFromTags(s.InstanceID, s.Tags, now, reason); ok {
				lc.report.Ended(ctx, vm)
			}
		case err == nil && !l.State.Ended():
			if err := lc.ended(ctx, l, reason); err != nil {
				lc.log.With(l.LogAttrs()...).Warn("sweep: report", "err", err)
			}
		}
	}
	if activeErr != nil {
		return // records, timers and templates are judged against the records
	}
	// Records read before AWS was listed: what came up since waits for the
	// next sweep, and what the sweeper just ended is done.
	active = slices.DeleteFunc(active, func(a store.Active) bool {
		return slices.ContainsFunc(res.Swept, func(s Swept) bool { return s.LaunchID == a.ID })
	})
	lc.reconcile(ctx, active, res.Live)
	lc.settle(ctx, active, res, now)
	lc.adoptOrphans(ctx, active, res.Live, now)
	if n, err := lc.prov.CleanTemplates(ctx, lc.records, active, res, now); err != nil {
		lc.log.Warn("sweep: templates", "err", err)
	} else if n > 0 {
		lc.log.Info("sweep: deleted launch templates", "count", n)
	}
	// Pubkeys once a day: the lock is left to expire, not released.
	if _, err := lc.records.TryLock(ctx, "pubkey-cleanup", 24*time.Hour); err == nil {
		if n, err := lc.prov.CleanPubkeys(ctx, lc.records); err != nil {
			lc.log.Warn("sweep: pubkeys", "err", err)
		} else if n > 0 {
			lc.log.Info("sweep: deleted pubkeys unused for 30 days", "count", n)
		}
	}
}

// regions are those the config allows plus any a live record still names:
// a VM launched under an older config must still be found and ended.
func (lc *Lifecycle) regions(active []store.Active) []string {
	regions := lc.cfg.Regions()
	for _, a := range active {
		if a.Region != "" && !slices.Contains(regions, a.Region) {
			regions = append(regions, a.Region)
		}
	}
	return regions
}

// stuckAfter is longer than any launch can take, retries included (the
// wait gives up after 35 min; the job's retries back off for about 2 h).
const stuckAfter = 4 * time.Hour

// reservationPollStalled is when a launch's looks at its reservation count
// as lost: well past the longest interval between looks and a job's lease.
const reservationPollStalled = 10 * time.Minute

// settleGrace keeps the reconciler off VMs that came up after AWS was listed.
const settleGrace = 10 * time.Minute

// settle repairs records that AWS contradicts: launches stuck in flight (a
// lost job, retries exhausted), and running records whose VM is gone.
//
// A summary has neither LaunchedAt nor PackitPollAt, so the records of every
// launch not running with a listed VM are read (a round trip per 1,000: in
// flight and waiting launches are few). Reading them also drops from the
// live index any whose record is gone, so that no quota counts it.
func (lc *Lifecycle) settle(ctx context.Context, active []store.Active, res SweepResult, now time.Time) {
	byLaunch, byInstance := map[string]int{}, map[string]bool{}
	for i, in := range res.Live {
		byLaunch[in.Tags.Get(ec2.TagLaunch)] = i
		byInstance[in.ID] = true
	}
	listed := func(launchID, instanceID string) (ec2.Instance, bool) {
		if i, ok := byLaunch[launchID]; ok {
			return res.Live[i], true
		}
		return ec2.Instance{}, instanceID != "" && byInstance[instanceID]
	}
	var ids []string
	for _, a := range active {
		sshStalled := !a.SSHPollAt.IsZero() && now.Sub(a.SSHPollAt) > sshPollStalled
		if _, isLive := listed(a.ID, a.InstanceID); a.State != store.StateRunning || !isLive || sshStalled {
			ids = append(ids, a.ID)
		}
	}
	records, err := lc.records.LiveRecords(ctx, ids)
	if err != nil {
		lc.log.Warn("settle: read records", "err", err)
		return
	}
	for _, l := range records {
		in, isLive := listed(l.ID, l.InstanceID)
		var err error
		switch {
		case l.State == store.StateRunning && !isLive && res.Listed[l.Region] && now.Sub(l.LaunchedAt) > settleGrace:
			err = lc.settleGone(ctx, l, now)
		case (l.State == store.StateAccepted || l.State == store.StateLaunching) && now.Sub(l.CreatedAt) > stuckAfter:
			err = lc.settleStuck(ctx, l, in, isLive, res.Listed[l.Region])
		case l.State == store.StateLaunching && l.ReservationID != 0 && now.Sub(l.ReservationPollAt) > reservationPollStalled:
			// Its looks stopped (a worker lost the job, or its retries ran
			// out): look again; past the wait's limit, the look fails it.
			lc.log.With(l.LogAttrs()...).Warn("settle: a launching launch had no look at its reservation; looking again")
			err = lc.ScheduleReservationPoll(ctx, l, now)
		case l.State == store.StateRunning && !l.SSH.PollAt.IsZero() && now.Sub(l.SSH.PollAt) > sshPollStalled:
			// Its looks at sshd stopped (a job lost in a failover): the
			// ready comment may wait on them.
			lc.log.With(l.LogAttrs()...).Warn("settle: a running VM had no look at its sshd; looking again")
			err = lc.resumeSSH(ctx, l, now)
		case l.State == store.StateWaiting && now.Sub(l.PackitPollAt) > 10*lc.PackitPollEvery:
			// Its polls stopped (a worker lost it, or it was never scheduled):
			// poll again; past its wait, the poll ends it.
			lc.log.With(l.LogAttrs()...).Warn("settle: a launch waiting for Packit had no poll; polling again")
			err = lc.SchedulePackitPoll(ctx, l, now)
		}
		if err != nil {
			lc.log.With(l.LogAttrs()...).Warn("settle", "err", err)
		}
	}
}

// settleGone ends a running record whose VM AWS no longer lists, after
// asking EC2 about that very instance.
func (lc *Lifecycle) settleGone(ctx context.Context, l *store.Launch, now time.Time) error {
	if _, _, gone, err := lc.prov.Due(ctx, l.Region, l.InstanceID, now); err != nil || !gone {
		return err
	}
	return lc.ended(ctx, l, reasonGone)
}

// settleStuck adopts the VM a stuck launch produced (ending it at once if a
// stop was asked for), or fails the launch when AWS shows none. The PR is
// told when GitHub can be reached; the records never wait for it.
func (lc *Lifecycle) settleStuck(ctx context.Context, l *store.Launch, in ec2.Instance, isLive, listed bool) error {
	stop, err := lc.records.StopRequested(ctx, l.ID)
	if err != nil {
		return err
	}
	switch {
	case isLive:
		saved, err := update(ctx, lc.records, l.ID, lc.now(), func(x *store.Launch) error {
			if x.State.Ended() {
				return store.ErrNoChange
			}
			x.State, x.InstanceID, x.PublicIPv4, x.PublicDNS, x.PrivateIPv4 = store.StateRunning, in.ID, in.PublicIPv4, in.PublicDNS, in.PrivateIPv4
			x.LaunchedAt = in.LaunchTime
			if exp, err := time.Parse(time.RFC3339, in.Tags.Get(ec2.TagExpiresAt)); err == nil {
				x.ExpiresAt = exp
			}
			return nil
		})
		if err != nil {
			return err
		}
		lc.log.With(l.LogAttrs()...).Info("settle: adopted the VM of a stuck launch", "instance", in.ID)
		*l = *saved
		// Reported at once, without the wait for sshd: a launch stuck for
		// hours has had its VM up long since.
		if stop != "" {
			if err := lc.prov.Terminate(ctx, l, stop); err != nil {
				return err
			}
		} else if err := lc.schedule(ctx, l); err != nil {
			return err
		}
	case listed:
		lc.prov.CleanUpFailed(ctx, l) // whatever the reservation made after all
		lc.prov.GiveUp(ctx, l, errors.New("the launch never completed"))
	default:
		return nil // AWS did not answer for its region: judge next time
	}
	return lc.report.Outcome(ctx, l)
}

// reconcile re-creates missing timers for live VMs and ends the VMs of
// projects the config no longer trusts. A running record whose expiry is the
// one its VM carries had its timers set when it came up or was extended;
// the others (a record lost, an expiry moved elsewhere) are timed by tags.
// The sweeper itself ends whatever is overdue, timers or not.
func (lc *Lifecycle) reconcile(ctx context.Context, active []store.Active, live []ec2.Instance) {
	summaries := make(map[string]store.Active, len(active))
	for _, a := range active {
		summaries[a.ID] = a
	}
	for _, in := range live {
		id := in.Tags.Get(ec2.TagLaunch)
		exp, err := time.Parse(time.RFC3339, in.Tags.Get(ec2.TagExpiresAt))
		if id == "" || err != nil {
			continue // the sweeper's grace rule handles it
		}
		a, ok := summaries[id]
		_, trusted := lc.cfg.ProjectFor(in.Tags.Get(ec2.TagRepo))
		if trusted && ok && a.State == store.StateRunning && a.ExpiresAt.Unix() == exp.Unix() { // tags hold seconds, as timer ids do
			continue
		}
		if !ok {
			// No live record: time it by its tags.
			lc.scheduleTimed(ctx, &store.Launch{ID: id, Region: in.Region, InstanceID: in.ID}, in, exp)
			continue
		}
		l, err := lc.records.GetLaunch(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && l.State.Ended()) {
			lc.dropStale(ctx, id) // and, as without a record, timed by its tags
			lc.scheduleTimed(ctx, &store.Launch{ID: id, Region: in.Region, InstanceID: in.ID}, in, exp)
			continue
		}
		if err != nil {
			lc.log.Warn("sweep: read launch", "launch", id, "err", err)
			continue
		}
		if !trusted && l.Repo != "" {
			if err := lc.Stop(ctx, l, ReasonUntrusted); err != nil {
				lc.log.Warn("sweep: end untrusted VM", "launch", id, "err", err)
			}
			continue
		}
		if l.State == store.StateRunning && l.ExpiresAt.Unix() == exp.Unix() {
			continue // a summary written before it kept the expiry
		}
		lc.scheduleTimed(ctx, l, in, exp)
	}
}

// dropStale takes a launch whose record is gone or ended out of the live
// index (ended since the summaries were read: it is out already).
func (lc *Lifecycle) dropStale(ctx context.Context, id string) {
	if err := lc.records.DropStale(ctx, id); err != nil {
		lc.log.Warn("sweep: drop a stale live entry", "launch", id, "err", err)
	}
}

// scheduleTimed sets l's timers for the expiry its VM carries.
func (lc *Lifecycle) scheduleTimed(ctx context.Context, l *store.Launch, in ec2.Instance, exp time.Time) {
	timed := *l
	timed.ExpiresAt = exp
	if timed.InstanceID == "" {
		timed.InstanceID, timed.Region = in.ID, in.Region
	}
	if err := lc.schedule(ctx, &timed); err != nil {
		lc.log.Warn("sweep: timer", "launch", l.ID, "err", err)
	}
}
