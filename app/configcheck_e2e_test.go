package app

import (
	"net/http"
	"strings"
	"testing"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/config"
)

// A pull request that changes .packit-launch.yaml gets a check run with
// each problem on its line; one that does not costs a single request.
func TestConfigCheckOnPullRequests(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	head := strings.Repeat("a", 40)
	configRuns := func() []githubtest.CheckRun {
		var out []githubtest.CheckRun
		for _, cr := range h.gh.CheckRuns("packit/ogr") {
			if cr.Name == configCheckName {
				out = append(out, cr)
			}
		}
		return out
	}
	pushed := func(action string) {
		t.Helper()
		if status := h.post("pull_request", prPayload(action, "packit/ogr", 7)); status != http.StatusAccepted {
			t.Fatalf("%s: intake answered %d", action, status)
		}
		h.waitHandled(JobConfigCheck)
	}

	// A push that leaves the file alone: one call, no check run.
	h.gh.SetPullFiles("packit/ogr", 7, githubtest.PullFile{Filename: "README.md", Status: "modified"})
	before := len(h.gh.Calls())
	pushed("synchronize")
	if calls := h.gh.Calls()[before:]; len(configRuns()) != 0 || len(calls) != 2 { // the token, then the files
		t.Errorf("an unrelated push: %d config check runs, calls %v", len(configRuns()), calls)
	}

	// Broken: an unknown key, a region the profile does not allow.
	h.gh.SetPullFiles("packit/ogr", 7, githubtest.PullFile{Filename: "src/x.go", Status: "modified"}, githubtest.PullFile{Filename: config.RepoConfigPath, Status: "modified"})
	h.gh.SetFile("packit/ogr", head, config.RepoConfigPath, "default: fedora\nmachines:\n  fedora:\n    image: ami-0123456789abcdef0\n    region: mars-1\n    instance_type: t3.small\n")
	pushed("opened")
	runs := configRuns()
	if len(runs) != 1 || runs[0].Conclusion != "failure" || runs[0].HeadSHA != head || !strings.Contains(runs[0].Summary, "mars-1") {
		t.Fatalf("config check runs: %+v", runs)
	}
	if a := runs[0].Annotations; len(a) != 1 || a[0].Path != config.RepoConfigPath || a[0].StartLine != 5 || a[0].AnnotationLevel != "failure" {
		t.Errorf("annotations %+v, want the region's line 5", a)
	}

	// Fixed: success. Removed: neutral, saying what it means.
	h.gh.SetFile("packit/ogr", head, config.RepoConfigPath, e2eRepoConfig)
	pushed("synchronize")
	if runs := configRuns(); len(runs) != 2 || runs[1].Conclusion != "success" {
		t.Errorf("after the fix: %+v", runs)
	}
	h.gh.SetPullFiles("packit/ogr", 7, githubtest.PullFile{Filename: config.RepoConfigPath, Status: "removed"})
	pushed("reopened")
	if runs := configRuns(); len(runs) != 3 || runs[2].Conclusion != "neutral" || !strings.Contains(runs[2].Summary, "no machines") {
		t.Errorf("removed: %+v", runs)
	}
	// Other pull_request actions are not work.
	if status := h.post("pull_request", prPayload("labeled", "packit/ogr", 7)); status != http.StatusNoContent {
		t.Errorf("labeled: %d, want 204", status)
	}
}
