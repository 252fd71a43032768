//go:build demo

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/provision"
)

// The soak's steady mix, against the demo world (moto, fake GitHub, fake
// Launch service) and a real redis-server: comments that are not commands,
// /launch on several pull requests (VMs that live a minute), and commands
// the bot refuses. Retentions are a minute, so records, delivery ids and
// done jobs expire within the run.
const (
	soakPRs          = 6
	soakLaunchEvery  = 15 * time.Second // per pull request
	soakChatter      = 20               // non-command comments per second
	soakRefusedEvery = 5 * time.Second
	soakSampleEvery  = 15 * time.Second
	soakLifetime     = time.Minute
	soakRetention    = time.Minute
)

// soakSample is what must stay flat.
type soakSample struct {
	at                   time.Duration
	rssKB, goroutines    int
	keysNoTTL, keysTTL   int
	launches, deliveries int64
	noTTLByKind          map[string]int // by keyKind
}

// TestSoak runs the real binary for SOAK_DURATION (make soak: 10m) and
// checks that its resident memory, its goroutines and the Redis keys
// without a TTL are flat after a warm-up, and keys with a TTL bounded.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("SOAK_DURATION"))
	if err != nil {
		t.Skip("the soak runs with make soak (SOAK_DURATION=10m)")
	}
	if d < 5*time.Minute {
		// Its first third is warm-up: a VM's minute, the retentions' minute
		// and asynq's janitor; a shorter run judges the warm-up.
		t.Fatalf("SOAK_DURATION=%s is too short to judge: at least 5m", d)
	}
	bin := buildBinary(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	world := amiWorld(t)
	serverYAML := writeServerConfig(t, world, soakLifetime, 100,
		fmt.Sprintf("sweep_interval: 10s\nretention: {ended_launches: %s, deliveries: %s}\n", soakRetention, soakRetention))
	c := newCrashCase(t, world, bin, serverYAML, 100)
	for pr := 101; pr < 100+soakPRs; pr++ {
		world.gh.SetPull(demoRepo, githubtest.PullRequest{Number: pr, State: "open", Title: "soak", User: demoUser,
			HeadSHA: fmt.Sprintf("%040x", pr), HeadRef: "soak", BaseRef: "main"})
	}
	bot := c.start()
	opts, err := redis.ParseURL(c.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()

	s := &soak{t: t, world: world, webhook: "http://" + bot.addr + "/api/github/webhooks"}
	runCtx, stop := context.WithTimeout(ctx, d)
	defer stop()
	var wg sync.WaitGroup
	for pr := 100; pr < 100+soakPRs; pr++ {
		wg.Go(func() {
			s.every(runCtx, soakLaunchEvery, func() { s.send(runCtx, pr, "/launch", http.StatusAccepted, &s.launches) })
		})
	}
	wg.Go(func() {
		s.every(runCtx, time.Second/soakChatter, func() { s.send(runCtx, 100, "Looks good to me.", http.StatusNoContent, &s.chatter) })
	})
	wg.Go(func() {
		s.every(runCtx, soakRefusedEvery, func() { s.send(runCtx, 101, "/launch --lifetime 99h", http.StatusAccepted, &s.refused) })
	})
	var samples []soakSample
	start := time.Now()
	s.every(runCtx, soakSampleEvery, func() {
		samples = append(samples, s.sample(ctx, time.Since(start), bot, rdb))
		last := samples[len(samples)-1]
		t.Logf("%5.0fs RSS %6d kB, %4d goroutines, %5d keys without TTL, %6d with; sent %d /launch, %d chatter", last.at.Seconds(), last.rssKB, last.goroutines, last.keysNoTTL, last.keysTTL, last.launches, s.chatter.Load())
		t.Logf("       without TTL: %v", last.noTTLByKind)
	})
	wg.Wait()
	if n := s.failures.Load(); n > 0 {
		t.Errorf("%d deliveries were not answered as expected (first: %v)", n, s.firstErr.Load())
	}
	checkFlat(t, samples)
	// A VM past its expiry by more than a sweep and a minute is a leak.
	vms, err := world.cloud.ListManaged(ctx, demoRegion)
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range vms {
		if vm.LaunchTime.Before(time.Now().Add(-soakLifetime - 2*time.Minute)) {
			t.Errorf("VM %s launched at %s still runs", vm.ID, vm.LaunchTime.Format(time.TimeOnly))
		}
	}
}

type soak struct {
	t                          *testing.T
	world                      *demoWorld
	webhook                    string
	seq                        atomic.Int64
	launches, chatter, refused atomic.Int64
	failures                   atomic.Int64
	firstErr                   atomic.Value
}

func (s *soak) every(ctx context.Context, d time.Duration, f func()) {
	provision.Every(ctx, d, func(context.Context) { f() })
}

// send comments body on pr and delivers it under a delivery id of its own.
func (s *soak) send(ctx context.Context, pr int, body string, want int, sent *atomic.Int64) {
	c := githubtest.Comment{ID: 900_000_000 + s.seq.Add(1), User: demoUser, Body: body, CreatedAt: time.Now()}
	if body != "Looks good to me." {
		c = s.world.gh.AddComment(demoRepo, pr, demoUser, body) // commands are answered on their comment
	}
	p := &demoPlay{gh: s.world.gh, webhook: s.webhook}
	err := p.deliverWant(ctx, c, "soak-"+strconv.FormatInt(s.seq.Add(1), 10), pr, want)
	if err != nil && ctx.Err() == nil {
		s.failures.Add(1)
		s.firstErr.CompareAndSwap(nil, err.Error())
		return
	}
	sent.Add(1)
}

func (s *soak) sample(ctx context.Context, at time.Duration, bot *crashBot, rdb *redis.Client) soakSample {
	s.t.Helper()
	out := soakSample{at: at, rssKB: procStatusKB(s.t, bot.cmd.Process.Pid, "VmRSS"), goroutines: metricValue(s.t, "http://"+bot.addr+"/metrics", "go_goroutines"),
		launches: s.launches.Load(), deliveries: s.chatter.Load()}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		s.t.Fatal(err)
	}
	pipe := rdb.Pipeline()
	ttls := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		ttls[i] = pipe.TTL(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		s.t.Fatal(err)
	}
	out.noTTLByKind = map[string]int{}
	for i, ttl := range ttls {
		switch v := ttl.Val(); {
		case v == -1:
			out.keysNoTTL++
			out.noTTLByKind[keyKind(keys[i])]++
		case v > 0:
			out.keysTTL++
		}
	}
	return out
}

// keyKind is a key without its id: "launch", "asynq:{lifecycle}:t".
func keyKind(k string) string {
	if i := strings.Index(k, ":t:"); strings.HasPrefix(k, "asynq:") && i > 0 {
		return k[:i+2]
	}
	if i := strings.LastIndex(k, ":"); i > 0 {
		return k[:i]
	}
	return k
}

// checkFlat compares the samples of the second third of the run with
// those of the last third (the first third is warm-up: a VM's minute, the
// retentions' minute and the janitors' rounds): means within ±10 %, plus a
// little slack for small counts.
func checkFlat(t *testing.T, samples []soakSample) {
	t.Helper()
	if len(samples) < 6 {
		t.Fatalf("%d samples: the soak ran too short to judge", len(samples))
	}
	third := len(samples) / 3
	mid, last := samples[third:2*third], samples[2*third:]
	for _, m := range []struct {
		name  string
		slack float64
		v     func(soakSample) int
	}{
		{"RSS (kB)", 0, func(s soakSample) int { return s.rssKB }},
		{"goroutines", 3, func(s soakSample) int { return s.goroutines }},
		{"Redis keys without a TTL", 5, func(s soakSample) int { return s.keysNoTTL }},
		{"Redis keys with a TTL", 20, func(s soakSample) int { return s.keysTTL }},
	} {
		a, b := mean(mid, m.v), mean(last, m.v)
		t.Logf("%s: %.0f mid-run, %.0f at the end (%+.1f %%)", m.name, a, b, 100*(b-a)/a)
		if b > a*1.1+m.slack || b < a*0.9-m.slack {
			t.Errorf("%s not flat: %.0f mid-run, %.0f at the end", m.name, a, b)
		}
	}
}

func mean(ss []soakSample, v func(soakSample) int) float64 {
	sum := 0
	for _, s := range ss {
		sum += v(s)
	}
	return float64(sum) / float64(len(ss))
}

// procStatusKB reads a "kB" field of /proc/<pid>/status (VmRSS, VmHWM).
func procStatusKB(t testing.TB, pid int, field string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// metricValue reads one sample of a Prometheus endpoint, named as
// exposed (labels included: `name{label="v"}`).
func metricValue(t testing.TB, url, name string) int {
	t.Helper()
	v, ok := metricLookup(t, url, name)
	if !ok {
		t.Fatalf("%s has no %s", url, name)
	}
	return v
}

// metricValueOr is metricValue for a sample that may not exist yet.
func metricValueOr(t testing.TB, url, name string, absent int) int {
	t.Helper()
	if v, ok := metricLookup(t, url, name); ok {
		return v
	}
	return absent
}

func metricLookup(t testing.TB, url, name string) (int, bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(f), true
		}
	}
	return 0, false
}
