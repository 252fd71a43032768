package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/packit/packit-launch/store/storetest"
)

// Indexes that end: launches run through their whole life leave nothing in
// Redis once the retention has passed, with real Redis TTLs (short ones).
func TestEndedLaunchesLeaveNoKeysAfterTheRetention(t *testing.T) {
	ctx := context.Background()
	const retention = time.Second
	s := openWith(t, storetest.StartRedis(t), Options{EndedRetention: retention, DeliveryTTL: retention})
	rdb := s.Redis()
	start := rdb.DBSize(ctx).Val()

	const n = 50
	prs := map[string]bool{}
	var ids []string
	for i := range n {
		l := fixture(int64(i+1), fmt.Sprintf("user%d", i%7), 1+i%6)
		l.Repo = fmt.Sprintf("packit/repo%d", i%3)
		prs[prRef(l.Repo, l.PR)] = true
		delivery := fmt.Sprintf("d-%d", i)
		if _, err := s.FirstDelivery(ctx, delivery); err != nil {
			t.Fatal(err)
		}
		if err := s.ConfirmDelivery(ctx, delivery); err != nil {
			t.Fatal(err)
		}
		created, _, err := s.CreateLaunch(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, created.ID)
	}
	for i, id := range ids {
		for _, step := range []func(*Launch){
			func(x *Launch) { x.State = StateLaunching; x.ReservationID = int64(i + 1) },
			func(x *Launch) { x.State, x.InstanceID = StateRunning, fmt.Sprintf("i-%04d", i) },
		} {
			if _, err := s.UpdateLaunch(ctx, id, func(x *Launch) error { step(x); return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Records, command claims, deliveries, the live hash and the PR sets.
	if got, want := rdb.DBSize(ctx).Val(), start+3*n+1+int64(len(prs)); got != want {
		t.Fatalf("%d keys with %d launches running, want %d", got, n, want)
	}
	for i, id := range ids {
		if i%2 == 0 {
			if err := s.RequestStop(ctx, id, "pr closed"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.UpdateLaunch(ctx, id, func(x *Launch) error {
			x.State, x.EndedAt, x.EndReason = StateEnded, time.Now(), "expired"
			if i%5 == 0 {
				x.State = StateFailed
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	ended := time.Now()

	// Right after: nothing live is indexed, the ended ones are still listed.
	if rdb.Exists(ctx, liveKey).Val() != 0 {
		t.Errorf("the live hash holds %d entries after every launch ended", rdb.HLen(ctx, liveKey).Val())
	}
	for ref := range prs {
		if rdb.Exists(ctx, prLivePrefix+ref).Val() != 0 {
			t.Errorf("%s still has live ids: %v", ref, rdb.SMembers(ctx, prLivePrefix+ref).Val())
		}
	}
	if ls, err := s.LaunchesByPR(ctx, "packit/repo0", 1); err != nil || len(ls) == 0 {
		t.Errorf("ended launches within the retention are not listed: %v %v", ls, err)
	}

	// Past the retention every key is gone. Redis removes an expired key
	// when it is touched or when its active expiry cycle (10 times a
	// second, sampling) finds it: poll DBSIZE for a few seconds rather than
	// touching the keys, so that it is Redis's own expiry that is asserted.
	// The count must come back exactly to the start: no constant to allow.
	time.Sleep(time.Until(ended.Add(retention)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := rdb.DBSize(ctx).Val()
		if got == start {
			break
		}
		if time.Now().After(deadline) {
			left, _ := rdb.Keys(ctx, "*").Result()
			t.Fatalf("%d keys left %s after the retention, want %d: %v", got, time.Since(ended), start, left)
		}
		time.Sleep(50 * time.Millisecond) // polling Redis's expiry
	}
	t.Logf("all keys gone %s after the last end (retention %s)", time.Since(ended).Round(10*time.Millisecond), retention)
}
