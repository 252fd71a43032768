package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/packit/packit-launch/provision/launchapi"
	"github.com/packit/packit-launch/store"
)

// PubkeyRetention is how long a pubkey the bot created may go unused.
const PubkeyRetention = 30 * 24 * time.Hour

// pubkeyAPI is what cleaning pubkeys needs of the Launch service.
type pubkeyAPI interface {
	ListPubkeys(ctx context.Context) ([]launchapi.Pubkey, error)
	DeletePubkey(ctx context.Context, id int64) error
}

// PubkeyUse remembers when pubkeys were last used (*store.Store).
type PubkeyUse interface {
	TouchPubkey(ctx context.Context, id int64, now time.Time) error
	PubkeysLastUsed(ctx context.Context) (map[int64]time.Time, error)
	ForgetPubkey(ctx context.Context, id int64) error
	ActiveLaunches(ctx context.Context) ([]*store.Launch, error)
}

// CleanPubkeys deletes the pubkeys the bot created that no launch has used
// for PubkeyRetention. Pubkeys are shared by the whole Red Hat org and
// deleting one removes it from every cloud account, so a key goes only if
// its name is one the bot gives (gh-LOGIN-HASH of its own body) and the bot
// has a record of using it; a key with no such record is left alone.
func CleanPubkeys(ctx context.Context, api pubkeyAPI, use PubkeyUse, now time.Time) (deleted int, err error) {
	keys, err := api.ListPubkeys(ctx)
	if err != nil {
		return 0, err
	}
	last, err := use.PubkeysLastUsed(ctx)
	if err != nil {
		return 0, err
	}
	active, err := use.ActiveLaunches(ctx)
	if err != nil {
		return 0, err
	}
	inUse := map[int64]bool{}
	for _, l := range active {
		inUse[l.PubkeyID] = true
	}
	var errs []error
	listed := map[int64]bool{}
	for _, k := range keys {
		listed[k.ID] = true
	}
	for id, seen := range last {
		// Deleted outside the bot: its record of use goes too, once old.
		if !listed[id] && now.Sub(seen) >= PubkeyRetention {
			errs = append(errs, use.ForgetPubkey(ctx, id))
		}
	}
	for _, k := range keys {
		seen, used := last[k.ID]
		if !used || !namedByBot(k) || inUse[k.ID] || now.Sub(seen) < PubkeyRetention {
			continue
		}
		if err := api.DeletePubkey(ctx, k.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, use.ForgetPubkey(ctx, k.ID))
		deleted++
	}
	return deleted, errors.Join(errs...)
}

// namedByBot reports whether a pubkey carries a name PubkeyName gives its
// body (possibly with the suffix EnsurePubkey adds on a name collision).
func namedByBot(k launchapi.Pubkey) bool {
	sum := sha256.Sum256([]byte(k.Body))
	return strings.HasPrefix(k.Name, "gh-") && strings.Contains(k.Name, "-"+hex.EncodeToString(sum[:])[:12])
}
