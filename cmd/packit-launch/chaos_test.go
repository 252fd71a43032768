//go:build demo

package main

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
)

// TestRedisChaos (make chaos: CHAOS_DURATION, at least 2m) runs two
// replicas of the real binary on Redis Sentinel under a steady stream of
// /launch, one new PR every 500 ms, while the primary is SIGKILLed at
// random moments (every 10-25 s) and comes back as a replica. It reports
// commands, failovers, seconds without a primary and commands answered
// twice (BENCHMARKS.md), and fails on a command never answered, a launch
// with two VMs, or a VM that outlives its expiry.
func TestRedisChaos(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("CHAOS_DURATION"))
	if err != nil {
		t.Skip("the chaos run is make chaos (CHAOS_DURATION=3m)")
	}
	if d < 2*time.Minute {
		t.Fatalf("CHAOS_DURATION=%s is too short to see several failovers: at least 2m", d)
	}
	bin := buildBinary(t)
	world := amiWorld(t)
	serverYAML := writeServerConfig(t, world, crashLifetime, 1000, "")
	rs, bots, st := sentinelFleet(t, world, bin, serverYAML)

	ctx, stop := context.WithTimeout(context.Background(), d)
	defer stop()
	var failovers atomic.Int64
	var noPrimary atomic.Int64 // milliseconds
	var bg sync.WaitGroup
	bg.Go(func() { // the chaos
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(10+rand.IntN(16)) * time.Second):
			}
			killed := rs.KillPrimary()
			rs.WaitFailover(killed, 60*time.Second)
			failovers.Add(1)
			rs.Rejoin(killed, 60*time.Second)
		}
	})
	bg.Go(func() { // seconds without a primary, as the bot sees it
		for ctx.Err() == nil {
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			start := time.Now()
			if err := st.Ping(pctx); err != nil && ctx.Err() == nil {
				noPrimary.Add(max(time.Since(start), 100*time.Millisecond).Milliseconds())
			}
			cancel()
			time.Sleep(100 * time.Millisecond)
		}
	})
	// Answers are looked for while the VMs live (a ready comment changes
	// when its VM ends), from the first command on.
	var mu sync.Mutex
	var cases []*crashCase
	readyMax := map[int]int{} // PR → most ready comments seen at once
	sampling, stopSampling := context.WithCancel(context.Background())
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for sampling.Err() == nil {
			mu.Lock()
			todo := slices.Clone(cases)
			mu.Unlock()
			for _, c := range todo {
				if n := c.readyComments(); n > 0 {
					mu.Lock()
					readyMax[c.pr] = max(readyMax[c.pr], n)
					mu.Unlock()
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
	var sent sync.WaitGroup
	var notAccepted atomic.Int64
	for pr := 1000; ctx.Err() == nil; pr++ {
		newPull(world, pr)
		c := &crashCase{t: t, world: world, pr: pr, st: st}
		comment := world.gh.AddComment(demoRepo, pr, demoUser, "/launch")
		c.comment = comment.ID
		mu.Lock()
		cases = append(cases, c)
		mu.Unlock()
		sent.Go(func() {
			for attempt := 0; attempt < 600; attempt++ {
				p := &demoPlay{gh: world.gh, webhook: "http://" + bots[(pr+attempt)%2].addr + "/api/github/webhooks"}
				err := p.deliverTo(context.Background(), comment, "chaos-"+strconv.Itoa(pr), pr)
				if err == nil || strings.Contains(err.Error(), "duplicate delivery") {
					return
				}
				time.Sleep(100 * time.Millisecond) // GitHub's redelivery, sooner
			}
			notAccepted.Add(1)
		})
		time.Sleep(500 * time.Millisecond)
	}
	sent.Wait()
	bg.Wait()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		mu.Lock()
		n := len(readyMax)
		mu.Unlock()
		if n == len(cases) {
			break
		}
	}
	stopSampling()
	sampler.Wait()
	answered, twice, duplicates := len(readyMax), 0, 0
	for _, n := range readyMax {
		if n > 1 {
			twice++
		}
	}
	// Every instance moto has, terminated ones too.
	byPR := map[string]int{}
	pages := awsec2.NewDescribeInstancesPaginator(ec2test.Client(world.moto, demoRegion), &awsec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("tag-key"), Values: []string{ec2.TagPR}}}})
	for pages.HasMorePages() {
		out, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				for _, tag := range in.Tags {
					if aws.ToString(tag.Key) == ec2.TagPR {
						byPR[aws.ToString(tag.Value)]++
					}
				}
			}
		}
	}
	for _, n := range byPR {
		if n > 1 {
			duplicates++
		}
	}
	var leaked []string
	for deadline := time.Now().Add(crashLifetime + 2*time.Minute); ; time.Sleep(time.Second) {
		if leaked = liveVMs(t, world); len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("chaos %s: %d commands (%d never accepted), %d failovers, %.1f s without a primary, %d answered, %d answered twice, %d launches with two VMs, %d VMs leaked",
		d, len(cases), notAccepted.Load(), failovers.Load(), float64(noPrimary.Load())/1000, answered, twice, duplicates, len(leaked))
	if answered < len(cases) || notAccepted.Load() > 0 {
		t.Errorf("%d of %d commands never answered (%d never accepted)", len(cases)-answered, len(cases), notAccepted.Load())
	}
	if duplicates > 0 || len(leaked) > 0 {
		t.Errorf("%d launches with two VMs, VMs leaked: %v", duplicates, leaked)
	}
}
