package app

import (
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
