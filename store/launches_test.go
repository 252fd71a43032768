package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packit/packit-launch/store/storetest"
)

func TestLaunchRecords(t *testing.T) {
	ctx := context.Background()
	s := open(t, storetest.StartRedis(t))
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	mk := func(comment int64, owner string, pr int) *Launch {
		return &Launch{Repo: "packit/ogr", PR: pr, Owner: owner, CommandCommentID: comment, CreatedAt: now.Add(time.Duration(comment) * time.Second), State: StateAccepted}
	}
	a, created, err := s.CreateLaunch(ctx, mk(1, "alice", 7))
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if len(a.ID) != IDLength || strings.Trim(a.ID, idAlphabet) != "" {
		t.Errorf("id %q is not %d typeable characters", a.ID, IDLength)
	}
	again, created, err := s.CreateLaunch(ctx, mk(1, "alice", 7))
	if err != nil || created || again.ID != a.ID {
		t.Errorf("the same command must give the same launch: %v %v %v", again, created, err)
	}
	b, _, _ := s.CreateLaunch(ctx, mk(2, "bob", 7))
	c, _, _ := s.CreateLaunch(ctx, mk(3, "alice", 8))
	if a.ID == b.ID || b.ID == c.ID {
		t.Fatal("ids collide")
	}

	ids := func(ls []*Launch, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range ls {
			out = append(out, l.ID)
		}
		return strings.Join(out, ",")
	}
	if got, want := ids(s.LaunchesByPR(ctx, "packit/ogr", 7)), a.ID+","+b.ID; got != want {
		t.Errorf("by PR: %s, want %s", got, want)
	}

	if _, err := s.UpdateLaunch(ctx, a.ID, func(x *Launch) error { x.State, x.InstanceID = StateRunning, "i-0abc"; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetLaunch(ctx, a.ID)
	if err != nil || got.InstanceID != "i-0abc" || got.State != StateRunning || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("round trip: %+v %v", got, err)
	}
	if ttl := s.Redis().TTL(ctx, launchKey(a.ID)).Val(); ttl != -1 {
		t.Errorf("a running launch must not expire, TTL %s", ttl)
	}
	if _, err := s.UpdateLaunch(ctx, a.ID, func(x *Launch) error { x.State = StateEnded; return nil }); err != nil {
		t.Fatal(err)
	}
	if ttl := s.Redis().TTL(ctx, launchKey(a.ID)).Val(); ttl < EndedRetention-time.Minute {
		t.Errorf("an ended launch should be kept about 30 days, TTL %s", ttl)
	}
	if got, want := ids(s.ActiveLaunches(ctx)), b.ID+","+c.ID; got != want {
		t.Errorf("active: %s, want %s", got, want)
	}
	// An expired record drops out of its indexes.
	s.Redis().Del(ctx, launchKey(b.ID))
	if got, want := ids(s.LaunchesByPR(ctx, "packit/ogr", 7)), a.ID; got != want {
		t.Errorf("by PR after expiry: %s, want %s", got, want)
	}
	if _, err := s.GetLaunch(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing launch: %v", err)
	}
}

func TestUpdateLaunchIsAtomic(t *testing.T) {
	ctx := context.Background()
	s := open(t, storetest.StartRedis(t))
	l, _, err := s.CreateLaunch(ctx, &Launch{Repo: "packit/ogr", PR: 1, Owner: "alice", CommandCommentID: 1, State: StateRunning})
	if err != nil {
		t.Fatal(err)
	}
	// Many concurrent writers each add one hour: none may be lost.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UpdateLaunch(ctx, l.ID, func(x *Launch) error { x.Lifetime += time.Hour; return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := s.GetLaunch(ctx, l.ID)
	if got.Lifetime != 20*time.Hour {
		t.Errorf("lifetime %s after 20 concurrent updates, want 20h", got.Lifetime)
	}
	if _, err := s.UpdateLaunch(ctx, l.ID, func(x *Launch) error { x.Owner = "mallory"; return ErrNoChange }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetLaunch(ctx, l.ID); got.Owner != "alice" {
		t.Error("ErrNoChange saved the change")
	}
	if _, err := s.UpdateLaunch(ctx, l.ID, func(x *Launch) error { x.State = StateEnded; return nil }); err != nil {
		t.Fatal(err)
	}
	if active, _ := s.ActiveLaunches(ctx); len(active) != 0 {
		t.Error("an ended launch stayed active")
	}
	if err := s.RequestStop(ctx, l.ID, "pr closed"); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.StopRequested(ctx, l.ID); r != "pr closed" {
		t.Errorf("stop reason %q", r)
	}
}

// An ended launch stays ended: a late writer holding an old copy cannot
// make it live again, and nothing it asked for is written.
func TestUpdateLaunchRefusesToReviveAnEndedLaunch(t *testing.T) {
	ctx := context.Background()
	s := open(t, storetest.StartRedis(t))
	l, _, err := s.CreateLaunch(ctx, &Launch{Repo: "packit/ogr", PR: 1, Owner: "alice", CommandCommentID: 1, State: StateRunning})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateLaunch(ctx, l.ID, func(x *Launch) error { x.State, x.EndReason = StateEnded, "expired"; return nil }); err != nil {
		t.Fatal(err)
	}
	before := s.Redis().Get(ctx, launchKey(l.ID)).Val()
	got, err := s.UpdateLaunch(ctx, l.ID, func(x *Launch) error { x.State, x.InstanceID = StateRunning, "i-0late"; return nil })
	if !errors.Is(err, ErrEnded) || !strings.Contains(err.Error(), l.ID) {
		t.Fatalf("reviving an ended launch: %v", err)
	}
	if got == nil || got.State != StateEnded || got.InstanceID != "" {
		t.Errorf("ErrEnded should come with the stored record, got %+v", got)
	}
	if after := s.Redis().Get(ctx, launchKey(l.ID)).Val(); after != before {
		t.Errorf("the refused update was written:\n%s\n%s", before, after)
	}
	if active, _ := s.ActiveLaunches(ctx); len(active) != 0 {
		t.Error("a refused revival made the launch active")
	}
	// Changes that keep it ended are fine: failed → terminated, reported.
	if _, err := s.UpdateLaunch(ctx, l.ID, func(x *Launch) error { x.State, x.Reported = StateFailed, true; return nil }); err != nil {
		t.Errorf("an ended launch must still take updates that keep it ended: %v", err)
	}
}
