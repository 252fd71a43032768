package app

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/mdsafe/mdsafetest"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/store"
)

func TestConnectWithoutAnyAddressSaysSoHonestly(t *testing.T) {
	l := &store.Launch{InstanceID: "i-0abc", Region: "us-east-1", SSHUser: "fedora"}
	if got := connect(l, time.Now()); !strings.Contains(got, "no public address for instance `i-0abc`") || strings.Contains(got, "ssh ") {
		t.Errorf("connect = %q", got)
	}
	l.PublicDNS = "ec2-1-2-3-4.compute-1.amazonaws.com"
	if got := connect(l, time.Now()); !strings.Contains(got, "ssh fedora@ec2-1-2-3-4.compute-1.amazonaws.com") {
		t.Errorf("connect = %q", got)
	}
}

func TestRelative(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{2 * time.Hour: "in 2 h", 90 * time.Minute: "in 1 h 30 min", 14 * time.Minute: "in 14 min", -time.Minute: "now", 72 * time.Hour: "in 3 days"} {
		if got := relative(now.Add(d), now); got != want {
			t.Errorf("relative(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestStatusSaysWhyALaunchEndedAndMentionsNobody(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	launches := []*store.Launch{
		{ID: "failed1", Owner: "bob", Machine: "fedora", State: store.StateFailed, EndedAt: now.Add(-time.Hour), Failure: "no default VPC"},
		{ID: "ended1", Owner: "carol", Machine: "fedora", State: store.StateEnded, EndedAt: now.Add(-time.Hour), EndReason: provision.StoppedBy("carol")},
		{ID: "run1", Owner: "dave", Machine: "fedora", State: store.StateRunning, ExpiresAt: now.Add(time.Hour), SSHUser: "fedora", PublicIPv4: "192.0.2.1"},
	}
	got := statusComment(launches, now)
	for _, want := range []string{"11:00 UTC: the launch failed (its comment says why)", "11:00 UTC: `carol` stopped it", "`bob`", "`dave`"} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q:\n%s", want, got)
		}
	}
	// Whoever asked for the status is answered; the owners are only named.
	if err := mdsafetest.Check(got, ""); err != nil {
		t.Errorf("%v\n%s", err, got)
	}
}

func TestKeyRefusalsShowTheAskedFingerprintSafely(t *testing.T) {
	keys := []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDnmgh4cs0UmYn0gsLB3jfK0X6vXxOWuXbJDvIjBsfFq alice@laptop"}
	for _, hostile := range mdsafetest.Hostile {
		if hostile == "" {
			continue // no --key: the first usable key
		}
		_, err := selectKey("alice", keys, hostile)
		var noKey *noUsableKeyError
		if !errors.As(err, &noKey) {
			t.Fatalf("--key %q: %v", hostile, err)
		}
		if cerr := mdsafetest.Check(noKey.reason, ""); cerr != nil {
			t.Errorf("--key %q: %v\n%s", hostile, cerr, noKey.reason)
		}
	}
}
