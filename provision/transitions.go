package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/packit/packit-launch/store"
)

// A launch's state changes, each named, with the state it may start from.
// Every write provision makes to a launch record goes through update, which
// refuses a state change missing here: one place says what may happen to a
// launch, whichever handler, replica or stale copy asks.
var transitions = map[[2]store.State]string{
	{store.StateWaiting, store.StateAccepted}: "build-ready",
	{store.StateWaiting, store.StateEnded}:    "cancel",
	{store.StateWaiting, store.StateFailed}:   "fail",

	{store.StateAccepted, store.StateLaunching}: "reserve",
	{store.StateAccepted, store.StateEnded}:     "cancel",
	{store.StateAccepted, store.StateFailed}:    "fail",
	{store.StateAccepted, store.StateRunning}:   "adopt", // the reconciler found its VM

	{store.StateLaunching, store.StateRunning}: "run",
	{store.StateLaunching, store.StateFailed}:  "fail",
	{store.StateLaunching, store.StateEnded}:   "end", // its VM ended before the launch settled

	{store.StateRunning, store.StateEnded}: "end",
}

// ErrIllegalTransition is a state change transitions does not list.
var ErrIllegalTransition = errors.New("illegal launch transition")

// maxEvents bounds a record's event log: its latest state changes.
const maxEvents = 16

// update changes the launch record id through the store's guarded update:
// fn changes the stored record; a state change must be one of transitions,
// or nothing is written and ErrIllegalTransition is returned. Each state
// change appends to the record's event log, which only update writes.
func update(ctx context.Context, recs records, id string, now time.Time, fn func(*store.Launch) error) (*store.Launch, error) {
	return recs.UpdateLaunch(ctx, id, func(x *store.Launch) error {
		from, events := x.State, x.Events
		if err := fn(x); err != nil {
			return err
		}
		x.Events = events
		if x.State == from {
			return nil
		}
		name, ok := transitions[[2]store.State{from, x.State}]
		if !ok {
			return fmt.Errorf("%w: %s → %s", ErrIllegalTransition, from, x.State)
		}
		x.Events = appendEvent(x.Events, store.Event{At: now.UTC(), Name: name, State: x.State})
		return nil
	})
}

// note appends to the record's event log an event that changes no state
// (an extension, a warning), best effort: the log is the launch's story,
// not its truth.
func (lc *Lifecycle) note(ctx context.Context, l *store.Launch, name, by string) {
	saved, err := lc.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
		x.Events = appendEvent(x.Events, store.Event{At: lc.now().UTC(), Name: name, State: x.State, By: by})
		return nil
	})
	if err != nil {
		lc.log.With(l.LogAttrs()...).Warn("note in the launch's story", "event", name, "err", err)
		return
	}
	*l = *saved
}

func appendEvent(events []store.Event, e store.Event) []store.Event {
	events = append(events, e)
	if len(events) > maxEvents {
		events = append(events[:0:0], events[len(events)-maxEvents:]...)
	}
	return events
}
