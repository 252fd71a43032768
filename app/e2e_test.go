package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/commands"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

// The tests comment as alice far more often than a person would: their
// budget is high, and TestEndToEndCommandsBudget tests the budget.
const e2eServerConfig = `
limits: {commands_per_minute: 1000}
profiles:
  small:
    instance_types: [t3.small, t3.medium]
    regions: [us-east-1]
    default_lifetime: 2h
    max_lifetime: 8h
projects:
  - repos: ["packit/*"]
    exclude: ["packit/secret"]
    profiles: [small]
`

const e2eRepoConfig = `
default: fedora
machines:
  fedora:
    image: ami-0123456789abcdef0
    region: us-east-1
    instance_type: t3.small
    ssh_user: fedora
`

// recordingLauncher stands in for the launch stage and records what the
// decision handed it.
type recordingLauncher struct {
	mu      sync.Mutex
	reqs    []LaunchRequest
	managed []commands.Command
}

func (l *recordingLauncher) Manage(_ context.Context, t *Thread, _ CommandJob, cmd commands.Command) error {
	l.mu.Lock()
	l.managed = append(l.managed, cmd)
	l.mu.Unlock()
	return nil
}

func (l *recordingLauncher) Launch(_ context.Context, req LaunchRequest) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, req)
	return nil
}

func (l *recordingLauncher) requests() []LaunchRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LaunchRequest(nil), l.reqs...)
}

type harness struct {
	t        *testing.T
	gh       *githubtest.Server
	cfg      *config.Server
	st       *store.Store
	redis    *storetest.Server
	redisURL string
	launcher *recordingLauncher
	web      *httptest.Server
	queued   *recordingQueue
	seq      atomic.Int64
	// handled receives each finished attempt at a job.
	handled chan handledJob

	worker   *Worker
	launches *Launches // set by withLaunchStage
	stop     func()    // stops the running queue worker
}

// newHarness runs the whole path: HTTP intake → real Redis queue → worker →
// fake GitHub, with the production installation clients.
func newHarness(t *testing.T, serverYAML string) *harness {
	t.Helper()
	cfg, err := config.ParseServer([]byte(serverYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	gh.SetInstallation(55)
	gh.SetPermission("packit/ogr", "alice", "write")
	gh.SetPull("packit/ogr", githubtest.PullRequest{Number: 7, State: "open", HeadSHA: strings.Repeat("a", 40), HeadRef: "feature", BaseRef: "main"})
	gh.SetFile("packit/ogr", "main", config.RepoConfigPath, e2eRepoConfig)

	redisServer := storetest.NewServer(t)
	redisURL := redisServer.URL
	st, err := store.OpenWith(context.Background(), redisURL, store.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	inst, err := NewInstallations(gh.AppID, gh.PrivateKeyPEM, gh.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, gh: gh, cfg: cfg, st: st, redis: redisServer, redisURL: redisURL, launcher: &recordingLauncher{}, queued: &recordingQueue{next: st.Queue()}, handled: make(chan handledJob, 256)}
	h.worker = NewWorker(cfg, inst, st, h.launcher, quiet)
	h.startWorker()
	t.Cleanup(func() { h.stop() })

	h.web = httptest.NewServer(Routes("/api/github/webhooks", NewIntake(testSecret, "", st, h.queued, quiet), st.Ping, quiet))
	t.Cleanup(h.web.Close)
	return h
}

// startWorker runs the queue workers for the harness's stages, as a process
// would: one for commands, one for lifecycle work.
func (h *harness) startWorker() {
	workers := []*store.Worker{h.st.NewWorker(4, quiet, store.QueueCommands)}
	workers[0].Handle(JobCommand, func(ctx context.Context, payload []byte) error {
		err := h.worker.HandleCommand(ctx, payload)
		h.signal(JobCommand, err)
		return err
	})
	workers[0].Handle(JobConfigCheck, func(ctx context.Context, payload []byte) error {
		err := h.worker.HandleConfigCheck(ctx, payload)
		h.signal(JobConfigCheck, err)
		return err
	})
	if h.launches != nil {
		lw := h.st.NewWorker(4, quiet, store.QueueLifecycle)
		for kind, fn := range h.launches.Handlers() {
			lw.Handle(kind, func(ctx context.Context, payload []byte) error {
				err := fn(ctx, payload)
				h.signal(kind, err)
				return err
			})
		}
		workers = append(workers, lw)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(workers))
	for _, qw := range workers {
		// A test that stops the worker mid-job (a restart) need not wait
		// the 20 s a process gives its jobs.
		qw.SetShutdownTimeout(2 * time.Second)
		go func() { done <- qw.Run(ctx) }()
	}
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			for range workers {
				<-done
			}
		})
	}
}

// restartWith restarts the queue workers with a command worker on n and
// launcher.
func (h *harness) restartWith(n notices, launcher Launcher) {
	h.t.Helper()
	h.stop()
	inst, err := NewInstallations(h.gh.AppID, h.gh.PrivateKeyPEM, h.gh.URL+"/")
	if err != nil {
		h.t.Fatal(err)
	}
	h.worker = NewWorker(h.cfg, inst, n, launcher, quiet)
	h.startWorker()
}

// post delivers a signed webhook over HTTP and returns the status.
func (h *harness) post(event string, body []byte) int {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.web.URL+"/api/github/webhooks", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("delivery-%d", h.seq.Add(1)))
	req.Header.Set("X-Hub-Signature-256", sign(testSecret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// command posts a comment and waits until the worker has handled it
// successfully, returning the bot's new comments.
func (h *harness) command(c *comment) []githubtest.Comment {
	h.t.Helper()
	before := len(botComments(h.gh, c.Repo, c.Number))
	if status := h.post("issue_comment", c.postTo(h.gh)); status != http.StatusAccepted {
		h.t.Fatalf("intake answered %d, want 202", status)
	}
	h.waitHandled()
	return botComments(h.gh, c.Repo, c.Number)[before:]
}

// handledJob is one finished attempt at a job.
type handledJob struct {
	kind string
	err  error
}

// signal tells waiting tests a job finished; it never blocks a worker.
func (h *harness) signal(kind string, err error) {
	select {
	case h.handled <- handledJob{kind, err}:
	default:
	}
}

// waitHandled waits for the next successful run of a job of kind (a
// command when none is named); failed attempts, which the queue retries,
// and other jobs are skipped.
func (h *harness) waitHandled(kind ...string) {
	h.t.Helper()
	want := JobCommand
	if len(kind) > 0 {
		want = kind[0]
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case j := <-h.handled:
			if j.err == nil && j.kind == want {
				return
			}
		case <-timeout:
			h.t.Fatal("timed out waiting for the worker")
		}
	}
}

func TestEndToEndRefusals(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	old := defaultComment("/launch")
	old.CreatedAt = time.Now().Add(-2 * time.Hour)
	plainIssue := defaultComment("/launch")
	plainIssue.OnPR = false
	plainIssue.Number = 8
	reader := defaultComment("/launch")
	reader.User = "mallory"
	noAccess := defaultComment("/launch")
	noAccess.User = "eve"

	tests := []struct {
		name  string
		c     *comment
		setup func()
		want  []string
	}{
		{"plain issue", plainIssue, nil, []string{"works on pull requests only"}},
		{"too old", old, nil, []string{"more than 30 minutes ago", "Comment it again"}},
		{"unknown flag", defaultComment("/launch --size huge"), nil, []string{"unknown flag `--size`", "```\n/launch [MACHINE]"}},
		{"read access", reader, func() { h.gh.SetPermission("packit/ogr", "mallory", "read") }, []string{"@mallory", "needs write access", "you have read access"}},
		{"no access", noAccess, nil, []string{"@eve", "you have no access"}},
		{"invalid image", defaultComment("/launch --image fedora-41"), func() {
			h.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, e2eRepoConfig+"allow_image_override: true\n")
		}, []string{"`--image fedora-41` is neither an AMI id"}},
		{"admins only", defaultComment("/launch"), func() {
			h.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, e2eRepoConfig+"access:\n  admins_only: true\n")
		}, []string{"only its admins"}},
		{"typo of a command", defaultComment("/launch stauts"), func() { h.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, e2eRepoConfig) }, []string{"Did you mean `/launch status`?"}},
		{"unknown machine", defaultComment("/launch centos"), nil, []string{"no machine named `centos`", "`fedora`"}},
		{"lifetime too long", defaultComment("/launch --lifetime 9h"), nil, []string{"longer than the 8h this"}},
		{"type not allowed", defaultComment("/launch --type p4d.24xlarge"), nil, []string{"`p4d.24xlarge` is not allowed", "`t3.small`, `t3.medium`"}},
		{"image override not allowed", defaultComment("/launch --image ami-0fedcba9876543210"), nil, []string{"does not allow `--image`"}},
		{"no repo config", defaultComment("/launch"), func() { h.gh.RemoveFile("packit/ogr", "main", config.RepoConfigPath) }, []string{"has no `.packit-launch.yaml` on its base branch `main`"}},
		{"invalid repo config", defaultComment("/launch"), func() {
			h.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, "machines:\n  fedora:\n    image: latest\n    region: mars-1\n    instance_type: t3.small\n")
		}, []string{"has problems", "machines.fedora.image", "`machines.fedora.region`: `mars-1` is not allowed by profile `small`"}},
		{"stricter access", defaultComment("/launch"), func() {
			h.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, e2eRepoConfig+"access:\n  users: [bob]\n")
		}, []string{"access.users"}},
		{"closed PR", defaultComment("/launch"), func() {
			h.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, e2eRepoConfig)
			h.gh.SetPull("packit/ogr", githubtest.PullRequest{Number: 7, State: "closed", HeadSHA: strings.Repeat("a", 40), BaseRef: "main"})
		}, []string{"This pull request is closed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			if tt.setup != nil {
				tt.setup()
			}
			got := h.command(tt.c)
			if len(got) != 1 {
				t.Fatalf("want one answer, got %d", len(got))
			}
			for _, w := range tt.want {
				if !strings.Contains(got[0].Body, w) {
					t.Errorf("answer lacks %q:\n%s", w, got[0].Body)
				}
			}
			if !strings.HasPrefix(got[0].Body, "> "+mdsafe.Code(mustFind(tt.c.Body))) || got[0].User != githubtest.BotLogin {
				t.Errorf("answer should quote the command and come from the bot: %+v", got[0])
			}
			if r := h.gh.Reactions(tt.c.Repo, tt.c.ID); !equal(r, []string{"eyes", "confused"}) {
				t.Errorf("reactions %v, want eyes then confused", r)
			}
		})
	}
	if n := len(h.launcher.requests()); n != 0 {
		t.Errorf("%d launches from refused commands", n)
	}
}

func TestEndToEndAcceptedLaunchUsesBaseBranchConfig(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	// The PR's own branch tries to loosen its limits; it must not count.
	h.gh.SetFile("packit/ogr", "feature", config.RepoConfigPath, "machines:\n  fedora:\n    image: ami-0123456789abcdef0\n    region: us-east-1\n    instance_type: t3.medium\n    lifetime: 8h\n")
	c := defaultComment("/launch --lifetime 3h")
	if got := h.command(c); len(got) != 0 {
		t.Fatalf("an accepted launch should not get a refusal: %v", got)
	}
	reqs := h.launcher.requests()
	if len(reqs) != 1 {
		t.Fatalf("launches: %d", len(reqs))
	}
	r := reqs[0]
	want := config.LaunchSpec{Machine: "fedora", Image: "ami-0123456789abcdef0", Region: "us-east-1", InstanceType: "t3.small", SSHUser: "fedora",
		Profile: "small", Lifetime: 3 * time.Hour, MaxLifetime: 8 * time.Hour, ExtendStep: time.Hour}
	if !reflect.DeepEqual(r.Spec, want) || r.HeadSHA != strings.Repeat("a", 40) || r.BaseRef != "main" || r.Job.User != "alice" {
		t.Errorf("launch request = %+v", r)
	}
	if got := h.gh.Reactions("packit/ogr", c.ID); !equal(got, []string{"eyes"}) {
		t.Errorf("reactions %v", got)
	}
	// Machines from the base branch; access rules from the default branch
	// (no ref: GitHub reads the default branch). Never the PR's own branch.
	// Here the base branch is the default branch: the same request twice.
	configRefs := func() []string {
		var refs []string
		for _, call := range h.gh.Calls() {
			if strings.Contains(call.Path, "/contents/") {
				refs = append(refs, call.Query.Get("ref"))
			}
		}
		return refs
	}
	if refs := configRefs(); !equal(refs, []string{"", ""}) {
		t.Errorf("repo config read at refs %q, want the default branch (the base branch) twice", refs)
	}
	// A PR against another branch: its machines come from that branch.
	h.gh.SetPull("packit/ogr", githubtest.PullRequest{Number: 8, State: "open", HeadSHA: strings.Repeat("b", 40), HeadRef: "fix", BaseRef: "release"})
	h.gh.SetFile("packit/ogr", "release", config.RepoConfigPath, e2eRepoConfig)
	h.gh.ResetCalls()
	c = defaultComment("/launch")
	c.Number, c.ID = 8, 1002
	if got := h.command(c); len(got) != 0 {
		t.Fatalf("an accepted launch should not get a refusal: %v", got)
	}
	if refs := configRefs(); !equal(refs, []string{"", "release"}) {
		t.Errorf("repo config read at refs %q, want the default branch, then the base branch", refs)
	}
}

func TestEndToEndUntrustedProjectIsToldOncePerPR(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	for i, repo := range []string{"someone/else", "someone/else", "packit/secret"} {
		c := defaultComment("/launch")
		c.Repo = repo
		before := len(botComments(h.gh, repo, 7))
		if status := h.post("issue_comment", c.postTo(h.gh)); status != http.StatusAccepted {
			t.Fatalf("status %d", status)
		}
		h.waitHandled()
		after := botComments(h.gh, repo, 7)
		wantNew := i != 1 // the second command on the same PR gets only 😕
		if (len(after) > before) != wantNew {
			t.Errorf("command %d on %s: new comments %d, want new=%v", i, repo, len(after)-before, wantNew)
		}
		if wantNew && !strings.Contains(after[len(after)-1].Body, "not among the projects") {
			t.Errorf("untrusted answer: %s", after[len(after)-1].Body)
		}
		if r := h.gh.Reactions(repo, c.ID); !equal(r, []string{"eyes", "confused"}) {
			t.Errorf("command %d on %s: reactions %v", i, repo, r)
		}
	}
	if n := h.gh.CallCount(http.MethodGet, "/repos/someone/else/collaborators"); n != 0 {
		t.Errorf("untrusted project cost %d permission calls", n)
	}
}

func TestEndToEndHelpAndPause(t *testing.T) {
	h := newHarness(t, e2eServerConfig+"paused: true\n")
	got := h.command(defaultComment("/launch help"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "/launch stop [ID|all]") || !strings.Contains(got[0].Body, "*Who:*") {
		t.Fatalf("help: %v", got)
	}
	c := defaultComment("/launch")
	got = h.command(c)
	if len(got) != 1 || !strings.Contains(got[0].Body, "paused by the operator") {
		t.Fatalf("paused: %v", got)
	}
}

func TestEndToEndRetriesGitHubFailures(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	h.gh.FailNext(http.MethodGet, "/repos/packit/ogr/collaborators/", http.StatusBadGateway, 1)
	h.command(defaultComment("/launch"))
	if n := len(h.launcher.requests()); n != 1 {
		t.Fatalf("launches after a transient GitHub error: %d", n)
	}
}

func mustFind(body string) string {
	line, _ := commands.Find(body)
	return line
}

func equal(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func TestEndToEndManagementCommandsReachTheLaunchStage(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	for _, line := range []string{"/launch status", "/launch extend 2h", "/launch stop all"} {
		c := defaultComment(line)
		h.command(c)
	}
	h.launcher.mu.Lock()
	defer h.launcher.mu.Unlock()
	if len(h.launcher.managed) != 3 || h.launcher.managed[1].Lifetime != 2*time.Hour || h.launcher.managed[2].Target != commands.StopAll {
		t.Errorf("managed: %+v", h.launcher.managed)
	}
}

func TestEndToEndNotSetUpToLaunch(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	h.restartWith(h.st, nil) // as serve does without Launch settings
	got := h.command(defaultComment("/launch"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "not set up to launch VMs yet") {
		t.Fatalf("answer: %+v", got)
	}
}

// A command that reached the bot long after it was written (redelivered
// from GitHub's log days later) is answered, not run. Staleness is measured
// to when the bot received it: waiting for a rate limit does not count.
func TestEndToEndCommandReceivedLateIsTooOld(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	c := defaultComment("/launch")
	c.CreatedAt = time.Now().Add(-2 * time.Hour)
	got := h.command(c)
	if len(got) != 1 || !strings.Contains(got[0].Body, "more than 30 minutes ago") || len(h.launcher.requests()) != 0 {
		t.Fatalf("answer: %+v", got)
	}
}

// GitHub failing until the command's deadline (2 h after receipt): the
// command gets its apology, after its last retry.
func TestEndToEndGitHubKeepsFailingStillAnswers(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	h.stop()
	h.worker.now = func() time.Time { return time.Now().Add(maxHeldAge - time.Minute) } // the delivery came almost 2 h ago
	h.startWorker()
	h.gh.FailNext(http.MethodGet, "/repos/packit/ogr/collaborators/", http.StatusBadGateway, 100)
	c := defaultComment("/launch")
	if status := h.post("issue_comment", c.postTo(h.gh)); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	deadline := time.After(60 * time.Second)
	for attempts := 0; attempts < 4; { // the first run and 3 retries
		select {
		case j := <-h.handled:
			if j.err == nil {
				t.Fatal("a failing command succeeded")
			}
			attempts++
		case <-deadline:
			t.Fatal("retries did not finish")
		}
	}
	got := botComments(h.gh, "packit/ogr", 7)
	if len(got) != 1 || !strings.Contains(got[0].Body, "Something went wrong") {
		t.Fatalf("comments: %+v", got)
	}
}

// One person's flood of commands is answered up to the budget, then told
// once, then left unanswered for the rest of the minute: every answer is
// content GitHub limits per App, which the flood must not spend for others.
func TestEndToEndCommandsBudget(t *testing.T) {
	h := newHarness(t, strings.Replace(e2eServerConfig, "commands_per_minute: 1000", "commands_per_minute: 3", 1))
	// The flood was written within one minute: the budget's window is the
	// minute GitHub says a comment was created in.
	minute := time.Now().UTC().Truncate(time.Minute).Add(-time.Minute)
	flood := func(user, repo string, n int) (answers []int, comments []*comment) {
		for range n {
			c := defaultComment("/launch help")
			c.User, c.Repo, c.CreatedAt = user, repo, minute.Add(30*time.Second)
			before := len(botComments(h.gh, repo, 7))
			if status := h.post("issue_comment", c.postTo(h.gh)); status != http.StatusAccepted {
				t.Fatalf("intake answered %d, want 202", status)
			}
			h.waitHandled()
			answers, comments = append(answers, len(botComments(h.gh, repo, 7))-before), append(comments, c)
		}
		return answers, comments
	}
	answers, sent := flood("alice", "packit/ogr", 6)
	if !slices.Equal(answers, []int{1, 1, 1, 1, 0, 0}) {
		t.Fatalf("answers per command %v, want [1 1 1 1 0 0]", answers)
	}
	all := botComments(h.gh, "packit/ogr", 7)
	told := all[len(all)-1].Body
	until := "Comment again after " + minute.Add(time.Minute).Format("15:04") + " UTC"
	for _, want := range []string{"@alice", "more than 3 commands within the minute from " + minute.Format("15:04") + " UTC", until} {
		if !strings.Contains(told, want) {
			t.Errorf("the notice lacks %q:\n%s", want, told)
		}
	}
	// The minute's count outlives a command held for GitHub, so that it comes
	// back to its place rather than to a fresh count.
	key := fmt.Sprintf("commands:alice:%d", minute.Unix()/60)
	if ttl := h.st.Redis().PTTL(t.Context(), key).Val(); ttl <= maxHeldAge {
		t.Errorf("%s is kept %s, want longer than a held command's %s", key, ttl, maxHeldAge)
	}
	for i, c := range sent[4:] {
		if r := h.gh.Reactions(c.Repo, c.ID); len(r) != 0 {
			t.Errorf("command %d past the notice got reactions %v: each is a request GitHub counts", 5+i, r)
		}
	}
	bob := defaultComment("/launch help")
	bob.User = "bob"
	if got := h.command(bob); len(got) != 1 || !strings.Contains(got[0].Body, "/launch stop [ID|all]") {
		t.Errorf("another person is answered as usual: %v", got)
	}
	// On an untrusted project the flood hears the one explanation per PR,
	// and no notice on top of it.
	if answers, _ := flood("carol", "someone/else", 5); !slices.Equal(answers, []int{1, 0, 0, 0, 0}) {
		t.Errorf("answers on an untrusted project %v, want [1 0 0 0 0]", answers)
	}
}

// notCounting is a store whose commands budget cannot be counted (Redis
// failing for that call).
type notCounting struct{ *store.Store }

func (notCounting) CountCommand(context.Context, string, string, int, time.Duration) (int, error) {
	return 0, errors.New("redis: connection refused")
}

// The budget must not silence anyone: when Redis cannot count a command,
// it is answered.
func TestEndToEndCommandsBudgetFailsOpen(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	h.restartWith(notCounting{h.st}, h.launcher)
	if got := h.command(defaultComment("/launch help")); len(got) != 1 || !strings.Contains(got[0].Body, "/launch stop [ID|all]") {
		t.Fatalf("answers while the budget cannot be counted: %v", got)
	}
}
