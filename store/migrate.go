package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// migrate brings the indexes of a previous version's deployment up to date.
// It is idempotent and safe when replicas open the store at once. It runs
// on every Open, so that it also catches what replicas of the previous
// version wrote during a rolling upgrade: when there is nothing to do it
// costs one SCAN of the keyspace and one SMEMBERS per live PR.
func (s *Store) migrate(ctx context.Context) error {
	if err := s.migrateActiveSet(ctx); err != nil {
		return err
	}
	return s.tidyLegacyIndexes(ctx)
}

const legacyOwnerPrefix = "launches:owner:"

// tidyLegacyIndexes deletes what the previous version left and nothing
// would ever delete: the per-owner sets, and ended or expired ids in PR
// live sets (which it never emptied). Ended ids move to the PR's ended set.
func (s *Store) tidyLegacyIndexes(ctx context.Context) error {
	var owners, prs, endedSets []string
	iter := s.rdb.Scan(ctx, 0, "launches:*", 1000).Iterator()
	for iter.Next(ctx) {
		switch k := iter.Val(); {
		case strings.HasPrefix(k, legacyOwnerPrefix):
			owners = append(owners, k)
		case strings.HasPrefix(k, prLivePrefix):
			prs = append(prs, k)
		case strings.HasPrefix(k, prEndedPrefix):
			endedSets = append(endedSets, k)
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("redis: scan indexes: %w", err)
	}
	if err := s.fillEndedIndex(ctx, endedSets); err != nil {
		return err
	}
	for chunk := range slices.Chunk(owners, mgetChunk) {
		if err := s.rdb.Unlink(ctx, chunk...).Err(); err != nil {
			return fmt.Errorf("redis: drop owner sets: %w", err)
		}
	}
	if len(prs) == 0 {
		return nil
	}
	// Only ids missing from the live hash may need a look at their record;
	// the record, not this snapshot, decides (a launch created meanwhile
	// is live).
	live, err := s.rdb.HKeys(ctx, liveKey).Result()
	if err != nil {
		return fmt.Errorf("redis: read %s: %w", liveKey, err)
	}
	isLive := make(map[string]bool, len(live))
	for _, id := range live {
		isLive[id] = true
	}
	for chunk := range slices.Chunk(prs, mgetChunk) {
		if err := s.tidyPRSets(ctx, chunk, isLive); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) tidyPRSets(ctx context.Context, keys []string, isLive map[string]bool) error {
	members := make([]*redis.StringSliceCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			members[i] = p.SMembers(ctx, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: read PR sets: %w", err)
	}
	var suspects []string
	setOf := map[string]string{} // suspect id → its PR ref
	for i, k := range keys {
		for _, id := range members[i].Val() {
			if !isLive[id] {
				suspects = append(suspects, id)
				setOf[id] = strings.TrimPrefix(k, prLivePrefix)
			}
		}
	}
	if len(suspects) == 0 {
		return nil
	}
	found, missing, err := s.readLaunches(ctx, suspects)
	if err != nil {
		return err
	}
	now := time.Now()
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range missing {
			p.SRem(ctx, prLivePrefix+setOf[id], id)
		}
		for _, l := range found {
			if l.State.Ended() {
				s.endInPR(ctx, p, setOf[l.ID], now, l.ID)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: tidy PR sets: %w", err)
	}
	return nil
}

// migrateActiveSet builds the live hash from the legacy active set and
// empties the set (Redis deletes an empty set). An entry is only added where
// there is none (HSETNX), so it never replaces a fresher summary written by
// UpdateLaunch or another replica migrating too; and the records are read
// again after the write, so a launch that ended meanwhile does not stay.
func (s *Store) migrateActiveSet(ctx context.Context) error {
	for range 3 { // further passes only while an old replica keeps adding
		ids, err := s.rdb.SMembers(ctx, legacyActiveKey).Result()
		if err != nil {
			return fmt.Errorf("redis: read %s: %w", legacyActiveKey, err)
		}
		if len(ids) == 0 {
			return nil
		}
		for chunk := range slices.Chunk(ids, mgetChunk) {
			if err := s.migrateActiveChunk(ctx, chunk); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) migrateActiveChunk(ctx context.Context, ids []string) error {
	found, _, err := s.readLaunches(ctx, ids)
	if err != nil {
		return err
	}
	var live []string
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, l := range found {
			if l.State.Ended() {
				continue
			}
			p.HSetNX(ctx, liveKey, l.ID, l.summary())
			live = append(live, l.ID)
		}
		p.SRem(ctx, legacyActiveKey, ids)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: migrate %s: %w", legacyActiveKey, err)
	}
	again, gone, err := s.readLaunches(ctx, live)
	if err != nil {
		return err
	}
	for _, l := range again {
		if l.State.Ended() {
			gone = append(gone, l.ID)
		}
	}
	if len(gone) > 0 {
		if err := s.rdb.HDel(ctx, liveKey, gone...).Err(); err != nil {
			return fmt.Errorf("redis: migrate %s: %w", legacyActiveKey, err)
		}
	}
	return nil
}

// endedIndexFilled marks the ended index as filled from the PRs' ended sets.
const endedIndexFilled = "migrated:ended-index"

// fillEndedIndex puts, once, the launches a previous version ended (in
// their PRs' ended sets) in the index of every ended launch, so that the
// web view lists them too. A launch already there keeps its place (NX).
func (s *Store) fillEndedIndex(ctx context.Context, endedSets []string) error {
	if n, err := s.rdb.Exists(ctx, endedIndexFilled).Result(); err != nil || n > 0 {
		return err
	}
	for chunk := range slices.Chunk(endedSets, mgetChunk) {
		sets := make([]*redis.ZSliceCmd, len(chunk))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range chunk {
				sets[i] = p.ZRangeWithScores(ctx, k, 0, -1)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("redis: read ended sets: %w", err)
		}
		var all []redis.Z
		for _, c := range sets {
			all = append(all, c.Val()...)
		}
		if len(all) > 0 {
			if err := s.rdb.ZAddNX(ctx, endedKey, all...).Err(); err != nil {
				return fmt.Errorf("redis: fill the ended index: %w", err)
			}
		}
	}
	if len(endedSets) > 0 {
		if err := s.rdb.Expire(ctx, endedKey, s.endedRetention).Err(); err != nil {
			return fmt.Errorf("redis: fill the ended index: %w", err)
		}
	}
	return s.rdb.Set(ctx, endedIndexFilled, "1", 0).Err()
}
