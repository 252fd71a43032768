package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packit/packit-launch/store/storetest"
)

// The crash tests end a killed worker's leases (storetest.ExpireLeases)
// rather than wait 1-2 minutes for asynq to: this holds that reliance on
// asynq's internals to what they are in the pinned version. A worker that
// lost Redis mid-job cannot extend its lease; once the lease is ended, the
// next worker to start runs the job again at once, well before the lease
// would have ended by itself.
func TestExpireLeasesMatchesAsynq(t *testing.T) {
	url := storetest.StartRedis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := make(chan time.Time, 4)
	release := make(chan struct{})
	stopped := make(chan error, 1)
	start := func(s *Store) {
		w := s.NewWorker(1, quiet, QueueCommands)
		w.Handle("stuck", func(context.Context, []byte) error {
			runs <- time.Now()
			<-release
			return nil
		})
		go func() { stopped <- w.Run(ctx) }()
		// Stopped before the store closes (its Cleanup), which asynq needs.
		t.Cleanup(func() { close(release); cancel(); <-stopped })
	}
	// The first worker is a process of its own (this test binary again,
	// see TestMain), SIGKILLed once the job runs.
	worker := exec.Command(os.Args[0], "-test.run=^$")
	worker.Env = append(os.Environ(), deadWorkerEnv+"="+url)
	out, err := worker.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer worker.Process.Kill()
	if err := open(t, url).Queue().Enqueue(ctx, Job{Kind: "stuck", ID: "delivery:d1", Payload: []byte("x"), MaxRetry: 3}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		if strings.TrimSpace(line) == "running" {
			close(started)
		}
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the job did not start in the first worker")
	}
	// The lease as asynq keeps it: the task id, scored by its end, about 30 s ahead.
	c := redis.NewClient(mustParse(t, url))
	defer c.Close()
	leases, err := c.ZRangeWithScores(ctx, "asynq:{"+QueueCommands+"}:lease", 0, -1).Result()
	if err != nil || len(leases) != 1 {
		t.Fatalf("leases %v, %v: asynq's layout changed; see storetest.ExpireLeases", leases, err)
	}
	leaseEnd := time.Unix(int64(leases[0].Score), 0)
	if ahead := time.Until(leaseEnd); ahead < 20*time.Second || ahead > 40*time.Second {
		t.Fatalf("the lease ends %s from now, not about 30 s: asynq's lease changed; see storetest.ExpireLeases", ahead)
	}
	worker.Process.Signal(syscall.SIGKILL)
	worker.Wait()

	if n := storetest.ExpireLeases(t, url); n != 1 {
		t.Fatalf("ExpireLeases ended %d leases, want 1", n)
	}
	start(open(t, url))
	select {
	case again := <-runs:
		if !again.Before(leaseEnd) {
			t.Errorf("the job ran again at %s, not before its lease's own end %s", again.Format(time.TimeOnly), leaseEnd.Format(time.TimeOnly))
		}
	case <-time.After(time.Until(leaseEnd)):
		t.Fatal("the next worker did not take the job back before its lease would have ended by itself")
	}
}

// deadWorkerEnv makes this test binary a worker that takes the "stuck"
// job, says "running" and never finishes it: the process to kill.
const deadWorkerEnv = "PACKIT_LAUNCH_STORE_DEAD_WORKER"

// runDeadWorker is that worker, when the environment asks for it (TestMain).
func runDeadWorker() bool {
	url := os.Getenv(deadWorkerEnv)
	if url == "" {
		return false
	}
	s, err := OpenWith(context.Background(), url, Options{}, quiet)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := s.NewWorker(1, quiet, QueueCommands)
	w.Handle("stuck", func(context.Context, []byte) error {
		fmt.Println("running")
		select {}
	})
	w.Run(context.Background())
	return true
}

func mustParse(t *testing.T, url string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
