// Package store keeps packit-launch's state in Redis: delivery dedupe,
// one-time notices, and the job queue's wiring. With no Redis URL, a build
// that links one (StartEmbedded) runs an embedded in-process Redis whose
// state is lost on exit.
//
// Every key the store writes has a TTL or an owner that deletes it, so that
// Redis does not grow with the number of launches ever made ("retention" is
// Options.EndedRetention, 30 days by default; "delivery TTL" is
// Options.DeliveryTTL, 72 h):
//
//	launch:<id>                       live: no TTL, owned by the launch's lifecycle (the
//	                                  sweeper ends it at the latest); ended: retention
//	launch-by-command:<repo>:<comment> delivery TTL
//	launch-stop:<id>                  retention
//	stop-mark:<repo>#<pr>:<login>     StopMarkTTL (a stop that may overtake its /launch)
//	launches:live (HASH id → Active)  an entry per live launch, HDEL'd when it ends
//	launches:pr:<repo>#<pr> (SET)     live ids, SREM'd when they end (an empty set is gone)
//	launches:pr-ended:<repo>#<pr>     ZSET of ended ids, trimmed past the retention and
//	                                  EXPIREd to it on each add
//	launches:ended                    ZSET of every ended id, the same
//	migrated:ended-index              one key, no TTL: launches:ended was filled once
//	delivery:<id>                     2 min until confirmed, then delivery TTL
//	redeliver:<guid> (HASH)           delivery TTL, renewed on each save (redeliveries the bot asked for)
//	redeliver:mark                    the caller's TTL (must be positive)
//	notice:<key>                      the caller's TTL (must be positive)
//	lock:<name>                       the caller's TTL (must be positive); unlock deletes it
//	instance-hours:<project>:<day>    DaysKept + 2 days, set in the MULTI that adds to it
//	daily:<day> (HASH)                DaysKept + 2 days: the day's outcomes and comment → ready
//	commands:<login>:<minute> (HASH)  2 min, renewed by each command counted in it
//	confirm:mark                      1 min, rewritten by each Confirm (the write WAIT waits for)
//	pubkeys:last-used (HASH)          one key; an entry per pubkey in use, dropped by
//	                                  ForgetPubkey when provision deletes the pubkey
//	launches:active, launches:owner:* the previous version's indexes: Open deletes them
//
// The job queue's keys (asynq:*) are asynq's: a completed job is kept 24 h,
// or the delivery TTL when shorter (asynq.Retention in EnqueueAt), so that
// its id still refuses a duplicate;
// a job that failed for good is archived by asynq (90 days, at most 10,000
// per queue) unless EnqueueAt replaces it. metrics.go only reads.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DeliveryTTL is how long a delivery id is remembered: GitHub allows
// redelivery for 3 days.
const DeliveryTTL = 72 * time.Hour

// Options are a store's retentions. A zero field takes its default.
type Options struct {
	// EndedRetention is how long ended launches are kept (default EndedRetention).
	EndedRetention time.Duration
	// DeliveryTTL is how long a delivery id is remembered (default DeliveryTTL).
	DeliveryTTL time.Duration
	// Sentinel, when it lists Sentinels, finds the primary through them;
	// the URL then gives only the data nodes' password, db and TLS.
	Sentinel Sentinel
	// Confirm is how Confirm asks replicas for their acknowledgement.
	Confirm Confirm
}

// Sentinel names a Redis primary monitored by Redis Sentinel.
type Sentinel struct {
	Addrs    []string // host:port
	Master   string
	Password string
}

// Embedded is an in-process Redis, for trying the bot.
type Embedded interface {
	Addr() string
	// FastForward expires keys: an embedded Redis keeps no clock of its own.
	FastForward(d time.Duration)
	Close()
}

// StartEmbedded starts an embedded Redis; nil in a build without one
// (see store/embedded), where an empty Redis URL is an error.
var StartEmbedded func() (Embedded, error)

// Store is the bot's Redis.
type Store struct {
	rdb            *redis.Client
	embedded       Embedded
	stop           chan struct{}
	closeOnce      sync.Once
	endedRetention time.Duration
	deliveryTTL    time.Duration
	sentinel       bool
	confirm        Confirm
}

// ErrNoRedisURL: neither a Redis URL nor Sentinels were given, and this
// build has no embedded store.
var ErrNoRedisURL = errors.New("REDIS_URL is not set: set it to your Redis (redis://host:6379/0). This build has no embedded store; make run's has one, for trying the bot")

// OpenWith connects to url (redis:// or rediss://), or through the
// Sentinels o names, or starts an embedded Redis when there is neither and
// the build has one (StartEmbedded); zero Options take the defaults.
func OpenWith(ctx context.Context, url string, o Options, log *slog.Logger) (*Store, error) {
	if o.EndedRetention < 0 || o.DeliveryTTL < 0 {
		return nil, errors.New("store retentions must not be negative")
	}
	s := &Store{stop: make(chan struct{}), endedRetention: EndedRetention, deliveryTTL: DeliveryTTL}
	if o.EndedRetention > 0 {
		s.endedRetention = o.EndedRetention
	}
	if o.DeliveryTTL > 0 {
		s.deliveryTTL = o.DeliveryTTL
	}
	sentinel := len(o.Sentinel.Addrs) > 0
	if url == "" && !sentinel {
		if StartEmbedded == nil {
			return nil, ErrNoRedisURL
		}
		mr, err := StartEmbedded()
		if err != nil {
			return nil, fmt.Errorf("start embedded redis: %w", err)
		}
		s.embedded = mr
		go s.advanceEmbeddedClock()
		log.Warn("REDIS_URL is not set: using an embedded in-process Redis; state (launch records, timers, dedupe) is NOT durable and is lost when the process exits — set REDIS_URL for production")
		url = "redis://" + mr.Addr()
	}
	opts := &redis.Options{}
	if url != "" {
		var err error
		if opts, err = redis.ParseURL(url); err != nil {
			// The URL may carry a password: never echo it.
			return nil, errors.New("REDIS_URL is not a valid redis:// URL")
		}
	}
	// go-redis has one logger for the process; without this it writes
	// plain-text lines beside the bot's JSON ones.
	redis.SetLogger(redisLog{log})
	where := opts.Addr
	if sentinel {
		// One failover client for the store, the queue and every worker:
		// it asks the Sentinels for the primary, and again after a failover.
		where = fmt.Sprintf("the primary %q of Sentinels %s", o.Sentinel.Master, strings.Join(o.Sentinel.Addrs, ","))
		s.rdb = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: o.Sentinel.Master, SentinelAddrs: o.Sentinel.Addrs, SentinelPassword: o.Sentinel.Password,
			Username: opts.Username, Password: opts.Password, DB: opts.DB, TLSConfig: opts.TLSConfig,
			Dialer: dial,
		})
		s.sentinel = true
	} else {
		s.rdb = redis.NewClient(opts)
	}
	s.confirm = o.Confirm
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.rdb.Ping(pingCtx).Err(); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to redis at %s: %w", where, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate the store's indexes: %w", err)
	}
	return s, nil
}

// An embedded Redis only expires keys when told time has passed.
func (s *Store) advanceEmbeddedClock() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.embedded.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Redis is the client, for the queue and other packages' records.
func (s *Store) Redis() *redis.Client { return s.rdb }

// Embedded reports whether state lives only in this process.
func (s *Store) Embedded() bool { return s.embedded != nil }

// Ping checks Redis is reachable.
func (s *Store) Ping(ctx context.Context) error {
	err := s.rdb.Ping(ctx).Err()
	if err != nil && s.sentinel {
		return fmt.Errorf("no Redis primary (the Sentinels name none that answers, as during a failover): %w", err)
	}
	return err
}

// Close releases the connection and stops an embedded Redis. Closing twice is harmless.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		err = s.rdb.Close()
		if s.embedded != nil {
			s.embedded.Close()
		}
	})
	return err
}

// pendingDeliveryTTL bounds how long a delivery claimed by FirstDelivery
// but never confirmed (the process died before queueing it) blocks a
// redelivery.
const pendingDeliveryTTL = 2 * time.Minute

// FirstDelivery claims a webhook delivery id and reports whether it is new.
// The claim is short-lived until ConfirmDelivery makes it last the store's
// delivery TTL.
func (s *Store) FirstDelivery(ctx context.Context, id string) (bool, error) {
	first, _, _, err := s.ClaimDelivery(ctx, id)
	return first, err
}

// A delivery's claim is pending until its work is queued, then done.
const (
	claimPending = "pending"
	claimDone    = "done"
)

// ConfirmDelivery keeps a claimed delivery id for the store's delivery TTL
// (DeliveryTTL by default), once its work is safely queued.
func (s *Store) ConfirmDelivery(ctx context.Context, id string) error {
	return s.rdb.Set(ctx, "delivery:"+id, claimDone, s.deliveryTTL).Err()
}

// ForgetDelivery undoes FirstDelivery when the delivery could not be queued,
// so that a redelivery is not mistaken for a duplicate.
func (s *Store) ForgetDelivery(ctx context.Context, id string) error {
	return s.rdb.Del(ctx, "delivery:"+id).Err()
}

// FirstNotice reports whether the notice named key has not been given within ttl,
// and records it as given.
func (s *Store) FirstNotice(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return s.once(ctx, "notice:"+key, ttl)
}

func (s *Store) once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("%s: the TTL must be positive, not %s", key, ttl) // else it stays forever
	}
	ok, err := s.rdb.SetNX(ctx, key, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis SETNX %s: %w", key, err)
	}
	return ok, nil
}

// ForgetNotice undoes FirstNotice when the notice could not be given.
func (s *Store) ForgetNotice(ctx context.Context, key string) error {
	return s.rdb.Del(ctx, "notice:"+key).Err()
}

// countCommandScript numbers a command within its window's hash: a
// delivery seen before keeps its number (a retried job is not counted
// twice), and only the first keep deliveries are remembered, so a flood
// costs one counter, not a field per command.
var countCommandScript = redis.NewScript(`
local n = redis.call("HGET", KEYS[1], ARGV[1])
if n then return tonumber(n) end
n = redis.call("HINCRBY", KEYS[1], "#", 1)
if n <= tonumber(ARGV[2]) then redis.call("HSET", KEYS[1], ARGV[1], n) end
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return n`)

// CountCommand numbers a delivery among the commands counted under key
// (one person's in one window), from 1, in one round trip. A delivery
// among the first keep gets the same number when counted again.
func (s *Store) CountCommand(ctx context.Context, key, delivery string, keep int, ttl time.Duration) (int, error) {
	n, err := countCommandScript.Run(ctx, s.rdb, []string{"commands:" + key}, "d:"+delivery, keep, ttl.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("count command %s: %w", key, err)
	}
	return n, nil
}

// redisLog passes go-redis's own lines (a pool that cannot dial, a
// discarded connection) to the bot's log.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	notePrimary(line, r.log)
	r.log.WarnContext(ctx, "redis client", "detail", line)
}
