package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/provision/sshd/sshdtest"
	"github.com/packit/packit-launch/store"
)

// running waits until comment c's launch runs and its ssh check started.
func (e *launchEnv) running(c *comment) *store.Launch {
	e.t.Helper()
	var l *store.Launch
	waitFor(e.t, func() bool {
		ls, err := e.st.LaunchesByPR(context.Background(), c.Repo, c.Number)
		for _, x := range ls {
			if err == nil && x.CommandCommentID == c.ID && x.State == store.StateRunning && !x.SSH.Started.IsZero() {
				l = x
			}
		}
		return l != nil
	}, "for the launch to run")
	return l
}

// runningAfter comments c and waits until its launch runs and its ssh
// check started (the command's job done).
func (e *launchEnv) runningAfter(c *comment) *store.Launch {
	e.t.Helper()
	if status := e.post("issue_comment", c.postTo(e.gh)); status != http.StatusAccepted {
		e.t.Fatalf("intake answered %d", status)
	}
	e.waitHandled()
	return e.running(c)
}

// readyBody is the launch's sticky comment once it is posted.
func (e *launchEnv) readyBody(l *store.Launch) string {
	e.t.Helper()
	for _, c := range botComments(e.gh, "packit/ogr", 7) {
		if c.ID == l.CommentID {
			return c.Body
		}
	}
	e.t.Fatalf("no comment %d for launch %s", l.CommentID, l.ID)
	return ""
}

// commentWith waits until the launch's sticky comment contains want.
func (e *launchEnv) commentWith(l *store.Launch, want string) string {
	e.t.Helper()
	var body string
	waitFor(e.t, func() bool {
		for _, c := range botComments(e.gh, "packit/ogr", 7) {
			if c.ID == l.CommentID && strings.Contains(c.Body, want) {
				body = c.Body
				return true
			}
		}
		return false
	}, "for the comment to say", want)
	return body
}

// pinnedHosts writes the comment's known_hosts lines to a file and returns
// the checker ssh would use with StrictHostKeyChecking=yes.
func pinnedHosts(t *testing.T, body string) ssh.HostKeyCallback {
	t.Helper()
	_, rest, ok := strings.Cut(body, "<<'EOF'\n")
	lines, _, ok2 := strings.Cut(rest, "\nEOF\n")
	if !ok || !ok2 || !strings.Contains(body, "-o StrictHostKeyChecking=yes") {
		t.Fatalf("no pinned command in:\n%s", body)
	}
	file := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(file, []byte(lines+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check, err := knownhosts.New(file)
	if err != nil {
		t.Fatalf("the pinned lines are no known_hosts file: %v\n%s", err, lines)
	}
	return check
}

func otherHostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func noReadyComment(t *testing.T, gh *githubtest.Server) {
	t.Helper()
	for _, c := range botComments(gh, "packit/ogr", 7) {
		if strings.Contains(c.Body, "your VM is") {
			t.Fatalf("a ready comment before sshd answered:\n%s", c.Body)
		}
	}
}

// The ready comment waits for sshd's banner, holding no worker (scheduled
// looks), and pins the key: ssh with its known_hosts line accepts the
// VM's sshd and refuses any other key.
func TestSSHReadyOnlyAfterBannerWithPinnedHostKey(t *testing.T) {
	e := newLaunchEnv(t, withSSH(""))
	e.sshd.SetAnswering(false)
	c := defaultComment("/launch")
	l := e.runningAfter(c)
	waitFor(t, func() bool { return e.sshd.Dials() >= 3 }, "for three probes")
	noReadyComment(t, e.gh)
	if cr := checkRunFor(t, e.gh, l.ID); cr.Status != "in_progress" || cr.Title != "Waiting for ssh on fedora" || !strings.Contains(cr.Summary, l.InstanceID) {
		t.Fatalf("check run while sshd is silent: %+v", cr)
	}
	if got, _ := e.st.GetLaunch(context.Background(), l.ID); got.Reported || !got.SSH.AnsweredAt.IsZero() {
		t.Fatalf("reported before sshd answered: %+v", got.SSH)
	}

	e.sshd.SetAnswering(true)
	l = e.reported(c)
	body := e.readyBody(l)
	if !strings.Contains(body, "your VM is ready") || l.SSH.AnsweredAt.IsZero() || strings.Contains(body, "did not answer") {
		t.Fatalf("ready comment:\n%s\nssh: %+v", body, l.SSH)
	}
	for _, want := range []string{ssh.FingerprintSHA256(e.sshd.HostKey()), "the VM presented the same key to the bot", "fedora@" + l.PublicIPv4} {
		if !strings.Contains(body, want) {
			t.Errorf("ready comment lacks %q:\n%s", want, body)
		}
	}
	check := pinnedHosts(t, body)
	addr := &net.TCPAddr{IP: net.ParseIP(l.PublicIPv4), Port: 22}
	if err := check(l.PublicIPv4+":22", addr, e.sshd.HostKey()); err != nil {
		t.Errorf("the pinned line refuses the VM's own key: %v", err)
	}
	if err := check(l.PublicIPv4+":22", addr, otherHostKey(t)); err == nil {
		t.Error("the pinned line accepts another key")
	}
	if cr := checkRunFor(t, e.gh, l.ID); cr.Status != "completed" || cr.Conclusion != "success" || !strings.Contains(cr.Summary, "StrictHostKeyChecking=yes") {
		t.Errorf("check run once ready: %+v", cr)
	}
}

// Past the profile's ssh_wait the comment comes anyway and says why ssh
// may not answer; when sshd answers later, the comment is edited.
func TestSSHNotAnsweringWithinTheWaitIsSaid(t *testing.T) {
	e := newLaunchEnv(t, withSSH("3s"))
	e.sshd.SetAnswering(false)
	c := defaultComment("/launch")
	l := e.launch(c)
	body := e.readyBody(l)
	for _, want := range []string{"your VM is running 🚀, but its ssh did not answer yet", "did not answer the bot on port 22 within 3s",
		"an image without `sshd`", "security group", "`ssh_probe: false`", "route to the internet", "fedora@" + l.PublicIPv4} {
		if !strings.Contains(body, want) {
			t.Errorf("comment lacks %q:\n%s", want, body)
		}
	}
	if !l.SSH.AnsweredAt.IsZero() {
		t.Fatalf("answered: %+v", l.SSH)
	}
	e.sshd.SetAnswering(true)
	body = e.commentWith(l, "your VM is ready")
	if strings.Contains(body, "did not answer") || !strings.Contains(body, "the VM presented the same key") {
		t.Errorf("comment once sshd answers:\n%s", body)
	}
}

// A key the VM presents that its console does not list is a warning on
// the PR; the pinned line trusts the console's key only.
func TestHostKeyMismatchIsReported(t *testing.T) {
	e := newLaunchEnv(t, withSSH(""))
	console := otherHostKey(t)
	e.onLaunch(func(id string) { e.console.SetConsoleOutput(id, sshdtest.ConsoleOutput(console)) })
	l := e.launch(defaultComment("/launch"))
	body := e.readyBody(l)
	for _, want := range []string{"Host key mismatch", ssh.FingerprintSHA256(e.sshd.HostKey()), ssh.FingerprintSHA256(console), "tell this instance's operators"} {
		if !strings.Contains(body, want) {
			t.Errorf("comment lacks %q:\n%s", want, body)
		}
	}
	check := pinnedHosts(t, body)
	addr := &net.TCPAddr{IP: net.ParseIP(l.PublicIPv4), Port: 22}
	if err := check(l.PublicIPv4+":22", addr, e.sshd.HostKey()); err == nil {
		t.Error("the pinned line accepts the key the console does not list")
	}
	if err := check(l.PublicIPv4+":22", addr, console); err != nil {
		t.Errorf("the pinned line refuses the console's key: %v", err)
	}
	if cr := checkRunFor(t, e.gh, l.ID); !strings.Contains(cr.Summary, "Host key mismatch") {
		t.Errorf("the check run does not warn: %+v", cr)
	}
}

// Console output can lag minutes behind the boot: the ready comment goes
// out when sshd answers, with the key it presented, and is edited to pin
// the key once the console shows it.
func TestHostKeyFromALateConsoleEditsTheComment(t *testing.T) {
	e := newLaunchEnv(t, withSSH(""))
	e.onLaunch(func(string) {})
	l := e.launch(defaultComment("/launch"))
	body := e.readyBody(l)
	presented := ssh.FingerprintSHA256(e.sshd.HostKey())
	if !strings.Contains(body, "your VM is ready") || !strings.Contains(body, "The VM presented the bot the host key `"+presented+"`") ||
		!strings.Contains(body, "has not read it from the VM's console yet") || strings.Contains(body, "StrictHostKeyChecking") {
		t.Fatalf("comment before the console shows the keys:\n%s", body)
	}
	e.console.SetConsoleOutput(l.InstanceID, sshdtest.ConsoleOutput(e.sshd.HostKey()))
	body = e.commentWith(l, "StrictHostKeyChecking=yes")
	if !strings.Contains(body, "the VM presented the same key to the bot") {
		t.Errorf("edited comment:\n%s", body)
	}
	if n := len(botComments(e.gh, "packit/ogr", 7)); n != 1 {
		t.Errorf("%d bot comments; the ready comment is edited, not posted again", n)
	}
	check := pinnedHosts(t, body)
	if err := check(l.PublicIPv4+":22", &net.TCPAddr{IP: net.ParseIP(l.PublicIPv4), Port: 22}, e.sshd.HostKey()); err != nil {
		t.Errorf("the pinned line refuses the VM's key: %v", err)
	}
}

// A failover may lose the scheduled look at a VM's sshd: the ready comment
// would wait forever. The sweep finds the look overdue in the live index
// and looks again; the launch is reported once.
func TestSSHLooksLostInAFailoverAreResumedBySweep(t *testing.T) {
	e := newLaunchEnv(t, withSSH("20m"))
	e.sshd.SetAnswering(false)
	c := defaultComment("/launch")
	l := e.runningAfter(c)
	waitFor(t, func() bool { return e.sshd.Dials() >= 2 }, "for two probes")
	e.stop()
	opts, err := redis.ParseURL(e.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	lost := 0
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){insp.ListScheduledTasks, insp.ListPendingTasks, insp.ListRetryTasks} {
		tasks, err := list(store.QueueLifecycle)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			if task.Type == provision.JobSSHPoll {
				if err := insp.DeleteTask(store.QueueLifecycle, task.ID); err != nil {
					t.Fatal(err)
				}
				lost++
			}
		}
	}
	if lost == 0 {
		t.Fatal("no ssh look was queued to lose")
	}
	e.sshd.SetAnswering(true)
	e.startWorker()
	time.Sleep(2 * time.Second) // were a look left, it would run now
	noReadyComment(t, e.gh)

	// Minutes later the lost look is overdue (its time moves back, as the
	// clock cannot move on under a running worker's jobs).
	if _, err := e.st.UpdateLaunch(context.Background(), l.ID, func(x *store.Launch) error {
		x.SSH.PollAt = x.SSH.PollAt.Add(-6 * time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.launches.lc.Sweep(context.Background())
	l = e.reported(c)
	if l.SSH.AnsweredAt.IsZero() || !strings.Contains(e.readyBody(l), "your VM is ready") {
		t.Fatalf("after the sweep: %+v\n%s", l.SSH, e.readyBody(l))
	}
	if n := len(botComments(e.gh, "packit/ogr", 7)); n != 1 {
		t.Errorf("%d bot comments, want the one ready comment", n)
	}
}

// A VM stopped while its ready comment waits for sshd: the PR hears that
// it ended (no ready comment), and its check run completes.
func TestSSHWaitEndedByStopIsReported(t *testing.T) {
	e := newLaunchEnv(t, withSSH(""))
	e.sshd.SetAnswering(false)
	c := defaultComment("/launch")
	l := e.runningAfter(c)
	got := e.command(defaultComment("/launch stop " + l.ID))
	if len(got) == 0 || !strings.Contains(got[len(got)-1].Body, "is terminated") {
		t.Fatalf("stop answer: %+v", got)
	}
	l = e.reported(c)
	if l.State != store.StateEnded {
		t.Fatalf("reported %s, want ended", l.State)
	}
	waitFor(t, func() bool {
		cr := checkRunFor(t, e.gh, l.ID)
		return cr.Status == "completed" && cr.Conclusion == "neutral"
	}, "for the check run to complete")
	noReadyComment(t, e.gh)
	e.waitTerminated(l.InstanceID)
}

// GitHub failing (5xx) when sshd answers and the ready comment goes out:
// the one report job retries, and the PR gets exactly one ready comment.
func TestSSHReadyCommentSurvivesGitHubFailing(t *testing.T) {
	e := newLaunchEnv(t, withSSH(""))
	e.sshd.SetAnswering(false)
	c := defaultComment("/launch")
	e.runningAfter(c)
	e.gh.FailNext(http.MethodPatch, "/repos/packit/ogr/check-runs/", http.StatusBadGateway, 2)
	e.gh.FailNext(http.MethodPost, "/repos/packit/ogr/issues/7/comments", http.StatusServiceUnavailable, 2)
	e.sshd.SetAnswering(true)
	reportedWithin(2 * time.Minute)(e) // four failed attempts: 2 + 4 + 8 + 16 s of back-off
	l := e.reported(c)
	if l.State != store.StateRunning || l.SSH.AnsweredAt.IsZero() {
		t.Fatalf("reported: %s, ssh %+v", l.State, l.SSH)
	}
	ready := 0
	for _, c := range botComments(e.gh, "packit/ogr", 7) {
		if strings.Contains(c.Body, "your VM is ready") {
			ready++
		}
	}
	if ready != 1 {
		t.Errorf("%d ready comments, want one", ready)
	}
	if cr := checkRunFor(t, e.gh, l.ID); cr.Status != "completed" || cr.Conclusion != "success" {
		t.Errorf("check run: %+v", cr)
	}
}
