package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/store/embedded"
	"github.com/packit/packit-launch/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// The store's tests run on the embedded store too, which only builds for
// trying the bot link.
func init() { StartEmbedded = func() (Embedded, error) { return embedded.Start() } }

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := OpenWith(context.Background(), url, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// stores runs a test against a real redis-server and the embedded one.
func stores(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Run("redis-server", func(t *testing.T) { fn(t, open(t, storetest.StartRedis(t))) })
	t.Run("embedded", func(t *testing.T) {
		s := open(t, "")
		if !s.Embedded() {
			t.Fatal("empty URL should give an embedded store")
		}
		fn(t, s)
	})
}

func TestDedupe(t *testing.T) {
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		first, err := s.FirstDelivery(ctx, "d-1")
		if err != nil || !first {
			t.Fatalf("first delivery: %v %v", first, err)
		}
		if ttl := s.Redis().TTL(ctx, "delivery:d-1").Val(); ttl > pendingDeliveryTTL {
			t.Errorf("an unconfirmed claim should be short, TTL %s", ttl)
		}
		if err := s.ConfirmDelivery(ctx, "d-1"); err != nil {
			t.Fatal(err)
		}
		again, err := s.FirstDelivery(ctx, "d-1")
		if err != nil || again {
			t.Fatalf("redelivery must be a duplicate: %v %v", again, err)
		}
		ttl := s.Redis().TTL(ctx, "delivery:d-1").Val()
		if ttl < DeliveryTTL-time.Minute || ttl > DeliveryTTL {
			t.Errorf("dedupe TTL = %s, want about %s", ttl, DeliveryTTL)
		}
		if err := s.ForgetDelivery(ctx, "d-1"); err != nil {
			t.Fatal(err)
		}
		if first, _ := s.FirstDelivery(ctx, "d-1"); !first {
			t.Error("a forgotten delivery must count as new")
		}
		n1, _ := s.FirstNotice(ctx, "untrusted:o/r#1", time.Hour)
		n2, _ := s.FirstNotice(ctx, "untrusted:o/r#1", time.Hour)
		if !n1 || n2 {
			t.Errorf("notice once: %v %v", n1, n2)
		}
	})
}

func TestQueueRunsJobsOnce(t *testing.T) {
	stores(t, func(t *testing.T, s *Store) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		q := s.Queue()
		if err := q.Enqueue(ctx, Job{Kind: "echo", ID: "j1", Payload: []byte("hello")}); err != nil {
			t.Fatal(err)
		}
		if err := q.Enqueue(ctx, Job{Kind: "echo", ID: "j1", Payload: []byte("again")}); !errors.Is(err, ErrDuplicateJob) {
			t.Fatalf("duplicate job id: %v", err)
		}
		got := make(chan string, 2)
		w := s.NewWorker(2, quiet)
		w.Handle("echo", func(_ context.Context, p []byte) error { got <- string(p); return nil })
		done := make(chan error)
		go func() { done <- w.Run(ctx) }()
		select {
		case p := <-got:
			if p != "hello" {
				t.Errorf("payload %q", p)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("job never ran")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("job ran twice: %q", <-got)
		}
	})
}

func TestOpenRejectsBadURLWithoutEchoingIt(t *testing.T) {
	_, err := OpenWith(context.Background(), "http://user:hunter2@x", Options{}, quiet)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad URL: %v", err)
	}
}

func openWith(t *testing.T, url string, o Options) *Store {
	t.Helper()
	s, err := OpenWith(context.Background(), url, o, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Injected retentions are the ones the store writes with.
func TestOpenWithRetentions(t *testing.T) {
	ctx := context.Background()
	s := openWith(t, storetest.StartRedis(t), Options{EndedRetention: 7 * time.Minute, DeliveryTTL: 5 * time.Minute})
	about := func(key string, want time.Duration) {
		t.Helper()
		if ttl := s.Redis().PTTL(ctx, key).Val(); ttl <= want-time.Minute || ttl > want {
			t.Errorf("%s: TTL %s, want about %s", key, ttl, want)
		}
	}
	if _, err := s.FirstDelivery(ctx, "d-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.ConfirmDelivery(ctx, "d-1"); err != nil {
		t.Fatal(err)
	}
	about("delivery:d-1", 5*time.Minute)
	l, _, err := s.CreateLaunch(ctx, &Launch{Repo: "packit/ogr", PR: 1, Owner: "alice", CommandCommentID: 1, State: StateRunning})
	if err != nil {
		t.Fatal(err)
	}
	about(commandKey(l), 5*time.Minute)
	if _, err := s.UpdateLaunch(ctx, l.ID, func(x *Launch) error { x.State = StateEnded; return nil }); err != nil {
		t.Fatal(err)
	}
	about(launchKey(l.ID), 7*time.Minute)
	if err := s.RequestStop(ctx, l.ID, "pr closed"); err != nil {
		t.Fatal(err)
	}
	about("launch-stop:"+l.ID, 7*time.Minute)

	if _, err := OpenWith(ctx, "", Options{EndedRetention: -time.Second}, quiet); err == nil {
		t.Error("a negative retention must be refused")
	}
}

// Keys that no one deletes must expire: counters, locks and notices.
func TestCountersLocksAndNoticesExpire(t *testing.T) {
	ctx := context.Background()
	s := open(t, storetest.StartRedis(t))
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	if total, err := s.AddInstanceHours(ctx, "fedora", day, 1.5); err != nil || total != 1.5 {
		t.Fatalf("add instance-hours: %v %v", total, err)
	}
	if total, _ := s.AddInstanceHours(ctx, "fedora", day, 2); total != 3.5 {
		t.Errorf("total %v, want 3.5", total)
	}
	if ttl := s.Redis().TTL(ctx, hoursKey("fedora", day)).Val(); ttl <= hoursTTL-time.Minute || ttl > hoursTTL {
		t.Errorf("instance-hours TTL %s, want about %s", ttl, hoursTTL)
	}
	unlock, err := s.TryLock(ctx, "sweeper", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ttl := s.Redis().TTL(ctx, "lock:sweeper").Val(); ttl <= 0 {
		t.Errorf("lock TTL %s", ttl)
	}
	unlock()
	if s.Redis().Exists(ctx, "lock:sweeper").Val() != 0 {
		t.Error("unlock left the lock")
	}
	if _, err := s.TryLock(ctx, "forever", 0); err == nil {
		t.Error("a lock without a TTL must be refused")
	}
	if _, err := s.FirstNotice(ctx, "forever", 0); err == nil {
		t.Error("a notice without a TTL must be refused")
	}
	if n := s.Redis().Exists(ctx, "lock:forever", "notice:forever").Val(); n != 0 {
		t.Errorf("%d keys without a TTL written", n)
	}
}

func TestCountCommandNumbersEachDeliveryOnce(t *testing.T) {
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		count := func(delivery string) int {
			t.Helper()
			n, err := s.CountCommand(ctx, "alice:1", delivery, 3, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		for i, d := range []string{"a", "b", "c", "d", "e"} {
			if n := count(d); n != i+1 {
				t.Fatalf("delivery %s numbered %d, want %d", d, n, i+1)
			}
		}
		// A retried job keeps its number while it is among the first three,
		// and a later one gets a new number past them: never back in.
		if n := count("b"); n != 2 {
			t.Errorf("retried delivery b numbered %d, want its 2", n)
		}
		if n := count("e"); n <= 3 {
			t.Errorf("retried delivery e numbered %d, want past the kept 3", n)
		}
		// A flood costs the counter and the first three, not a field each.
		if fields := s.Redis().HLen(ctx, "commands:alice:1").Val(); fields != 4 {
			t.Errorf("the window's hash holds %d fields, want 4 (the counter and 3 deliveries)", fields)
		}
		if ttl := s.Redis().PTTL(ctx, "commands:alice:1").Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("the window's TTL is %s, want ≤ 1m", ttl)
		}
		if n, err := s.CountCommand(ctx, "bob:1", "a", 3, time.Minute); err != nil || n != 1 {
			t.Errorf("another person's window starts at 1, got %d %v", n, err)
		}
	})
}

// The production binary links no embedded store: an unset REDIS_URL is an
// error that says what to set, not a store that forgets every launch.
func TestOpenWithoutURLNeedsAnEmbeddedBuild(t *testing.T) {
	linked := StartEmbedded
	StartEmbedded = nil
	defer func() { StartEmbedded = linked }()
	_, err := OpenWith(context.Background(), "", Options{}, quiet)
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL is not set: set it to your Redis") {
		t.Fatalf("OpenWith without a URL in a build without an embedded store: %v", err)
	}
}
