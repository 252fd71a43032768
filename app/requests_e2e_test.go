package app

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/packit/packit-launch/app/githubtest"
)

// The GitHub requests one /launch of the default machine costs, listed:
// cold (no token yet) and warm (token and earlier answers kept). Answers
// GitHub gives as 304 Not Modified to a conditional request do not count
// against the rate limit. Targets: ≤ 10 cold, ≤ 6 warm that count.
func TestGitHubRequestsPerLaunch(t *testing.T) {
	e := newLaunchEnv(t)
	count := func(calls []githubtest.Call) (counted, notModified int, list []string) {
		for _, c := range calls {
			if c.Status == http.StatusNotModified {
				notModified++
			} else {
				counted++
			}
			list = append(list, fmt.Sprintf("%s %s → %d", c.Method, c.Path, c.Status))
		}
		return
	}
	run := func(id int64) []githubtest.Call {
		t.Helper()
		before := len(e.gh.Calls())
		c := defaultComment("/launch")
		c.ID = id
		e.launch(c)
		// The 🚀 on the command comes last: wait until GitHub has been sent it.
		rocket := fmt.Sprintf("/repos/packit/ogr/issues/comments/%d/reactions", c.ID) // the fake's id for it
		var calls []githubtest.Call
		waitFor(t, func() bool {
			calls = e.gh.Calls()[before:]
			return slices.ContainsFunc(calls, func(call githubtest.Call) bool {
				return call.Method == http.MethodPost && call.Path == rocket && strings.Contains(string(call.Body), `"rocket"`)
			})
		}, "for the 🚀 on comment", c.ID)
		return calls
	}
	coldCounted, coldNM, coldList := count(run(2001))
	warmCounted, warmNM, warmList := count(run(2002))
	t.Logf("cold: %d counted, %d not modified:\n  %s", coldCounted, coldNM, strings.Join(coldList, "\n  "))
	t.Logf("warm: %d counted, %d not modified:\n  %s", warmCounted, warmNM, strings.Join(warmList, "\n  "))
	if coldCounted > 10 || warmCounted > 6 {
		t.Errorf("a /launch costs %d GitHub requests cold and %d warm (that count against the rate limit); want ≤ 10 and ≤ 6", coldCounted, warmCounted)
	}
	if warmNM == 0 {
		t.Error("no request was answered 304: the bot does not ask conditionally")
	}
}

// Answers kept by ETag never hide a change: every GET asks GitHub, and
// only an unchanged answer comes back as 304.
func TestRevalidatingSeesEveryChange(t *testing.T) {
	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetInstallation(55)
	inst, err := NewInstallations(gh.AppID, gh.PrivateKeyPEM, gh.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := inst.Client(t.Context(), 55)
	read := func() (string, int) {
		t.Helper()
		f, _, _, err := c.Repositories.GetContents(t.Context(), "packit", "ogr", ".packit-launch.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := f.GetContent()
		calls := gh.Calls()
		return text, calls[len(calls)-1].Status
	}
	gh.SetFile("packit/ogr", githubtest.DefaultBranch, ".packit-launch.yaml", "one")
	if text, status := read(); text != "one" || status != http.StatusOK {
		t.Fatalf("first read: %q %d", text, status)
	}
	if text, status := read(); text != "one" || status != http.StatusNotModified {
		t.Errorf("unchanged: %q %d, want the kept answer after a 304", text, status)
	}
	gh.SetFile("packit/ogr", githubtest.DefaultBranch, ".packit-launch.yaml", "two")
	if text, status := read(); text != "two" || status != http.StatusOK {
		t.Errorf("changed: %q %d, want the new file", text, status)
	}
	// Too large to keep: read whole all the same, every time.
	big := strings.Repeat("# a long comment line\n", 5000)
	gh.SetFile("packit/ogr", githubtest.DefaultBranch, ".packit-launch.yaml", big)
	for range 2 {
		if text, status := read(); text != big || status != http.StatusOK {
			t.Fatalf("large file: %d bytes, status %d, want %d bytes", len(text), status, len(big))
		}
	}
}
