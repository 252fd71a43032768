package app

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/go-github/v60/github"
)

// levels orders GitHub App permission levels.
var levels = map[string]int{"": 0, "read": 1, "write": 2, "admin": 3}

// AppProblems lists what an App's settings lack for packit-launch to work
// (the permissions and events app.yml asks for), in words for an operator.
func AppProblems(a *github.App) []string {
	p := a.GetPermissions()
	var problems []string
	for _, want := range []struct{ name, level, have string }{
		{"checks", "write", p.GetChecks()},
		{"issues", "write", p.GetIssues()},
		{"pull_requests", "write", p.GetPullRequests()},
		{"contents", "read", p.GetContents()},
		{"metadata", "read", p.GetMetadata()},
	} {
		if levels[want.have] < levels[want.level] {
			problems = append(problems, fmt.Sprintf("permission %s is %q, needs %q", want.name, want.have, want.level))
		}
	}
	for _, ev := range []string{"issue_comment", "pull_request", "check_run"} {
		if !slices.Contains(a.Events, ev) {
			problems = append(problems, fmt.Sprintf("not subscribed to the %s event", ev))
		}
	}
	return problems
}

// App reads the GitHub App itself (authenticated as the App) and how many
// installations it has.
func (i *Installations) App(ctx context.Context) (*github.App, int, error) {
	gh := i.app
	app, _, err := gh.Apps.Get(ctx, "")
	if err != nil {
		return nil, 0, fmt.Errorf("read the GitHub App %d: %w", i.appID, err)
	}
	n := 0
	opts := &github.ListOptions{PerPage: 100}
	for {
		page, resp, err := gh.Apps.ListInstallations(ctx, opts)
		if err != nil {
			return nil, 0, fmt.Errorf("list the App's installations: %w", err)
		}
		n += len(page)
		if resp.NextPage == 0 {
			return app, n, nil
		}
		opts.Page = resp.NextPage
	}
}
