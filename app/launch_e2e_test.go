package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/provision/launchapi"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
	"github.com/packit/packit-launch/provision/sshd"
	"github.com/packit/packit-launch/provision/sshd/sshdtest"
	"github.com/packit/packit-launch/store"
)

const launchServerConfig = `
limits: {total_vms: %d, commands_per_minute: 1000} # the tests comment far more often than a person
profiles:
  small:
    launch_template_id: %s
    security_group_ids: [%s]
    instance_types: [t3.small, t3.medium]
    regions: [us-east-1]
    default_lifetime: %s
    max_lifetime: 8h
projects:
  - repos: ["packit/*"]
    profiles: [small]
    limits: {per_owner: %d}
`

const launchRepoConfig = `
default: fedora
machines:
  fedora:
    image: %s
    region: us-east-1
    instance_type: t3.small
    ssh_user: fedora
`

type launchEnv struct {
	*harness
	api      *launchapitest.Server
	clock    *launchapitest.ManualClock
	key      SSHKey
	moto     string
	cloud    *ec2.Cloud
	ami      string
	base     ec2.BootstrapResult
	client   *launchapi.Client
	sourceID string
	inst     *Installations
	lookFor  time.Duration // provision.Options.LookFor
	// With launchOptions.ssh: every VM's sshd, and EC2 as the bot sees it
	// (moto behind a fake that serves the VMs' consoles).
	sshd     *sshdtest.Server
	console  *ec2test.FakeEC2
	sshCloud *ec2.Cloud
	launched atomic.Pointer[func(instanceID string)] // what a VM's launch does to its console
}

type launchOptions struct {
	lifetime string // the profile's default lifetime
	perOwner int
	totalVMs int
	// polls: looks at a reservation are single requests, as in production,
	// so the manual clock moves only when the test moves it.
	polls bool
	// ssh: the ready comment waits for sshd (sshdtest) and pins the host
	// keys a console fake serves; sshWait is the profile's ssh_wait.
	ssh     bool
	sshWait string
}

// withSSH gives the launches a VM sshd to wait for and a console.
func withSSH(wait string) func(*launchOptions) {
	return func(o *launchOptions) { o.ssh, o.sshWait = true, wait }
}

// newLaunchEnv is the whole product path: signed webhook → intake → Redis
// queue → decision → launch stage → fake Launch service launching real
// instances into moto_server → fake GitHub.
func newLaunchEnv(t *testing.T, opts ...func(*launchOptions)) *launchEnv {
	t.Helper()
	o := launchOptions{lifetime: "2h"}
	for _, f := range opts {
		f(&o)
	}
	moto := ec2test.StartMoto(t)
	cloud, err := ec2.New(context.Background(), ec2test.Config(moto, "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := cloud.Bootstrap(context.Background(), "us-east-1", ec2.BootstrapInput{Profile: "small"})
	if err != nil {
		t.Fatal(err)
	}
	serverYAML := fmt.Sprintf(launchServerConfig, o.totalVMs, base.LaunchTemplateID, base.SecurityGroupID, o.lifetime, o.perOwner)
	if o.sshWait != "" {
		serverYAML = strings.Replace(serverYAML, "max_lifetime: 8h\n", "max_lifetime: 8h\n    ssh_wait: "+o.sshWait+"\n", 1)
	}
	h := newHarness(t, serverYAML)
	h.stop() // restarted below with the launch stage
	ami := ec2test.AMI(t, moto, "us-east-1")
	h.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, fmt.Sprintf(launchRepoConfig, ami))

	clock := launchapitest.NewManualClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	e := &launchEnv{}
	launcher := &ec2test.Launcher{Endpoint: moto, OverrideTemplateTags: true, Launched: func(_, id string) {
		if f := e.launched.Load(); f != nil {
			(*f)(id)
		}
	}}
	api := launchapitest.NewServer(launchapitest.Options{Clock: clock, Launcher: launcher})
	t.Cleanup(api.Close)
	api.AddServiceAccount("bot", "bot-secret", "org-1")
	src := api.AddSource("org-1", launchapitest.Source{Name: "aws"})
	client, err := launchapi.New(launchapi.Config{BaseURL: api.URL, TokenURL: api.TokenURL, ClientID: "bot", ClientSecret: "bot-secret", Clock: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := NewInstallations(h.gh.AppID, h.gh.PrivateKeyPEM, h.gh.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	*e = launchEnv{harness: h, api: api, clock: clock, moto: moto, cloud: cloud, ami: ami, base: base, client: client, sourceID: src.ID, inst: inst, lookFor: time.Hour}
	if o.polls {
		e.lookFor = 0
	}
	if o.ssh {
		e.startSSH()
	}
	h.launches = e.newLaunches()
	h.worker = NewWorker(h.cfg, inst, h.st, h.launches, quiet)
	h.startWorker()
	e.key = e.giveKey("alice")
	return e
}

// newLaunches is one replica's launch stage.
func (e *launchEnv) newLaunches() *Launches {
	// The fake runs on a manual clock that a look advances by polling,
	// unless the test moves it itself (polls).
	opts := provision.Options{Cloud: e.cloud, LookFor: e.lookFor}
	if e.sshd != nil {
		opts.Cloud, opts.SSH = e.sshCloud, &sshd.Prober{Dialer: e.sshd.Dialer(), Timeout: 2 * time.Second}
	}
	ls := NewLaunches(e.cfg, e.st, provision.New(e.client, e.st, e.sourceID, opts, quiet), e.inst, quiet)
	if e.sshd != nil {
		ls.Lifecycle().SSHPollEvery, ls.Lifecycle().ConsolePollEvery = time.Second, time.Second
	}
	return ls
}

// startSSH stands a test sshd behind every VM's port 22 and a console fake
// in front of moto; each VM's console shows the sshd's host key unless the
// test says otherwise (onLaunch).
func (e *launchEnv) startSSH() {
	s, err := sshdtest.New()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(s.Close)
	target, err := url.Parse(e.moto)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sshd, e.console = s, ec2test.NewConsoleFake(httputil.NewSingleHostReverseProxy(target))
	front := httptest.NewServer(e.console)
	e.t.Cleanup(front.Close)
	if e.sshCloud, err = ec2.New(context.Background(), ec2test.Config(front.URL, "us-east-1")); err != nil {
		e.t.Fatal(err)
	}
	e.onLaunch(func(id string) { e.console.SetConsoleOutput(id, sshdtest.ConsoleOutput(s.HostKey())) })
}

// onLaunch sets what each VM's launch does (say, to its console).
func (e *launchEnv) onLaunch(f func(instanceID string)) { e.launched.Store(&f) }

// instance reads an instance from moto.
func (e *launchEnv) instance(id string) *ec2.Instance {
	e.t.Helper()
	in, err := e.cloud.Describe(context.Background(), "us-east-1", id)
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

// waitState waits until a launch's record reaches a state.
func (e *launchEnv) waitState(id string, want store.State) *store.Launch {
	e.t.Helper()
	var l *store.Launch
	waitFor(e.t, func() bool {
		got, err := e.st.GetLaunch(context.Background(), id)
		l = got
		return err == nil && got.State == want
	}, "for launch", id, "to be", want)
	return l
}

// giveKey gives user a fresh ed25519 key on GitHub.
func (e *launchEnv) giveKey(user string) SSHKey {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	sk, err := ssh.NewPublicKey(pub)
	if err != nil {
		e.t.Fatal(err)
	}
	body := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk)))
	e.gh.SetKeys(user, body+" "+user+"@laptop")
	return SSHKey{Type: sk.Type(), Fingerprint: ssh.FingerprintSHA256(sk), Body: body}
}

// launch comments c and waits until the launch is reported on the PR.
func (e *launchEnv) launch(c *comment) *store.Launch {
	e.t.Helper()
	if status := e.post("issue_comment", c.postTo(e.gh)); status != http.StatusAccepted {
		e.t.Fatalf("intake answered %d", status)
	}
	return e.reported(c)
}

// reported waits until the launch of comment c is reported on the PR.
func (e *launchEnv) reported(c *comment) *store.Launch {
	e.t.Helper()
	var l *store.Launch
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-e.handled:
		case <-time.After(50 * time.Millisecond):
		}
		ls, err := e.st.LaunchesByPR(context.Background(), c.Repo, c.Number)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, x := range ls {
			if x.CommandCommentID == c.ID && x.Reported {
				l = x
			}
		}
		if l != nil {
			return l
		}
		if time.Now().After(deadline) {
			for _, x := range ls {
				e.t.Logf("record: %+v", *x)
			}
			e.t.Fatalf("launch not reported in time; records: %+v", ls)
		}
	}
}

func (e *launchEnv) reservationRequests() []launchapitest.AWSRequest {
	var out []launchapitest.AWSRequest
	for _, r := range e.api.RequestsTo(http.MethodPost, "/reservations/aws") {
		var req launchapitest.AWSRequest
		if err := json.Unmarshal(r.Body, &req); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, req)
	}
	return out
}

func TestLaunchEndToEnd(t *testing.T) {
	e := newLaunchEnv(t)
	c := defaultComment("/launch --lifetime 3h")
	l := e.launch(c)

	if l.State != store.StateRunning || l.InstanceID == "" || l.PublicIPv4 == "" || len(l.ID) > 12 {
		t.Fatalf("record: %+v", l)
	}
	// What the Launch service was asked for.
	reqs := e.reservationRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d reservations created", len(reqs))
	}
	r := reqs[0]
	if r.Poweroff || r.LaunchTemplateID != l.TemplateID || l.TemplateID == "" || l.TemplateID == e.base.LaunchTemplateID || r.ImageID != e.ami || r.InstanceType != "t3.small" ||
		r.Region != "us-east-1" || r.Amount != 1 || !strings.Contains(r.Name, l.ID) || !strings.Contains(r.Name, "packit/ogr#7") {
		t.Errorf("reservation request: %+v", r)
	}
	keys := e.api.Pubkeys("org-1")
	if len(keys) != 1 || keys[0].ID != r.PubkeyID || !strings.HasPrefix(keys[0].Body, e.key.Body) || keys[0].Name != provision.PubkeyName("alice", e.key.Body) {
		t.Errorf("pubkeys: %+v, want alice's key %s", keys, e.key.Body)
	}
	// What the person sees.
	comments := botComments(e.gh, "packit/ogr", 7)
	if len(comments) != 1 {
		t.Fatalf("comments: %+v", comments)
	}
	body := comments[0].Body
	for _, want := range []string{"@alice your VM is ready", "ssh fedora@" + l.PublicIPv4, e.key.Fingerprint, "`fedora`", e.ami, "`t3.small` in `us-east-1`",
		l.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"), "(in 3 h)", "`" + l.ID + "`", "/launch extend", "/launch stop " + l.ID} {
		if !strings.Contains(body, want) {
			t.Errorf("comment lacks %q:\n%s", want, body)
		}
	}
	if got := e.gh.Reactions("packit/ogr", c.ID); !equal(got, []string{"eyes", "rocket"}) {
		t.Errorf("reactions %v", got)
	}
	runs := e.gh.CheckRuns("packit/ogr")
	if len(runs) != 1 {
		t.Fatalf("check runs: %+v", runs)
	}
	cr := runs[0]
	if cr.Name != "packit-launch (fedora)" || cr.HeadSHA != strings.Repeat("a", 40) || cr.ExternalID != l.ID || cr.Status != "completed" ||
		cr.Conclusion != "success" || !strings.Contains(cr.Summary, "ssh fedora@") {
		t.Errorf("check run: %+v", cr)
	}
	if l.CommentID != comments[0].ID || l.CheckRunID != cr.ID {
		t.Errorf("record does not point at its comment and check run: %+v", l)
	}
	if len(cr.Actions) != 2 || cr.Actions[0].Identifier != "extend" || cr.Actions[1].Identifier != "terminate" {
		t.Errorf("check run buttons: %+v", cr.Actions)
	}
	// The VM in EC2 carries its own expiry from birth.
	in := e.instance(l.InstanceID)
	if in.State != "running" || in.Tags.Get(ec2.TagManaged) != "true" || in.Tags.Get(ec2.TagLaunch) != l.ID || in.Tags.Get(ec2.TagOwner) != "alice" ||
		in.Tags.Get(ec2.TagRepo) != "packit/ogr" || in.Tags.Get(ec2.TagPR) != "7" || in.LaunchTemplateID != l.TemplateID ||
		in.Tags.Get(ec2.TagExpiresAt) != l.ExpiresAt.UTC().Format(time.RFC3339) || in.Tags.Get(ec2.TagHardExpiresAt) != l.HardExpiresAt.UTC().Format(time.RFC3339) {
		t.Errorf("instance: %+v\nrecord: %+v", in, l)
	}
}

func TestLaunchFailureAtEachStep(t *testing.T) {
	e := newLaunchEnv(t)
	for step, title := range map[int]string{1: "Ensure public key", 2: "Launch instance(s)", 3: "Fetch instance(s) description"} {
		t.Run(title, func(t *testing.T) {
			e.t = t
			e.api.PlanNextReservation(launchapitest.ReservationPlan{FailAtStep: step, Error: "cannot launch ec2 instance: VPCIdNotSpecified: No default VPC for this user"})
			c := defaultComment("/launch")
			before := len(botComments(e.gh, "packit/ogr", 7))
			l := e.launch(c)
			if l.State != store.StateFailed || l.FailedStep != title {
				t.Fatalf("record: state %s step %q", l.State, l.FailedStep)
			}
			got := botComments(e.gh, "packit/ogr", 7)[before:]
			if len(got) != 1 {
				t.Fatalf("comments: %+v", got)
			}
			for _, want := range []string{"@alice", "failed at the Launch service's step `" + title + "`", "```\ncannot launch ec2 instance: VPCIdNotSpecified", "operator's AWS setup", l.ID} {
				if !strings.Contains(got[0].Body, want) {
					t.Errorf("comment lacks %q:\n%s", want, got[0].Body)
				}
			}
			if r := e.gh.Reactions("packit/ogr", c.ID); !equal(r, []string{"eyes", "confused"}) {
				t.Errorf("reactions %v", r)
			}
			cr := checkRunFor(t, e.gh, l.ID)
			if cr.Status != "completed" || cr.Conclusion != "failure" || !strings.Contains(cr.Summary, "VPCIdNotSpecified") {
				t.Errorf("check run: %+v", cr)
			}
		})
	}
}

// The Launch service reads addresses once and may report none: the bot asks EC2.
func TestLaunchWithoutPublicAddressAsksEC2(t *testing.T) {
	e := newLaunchEnv(t)
	e.api.PlanNextReservation(launchapitest.ReservationPlan{NoPublicAddress: true})
	l := e.launch(defaultComment("/launch"))
	in := e.instance(l.InstanceID)
	if l.State != store.StateRunning || l.PublicIPv4 == "" || l.PublicIPv4 != in.PublicIPv4 {
		t.Fatalf("record %+v, EC2 says %q", l, in.PublicIPv4)
	}
	if body := botComments(e.gh, "packit/ogr", 7)[0].Body; !strings.Contains(body, "ssh fedora@"+in.PublicIPv4) {
		t.Errorf("comment:\n%s", body)
	}
}

func TestLaunchSlowTellsThePR(t *testing.T) {
	e := newLaunchEnv(t)
	e.api.PlanNextReservation(launchapitest.ReservationPlan{StepDuration: 3 * time.Minute})
	l := e.launch(defaultComment("/launch"))
	// One sticky comment: the slow note first, edited into the answer.
	got := botComments(e.gh, "packit/ogr", 7)
	if l.State != store.StateRunning || len(got) != 1 || !strings.Contains(got[0].Body, "your VM is ready") {
		t.Fatalf("state %s, comments %+v", l.State, got)
	}
	var bodies []string
	for _, call := range e.gh.Calls() {
		if strings.HasSuffix(call.Path, "/issues/7/comments") && call.Method == http.MethodPost ||
			strings.HasSuffix(call.Path, fmt.Sprintf("/issues/comments/%d", got[0].ID)) && call.Method == http.MethodPatch {
			bodies = append(bodies, call.Method)
		}
	}
	if !equal(bodies, []string{"POST", "PATCH"}) || !l.Slow {
		t.Errorf("comment calls %v, slow %v: want the slow note posted, then edited into the answer", bodies, l.Slow)
	}
}

func TestLaunchRefusedWithoutUsableKey(t *testing.T) {
	e := newLaunchEnv(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := ssh.NewPublicKey(&small.PublicKey)
	tests := []struct {
		name string
		keys []string
		line string
		want string
	}{
		{"no keys", nil, "/launch", "has no public SSH key"},
		{"only a short RSA key", []string{string(ssh.MarshalAuthorizedKey(sk))}, "/launch", "RSA 1024 bits"},
		{"unknown --key", []string{e.key.Body}, "/launch --key SHA256:nope", "has the fingerprint `nope`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			e.gh.SetKeys("alice", tt.keys...)
			c := defaultComment(tt.line)
			got := e.command(c)
			if len(got) != 1 || !strings.Contains(got[0].Body, tt.want) {
				t.Fatalf("answer: %+v", got)
			}
		})
	}
	if n := len(e.gh.CheckRuns("packit/ogr")); n != 0 {
		t.Errorf("a refusal created %d check runs", n)
	}
	if n := len(e.reservationRequests()); n != 0 {
		t.Errorf("%d reservations without a key", n)
	}
}

func TestLaunchSurvivesWorkerRestart(t *testing.T) {
	e := newLaunchEnv(t)
	// The first worker stops while it waits for the reservation.
	e.api.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/reservations/*", Hang: true, Times: -1})
	c := defaultComment("/launch")
	if status := e.post("issue_comment", c.postTo(e.gh)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	waitFor(t, func() bool { return len(e.reservationRequests()) > 0 && hasGET(e.api, "/reservations/") }, "for the reservation")
	e.stop()
	e.api.ClearFaults()
	e.startWorker()
	l := e.reported(c)
	if l.State != store.StateRunning {
		t.Fatalf("after restart: %+v", l)
	}
	if n := len(e.reservationRequests()); n != 1 {
		t.Errorf("%d reservations for one launch", n)
	}
	if n := len(e.gh.CheckRuns("packit/ogr")); n != 1 {
		t.Errorf("%d check runs for one launch", n)
	}
	if got := botComments(e.gh, "packit/ogr", 7); len(got) != 1 || !strings.Contains(got[0].Body, "your VM is ready") {
		t.Errorf("comments: %+v", got)
	}
}

func checkRunFor(t *testing.T, gh *githubtest.Server, launchID string) githubtest.CheckRun {
	t.Helper()
	for _, cr := range gh.CheckRuns("packit/ogr") {
		if cr.ExternalID == launchID {
			return cr
		}
	}
	t.Fatalf("no check run for launch %s", launchID)
	return githubtest.CheckRun{}
}

// hasGET reports whether the fake saw a GET under prefix.
func hasGET(api *launchapitest.Server, prefix string) bool {
	for _, r := range api.Requests() {
		if r.Method == http.MethodGet && strings.HasPrefix(r.Path, prefix) {
			return true
		}
	}
	return false
}

func TestLaunchServiceDownIsReportedAfterTheLastAttempt(t *testing.T) {
	e := newLaunchEnv(t)
	e.launches.lc.MaxRetry = 0 // the first attempt is the last
	e.api.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/pubkeys", Status: http.StatusServiceUnavailable, Times: -1})
	c := defaultComment("/launch")
	l := e.launch(c)
	if l.State != store.StateFailed {
		t.Fatalf("record: %+v", l)
	}
	got := botComments(e.gh, "packit/ogr", 7)
	if len(got) != 1 || !strings.Contains(got[0].Body, "kept failing for hours; the last attempt: the Launch service answered HTTP 503") || !strings.Contains(got[0].Body, "Try `/launch` again") {
		t.Fatalf("comments: %+v", got)
	}
	if cr := checkRunFor(t, e.gh, l.ID); cr.Status != "completed" || cr.Conclusion != "failure" {
		t.Errorf("a check run must never stay in progress: %+v", cr)
	}
	if n := len(e.reservationRequests()); n != 0 {
		t.Errorf("%d reservations", n)
	}
}

func TestLaunchRepeatedCommandLaunchesOnce(t *testing.T) {
	e := newLaunchEnv(t)
	c := defaultComment("/launch")
	first := e.launch(c)
	// The same comment delivered again under a new delivery id.
	if status := e.post("issue_comment", c.postTo(e.gh)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	e.waitHandled()
	again := e.reported(c)
	if again.ID != first.ID || len(e.reservationRequests()) != 1 || len(e.gh.CheckRuns("packit/ogr")) != 1 || len(botComments(e.gh, "packit/ogr", 7)) != 1 {
		t.Errorf("a repeated command must not launch again: %s vs %s, %d reservations", first.ID, again.ID, len(e.reservationRequests()))
	}
}

// While the setup check fails, new launches are refused with a reason; once
// it passes they go through again.
func TestLaunchRefusedWhileSetupIsBroken(t *testing.T) {
	e := newLaunchEnv(t)
	if !e.launches.lc.Block("the Launch source launches into another AWS account") {
		t.Fatal("Block reported no change")
	}
	got := e.command(defaultComment("/launch"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "setup check is failing") || strings.Contains(got[0].Body, "another AWS account") {
		t.Fatalf("refusal while blocked: %+v", got)
	}
	if len(e.reservationRequests()) != 0 {
		t.Error("a reservation was created while blocked")
	}
	e.launches.lc.Unblock()
	c := defaultComment("/launch")
	if l := e.launch(c); l.State != store.StateRunning {
		t.Errorf("after unblocking: %s", l.State)
	}
}
