package store

import (
	"context"
	"errors"
	"strings"
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
	if got, want := ids(s.LaunchesByOwner(ctx, "alice")), a.ID+","+c.ID; got != want {
		t.Errorf("by owner: %s, want %s", got, want)
	}

	a.State, a.InstanceID = StateRunning, "i-0abc"
	if err := s.SaveLaunch(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetLaunch(ctx, a.ID)
	if err != nil || got.InstanceID != "i-0abc" || got.State != StateRunning || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("round trip: %+v %v", got, err)
	}
	if ttl := s.Redis().TTL(ctx, launchKey(a.ID)).Val(); ttl != -1 {
		t.Errorf("a running launch must not expire, TTL %s", ttl)
	}
	a.State = StateEnded
	if err := s.SaveLaunch(ctx, a); err != nil {
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
