package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// Memory bounds of webhook intake. Anyone can POST to the webhook, and the
// signature is known only after the last byte, so a body is read through the
// HMAC in chunks and its bytes are kept only while they may still be decoded:
// only for events the bot acts on, up to MaxKeptBytes, and within a budget
// shared by all requests in flight. Every request may keep a small body (the
// common case, ~12 KB); larger ones compete for a second, bounded pool, so a
// flood of big forged bodies cannot crowd out a real delivery.
const (
	// MaxKeptBytes is the largest delivery the bot decodes: an event whose
	// texts are at GitHub's 65,536-character limits stays well below it.
	MaxKeptBytes = 2 << 20
	// smallBodyBytes is what every request may keep from a slot of its own.
	smallBodyBytes = 64 << 10
	// smallSlots bounds requests keeping a small body at once (8 MiB).
	smallSlots = 128
	// largePoolBytes bounds what all requests keep beyond their slot.
	largePoolBytes = 16 << 20
	// chunkBytes is the read size while only hashing.
	chunkBytes = 16 << 10
)

// bodyBudget is the memory all in-flight webhook bodies may keep, and the
// turns large bodies take at being read.
type bodyBudget struct {
	slots chan struct{}
	big   chan struct{}
	large atomic.Int64 // bytes of the large pool in use
	limit int64
}

func newBodyBudget(slots int, large int64) *bodyBudget {
	return &bodyBudget{slots: make(chan struct{}, slots), big: make(chan struct{}, runtime.GOMAXPROCS(0)), limit: large}
}

func (b *bodyBudget) bigTurn(ctx context.Context) bool {
	select {
	case b.big <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (b *bodyBudget) endBigTurn() { <-b.big }

// slot takes a small-body slot, waiting while ctx allows (a slot frees as
// soon as any request ends).
func (b *bodyBudget) slot(ctx context.Context) bool {
	select {
	case b.slots <- struct{}{}:
		return true
	default:
	}
	select {
	case b.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (b *bodyBudget) releaseSlot() { <-b.slots }

// grow takes n more bytes of the large pool, without waiting.
func (b *bodyBudget) grow(n int64) bool {
	if b.large.Add(n) > b.limit {
		b.large.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) shrink(n int64) { b.large.Add(-n) }

// readOutcome says what became of a body read through the HMAC.
type readOutcome int

const (
	bodyKept      readOutcome = iota // kept whole: decode it
	bodyNotWanted                    // the event is not one the bot acts on: nothing kept
	bodyTooLarge                     // over MaxKeptBytes: not kept
	bodyNoBudget                     // the shared budget was spent: not kept
)

// signedBody is a webhook body read through the HMAC.
type signedBody struct {
	bytes   []byte // the body when outcome is bodyKept
	outcome readOutcome
	valid   bool // the signature matched
	release func()
}

var (
	chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkBytes); return &b }}
	smallBufs = sync.Pool{New: func() any { b := make([]byte, 0, smallBodyBytes); return &b }}
)

// readSigned reads at most MaxWebhookBytes of r through the HMAC and keeps
// the bytes when keep and the budget allow. sizeHint is the announced
// Content-Length (-1 when unknown). The caller must call release.
func (in *Intake) readSigned(ctx context.Context, r io.Reader, want []byte, keep bool, sizeHint int64) (out signedBody, err error) {
	mac := in.macs.Get().(hash.Hash)
	defer in.macs.Put(mac)
	mac.Reset()

	out.outcome = bodyNotWanted
	var kept []byte
	var slot bool
	var fromPool int64 // large-pool bytes held
	drop := func(why readOutcome) {
		kept, out.outcome = nil, why
		in.budget.shrink(fromPool)
		fromPool = 0
	}
	if keep {
		switch {
		case sizeHint > MaxKeptBytes:
			out.outcome = bodyTooLarge
		case !in.budget.slot(ctx):
			out.outcome = bodyNoBudget
		default:
			slot, out.outcome = true, bodyKept
			kept = (*smallBufs.Get().(*[]byte))[:0]
			// An announced length is exact: one byte more lets the read see EOF.
			if need := sizeHint + 1; need > smallBodyBytes && in.budget.grow(need-smallBodyBytes) {
				fromPool, kept = need-smallBodyBytes, make([]byte, 0, need)
			}
		}
	}
	defer func() {
		// Slot and pool are held until the request ends: its bytes live until then.
		held, buf := fromPool, kept
		out.release = func() {
			in.budget.shrink(held)
			if slot {
				if cap(buf) == smallBodyBytes {
					smallBufs.Put(&buf)
				}
				in.budget.releaseSlot()
			}
		}
	}()

	chunk := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(chunk)
	var total int64
	big := false
	for {
		buf := *chunk
		if out.outcome == bodyKept {
			if len(kept) == cap(kept) && !in.growKept(&kept, &fromPool) {
				if int64(cap(kept)) >= MaxKeptBytes {
					drop(bodyTooLarge)
				} else {
					drop(bodyNoBudget)
				}
				continue
			}
			buf = kept[len(kept):cap(kept)]
		}
		n, rerr := r.Read(buf)
		total += int64(n)
		if total > MaxWebhookBytes {
			drop(out.outcome)
			return out, errTooLarge
		}
		mac.Write(buf[:n])
		if out.outcome == bodyKept {
			kept = kept[:len(kept)+n]
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if !big && total > smallBodyBytes && rerr == nil {
			// Large bodies take turns, a core each, so that hashing a flood
			// cannot starve the small deliveries that are nearly all real.
			if !in.budget.bigTurn(ctx) {
				drop(out.outcome)
				return out, ctx.Err()
			}
			big = true
			defer in.budget.endBigTurn()
		}
		if rerr != nil {
			drop(out.outcome)
			return out, rerr
		}
	}
	var got [sha256.Size]byte
	out.valid = hmac.Equal(mac.Sum(got[:0]), want)
	out.bytes = kept
	return out, nil
}

// growKept doubles the kept buffer within MaxKeptBytes and the large pool.
func (in *Intake) growKept(kept *[]byte, fromPool *int64) bool {
	old := int64(cap(*kept))
	next := min(2*old, MaxKeptBytes)
	if next <= old {
		return false
	}
	// The pool pays for whatever exceeds the request's own small slot.
	need := max(next-smallBodyBytes, 0) - *fromPool
	if need > 0 && !in.budget.grow(need) {
		return false
	}
	if need > 0 {
		*fromPool += need
	}
	grown := make([]byte, len(*kept), next)
	copy(grown, *kept)
	*kept = grown
	return true
}

var errTooLarge = errors.New("payload too large")

// parseSignature decodes an X-Hub-Signature-256 header ("sha256=<hex>").
func parseSignature(header string) ([]byte, bool) {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return nil, false
	}
	want := make([]byte, sha256.Size)
	if _, err := hex.Decode(want, []byte(hexSig)); err != nil {
		return nil, false
	}
	return want, true
}
