package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redelivery is what the bot remembers of a webhook delivery it asked
// GitHub to deliver again.
type Redelivery struct {
	// Attempts is how many redeliveries were asked for.
	Attempts int
	// LastAsked is the id of the delivery (attempt) last asked to be
	// redelivered: a failed attempt with a higher id is GitHub's answer.
	LastAsked int64
	// FailedAt is when GitHub first failed to deliver it.
	FailedAt time.Time
	// GivenUp: no more attempts will be asked for.
	GivenUp bool
}

const redeliveryMarkKey = "redeliver:mark"

func redeliveryKey(guid string) string { return "redeliver:" + guid }

// KnownDelivery reports whether a delivery id was accepted (or is being
// accepted) by the webhook intake.
func (s *Store) KnownDelivery(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, "delivery:"+id).Result()
	if err != nil {
		return false, fmt.Errorf("redis EXISTS delivery: %w", err)
	}
	return n > 0, nil
}

// Redelivery returns what is remembered of a redelivery of guid; the zero
// Redelivery when the bot never asked for one.
func (s *Store) Redelivery(ctx context.Context, guid string) (Redelivery, error) {
	m, err := s.rdb.HGetAll(ctx, redeliveryKey(guid)).Result()
	if err != nil {
		return Redelivery{}, fmt.Errorf("redis HGETALL redelivery: %w", err)
	}
	return redeliveryOf(m), nil
}

// ClaimDelivery claims a delivery id and reads its redelivery record in one
// round trip, as intake asks both of every delivery it queues. first holds
// when no delivery of id was queued yet: nobody had claimed it, or a claim
// was never confirmed (the attempt that made it failed, and maybe failed to
// forget it, as when the primary dies in between): answering that one
// "duplicate" would lose it, while queueing it again is safe, because the
// job's id keeps it to one job. An error reading the redelivery record
// (redeliveryErr) leaves the claim standing.
func (s *Store) ClaimDelivery(ctx context.Context, id string) (first bool, r Redelivery, redeliveryErr, err error) {
	ttl := min(pendingDeliveryTTL, s.deliveryTTL)
	if ttl <= 0 {
		return false, Redelivery{}, nil, fmt.Errorf("delivery:%s: the TTL must be positive, not %s", id, ttl)
	}
	var claim *redis.BoolCmd
	var state *redis.StringCmd
	var rec *redis.MapStringStringCmd
	// Each command's own error is what counts (a missing record is no error).
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		claim = p.SetNX(ctx, "delivery:"+id, claimPending, ttl)
		state = p.Get(ctx, "delivery:"+id)
		rec = p.HGetAll(ctx, redeliveryKey(id))
		return nil
	})
	if err := claim.Err(); err != nil {
		return false, Redelivery{}, nil, fmt.Errorf("redis SETNX delivery:%s: %w", id, err)
	}
	// A claim of the previous version ("1") counts as done.
	first = claim.Val() || state.Val() == claimPending
	if err := rec.Err(); err != nil {
		return first, Redelivery{}, fmt.Errorf("redis HGETALL redelivery: %w", err), nil
	}
	return first, redeliveryOf(rec.Val()), nil, nil
}

func redeliveryOf(m map[string]string) Redelivery {
	var r Redelivery
	r.Attempts, _ = strconv.Atoi(m["attempts"])
	r.LastAsked, _ = strconv.ParseInt(m["asked"], 10, 64)
	if unix, err := strconv.ParseInt(m["failed_at"], 10, 64); err == nil {
		r.FailedAt = time.Unix(unix, 0).UTC()
	}
	r.GivenUp = m["given_up"] == "1"
	return r
}

// SaveRedelivery stores r for guid for the delivery TTL: GitHub redelivers
// for 3 days, and the cap on attempts must outlast that.
func (s *Store) SaveRedelivery(ctx context.Context, guid string, r Redelivery) error {
	key := redeliveryKey(guid)
	fields := map[string]any{"attempts": r.Attempts, "asked": r.LastAsked, "given_up": 0}
	if !r.FailedAt.IsZero() {
		fields["failed_at"] = r.FailedAt.Unix()
	}
	if r.GivenUp {
		fields["given_up"] = 1
	}
	// In one MULTI: a hash created without its EXPIRE would stay forever.
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, fields)
		p.Expire(ctx, key, s.deliveryTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: save redelivery: %w", err)
	}
	return nil
}

// RedeliveryMark is when the newest delivery examined for redelivery was
// made; zero when none is remembered.
func (s *Store) RedeliveryMark(ctx context.Context) (time.Time, error) {
	unix, err := s.rdb.Get(ctx, redeliveryMarkKey).Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("redis GET %s: %w", redeliveryMarkKey, err)
	}
	return time.Unix(unix, 0).UTC(), nil
}

// SetRedeliveryMark remembers t as the mark for ttl, which must be positive.
func (s *Store) SetRedeliveryMark(ctx context.Context, t time.Time, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%s: the TTL must be positive, not %s", redeliveryMarkKey, ttl)
	}
	if err := s.rdb.Set(ctx, redeliveryMarkKey, t.Unix(), ttl).Err(); err != nil {
		return fmt.Errorf("redis SET %s: %w", redeliveryMarkKey, err)
	}
	return nil
}
