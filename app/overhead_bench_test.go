package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	"github.com/packit/packit-launch/store/storetest"
)

// overheadStep is the fake Launch service's step duration in
// BenchmarkLaunchOverhead: a reservation finishes 3 steps (30 ms) after it
// is created, after the bot's first poll (sent at once) and well before its
// second (one production poll interval, 1 s, later).
const overheadStep = 10 * time.Millisecond

// BenchmarkLaunchOverhead measures the bot's own overhead on a /launch, end
// to end, with fakes that answer at once: signed webhook → intake → Redis
// queue → command job → launch job → fake Launch service (real clock,
// reservations done in 30 ms) and moto_server → fake GitHub. The bot is
// wired as serve wires it: a queue worker for commands and one for
// lifecycle work (concurrency 10 each), the Launch API client on the real
// clock, and the production looks at a reservation (the first at once, then
// scheduled jobs 1 s apart, growing to 5 s). Each iteration is one /launch: a fresh comment on a fresh PR under a
// fresh delivery id:
//
//	go test -run '^$' -bench BenchmarkLaunchOverhead -benchtime 30x ./app/
//
// ns/op means nothing here; the figures are:
//
//   - comment-to-reservation: from sending the signed delivery to the
//     intake until the fake Launch service receives POST /reservations/aws.
//   - ready-to-comment: from the fake Launch service's first answer that the
//     reservation succeeded until the fake GitHub receives the "your VM is
//     ready" comment.
//   - done-to-comment: from the moment the reservation finished (in the
//     fake) until that comment: ready-to-comment plus the wait for the next
//     poll, here up to one first interval (1 s).
//   - queued-command, queued-launch: the parts of comment-to-reservation
//     the two jobs spend queued (delivery accepted → command job starts;
//     command job ends, having queued the launch job last → launch job
//     starts); aws, github and launchapi: the time the fakes spent answering
//     the bot within comment-to-reservation (aws includes a timing proxy in
//     front of moto_server).
//
// -v logs each launch's breakdown.
func BenchmarkLaunchOverhead(b *testing.B) {
	e := newOverheadEnv(b)
	var c2r, r2c, d2c, qCmd, qLaunch, aws, gh, api []time.Duration
	n := 0
	for b.Loop() {
		n++
		m := e.launchOnce(b, n)
		c2r = append(c2r, m.reserved.Sub(m.posted))
		r2c = append(r2c, m.commented.Sub(m.ready))
		d2c = append(d2c, m.commented.Sub(m.done))
		qCmd = append(qCmd, m.cmdStart.Sub(m.accepted))
		qLaunch = append(qLaunch, m.launchStart.Sub(m.cmdEnd))
		aws = append(aws, e.aws.within(m.posted, m.reserved))
		gh = append(gh, e.github.within(m.posted, m.reserved))
		api = append(api, e.launchAPI.within(m.posted, m.reserved))
		if testing.Verbose() {
			b.Logf("launch %d: intake %.1f ms, command queued %.1f, command job %.1f, launch queued %.1f, launch job to reservation %.1f; ready→comment %.1f (AWS %.1f); done→comment %.1f",
				n, ms(m.accepted.Sub(m.posted)), ms(m.cmdStart.Sub(m.accepted)), ms(m.cmdEnd.Sub(m.cmdStart)), ms(m.launchStart.Sub(m.cmdEnd)),
				ms(m.reserved.Sub(m.launchStart)), ms(m.commented.Sub(m.ready)), ms(e.aws.within(m.ready, m.commented)), ms(m.commented.Sub(m.done)))
		}
	}
	if got := len(e.api.RequestsTo(http.MethodPost, "/reservations/aws")); got != n {
		b.Fatalf("%d reservations were requested for %d launches", got, n)
	}
	if got := len(e.api.Reservations("org-1")); got != n {
		b.Fatalf("the Launch service holds %d reservations for %d launches", got, n)
	}
	b.ReportMetric(0, "ns/op")
	report := func(name string, ds []time.Duration, all bool) {
		b.ReportMetric(ms(percentile(ds, 50)), name+"-p50-ms")
		if all {
			b.ReportMetric(ms(percentile(ds, 90)), name+"-p90-ms")
			b.ReportMetric(ms(slices.Max(ds)), name+"-max-ms")
		}
	}
	report("comment-to-reservation", c2r, true)
	report("ready-to-comment", r2c, true)
	report("done-to-comment", d2c, true)
	report("queued-command", qCmd, false)
	report("queued-launch", qLaunch, false)
	report("aws", aws, false)
	report("github", gh, false)
	report("launchapi", api, false)
	b.Logf("%d launches; comment→reservation p50 %.1f ms (queued %.1f + %.1f, AWS %.1f, GitHub %.1f, Launch API %.1f); ready→comment p50 %.1f ms; done→comment p50 %.1f ms (poll interval: production default, first 1 s)",
		n, ms(percentile(c2r, 50)), ms(percentile(qCmd, 50)), ms(percentile(qLaunch, 50)), ms(percentile(aws, 50)), ms(percentile(gh, 50)), ms(percentile(api, 50)),
		ms(percentile(r2c, 50)), ms(percentile(d2c, 50)))
}

// BenchmarkSSHReadyAfterBoot measures what the wait for sshd adds to a
// VM's own boot: the BenchmarkLaunchOverhead world, with each VM's sshd
// (sshdtest) answering sshBoot after its instance runs and the bot
// probing it as in production (every 5 s):
//
//	go test -run '^$' -bench BenchmarkSSHReadyAfterBoot -benchtime 20x ./app/
//
// comment-to-ready is from the delivery to the ready comment; added, from
// the moment sshd answers to that comment (target: at most one poll
// interval, 5 s).
func BenchmarkSSHReadyAfterBoot(b *testing.B) {
	const sshBoot = 3 * time.Second
	e := newOverheadEnvWith(b, overheadStep, sshBoot)
	var total, added []time.Duration
	n := 0
	for b.Loop() {
		n++
		m := e.launchOnce(b, n)
		if m.sshdUp.IsZero() || m.commented.Before(m.sshdUp) {
			b.Fatalf("launch %d: the ready comment (%s) came before sshd answered (%s)", n, m.commented.Format(time.StampMilli), m.sshdUp.Format(time.StampMilli))
		}
		total = append(total, m.commented.Sub(m.posted))
		added = append(added, m.commented.Sub(m.sshdUp))
	}
	b.ReportMetric(0, "ns/op")
	for name, ds := range map[string][]time.Duration{"comment-to-ready": total, "added": added} {
		b.ReportMetric(ms(percentile(ds, 50)), name+"-p50-ms")
		b.ReportMetric(ms(percentile(ds, 90)), name+"-p90-ms")
		b.ReportMetric(ms(slices.Max(ds)), name+"-max-ms")
	}
	b.Logf("%d launches, sshd answering %s after each VM runs: comment→ready p50 %.0f ms, max %.0f ms; added to the boot p50 %.0f ms, max %.0f ms",
		n, sshBoot, ms(percentile(total, 50)), ms(slices.Max(total)), ms(percentile(added, 50)), ms(slices.Max(added)))
}

// overheadEnv is the bot wired as serve wires it, between fakes whose
// handlers are wrapped to record when the bot reached them.
type overheadEnv struct {
	gh       *githubtest.Server
	api      *launchapitest.Fake
	st       *store.Store
	web      *httptest.Server
	client   *http.Client
	sourceID string

	aws, github, launchAPI spans // how long each fake took to answer the bot

	mu sync.Mutex
	m  launchMarks // the launch under way
	// ready is when the fake first answered a reservation, by id, as succeeded.
	ready map[int64]time.Time
}

// launchMarks are the moments of one launch.
type launchMarks struct {
	pr           int
	posted       time.Time // the signed delivery is sent to the intake
	accepted     time.Time // the intake answered 202
	cmdStart     time.Time // the command job starts (first attempt)
	cmdEnd       time.Time // the command job ends (it queued the launch job last)
	launchStart  time.Time // the launch job starts
	reserved     time.Time // the fake Launch service receives POST /reservations/aws
	ready        time.Time // the fake Launch service first answers the reservation as succeeded
	done         time.Time // the reservation finished, by the fake's (real) clock
	commented    time.Time // the fake GitHub receives the "ready" comment
	sshdUp       time.Time // the VM's sshd starts answering (with ssh)
	reservations int       // POST /reservations/aws during this launch
	commentedCh  chan struct{}
}

func newOverheadEnv(b *testing.B) *overheadEnv { return newOverheadEnvWith(b, overheadStep, 0) }

// newOverheadEnvWith is newOverheadEnv with the fake Launch service's
// reservation steps taking step each. With boot > 0, the ready comment
// waits for the VMs' sshd (sshdtest), which answers boot after each
// instance runs, and their consoles show its host key.
func newOverheadEnvWith(b *testing.B, step, boot time.Duration) *overheadEnv {
	b.Helper()
	ctx := context.Background()
	e := &overheadEnv{ready: map[int64]time.Time{}, client: &http.Client{Timeout: 30 * time.Second}}

	// AWS: the bot's own calls go through a timing proxy to moto_server;
	// the fake Launch service's launcher talks to moto_server directly.
	moto := ec2test.StartMoto(b)
	motoURL, err := url.Parse(moto)
	if err != nil {
		b.Fatal(err)
	}
	var aws http.Handler = httputil.NewSingleHostReverseProxy(motoURL)
	var console *ec2test.FakeEC2
	if boot > 0 {
		console = ec2test.NewConsoleFake(aws)
		aws = console
	}
	awsSrv := httptest.NewServer(e.aws.timed(aws))
	b.Cleanup(awsSrv.Close)
	cloud, err := ec2.New(ctx, ec2test.Config(awsSrv.URL, "us-east-1"))
	if err != nil {
		b.Fatal(err)
	}
	base, err := cloud.Bootstrap(ctx, "us-east-1", ec2.BootstrapInput{Profile: "small"})
	if err != nil {
		b.Fatal(err)
	}
	// No limits (0): quotas never refuse however many VMs the run leaves.
	cfg, err := config.ParseServer([]byte(fmt.Sprintf(launchServerConfig, 0, base.LaunchTemplateID, base.SecurityGroupID, "2h", 0)), nil)
	if err != nil {
		b.Fatal(err)
	}

	// GitHub.
	e.gh = githubtest.New()
	ghSrv := httptest.NewServer(e.github.timed(e.githubTap(e.gh.Handler())))
	b.Cleanup(ghSrv.Close)
	e.gh.URL = ghSrv.URL
	e.gh.SetInstallation(55)
	e.gh.SetPermission("packit/ogr", "alice", "write")
	e.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, fmt.Sprintf(launchRepoConfig, ec2test.AMI(b, moto, "us-east-1")))
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	sk, err := ssh.NewPublicKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	e.gh.SetKeys("alice", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk)))+" alice@laptop")

	// The Launch service, on the real clock.
	launcher := &ec2test.Launcher{Endpoint: moto, OverrideTemplateTags: true}
	var prober provision.SSHProber
	if boot > 0 {
		vm, err := sshdtest.New()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(vm.Close)
		prober = &sshd.Prober{Dialer: vm.Dialer()}
		launcher.Launched = func(_, id string) {
			console.SetConsoleOutput(id, sshdtest.ConsoleOutput(vm.HostKey()))
			vm.SetAnswering(false)
			time.AfterFunc(boot, func() { vm.SetAnswering(true) })
			e.mu.Lock()
			e.m.sshdUp = time.Now().Add(boot)
			e.mu.Unlock()
		}
	}
	e.api = launchapitest.New(launchapitest.Options{StepDuration: step, Launcher: launcher})
	apiSrv := httptest.NewServer(e.launchAPI.timed(e.launchTap(e.api)))
	b.Cleanup(func() { e.api.Close(); apiSrv.Close() })
	e.api.AddServiceAccount("bot", "bot-secret", "org-1")
	e.sourceID = e.api.AddSource("org-1", launchapitest.Source{Name: "aws"}).ID
	client, err := launchapi.New(launchapi.Config{BaseURL: apiSrv.URL + launchapitest.APIPrefix, TokenURL: apiSrv.URL + launchapitest.TokenPath,
		ClientID: "bot", ClientSecret: "bot-secret", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}

	// The bot.
	e.st, err = store.OpenWith(ctx, storetest.StartRedis(b), store.Options{}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.st.Close() })
	inst, err := NewInstallations(e.gh.AppID, e.gh.PrivateKeyPEM, e.gh.URL+"/")
	if err != nil {
		b.Fatal(err)
	}
	prov := provision.New(client, e.st, e.sourceID, provision.Options{Cloud: cloud, SSH: prober}, quiet) // production Wait options and looks
	launches := NewLaunches(cfg, e.st, prov, inst, quiet)
	worker := NewWorker(cfg, inst, e.st, launches, quiet)
	// As serve does: a worker for commands, one for lifecycle work, 10 jobs each.
	cw, lw := e.st.NewWorker(10, quiet, store.QueueCommands), e.st.NewWorker(10, quiet, store.QueueLifecycle)
	cw.Handle(JobCommand, e.timedJob(JobCommand, worker.HandleCommand))
	cw.Handle(JobConfigCheck, holdingRateLimits(worker.HandleConfigCheck, worker.now, worker.log))
	for kind, fn := range launches.Handlers() {
		lw.Handle(kind, e.timedJob(kind, fn))
	}
	wctx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 2)
	go func() { stopped <- cw.Run(wctx) }()
	go func() { stopped <- lw.Run(wctx) }()
	b.Cleanup(func() { cancel(); <-stopped; <-stopped })

	e.web = httptest.NewServer(Routes("/api/github/webhooks", NewIntake(testSecret, "", e.st, e.st.Queue(), quiet), e.st.Ping, quiet))
	b.Cleanup(e.web.Close)
	return e
}

// launchOnce comments /launch on a fresh PR and returns the launch's
// moments once it is reported there.
func (e *overheadEnv) launchOnce(b *testing.B, i int) launchMarks {
	b.Helper()
	pr := 100 + i
	e.gh.SetPull("packit/ogr", githubtest.PullRequest{Number: pr, State: "open", HeadSHA: fmt.Sprintf("%040x", i), HeadRef: fmt.Sprintf("feature-%d", i), BaseRef: "main"})
	c := defaultComment("/launch")
	c.Number = pr
	body := c.postTo(e.gh)
	commented := make(chan struct{})
	e.mu.Lock()
	e.m = launchMarks{pr: pr, commentedCh: commented, posted: time.Now()}
	e.mu.Unlock()
	e.deliver(b, body, fmt.Sprintf("overhead-%d-%d", time.Now().UnixNano(), i))
	accepted := time.Now()
	e.mu.Lock()
	e.m.accepted = accepted
	e.mu.Unlock()

	select {
	case <-commented:
	case <-time.After(60 * time.Second):
		ls, _ := e.st.LaunchesByPR(context.Background(), "packit/ogr", pr)
		b.Fatalf("launch %d: no ready comment on PR #%d within 60 s; records: %+v; comments: %+v", i, pr, ls, botComments(e.gh, "packit/ogr", pr))
	}
	// Done only once the record says it was reported (comment, reaction,
	// check run): the next launch starts with a quiet bot.
	var l *store.Launch
	deadline := time.Now().Add(30 * time.Second)
	for l == nil {
		ls, err := e.st.LaunchesByPR(context.Background(), "packit/ogr", pr)
		if err != nil {
			b.Fatal(err)
		}
		for _, x := range ls {
			if x.CommandCommentID == c.ID && x.Reported {
				l = x
			}
		}
		if l == nil {
			if time.Now().After(deadline) {
				b.Fatalf("launch %d was not reported in time; records: %+v", i, ls)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	if l.State != store.StateRunning || l.ReservationID == 0 {
		b.Fatalf("launch %d: state %s, reservation %d; want running", i, l.State, l.ReservationID)
	}

	e.mu.Lock()
	m := e.m
	m.ready = e.ready[l.ReservationID]
	e.m = launchMarks{}
	e.mu.Unlock()
	for _, r := range e.api.Reservations("org-1") {
		if r.ID == l.ReservationID && r.FinishedAt != nil {
			m.done = *r.FinishedAt
		}
	}
	switch {
	case m.reservations != 1:
		b.Fatalf("launch %d made %d reservations, want 1", i, m.reservations)
	case m.cmdStart.IsZero() || m.cmdEnd.IsZero() || m.launchStart.IsZero():
		b.Fatalf("launch %d: jobs not seen: %+v", i, m)
	case m.ready.IsZero() || m.done.IsZero():
		b.Fatalf("launch %d: reservation %d was never answered as succeeded", i, l.ReservationID)
	}
	return m
}

// timedJob notes when the launch's command and launch jobs run.
func (e *overheadEnv) timedJob(kind string, fn func(context.Context, []byte) error) func(context.Context, []byte) error {
	return func(ctx context.Context, payload []byte) error {
		start := time.Now()
		err := fn(ctx, payload)
		end := time.Now()
		e.mu.Lock()
		defer e.mu.Unlock()
		switch {
		case kind == JobCommand && e.m.cmdStart.IsZero():
			e.m.cmdStart, e.m.cmdEnd = start, end
		case kind == provision.JobLaunch && e.m.launchStart.IsZero():
			e.m.launchStart = start
		}
		return err
	}
}

// githubTap notes when the ready comment for the launch under way arrives.
func (e *overheadEnv) githubTap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/repos/packit/ogr/issues/") && strings.HasSuffix(r.URL.Path, "/comments") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			e.mu.Lock()
			if e.m.commentedCh != nil && e.m.commented.IsZero() && r.URL.Path == fmt.Sprintf("/repos/packit/ogr/issues/%d/comments", e.m.pr) &&
				bytes.Contains(body, []byte("your VM is ready")) {
				e.m.commented = now
				close(e.m.commentedCh)
			}
			e.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// launchTap notes when a reservation is asked for, and when the service
// first answers that one succeeded (once the answer is written).
func (e *overheadEnv) launchTap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		path := strings.TrimPrefix(r.URL.Path, launchapitest.APIPrefix)
		if r.Method == http.MethodPost && path == "/reservations/aws" {
			e.mu.Lock()
			if e.m.reserved.IsZero() {
				e.m.reserved = now
			}
			e.m.reservations++
			e.mu.Unlock()
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(path, "/reservations/"), 10, 64)
		if r.Method != http.MethodGet || !strings.HasPrefix(path, "/reservations/") || err != nil {
			next.ServeHTTP(w, r)
			return
		}
		tw := &teeWriter{ResponseWriter: w}
		next.ServeHTTP(tw, r)
		answered := time.Now()
		var res struct {
			Success *bool `json:"success"`
		}
		if json.Unmarshal(tw.body.Bytes(), &res) == nil && res.Success != nil && *res.Success {
			e.mu.Lock()
			if _, seen := e.ready[id]; !seen {
				e.ready[id] = answered
			}
			e.mu.Unlock()
		}
	})
}

// teeWriter keeps a copy of the answer it writes.
type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.body.Write(p)
	return w.ResponseWriter.Write(p)
}

// spans records how long a fake took to answer each request.
type spans struct {
	mu   sync.Mutex
	list [][2]time.Time
}

func (s *spans) timed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		end := time.Now()
		s.mu.Lock()
		s.list = append(s.list, [2]time.Time{start, end})
		s.mu.Unlock()
	})
}

// within sums the answering time that falls between from and to.
func (s *spans) within(from, to time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	for _, sp := range s.list {
		start, end := sp[0], sp[1]
		if start.Before(from) {
			start = from
		}
		if end.After(to) {
			end = to
		}
		if end.After(start) {
			d += end.Sub(start)
		}
	}
	return d
}

// percentile is the nearest-rank p-th percentile of ds (0 for none: a
// benchmark run once, -benchtime 1x, may not reach every kind).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
