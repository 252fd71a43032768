package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Queue puts jobs into Redis for a worker, through asynq.
type Queue struct {
	client    *asynq.Client
	inspector *asynq.Inspector
	retention time.Duration // how long a done job's id refuses a duplicate
}

// Queue returns the job queue on this store.
func (s *Store) Queue() *Queue {
	return newQueue(s.rdb, s.deliveryTTL)
}

// newQueue keeps done jobs for a day, or the delivery TTL when shorter:
// no longer than the delivery ids that guard the same commands.
func newQueue(rdb *redis.Client, deliveryTTL time.Duration) *Queue {
	return &Queue{client: asynq.NewClientFromRedisClient(rdb), inspector: asynq.NewInspectorFromRedisClient(rdb), retention: min(24*time.Hour, deliveryTTL)}
}

// Queues: commands are answered by every worker; launches and the VM
// lifecycle only by workers that can reach the Launch service and AWS.
const (
	QueueCommands  = "commands"
	QueueLifecycle = "lifecycle"
)

// Job is one unit of work for a worker.
type Job struct {
	Kind    string
	Queue   string // QueueCommands (the default) or QueueLifecycle
	ID      string // unique: a second job with the same ID is refused
	Payload []byte
	// MaxRetry bounds retries of a failing job.
	MaxRetry int
}

// ErrDuplicateJob means a job with the same ID is already queued, running,
// or done within the queue's retention (a day, or the delivery TTL when shorter).
var ErrDuplicateJob = errors.New("job already queued")

// Enqueue queues a job to run now.
func (q *Queue) Enqueue(ctx context.Context, j Job) error {
	return q.EnqueueAt(ctx, j, time.Time{})
}

// EnqueueAt queues a job to run at a time (now when at is zero or past).
func (q *Queue) EnqueueAt(ctx context.Context, j Job, at time.Time) error {
	opts := []asynq.Option{asynq.MaxRetry(j.MaxRetry), asynq.Timeout(45 * time.Minute), asynq.Retention(q.retention)}
	if !at.IsZero() {
		// asynq schedules by the whole second: rounded up, a job never
		// runs before its time (a timer, a hold until a rate limit resets).
		if r := at.Truncate(time.Second); !r.Equal(at) {
			at = r.Add(time.Second)
		}
		opts = append(opts, asynq.ProcessAt(at))
	}
	queue := j.Queue
	if queue == "" {
		queue = QueueCommands
	}
	opts = append(opts, asynq.Queue(queue))
	if j.ID != "" {
		opts = append(opts, asynq.TaskID(j.ID))
	}
	task := asynq.NewTask(j.Kind, j.Payload)
	_, err := q.client.EnqueueContext(ctx, task, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) && q.dropArchived(queue, j.ID) {
		// A job that failed for good keeps its id; asked for again (a timer
		// re-created by the sweeper), it gets a fresh start.
		_, err = q.client.EnqueueContext(ctx, task, opts...)
	}
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return ErrDuplicateJob
	}
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", j.Kind, err)
	}
	return nil
}

// dropArchived deletes job id if it failed for good, and reports whether it did.
func (q *Queue) dropArchived(queue, id string) bool {
	info, err := q.inspector.GetTaskInfo(queue, id)
	if err != nil || info.State != asynq.TaskStateArchived {
		return false
	}
	return q.inspector.DeleteTask(queue, id) == nil
}

// Worker runs queued jobs.
type Worker struct {
	rdb         *redis.Client
	deliveryTTL time.Duration
	cfg         asynq.Config
	mux         *asynq.ServeMux
}

// NewWorker makes a worker running up to concurrency jobs at once from the
// given queues (all of them when none are named). A worker must serve only
// the queues whose jobs it has handlers for: asynq counts a job without a
// handler as failed.
func (s *Store) NewWorker(concurrency int, log *slog.Logger, queues ...string) *Worker {
	if len(queues) == 0 {
		queues = []string{QueueCommands, QueueLifecycle}
	}
	weights := map[string]int{}
	for _, q := range queues {
		weights[q] = 1
	}
	cfg := asynq.Config{
		Queues:          weights,
		Concurrency:     concurrency,
		Logger:          slogAdapter{log},
		LogLevel:        asynq.WarnLevel,
		ShutdownTimeout: 20 * time.Second,
		// A person waits for the 👀, and a /launch crosses the queue twice
		// (command, then launch): an idle worker sleeps a random 0.5–1.5×
		// this between checks. 200 ms made the comment → reservation p50
		// 330 ms; 10 ms costs an idle worker ~200 cheap Redis calls a second
		// (BENCHMARKS.md, "End to end").
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 250 * time.Millisecond, // scheduled looks at reservations are due every 1–5 s
		RetryDelayFunc:           retryDelay,
	}
	return &Worker{rdb: s.rdb, deliveryTTL: s.deliveryTTL, cfg: cfg, mux: asynq.NewServeMux()}
}

// RetrySpan is about how long a job with maxRetry retries keeps being
// retried, from its first attempt to its last (the attempts' own time aside).
func RetrySpan(maxRetry int) time.Duration {
	var d time.Duration
	for n := range maxRetry {
		d += retryDelay(n, nil, nil)
	}
	return d
}

// retryDelay backs off exponentially from 2 s to 10 min, so that a
// retry budget outlasts an outage of GitHub or the Launch service.
func retryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	if n > 9 {
		return 10 * time.Minute
	}
	return min(2*time.Second<<n, 10*time.Minute)
}

// Handle registers fn for jobs of kind. Returning an error retries the job;
// wrap it with SkipRetry to give up, or with HoldUntil to run it again later
// without spending a retry.
func (w *Worker) Handle(kind string, fn func(ctx context.Context, payload []byte) error) {
	w.mux.HandleFunc(kind, func(ctx context.Context, t *asynq.Task) error {
		start := time.Now()
		err := fn(ctx, t.Payload())
		var held *heldError
		if errors.As(err, &held) && ctx.Err() == nil {
			herr := w.hold(ctx, t, held.at)
			if herr == nil {
				jobsTotal.WithLabelValues(kind, "held").Inc()
				return nil
			}
			err = fmt.Errorf("%w (and holding it failed: %w)", err, herr)
		}
		observeJob(ctx, kind, start, err)
		return err
	})
}

// heldError asks for a job to run again at a time, as a new job with all
// its retries: waiting for a limit to reset is not a failure.
type heldError struct {
	at  time.Time
	err error
}

func (e *heldError) Error() string {
	return fmt.Sprintf("held until %s: %v", e.at.UTC().Format(time.RFC3339), e.err)
}
func (e *heldError) Unwrap() error { return e.err }

// HoldUntil makes a job's error mean "run it again at t" (e.g. when a rate
// limit resets) rather than "retry it".
func HoldUntil(t time.Time, err error) error { return &heldError{at: t, err: err} }

// MaxHolds bounds how often one job is held: past it, its error is an
// ordinary failure, retried and then given up as usual. Enough for a
// command waiting on GitHub for up to 2 hours with a doubling backoff.
const MaxHolds = 24

// errHeldTooOften means a job was held MaxHolds times already.
var errHeldTooOften = fmt.Errorf("held %d times already", MaxHolds)

// hold queues a copy of the running job at a time, under an id that names
// the original and how often it was held: a job run twice (a lost lease)
// and held twice queues one copy.
func (w *Worker) hold(ctx context.Context, t *asynq.Task, at time.Time) error {
	id, _ := asynq.GetTaskID(ctx)
	base, n := heldID(id)
	if n >= MaxHolds {
		return errHeldTooOften
	}
	queue, _ := asynq.GetQueueName(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	err := newQueue(w.rdb, w.deliveryTTL).EnqueueAt(ctx, Job{Kind: t.Type(), Queue: queue, ID: fmt.Sprintf("%s@held:%d", base, n+1), Payload: t.Payload(), MaxRetry: maxRetry}, at)
	if errors.Is(err, ErrDuplicateJob) {
		return nil
	}
	return err
}

// heldID splits a job id into the original's and how often it was held.
func heldID(id string) (base string, holds int) {
	base, count, ok := strings.Cut(id, "@held:")
	if !ok {
		return id, 0
	}
	n, err := strconv.Atoi(count)
	if err != nil {
		return id, 0
	}
	return base, n
}

// SkipRetry marks an error as final.
func SkipRetry(err error) error { return fmt.Errorf("%w: %w", err, asynq.SkipRetry) }

// FinalAttempt reports whether the running job will not be retried if it
// fails, so that it can report the failure instead.
func FinalAttempt(ctx context.Context) bool {
	n, ok := asynq.GetRetryCount(ctx)
	m, ok2 := asynq.GetMaxRetry(ctx)
	return ok && ok2 && n >= m
}

// SetShutdownTimeout sets how long jobs in flight get to finish when Run's
// ctx ends (default 20 s) before asynq cancels them and queues them again.
// Tests that stop a worker mid-job set it short.
func (w *Worker) SetShutdownTimeout(d time.Duration) { w.cfg.ShutdownTimeout = d }

// Run processes jobs until ctx ends. Running jobs see ctx end too, so a
// stopping worker leaves them to be retried by the next one.
func (w *Worker) Run(ctx context.Context) error {
	cfg := w.cfg
	// Jobs in flight when ctx ends get ShutdownTimeout to finish; asynq
	// cancels them (and queues them again) only once that has passed.
	cfg.BaseContext = func() context.Context { return context.WithoutCancel(ctx) }
	srv := asynq.NewServerFromRedisClient(w.rdb, cfg)
	if err := srv.Start(w.mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Debug(args ...any) { a.log.Debug(fmt.Sprint(args...)) }
func (a slogAdapter) Info(args ...any)  { a.log.Info(fmt.Sprint(args...)) }
func (a slogAdapter) Warn(args ...any)  { a.log.Warn(fmt.Sprint(args...)) }
func (a slogAdapter) Error(args ...any) { a.log.Error(fmt.Sprint(args...)) }
func (a slogAdapter) Fatal(args ...any) { a.log.Error(fmt.Sprint(args...)) }
