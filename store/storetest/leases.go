package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ExpireLeases ends the leases of every job a killed worker held, so that
// the next worker to start takes them back at once, as asynq's recoverer
// otherwise does only after the 30 s lease, 30 s of allowed clock skew and
// up to its one-minute tick. It returns how many it ended. Only for a
// Redis that no live worker uses: a live worker's leases end too, and its
// jobs would run twice.
//
// It relies on asynq's internals, pinned in go.mod (v0.26.0): each queue's
// leases are a sorted set "asynq:{QUEUE}:lease" of task ids scored by the
// lease's end (Unix seconds), and a starting server recovers at once what
// ended over 30 s ago. TestExpireLeasesMatchesAsynq holds it to that.
func ExpireLeases(t testing.TB, url string) int {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "asynq:{*}:lease").Result()
	if err != nil {
		t.Fatal(err)
	}
	ended := time.Now().Add(-time.Hour).Unix()
	n := 0
	for _, key := range keys {
		if !strings.HasSuffix(key, "}:lease") {
			continue
		}
		ids, err := c.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := c.ZAddXX(ctx, key, redis.Z{Score: float64(ended), Member: id}).Err(); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}
