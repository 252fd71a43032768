package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

// migrate brings the indexes of a previous version's deployment up to date.
// It is idempotent and safe when replicas open the store at once.
func (s *Store) migrate(ctx context.Context) error {
	return s.migrateActiveSet(ctx)
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
			summary, err := json.Marshal(l.active())
			if err != nil {
				return err
			}
			p.HSetNX(ctx, liveKey, l.ID, summary)
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
