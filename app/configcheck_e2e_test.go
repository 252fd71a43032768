package app

import (
	"fmt"
	"net/http"
	"runtime"
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

// Whatever the PR's size, finding whether it touches the repo config costs
// at most three requests (its first page of files, the file at the head and
// at the base), and a file GitHub will not serve as JSON is one problem.
func TestConfigCheckCostIsBoundedForHugePullRequests(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	head, base := strings.Repeat("a", 40), strings.Repeat("b", 40)
	many := make([]githubtest.PullFile, 3000)
	for i := range many {
		many[i] = githubtest.PullFile{Filename: fmt.Sprintf("src/f%04d.go", i), Status: "modified"}
	}
	configRuns := func() (out []githubtest.CheckRun) {
		for _, cr := range h.gh.CheckRuns("packit/ogr") {
			if cr.Name == configCheckName {
				out = append(out, cr)
			}
		}
		return out
	}
	push := func() []githubtest.Call {
		t.Helper()
		before := len(h.gh.Calls())
		if status := h.post("pull_request", prPayload("synchronize", "packit/ogr", 7)); status != http.StatusAccepted {
			t.Fatalf("intake answered %d", status)
		}
		h.waitHandled(JobConfigCheck)
		var calls []githubtest.Call
		for _, c := range h.gh.Calls()[before:] {
			if !strings.HasSuffix(c.Path, "/access_tokens") {
				calls = append(calls, c)
			}
		}
		return calls
	}

	// 3,000 files, the config the same at the head and the base: three requests, no check run.
	h.gh.SetPullFiles("packit/ogr", 7, many...)
	h.gh.SetFile("packit/ogr", head, config.RepoConfigPath, e2eRepoConfig)
	h.gh.SetFile("packit/ogr", base, config.RepoConfigPath, e2eRepoConfig)
	if calls := push(); len(calls) != 3 || len(configRuns()) != 0 {
		t.Errorf("an unrelated push to a 3,000-file PR: %d config check runs, %d calls: %v", len(configRuns()), len(calls), calls)
	}
	// Changed at the head (beyond the first page of files): checked, with the head's file read once.
	h.gh.SetFile("packit/ogr", head, config.RepoConfigPath, strings.Replace(e2eRepoConfig, "t3.small", "t3.nano", 1))
	calls := push()
	if runs := configRuns(); len(runs) != 1 || runs[0].Conclusion != "failure" || !strings.Contains(runs[0].Summary, "t3.nano") || len(calls) != 4 {
		t.Errorf("a change beyond the first page: %d calls %v, runs %+v", len(calls), calls, runs)
	}
	// Over 1 MB: GitHub serves it only through the blobs API, which the bot does not use.
	h.gh.SetFile("packit/ogr", head, config.RepoConfigPath, "# "+strings.Repeat("x", githubtest.MaxContentsBytes)+"\n")
	push()
	runs := configRuns()
	if last := runs[len(runs)-1]; len(runs) != 2 || last.Conclusion != "failure" || last.Title != config.RepoConfigPath+" is too large" ||
		!strings.Contains(last.Summary, "the file is larger than 1024 KB, the limit") {
		t.Errorf("a file over 1 MB: %+v", last)
	}
}

// A 1 MB config with 30,001 problems, as anyone who opens a PR may push:
// one parse, 200 problems listed and the rest counted, 50 annotations, and
// at most 40 MB allocated in all (28 MB measured) (a bound on the peak too), against the
// 128 Mi the pod has. Before, it took a parse per annotation and 7-9
// CPU-seconds (BENCHMARKS.md).
func TestConfigCheckOfAHostileFileStaysInBudget(t *testing.T) {
	cfg, err := config.ParseServer([]byte(e2eServerConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	project, _ := cfg.ProjectFor("packit/ogr")
	data := hostileRepoConfig()
	if len(data) < 900_000 || len(data) > MaxRepoConfigBytes {
		t.Fatalf("the file is %d bytes", len(data))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out := checkRepoConfig(cfg, project, data)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d bytes: %s; %d MB allocated in %d allocations", len(data), out.title, allocated>>20, after.Mallocs-before.Mallocs)
	if allocated > 40<<20 {
		t.Errorf("checking it allocated %d MB, budget 40 MB", allocated>>20)
	}
	if !strings.HasPrefix(out.title, "30001 problem(s)") || len(out.annotations) != maxAnnotations ||
		strings.Count(out.summary, "\n- ") != maxListedProblems || !strings.Contains(out.summary, "…and 29801 more; fix these first.") {
		t.Errorf("title %q, %d annotations, summary ends %q", out.title, len(out.annotations), out.summary[max(0, len(out.summary)-200):])
	}
	if len(out.summary) > maxCheckText {
		t.Errorf("summary of %d bytes", len(out.summary))
	}
}

// hostileRepoConfig is about 1 MB with 30,000 problems: 7,500 machines,
// each without an image or instance type, in a region no profile allows,
// with a user name that is not one.
func hostileRepoConfig() []byte {
	var b strings.Builder
	b.WriteString("machines:\n")
	for i := range 7500 {
		fmt.Fprintf(&b, "  m%05d: {region: mars-1, ssh_user: \"%s\"}\n", i, strings.Repeat("X", 94))
	}
	return []byte(b.String())
}
