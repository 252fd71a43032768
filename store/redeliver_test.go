package store

import (
	"context"
	"testing"
	"time"
)

func TestRedeliveryRecordsExpire(t *testing.T) {
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if r, err := s.Redelivery(ctx, "g"); err != nil || r != (Redelivery{}) {
			t.Fatalf("unknown guid: %+v, %v", r, err)
		}
		want := Redelivery{Attempts: 2, LastAsked: 77, FailedAt: time.Unix(1700000000, 0).UTC(), GivenUp: true}
		if err := s.SaveRedelivery(ctx, "g", want); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Redelivery(ctx, "g"); err != nil || got != want {
			t.Errorf("got %+v, %v; want %+v", got, err, want)
		}
		if ttl := s.rdb.TTL(ctx, redeliveryKey("g")).Val(); ttl <= 0 || ttl > DeliveryTTL {
			t.Errorf("record TTL %s", ttl)
		}

		if m, err := s.RedeliveryMark(ctx); err != nil || !m.IsZero() {
			t.Fatalf("no mark: %s, %v", m, err)
		}
		if err := s.SetRedeliveryMark(ctx, want.FailedAt, 0); err == nil {
			t.Error("a mark without a TTL was kept")
		}
		if err := s.SetRedeliveryMark(ctx, want.FailedAt, time.Hour); err != nil {
			t.Fatal(err)
		}
		if m, err := s.RedeliveryMark(ctx); err != nil || !m.Equal(want.FailedAt) {
			t.Errorf("mark %s, %v", m, err)
		}
		if ttl := s.rdb.TTL(ctx, redeliveryMarkKey).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("mark TTL %s", ttl)
		}

		if known, err := s.KnownDelivery(ctx, "d"); err != nil || known {
			t.Fatalf("unknown delivery: %v, %v", known, err)
		}
		if _, err := s.FirstDelivery(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		if known, err := s.KnownDelivery(ctx, "d"); err != nil || !known {
			t.Errorf("claimed delivery: %v, %v", known, err)
		}
	})
}

// A delivery is claimed and its redelivery record read in one round trip.
func TestClaimDelivery(t *testing.T) {
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		failed := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
		if err := s.SaveRedelivery(ctx, "d-2", Redelivery{Attempts: 1, FailedAt: failed}); err != nil {
			t.Fatal(err)
		}
		first, rec, recErr, err := s.ClaimDelivery(ctx, "d-2")
		if err != nil || recErr != nil || !first || !rec.FailedAt.Equal(failed) || rec.Attempts != 1 {
			t.Fatalf("claim: first %v, record %+v, %v, %v", first, rec, recErr, err)
		}
		if ttl := s.Redis().TTL(ctx, "delivery:d-2").Val(); ttl <= 0 || ttl > pendingDeliveryTTL {
			t.Errorf("an unconfirmed claim should be short, TTL %s", ttl)
		}
		// Not confirmed (the attempt failed, and failed to forget it): a
		// redelivery is taken, and the job id keeps it to one job.
		again, _, _, err := s.ClaimDelivery(ctx, "d-2")
		if err != nil || !again {
			t.Fatalf("a redelivery of an unconfirmed claim: %v, %v; want taken", again, err)
		}
		if err := s.ConfirmDelivery(ctx, "d-2"); err != nil {
			t.Fatal(err)
		}
		if again, _, _, err := s.ClaimDelivery(ctx, "d-2"); err != nil || again {
			t.Fatalf("a redelivery of a queued one: %v, %v; want a duplicate", again, err)
		}
		if first, rec, _, err := s.ClaimDelivery(ctx, "d-3"); err != nil || !first || !rec.FailedAt.IsZero() {
			t.Fatalf("a delivery never redelivered: %v %+v %v", first, rec, err)
		}
	})
}
