package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/packit/packit-launch/store/storetest"
)

func TestJobMetricsCountOutcomes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := open(t, storetest.StartRedis(t))
	done := func() float64 { return testutil.ToFloat64(jobsTotal.WithLabelValues("metrics-ok", "done")) }
	failed := func() float64 { return testutil.ToFloat64(jobsTotal.WithLabelValues("metrics-bad", "failed")) }
	done0, failed0 := done(), failed()

	q := s.Queue()
	for _, j := range []Job{{Kind: "metrics-ok", ID: "m1"}, {Kind: "metrics-bad", ID: "m2"}} {
		if err := q.Enqueue(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	ran := make(chan string, 2)
	w := s.NewWorker(2, quiet)
	w.Handle("metrics-ok", func(context.Context, []byte) error { ran <- "ok"; return nil })
	w.Handle("metrics-bad", func(context.Context, []byte) error { ran <- "bad"; return SkipRetry(errors.New("broken")) })
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()
	for range 2 {
		select {
		case <-ran:
		case <-time.After(20 * time.Second):
			t.Fatal("jobs never ran")
		}
	}
	// Counted just after each handler returns: wait for the counts before
	// stopping the worker (a job running while it stops counts as interrupted).
	deadline := time.Now().Add(20 * time.Second)
	for done() != done0+1 || failed() != failed0+1 {
		if time.Now().After(deadline) {
			t.Fatalf("jobs done %v→%v, failed %v→%v; want one more of each", done0, done(), failed0, failed())
		}
		time.Sleep(10 * time.Millisecond) // polling the counters
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

func TestQueueCollectorShowsScheduledTimers(t *testing.T) {
	ctx := context.Background()
	s := open(t, storetest.StartRedis(t))
	if err := s.Queue().EnqueueAt(ctx, Job{Kind: "expire", ID: "t1", Queue: QueueLifecycle}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP packit_launch_queue_jobs Jobs in a queue by state (pending: waiting to run now; scheduled: timers; retry: waiting to run again; active: running).
# TYPE packit_launch_queue_jobs gauge
packit_launch_queue_jobs{queue="lifecycle",state="active"} 0
packit_launch_queue_jobs{queue="lifecycle",state="pending"} 0
packit_launch_queue_jobs{queue="lifecycle",state="retry"} 0
packit_launch_queue_jobs{queue="lifecycle",state="scheduled"} 1
`
	if err := testutil.CollectAndCompare(s.QueueCollector(), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
