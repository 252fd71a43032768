package app

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/packit/packit-launch/app/githubtest"
)

// The client cache is bounded however many installations the App has; a
// client stays the same while it is cached (its token with it).
func TestInstallationClientsAreBounded(t *testing.T) {
	gh := githubtest.New()
	inst, err := NewInstallations(gh.AppID, gh.PrivateKeyPEM, "https://api.github.example/")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := inst.Client(t.Context(), 1)
	if again, _ := inst.Client(t.Context(), 1); again != first {
		t.Error("a cached installation got a new client")
	}
	for id := range int64(maxClients + 100) {
		if _, err := inst.Client(t.Context(), id+2); err != nil {
			t.Fatal(err)
		}
	}
	if n := inst.clients.Len(); n != maxClients {
		t.Errorf("%d clients cached, want at most %d", n, maxClients)
	}
	if again, _ := inst.Client(t.Context(), 1); again == first {
		t.Error("the least recently used client was not evicted")
	}
}

// Jobs in parallel reuse their connections to GitHub: net/http's default of
// 2 idle connections per host had every burst dial (and, against GitHub,
// handshake TLS) again and again.
func TestGitHubConnectionsAreReused(t *testing.T) {
	gh := githubtest.New()
	gh.SetInstallation(githubtest.DefaultInstallationID, "packit/ogr")
	gh.SetPull("packit/ogr", githubtest.PullRequest{Number: 7, State: "open", Title: "t", User: "alice", HeadSHA: strings.Repeat("a", 40), HeadRef: "x", BaseRef: "main"})
	var dialled atomic.Int64
	srv := httptest.NewUnstartedServer(gh.Handler())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	inst, err := NewInstallations(gh.AppID, gh.PrivateKeyPEM, srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	client, err := inst.Client(t.Context(), githubtest.DefaultInstallationID)
	if err != nil {
		t.Fatal(err)
	}
	const jobs, each = 10, 20
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			for range each {
				if _, _, err := client.PullRequests.Get(t.Context(), "packit", "ogr", 7); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// About one per job, and the token request's; under load a request may
	// dial while another's connection is being returned, so allow twice
	// that (without reuse it is one per request or so: hundreds).
	if n := dialled.Load(); n > 2*jobs {
		t.Errorf("%d connections for %d requests from %d jobs in parallel", n, jobs*each, jobs)
	}
}
