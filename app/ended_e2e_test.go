package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/store/storetest"
)

// The PR always tells the truth: a VM ended without its record still shows
// as ended on its PR, told from the VM's own tags.

func TestSweeperEndingAVMWithoutItsRecordTellsThePR(t *testing.T) {
	e := newLaunchEnv(t, lifetime("4s"))
	l := e.launch(defaultComment("/launch"))
	storetest.Flush(t, e.redisURL) // the record is gone (a flushed or failed-over Redis)
	e.launches.lc.SetClock(func() time.Time { return l.ExpiresAt.Add(time.Second) })
	e.launches.lc.Sweep(context.Background())
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

// Buttons of a launch whose record is gone: its VM may still run (Extend
// says why it cannot, Terminate ends it and the PR shows it), and once the
// VM is gone a click is answered with "already ended".
func TestButtonOfALaunchWithoutItsRecordIsAnswered(t *testing.T) {
	e := newLaunchEnv(t)
	l := e.launch(defaultComment("/launch"))
	storetest.Flush(t, e.redisURL)
	press := func(action string) string {
		t.Helper()
		before := len(botComments(e.gh, "packit/ogr", 7))
		if status := e.post("check_run", buttonPayload("packit/ogr", l.ID, action, "alice", l.CheckRunID, l.PR)); status != http.StatusAccepted {
			t.Fatalf("button: status %d", status)
		}
		var last string
		waitFor(t, func() bool {
			got := botComments(e.gh, "packit/ogr", 7)
			if len(got) > before {
				last = got[len(got)-1].Body
			}
			return last != "" || (action == "terminate" && e.terminated(l.InstanceID))
		})
		return last
	}
	if got := press("extend"); !strings.Contains(got, "I lost my record") || e.terminated(l.InstanceID) {
		t.Fatalf("Extend on a live VM without a record: %q", got)
	}
	press("terminate")
	e.waitTerminated(l.InstanceID)
	waitFor(t, func() bool { // told from its tags
		c, _ := e.gh.Comment("packit/ogr", l.CommentID)
		return strings.Contains(c.Body, "was terminated") && strings.Contains(c.Body, "`alice` stopped it")
	})
	if got := press("extend"); !strings.Contains(got, "has already ended") {
		t.Fatalf("a button once the VM is gone: %q", got)
	}
	if cr := checkRunFor(t, e.gh, l.ID); cr.Status != "completed" || len(cr.Actions) != 0 {
		t.Errorf("check run: %+v", cr)
	}
}

// Tags are believed only when well-formed: anyone in the AWS account can tag.
func TestEndedVMTagsMustBeWellFormed(t *testing.T) {
	good := map[string]string{"packit-launch:launch-id": "k3x9p2ab", "packit-launch:repo": "packit/ogr", "packit-launch:pr": "7", "packit-launch:owner": "alice"}
	if _, ok := provision.EndedVMFromTags("i-1", ec2test.Tags(good), time.Now(), "x"); !ok {
		t.Fatal("well-formed tags refused")
	}
	for key, bad := range map[string]string{
		"packit-launch:launch-id": "x` ![p](https://evil.example/p.png) @org/team `",
		"packit-launch:owner":     "org/team",
		"packit-launch:repo":      "packit",
		"packit-launch:pr":        "-1",
	} {
		tags := map[string]string{}
		for k, v := range good {
			tags[k] = v
		}
		tags[key] = bad
		if _, ok := provision.EndedVMFromTags("i-1", ec2test.Tags(tags), time.Now(), "x"); ok {
			t.Errorf("%s=%q accepted", key, bad)
		}
	}
}
