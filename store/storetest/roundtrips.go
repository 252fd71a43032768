package storetest

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// RoundTrips is a go-redis hook counting round trips to Redis: a command
// is one, and so is a pipeline or a MULTI/EXEC, however many commands it
// carries. Add it with client.AddHook.
type RoundTrips struct{ n atomic.Int64 }

// N is the number of round trips since the last Reset.
func (r *RoundTrips) N() int64 { return r.n.Load() }

// Reset starts counting again from zero.
func (r *RoundTrips) Reset() { r.n.Store(0) }

func (r *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}
