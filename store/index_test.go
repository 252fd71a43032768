package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packit/packit-launch/store/storetest"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func fixture(comment int64, owner string, pr int) *Launch {
	return &Launch{
		Repo: "packit/ogr", PR: pr, Owner: owner, InstallationID: 42, CommandCommentID: comment,
		Machine: "fedora", Image: "ami-0123456789abcdef0", Region: "us-east-1", InstanceType: "t3.small",
		CreatedAt: t0.Add(time.Duration(comment) * time.Second), State: StateAccepted,
	}
}

// activeIDs lists the ids in an index, or the error reading it.
func activeIDs(as []Active, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	out := ""
	for _, a := range as {
		out += a.ID + ","
	}
	return out
}

func TestActiveIndexFollowsTheRecords(t *testing.T) {
	ctx := context.Background()
	s := open(t, storetest.StartRedis(t))
	a, _, _ := s.CreateLaunch(ctx, fixture(2, "alice", 7))
	b, _, _ := s.CreateLaunch(ctx, fixture(1, "bob", 8))
	if got, want := activeIDs(s.ActiveIndex(ctx)), b.ID+","+a.ID+","; got != want {
		t.Fatalf("active index %s, want %s (by creation)", got, want)
	}
	if _, err := s.UpdateLaunch(ctx, a.ID, func(x *Launch) error {
		x.State, x.InstanceID, x.TemplateID = StateRunning, "i-0abc", "lt-0abc"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	idx, _ := s.ActiveIndex(ctx)
	want := Active{ID: a.ID, Owner: "alice", Repo: "packit/ogr", PR: 7, InstallationID: 42, Region: "us-east-1",
		InstanceID: "i-0abc", TemplateID: "lt-0abc", State: StateRunning, CreatedAt: a.CreatedAt}
	if len(idx) != 2 || idx[1] != want {
		t.Errorf("summary after an update:\n%+v\nwant\n%+v", idx, want)
	}
	if _, err := s.UpdateLaunch(ctx, a.ID, func(x *Launch) error { x.State = StateEnded; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := activeIDs(s.ActiveIndex(ctx)), b.ID+","; got != want {
		t.Errorf("after the end: %s, want %s", got, want)
	}
	// A record that is gone (it never should be, while live) drops out.
	s.Redis().Del(ctx, launchKey(b.ID))
	if ls, err := s.ActiveLaunches(ctx); err != nil || len(ls) != 0 {
		t.Errorf("active launches with a record gone: %v %v", ls, err)
	}
	if n := s.Redis().HLen(ctx, liveKey).Val(); n != 0 {
		t.Errorf("a gone record stayed in the live hash (%d entries)", n)
	}
}

func TestCreateLaunchOncePerCommandUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	s := open(t, storetest.StartRedis(t))
	var wg sync.WaitGroup
	ids := make(chan string, 10)
	created := make(chan bool, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, c, err := s.CreateLaunch(ctx, fixture(1, "alice", 7))
			if err != nil {
				t.Error(err)
				return
			}
			ids <- l.ID
			created <- c
		}()
	}
	wg.Wait()
	close(ids)
	close(created)
	first := <-ids
	for id := range ids {
		if id != first {
			t.Errorf("one command gave launches %s and %s", first, id)
		}
	}
	n := 0
	for c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d calls created the launch, want 1", n)
	}
	if k := s.Redis().Keys(ctx, "launch:*").Val(); len(k) != 1 {
		t.Errorf("records %v, want one", k)
	}
}

// seedLegacy writes launches as the previous version did: records, the
// active SET of live ids, the PR sets (which kept ended ids) and the owner
// sets.
func seedLegacy(t *testing.T, s *Store, ls []*Launch) {
	t.Helper()
	ctx := context.Background()
	for _, l := range ls {
		data, _ := json.Marshal(l)
		ttl := time.Duration(0)
		if l.State.Ended() {
			ttl = time.Hour
		} else {
			s.Redis().SAdd(ctx, legacyActiveKey, l.ID)
		}
		s.Redis().Set(ctx, launchKey(l.ID), data, ttl)
		s.Redis().SAdd(ctx, prKey(l.Repo, l.PR), l.ID)
		s.Redis().SAdd(ctx, "launches:owner:"+l.Owner, l.ID)
	}
}

// A deployment of the previous version keeps working: replicas opening the
// store at once build the live hash from the active set and drop the set.
func TestOpenMigratesTheActiveSet(t *testing.T) {
	ctx := context.Background()
	url := storetest.StartRedis(t)
	seeder := open(t, url)
	var legacy []*Launch
	for i := range 30 {
		l := fixture(int64(i+1), fmt.Sprintf("user%d", i%4), 1+i%3)
		l.ID = fmt.Sprintf("legacy%02d", i)
		if i%3 == 0 {
			l.State, l.EndedAt = StateEnded, t0
		}
		legacy = append(legacy, l)
	}
	seedLegacy(t, seeder, legacy)
	seeder.Redis().SAdd(ctx, legacyActiveKey, "vanished") // a record that expired

	var wg sync.WaitGroup
	stores := make([]*Store, 2)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenWith(ctx, url, Options{}, quiet)
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { s.Close() })
			stores[i] = s
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	s := stores[0]
	if n := s.Redis().Exists(ctx, legacyActiveKey).Val(); n != 0 {
		t.Error("the legacy active set is still there")
	}
	want := ""
	for _, l := range legacy {
		if !l.State.Ended() {
			want += l.ID + ","
		}
	}
	if got := activeIDs(s.ActiveIndex(ctx)); got != want {
		t.Errorf("live hash after migration: %s\nwant %s", got, want)
	}
	idx, _ := s.ActiveIndex(ctx)
	l := legacy[1]
	want1 := Active{ID: l.ID, Owner: l.Owner, Repo: l.Repo, PR: l.PR, InstallationID: l.InstallationID, Region: l.Region,
		InstanceID: l.InstanceID, TemplateID: l.TemplateID, State: l.State, CreatedAt: l.CreatedAt.UTC().Round(0)}
	if idx[0] != want1 {
		t.Errorf("migrated summary %+v, want %+v", idx[0], want1)
	}
	// Opening again changes nothing.
	before := s.Redis().HGetAll(ctx, liveKey).Val()
	open(t, url)
	if after := s.Redis().HGetAll(ctx, liveKey).Val(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("a second migration changed the live hash")
	}

	// A replica of the previous version, still running during the rollout,
	// records a launch: the next read of the live index takes it in.
	late := fixture(99, "carol", 1)
	late.ID = "legacy99"
	seedLegacy(t, s, []*Launch{late})
	if got := activeIDs(s.ActiveIndex(ctx)); got != want+late.ID+"," {
		t.Errorf("a legacy launch recorded after the migration: %s", got)
	}
	if n := s.Redis().Exists(ctx, legacyActiveKey).Val(); n != 0 {
		t.Error("the legacy active set came back and stayed")
	}
}

func launchIDs(ls []*Launch, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	out := ""
	for _, l := range ls {
		out += l.ID + ","
	}
	return out
}

func end(t *testing.T, s *Store, id string) {
	t.Helper()
	if _, err := s.UpdateLaunch(context.Background(), id, func(x *Launch) error {
		x.State, x.EndedAt = StateEnded, time.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// An ended launch leaves its PR's live set in the MULTI that ends it, and
// stays listed from the ended set for as long as its record is kept.
func TestLaunchesByPRKeepsEndedOnesForTheRetention(t *testing.T) {
	ctx := context.Background()
	const retention = time.Hour
	s := openWith(t, storetest.StartRedis(t), Options{EndedRetention: retention})
	rdb := s.Redis()
	a, _, _ := s.CreateLaunch(ctx, fixture(1, "alice", 7))
	b, _, _ := s.CreateLaunch(ctx, fixture(2, "bob", 7))
	c, _, _ := s.CreateLaunch(ctx, fixture(3, "alice", 8))
	end(t, s, a.ID)
	if rdb.SIsMember(ctx, prKey("packit/ogr", 7), a.ID).Val() {
		t.Error("an ended launch stayed in its PR's live set")
	}
	if _, err := rdb.ZScore(ctx, prEndedKey("packit/ogr", 7), a.ID).Result(); err != nil {
		t.Errorf("an ended launch is not in its PR's ended set: %v", err)
	}
	if ttl := rdb.PTTL(ctx, prEndedKey("packit/ogr", 7)).Val(); ttl <= retention-time.Minute || ttl > retention {
		t.Errorf("ended set TTL %s, want about %s", ttl, retention)
	}
	if got, want := launchIDs(s.LaunchesByPR(ctx, "packit/ogr", 7)), a.ID+","+b.ID+","; got != want {
		t.Errorf("by PR: %s, want %s (ended ones too, by creation)", got, want)
	}

	// Each add trims what is past the retention.
	old := msScore(time.Now().Add(-retention - time.Minute))
	rdb.ZAdd(ctx, prEndedKey("packit/ogr", 7), redis.Z{Score: old, Member: "ancient"})
	end(t, s, b.ID)
	if _, err := rdb.ZScore(ctx, prEndedKey("packit/ogr", 7), "ancient").Result(); err == nil {
		t.Error("an entry past the retention was not trimmed")
	}
	// A record that is gone leaves the ended set when read.
	rdb.Del(ctx, launchKey(a.ID))
	if got, want := launchIDs(s.LaunchesByPR(ctx, "packit/ogr", 7)), b.ID+","; got != want {
		t.Errorf("by PR with a record gone: %s, want %s", got, want)
	}
	if _, err := rdb.ZScore(ctx, prEndedKey("packit/ogr", 7), a.ID).Result(); err == nil {
		t.Error("a gone record stayed in the ended set")
	}

	// The previous version left ended ids in the live set: a read moves them.
	legacy := fixture(4, "carol", 8)
	legacy.ID, legacy.State = "legacy01", StateFailed
	data, _ := json.Marshal(legacy)
	rdb.Set(ctx, launchKey(legacy.ID), data, time.Hour)
	rdb.SAdd(ctx, prKey("packit/ogr", 8), legacy.ID)
	if got, want := launchIDs(s.LaunchesByPR(ctx, "packit/ogr", 8)), c.ID+","+legacy.ID+","; got != want {
		t.Errorf("by PR with a legacy ended id: %s, want %s", got, want)
	}
	if got := rdb.SMembers(ctx, prKey("packit/ogr", 8)).Val(); len(got) != 1 || got[0] != c.ID {
		t.Errorf("live set after the read: %v, want [%s]", got, c.ID)
	}
	if got := launchIDs(s.LaunchesByPR(ctx, "packit/ogr", 8)); got != c.ID+","+legacy.ID+"," {
		t.Errorf("by PR after the move: %s", got)
	}
}

// Open drops the previous version's owner sets and empties its PR live
// sets of ended and expired ids.
func TestOpenTidiesLegacyIndexes(t *testing.T) {
	ctx := context.Background()
	url := storetest.StartRedis(t)
	seeder := open(t, url)
	live, ended := fixture(1, "alice", 7), fixture(2, "bob", 7)
	live.ID, ended.ID = "legacy01", "legacy02"
	ended.State = StateEnded
	seedLegacy(t, seeder, []*Launch{live, ended})
	seeder.Redis().SAdd(ctx, prKey("packit/ogr", 9), "expired1")

	s := open(t, url)
	rdb := s.Redis()
	if k := rdb.Keys(ctx, legacyOwnerPrefix+"*").Val(); len(k) != 0 {
		t.Errorf("owner sets left: %v", k)
	}
	if got := rdb.SMembers(ctx, prKey("packit/ogr", 7)).Val(); len(got) != 1 || got[0] != live.ID {
		t.Errorf("PR live set %v, want [%s]", got, live.ID)
	}
	if rdb.Exists(ctx, prKey("packit/ogr", 9)).Val() != 0 {
		t.Error("a PR set naming only expired launches is still there")
	}
	if got, want := launchIDs(s.LaunchesByPR(ctx, "packit/ogr", 7)), live.ID+","+ended.ID+","; got != want {
		t.Errorf("by PR: %s, want %s", got, want)
	}
	if got := rdb.ZRange(ctx, prEndedKey("packit/ogr", 7), 0, -1).Val(); len(got) != 1 || got[0] != ended.ID {
		t.Errorf("PR ended set %v, want [%s]", got, ended.ID)
	}
}

// A summary reads back as the launch it summarises, field for field.
func TestSummaryRoundTrip(t *testing.T) {
	l := &Launch{ID: "abcdefgh", Owner: "alice", Repo: "packit/ogr", PR: 7, InstallationID: 55, Region: "eu-west-1",
		InstanceID: "i-0123", TemplateID: "lt-0456", State: StateLaunching, CreatedAt: time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC),
		ExpiresAt: time.Date(2026, 12, 1, 12, 0, 0, 987654321, time.UTC)}
	got, err := parseSummary(l.ID, l.summary())
	want := Active{ID: l.ID, Owner: l.Owner, Repo: l.Repo, PR: l.PR, InstallationID: l.InstallationID, Region: l.Region,
		InstanceID: l.InstanceID, TemplateID: l.TemplateID, State: l.State, CreatedAt: l.CreatedAt,
		ExpiresAt: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} // seconds, as the VM's tag
	if err != nil || got != want {
		t.Errorf("parsed %+v %v\nwant %+v", got, err, want)
	}
	// A summary the previous version wrote (no expiry) still reads.
	old := strings.Join(strings.Split(l.summary(), summarySep)[:9], summarySep)
	want.ExpiresAt = time.Time{}
	if got, err := parseSummary(l.ID, old); err != nil || got != want {
		t.Errorf("parsed an old summary as %+v %v\nwant %+v", got, err, want)
	}
	// One a later version wrote, with a field this one does not know, too
	// (a rollback must still read the index).
	want.ExpiresAt = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if got, err := parseSummary(l.ID, l.summary()+summarySep+"later"); err != nil || got != want {
		t.Errorf("parsed a later summary as %+v %v\nwant %+v", got, err, want)
	}
	if _, err := parseSummary(l.ID, "alice\x1fpackit/ogr"); err == nil {
		t.Error("a short summary was accepted")
	}
}
