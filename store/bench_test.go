package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packit/packit-launch/store/storetest"
)

func TestRoundTripsCountsPipelinesOnce(t *testing.T) {
	ctx := context.Background()
	s := open(t, storetest.StartRedis(t))
	var rt storetest.RoundTrips
	s.Redis().AddHook(&rt)
	three := func() {
		s.Redis().Set(ctx, "a", 1, time.Minute)
		s.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Get(ctx, "a")
			p.Get(ctx, "b")
			return nil
		})
		s.Redis().TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, "a")
			p.Del(ctx, "b")
			return nil
		})
	}
	// A new connection's handshake (HELLO, CLIENT SETINFO) counts too:
	// count on a warm pool, as the benchmarks do after their first run.
	three()
	rt.Reset()
	three()
	if got := rt.N(); got != 3 {
		t.Errorf("%d round trips, want 3", got)
	}
}

// The benchmark fixture: 10,000 live launches and 10,000 ended ones within
// the retention, over 500 owners and 200 repos of 10 PRs each (10 launches a
// PR). It is seeded once per run of the package, shared by the benchmarks,
// and stopped by TestMain.
const (
	benchLive   = 10_000
	benchDone   = 10_000 // ended
	benchOwners = 500
	benchRepos  = 200
	benchPRs    = 10 // per repo
)

var bench struct {
	once sync.Once
	stop func()
	s    *Store
	rt   storetest.RoundTrips
	live []string // ids of the live launches
	err  error
}

func TestMain(m *testing.M) {
	if runDeadWorker() {
		return
	}
	code := m.Run()
	if bench.s != nil {
		bench.s.Close()
	}
	if bench.stop != nil {
		bench.stop()
	}
	os.Exit(code)
}

// benchStore is the seeded store and its round-trip counter, at zero.
func benchStore(b *testing.B) (*Store, *storetest.RoundTrips) {
	b.Helper()
	bench.once.Do(func() {
		start := time.Now()
		var url string
		url, bench.stop, bench.err = storetest.Start()
		if bench.err != nil {
			return
		}
		bench.s, bench.err = OpenWith(context.Background(), url, Options{}, quiet)
		if bench.err != nil {
			return
		}
		bench.live, bench.err = seed(bench.s)
		bench.s.Redis().AddHook(&bench.rt)
		b.Logf("fixture: %d live + %d ended launches, redis-server started and seeded in %s",
			benchLive, benchDone, time.Since(start).Round(time.Millisecond))
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	bench.rt.Reset()
	return bench.s, &bench.rt
}

// benchLaunch is a record like those the bot writes (~1.3 KB of JSON).
func benchLaunch(i int, now time.Time) *Launch {
	created := now.Add(-time.Duration(i) * time.Second)
	repo := i % benchRepos
	return &Launch{
		ID:               fmt.Sprintf("b%07d", i),
		Delivery:         fmt.Sprintf("0b4e2c1e-%04x-11ef-8f2a-%012x", i%65536, i),
		InstallationID:   int64(40000000 + repo),
		Owner:            fmt.Sprintf("user-%03d", i%benchOwners),
		Repo:             fmt.Sprintf("org%02d/repo-%03d", repo%50, repo),
		PR:               1 + (i/benchRepos)%benchPRs,
		HeadSHA:          fmt.Sprintf("%040x", i),
		CommandCommentID: int64(2400000000 + i),
		Command:          "/launch fedora-42 --lifetime 4h",
		Machine:          "fedora-42",
		Image:            "ami-0123456789abcdef0",
		PackitTarget:     "fedora-42-x86_64",
		PackitSHA:        fmt.Sprintf("%040x", i),
		PackitBuildURL:   fmt.Sprintf("https://github.com/org/repo/runs/%d", 30000000000+i),
		Region:           "us-east-1",
		InstanceType:     "t3.medium",
		SSHUser:          "fedora",
		Profile:          "default",
		LaunchTemplateID: "lt-0123456789abcdef0",
		SecurityGroupIDs: []string{"sg-0123456789abcdef0"},
		SubnetID:         "subnet-0123456789abcdef0",
		Project:          "fedora",
		TemplateID:       fmt.Sprintf("lt-%017x", i),
		Lifetime:         4 * time.Hour,
		ExtendStep:       time.Hour,
		KeyFingerprint:   "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
		KeyType:          "ssh-ed25519",
		KeyBody:          "AAAAC3NzaC1lZDI1NTE5AAAAIDnmgh4cs0UmYn0gsLB3jfK0X6vXxOWuXbJDvIjBsfFq",
		PubkeyID:         int64(1000 + i%benchOwners),
		ReservationID:    int64(500000 + i),
		InstanceID:       fmt.Sprintf("i-%017x", i),
		PublicIPv4:       "203.0.113.10",
		PublicDNS:        "ec2-203-0-113-10.compute-1.amazonaws.com",
		PrivateIPv4:      "172.31.20.10",
		CreatedAt:        created,
		LaunchedAt:       created.Add(3 * time.Minute),
		ExpiresAt:        created.Add(4 * time.Hour),
		HardExpiresAt:    created.Add(72 * time.Hour),
		State:            StateRunning,
		Report:           Report{CommentID: int64(2500000000 + i), CheckRunID: int64(31000000000 + i), Reported: true},
	}
}

// benchEnded says which launches of the fixture have ended: half of each
// PR's 10 (i/2000 runs through 0…9 over the fixture).
func benchEnded(i int) bool { return (i/(benchRepos*benchPRs))%2 == 1 }

// seed writes the fixture through the store's own index writer, 1000
// launches a pipeline: what CreateLaunch and UpdateLaunch leave, fast.
func seed(s *Store) (live []string, err error) {
	ctx := context.Background()
	now := time.Now()
	const batch = 1000
	for from := 0; from < benchLive+benchDone; from += batch {
		p := s.rdb.Pipeline()
		for i := from; i < from+batch; i++ {
			l := benchLaunch(i, now)
			if benchEnded(i) {
				l.State, l.EndedAt, l.EndReason = StateEnded, now, "expired"
			} else {
				live = append(live, l.ID)
			}
			data, err := json.Marshal(l)
			if err != nil {
				return nil, err
			}
			if err := s.writeLaunch(ctx, p, nil, l, data); err != nil {
				return nil, err
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	return live, nil
}

func report(b *testing.B, rt *storetest.RoundTrips) {
	b.ReportMetric(float64(rt.N())/float64(b.N), "roundtrips/op")
}

func BenchmarkActiveIndex(b *testing.B) {
	s, rt := benchStore(b)
	ctx := context.Background()
	b.ResetTimer()
	rt.Reset()
	for range b.N {
		idx, err := s.ActiveIndex(ctx)
		if err != nil || len(idx) != benchLive {
			b.Fatalf("%d live, %v", len(idx), err)
		}
	}
	report(b, rt)
}

func BenchmarkActiveLaunches(b *testing.B) {
	s, rt := benchStore(b)
	ctx := context.Background()
	b.ResetTimer()
	rt.Reset()
	for range b.N {
		ls, err := s.ActiveLaunches(ctx)
		if err != nil || len(ls) != benchLive {
			b.Fatalf("%d live, %v", len(ls), err)
		}
	}
	report(b, rt)
}

func BenchmarkLaunchesByPR(b *testing.B) {
	s, rt := benchStore(b)
	ctx := context.Background()
	b.ResetTimer()
	rt.Reset()
	for i := range b.N {
		l := benchLaunch(i*7919%(benchRepos*benchPRs), time.Now()) // PRs spread over repos
		ls, err := s.LaunchesByPR(ctx, l.Repo, l.PR)
		if err != nil || len(ls) != (benchLive+benchDone)/(benchRepos*benchPRs) {
			b.Fatalf("%s#%d: %d launches, %v", l.Repo, l.PR, len(ls), err)
		}
	}
	report(b, rt)
}

func BenchmarkUpdateLaunch(b *testing.B) {
	s, rt := benchStore(b)
	ctx := context.Background()
	b.ResetTimer()
	rt.Reset()
	for i := range b.N {
		id := bench.live[i%len(bench.live)]
		if _, err := s.UpdateLaunch(ctx, id, func(x *Launch) error { x.Slow = !x.Slow; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	report(b, rt)
}
