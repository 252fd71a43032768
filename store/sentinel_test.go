package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/packit/packit-launch/store/storetest"
)

// On Redis Sentinel the store follows a failover: replicas confirm its
// writes while there is one; while there is no primary, Ping says so; once
// the replica is promoted the store works on it, and the failover is
// counted. With no replica left, a required confirmation fails in time.
func TestStoreFollowsASentinelFailover(t *testing.T) {
	rs := storetest.StartSentinel(t)
	ctx := context.Background()
	open := func(required bool) *Store {
		s, err := OpenWith(ctx, "", Options{
			Sentinel: Sentinel{Addrs: rs.Addrs, Master: storetest.SentinelMaster},
			Confirm:  Confirm{Replicas: 1, Timeout: 300 * time.Millisecond, Required: required},
		}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := open(true)
	if s.Embedded() {
		t.Fatal("a store on Sentinel must not be embedded")
	}
	if first, err := s.FirstDelivery(ctx, "d1"); err != nil || !first {
		t.Fatalf("FirstDelivery: %v %v", first, err)
	}
	if err := s.ConfirmDelivery(ctx, "d1"); err != nil { // its job queued
		t.Fatal(err)
	}
	if err := s.Confirm(ctx); err != nil {
		t.Fatalf("with a replica, Confirm: %v", err)
	}
	failovers := testutil.ToFloat64(redisFailoversTotal)

	old := rs.KillPrimary()
	sawNoPrimary := false
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.Ping(pctx)
		cancel()
		if err == nil && sawNoPrimary {
			break
		}
		if err != nil {
			if !strings.Contains(err.Error(), "no Redis primary") {
				t.Fatalf("Ping during the failover: %v, want it to say there is no primary", err)
			}
			sawNoPrimary = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not follow the failover within 30 s (last: %v)", err)
		}
	}
	now := rs.WaitFailover(old, 10*time.Second)
	// The delivery id written before the failover was confirmed, so the
	// promoted replica has it.
	if first, err := s.FirstDelivery(ctx, "d1"); err != nil || first {
		t.Errorf("after the failover to %s, d1 is new again (%v, %v): a confirmed write was lost", now, first, err)
	}
	if got := testutil.ToFloat64(redisFailoversTotal) - failovers; got < 1 {
		t.Errorf("%v failovers counted, want at least 1", got)
	}
	// The new primary has no replica: a required confirmation fails, and
	// an optional one is counted and goes on.
	unconfirmed := testutil.ToFloat64(unconfirmedTotal)
	if err := s.Confirm(ctx); !errors.Is(err, ErrUnconfirmed) {
		t.Errorf("with no replica, a required Confirm: %v, want ErrUnconfirmed", err)
	}
	if err := open(false).Confirm(ctx); err != nil {
		t.Errorf("with no replica, an optional Confirm: %v, want nil", err)
	}
	if got := testutil.ToFloat64(unconfirmedTotal) - unconfirmed; got != 2 {
		t.Errorf("%v unconfirmed counted, want 2", got)
	}
}
