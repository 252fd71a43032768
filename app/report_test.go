package app

import (
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/store"
)

func TestConnectWithoutAnyAddressSaysSoHonestly(t *testing.T) {
	l := &store.Launch{InstanceID: "i-0abc", Region: "us-east-1", SSHUser: "fedora"}
	if got := connect(l); !strings.Contains(got, "no public address for instance `i-0abc`") || strings.Contains(got, "ssh ") {
		t.Errorf("connect = %q", got)
	}
	l.PublicDNS = "ec2-1-2-3-4.compute-1.amazonaws.com"
	if got := connect(l); !strings.Contains(got, "ssh fedora@ec2-1-2-3-4.compute-1.amazonaws.com") {
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
