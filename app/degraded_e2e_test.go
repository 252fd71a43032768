package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
	"github.com/packit/packit-launch/store"
)

// A slow Launch service holds no worker: while more reservations than the
// lifecycle has workers stay pending, each is looked at by short scheduled
// jobs, a command on another PR is answered, and once the service
// finishes them every VM is reported from a later look.
func TestSlowLaunchServiceHoldsNoWorker(t *testing.T) {
	e := newLaunchEnv(t, func(o *launchOptions) { o.polls, o.perOwner, o.totalVMs = true, 10, 10 })
	const n = 6 // the harness runs 4 lifecycle jobs at once
	var cs []*comment
	for pr := 1; pr <= n; pr++ {
		e.gh.SetPull("packit/ogr", githubtest.PullRequest{Number: pr, State: "open", HeadSHA: strings.Repeat("c", 40), HeadRef: "f", BaseRef: "main"})
		c := defaultComment("/launch")
		c.Number = pr
		if status := e.post("issue_comment", c.postTo(e.gh)); status != http.StatusAccepted {
			t.Fatalf("intake answered %d", status)
		}
		cs = append(cs, c)
	}
	launching := func() []*store.Launch {
		var out []*store.Launch
		for _, c := range cs {
			ls, err := e.st.LaunchesByPR(context.Background(), c.Repo, c.Number)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range ls {
				if l.State == store.StateLaunching && l.ReservationID != 0 && !l.ReservationPollAt.IsZero() {
					out = append(out, l)
				}
			}
		}
		return out
	}
	var first []*store.Launch
	waitFor(t, func() bool { first = launching(); return len(first) == n }, "for", n, "launches waiting on their reservations", dump(e))
	// The looks go on as jobs of their own: each launch's next look moves.
	waitFor(t, func() bool {
		later := launching()
		if len(later) != n {
			return false
		}
		for i := range later {
			if !later[i].ReservationPollAt.After(first[i].ReservationPollAt) {
				return false
			}
		}
		return true
	}, "for a second look at every reservation")

	// Meanwhile a command on another PR is answered.
	e.gh.SetPull("packit/ogr", githubtest.PullRequest{Number: 100, State: "open", HeadSHA: strings.Repeat("d", 40), HeadRef: "g", BaseRef: "main"})
	status := defaultComment("/launch status")
	status.Number = 100
	if code := e.post("issue_comment", status.postTo(e.gh)); code != http.StatusAccepted {
		t.Fatalf("intake answered %d", code)
	}
	waitFor(t, func() bool { return len(botComments(e.gh, "packit/ogr", 100)) == 1 }, "for the answer to /launch status")
	if len(launching()) != n {
		t.Fatal("a launch moved on while its reservation was pending")
	}
	if checks := e.gh.CheckRuns("packit/ogr"); len(checks) < n {
		t.Errorf("%d check runs for %d launches in progress", len(checks), n)
	}

	// The Launch service finishes them: a later look takes each VM.
	e.clock.Advance(10 * time.Minute)
	for _, c := range cs {
		l := e.reported(c)
		if l.State != store.StateRunning || l.InstanceID == "" {
			t.Fatalf("launch on #%d: %s %q", c.Number, l.State, l.Failure)
		}
		comments := botComments(e.gh, "packit/ogr", c.Number)
		if last := comments[len(comments)-1].Body; !strings.Contains(last, "your VM is ready") {
			t.Errorf("#%d: %s", c.Number, last)
		}
	}
	// One reservation each (the fake answers 429 to a sixth within a second
	// of its clock; the retry adopted or made the one reservation).
	if rs := e.api.Reservations("org-1"); len(rs) != n {
		t.Errorf("%d reservations for %d launches", len(rs), n)
	}
}

// A stop that comes before the launch has asked the Launch service for
// anything cancels it: no reservation is ever made, the quota is free at
// once, and the PR is told it was cancelled.
func TestStopBeforeTheReservationCancelsTheLaunch(t *testing.T) {
	e := newLaunchEnv(t, func(o *launchOptions) { o.perOwner = 1 })
	entered, release := make(chan struct{}), make(chan struct{})
	var once, released sync.Once
	letGo := func() { released.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	// The launch job is held while registering the key: still accepted.
	e.api.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/pubkeys", Times: 1, Hook: func() {
		once.Do(func() { close(entered) })
		<-release
	}})
	c := defaultComment("/launch")
	if status := e.post("issue_comment", c.postTo(e.gh)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the launch never registered its key")
	}
	stop := defaultComment("/launch stop")
	if status := e.post("issue_comment", stop.postTo(e.gh)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	var got []githubtest.Comment
	waitFor(t, func() bool { got = botComments(e.gh, "packit/ogr", 7); return len(got) > 0 }, "for the answer to /launch stop")
	if len(got) != 1 || !strings.Contains(got[0].Body, "is cancelled before its VM was launched") {
		t.Fatalf("stop answer: %+v", got)
	}
	letGo()
	l := e.reported(c)
	if l.State != store.StateEnded || l.EndReason != "`alice` stopped it" || l.ReservationID != 0 {
		t.Fatalf("record: %s %q reservation %d", l.State, l.EndReason, l.ReservationID)
	}
	// Reported by the launch job itself, once released: it went on with the
	// key and stopped at the record's guard.
	if n := len(e.reservationRequests()); n != 0 {
		t.Fatalf("%d reservations made for a cancelled launch", n)
	}
	// per_owner is 1: the cancelled launch holds no quota.
	again := e.launch(defaultComment("/launch"))
	if again.State != store.StateRunning {
		t.Fatalf("the next launch: %s %q", again.State, again.Failure)
	}
}

// A /launch whose check run GitHub keeps refusing (a 422: waiting on
// GitHub cannot help) ends its launch when the command gives up: it holds
// no quota and does not show as in flight.
func TestCommandThatCannotStartItsLaunchEndsIt(t *testing.T) {
	e := newLaunchEnv(t, func(o *launchOptions) { o.perOwner = 1 })
	e.gh.Fail(githubtest.Failure{Method: http.MethodPost, PathPrefix: "/repos/packit/ogr/check-runs", Status: http.StatusUnprocessableEntity, Times: -1})
	c := defaultComment("/launch")
	if status := e.post("issue_comment", c.postTo(e.gh)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	var l *store.Launch
	waitFor(t, func() bool {
		ls, err := e.st.LaunchesByPR(context.Background(), "packit/ogr", 7)
		if err != nil || len(ls) != 1 {
			return false
		}
		l = ls[0]
		return l.State.Ended()
	}, "for the launch to end when its command gave up")
	if l.State != store.StateFailed || !strings.Contains(l.Failure, "could not finish starting it") || l.ReservationID != 0 {
		t.Fatalf("record: %s %q reservation %d", l.State, l.Failure, l.ReservationID)
	}
	waitFor(t, func() bool {
		cs := botComments(e.gh, "packit/ogr", 7)
		return len(cs) == 1 && strings.Contains(cs[0].Body, "comment it again")
	}, "for the apology")
	e.gh.ClearFailures()
	if again := e.launch(defaultComment("/launch")); again.State != store.StateRunning {
		t.Fatalf("the next launch: %s %q", again.State, again.Failure)
	}
}

// dump is what a failed wait shows: the records and the bot's comments.
func dump(e *launchEnv) fmt.Stringer {
	return stringer(func() string {
		var b strings.Builder
		for pr := 1; pr <= 10; pr++ {
			ls, _ := e.st.LaunchesByPR(context.Background(), "packit/ogr", pr)
			for _, l := range ls {
				fmt.Fprintf(&b, "\n#%d %s %s res=%d poll=%s failure=%q", pr, l.ID, l.State, l.ReservationID, l.ReservationPollAt, l.Failure)
			}
			for _, c := range botComments(e.gh, "packit/ogr", pr) {
				fmt.Fprintf(&b, "\n#%d comment: %.200s", pr, c.Body)
			}
		}
		return b.String()
	})
}

type stringer func() string

func (s stringer) String() string { return s() }

// A burst of GitHub 502s longer than a command's retries holds the command
// (its deadline counts from receipt) instead of dropping it: it is
// answered once GitHub recovers, and never apologised for.
func TestGitHubBurstDoesNotDropTheCommand(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	// Every attempt starts with 👀: four of them fail, as many as a
	// command has attempts.
	h.gh.FailNext(http.MethodPost, "/repos/packit/ogr/issues/comments/", http.StatusBadGateway, 4)
	c := defaultComment("/launch help")
	if status := h.post("issue_comment", c.postTo(h.gh)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	var got []githubtest.Comment
	waitFor(t, func() bool { got = botComments(h.gh, "packit/ogr", 7); return len(got) > 0 }, "for the answer after the burst")
	if len(got) != 1 || strings.Contains(got[0].Body, "Something went wrong") || !strings.Contains(got[0].Body, "/launch") {
		t.Fatalf("answers: %+v", got)
	}
	if n := h.gh.CallCount(http.MethodPost, "/repos/packit/ogr/issues/comments/"); n != 5 {
		t.Errorf("%d reactions tried, want 4 failed and 1 taken", n)
	}
}

// A command about a pull request GitHub no longer has is answered as such
// at once, not retried and apologised for as if GitHub were failing.
func TestGonePullRequestIsAnsweredAsGone(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	c := defaultComment("/launch")
	c.Number = 404 // commented on, but GitHub says the PR is not there
	if status := h.post("issue_comment", c.postTo(h.gh)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	var got []githubtest.Comment
	waitFor(t, func() bool { got = botComments(h.gh, "packit/ogr", 404); return len(got) > 0 }, "for the answer")
	if len(got) != 1 || !strings.Contains(got[0].Body, "no longer exists") {
		t.Fatalf("answers: %+v", got)
	}
	if n := h.gh.CallCount(http.MethodGet, "/repos/packit/ogr/pulls/404"); n != 1 {
		t.Errorf("the gone PR was asked for %d times", n)
	}
}

// Redis is killed and comes back empty after a launch made its reservation, and the
// command comes again (a replay under a new delivery id): its launch has
// the same id, finds its template in AWS and its reservation by name, and
// takes the same VM. One comment, one reservation, one VM.
func TestReplayAfterRedisLostItsRecordMakesNoSecondVM(t *testing.T) {
	e := newLaunchEnv(t)
	c := defaultComment("/launch")
	first := e.launch(c)
	if first.State != store.StateRunning {
		t.Fatalf("first launch: %s %q", first.State, first.Failure)
	}
	e.loseRedis()
	// A replay comes later than the bot's clock margin over AWS's (2 s); real
	// ones take minutes. The bot's clock moves on, not the test's: moto
	// dates the template in real time.
	e.launches.lc.SetClock(func() time.Time { return time.Now().Add(3 * time.Second) })
	if status := e.post("issue_comment", c.postTo(e.gh)); status != http.StatusAccepted {
		t.Fatalf("replay: intake answered %d", status)
	}
	again := e.reported(c)
	if again.ID != first.ID || again.State != store.StateRunning || again.InstanceID != first.InstanceID || again.ReservationID != first.ReservationID {
		t.Fatalf("replayed launch %s %s instance %s reservation %d; first %s instance %s reservation %d",
			again.ID, again.State, again.InstanceID, again.ReservationID, first.ID, first.InstanceID, first.ReservationID)
	}
	if rs := e.api.Reservations("org-1"); len(rs) != 1 {
		t.Errorf("%d reservations for one comment", len(rs))
	}
	if n := len(e.reservationRequests()); n != 1 {
		t.Errorf("%d reservation requests for one comment", n)
	}
}

// Redis is killed and comes back empty while a VM runs: the sweeper rebuilds its record
// from the VM's tags, posts its ready comment again and completes its check
// run, and /launch stop works on it.
func TestSweeperRebuildsALostRecordFromTags(t *testing.T) {
	e := newLaunchEnv(t)
	first := e.launch(defaultComment("/launch"))
	e.loseRedis()
	before := len(botComments(e.gh, "packit/ogr", 7))
	e.launches.lc.Sweep(context.Background())
	l, err := e.st.GetLaunch(context.Background(), first.ID)
	if err != nil {
		t.Fatalf("the record was not rebuilt: %v", err)
	}
	if l.State != store.StateRunning || l.InstanceID != first.InstanceID || l.SSHUser != "fedora" || l.InstallationID != first.InstallationID ||
		l.CheckRunID != first.CheckRunID || !l.ExpiresAt.Equal(first.ExpiresAt.Truncate(time.Second)) || !l.Reported {
		t.Fatalf("rebuilt record: %+v", l)
	}
	// The sticky comment, found by its marker, says it again: not a second one.
	comments := botComments(e.gh, "packit/ogr", 7)
	if len(comments) != before || l.CommentID != comments[0].ID || !strings.Contains(comments[0].Body, "ssh fedora@"+first.PublicIPv4) {
		t.Fatalf("the rebuilt record's ready comment (id %d): %+v", l.CommentID, comments)
	}
	got := e.command(defaultComment("/launch stop " + first.ID))
	if len(got) != 1 || !strings.Contains(got[0].Body, "is terminated") {
		t.Fatalf("stop answer: %+v", got)
	}
	e.waitTerminated(first.InstanceID)
}

// TestFaultMatrix puts one fault at one step of a launch, case by case, on
// real redis-server, moto_server and the fakes: GitHub failing (5xx) when
// the command checks permission, opens the check run and posts the ready
// comment; the Launch service failing (5xx), losing its answer or being
// slow when the key is registered, the reservation made and looked at;
// Redis killed and restarted empty as the reservation is asked for, and once the VM runs. After recovery (the fault
// ends; the queue's retries and, for Redis, one sweep run) each case has
// exactly one VM, its record running with it and counted once in the live
// index, one ready comment on the PR and a completed, successful check run.
// (SIGKILL at each step is TestCrashAtEachStepOfALaunch, on the real binary.)
func TestFaultMatrix(t *testing.T) {
	slow := func() { time.Sleep(1500 * time.Millisecond) }
	cases := []struct {
		name   string
		inject func(e *launchEnv)
		wait   func(e *launchEnv) // instead of waiting for the report: what brings the launch back
		after  func(e *launchEnv) // once the launch reported, before the checks
	}{
		{name: "github-5xx/permission", inject: func(e *launchEnv) {
			e.gh.FailNext(http.MethodGet, "/repos/packit/ogr/collaborators/", http.StatusBadGateway, 3)
		}},
		{name: "github-5xx/check-run", inject: func(e *launchEnv) {
			e.gh.FailNext(http.MethodPost, "/repos/packit/ogr/check-runs", http.StatusBadGateway, 3)
		}},
		{name: "github-5xx/ready-comment", inject: func(e *launchEnv) {
			e.gh.FailNext(http.MethodPost, "/repos/packit/ogr/issues/7/comments", http.StatusInternalServerError, 2)
		}},
		{name: "launch-5xx/key", inject: func(e *launchEnv) {
			e.api.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/pubkeys", Status: http.StatusServiceUnavailable, Times: 2})
		}},
		{name: "launch-5xx/reserve", inject: func(e *launchEnv) {
			e.api.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/reservations/aws", Status: http.StatusBadGateway, Times: 2})
		}},
		{name: "launch-lost-answer/reserve", inject: func(e *launchEnv) {
			e.api.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/reservations/aws", AfterHandling: true, Reset: true})
		}},
		{name: "launch-5xx/look", inject: func(e *launchEnv) {
			e.api.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/reservations/*", Status: http.StatusServiceUnavailable, Times: 4})
		}},
		{name: "launch-slow/look", inject: func(e *launchEnv) {
			e.api.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/reservations/*", Times: 3, Hook: slow})
		}},
		{name: "redis-lost/reservation", inject: func(e *launchEnv) {
			// Redis is killed and restarted empty as the reservation is asked for: the launch job
			// loses its record and its queue; the Launch service goes on.
			e.api.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/reservations/aws", Hook: e.loseRedis})
		}, wait: func(e *launchEnv) {
			waitFor(e.t, func() bool { return len(e.api.Reservations("org-1")) == 1 }, "for the reservation")
			// The service finishes the reservation on its own (the fake moves
			// when asked); then the sweeper finds the VM by its template.
			e.clock.Advance(time.Hour)
			if _, err := e.client.GetReservation(context.Background(), e.api.Reservations("org-1")[0].ID); err != nil {
				e.t.Fatal(err)
			}
			e.launches.lc.Sweep(context.Background())
		}},
		{name: "redis-lost/running", after: func(e *launchEnv) {
			e.loseRedis()
			e.launches.lc.Sweep(context.Background())
		}},
	}
	// GitHub not answering until the bot's client gives up (30 s) is slow:
	// those cases run with FAULTS=all (make faults, which CI runs too).
	slowCases := []struct {
		name   string
		inject func(e *launchEnv)
		wait   func(e *launchEnv)
		after  func(e *launchEnv)
	}{
		{name: "github-timeout/check-run", inject: func(e *launchEnv) {
			e.gh.Fail(githubtest.Failure{Method: http.MethodPost, PathPrefix: "/repos/packit/ogr/check-runs", Hang: true})
		}, wait: reportedWithin(2 * time.Minute)},
		{name: "github-timeout/ready-comment", inject: func(e *launchEnv) {
			e.gh.Fail(githubtest.Failure{Method: http.MethodPost, PathPrefix: "/repos/packit/ogr/issues/7/comments", Hang: true})
		}, wait: reportedWithin(2 * time.Minute)},
	}
	if os.Getenv("FAULTS") == "all" {
		cases = append(cases, slowCases...)
	} else {
		t.Logf("%d slow cases (GitHub timeouts) run with FAULTS=all: make faults", len(slowCases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			polls := strings.HasSuffix(tc.name, "/look")
			e := newLaunchEnv(t, func(o *launchOptions) { o.polls = polls })
			if polls { // looks as in production: the Launch service's time moves on its own
				stop := make(chan struct{})
				t.Cleanup(func() { close(stop) })
				go func() {
					for {
						select {
						case <-stop:
							return
						case <-time.After(100 * time.Millisecond):
							e.clock.Advance(30 * time.Second)
						}
					}
				}()
			}
			if tc.inject != nil {
				tc.inject(e)
			}
			c := defaultComment("/launch")
			var l *store.Launch
			if tc.wait == nil {
				l = e.launch(c)
			} else {
				if status := e.post("issue_comment", c.postTo(e.gh)); status != http.StatusAccepted {
					t.Fatalf("intake answered %d", status)
				}
				tc.wait(e)
				l = e.reported(c)
			}
			if tc.after != nil {
				tc.after(e)
			}
			e.api.ClearFaults()
			e.gh.ClearFailures()

			ctx := context.Background()
			live, err := e.cloud.ListManaged(ctx, "us-east-1")
			if err != nil {
				t.Fatal(err)
			}
			var running []string
			for _, in := range live {
				if in.State == "running" || in.State == "pending" {
					running = append(running, in.ID)
				}
			}
			if len(running) != 1 || l.InstanceID != running[0] {
				t.Fatalf("VMs %v for launch %s (%s, instance %s)", running, l.ID, l.State, l.InstanceID)
			}
			rec, err := e.st.GetLaunch(ctx, l.ID)
			if err != nil || rec.State != store.StateRunning || rec.InstanceID != running[0] || !rec.Reported {
				t.Fatalf("record: %+v %v", rec, err)
			}
			active, err := e.st.ActiveIndex(ctx)
			if err != nil || len(active) != 1 || active[0].ID != l.ID {
				t.Fatalf("live index (what quotas count): %+v %v", active, err)
			}
			ready := 0
			for _, cm := range botComments(e.gh, "packit/ogr", 7) {
				if strings.Contains(cm.Body, "your VM is ready") {
					ready++
				}
				if strings.Contains(cm.Body, "Something went wrong") {
					t.Errorf("the PR got an apology: %s", cm.Body)
				}
			}
			if ready != 1 {
				t.Errorf("%d ready comments", ready)
			}
			var checks []githubtest.CheckRun
			for _, cr := range e.gh.CheckRuns("packit/ogr") {
				if cr.ExternalID == l.ID {
					checks = append(checks, cr)
				}
			}
			if len(checks) != 1 || checks[0].Status != "completed" || checks[0].Conclusion != "success" {
				t.Errorf("check runs: %+v", checks)
			}
			if rs := e.api.Reservations("org-1"); len(rs) != 1 {
				t.Errorf("%d reservations", len(rs))
			}
		})
	}
}

// loseRedis kills the bot's Redis and starts it again empty, as a Redis
// without persistence that crashed: records, queues, locks, delivery ids
// are gone. It may run on a fake's goroutine (a fault's hook).
func (e *launchEnv) loseRedis() {
	if err := e.redis.Restart(); err != nil {
		e.t.Errorf("restart redis-server: %v", err)
	}
}

// reportedWithin waits up to d for a launch on PR #7 to be reported.
func reportedWithin(d time.Duration) func(e *launchEnv) {
	return func(e *launchEnv) {
		deadline := time.Now().Add(d)
		for {
			ls, err := e.st.LaunchesByPR(context.Background(), "packit/ogr", 7)
			if err == nil && len(ls) == 1 && ls[0].Reported {
				return
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("no launch reported within %s: %v %v", d, ls, err)
			}
			time.Sleep(100 * time.Millisecond) // polling the record, not synchronising logic
		}
	}
}
