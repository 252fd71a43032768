package app

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/mdsafe/mdsafetest"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
	"github.com/packit/packit-launch/store"
)

// Tests of what a hostile public can send, end to end: signed webhooks
// through intake, the worker, and the fake GitHub that refuses what GitHub
// refuses.

// oneLine is what of a hostile string survives as one word of a command
// (the grammar reads the first line and splits it on spaces).
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.Join(strings.Fields(s), "")
	if s == "" {
		return "x"
	}
	return s
}

func TestHostileWordsNeverRenderInAnswers(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	h.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, e2eRepoConfig+"allow_image_override: true\n")
	forms := []string{"/launch %s", "/launch --type %s", "/launch --lifetime %s", "/launch --image %s", "/launch --%s", "/launch extend %s", "/launch fedora %s"}
	for i, hostile := range mdsafetest.Hostile {
		word := oneLine(hostile)
		form := forms[i%len(forms)]
		line := fmt.Sprintf(form, word)
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			h.t = t
			got := h.command(defaultComment(line))
			if len(got) != 1 {
				t.Fatalf("%q: want one answer, got %d", line, len(got))
			}
			if err := mdsafetest.Check(got[0].Body, "alice"); err != nil {
				t.Errorf("%q: %v\n%s", line, err, got[0].Body)
			}
		})
	}
	// A repository's config is user text too: its problems are listed safely.
	var b strings.Builder
	b.WriteString("machines:\n")
	for i, hostile := range mdsafetest.Hostile[:12] {
		fmt.Fprintf(&b, "  %q:\n    image: %q\n    region: %q\n", fmt.Sprintf("m%d%s", i, oneLine(hostile)), oneLine(hostile), oneLine(hostile))
	}
	h.t = t
	h.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, b.String())
	got := h.command(defaultComment("/launch"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "has problems") {
		t.Fatalf("answer: %+v", got)
	}
	if err := mdsafetest.Check(got[0].Body, "alice"); err != nil {
		t.Errorf("config problems: %v\n%s", err, got[0].Body)
	}
}

func TestAnswersFitGitHubsLimits(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	// Two thousand broken machines: the list of problems is far longer than
	// a comment may be, and the fake answers 422 to an over-long body.
	var b strings.Builder
	b.WriteString("machines:\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  m%d:\n    image: not-an-image-%d\n    region: mars-%d\n", i, i, i)
	}
	h.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, b.String())
	got := h.command(defaultComment("/launch"))
	if len(got) != 1 {
		t.Fatalf("want one answer, got %d", len(got))
	}
	if n := len([]rune(got[0].Body)); n > maxCommentChars || !strings.Contains(got[0].Body, "Cut here") || !strings.Contains(got[0].Body, "has problems") {
		t.Errorf("answer of %d characters, want it cut to fit with a note:\n%.300s", n, got[0].Body)
	}
}

func TestAnswerGitHubRefusesIsReplacedByAShortOne(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	h.gh.FailNext(http.MethodPost, "/repos/packit/ogr/issues/7/comments", http.StatusUnprocessableEntity, 1)
	got := h.command(defaultComment("/launch --size huge"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "@alice I have an answer for this, but GitHub refused to show it (HTTP 422)") {
		t.Fatalf("answers: %+v", got)
	}
}

// A command that meets GitHub's exhausted rate limit waits for the reset
// and is then answered, instead of burning its three quick retries.
func TestRateLimitedCommandIsHeldUntilTheReset(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	reset := time.Now().Add(16 * time.Second) // past a command's three quick retries (2+4+8 s)
	h.gh.SetRateLimit(0, reset)
	got := h.command(defaultComment("/launch help"))
	if time.Now().Before(reset) {
		t.Errorf("answered before the rate limit reset")
	}
	if len(got) != 1 || !strings.Contains(got[0].Body, "packit-launch commands") {
		t.Fatalf("answers: %+v", got)
	}
}

func TestSecondaryRateLimitIsWaitedOut(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	// More failures than a command has retries: only holding gets it through.
	h.gh.SecondaryRateLimitNext(http.MethodPost, "/repos/packit/ogr/issues/7/comments", time.Second, 5)
	start := time.Now()
	got := h.command(defaultComment("/launch help"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "packit-launch commands") {
		t.Fatalf("answers: %+v", got)
	}
	if waited := time.Since(start); waited < 4*time.Second {
		t.Errorf("answered after %s; each refusal asked for a second's wait", waited)
	}
}

// A writer could push a branch with looser rules and open a PR against it:
// who may launch is read from the default branch, machines from the base.
func TestAccessRulesComeFromTheDefaultBranch(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	h.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, e2eRepoConfig+"access:\n  users: [bob]\n")
	h.gh.SetFile("packit/ogr", "loose", config.RepoConfigPath, e2eRepoConfig) // no access rules
	h.gh.SetPull("packit/ogr", githubtest.PullRequest{Number: 7, State: "open", HeadSHA: strings.Repeat("a", 40), HeadRef: "feature", BaseRef: "loose"})
	got := h.command(defaultComment("/launch"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "access.users") {
		t.Fatalf("alice through a looser base branch: %+v", got)
	}
	h.gh.SetPermission("packit/ogr", "bob", "write")
	bob := defaultComment("/launch")
	bob.User = "bob"
	if got := h.command(bob); len(got) != 0 {
		t.Fatalf("bob is listed on the default branch: %+v", got)
	}
	if reqs := h.launcher.requests(); len(reqs) != 1 || reqs[0].BaseRef != "loose" {
		t.Errorf("launch requests %+v, want bob's from base branch loose", reqs)
	}
}

func TestOwnerWhoLostWriteAccessCannotExtendButCanStop(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	e.gh.SetPermission("packit/ogr", "alice", "read")
	got := e.command(defaultComment("/launch extend 1h"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "needs write access") {
		t.Fatalf("extend answers: %+v", got)
	}
	if x, _ := e.st.GetLaunch(t.Context(), l.ID); !x.ExpiresAt.Equal(l.ExpiresAt) {
		t.Errorf("expiry moved from %s to %s", l.ExpiresAt, x.ExpiresAt)
	}
	got = e.command(defaultComment("/launch stop"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "is terminated") {
		t.Fatalf("stop answers: %+v", got)
	}
	e.waitTerminated(l.InstanceID)
}

func TestHostileStopTargetsAndLaunchErrorsNeverRender(t *testing.T) {
	e := newLaunchEnv(t)
	for _, hostile := range mdsafetest.Hostile[:10] {
		got := e.command(defaultComment("/launch stop " + oneLine(hostile)))
		if len(got) != 1 {
			t.Fatalf("want one answer, got %+v", got)
		}
		if err := mdsafetest.Check(got[0].Body, "alice"); err != nil {
			t.Errorf("stop %q: %v\n%s", oneLine(hostile), err, got[0].Body)
		}
	}
	// The Launch service's own words (it may echo names, or be compromised).
	hostileError := strings.Join(mdsafetest.Hostile, "\n") + strings.Repeat("x", 100_000)
	e.api.PlanNextReservation(launchapitest.ReservationPlan{FailAtStep: 2, Error: hostileError})
	l := e.launch(defaultComment("/launch"))
	if l.State != store.StateFailed {
		t.Fatalf("state %s", l.State)
	}
	got := botComments(e.gh, "packit/ogr", 7)
	last := got[len(got)-1].Body
	if err := mdsafetest.Check(last, "alice"); err != nil || len(last) > maxFailureBytes+2000 {
		t.Errorf("failure comment (%d bytes): %v\n%.500s", len(last), err, last)
	}
	if cr := checkRunFor(t, e.gh, l.ID); cr.Status != "completed" || cr.Conclusion != "failure" {
		t.Errorf("check run %s/%s", cr.Status, cr.Conclusion)
	}
}

// A launch that cannot get through says so on its PR, with until when it
// is retried, and the final answer replaces that note.
func TestStalledLaunchTellsThePRWhatFailsAndUntilWhen(t *testing.T) {
	e := newLaunchEnv(t)
	e.launches.lc.StillTryingAfter = 0 // tell at the first failed attempt
	e.api.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/pubkeys", Status: http.StatusInternalServerError, Times: -1})
	c := defaultComment("/launch")
	if status := e.post("issue_comment", c.postTo(e.gh)); status != http.StatusAccepted {
		t.Fatalf("intake answered %d", status)
	}
	waitFor(t, func() bool {
		got := botComments(e.gh, "packit/ogr", 7)
		return len(got) == 1 && strings.Contains(got[0].Body, "has not got through yet")
	})
	note := botComments(e.gh, "packit/ogr", 7)[0]
	for _, want := range []string{"@alice", "the Launch service answered HTTP 500", "I keep trying until about", "update this comment"} {
		if !strings.Contains(note.Body, want) {
			t.Errorf("note lacks %q:\n%s", want, note.Body)
		}
	}
	waitFor(t, func() bool { // updated just after the comment
		runs := e.gh.CheckRuns("packit/ogr")
		return len(runs) == 1 && runs[0].Title == "Still launching fedora"
	})
	if runs := e.gh.CheckRuns("packit/ogr"); runs[0].Status != "in_progress" || !strings.Contains(runs[0].Summary, "I keep trying until about") {
		t.Fatalf("check run: %+v", runs[0])
	}
	e.api.ClearFaults()
	l := e.reported(c)
	got := botComments(e.gh, "packit/ogr", 7)
	if l.State != store.StateRunning || len(got) != 1 || got[0].ID != note.ID || !strings.Contains(got[0].Body, "your VM is ready") {
		t.Fatalf("state %s, comments %+v", l.State, got)
	}
}

// A check run whose update GitHub refuses still ends completed.
func TestCheckRunNeverStaysInProgress(t *testing.T) {
	e := newLaunchEnv(t)
	e.gh.FailNext(http.MethodPatch, "/repos/packit/ogr/check-runs/", http.StatusUnprocessableEntity, 1)
	l := e.launch(defaultComment("/launch"))
	cr := checkRunFor(t, e.gh, l.ID)
	if cr.Status != "completed" || cr.Conclusion != "success" || !strings.Contains(cr.Summary, "did not fit") {
		t.Errorf("check run %+v", cr)
	}
}

// An extension whose answer met GitHub's rate limit is held and answered
// later, and applied once.
func TestExtendHeldForARateLimitIsAppliedOnce(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	e.gh.SecondaryRateLimitNext(http.MethodPost, "/repos/packit/ogr/issues/7/comments", time.Second, 1)
	got := e.command(defaultComment("/launch extend 1h"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "now terminates at") {
		t.Fatalf("answers: %+v", got)
	}
	x, _ := e.st.GetLaunch(t.Context(), l.ID)
	if want := l.ExpiresAt.Add(time.Hour); !x.ExpiresAt.Equal(want) {
		t.Errorf("expiry %s, want %s (extended once)", x.ExpiresAt, want)
	}
}

// A sticky comment someone deleted is posted anew once, and that new one is
// kept up to date.
func TestDeletedStickyCommentIsPostedAnewOnce(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	e.gh.DeleteComment(l.CommentID)
	for range 2 {
		if got := e.command(defaultComment("/launch extend 30m")); len(got) == 0 {
			t.Fatal("no answer to extend")
		}
	}
	x, _ := e.st.GetLaunch(t.Context(), l.ID)
	var sticky []githubtest.Comment
	for _, c := range botComments(e.gh, "packit/ogr", 7) {
		if strings.Contains(c.Body, "your VM is ready") {
			sticky = append(sticky, c)
		}
	}
	if len(sticky) != 1 || sticky[0].ID != x.CommentID || !strings.Contains(sticky[0].Body, whenUTC(x.ExpiresAt, time.Now())[:20]) {
		t.Errorf("sticky comments %+v, record's %d, expiry %s", sticky, x.CommentID, x.ExpiresAt)
	}
}
