package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Memory bounds of webhook intake. Anyone can POST to the webhook, and the
// signature is known only after the last byte, so a body is read through the
// HMAC in chunks and its bytes are kept only while they may still be decoded:
// only for events the bot acts on, up to MaxKeptBytes, and for at most
// keepFor. Up to smallBodyBytes (the common case is ~12 KB) a request keeps
// what it received on its own account, which the server's connection cap
// bounds; beyond that it draws, as bytes arrive, on a pool shared by all
// requests. Nothing waits for memory, so neither big nor slow forged bodies
// can queue a real delivery, which GitHub sends whole within milliseconds.
const (
	// MaxKeptBytes is the largest delivery the bot decodes: an event whose
	// texts are at GitHub's 65,536-character limits stays well below it.
	MaxKeptBytes = 2 << 20
	// smallBodyBytes is what a request may keep on its own account.
	smallBodyBytes = 64 << 10
	// largePoolBytes bounds what all requests keep beyond smallBodyBytes.
	largePoolBytes = 16 << 20
	// keepFor bounds how long a request may keep bytes: a body still
	// arriving after it is only hashed, and so holds nothing.
	keepFor = 2 * time.Second
	// chunkBytes is the read size while only hashing.
	chunkBytes = 8 << 10
	// firstBufferBytes is the first buffer of a kept body: most deliveries fit.
	firstBufferBytes = 16 << 10
)

// bodyBudget is the memory all in-flight webhook bodies may keep beyond
// their own account, and the turns large bodies take at being read.
type bodyBudget struct {
	big     chan struct{}
	large   atomic.Int64 // bytes of the large pool in use
	limit   int64
	keeping atomic.Int64 // requests keeping bytes now
}

func newBodyBudget(large int64) *bodyBudget {
	return &bodyBudget{big: make(chan struct{}, runtime.GOMAXPROCS(0)), limit: large}
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

// grow takes n more bytes of the large pool, without waiting.
func (b *bodyBudget) grow(n int64) bool {
	for {
		used := b.large.Load()
		if used+n > b.limit {
			return false
		}
		if b.large.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *bodyBudget) shrink(n int64) { b.large.Add(-n) }

// readOutcome says what became of a body read through the HMAC.
type readOutcome int

const (
	bodyKept      readOutcome = iota // kept whole: decode it
	bodyNotWanted                    // the event is not one the bot acts on: nothing kept
	bodyTooLarge                     // over MaxKeptBytes: not kept
	bodyNoBudget                     // the shared pool was spent: not kept
	bodyTooSlow                      // still arriving after keepFor: not kept
)

// signedBody is a webhook body read through the HMAC.
type signedBody struct {
	bytes   []byte // the body when outcome is bodyKept
	outcome readOutcome
	valid   bool // the signature matched
	release func()
}

var (
	chunkPool    = sync.Pool{New: func() any { b := make([]byte, chunkBytes); return &b }}
	firstBuffers = sync.Pool{New: func() any { b := make([]byte, 0, firstBufferBytes); return &b }}
)

// keeper holds a body's bytes while they may matter.
type keeper struct {
	budget   *bodyBudget
	bytes    []byte
	keeping  bool
	fromPool int64 // large-pool bytes held
	until    time.Time
}

func (k *keeper) start(budget *bodyBudget) {
	// What the sender announces is not yet received: start small (a typical
	// delivery fits), grow as bytes arrive.
	k.budget, k.keeping = budget, true
	k.bytes = (*firstBuffers.Get().(*[]byte))[:0]
	k.until = time.Now().Add(keepFor)
	budget.keeping.Add(1)
}

// drop gives up the bytes and the pool they held, at once.
func (k *keeper) drop() {
	if !k.keeping {
		return
	}
	k.budget.shrink(k.fromPool)
	k.budget.keeping.Add(-1)
	if cap(k.bytes) == firstBufferBytes {
		buf := k.bytes[:0]
		firstBuffers.Put(&buf)
	}
	k.fromPool, k.bytes, k.keeping = 0, nil, false
}

// next is where the next read goes while the body is kept, or why it can
// no longer be kept (too slow, too big, no memory).
func (k *keeper) next() ([]byte, readOutcome) {
	if time.Now().After(k.until) {
		return nil, bodyTooSlow
	}
	return k.room()
}

// room returns the free tail of the buffer, growing it by doubling within
// MaxKeptBytes and, past smallBodyBytes, the large pool; why says what
// stopped it.
func (k *keeper) room() ([]byte, readOutcome) {
	if len(k.bytes) < cap(k.bytes) {
		return k.bytes[len(k.bytes):cap(k.bytes)], bodyKept
	}
	old := int64(cap(k.bytes))
	next := min(2*old, MaxKeptBytes+1)
	if next <= old {
		return nil, bodyTooLarge
	}
	// The pool pays for what exceeds the request's own account, as bytes arrive.
	if need := next - smallBodyBytes - k.fromPool; need > 0 {
		if !k.budget.grow(need) {
			return nil, bodyNoBudget
		}
		k.fromPool += need
	}
	grown := make([]byte, len(k.bytes), next)
	copy(grown, k.bytes)
	if old == firstBufferBytes {
		buf := k.bytes[:0]
		firstBuffers.Put(&buf)
	}
	k.bytes = grown
	return k.bytes[len(k.bytes):cap(k.bytes)], bodyKept
}

// readSigned reads at most MaxWebhookBytes of r through the HMAC and keeps
// the bytes when keep allows. sizeHint is the announced Content-Length (-1
// when unknown). setDeadline sets the connection's read
// deadline: a sender that stalls while its bytes are kept is cut off from
// keeping at keepFor, then read (only hashed) until deadline (readSigned
// sets the connection's deadline before its first read). The caller
// must call release, after which the bytes must not be used. (deadline is
// not ctx's: a context deadline costs every request a timer.)
func (in *Intake) readSigned(ctx context.Context, deadline time.Time, r io.Reader, want []byte, keep bool, sizeHint int64, setDeadline func(time.Time)) (out signedBody, err error) {
	macp := in.macs.Get().(*secretMACs)
	defer in.macs.Put(macp)
	mac := *macp
	mac.Reset()

	k := &keeper{}
	out.outcome = bodyNotWanted
	out.release = k.drop
	if keep {
		if sizeHint > MaxKeptBytes {
			out.outcome = bodyTooLarge
		} else {
			out.outcome = bodyKept
			k.start(in.budget)
		}
	}
	// One deadline call per request (each takes the runtime's timer lock):
	// keepFor is the sooner, while the bytes are kept.
	if out.outcome == bodyKept {
		setDeadline(k.until)
	} else {
		setDeadline(deadline)
	}
	stopKeeping := func(why readOutcome) {
		if out.outcome == bodyKept {
			setDeadline(deadline)
		}
		k.drop()
		out.outcome = why
	}

	chunk := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(chunk)
	var total int64
	big := false
	for {
		buf := *chunk
		if out.outcome == bodyKept {
			if room, why := k.next(); why == bodyKept {
				buf = room
			} else {
				stopKeeping(why) // and read on into the chunk, only hashing
			}
		}
		n, rerr := r.Read(buf)
		total += int64(n)
		if total > MaxWebhookBytes {
			stopKeeping(out.outcome)
			return out, errTooLarge
		}
		mac.Write(buf[:n])
		if out.outcome == bodyKept {
			k.bytes = k.bytes[:len(k.bytes)+n]
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if errors.Is(rerr, os.ErrDeadlineExceeded) && out.outcome == bodyKept {
			stopKeeping(bodyTooSlow) // and read on, only hashing
			continue
		}
		if rerr != nil {
			stopKeeping(out.outcome)
			return out, rerr
		}
		if !big && total > smallBodyBytes {
			// Large bodies take turns, a core each, so that hashing a flood
			// cannot starve the small deliveries that are nearly all real.
			if err := in.bigTurn(ctx, deadline); err != nil {
				stopKeeping(out.outcome)
				return out, err
			}
			big = true
			defer in.budget.endBigTurn()
		}
	}
	if int64(len(k.bytes)) > MaxKeptBytes {
		stopKeeping(bodyTooLarge)
	}
	out.valid = mac.match(want)
	out.bytes = k.bytes
	return out, nil
}

var errTooLarge = errors.New("payload too large")

// bigTurn waits, until deadline, for a large body's turn.
func (in *Intake) bigTurn(ctx context.Context, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if !in.budget.bigTurn(ctx) {
		return ctx.Err()
	}
	return nil
}

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
