package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLocked means another replica holds the lock.
var ErrLocked = errors.New("locked by another replica")

var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// TryLock takes the named lock for ttl if it is free. The returned unlock
// releases it only if it is still ours.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(), err error) {
	if ttl <= 0 {
		// A lock without a TTL would outlive a replica that dies holding it.
		return nil, fmt.Errorf("lock %s: the TTL must be positive, not %s", name, ttl)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	token := hex.EncodeToString(b)
	key := "lock:" + name
	ok, err := s.rdb.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: lock %s: %w", name, err)
	}
	if !ok {
		return nil, ErrLocked
	}
	return func() { unlockScript.Run(context.WithoutCancel(ctx), s.rdb, []string{key}, token) }, nil
}

// Lock waits up to wait for the named lock.
func (s *Store) Lock(ctx context.Context, name string, ttl, wait time.Duration) (unlock func(), err error) {
	deadline := time.Now().Add(wait)
	for {
		unlock, err := s.TryLock(ctx, name, ttl)
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// hoursTTL keeps a day's instance-hours for the fleet page's month
// (DaysKept), past the end of the UTC day they count in any time zone.
const hoursTTL = dailyTTL

// AddInstanceHours adds to a project's instance-hours for a UTC day and
// returns the new total.
func (s *Store) AddInstanceHours(ctx context.Context, project string, day time.Time, hours float64) (float64, error) {
	key := hoursKey(project, day)
	var total *redis.FloatCmd
	// In one MULTI: a counter created without its EXPIRE would stay forever.
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		total = p.IncrByFloat(ctx, key, hours)
		p.Expire(ctx, key, hoursTTL)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("redis: add instance-hours: %w", err)
	}
	return total.Val(), nil
}

// InstanceHours is a project's instance-hours so far on a UTC day.
func (s *Store) InstanceHours(ctx context.Context, project string, day time.Time) (float64, error) {
	v, err := s.rdb.Get(ctx, hoursKey(project, day)).Float64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redis: %w", err)
	}
	return v, nil
}

func hoursKey(project string, day time.Time) string {
	return "instance-hours:" + project + ":" + day.UTC().Format("2006-01-02")
}

const pubkeyUseKey = "pubkeys:last-used"

// TouchPubkey records that a Launch service pubkey was used now.
func (s *Store) TouchPubkey(ctx context.Context, id int64, now time.Time) error {
	return s.rdb.HSet(ctx, pubkeyUseKey, strconv.FormatInt(id, 10), now.Unix()).Err()
}

// PubkeysLastUsed returns when each known pubkey was last used.
func (s *Store) PubkeysLastUsed(ctx context.Context) (map[int64]time.Time, error) {
	raw, err := s.rdb.HGetAll(ctx, pubkeyUseKey).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	out := make(map[int64]time.Time, len(raw))
	for k, v := range raw {
		id, err1 := strconv.ParseInt(k, 10, 64)
		unix, err2 := strconv.ParseInt(v, 10, 64)
		if err1 == nil && err2 == nil {
			out[id] = time.Unix(unix, 0)
		}
	}
	return out, nil
}

// ForgetPubkey drops a deleted pubkey's record.
func (s *Store) ForgetPubkey(ctx context.Context, id int64) error {
	return s.rdb.HDel(ctx, pubkeyUseKey, strconv.FormatInt(id, 10)).Err()
}
