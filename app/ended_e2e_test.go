package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/store/storetest"
)

// The PR always tells the truth: a VM ended without its record still shows
// as ended on its PR, told from the VM's own tags.

func TestSweeperEndingAVMWithoutItsRecordTellsThePR(t *testing.T) {
	e := newLaunchEnv(t, lifetime("4s"))
	l := e.launch(defaultComment("/launch"))
	storetest.Flush(t, e.redisURL) // the record is gone (a flushed or failed-over Redis)
	e.launches.now = func() time.Time { return l.ExpiresAt.Add(time.Second) }
	e.launches.Sweep(context.Background())
	if !e.terminated(l.InstanceID) {
		t.Fatal("the sweeper did not end the VM")
	}
	waitFor(t, func() bool {
		got := botComments(e.gh, "packit/ogr", 7)
		return len(got) == 1 && strings.Contains(got[0].Body, "was terminated")
	})
	sticky := botComments(e.gh, "packit/ogr", 7)[0]
	if sticky.ID != l.CommentID || !strings.Contains(sticky.Body, "@alice") || !strings.Contains(sticky.Body, "its lifetime ended") {
		t.Errorf("sticky comment %d (want %d):\n%s", sticky.ID, l.CommentID, sticky.Body)
	}
	waitFor(t, func() bool {
		return checkRunFor(t, e.gh, l.ID).Status == "completed" && checkRunFor(t, e.gh, l.ID).Conclusion == "neutral"
	})
	if cr := checkRunFor(t, e.gh, l.ID); len(cr.Actions) != 0 || !strings.Contains(cr.Summary, "was terminated") || cr.Name != "packit-launch (fedora)" {
		t.Errorf("check run: %+v", cr)
	}
}

func TestButtonOfAnEndedLaunchIsAnswered(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	storetest.Flush(t, e.redisURL)
	if status := e.post("check_run", buttonPayload("packit/ogr", l.ID, "extend", "alice", l.CheckRunID, l.PR)); status != http.StatusAccepted {
		t.Fatalf("button: status %d", status)
	}
	waitFor(t, func() bool {
		got := botComments(e.gh, "packit/ogr", 7)
		return strings.Contains(got[len(got)-1].Body, "has already ended")
	})
	if cr := checkRunFor(t, e.gh, l.ID); cr.Status != "completed" || len(cr.Actions) != 0 || !strings.Contains(cr.Title, "already ended") {
		t.Errorf("check run: %+v", cr)
	}
	if e.terminated(l.InstanceID) {
		t.Error("an Extend click on an unknown launch terminated a VM")
	}
}
