//go:build demo

package main

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

// failoverPRs is how many pull requests the burst comments /launch on.
const failoverPRs = 6

// TestRedisFailoverKeepsEveryPromise runs two replicas of the real binary
// on Redis Sentinel (a primary, a replica, three Sentinels on loopback)
// and SIGKILLs the primary in the middle of a burst of /launch on several
// PRs. A delivery not accepted (the bot answers 503 while there is no
// primary) is redelivered, as GitHub's redelivery would. Afterwards every
// accepted command is answered, no launch has two VMs, every VM has a
// settled record, and each VM ends at its expiry. About 90 s: the VMs live
// 45 s.
func TestRedisFailoverKeepsEveryPromise(t *testing.T) {
	t.Parallel() // it mostly waits for VMs to end: beside the crash test
	bin := buildBinary(t)
	world := amiWorld(t)
	serverYAML := writeServerConfig(t, world, crashLifetime, 20, "")
	rs, bots, st := sentinelFleet(t, world, bin, serverYAML)

	cases := make([]*crashCase, failoverPRs)
	for i := range cases {
		pr := 40 + i
		cases[i] = &crashCase{t: t, world: world, pr: pr, st: st}
		newPull(world, pr)
	}
	// The burst: a /launch a PR, every 150 ms, to the replicas in turn; the
	// primary dies after the second. Each delivery is sent until a bot
	// accepts it, as GitHub's redelivery would.
	var wg sync.WaitGroup
	var killed string
	for i, c := range cases {
		if i == 2 {
			killed = rs.KillPrimary()
		}
		comment := world.gh.AddComment(demoRepo, c.pr, demoUser, "/launch")
		c.comment = comment.ID
		wg.Go(func() {
			for attempt := 0; ; attempt++ {
				p := &demoPlay{gh: world.gh, webhook: "http://" + bots[(i+attempt)%2].addr + "/api/github/webhooks"}
				err := p.deliverTo(context.Background(), comment, "failover-"+strconv.Itoa(c.pr), c.pr)
				if err == nil || strings.Contains(err.Error(), "duplicate delivery") {
					return
				}
				if attempt > 300 {
					t.Errorf("PR %d: no bot accepted the delivery in a minute: %v", c.pr, err)
					return
				}
				time.Sleep(200 * time.Millisecond) // GitHub's redelivery, sooner
			}
		})
		time.Sleep(150 * time.Millisecond)
	}
	wg.Wait()
	promoted := rs.WaitFailover(killed, 30*time.Second)
	t.Logf("primary %s killed mid-burst; %s promoted", killed, promoted)

	// Every PR at once: a ready comment (its text changes when the VM
	// ends, so it is looked for while the VMs live), with one VM.
	answered := map[int]int{}
	for deadline := time.Now().Add(3 * time.Minute); len(answered) < len(cases); time.Sleep(100 * time.Millisecond) {
		for _, c := range cases {
			if _, ok := answered[c.pr]; ok {
				continue
			}
			if n := c.readyComments(); n > 0 {
				answered[c.pr] = n
				if vms := c.vms(); len(vms) != 1 {
					t.Errorf("PR %d: %d VMs, want one", c.pr, len(vms))
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every accepted command was answered: %v of %d PRs", answered, len(cases))
		}
	}
	for pr, n := range answered {
		if n > 1 {
			t.Logf("PR %d: answered %d times (a failover may cost that; never a second VM)", pr, n)
		}
	}
	// Then each VM ends at its expiry, and its record says so.
	for _, c := range cases {
		l := c.record()
		if l == nil {
			t.Fatalf("PR %d: no launch record", c.pr)
		}
		for deadline := l.ExpiresAt.Add(time.Minute); len(c.vms()) > 0; time.Sleep(500 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("PR %d: the VM outlived its expiry (%s) by a minute", c.pr, l.ExpiresAt.Format(time.TimeOnly))
			}
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if l = c.record(); l != nil && l.State == store.StateEnded {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("PR %d: the ended VM's record is not settled as ended: %+v", c.pr, l)
			}
		}
	}
	if vms := liveVMs(t, world); len(vms) != 0 {
		t.Errorf("%d VMs outlived the test's launches: %v", len(vms), vms)
	}
}

func liveVMs(t *testing.T, world *demoWorld) []string {
	all, err := world.cloud.ListManaged(context.Background(), demoRegion)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range all {
		if in.State == "running" || in.State == "pending" {
			out = append(out, in.ID+" "+in.Tags.Get(ec2.TagPR))
		}
	}
	return out
}

// sentinelFleet starts Redis Sentinel and two replicas of the real binary
// on it (their logs shown when t fails), and returns them with the test's
// own store on the same Redis.
func sentinelFleet(t *testing.T, world *demoWorld, bin, serverYAML string) (*storetest.Sentinel, []*crashBot, *store.Store) {
	t.Helper()
	rs := storetest.StartSentinel(t)
	env := []string{"REDIS_SENTINEL_ADDRS=" + strings.Join(rs.Addrs, ","), "REDIS_SENTINEL_MASTER=" + storetest.SentinelMaster}
	fleet := &crashCase{t: t, world: world, bin: bin, cfg: serverYAML, awsEndpoint: world.moto, env: env}
	t.Cleanup(func() {
		for _, b := range fleet.bots {
			b.cmd.Process.Kill()
			b.cmd.Wait()
		}
		if t.Failed() {
			for i, b := range fleet.bots {
				t.Logf("bot %d log:\n%s", i, b.logs.String())
			}
		}
	})
	bots := []*crashBot{fleet.start(), fleet.start()}
	st, err := store.OpenWith(context.Background(), "", store.Options{Sentinel: store.Sentinel{Addrs: rs.Addrs, Master: storetest.SentinelMaster}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return rs, bots, st
}
