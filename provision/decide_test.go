package provision

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/store"
)

// Every way a Packit wait can go, decided from the facts one poll found.
func TestDecidePackitWait(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	l := &store.Launch{PackitSHA: "abcdef1234", Region: "us-east-1", CreatedAt: now.Add(-time.Hour)}
	ready := &PackitBuild{Done: true, Succeeded: true, Conclusion: "success", Region: "us-east-1", AMI: "ami-1"}
	open := PackitFacts{PROpen: true, HeadSHA: "abcdef1234"}
	with := func(change func(*PackitFacts)) PackitFacts { f := open; change(&f); return f }
	for _, c := range []struct {
		name    string
		facts   PackitFacts
		created time.Time
		want    PackitAction
		tell    bool
		reason  string
	}{
		{"stop asked", with(func(f *PackitFacts) { f.Stop = "`alice` stopped it" }), time.Time{}, PackitCancel, false, "alice"},
		{"PR closed", with(func(f *PackitFacts) { f.PROpen = false }), time.Time{}, PackitCancel, true, ReasonPRClosed},
		{"new push", with(func(f *PackitFacts) { f.HeadSHA = "9999999999" }), time.Time{}, PackitCancel, true, "`9999999`"},
		{"no build yet", open, time.Time{}, PackitPollAgain, false, ""},
		{"still building", with(func(f *PackitFacts) { f.Build = &PackitBuild{} }), time.Time{}, PackitPollAgain, false, ""},
		{"waited too long", open, now.Add(-PackitWaitFor - time.Minute), PackitFail, false, "did not finish within 2h0m0s"},
		{"build failed", with(func(f *PackitFacts) { f.Build = &PackitBuild{Done: true, Conclusion: "failure"} }), time.Time{}, PackitFail, false, "ended with failure"},
		{"may no longer launch", with(func(f *PackitFacts) { f.Build, f.NotAllowed = ready, "launching is paused by the operators" }), time.Time{}, PackitFail, false, "paused"},
		{"other region", with(func(f *PackitFacts) { b := *ready; b.Region = "eu-west-1"; f.Build = &b }), time.Time{}, PackitFail, false, "in eu-west-1"},
		{"ready", with(func(f *PackitFacts) { f.Build = ready }), time.Time{}, PackitLaunch, false, ""},
	} {
		wait := *l
		if !c.created.IsZero() {
			wait.CreatedAt = c.created
		}
		got := DecidePackitWait(&wait, c.facts, now)
		if got.Action != c.want || got.Tell != c.tell || !strings.Contains(got.Reason, c.reason) {
			t.Errorf("%s: %+v, want action %d tell %v reason with %q", c.name, got, c.want, c.tell, c.reason)
		}
	}
}

// Which launches a /launch stop applies to, and who may stop whose.
func TestPickAndPermitStops(t *testing.T) {
	received := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	mine := &store.Launch{ID: "mine1111", Owner: "Alice", State: store.StateRunning}
	theirs := &store.Launch{ID: "bobs2222", Owner: "bob", State: store.StateLaunching}
	stoppedEarlier := &store.Launch{ID: "old33333", Owner: "alice", State: store.StateEnded, EndReason: StoppedBy("alice"), EndedAt: received.Add(-time.Hour)}
	stoppedByThis := &store.Launch{ID: "this4444", Owner: "alice", State: store.StateEnded, EndReason: StoppedBy("alice"), EndedAt: received.Add(time.Second)}
	all := []*store.Launch{mine, theirs, stoppedEarlier, stoppedByThis}
	ids := func(ls []*store.Launch) string {
		var out []string
		for _, l := range ls {
			out = append(out, l.ID)
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		target, perm string
		picked       string
		allowed      string
		refused      string
	}{
		{"", "write", "mine1111,this4444", "mine1111,this4444", ""},
		{"all", "write", "mine1111,bobs2222,this4444", "mine1111,this4444", ""},
		{"all", "admin", "mine1111,bobs2222,this4444", "mine1111,bobs2222,this4444", ""},
		{"BOBS2222", "write", "bobs2222", "", "admin"},
		{"BOBS2222", "admin", "bobs2222", "bobs2222", ""},
		{"nope", "admin", "", "", "There is no running VM `nope`"},
	} {
		picked, err := PickStops(all, "alice", c.target, received)
		if ids(picked) != c.picked {
			t.Errorf("stop %q picked %s, want %s", c.target, ids(picked), c.picked)
		}
		if err == nil {
			var allowed []*store.Launch
			allowed, err = PermitStops(picked, "alice", c.target, c.perm)
			if ids(allowed) != c.allowed {
				t.Errorf("stop %q as %s allowed %s, want %s", c.target, c.perm, ids(allowed), c.allowed)
			}
		}
		var refusal *config.Refusal
		if c.refused == "" && err != nil || c.refused != "" && (!errors.As(err, &refusal) || !strings.Contains(refusal.Reason, c.refused)) {
			t.Errorf("stop %q as %s: %v, want a refusal with %q", c.target, c.perm, err, c.refused)
		}
	}
}
