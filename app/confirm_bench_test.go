package app

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

// BenchmarkCommandIntakeOnSentinel is a /launch delivery taken and queued
// on Redis Sentinel (a primary and a replica on loopback), without and
// with the replica confirming each one (WAIT) before the 202
// (BENCHMARKS.md, "Redis that fails over").
func BenchmarkCommandIntakeOnSentinel(b *testing.B) {
	rs := storetest.StartSentinel(b)
	body := defaultComment("/launch").JSON()
	for _, replicas := range []int{0, 1} {
		b.Run(fmt.Sprintf("confirm=%d", replicas), func(b *testing.B) {
			st, err := store.OpenWith(context.Background(), "", store.Options{
				Sentinel: store.Sentinel{Addrs: rs.Addrs, Master: storetest.SentinelMaster},
				Confirm:  store.Confirm{Replicas: replicas, Timeout: 500 * time.Millisecond, Required: true},
			}, quiet)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			in := NewIntake(testSecret, "", st, st.Queue(), quiet).ConfirmWith(st.Confirm)
			n := 0
			for b.Loop() {
				n++
				if w := serve(in, webhookRequest("issue_comment", fmt.Sprintf("bench-%d-%d", replicas, n), body)); w.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
