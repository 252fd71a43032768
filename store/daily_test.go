package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/packit/packit-launch/store/storetest"
)

// A month of fleet figures: outcomes, the comment → ready histogram and
// the projects' instance-hours per UTC day, read in one go; they outlive
// the records' retention.
func TestDailyTotals(t *testing.T) {
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		day := time.Date(2026, 12, 6, 23, 30, 0, 0, time.UTC)
		for _, outcome := range []string{"running", "running", "failed"} {
			if err := s.CountOutcome(ctx, day, outcome); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CountOutcome(ctx, day.Add(time.Hour), "running"); err != nil { // the next UTC day
			t.Fatal(err)
		}
		for _, d := range []time.Duration{10 * time.Second, 40 * time.Second, 2 * time.Hour} {
			if err := s.ObserveReady(ctx, day, d); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.AddInstanceHours(ctx, "fedora", day, 4); err != nil {
			t.Fatal(err)
		}
		days, err := s.Days(ctx, day.Add(time.Hour), DaysKept, []string{"fedora", "none"})
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != DaysKept || !days[DaysKept-1].Day.Equal(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("%d days, the last %s", len(days), days[len(days)-1].Day)
		}
		today, last := days[DaysKept-2], days[DaysKept-1]
		if today.Launches["running"] != 2 || today.Launches["failed"] != 1 || last.Launches["running"] != 1 {
			t.Errorf("outcomes %v then %v", today.Launches, last.Launches)
		}
		want := make([]int64, len(ReadyBuckets)+1)
		want[0], want[2], want[len(ReadyBuckets)] = 1, 1, 1
		if !slices.Equal(today.Ready, want) {
			t.Errorf("ready histogram %v, want %v", today.Ready, want)
		}
		if today.Hours["fedora"] != 4 || len(last.Hours) != 0 {
			t.Errorf("instance-hours %v then %v", today.Hours, last.Hours)
		}
		if ttl := s.Redis().TTL(ctx, dailyKey(day)).Val(); ttl <= DaysKept*24*time.Hour {
			t.Errorf("daily totals expire in %s, before the month is out", ttl)
		}
	})
}

// Ended launches are listed the latest first, whatever their PR.
func TestRecentEnded(t *testing.T) {
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var ids []string
		for i := range 3 {
			l, _, err := s.CreateLaunch(ctx, &Launch{Owner: "alice", Repo: "o/r", PR: i + 1, CommandCommentID: int64(i + 1), State: StateRunning, CreatedAt: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.UpdateLaunch(ctx, l.ID, func(x *Launch) error { x.State = StateEnded; return nil }); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, l.ID)
			time.Sleep(2 * time.Millisecond) // scores are milliseconds
		}
		got, err := s.RecentEnded(ctx, 0, 2)
		if err != nil || !slices.Equal(got, []string{ids[2], ids[1]}) {
			t.Fatalf("first page %v, %v; want %v", got, err, []string{ids[2], ids[1]})
		}
		got, _ = s.RecentEnded(ctx, 2, 2)
		if !slices.Equal(got, []string{ids[0]}) {
			t.Fatalf("second page %v", got)
		}
		records, err := s.Launches(ctx, got)
		if err != nil || len(records) != 1 || records[0].ID != ids[0] {
			t.Fatalf("records %+v, %v", records, err)
		}
	})
}

// Launches ended under a previous version (in their PRs' ended sets only)
// are put in the index of ended launches when the store opens, once.
func TestEndedIndexFilledFromPRSets(t *testing.T) {
	ctx := context.Background()
	url := storetest.StartRedis(t)
	s := open(t, url)
	l, _, err := s.CreateLaunch(ctx, &Launch{Owner: "alice", Repo: "o/r", PR: 1, CommandCommentID: 1, State: StateRunning, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateLaunch(ctx, l.ID, func(x *Launch) error { x.State = StateEnded; return nil }); err != nil {
		t.Fatal(err)
	}
	// As the previous version left it: no index of ended launches.
	if err := s.Redis().Del(ctx, endedKey, endedIndexFilled).Err(); err != nil {
		t.Fatal(err)
	}
	again := open(t, url)
	if got, err := again.RecentEnded(ctx, 0, 10); err != nil || !slices.Equal(got, []string{l.ID}) {
		t.Fatalf("ended index after opening: %v, %v; want %s", got, err, l.ID)
	}
	if ttl := again.Redis().TTL(ctx, endedKey).Val(); ttl <= 0 {
		t.Errorf("the filled index has no TTL (%s)", ttl)
	}
}
