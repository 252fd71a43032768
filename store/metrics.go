package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	jobsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "packit_launch_jobs_total",
		Help: "Jobs run by the worker, by kind and outcome (done; retry: failed and will run again; held: queued again for when a rate limit resets; failed: given up; interrupted: the worker stopped or the job timed out).",
	}, []string{"kind", "outcome"})
	jobSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "packit_launch_job_duration_seconds",
		Help:    "How long one run of a job took, by kind.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 2400},
	}, []string{"kind"})
)

// jobOutcome names what becomes of a job after one run.
func jobOutcome(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return "done"
	case ctx.Err() != nil:
		return "interrupted" // the worker is stopping; the job runs again elsewhere
	case errors.Is(err, asynq.SkipRetry) || FinalAttempt(ctx):
		return "failed"
	default:
		return "retry"
	}
}

func observeJob(ctx context.Context, kind string, start time.Time, err error) {
	jobsTotal.WithLabelValues(kind, jobOutcome(ctx, err)).Inc()
	jobSeconds.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}

// queueCollector reports each queue's backlog, read from Redis at most once
// per queueStatsTTL: /metrics may be reachable by anyone who can reach the
// webhook, and asynq's queue stats cost Redis a scan.
type queueCollector struct {
	insp   *asynq.Inspector
	queues []string
	depth  *prometheus.Desc

	mu      sync.Mutex
	readAt  time.Time
	metrics []prometheus.Metric
}

const queueStatsTTL = 10 * time.Second

// QueueCollector is a Prometheus collector of the job queues' backlog:
// jobs waiting to run now, scheduled for later (timers), and waiting to retry.
func (s *Store) QueueCollector() prometheus.Collector {
	return &queueCollector{
		insp:   asynq.NewInspectorFromRedisClient(s.rdb),
		queues: []string{QueueCommands, QueueLifecycle},
		depth: prometheus.NewDesc("packit_launch_queue_jobs",
			"Jobs in a queue by state (pending: waiting to run now; scheduled: timers; retry: waiting to run again; active: running).",
			[]string{"queue", "state"}, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.depth }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.readAt) >= queueStatsTTL {
		c.metrics, c.readAt = c.read(), time.Now()
	}
	for _, m := range c.metrics {
		ch <- m
	}
}

func (c *queueCollector) read() []prometheus.Metric {
	var out []prometheus.Metric
	for _, q := range c.queues {
		info, err := c.insp.GetQueueInfo(q)
		if err != nil {
			// A queue that never held a job does not exist yet; Redis down
			// shows as missing series (and /readyz failing).
			continue
		}
		for state, n := range map[string]int{"pending": info.Pending, "scheduled": info.Scheduled, "retry": info.Retry, "active": info.Active} {
			out = append(out, prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n), q, state))
		}
	}
	return out
}
