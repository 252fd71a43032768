package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is where a launch is in its life.
type State string

const (
	// StateWaiting: decided and recorded, waiting for Packit's image build.
	StateWaiting State = "waiting"
	// StateAccepted: decided and recorded; nothing asked of the Launch service yet.
	StateAccepted State = "accepted"
	// StateLaunching: a reservation may exist (ReservationID is set once known).
	StateLaunching State = "launching"
	StateRunning   State = "running"
	StateFailed    State = "failed"
	StateEnded     State = "terminated"
)

// Ended reports whether nothing more will happen to the launch's VM.
func (s State) Ended() bool { return s == StateFailed || s == StateEnded }

// EndedRetention is how long records of ended launches are kept, unless
// the store was opened with another (Options).
const EndedRetention = 30 * 24 * time.Hour

// Launch is the record of one /launch and the VM it produces.
type Launch struct {
	ID             string `json:"id"`
	Delivery       string `json:"delivery"`
	InstallationID int64  `json:"installation_id"`
	Owner          string `json:"owner"` // GitHub login of the person who launched
	Repo           string `json:"repo"`  // owner/name
	PR             int    `json:"pr"`
	HeadSHA        string `json:"head_sha"`
	// CommandCommentID is the /launch comment, for reactions.
	CommandCommentID int64  `json:"command_comment_id"`
	Command          string `json:"command"`

	Machine string `json:"machine"`
	Image   string `json:"image"`
	// PackitTarget is set when the image is the one Packit built for the PR
	// (its vm-image-build target); PackitSHA is the commit it was built
	// from and PackitBuildURL Packit's check run.
	PackitTarget   string `json:"packit_target,omitempty"`
	PackitSHA      string `json:"packit_sha,omitempty"`
	PackitBuildURL string `json:"packit_build_url,omitempty"`
	// PackitPollAt is when the one live poll of a waiting launch is due:
	// a poll job for another time is a stale duplicate and does nothing.
	PackitPollAt     time.Time `json:"packit_poll_at,omitzero"`
	Region           string    `json:"region"`
	InstanceType     string    `json:"instance_type"`
	SSHUser          string    `json:"ssh_user"`
	Profile          string    `json:"profile"`
	LaunchTemplateID string    `json:"launch_template_id,omitempty"` // the profile's base template
	SecurityGroupIDs []string  `json:"security_group_ids,omitempty"`
	SubnetID         string    `json:"subnet_id,omitempty"`
	Project          string    `json:"project"`
	// TemplateID is the per-launch template the bot created for this launch.
	TemplateID string        `json:"template_id,omitempty"`
	Lifetime   time.Duration `json:"lifetime"`
	ExtendStep time.Duration `json:"extend_step"`

	KeyFingerprint string `json:"key_fingerprint"`
	KeyType        string `json:"key_type"`
	KeyBody        string `json:"key_body"`
	PubkeyID       int64  `json:"pubkey_id,omitempty"`

	ReservationID int64 `json:"reservation_id,omitempty"`
	// ReservedAt is when the reservation was asked for: its wait counts from it.
	ReservedAt time.Time `json:"reserved_at,omitzero"`
	// ReservationPollAt is when the one live look at a launching launch's
	// reservation is due: a poll job for another time is a stale duplicate.
	ReservationPollAt time.Time `json:"reservation_poll_at,omitzero"`
	InstanceID        string    `json:"instance_id,omitempty"`
	PublicIPv4        string    `json:"public_ipv4,omitempty"`
	PublicDNS         string    `json:"public_dns,omitempty"`
	PrivateIPv4       string    `json:"private_ipv4,omitempty"`

	CreatedAt     time.Time `json:"created_at"`
	LaunchedAt    time.Time `json:"launched_at,omitzero"`
	ExpiresAt     time.Time `json:"expires_at"`
	HardExpiresAt time.Time `json:"hard_expires_at"`
	EndedAt       time.Time `json:"ended_at,omitzero"`

	State State `json:"state"`
	// Failure is the reason shown when State is failed; FailedStep the Launch service step.
	Failure       string `json:"failure,omitempty"`
	FailedStep    string `json:"failed_step,omitempty"`
	FailureAdvice string `json:"failure_advice,omitempty"`
	// EndReason says why the VM was terminated (expired, stopped by …, PR closed…).
	EndReason string `json:"end_reason,omitempty"`

	// SSH is the wait for the VM's sshd and what the bot learned of its host keys.
	SSH SSHCheck `json:"ssh,omitzero"`

	// Events are the launch's latest state changes, oldest first: its
	// history for the PR and the web view, kept as long as the record.
	Events []Event `json:"events,omitempty"`

	// Report is the GitHub side's: written only through UpdateReport.
	Report
}

// SSHCheck is the wait for a running VM's sshd, and its host keys from
// two sources: the VM's console, read through the EC2 API, and the key the
// VM presented to the bot in a handshake.
type SSHCheck struct {
	// Started is when the check began (the VM was running): zero, not yet.
	Started time.Time `json:"started,omitzero"`
	// WaitUntil bounds the wait for sshd before the ready comment; zero
	// when there is none (the profile's probe is off, or no address).
	WaitUntil time.Time `json:"wait_until,omitzero"`
	// ConsoleUntil bounds the looks at the console for host keys.
	ConsoleUntil time.Time `json:"console_until,omitzero"`
	// PollAt is when the one live look is due: a job for another time is a
	// stale duplicate.
	PollAt time.Time `json:"poll_at,omitzero"`
	// AnsweredAt is when port 22 first answered with an SSH banner.
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	// PresentedKey is the host key the VM presented to the bot ("type base64").
	PresentedKey string `json:"presented_key,omitempty"`
	// ConsoleKeys and ConsoleFingerprints are what cloud-init printed;
	// ConsoleReadAt is when the console was last read.
	ConsoleKeys         []string  `json:"console_keys,omitempty"`
	ConsoleFingerprints []string  `json:"console_fingerprints,omitempty"`
	ConsoleReadAt       time.Time `json:"console_read_at,omitzero"`
	// Rev counts the changes the PR's comment shows (sshd answered, keys
	// learned, looks over): the report catches up with it (Report.SSHShown).
	Rev int `json:"rev,omitempty"`
}

// Event is one state change of a launch: when, which transition, and the
// state it led to.
type Event struct {
	At    time.Time `json:"at"`
	Name  string    `json:"name"`
	State State     `json:"state"`
	// By is who asked for it (an extension), when someone did.
	By string `json:"by,omitempty"`
}

// Report is what the GitHub side keeps on a launch record. It is written
// apart from the lifecycle's fields (UpdateReport), so neither side's
// write can undo the other's. Its fields sit inline in the record's JSON.
type Report struct {
	// Slow is set once the PR was told the launch is slower than usual.
	Slow       bool  `json:"slow,omitempty"`
	CommentID  int64 `json:"comment_id,omitempty"` // the sticky comment with how to connect
	CheckRunID int64 `json:"check_run_id,omitempty"`
	// Reported is set once the outcome is on the PR (comment, reaction, check run).
	Reported bool `json:"reported,omitempty"`
	// SSHShown is the SSHCheck.Rev the PR's comment shows.
	SSHShown int `json:"ssh_shown,omitempty"`
}

// ReservationName is the name given to the Launch service's reservation and
// so to the instance's Name tag: unique per launch, readable in the AWS console.
func (l *Launch) ReservationName() string {
	return fmt.Sprintf("packit-launch %s %s#%d", l.ID, l.Repo, l.PR)
}

// ErrNotFound means there is no such launch.
var ErrNotFound = errors.New("launch not found")

// idAlphabet has no characters that are easily confused when typed (0/o, 1/l/i).
const idAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// IDLength keeps ids short and typeable: 31^8 ≈ 8.5e11 possible ids.
const IDLength = 8

// CommandID derives a launch's id from the command that asked for it (its
// repository and comment): a replay of the command finds the same launch
// even when Redis forgot it, and AWS and the Launch service know the VM by
// that id (its template's name, its tags, its reservation's name).
func CommandID(repo string, commentID int64) string {
	sum := sha256.Sum256([]byte(strings.ToLower(repo) + "#" + strconv.FormatInt(commentID, 10)))
	b := make([]byte, IDLength)
	for i := range b {
		b[i] = idAlphabet[int(sum[i])%len(idAlphabet)]
	}
	return string(b)
}

func newID() (string, error) {
	b := make([]byte, IDLength)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b), nil
}

// CreateLaunch stores a new launch under a fresh id, once per command
// comment: a second call for the same comment (a retried job, a repeated
// delivery) returns the launch already created and created=false. The
// command's claim, the record and its indexes are written in one MULTI, so
// a crash leaves either all of them or none.
func (s *Store) CreateLaunch(ctx context.Context, l *Launch) (stored *Launch, created bool, err error) {
	ckey := commandKey(l)
	for round := range 5 {
		id, err := newID()
		if err != nil {
			return nil, false, fmt.Errorf("launch id: %w", err)
		}
		if round == 0 && l.CommandCommentID != 0 {
			id = CommandID(l.Repo, l.CommandCommentID)
		}
		var existing *Launch
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			prior, err := tx.Get(ctx, ckey).Result()
			if err == nil {
				existing, err = s.GetLaunch(ctx, prior)
				return err
			}
			if !errors.Is(err, redis.Nil) {
				return err
			}
			if n, err := tx.Exists(ctx, launchKey(id)).Result(); err != nil {
				return err
			} else if n > 0 {
				if same, err := s.GetLaunch(ctx, id); err == nil && same.CommandCommentID == l.CommandCommentID && strings.EqualFold(same.Repo, l.Repo) {
					existing = same // the command's launch, whose command key expired
					return nil
				}
				return errIDTaken
			}
			fresh := *l
			fresh.ID = id
			data, err := json.Marshal(&fresh)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, ckey, id, s.deliveryTTL)
				return s.writeLaunch(ctx, p, nil, &fresh, data)
			})
			return err
		}, ckey, launchKey(id))
		switch {
		case existing != nil:
			return existing, false, nil
		case errors.Is(err, errIDTaken) || errors.Is(err, redis.TxFailedErr):
			// An id collision (extremely rare), or another call for the same
			// command got there first: the next round tells which.
			continue
		case err != nil:
			return nil, false, fmt.Errorf("create launch: %w", err)
		}
		l.ID = id
		return l, true, nil
	}
	return nil, false, errors.New("could not find a free launch id")
}

var errIDTaken = errors.New("launch id taken")

// RestoreLaunch writes the record of a launch whose record was lost (rebuilt
// from its VM's tags) under its own id, unless a record of that id exists;
// restored says whether it was written.
func (s *Store) RestoreLaunch(ctx context.Context, l *Launch) (restored bool, err error) {
	data, err := json.Marshal(l)
	if err != nil {
		return false, err
	}
	err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		if n, err := tx.Exists(ctx, launchKey(l.ID)).Result(); err != nil || n > 0 {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { return s.writeLaunch(ctx, p, nil, l, data) })
		restored = err == nil
		return err
	}, launchKey(l.ID))
	if err != nil {
		return false, fmt.Errorf("redis: restore launch %s: %w", l.ID, err)
	}
	return restored, nil
}

// GetLaunch reads a launch record.
func (s *Store) GetLaunch(ctx context.Context, id string) (*Launch, error) {
	data, err := s.rdb.Get(ctx, launchKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: get launch %s: %w", id, err)
	}
	var l Launch
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("decode launch %s: %w", id, err)
	}
	return &l, nil
}

func sortByCreation(ls []*Launch) {
	slices.SortFunc(ls, func(a, b *Launch) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// ErrNoChange from an UpdateLaunch callback leaves the record as it is.
var ErrNoChange = errors.New("no change")

// ErrEnded means an update would revive an ended launch: its VM is gone
// (or going), so a late writer must not make it look live again.
var ErrEnded = errors.New("launch has ended")

// UpdateReport changes only a launch's report fields (the GitHub side's
// marks) through UpdateLaunch's guard; the lifecycle's fields stay as the
// lifecycle last wrote them.
func (s *Store) UpdateReport(ctx context.Context, id string, fn func(*Report) error) (*Launch, error) {
	return s.UpdateLaunch(ctx, id, func(x *Launch) error { return fn(&x.Report) })
}

// UpdateLaunch applies fn to the current record and saves it atomically
// (optimistic: retried if another writer got there first), so that
// concurrent handlers — a timer, an extension, the launch job — never undo
// each other's changes. Writers that collide back off for a random, growing
// pause so that a burst of them spreads out instead of colliding again.
// An ended record stays ended: if fn makes it live again, nothing is
// written and UpdateLaunch returns the stored record and ErrEnded.
func (s *Store) UpdateLaunch(ctx context.Context, id string, fn func(*Launch) error) (*Launch, error) {
	var out *Launch
	for attempt := range updateAttempts {
		if attempt > 0 {
			if err := sleepCtx(ctx, contentionPause(attempt)); err != nil {
				return nil, fmt.Errorf("update launch %s: %w", id, err)
			}
		}
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			data, err := tx.Get(ctx, launchKey(id)).Bytes()
			if errors.Is(err, redis.Nil) {
				return fmt.Errorf("%w: %s", ErrNotFound, id)
			}
			if err != nil {
				return err
			}
			var l Launch
			if err := json.Unmarshal(data, &l); err != nil {
				return fmt.Errorf("decode launch %s: %w", id, err)
			}
			before := l
			wasEnded := l.State.Ended()
			if err := fn(&l); err != nil {
				out = &l
				return err
			}
			if wasEnded && !l.State.Ended() {
				var stored Launch
				if err := json.Unmarshal(data, &stored); err != nil {
					return fmt.Errorf("decode launch %s: %w", id, err)
				}
				out = &stored
				return fmt.Errorf("%w: %s", ErrEnded, id)
			}
			next, err := json.Marshal(&l)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				return s.writeLaunch(ctx, p, &before, &l, next)
			})
			out = &l
			return err
		}, launchKey(id))
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if errors.Is(err, ErrNoChange) {
			return out, nil
		}
		return out, err
	}
	return nil, fmt.Errorf("update launch %s: too much contention", id)
}

const updateAttempts = 50

// contentionPause is a full-jitter backoff: up to 2 ms after the first
// collision, growing to at most 50 ms.
func contentionPause(attempt int) time.Duration {
	ceiling := min(time.Duration(attempt)*2*time.Millisecond, 50*time.Millisecond)
	return time.Duration(mrand.Int64N(int64(ceiling)) + 1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RequestStop asks an in-flight launch to end its VM as soon as it has one.
func (s *Store) RequestStop(ctx context.Context, id, reason string) error {
	return s.rdb.Set(ctx, "launch-stop:"+id, reason, s.endedRetention).Err()
}

// StopRequested returns the reason a stop was requested for a launch, or "".
func (s *Store) StopRequested(ctx context.Context, id string) (string, error) {
	v, err := s.rdb.Get(ctx, "launch-stop:"+id).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// LogAttrs are what every log line about the launch carries.
func (l *Launch) LogAttrs() []any { return []any{"launch", l.ID, "repo", l.Repo, "pr", l.PR} }

// StopMarkTTL is how long a stop is remembered for /launch commands written
// before it that have not been recorded yet: as long as a command may wait
// on GitHub before it runs.
const StopMarkTTL = 2 * time.Hour

func stopMarkKey(repo string, pr int, login string) string {
	return fmt.Sprintf("stop-mark:%s#%d:%s", strings.ToLower(repo), pr, strings.ToLower(login))
}

// MarkStop remembers that login's stop comment (commentID) on a PR came:
// GitHub numbers comments in order, so a /launch with a lower id was
// written before it. The highest id stays.
func (s *Store) MarkStop(ctx context.Context, repo string, pr int, login string, commentID int64) error {
	key := stopMarkKey(repo, pr, login)
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		prior, err := tx.Get(ctx, key).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, max(prior, commentID), StopMarkTTL)
			return nil
		})
		return err
	}, key)
	if err != nil {
		return fmt.Errorf("redis: mark stop: %w", err)
	}
	return nil
}

// StopMark is the id of login's latest stop comment on a PR, or 0.
func (s *Store) StopMark(ctx context.Context, repo string, pr int, login string) (int64, error) {
	id, err := s.rdb.Get(ctx, stopMarkKey(repo, pr, login)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redis: stop mark: %w", err)
	}
	return id, nil
}
