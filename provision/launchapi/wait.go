package launchapi

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// WaitOptions tune WaitReservation. Zero values take the defaults.
type WaitOptions struct {
	PollInterval    time.Duration // first interval; default 1 s
	MaxPollInterval time.Duration // intervals grow to this; default 5 s
	Timeout         time.Duration // give up after; default 35 min (the service's own limit is 30)
	SlowAfter       time.Duration // when OnSlow fires; default 5 min
	// OnSlow is called once, from the waiting goroutine, when the
	// reservation is still pending after SlowAfter, e.g. to tell the PR.
	OnSlow func()
}

// WaitResult is a successfully finished reservation.
type WaitResult struct {
	Reservation      Reservation
	AWSReservationID string
	Instances        []Instance // empty for non-AWS reservations
}

// WaitReservation polls a reservation until the service finishes it. On
// success it returns the instances with whatever addresses the service has
// (any may be missing). A failed reservation is a *ReservationFailedError,
// a reservation still pending at the timeout a *WaitTimeoutError. Errors
// that may pass (5xx, 429, network) do not end the wait.
func (c *Client) WaitReservation(ctx context.Context, id int64, opts WaitOptions) (*WaitResult, error) {
	interval := cmpOr(opts.PollInterval, time.Second)
	maxInterval := max(cmpOr(opts.MaxPollInterval, 5*time.Second), interval)
	timeout := cmpOr(opts.Timeout, 35*time.Minute)
	slowAfter := cmpOr(opts.SlowAfter, 5*time.Minute)

	start := c.clock.Now()
	slowFired := false
	var last *Reservation
	for {
		r, err := c.GetReservation(ctx, id)
		switch {
		case err == nil:
			last = r
			if !r.Pending() {
				return c.finished(ctx, r)
			}
		case ctx.Err() != nil || !transient(err):
			return nil, err
		default:
			c.log.WarnContext(ctx, "polling reservation failed, will retry", "reservation", id, "error", err)
		}

		elapsed := c.clock.Now().Sub(start)
		if !slowFired && opts.OnSlow != nil && elapsed >= slowAfter {
			slowFired = true
			opts.OnSlow()
		}
		if elapsed >= timeout {
			e := &WaitTimeoutError{ReservationID: id, Waited: elapsed}
			if last != nil {
				e.LastStep, e.LastStatus = last.Step, last.Status
			}
			return nil, e
		}
		if err := c.clock.Sleep(ctx, min(interval, timeout-elapsed)); err != nil {
			return nil, fmt.Errorf("launchapi: wait for reservation %d: %w", id, err)
		}
		interval = min(interval*3/2, maxInterval)
	}
}

// CheckReservation looks at a reservation once, for a caller that waits
// between looks without holding anything: a finished reservation is a
// *WaitResult (a failed one a *ReservationFailedError), a pending one is
// returned as pending. Transient reports whether an error may pass.
func (c *Client) CheckReservation(ctx context.Context, id int64) (done *WaitResult, pending *Reservation, err error) {
	r, err := c.GetReservation(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if r.Pending() {
		return nil, r, nil
	}
	done, err = c.finished(ctx, r)
	return done, nil, err
}

// Transient reports whether a failed call may succeed later (5xx, 429,
// network), as opposed to an answer that will not change.
func Transient(err error) bool { return transient(err) }

func (c *Client) finished(ctx context.Context, r *Reservation) (*WaitResult, error) {
	if !*r.Success {
		msg := r.Error
		if msg == "" {
			msg = r.Status
		}
		return nil, &ReservationFailedError{ReservationID: r.ID, Step: r.Step, StepTitle: r.StepTitle(), Status: r.Status, Message: msg}
	}
	res := &WaitResult{Reservation: *r}
	if r.Provider != ProviderAWS {
		return res, nil
	}
	d, err := c.GetAWSReservation(ctx, r.ID)
	if err != nil {
		return nil, fmt.Errorf("launchapi: reservation %d succeeded but its instances cannot be read: %w", r.ID, err)
	}
	res.AWSReservationID, res.Instances = d.AWSReservationID, d.Instances
	return res, nil
}

// transient reports whether a failed poll may succeed later.
func transient(err error) bool {
	var ae *APIError
	var de *DecodeError
	var ns *notSentError
	switch {
	case errors.As(err, &ae):
		return ae.StatusCode >= 500 || ae.StatusCode == 429
	case errors.As(err, &de), errors.As(err, &ns):
		return false
	}
	return true
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
