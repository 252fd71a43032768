package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/store"
)

// GitHub does not redeliver a webhook it failed to hand over (the bot was
// down, a deploy, a 503): the Redeliverer finds such deliveries in the App's
// delivery log and asks GitHub to deliver them again.

const (
	// maxRedeliveryAttempts bounds the redeliveries asked for one delivery.
	maxRedeliveryAttempts = 3
	// maxRedeliveriesPerRun bounds what one pass asks for; the rest wait
	// for the next pass.
	maxRedeliveriesPerRun = 50
	// redeliveryLookback is how far back the log is read when no mark is
	// remembered (the first pass, or none for a day).
	redeliveryLookback = 24 * time.Hour
	// redeliveryOverlap reads again a little before the mark: an attempt
	// may be listed after later ones (a timeout ends after they start).
	redeliveryOverlap = 2 * time.Minute
	// maxDeliveryPages bounds the log read by one pass (100 a page).
	maxDeliveryPages = 20
	// redeliverLockTTL outlasts a pass, which is cut at redeliverPassTime,
	// so that two replicas never ask at once.
	redeliverLockTTL  = 5 * time.Minute
	redeliverPassTime = 4 * time.Minute
)

// redeliverable names, for each event intake takes (wantedEvents), the one
// action it queues work for (see route): other failed deliveries are not
// worth asking for again.
var redeliverable = map[string]string{
	"issue_comment": "created", "check_run": "requested_action", "pull_request": "closed",
	"installation": "deleted", "installation_repositories": "removed",
}

// redeliveryStore is what a Redeliverer keeps in Redis.
type redeliveryStore interface {
	TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(), err error)
	KnownDelivery(ctx context.Context, id string) (bool, error)
	Redelivery(ctx context.Context, guid string) (store.Redelivery, error)
	SaveRedelivery(ctx context.Context, guid string, r store.Redelivery) error
	RedeliveryMark(ctx context.Context) (time.Time, error)
	SetRedeliveryMark(ctx context.Context, t time.Time, ttl time.Duration) error
}

// Redeliverer asks GitHub to deliver again the webhooks the bot missed.
type Redeliverer struct {
	app *github.Client // authenticated as the App (JWT)
	st  redeliveryStore
	log *slog.Logger
	now func() time.Time
}

// NewRedeliverer returns a Redeliverer acting as the App of inst; now nil
// means time.Now.
func NewRedeliverer(inst *Installations, st redeliveryStore, log *slog.Logger, now func() time.Time) *Redeliverer {
	if now == nil {
		now = time.Now
	}
	return &Redeliverer{app: inst.app, st: st, log: log, now: now}
}

// missed is one delivery GUID as the log shows it.
type missed struct {
	guid     string
	newest   *github.HookDelivery // the attempt to redeliver
	failedAt time.Time            // its oldest attempt in the listing
	ok       bool                 // some attempt was answered 2xx
}

// Run does one pass: it reads the App's delivery log back to the mark and
// asks for a redelivery of each failed delivery of work the bot never
// received. Only one replica runs a pass at a time; another returns nil.
func (r *Redeliverer) Run(ctx context.Context) error {
	unlock, err := r.st.TryLock(ctx, "redeliver", redeliverLockTTL)
	if errors.Is(err, store.ErrLocked) {
		r.log.Debug("another replica is looking for missed deliveries")
		return nil
	}
	if err != nil {
		return fmt.Errorf("redeliver: %w", err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, redeliverPassTime)
	defer cancel()

	now := r.now()
	since := now.Add(-redeliveryLookback)
	mark, err := r.st.RedeliveryMark(ctx)
	if err != nil {
		return fmt.Errorf("redeliver: %w", err)
	}
	if m := mark.Add(-redeliveryOverlap); m.After(since) {
		since = m
	}
	found, newest, err := r.list(ctx, since)
	if err != nil {
		return fmt.Errorf("redeliver: %w", err)
	}
	// Oldest first: when the pass stops at its cap, the mark stays at the
	// first one left, so that the next pass reads it again.
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i].newest, found[j].newest
		if !a.GetDeliveredAt().Equal(b.GetDeliveredAt()) {
			return a.GetDeliveredAt().Before(b.GetDeliveredAt().Time)
		}
		return a.GetID() < b.GetID()
	})
	asked := 0
	var errs []error
	for _, m := range found {
		if asked == maxRedeliveriesPerRun {
			newest = m.newest.GetDeliveredAt().Time
			r.log.Info("redelivery cap reached; the rest wait for the next pass", "cap", maxRedeliveriesPerRun)
			break
		}
		did, err := r.consider(ctx, m)
		if err != nil {
			errs = append(errs, err)
		}
		if did {
			asked++
		}
	}
	if !newest.IsZero() {
		if err := r.st.SetRedeliveryMark(ctx, newest, redeliveryLookback); err != nil {
			errs = append(errs, fmt.Errorf("redeliver: %w", err))
		}
	}
	return errors.Join(errs...)
}

// list reads the log, newest first, down to since, and returns the GUIDs
// whose newest attempt failed and none succeeded, of work intake would
// queue, and when the newest listed delivery was made.
func (r *Redeliverer) list(ctx context.Context, since time.Time) ([]*missed, time.Time, error) {
	var newest time.Time
	byGUID := map[string]*missed{}
	var order []*missed
	opts := &github.ListCursorOptions{PerPage: 100}
	pages, done := 0, false
	for !done {
		if pages == maxDeliveryPages {
			r.log.Warn("delivery log read up to its page limit; older missed deliveries are not looked for", "pages", pages, "since", since)
			break
		}
		page, resp, err := r.app.Apps.ListHookDeliveries(ctx, opts)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("list the App's webhook deliveries: %w", err)
		}
		pages++
		for _, d := range page {
			at := d.GetDeliveredAt().Time
			if at.Before(since) {
				done = true
				break
			}
			if newest.IsZero() || at.After(newest) {
				newest = at
			}
			if !wantedEvents[d.GetEvent()] || (d.GetAction() != "" && d.GetAction() != redeliverable[d.GetEvent()]) {
				continue
			}
			m := byGUID[d.GetGUID()]
			if m == nil {
				m = &missed{guid: d.GetGUID(), newest: d} // the listing is newest first
				byGUID[m.guid] = m
				order = append(order, m)
			}
			m.failedAt = at
			if code := d.GetStatusCode(); code >= 200 && code < 300 {
				m.ok = true
			}
		}
		if resp.Cursor == "" {
			break
		}
		opts.Cursor = resp.Cursor
	}
	var out []*missed
	for _, m := range order {
		if !m.ok && m.guid != "" {
			out = append(out, m)
		}
	}
	return out, newest, nil
}

// consider asks for one redelivery of m unless the bot has it, a redelivery
// it asked for is still on its way, or its attempts are used up. It
// reports whether it asked.
func (r *Redeliverer) consider(ctx context.Context, m *missed) (bool, error) {
	d := m.newest
	log := r.log.With("delivery", m.guid, "event", d.GetEvent(), "action", d.GetAction(), "status_code", d.GetStatusCode())
	known, err := r.st.KnownDelivery(ctx, m.guid)
	if err != nil || known {
		return false, err
	}
	rec, err := r.st.Redelivery(ctx, m.guid)
	if err != nil {
		return false, err
	}
	if d.GetID() <= rec.LastAsked {
		return false, nil // not listed back yet
	}
	if rec.Attempts >= maxRedeliveryAttempts {
		if rec.GivenUp {
			return false, nil
		}
		log.Error("webhook delivery still failing after redeliveries; giving up", "attempts", rec.Attempts)
		rec.GivenUp = true
		if err := r.st.SaveRedelivery(ctx, m.guid, rec); err != nil {
			return false, err
		}
		missedDeliveriesTotal.WithLabelValues("given_up").Inc()
		return false, nil
	}
	if rec.Attempts == 0 {
		missedDeliveriesTotal.WithLabelValues("found").Inc()
	}
	// Saved before asking: GitHub may deliver it again before the answer
	// comes back, and intake must know then that it was late.
	rec.Attempts++
	if rec.FailedAt.IsZero() {
		rec.FailedAt = m.failedAt
	}
	if err := r.st.SaveRedelivery(ctx, m.guid, rec); err != nil {
		return false, err
	}
	_, _, err = r.app.Apps.RedeliverHookDelivery(ctx, d.GetID())
	var accepted *github.AcceptedError
	if err != nil && !errors.As(err, &accepted) {
		return true, fmt.Errorf("redeliver %s (attempt %d): %w", m.guid, rec.Attempts, err)
	}
	rec.LastAsked = d.GetID()
	if err := r.st.SaveRedelivery(ctx, m.guid, rec); err != nil {
		return true, err
	}
	missedDeliveriesTotal.WithLabelValues("redelivered").Inc()
	log.Info("asked GitHub to deliver a missed webhook again", "attempt", rec.Attempts, "failed_at", rec.FailedAt)
	return true, nil
}
