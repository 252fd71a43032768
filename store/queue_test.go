package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/packit/packit-launch/store/storetest"
)

// A job that failed for good does not block a new one with its id (a timer
// the sweeper re-creates); one that is queued or done still does.
func TestQueueReplacesOnlyJobsThatFailedForGood(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := open(t, storetest.StartRedis(t))
	q := s.Queue()
	runs := make(chan string, 4)
	w := s.NewWorker(1, quiet, QueueLifecycle)
	w.Handle("flaky", func(_ context.Context, p []byte) error {
		runs <- string(p)
		if string(p) == "first" {
			return SkipRetry(errors.New("broken"))
		}
		return nil
	})
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { cancel(); <-stopped }()
	next := func() string {
		t.Helper()
		select {
		case p := <-runs:
			return p
		case <-time.After(20 * time.Second):
			t.Fatal("job never ran")
			return ""
		}
	}

	job := Job{Kind: "flaky", ID: "expire:l1:1", Queue: QueueLifecycle, Payload: []byte("first")}
	if err := q.Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}
	if p := next(); p != "first" {
		t.Fatalf("ran %q", p)
	}
	// Archived once the failed run is recorded: the same id is taken again.
	job.Payload = []byte("second")
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := q.Enqueue(ctx, job)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrDuplicateJob) || time.Now().After(deadline) {
			t.Fatalf("re-enqueue after a final failure: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // the worker records the failure just after the handler returns
	}
	if p := next(); p != "second" {
		t.Fatalf("ran %q", p)
	}
	// Done: the id still dedupes.
	deadline = time.Now().Add(20 * time.Second)
	for {
		info, err := q.inspector.GetTaskInfo(QueueLifecycle, job.ID)
		if err == nil && info.State.String() == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never completed: %v %v", info, err)
		}
		time.Sleep(20 * time.Millisecond) // polling asynq's own record
	}
	if err := q.Enqueue(ctx, job); !errors.Is(err, ErrDuplicateJob) {
		t.Errorf("re-enqueue after success: %v, want ErrDuplicateJob", err)
	}
}

// A held job runs again at the time asked for, with its retries intact: a
// job on its last retry that is held is not given up.
func TestHeldJobRunsAgainWithItsRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := open(t, storetest.StartRedis(t))
	q := s.Queue()
	type run struct {
		final bool
		at    time.Time
	}
	runs := make(chan run, 4)
	held := false
	w := s.NewWorker(1, quiet, QueueCommands)
	w.Handle("limited", func(ctx context.Context, _ []byte) error {
		runs <- run{final: FinalAttempt(ctx), at: time.Now()}
		if !held {
			held = true
			return HoldUntil(time.Now().Add(2*time.Second), errors.New("rate limited"))
		}
		return nil
	})
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { cancel(); <-stopped }()
	// MaxRetry 0: the first run is already the final attempt.
	if err := q.Enqueue(ctx, Job{Kind: "limited", ID: "delivery:d1", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	var got []run
	for len(got) < 2 {
		select {
		case r := <-runs:
			got = append(got, r)
		case <-time.After(20 * time.Second):
			t.Fatalf("held job did not run again (runs: %+v)", got)
		}
	}
	if gap := got[1].at.Sub(got[0].at); gap < 1500*time.Millisecond {
		t.Errorf("held job ran again after %s, before its time", gap)
	}
	if !got[0].final {
		t.Error("the first run should have been the job's final attempt")
	}
}

// A job is held at most MaxHolds times; then its error is an ordinary one.
func TestHoldsAreCounted(t *testing.T) {
	for id, want := range map[string]struct {
		base  string
		holds int
	}{
		"delivery:d1":          {"delivery:d1", 0},
		"delivery:d1@held:3":   {"delivery:d1", 3},
		"launch:x@held:notnum": {"launch:x@held:notnum", 0},
	} {
		if base, n := heldID(id); base != want.base || n != want.holds {
			t.Errorf("heldID(%q) = %q, %d", id, base, n)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := open(t, storetest.StartRedis(t))
	runs := make(chan error, 2*MaxHolds)
	w := s.NewWorker(1, quiet, QueueCommands)
	w.Handle("limited", func(context.Context, []byte) error {
		err := HoldUntil(time.Now(), errors.New("rate limited"))
		runs <- err
		return err
	})
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { cancel(); <-stopped }()
	if err := s.Queue().Enqueue(ctx, Job{Kind: "limited", ID: "delivery:d2", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(60 * time.Second)
	for n := 0; n < MaxHolds+1; n++ { // the original and MaxHolds held copies
		select {
		case <-runs:
		case <-deadline:
			t.Fatalf("only %d runs", n)
		}
	}
	select {
	case <-runs:
		t.Error("held more than MaxHolds times")
	case <-time.After(3 * time.Second):
	}
}

// Stopping the worker lets a job in flight finish (within ShutdownTimeout)
// instead of cancelling it halfway.
func TestWorkerDrainsJobsInFlight(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := open(t, storetest.StartRedis(t))
	started, finished := make(chan struct{}), make(chan error, 1)
	w := s.NewWorker(1, quiet, QueueLifecycle)
	w.Handle("slow", func(jobCtx context.Context, _ []byte) error {
		close(started)
		select {
		case <-jobCtx.Done():
			finished <- jobCtx.Err()
		case <-time.After(500 * time.Millisecond): // work that outlives the stop
			finished <- nil
		}
		return nil
	})
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()
	if err := s.Queue().Enqueue(context.Background(), Job{Kind: "slow", ID: "slow:1", Queue: QueueLifecycle}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("job never ran")
	}
	cancel()
	if err := <-finished; err != nil {
		t.Errorf("the job in flight was cancelled at stop: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// A done job's id refuses a duplicate for a day, or for the delivery TTL
// when that is shorter (the soak's one-minute retentions).
func TestDoneJobsAreKeptNoLongerThanDeliveryIDs(t *testing.T) {
	url := storetest.StartRedis(t)
	for _, tt := range []struct {
		ttl, want time.Duration
	}{{0, 24 * time.Hour}, {time.Minute, time.Minute}, {7 * 24 * time.Hour, 24 * time.Hour}} {
		s, err := OpenWith(context.Background(), url, Options{DeliveryTTL: tt.ttl}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		id := "retention-" + tt.ttl.String()
		if err := s.Queue().Enqueue(context.Background(), Job{Kind: "x", ID: id}); err != nil {
			t.Fatal(err)
		}
		info, err := asynq.NewInspectorFromRedisClient(s.rdb).GetTaskInfo(QueueCommands, id)
		if err != nil {
			t.Fatal(err)
		}
		if info.Retention != tt.want {
			t.Errorf("delivery TTL %s: done jobs kept %s, want %s", tt.ttl, info.Retention, tt.want)
		}
		s.Close()
	}
}
