package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

func launchKey(id string) string { return "launch:" + id }
func commandKey(l *Launch) string {
	return fmt.Sprintf("launch-by-command:%s:%d", l.Repo, l.CommandCommentID)
}

// A PR's launches: the live ones in a SET, the ended ones in a ZSET scored
// by when they ended (ms), kept for the retention like their records.
const (
	prLivePrefix  = "launches:pr:"
	prEndedPrefix = "launches:pr-ended:"
)

func prRef(repo string, pr int) string { return fmt.Sprintf("%s#%d", repo, pr) }
func prKey(repo string, pr int) string { return prLivePrefix + prRef(repo, pr) }
func prEndedKey(repo string, pr int) string {
	return prEndedPrefix + prRef(repo, pr)
}

// liveKey is the hash of live launches: id → Active, encoded by summary.
const liveKey = "launches:live"

// endedKey orders every ended launch by when it ended, within the
// records' retention (RecentEnded).
const endedKey = "launches:ended"

// legacyActiveKey is the set of live ids that liveKey replaced. Open
// migrates it, and so do the live reads, should a replica of the previous
// version still write it during a rolling upgrade.
const legacyActiveKey = "launches:active"

// Active is what the live index keeps of a launch: enough to list, count
// and sweep live launches without reading their records.
type Active struct {
	ID             string    `json:"id"`
	Owner          string    `json:"owner"`
	Repo           string    `json:"repo"`
	PR             int       `json:"pr"`
	InstallationID int64     `json:"installation_id"`
	Region         string    `json:"region,omitempty"`
	InstanceID     string    `json:"instance_id,omitempty"`
	TemplateID     string    `json:"template_id,omitempty"`
	State          State     `json:"state"`
	CreatedAt      time.Time `json:"created_at"`
	// ExpiresAt has seconds only; zero in a summary written before it was kept.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// SSHPollAt is the live look at a running VM's sshd or console (seconds
	// only); zero when none is due, so that a sweep reads the records of
	// only those whose looks stopped.
	SSHPollAt time.Time `json:"ssh_poll_at,omitzero"`
}

// summary is what the live hash keeps of a live launch: its Active as
// fields joined by a unit separator (0x1f, in no id, login or name). A
// quota check decodes all of them; this costs a fraction of JSON's time.
func (l *Launch) summary() string {
	return strings.Join([]string{l.Owner, l.Repo, strconv.Itoa(l.PR), strconv.FormatInt(l.InstallationID, 10),
		l.Region, l.InstanceID, l.TemplateID, string(l.State), strconv.FormatInt(l.CreatedAt.UnixNano(), 10), secondsText(l.ExpiresAt),
		secondsText(l.SSH.PollAt)}, summarySep)
}

// secondsText writes a time as Unix seconds, "" for zero.
func secondsText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.Unix(), 10)
}

const summarySep = "\x1f"

// parseSummary reads a summary back.
func parseSummary(id, v string) (Active, error) {
	f := strings.Split(v, summarySep)
	if len(f) < 9 {
		return Active{}, fmt.Errorf("live launch %s: a summary of %d fields", id, len(f))
	}
	for len(f) < 11 {
		f = append(f, "") // written before the expiry or the ssh look was kept
	}
	// Fields past the known ones are a later version's: ignored, so that
	// a rollback still reads the index.
	pr, err1 := strconv.Atoi(f[2])
	inst, err2 := strconv.ParseInt(f[3], 10, 64)
	created, err3 := strconv.ParseInt(f[8], 10, 64)
	expires, err4 := secondsField(f[9])
	sshPoll, err5 := secondsField(f[10])
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return Active{}, fmt.Errorf("live launch %s: %w", id, err)
	}
	return Active{ID: id, Owner: f[0], Repo: f[1], PR: pr, InstallationID: inst, Region: f[4], InstanceID: f[5], TemplateID: f[6],
		State: State(f[7]), CreatedAt: time.Unix(0, created).UTC(), ExpiresAt: expires, SSHPollAt: sshPoll}, nil
}

// secondsField reads a time written by secondsText.
func secondsField(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, 0).UTC(), nil
}

// writeLaunch queues, inside a MULTI, the write of l's record (data) and
// the index changes that go with it, so that records and indexes never
// disagree: a live launch is in the live hash, with a fresh summary, and in
// its PR's live set; an ended one leaves both for its PR's ended set, and
// its record expires after the retention. prev is the stored record before
// this write, nil for a new launch.
func (s *Store) writeLaunch(ctx context.Context, p redis.Pipeliner, prev, l *Launch, data []byte) error {
	if prev != nil && (prev.Repo != l.Repo || prev.PR != l.PR) {
		p.SRem(ctx, prKey(prev.Repo, prev.PR), l.ID)
		p.ZRem(ctx, prEndedKey(prev.Repo, prev.PR), l.ID)
	}
	if l.State.Ended() {
		p.Set(ctx, launchKey(l.ID), data, s.endedRetention)
		p.HDel(ctx, liveKey, l.ID)
		s.endInPR(ctx, p, prRef(l.Repo, l.PR), time.Now(), l.ID)
		return nil
	}
	p.Set(ctx, launchKey(l.ID), data, 0)
	p.HSet(ctx, liveKey, l.ID, l.summary())
	p.SAdd(ctx, prKey(l.Repo, l.PR), l.ID)
	return nil
}

// endInPR queues the move of ids from a PR's live set to its ended set.
// They are scored by now, when their records' retention starts (not by
// EndedAt, which callers may take from another clock), and the ended set
// drops what is past the retention and expires with the last record.
func (s *Store) endInPR(ctx context.Context, p redis.Pipeliner, ref string, now time.Time, ids ...string) {
	ended := prEndedPrefix + ref
	p.SRem(ctx, prLivePrefix+ref, ids)
	zs := make([]redis.Z, len(ids))
	for i, id := range ids {
		zs[i] = redis.Z{Score: msScore(now), Member: id}
	}
	p.ZAdd(ctx, ended, zs...)
	p.ZRemRangeByScore(ctx, ended, "-inf", "("+msArg(now.Add(-s.endedRetention)))
	p.Expire(ctx, ended, s.endedRetention)
	// And in the index of every ended launch, for the web view's list, by
	// when it first ended (later writes of an ended record keep its place).
	p.ZAddNX(ctx, endedKey, zs...)
	p.ZRemRangeByScore(ctx, endedKey, "-inf", "("+msArg(now.Add(-s.endedRetention)))
	p.Expire(ctx, endedKey, s.endedRetention) // with the last record it lists
}

func msScore(t time.Time) float64 { return float64(t.UnixMilli()) }
func msArg(t time.Time) string    { return strconv.FormatInt(t.UnixMilli(), 10) }

// LaunchesByPR lists a PR's live launches and those ended within the
// retention, oldest first: two round trips (the ids, then the records).
// Ids whose records are gone leave the indexes; an ended launch still in
// the live set (written by the previous version) moves to the ended set.
func (s *Store) LaunchesByPR(ctx context.Context, repo string, pr int) ([]*Launch, error) {
	ref, now := prRef(repo, pr), time.Now()
	var live, ended *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		live = p.SMembers(ctx, prLivePrefix+ref)
		ended = p.ZRangeByScore(ctx, prEndedPrefix+ref, &redis.ZRangeBy{
			Min: "(" + msArg(now.Add(-s.endedRetention)),
			Max: "+inf",
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis: launches of %s: %w", ref, err)
	}
	ids := live.Val()
	inLive := make(map[string]bool, len(ids))
	for _, id := range ids {
		inLive[id] = true
	}
	for _, id := range ended.Val() {
		if !inLive[id] {
			ids = append(ids, id)
		}
	}
	found, missing, err := s.readLaunches(ctx, ids)
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, l := range found {
		if inLive[l.ID] && l.State.Ended() {
			moved = append(moved, l.ID)
		}
	}
	if len(missing) > 0 || len(moved) > 0 {
		// Best effort: the next read repairs what this one could not.
		s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if len(missing) > 0 {
				p.SRem(ctx, prLivePrefix+ref, missing)
				p.ZRem(ctx, prEndedPrefix+ref, missing)
			}
			if len(moved) > 0 {
				s.endInPR(ctx, p, ref, now, moved...)
			}
			return nil
		})
	}
	sortByCreation(found)
	return found, nil
}

// mgetChunk bounds the ids asked for in one MGET, so that no single
// command holds Redis up for long.
const mgetChunk = 1000

// readLaunches reads the records of ids, in chunks sent in one pipeline:
// one round trip. Ids whose records are gone come back in missing.
func (s *Store) readLaunches(ctx context.Context, ids []string) (found []*Launch, missing []string, err error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	var cmds []*redis.SliceCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for chunk := range slices.Chunk(ids, mgetChunk) {
			keys := make([]string, len(chunk))
			for i, id := range chunk {
				keys[i] = launchKey(id)
			}
			cmds = append(cmds, p.MGet(ctx, keys...))
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("redis: read launches: %w", err)
	}
	found = make([]*Launch, 0, len(ids))
	i := 0
	for _, c := range cmds {
		for _, v := range c.Val() {
			id := ids[i]
			i++
			data, ok := v.(string)
			if !ok {
				missing = append(missing, id)
				continue
			}
			var l Launch
			if err := json.Unmarshal([]byte(data), &l); err != nil {
				return nil, nil, fmt.Errorf("decode launch %s: %w", id, err)
			}
			found = append(found, &l)
		}
	}
	return found, missing, nil
}

// ActiveIndex lists the live launches' summaries, oldest first, in one
// round trip.
func (s *Store) ActiveIndex(ctx context.Context) ([]Active, error) {
	var all *redis.MapStringStringCmd
	err := s.readLive(ctx, func(p redis.Pipeliner) { all = p.HGetAll(ctx, liveKey) })
	if err != nil {
		return nil, err
	}
	out := make([]Active, 0, len(all.Val()))
	for id, v := range all.Val() {
		a, err := parseSummary(id, v)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Active) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// ActiveLaunches lists launches that have not ended, oldest first: the ids
// from the live hash, the records with MGET (two round trips however many).
func (s *Store) ActiveLaunches(ctx context.Context) ([]*Launch, error) {
	var keys *redis.StringSliceCmd
	if err := s.readLive(ctx, func(p redis.Pipeliner) { keys = p.HKeys(ctx, liveKey) }); err != nil {
		return nil, err
	}
	return s.LiveRecords(ctx, keys.Val())
}

// LiveRecords reads the records of the live launches ids (a round trip per
// 1,000), oldest first. An id whose record is gone or ended leaves the live
// index: only a replica of the previous version ended a launch without
// leaving it, and an ended launch never comes back.
func (s *Store) LiveRecords(ctx context.Context, ids []string) ([]*Launch, error) {
	found, stale, err := s.readLaunches(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := found[:0]
	for _, l := range found {
		if l.State.Ended() {
			stale = append(stale, l.ID)
			continue
		}
		out = append(out, l)
	}
	if len(stale) > 0 {
		// Best effort: the next read repairs what this one could not.
		s.rdb.HDel(ctx, liveKey, stale...)
	}
	sortByCreation(out)
	return out, nil
}

// DropStale removes ids from the live index: their records are gone or
// ended (a replica of the previous version ended them without leaving
// it), so that no quota counts them.
func (s *Store) DropStale(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.rdb.HDel(ctx, liveKey, ids...).Err()
}

// readLive runs read in a pipeline with a check for the legacy active set;
// only when that set exists (a replica of the previous version wrote it)
// is it migrated and read run again.
func (s *Store) readLive(ctx context.Context, read func(p redis.Pipeliner)) error {
	for attempt := 0; ; attempt++ {
		var legacy *redis.IntCmd
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			read(p)
			legacy = p.Exists(ctx, legacyActiveKey)
			return nil
		})
		if err != nil {
			return fmt.Errorf("redis: read live launches: %w", err)
		}
		if legacy.Val() == 0 || attempt > 0 {
			return nil
		}
		if err := s.migrateActiveSet(ctx); err != nil {
			return err
		}
	}
}
