//go:build demo

package main

import (
	"context"
	"fmt"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/store"
)

const (
	memLive, memEnded = 10_000, 10_000
	memCommands       = 20
)

// BenchmarkServeWith10kLaunches measures the real binary's resident memory
// with 10,000 running launches (their VMs in a fake EC2 that pages like
// EC2; everything else in moto) and 10,000 ended ones in retention, after
// sweeps over them every 10 s and quota checks of new /launch commands.
// One run whatever b.N: it reports memory, not time.
//
//	go test -tags demo -run '^$' -bench ServeWith10kLaunches ./cmd/packit-launch/
func BenchmarkServeWith10kLaunches(b *testing.B) {
	bin := buildBinary(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	world := amiWorld(b)
	fake := ec2test.NewFakeEC2()
	fake.SetEpoch(time.Now().Add(-4 * time.Hour)) // the 10,000 VMs launched a second apart, all younger than the profile's 8h
	moto, err := url.Parse(world.moto)
	if err != nil {
		b.Fatal(err)
	}
	fake.Fallback = httputil.NewSingleHostReverseProxy(moto)
	awsURL, err := serveLocal(ctx, fake)
	if err != nil {
		b.Fatal(err)
	}
	serverYAML := writeServerConfig(b, world, 0, 0, "sweep_interval: 10s\n")
	c := newCrashCase(b, world, bin, serverYAML, 200)
	c.awsEndpoint = awsURL
	if v := os.Getenv("BOT_GODEBUG"); v != "" {
		c.env = append(c.env, "GODEBUG="+v)
	}
	start := time.Now()
	seedLaunches(b, c.st, fake)
	b.Logf("seeded %d running and %d ended launches in %s", memLive, memEnded, time.Since(start).Round(time.Millisecond))

	bot := c.start()
	metrics := "http://" + bot.addr + "/metrics"
	idle := procStatusKB(b, bot.cmd.Process.Pid, "VmRSS")
	sweeps := func() int { return metricValueOr(b, metrics, `packit_launch_sweeps_total{outcome="ok"}`, 0) }
	for deadline := time.Now().Add(2 * time.Minute); sweeps() < 2; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			b.Fatalf("no two complete sweeps in 2 minutes:\n%s", bot.logs.String())
		}
	}
	if n := metricValue(b, metrics, "packit_launch_managed_vms"); n != memLive {
		b.Fatalf("the sweep saw %d managed VMs, want %d", n, memLive)
	}
	// alice owns 20 of the running launches: each /launch is refused by
	// the per-owner limit, after the quota check over all 10,000.
	p := &demoPlay{gh: world.gh, webhook: "http://" + bot.addr + "/api/github/webhooks"}
	for i := range memCommands {
		cm := world.gh.AddComment(demoRepo, c.pr, demoUser, "/launch")
		if err := p.deliverTo(ctx, cm, "mem-"+strconv.Itoa(i), c.pr); err != nil {
			b.Fatal(err)
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); refusals(world, c.pr) < memCommands; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d /launch answered in 2 minutes:\n%s", refusals(world, c.pr), memCommands, bot.logs.String())
		}
	}
	for after := sweeps(); sweeps() < after+1; time.Sleep(time.Second) {
	}
	rss, peak := procStatusKB(b, bot.cmd.Process.Pid, "VmRSS"), procStatusKB(b, bot.cmd.Process.Pid, "VmHWM")
	b.Logf("RSS after start %.1f MB, after %d sweeps and %d quota checks %.1f MB, peak %.1f MB", mb(idle), sweeps(), memCommands, mb(rss), mb(peak))
	b.ReportMetric(mb(idle), "MB-rss-start")
	b.ReportMetric(mb(rss), "MB-rss-end")
	b.ReportMetric(mb(peak), "MB-rss-peak")
	b.ReportMetric(0, "ns/op")
}

func mb(kb int) float64 { return float64(kb) / 1024 }

// refusals counts the bot's answers on pr that name the per-owner limit.
func refusals(world *demoWorld, pr int) int {
	n := 0
	for _, cm := range world.gh.Comments(demoRepo, pr) {
		if cm.User != demoUser && strings.Contains(cm.Body, "allowed VMs running") {
			n++
		}
	}
	return n
}

// seedLaunches writes memLive running launches, each with its VM in fake,
// and memEnded ended ones, as the bot itself would have.
func seedLaunches(b *testing.B, st *store.Store, fake *ec2test.FakeEC2) {
	ctx := context.Background()
	now := time.Now().UTC()
	for i := range memLive + memEnded {
		owner := "user" + strconv.Itoa(i%500)
		if i%500 == 0 {
			owner = demoUser
		}
		l, _, err := st.CreateLaunch(ctx, &store.Launch{Owner: owner, Repo: fmt.Sprintf("demo/repo-%d", i%100), PR: i % 10,
			CommandCommentID: int64(i + 1), InstallationID: 1, Machine: "fedora", Image: "ami-1", Region: demoRegion, InstanceType: "t3.small",
			Profile: "demo", Project: "demo/*", KeyBody: "ssh-ed25519 AAAA", State: store.StateRunning, PublicIPv4: "198.51.100.7",
			CreatedAt: now, LaunchedAt: now, ExpiresAt: now.Add(time.Hour), HardExpiresAt: now.Add(8 * time.Hour), Lifetime: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		var instance, template string
		if i < memLive {
			instance, template = fake.AddManagedVM(l.ID, provision.BirthTags(l))
		}
		if _, err := st.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
			x.InstanceID, x.TemplateID = instance, template
			if i >= memLive {
				x.State, x.EndedAt, x.EndReason = store.StateEnded, now, "its lifetime ended"
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
