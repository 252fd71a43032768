package app

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
)

// countingSigner counts the RSA signatures behind the cache.
type countingSigner struct {
	inner ghinstallation.Signer
	n     atomic.Int64
}

func (c *countingSigner) Sign(claims jwt.Claims) (string, error) {
	c.n.Add(1)
	return c.inner.Sign(claims)
}

// A burst of jobs while GitHub cannot hand out tokens is no storm: one
// token request in flight per installation, the others answered from the
// failure just seen, and the App's JWT signed once, not once a request.
func TestNoTokenStormWhileGitHubFails(t *testing.T) {
	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetInstallation(55)
	gh.SetPull("packit/ogr", githubtest.PullRequest{Number: 7, State: "open", HeadSHA: strings.Repeat("a", 40), HeadRef: "feature", BaseRef: "main"})
	inst, err := NewInstallations(gh.AppID, gh.PrivateKeyPEM, gh.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	signs := &countingSigner{inner: inst.signer.inner}
	inst.signer.inner = signs
	clock := launchapitest.NewManualClock(time.Now())
	inst.now = clock.Now
	gh.FailNext(http.MethodPost, "/app/installations/55/access_tokens", http.StatusBadGateway, 1000)

	const jobs = 200
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range jobs {
		wg.Go(func() {
			c, err := inst.Client(t.Context(), 55)
			if err == nil {
				_, _, err = c.Issues.CreateComment(t.Context(), "packit", "ogr", 7, &github.IssueComment{Body: github.String("hi")})
			}
			if err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	tokenRequests := 0
	for _, c := range gh.Calls() {
		if strings.HasSuffix(c.Path, "/access_tokens") {
			tokenRequests++
		}
	}
	if failed.Load() != jobs {
		t.Fatalf("%d of %d requests failed, want all (GitHub refuses tokens)", failed.Load(), jobs)
	}
	if tokenRequests > 3 || signs.n.Load() > 2 {
		t.Errorf("%d jobs cost %d token requests and %d JWT signatures; want a handful", jobs, tokenRequests, signs.n.Load())
	}
	// Once GitHub is back, a request past the memory gets through, on the same JWT.
	gh.ClearFailures()
	clock.Advance(failMemory) // the failure is remembered that long, by design
	c, _ := inst.Client(t.Context(), 55)
	if _, _, err := c.Issues.CreateComment(t.Context(), "packit", "ogr", 7, &github.IssueComment{Body: github.String("hi")}); err != nil {
		t.Fatalf("after GitHub is back: %v", err)
	}
	if n := signs.n.Load(); n > 2 {
		t.Errorf("%d JWT signatures: the JWT was not reused", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A request given up by its caller says nothing of GitHub: the next one is
// not answered with its error.
func TestFailFastIgnoresCancelledRequests(t *testing.T) {
	up := false
	ff := newFailFast(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if !up {
			<-r.Context().Done()
			return nil, r.Context().Err()
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	}), time.Now)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://github.invalid/", nil)
	cancel()
	if _, err := ff.RoundTrip(req); err == nil {
		t.Fatal("a cancelled request succeeded")
	}
	up = true
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, "http://github.invalid/", nil)
	if resp, err := ff.RoundTrip(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("after a cancelled request: %v %v", resp, err)
	}
}
