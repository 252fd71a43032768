package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Confirm is how many replicas must acknowledge the bot's writes before it
// acts on them outside Redis, and what happens when they do not in time.
type Confirm struct {
	// Replicas that must acknowledge; 0: no WAIT at all.
	Replicas int
	// Timeout bounds each WAIT.
	Timeout time.Duration
	// Required makes Confirm fail when too few acknowledge in time; else it
	// counts it and the caller goes on.
	Required bool
}

// ErrUnconfirmed is too few replicas acknowledging in time, with Required set.
var ErrUnconfirmed = errors.New("too few Redis replicas confirmed the last writes in time")

var (
	unconfirmedTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "packit_launch_redis_unconfirmed_total",
		Help: "Times too few Redis replicas confirmed the bot's writes (WAIT) within redis_confirm.timeout before it acted on them outside Redis; with redis_confirm.required the action waited instead.",
	})
	redisConnectsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "packit_launch_redis_connections_total",
		Help: "Connections the bot opened to Redis data nodes (through Sentinel), by outcome (ok, failed): a rise is reconnects.",
	}, []string{"outcome"})
	redisFailoversTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "packit_launch_redis_failovers_total",
		Help: "Times the bot found a different Redis primary than before through Sentinel: failovers it followed.",
	})
)

// Confirm asks Options.Confirm.Replicas replicas to acknowledge every
// write this process has made so far, before the caller acts on them
// outside Redis (a 202, a reservation, a comment). It writes a mark on a
// connection of its own and WAITs there: replication is one ordered
// stream, so a replica that has the mark has every earlier write. A
// failover may still promote a replica that had not; this narrows the
// window, it does not close it.
func (s *Store) Confirm(ctx context.Context) error {
	c := s.confirm
	if c.Replicas <= 0 || s.embedded != nil {
		return nil
	}
	conn := s.rdb.Conn()
	defer conn.Close()
	if err := conn.Set(ctx, "confirm:mark", time.Now().UnixNano(), time.Minute).Err(); err != nil {
		return fmt.Errorf("confirm writes: %w", err)
	}
	n, err := conn.Wait(ctx, c.Replicas, c.Timeout).Result()
	if err != nil {
		return fmt.Errorf("confirm writes: %w", err)
	}
	if int(n) >= c.Replicas {
		return nil
	}
	unconfirmedTotal.Inc()
	if c.Required {
		return fmt.Errorf("%w (%d of %d within %s)", ErrUnconfirmed, n, c.Replicas, c.Timeout)
	}
	return nil
}

// dialer opens the failover client's connections (to Sentinels and data
// nodes), counting them: a rise is reconnects.
func dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 5 * time.Minute}).DialContext(ctx, network, addr)
	if err != nil {
		redisConnectsTotal.WithLabelValues("failed").Inc()
		return nil, err
	}
	redisConnectsTotal.WithLabelValues("ok").Inc()
	return conn, nil
}

// primaries follows the primary go-redis's failover client reports ("sentinel:
// new master=… addr=…", its first discovery too): a change is a failover.
var primaries struct {
	mu   sync.Mutex
	last string
}

var newPrimaryRE = regexp.MustCompile(`^sentinel: new master="[^"]*" addr="([^"]*)"`)

// notePrimary counts a failover when a go-redis line names a new primary.
func notePrimary(line string, log *slog.Logger) {
	m := newPrimaryRE.FindStringSubmatch(line)
	if m == nil {
		return
	}
	primaries.mu.Lock()
	before := primaries.last
	primaries.last = m[1]
	primaries.mu.Unlock()
	if before != "" && before != m[1] {
		redisFailoversTotal.Inc()
		log.Warn("the Redis primary moved: following the failover", "from", before, "to", m[1])
	}
}

// Replication describes the primary the store writes to: its address as
// the primary sees itself is not known, so its role and replicas.
func (s *Store) Replication(ctx context.Context) (role string, replicas int, err error) {
	info, err := s.rdb.Info(ctx, "replication").Result()
	if err != nil {
		return "", 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "role":
			role = v
		case "connected_slaves":
			replicas, _ = strconv.Atoi(v)
		}
	}
	return role, replicas, nil
}
