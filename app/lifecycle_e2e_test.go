package app

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	awstypes "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

func lifetime(d string) func(*launchOptions) { return func(o *launchOptions) { o.lifetime = d } }

// terminated reports whether EC2 has ended an instance.
func (e *launchEnv) terminated(id string) bool {
	st := e.instance(id).State
	return st == "shutting-down" || st == "terminated"
}

func (e *launchEnv) waitTerminated(id string) {
	e.t.Helper()
	waitFor(e.t, func() bool { return e.terminated(id) }, "for instance", id, "to be terminated")
}

func TestExpiryTerminatesTheVMAndSaysSo(t *testing.T) {
	e := newLaunchEnv(t, lifetime("3s"))
	l := e.launch(defaultComment("/launch"))
	ended := e.waitState(l.ID, store.StateEnded)
	e.waitTerminated(l.InstanceID)
	if ended.EndReason != provision.ReasonExpired || ended.EndedAt.Before(l.ExpiresAt.Add(-provision.EarlyTolerance)) {
		t.Errorf("ended: %s at %s, expiry %s", ended.EndReason, ended.EndedAt, l.ExpiresAt)
	}
	waitFor(t, func() bool { return strings.Contains(botComments(e.gh, "packit/ogr", 7)[0].Body, "was terminated at") })
	body := botComments(e.gh, "packit/ogr", 7)[0].Body
	if !strings.Contains(body, "because its lifetime ended") {
		t.Errorf("sticky comment:\n%s", body)
	}
	if cr := checkRunFor(t, e.gh, l.ID); cr.Conclusion != "neutral" || !strings.Contains(cr.Summary, "was terminated") || len(cr.Actions) != 0 {
		t.Errorf("check run of an ended VM (no buttons left): %+v", cr)
	}
}

func TestExtendThenTheOldTimerDoesNothing(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	c := defaultComment("/launch extend 90m")
	got := e.command(c)
	if len(got) != 1 || !strings.Contains(got[0].Body, "`"+l.ID+"` now terminates at") {
		t.Fatalf("extend answer: %+v", got)
	}
	ext, _ := e.st.GetLaunch(context.Background(), l.ID)
	if !ext.ExpiresAt.Equal(l.ExpiresAt.Add(90 * time.Minute)) {
		t.Fatalf("expiry %s, want %s", ext.ExpiresAt, l.ExpiresAt.Add(90*time.Minute))
	}
	if tag := e.instance(l.InstanceID).Tags.Get(ec2.TagExpiresAt); tag != ext.ExpiresAt.UTC().Format(time.RFC3339) {
		t.Errorf("the instance's tag %s was not moved first", tag)
	}
	// The original timer fires (here: right at the old expiry) and must not terminate.
	e.launches.lc.SetClock(func() time.Time { return l.ExpiresAt })
	old, _ := json.Marshal(map[string]any{"launch_id": l.ID, "region": l.Region, "instance_id": l.InstanceID, "expires_at": l.ExpiresAt}) // a queued timer, as stored
	if err := e.launches.lc.HandleExpire(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	if e.terminated(l.InstanceID) {
		t.Fatal("an extended VM was terminated at its old expiry")
	}
	// At the new expiry it ends.
	e.launches.lc.SetClock(func() time.Time { return ext.ExpiresAt.Add(time.Second) })
	if err := e.launches.lc.HandleExpire(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	e.waitTerminated(l.InstanceID)
}

func TestExtendNeverPassesTheHardExpiry(t *testing.T) {
	e := newLaunchEnv(t, lifetime("7h30m"))
	l := e.launch(defaultComment("/launch"))
	c := defaultComment("/launch extend 2h")
	got := e.command(c)
	ext, _ := e.st.GetLaunch(context.Background(), l.ID)
	if !ext.ExpiresAt.Equal(l.HardExpiresAt) || len(got) != 1 || !strings.Contains(got[0].Body, "its latest possible end") {
		t.Fatalf("expiry %s (hard %s), answer %+v", ext.ExpiresAt, l.HardExpiresAt, got)
	}
	c = defaultComment("/launch extend 2h")
	got = e.command(c)
	if len(got) != 1 || !strings.Contains(got[0].Body, "cannot be extended") {
		t.Fatalf("second extend: %+v", got)
	}
}

func TestStopOwnOthersAndAll(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	// Someone else may not stop alice's VM...
	e.gh.SetPermission("packit/ogr", "bob", "write")
	bob := defaultComment("/launch stop " + l.ID)
	bob.User = "bob"
	got := e.command(bob)
	if len(got) != 1 || !strings.Contains(got[0].Body, "only its owner or a repository admin") || e.terminated(l.InstanceID) {
		t.Fatalf("bob's stop: %+v", got)
	}
	// "all" from someone who is not an admin means all of their own: none here.
	bobAll := defaultComment("/launch stop all")
	bobAll.User = "bob"
	got = e.command(bobAll)
	if len(got) != 1 || !strings.Contains(got[0].Body, "no running VM of yours") || e.terminated(l.InstanceID) {
		t.Fatalf("bob's stop all: %+v", got)
	}
	// ...a repository admin may.
	e.gh.SetPermission("packit/ogr", "carol", "admin")
	carol := defaultComment("/launch stop all")
	carol.User = "carol"
	got = e.command(carol)
	if len(got) != 1 || !strings.Contains(got[0].Body, "is terminated") {
		t.Fatalf("admin stop: %+v", got)
	}
	e.waitTerminated(l.InstanceID)
	ended, _ := e.st.GetLaunch(context.Background(), l.ID)
	if ended.State != store.StateEnded || ended.EndReason != "`carol` stopped it" {
		t.Errorf("record: %s %q", ended.State, ended.EndReason)
	}
	// status lists it as terminated.
	st := defaultComment("/launch status")
	got = e.command(st)
	if len(got) != 1 || !strings.Contains(got[0].Body, "`"+l.ID+"`") || !strings.Contains(got[0].Body, "terminated") {
		t.Errorf("status: %+v", got)
	}
}

func TestCheckRunButtons(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	post := func(identifier, sender string) {
		t.Helper()
		if status := e.post("check_run", buttonPayload("packit/ogr", l.ID, identifier, sender, l.CheckRunID, l.PR)); status != http.StatusAccepted {
			t.Fatalf("button: status %d", status)
		}
	}
	post("extend", "alice")
	waitFor(t, func() bool { // the answer comes last
		got := botComments(e.gh, "packit/ogr", 7)
		return strings.Contains(got[len(got)-1].Body, "`"+l.ID+"` now terminates at")
	})
	if x, _ := e.st.GetLaunch(context.Background(), l.ID); !x.ExpiresAt.Equal(l.ExpiresAt.Add(time.Hour)) {
		t.Fatalf("Extend 1h: expiry %s, want %s", x.ExpiresAt, l.ExpiresAt.Add(time.Hour))
	}
	// A stranger's click is refused after checking their own permission.
	e.gh.SetPermission("packit/ogr", "mallory", "read")
	before := len(botComments(e.gh, "packit/ogr", 7))
	post("terminate", "mallory")
	waitFor(t, func() bool { return len(botComments(e.gh, "packit/ogr", 7)) > before })
	if got := botComments(e.gh, "packit/ogr", 7); !strings.Contains(got[len(got)-1].Body, "@mallory This VM is `alice`'s; only its owner or a repository admin can stop it") || e.terminated(l.InstanceID) {
		t.Fatalf("stranger's click: %s", got[len(got)-1].Body)
	}
	post("terminate", "alice")
	e.waitTerminated(l.InstanceID)
	e.waitState(l.ID, store.StateEnded)
}

func TestPRClosedTerminatesUnlessKept(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	if status := e.post("pull_request", prClosedPayload("packit/ogr", 7)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	e.waitTerminated(l.InstanceID)
	if ended := e.waitState(l.ID, store.StateEnded); ended.EndReason != provision.ReasonPRClosed {
		t.Errorf("reason %q", ended.EndReason)
	}

	// A project that keeps VMs until expiry.
	e.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, strings.Replace(e.repoConfig(), "default: fedora", "default: fedora\nkeep_on_close: true", 1))
	c := defaultComment("/launch")
	kept := e.launch(c)
	if status := e.post("pull_request", prClosedPayload("packit/ogr", 7)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	e.waitHandled(JobPRClosed)
	if e.terminated(kept.InstanceID) {
		t.Error("keep_on_close: the VM was terminated")
	}
}

func (e *launchEnv) repoConfig() string {
	return strings.Replace(launchRepoConfig, "%s", e.ami, 1)
}

func TestUninstallTerminates(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	if status := e.post("installation", uninstalledPayload(55)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	e.waitTerminated(l.InstanceID)
	e.waitState(l.ID, store.StateEnded)
}

// With Redis flushed, the sweeper alone (from AWS tags) ends what is past
// its expiry and re-creates the timers of the rest.
func TestSweeperAfterRedisWasFlushed(t *testing.T) {
	e := newLaunchEnv(t, lifetime("4s"))
	first := e.launch(defaultComment("/launch"))
	c := defaultComment("/launch")
	second := e.launch(c)
	storetest.Flush(t, e.redisURL)
	// A sweep after the first VM's expiry, before the second's timer existed again.
	e.launches.lc.SetClock(func() time.Time { return first.ExpiresAt.Add(time.Second) })
	e.launches.lc.Sweep(context.Background())
	if !e.terminated(first.InstanceID) {
		t.Fatal("the sweeper did not end an expired VM without Redis records")
	}
	// The second's timer was re-created from its tags and ends it on time.
	e.launches.lc.SetClock(time.Now)
	e.launches.lc.Sweep(context.Background())
	e.waitTerminated(second.InstanceID)
}

func TestSweeperWithoutRedisStillTerminates(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	e.stop()
	e.st.Close() // Redis unreachable from this replica
	e.launches.lc.SetClock(func() time.Time { return l.ExpiresAt.Add(time.Minute) })
	e.launches.lc.Sweep(context.Background())
	if !e.terminated(l.InstanceID) {
		t.Fatal("the sweeper needs only AWS")
	}
}

func TestSweeperDeletesOrphanedTemplates(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	orphan, err := e.cloud.CreateLaunchTemplate(context.Background(), "us-east-1", ec2.TemplateInput{LaunchID: "gone1234", Tags: map[string]string{ec2.TagManaged: "true", ec2.TagLaunch: "gone1234"}})
	if err != nil {
		t.Fatal(err)
	}
	e.launches.lc.SetClock(func() time.Time { return time.Now().Add(3 * time.Hour) })
	e.launches.lc.Sweep(context.Background())
	templates, err := e.cloud.ListManagedTemplates(context.Background(), "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, tm := range templates {
		ids[tm.ID] = true
	}
	if ids[orphan] {
		t.Error("the orphaned template was kept")
	}
	if !ids[e.base.LaunchTemplateID] {
		t.Error("the profile's base template was deleted")
	}
	// The launch's own template goes once its VM has ended (here: swept at +3h, past its 2h expiry).
	if ids[l.TemplateID] {
		t.Error("an ended launch's template was kept")
	}
}

func TestFailedLaunchTerminatesWhatItLeft(t *testing.T) {
	e := newLaunchEnv(t)
	e.api.PlanNextReservation(launchapitest.ReservationPlan{FailAtStep: 3})
	l := e.launch(defaultComment("/launch"))
	if l.State != store.StateFailed || l.InstanceID == "" {
		t.Fatalf("record: %+v", l)
	}
	if !e.terminated(l.InstanceID) {
		t.Error("the instance of a failed reservation is still running")
	}
}

func TestQuotasHoldUnderConcurrentLaunchesFromTwoReplicas(t *testing.T) {
	e := newLaunchEnv(t, func(o *launchOptions) { o.perOwner = 1 })
	// A second replica: its own worker and launch stage on the same Redis.
	replica := e.newLaunches()
	qw := e.st.NewWorker(4, quiet)
	w2 := NewWorker(e.cfg, e.inst, e.st, replica, quiet)
	qw.Handle(JobCommand, func(ctx context.Context, p []byte) error {
		err := w2.HandleCommand(ctx, p)
		e.signal(JobCommand, err)
		return err
	})
	replica.Register(qw)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- qw.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := defaultComment("/launch")
			e.post("issue_comment", c.postTo(e.gh))
		}()
	}
	wg.Wait()
	waitFor(t, func() bool { return len(botComments(e.gh, "packit/ogr", 7)) >= 4 })
	launches, _ := e.st.LaunchesByPR(context.Background(), "packit/ogr", 7)
	if len(launches) != 1 {
		t.Fatalf("%d launches recorded under a per-owner limit of 1", len(launches))
	}
	refusals := 0
	for _, c := range botComments(e.gh, "packit/ogr", 7) {
		if strings.Contains(c.Body, "@alice You already have 1 of 1 allowed VMs running (`"+launches[0].ID+"`)") {
			refusals++
		}
	}
	if refusals != 3 {
		t.Errorf("%d refusals naming the limit and the VM holding it, want 3", refusals)
	}
}

// waitFor polls until cond holds; workers run in the background.
// waitFor waits up to 30 s for cond; what, if given, says what is awaited.
func waitFor(t *testing.T, cond func() bool, what ...any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(append([]any{"timed out waiting"}, what...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWarningBeforeExpiry(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	warn, _ := json.Marshal(map[string]any{"launch_id": l.ID, "expires_at": l.ExpiresAt}) // a queued warning, as stored
	e.launches.lc.SetClock(func() time.Time { return l.ExpiresAt.Add(-15 * time.Minute) })
	if err := e.launches.lc.HandleWarn(context.Background(), warn); err != nil {
		t.Fatal(err)
	}
	got := botComments(e.gh, "packit/ogr", 7)
	last := got[len(got)-1].Body
	if len(got) != 2 || !strings.Contains(last, "@alice your VM `"+l.ID+"`") || !strings.Contains(last, "(in 15 min)") || !strings.Contains(last, "/launch extend") {
		t.Fatalf("warning: %+v", got)
	}
	// After an extension the old warning stays silent.
	e.launches.lc.SetClock(time.Now)
	c := defaultComment("/launch extend")
	e.command(c)
	before := len(botComments(e.gh, "packit/ogr", 7))
	if err := e.launches.lc.HandleWarn(context.Background(), warn); err != nil {
		t.Fatal(err)
	}
	if n := len(botComments(e.gh, "packit/ogr", 7)); n != before {
		t.Errorf("a stale warning was posted")
	}
}

func TestNoLongerTrustedProjectsLoseTheirVMs(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	e.cfg.Projects[0].Exclude = []string{"packit/ogr"} // the operator withdraws trust
	e.launches.lc.Sweep(context.Background())
	e.waitTerminated(l.InstanceID)
	if ended := e.waitState(l.ID, store.StateEnded); ended.EndReason != provision.ReasonUntrusted {
		t.Errorf("reason %q", ended.EndReason)
	}
}

func TestStopWhileLaunchingEndsTheVMOnceUp(t *testing.T) {
	e := newLaunchEnv(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once, released sync.Once
	letGo := func() { released.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	e.api.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/reservations/*", Times: 1, Hook: func() {
		once.Do(func() { close(entered) })
		<-release
	}})
	c := defaultComment("/launch")
	if status := e.post("issue_comment", c.postTo(e.gh)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	e.waitHandled() // the command; its launch job is now held inside the Launch service
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the launch never polled its reservation")
	}
	stop := defaultComment("/launch stop")
	got := e.command(stop)
	if len(got) != 1 || !strings.Contains(got[0].Body, "will be terminated as soon as it is up") {
		t.Fatalf("stop answer: %+v", got)
	}
	letGo()
	l := e.reported(c)
	if l.State != store.StateEnded || l.EndReason != "`alice` stopped it" {
		t.Fatalf("record: %s %q", l.State, l.EndReason)
	}
	e.waitTerminated(l.InstanceID)
	comments := botComments(e.gh, "packit/ogr", 7)
	if last := comments[len(comments)-1].Body; !strings.Contains(last, "was terminated") || strings.Contains(last, "your VM is ready") {
		t.Errorf("the PR must not be told a stopped VM is ready:\n%s", last)
	}
}

func TestSweeperSettlesRecordsThatAWSContradicts(t *testing.T) {
	e := newLaunchEnv(t, func(o *launchOptions) { o.perOwner = 5 })
	ctx := context.Background()
	// A launch whose job was lost after its VM came up: stuck "launching", unreported.
	stuck := e.launch(defaultComment("/launch"))
	if _, err := e.st.UpdateLaunch(ctx, stuck.ID, func(x *store.Launch) error {
		x.State, x.InstanceID, x.Reported, x.CreatedAt = store.StateLaunching, "", false, time.Now().Add(-5*time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A running launch whose VM was terminated behind the bot's back.
	c := defaultComment("/launch")
	gone := e.launch(c)
	if err := e.cloud.Terminate(ctx, "us-east-1", gone.InstanceID); err != nil {
		t.Fatal(err)
	}
	// A live entry whose record is gone (a replica of the previous version
	// ended launches without leaving the live index; or an operator's DEL):
	// no quota may count it for ever.
	stale := e.launch(defaultComment("/launch"))
	if err := e.cloud.Terminate(ctx, "us-east-1", stale.InstanceID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Redis().Del(ctx, "launch:"+stale.ID).Err(); err != nil {
		t.Fatal(err)
	}
	// The same for a launch its summary says is still coming up (a young
	// one: the stuck rule waits hours, the index must not).
	young := e.launch(defaultComment("/launch"))
	if _, err := e.st.UpdateLaunch(ctx, young.ID, func(x *store.Launch) error { x.State = store.StateLaunching; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.Terminate(ctx, "us-east-1", young.InstanceID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Redis().Del(ctx, "launch:"+young.ID).Err(); err != nil {
		t.Fatal(err)
	}
	// (The daily pubkey cleanup reads every record, which repairs the
	// index too: this sweep is not that day's.)
	if _, err := e.st.TryLock(ctx, "pubkey-cleanup", time.Hour); err != nil {
		t.Fatal(err)
	}
	// A quarter of an hour later (a VM that only just came up is left alone).
	e.launches.lc.SetClock(func() time.Time { return time.Now().Add(15 * time.Minute) })
	e.launches.lc.Sweep(ctx)
	idx, _ := e.st.ActiveIndex(ctx)
	for _, id := range []string{stale.ID, young.ID} {
		if slices.ContainsFunc(idx, func(a store.Active) bool { return a.ID == id }) {
			t.Errorf("live entry %s without its record outlived the sweep", id)
		}
	}
	adopted, _ := e.st.GetLaunch(ctx, stuck.ID)
	if adopted.State != store.StateRunning || adopted.InstanceID != stuck.InstanceID || !adopted.Reported {
		t.Errorf("stuck launch not adopted: %+v", adopted)
	}
	ended, _ := e.st.GetLaunch(ctx, gone.ID)
	if ended.State != store.StateEnded || ended.EndReason != "its instance was already gone" {
		t.Errorf("vanished VM not recorded as ended: %s %q", ended.State, ended.EndReason)
	}
}

// A VM whose birth tags the Launch service overrode is found through its
// template and counted once, as its launch, not again as a bare instance.
func TestQuotaCountsAVMWithOverriddenTagsOnce(t *testing.T) {
	e := newLaunchEnv(t, func(o *launchOptions) { o.totalVMs = 1 })
	l := e.launch(defaultComment("/launch"))
	var ours []awstypes.Tag
	for _, tag := range e.instance(l.InstanceID).Tags {
		if strings.HasPrefix(tag.Key, "packit-launch:") {
			ours = append(ours, awstypes.Tag{Key: aws.String(tag.Key), Value: aws.String(tag.Value)})
		}
	}
	if _, err := ec2test.Client(e.moto, "us-east-1").DeleteTags(context.Background(), &awsec2.DeleteTagsInput{Resources: []string{l.InstanceID}, Tags: ours}); err != nil {
		t.Fatal(err)
	}
	again := defaultComment("/launch")
	got := e.command(again)
	if tags := e.instance(l.InstanceID).Tags; tags.Get(ec2.TagLaunch) != "" {
		t.Fatalf("tags not removed: %v", tags)
	}
	want := "This packit-launch instance already has 1 of 1 allowed VMs running (`" + l.ID + "`)"
	if len(got) != 1 || !strings.Contains(got[0].Body, want) {
		t.Errorf("refusal %+v, want it to say %q", got, want)
	}
	// While a launch is still coming up its record has no instance id yet:
	// its template ties the VM to it.
	if _, err := e.st.UpdateLaunch(context.Background(), l.ID, func(x *store.Launch) error { x.InstanceID = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	again = defaultComment("/launch")
	if got := e.command(again); len(got) != 1 || !strings.Contains(got[0].Body, want) {
		t.Errorf("refusal while launching %+v, want it to say %q", got, want)
	}
}

// A timer that fires well before its expiry (a replica's clock is off) runs
// again instead of re-queueing itself under its own id, which would be lost.
func TestExpiryTimerFiredEarlyRunsAgain(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	e.launches.lc.SetClock(func() time.Time { return l.ExpiresAt.Add(-time.Minute) })
	job, _ := json.Marshal(map[string]any{"launch_id": l.ID, "region": l.Region, "instance_id": l.InstanceID, "expires_at": l.ExpiresAt}) // a queued timer, as stored
	if err := e.launches.lc.HandleExpire(context.Background(), job); err == nil || !strings.Contains(err.Error(), "early") {
		t.Fatalf("early timer: %v, want an error so that it is retried", err)
	}
	if e.terminated(l.InstanceID) {
		t.Fatal("terminated a minute early")
	}
	e.launches.lc.SetClock(func() time.Time { return l.ExpiresAt })
	if err := e.launches.lc.HandleExpire(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	e.waitTerminated(l.InstanceID)
}
