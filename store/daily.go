package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Per-day totals for the fleet page: each transition adds to its UTC day's
// hash, kept DaysKept days whatever the records' retention, so that a month
// of figures costs one round trip and never a scan of the records.

// DaysKept is how many days of totals are kept.
const DaysKept = 30

// dailyTTL outlasts DaysKept in every time zone.
const dailyTTL = (DaysKept + 2) * 24 * time.Hour

// ReadyBuckets are the upper bounds, in seconds, of the comment → ready
// histogram kept per day (a last bucket holds the rest).
var ReadyBuckets = []float64{15, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600}

// DayTotals are one UTC day's totals.
type DayTotals struct {
	Day time.Time
	// Launches counts the launches that reached an outcome that day:
	// running or failed.
	Launches map[string]int64
	// Hours are the instance-hours each project counted against its
	// daily_instance_hours that day (the quota's own counters).
	Hours map[string]float64
	// Ready counts launches by time from comment to ready, per ReadyBuckets
	// and one more for the rest.
	Ready []int64
}

func dailyKey(day time.Time) string { return "daily:" + day.UTC().Format(time.DateOnly) }

// CountOutcome adds a launch that reached outcome (running, failed) at at.
func (s *Store) CountOutcome(ctx context.Context, at time.Time, outcome string) error {
	return s.addDaily(ctx, at, "launches:"+outcome)
}

// ObserveReady adds a launch that was ready d after its comment, at at.
func (s *Store) ObserveReady(ctx context.Context, at time.Time, d time.Duration) error {
	i := 0
	for i < len(ReadyBuckets) && d.Seconds() > ReadyBuckets[i] {
		i++
	}
	return s.addDaily(ctx, at, "ready:"+strconv.Itoa(i))
}

func (s *Store) addDaily(ctx context.Context, at time.Time, field string) error {
	key := dailyKey(at)
	// In one MULTI: a hash created without its EXPIRE would stay forever.
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HIncrBy(ctx, key, field, 1)
		p.Expire(ctx, key, dailyTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: count %s: %w", field, err)
	}
	return nil
}

// Days reads the totals of the n UTC days up to and including last's, the
// oldest first, with the instance-hours of projects: one round trip.
func (s *Store) Days(ctx context.Context, last time.Time, n int, projects []string) ([]DayTotals, error) {
	last = last.UTC().Truncate(24 * time.Hour)
	type reads struct {
		totals *redis.MapStringStringCmd
		hours  []*redis.StringCmd
	}
	days := make([]reads, n)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range days {
			day := last.AddDate(0, 0, i-n+1)
			days[i].totals = p.HGetAll(ctx, dailyKey(day))
			for _, project := range projects {
				days[i].hours = append(days[i].hours, p.Get(ctx, hoursKey(project, day)))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis: read daily totals: %w", err)
	}
	// Pipelined returns the first error only: a missing day's hours (nil)
	// must not hide another command's failure.
	for _, d := range days {
		if err := d.totals.Err(); err != nil {
			return nil, fmt.Errorf("redis: read daily totals: %w", err)
		}
		for _, h := range d.hours {
			if err := h.Err(); err != nil && !errors.Is(err, redis.Nil) {
				return nil, fmt.Errorf("redis: read instance-hours: %w", err)
			}
		}
	}
	out := make([]DayTotals, n)
	for i, d := range days {
		t := DayTotals{Day: last.AddDate(0, 0, i-n+1), Launches: map[string]int64{}, Hours: map[string]float64{}, Ready: make([]int64, len(ReadyBuckets)+1)}
		for field, v := range d.totals.Val() {
			count, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue // not ours
			}
			if outcome, ok := strings.CutPrefix(field, "launches:"); ok {
				t.Launches[outcome] = count
			} else if b, ok := strings.CutPrefix(field, "ready:"); ok {
				if j, err := strconv.Atoi(b); err == nil && j >= 0 && j < len(t.Ready) {
					t.Ready[j] = count
				}
			}
		}
		for j, project := range projects {
			if h, err := d.hours[j].Float64(); err == nil {
				t.Hours[project] = h
			}
		}
		out[i] = t
	}
	return out, nil
}

// RecentEnded lists ended launches, the latest ended first, from offset: at
// most count ids. The index keeps what the records' retention keeps.
func (s *Store) RecentEnded(ctx context.Context, offset, count int) ([]string, error) {
	if count <= 0 {
		return nil, nil
	}
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: endedKey, Start: offset, Stop: offset + count - 1, Rev: true}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: recent ended launches: %w", err)
	}
	return ids, nil
}

// Launches reads the records of ids (live or ended) in one round trip, in
// the order given; those gone are left out.
func (s *Store) Launches(ctx context.Context, ids []string) ([]*Launch, error) {
	found, _, err := s.readLaunches(ctx, ids)
	return found, err
}
