package launchapi

import (
	"context"
	"time"
)

// Clock is the client's time: retry backoffs and reservation polling use it.
// Tests pass launchapitest.ManualClock, whose Sleep advances time at once.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
