package app

import (
	"context"
	"errors"
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
	swept, live, err := ls.prov.Sweep(ctx, ls.sweepPolicy(), now)
	if err != nil {
		ls.log.Error("sweep", "err", err)
	}
	unlock, err := ls.records.TryLock(ctx, "sweeper", time.Minute)
	if errors.Is(err, store.ErrLocked) {
		return // another replica does the Redis part
	}
	if err != nil {
		ls.log.Warn("sweep: Redis unavailable; AWS was swept anyway", "err", err)
		return
	}
	defer unlock()
	for _, s := range swept {
		if l, err := ls.records.GetLaunch(ctx, s.LaunchID); err == nil && !l.State.Ended() {
			if err := ls.ended(ctx, l, reasonExpired+" (found by the sweeper: "+s.Reason+")"); err != nil {
				ls.log.Warn("sweep: report", "launch", l.ID, "err", err)
			}
		}
	}
	ls.reconcile(ctx, live, now)
	if n, err := ls.prov.CleanTemplates(ctx, ls.records, live, now); err != nil {
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

func (ls *Launches) sweepPolicy() provision.Policy {
	return provision.Policy{
		MaxLifetime: func(profile string) time.Duration {
			if p, ok := ls.cfg.Profiles[profile]; ok {
				return p.MaxLifetime.D()
			}
			return ls.cfg.MaxLifetime()
		},
		Grace: ls.cfg.SweepGrace.D(),
	}
}
