package app

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sharedFixtures is ../shared/fixtures/github-webhooks beside the repo
// (PACKIT_LAUNCH_SHARED overrides ../shared).
func sharedFixtures(t *testing.T) string {
	t.Helper()
	shared := os.Getenv("PACKIT_LAUNCH_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "shared")
	}
	dir := filepath.Join(shared, "fixtures", "github-webhooks")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("recorded GitHub payloads not found at %s (set PACKIT_LAUNCH_SHARED to the shared/ folder)", dir)
	}
	return dir
}

// eventOf names a fixture's event: "<event>.<name>.json", or a real
// packit-service issue_comment delivery.
func eventOf(name string) string {
	if event, _, ok := strings.Cut(name, "."); ok && !strings.HasSuffix(event, "json") && strings.Count(name, ".") > 1 {
		return event
	}
	return "issue_comment"
}

// TestReplayRecordedPayloads feeds every recorded delivery through the full
// stack: none is a /launch command, so each gets a 2xx, none causes a GitHub
// call, and only lifecycle events (a PR closed, the app uninstalled) and
// PRs opened or pushed to (their config check; the recorded repositories
// are not trusted here, so it asks GitHub nothing) queue work.
func TestReplayRecordedPayloads(t *testing.T) {
	dir := sharedFixtures(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no payloads in %s: %v", dir, err)
	}
	h := newHarness(t, e2eServerConfig)
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		event := eventOf(name)
		status := h.post(event, body)
		if status < 200 || status > 299 {
			t.Errorf("%s (%s): status %d", name, event, status)
		}
		if event == "ping" && status != http.StatusOK {
			t.Errorf("%s: ping answered %d", name, status)
		}
	}
	for _, j := range h.queued.Jobs() {
		if j.Kind != JobPRClosed && j.Kind != JobUninstalled && j.Kind != JobReposRemoved && j.Kind != JobConfigCheck {
			t.Errorf("a recorded payload queued a %s job", j.Kind)
		}
	}
	if calls := h.gh.Calls(); len(calls) != 0 {
		t.Errorf("recorded payloads caused GitHub calls: %+v", calls)
	}
}

// TestReplayRecordedCommentsAsCommands turns every recorded issue_comment
// into a /launch (re-signed) to check that real GitHub payloads decode: PR
// comments and plain-issue comments are queued with the right facts,
// edited and deleted ones are not.
func TestReplayRecordedCommentsAsCommands(t *testing.T) {
	dir := sharedFixtures(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	in, q, _ := newTestIntake(t)
	checked := 0
	for i, f := range files {
		name := filepath.Base(f)
		if eventOf(name) != "issue_comment" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var payload map[string]any
		if err := json.Unmarshal(raw, &payload); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		comment := payload["comment"].(map[string]any)
		comment["body"] = "/launch"
		issue := payload["issue"].(map[string]any)
		_, onPR := issue["pull_request"]
		_, hasInstallation := payload["installation"]
		body, _ := json.Marshal(payload)
		before := len(q.Jobs())
		w := serve(in, webhookRequest("issue_comment", "replay-"+strconv.Itoa(i), body))
		queued := len(q.Jobs()) > before
		wantQueued := payload["action"] == "created" && hasInstallation
		if queued != wantQueued || w.Code < 200 || w.Code > 299 {
			t.Errorf("%s: status %d, queued %v, want queued %v", name, w.Code, queued, wantQueued)
			continue
		}
		if !queued {
			continue
		}
		var job CommandJob
		if err := json.Unmarshal(q.Jobs()[len(q.Jobs())-1].Payload, &job); err != nil {
			t.Fatal(err)
		}
		repo := payload["repository"].(map[string]any)["full_name"].(string)
		if job.OnPullRequest != onPR || job.Repo != repo || job.CommentID != int64(comment["id"].(float64)) ||
			job.Number != int(issue["number"].(float64)) || job.InstallationID == 0 || job.Line != "/launch" || job.CommentedAt.IsZero() {
			t.Errorf("%s: job %+v", name, job)
		}
		checked++
	}
	if checked == 0 {
		t.Error("no recorded comment was queued as a command")
	}
}

func TestEventOf(t *testing.T) {
	for name, want := range map[string]string{
		"ping.payload.json":                       "ping",
		"issue_comment.created.payload.json":      "issue_comment",
		"check_run.requested_action.payload.json": "check_run",
		"pr_comment_copr_build.json":              "issue_comment",
		"vm_image_build_comment.json":             "issue_comment",
	} {
		if got := eventOf(name); got != want {
			t.Errorf("eventOf(%s) = %s, want %s", name, got, want)
		}
	}
}
