//go:build demo

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/internal/syncbuf"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

// crashLifetime is short so that each case also sees its VM end, and
// longer than a killed job takes to come back: seconds, since the test ends
// the dead process's leases (storetest.ExpireLeases) rather than wait
// 1-2 minutes for asynq to.
const crashLifetime = 45 * time.Second

// The real binary, SIGKILLed at each step of a launch and started again on
// the same Redis: exactly one VM, exactly one ready comment, and the VM
// still ends at its expiry. Each step is a pull request of its own, so the
// steps run side by side against one world (moto, fake GitHub, fake Launch).
func TestCrashAtEachStepOfALaunch(t *testing.T) {
	t.Parallel() // it mostly waits for VMs to end: beside the failover test
	bin := buildBinary(t)
	world := amiWorld(t)
	world.gh.SetLatency(150 * time.Millisecond) // a window between the VM coming up and its comment
	serverYAML := writeServerConfig(t, world, crashLifetime, 20, "")

	steps := []crashStep{
		{"after the eyes reaction", func(c *crashCase) bool { return slices.Contains(world.gh.Reactions(demoRepo, c.comment), "eyes") }},
		{"after the pubkey", func(c *crashCase) bool { return c.record() != nil && c.record().PubkeyID != 0 }},
		{"right after the reservation is created", func(c *crashCase) bool { return c.record() != nil && c.record().ReservationID != 0 }},
		{"while polling the reservation", func(c *crashCase) bool {
			l := c.record()
			return l != nil && l.ReservationID != 0 && len(world.launch.RequestsTo(http.MethodGet, fmt.Sprintf("/reservations/%d", l.ReservationID))) > 0
		}},
		{"after the VM is up, before the comment", func(c *crashCase) bool {
			l := c.record()
			return l != nil && l.State == store.StateRunning && c.readyComments() == 0
		}},
	}
	// The cases run side by side within this group; the world outlives them.
	t.Run("steps", func(t *testing.T) { crashCases(t, world, bin, serverYAML, steps) })
}

// crashCases runs every case at once: each waits about a minute (the VM's
// lifetime and its sweep), so -parallel's default of one per core would
// queue them.
func crashCases(t *testing.T, world *demoWorld, bin, serverYAML string, steps []crashStep) {
	var wg sync.WaitGroup
	for i, step := range steps {
		wg.Go(func() {
			t.Run(step.name, func(t *testing.T) {
				c := newCrashCase(t, world, bin, serverYAML, 10+i)
				first := c.start()
				c.command("crash-" + strconv.Itoa(i))
				c.killWhen(first, func() bool { return step.reached(c) })
				// The dead process's jobs: taken back by the next at once.
				storetest.ExpireLeases(t, c.redisURL)
				c.start()
				c.expectOneVMThatEnds()
			})
		})
	}
	wg.Wait()
}

// TestCrashOfOneOfTwoReplicas: two replicas on one Redis get the same
// delivery twice; one of them dies with the reservation in flight, and the
// other takes its jobs back when asynq lets it (up to 90 s: a live
// worker's leases must not be ended, and nothing tells them apart from
// the dead one's), so its VM lives 150 s. Three minutes or more: make
// faults runs it.
func TestCrashOfOneOfTwoReplicas(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	world := amiWorld(t)
	world.gh.SetLatency(150 * time.Millisecond)
	c := newCrashCase(t, world, bin, writeServerConfig(t, world, 150*time.Second, 20, ""), 20)
	a, b := c.start(), c.start()
	c.commandTo([]*crashBot{a, b}, "crash-twice")
	c.killWhen(a, func() bool { return c.record() != nil && c.record().ReservationID != 0 })
	c.expectOneVMThatEnds()
}

// crashStep is where a launch is killed: reached says it got there.
type crashStep struct {
	name    string
	reached func(c *crashCase) bool
}

// crashCase is one pull request and the bot processes that serve it.
type crashCase struct {
	t        testing.TB
	world    *demoWorld
	bin, cfg string
	pr       int
	comment  int64
	redisURL string
	st       *store.Store
	mu       sync.Mutex
	bots     []*crashBot
	// awsEndpoint is where the bots' AWS calls go (default: the world's moto).
	awsEndpoint string
	// env is added to the bots' environment.
	env []string
}

type crashBot struct {
	cmd  *exec.Cmd
	addr string
	logs *syncbuf.Buffer
}

// newPull opens pull request pr on the demo repository.
func newPull(world *demoWorld, pr int) {
	world.gh.SetPull(demoRepo, githubtest.PullRequest{Number: pr, State: "open", Title: "crash", User: demoUser, HeadSHA: fmt.Sprintf("%040x", pr), HeadRef: "crash", BaseRef: "main"})
}

func newCrashCase(t testing.TB, world *demoWorld, bin, cfg string, pr int) *crashCase {
	newPull(world, pr)
	c := &crashCase{t: t, world: world, bin: bin, cfg: cfg, pr: pr, redisURL: storetest.StartRedis(t), awsEndpoint: world.moto}
	st, err := store.OpenWith(context.Background(), c.redisURL, store.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c.st = st
	t.Cleanup(func() {
		for _, b := range c.bots {
			b.cmd.Process.Kill()
			b.cmd.Wait()
		}
		st.Close()
		if t.Failed() {
			for i, b := range c.bots {
				t.Logf("bot %d log:\n%s", i, b.logs.String())
			}
		}
	})
	return c
}

// start runs the real binary on this case's Redis and waits for it to serve.
func (c *crashCase) start() *crashBot {
	c.t.Helper()
	b := &crashBot{addr: freeAddr(c.t), logs: &syncbuf.Buffer{}}
	b.cmd = exec.Command(c.bin, "serve", "--config", c.cfg)
	b.cmd.Dir = c.t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.cmd.Dir, "REDIS_URL=" + c.redisURL, "LISTEN_ADDR=" + b.addr, "LOG_FORMAT=text",
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_ENDPOINT_URL=" + c.awsEndpoint, "AWS_EC2_METADATA_DISABLED=true"}
	for k, v := range c.world.env {
		if k != "LISTEN_ADDR" {
			env = append(env, k+"="+v)
		}
	}
	b.cmd.Env = append(env, c.env...)
	b.cmd.Stdout, b.cmd.Stderr = b.logs, b.logs
	if err := b.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.bots = append(c.bots, b)
	c.mu.Unlock()
	waitServing(c.t, "http://"+b.addr+"/healthz", b.logs)
	return b
}

func (c *crashCase) command(delivery string) {
	c.commandTo([]*crashBot{c.bots[len(c.bots)-1]}, delivery)
}

// commandTo comments /launch and delivers it to each bot, under one delivery id.
func (c *crashCase) commandTo(bots []*crashBot, delivery string) {
	c.t.Helper()
	comment := c.world.gh.AddComment(demoRepo, c.pr, demoUser, "/launch")
	c.comment = comment.ID
	for i, b := range bots {
		p := &demoPlay{gh: c.world.gh, webhook: "http://" + b.addr + "/api/github/webhooks"}
		err := p.deliverTo(context.Background(), comment, delivery, c.pr)
		if i > 0 && err != nil && strings.Contains(err.Error(), "duplicate delivery") {
			continue // the replicas share Redis: the same delivery is taken once
		}
		if err != nil {
			c.t.Fatal(err)
		}
	}
}

// killWhen SIGKILLs b as soon as reached holds.
func (c *crashCase) killWhen(b *crashBot, reached func() bool) {
	c.t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !reached(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("the launch never reached the step\n%s", b.logs.String())
		}
	}
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	b.cmd.Wait()
}

// record is the PR's launch record (nil until there is one).
func (c *crashCase) record() *store.Launch {
	ls, err := c.st.LaunchesByPR(context.Background(), demoRepo, c.pr)
	if err != nil || len(ls) == 0 {
		return nil
	}
	return ls[0]
}

func (c *crashCase) readyComments() int {
	n := 0
	for _, cm := range c.world.gh.Comments(demoRepo, c.pr) {
		if cm.User != demoUser && strings.Contains(cm.Body, "ssh fedora@") {
			n++
		}
	}
	return n
}

// vms are the PR's live VMs in (moto's) EC2.
func (c *crashCase) vms() []ec2.Instance {
	all, err := c.world.cloud.ListManaged(context.Background(), demoRegion)
	if err != nil {
		c.t.Fatal(err)
	}
	var out []ec2.Instance
	for _, in := range all {
		if in.Tags.Get(ec2.TagPR) == strconv.Itoa(c.pr) {
			out = append(out, in)
		}
	}
	return out
}

// expectOneVMThatEnds: one ready comment, one VM, and the VM gone after its expiry.
func (c *crashCase) expectOneVMThatEnds() {
	c.t.Helper()
	if n := c.expectVMThatEnds(); n != 1 {
		c.t.Errorf("%d ready comments, want one", n)
	}
}

// expectVMThatEnds: a ready comment, one VM, and the VM gone after its
// expiry; it returns how many ready comments there were.
func (c *crashCase) expectVMThatEnds() int {
	c.t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); c.readyComments() == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("no ready comment; record %+v", c.record())
		}
	}
	n := c.readyComments()
	if vms := c.vms(); len(vms) != 1 {
		c.t.Fatalf("%d VMs, want one", len(vms))
	}
	l := c.record()
	for deadline := l.ExpiresAt.Add(time.Minute); len(c.vms()) > 0; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("the VM outlived its expiry (%s) by a minute", l.ExpiresAt.Format(time.TimeOnly))
		}
	}
	return n
}

// amiWorld is the demo world (moto, fake GitHub, fake Launch service) with
// a repo config that launches its AMI at once, stopped when t ends.
func amiWorld(t testing.TB) *demoWorld {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	world, stop, err := startDemoWorld(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); cancel() })
	world.gh.SetFile(demoRepo, "main", config.RepoConfigPath, fmt.Sprintf("default: fedora\nmachines:\n  fedora:\n    image: %s\n    region: %s\n    instance_type: t3.small\n    ssh_user: fedora\n", world.ami, demoRegion))
	return world
}

// writeServerConfig writes the demo's server config with VMs living
// lifetime (0: the demo's), both quotas at limit (0: the demo's), and extra
// top-level lines; it returns the file's path.
func writeServerConfig(t testing.TB, world *demoWorld, lifetime time.Duration, limit int, extra string) string {
	t.Helper()
	yaml := string(world.serverYAML)
	edit := func(old, new string) {
		if !strings.Contains(yaml, old) {
			t.Fatalf("the demo's server config has no %q to change", old)
		}
		yaml = strings.Replace(yaml, old, new, 1)
	}
	if lifetime > 0 {
		edit("default_lifetime: 2h", "default_lifetime: "+lifetime.String())
	}
	if limit > 0 {
		edit("limits: {per_owner: 2, per_repo: 5}", fmt.Sprintf("limits: {per_owner: %d, per_repo: %d}", limit, limit))
	}
	// The real binary dials the VMs' real addresses, which moto makes up:
	// its ready comments come without waiting for sshd.
	edit("max_lifetime: 8h\n", "max_lifetime: 8h\n    ssh_probe: false\n")
	// The tests comment as the demo's one reviewer at machine speed (the
	// chaos test 100 a minute): far past a person's commands budget.
	yaml += "limits: {commands_per_minute: 1000}\n"
	path := filepath.Join(t.TempDir(), "packit-launch.yaml")
	if err := os.WriteFile(path, []byte(yaml+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// buildBinary builds the production binary (no demo, no race detector) as
// deploy/Containerfile and make build do.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "packit-launch")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// About 21 MB. A template's Execute (its method lookup by name) once
	// kept every exported method of the AWS SDK in it: 83 MB unstripped.
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 32<<20 {
		t.Errorf("the binary is %d MB: something keeps dead code in it", st.Size()>>20)
	}
	return bin
}
