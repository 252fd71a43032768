package web

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// A viewer sees the launches of the repositories GitHub says their user
// token can access (through this App's installations), remembered for at
// most reposFor.

const (
	reposFor = 5 * time.Minute
	// maxRepoRequests bounds the GitHub requests one page view may make
	// (the list is then partial, and says so).
	maxRepoRequests = 20
	reposWait       = 10 * time.Second
	// maxViewers bounds the viewers whose repositories are remembered.
	maxViewers = 10000
)

// viewerRepos is what GitHub said a viewer can access.
type viewerRepos struct {
	token   [32]byte // of the token asked with: another session asks again
	repos   map[string]bool
	partial bool
	until   time.Time
}

// visible is the set of repositories (lower-case owner/name) the viewer can
// access; partial when there were more than maxRepoRequests could list.
func (s *Server) visible(ctx context.Context, sess *session) (map[string]bool, bool, error) {
	sum := sha(sess.Token)
	s.mu.Lock()
	v, ok := s.repos[sess.Login]
	s.mu.Unlock()
	if ok && v.token == sum && s.now().Before(v.until) {
		return v.repos, v.partial, nil
	}
	// A page view waits on GitHub for so long at most.
	ctx, cancel := context.WithTimeout(ctx, reposWait)
	defer cancel()
	gh := s.userClient(sess.Token)
	repos, partial, requests := map[string]bool{}, false, 0
	opts := &github.ListOptions{PerPage: 100}
	var installations []*github.Installation
	for {
		page, resp, err := gh.Apps.ListUserInstallations(ctx, opts)
		requests++
		if err != nil {
			return nil, false, fmt.Errorf("web: list the viewer's installations: %w", err)
		}
		installations = append(installations, page...)
		if resp.NextPage == 0 || requests >= maxRepoRequests/2 {
			partial = partial || resp.NextPage != 0
			break
		}
		opts.Page = resp.NextPage
	}
	for _, in := range installations {
		opts := &github.ListOptions{PerPage: 100}
		for {
			if requests >= maxRepoRequests {
				partial = true
				break
			}
			page, resp, err := gh.Apps.ListUserRepos(ctx, in.GetID(), opts)
			requests++
			if err != nil {
				return nil, false, fmt.Errorf("web: list the viewer's repositories: %w", err)
			}
			for _, r := range page.Repositories {
				repos[strings.ToLower(r.GetFullName())] = true
			}
			if resp.NextPage == 0 {
				break
			}
			opts.Page = resp.NextPage
		}
	}
	s.mu.Lock()
	s.repos[sess.Login] = viewerRepos{token: sum, repos: repos, partial: partial, until: s.now().Add(reposFor)}
	if len(s.repos) > maxViewers { // the stale first, then any
		for login, v := range s.repos {
			if len(s.repos) <= maxViewers/2 {
				break
			}
			if !s.now().Before(v.until) || len(s.repos) > maxViewers {
				delete(s.repos, login)
			}
		}
	}
	s.mu.Unlock()
	return repos, partial, nil
}

// forget drops what GitHub said of a viewer (they logged out).
func (s *Server) forget(login string) {
	s.mu.Lock()
	delete(s.repos, login)
	s.mu.Unlock()
}

func sha(s string) [32]byte { return sha256.Sum256([]byte(s)) }
