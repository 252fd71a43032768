package app

import (
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

func TestAppProblems(t *testing.T) {
	all := []string{"issue_comment", "pull_request", "check_run", "push"}
	perms := func(checks, contents string) *github.InstallationPermissions {
		return &github.InstallationPermissions{Checks: github.String(checks), Issues: github.String("write"), PullRequests: github.String("admin"),
			Contents: github.String(contents), Metadata: github.String("read")}
	}
	if got := AppProblems(&github.App{Permissions: perms("write", "write"), Events: all}); len(got) != 0 {
		t.Errorf("higher levels and extra events are fine: %v", got)
	}
	got := strings.Join(AppProblems(&github.App{Permissions: perms("read", ""), Events: all[:2]}), "\n")
	for _, want := range []string{`checks is "read", needs "write"`, `contents is "", needs "read"`, "check_run event"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}
