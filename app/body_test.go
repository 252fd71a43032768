package app

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// budgetIdle fails unless every byte and slot of the body budget was given back.
func budgetIdle(t *testing.T, in *Intake) {
	t.Helper()
	if n, s := in.budget.large.Load(), len(in.budget.slots); n != 0 || s != 0 {
		t.Errorf("body budget not returned: %d pool bytes, %d slots held", n, s)
	}
}

func TestIntakeDecodesLargeSignedBodiesWithinBounds(t *testing.T) {
	in, q, _ := newTestIntake(t)
	// A comment at GitHub's 65,536-character limit, in characters that JSON
	// may escape (6 bytes each): far above a slot, below MaxKeptBytes.
	long := defaultComment("/launch\n" + strings.Repeat("<", 65000)).JSON()
	if len(long) < 3*smallBodyBytes {
		t.Fatalf("payload only %d bytes", len(long))
	}
	r := webhookRequest("issue_comment", "long", long)
	if w := serve(in, r); w.Code != http.StatusAccepted {
		t.Fatalf("long comment: %d %s", w.Code, w.Body)
	}
	chunked := webhookRequest("issue_comment", "long-chunked", long)
	chunked.ContentLength = -1 // grown as it arrives
	if w := serve(in, chunked); w.Code != http.StatusAccepted {
		t.Fatalf("long comment without Content-Length: %d %s", w.Code, w.Body)
	}
	if n := len(q.Jobs()); n != 2 {
		t.Errorf("%d jobs queued, want 2", n)
	}

	// Signed but beyond what the bot decodes: refused with a reason, announced or not.
	huge := append(defaultComment("/launch").JSON(), bytes.Repeat([]byte(" "), MaxKeptBytes)...)
	for _, cl := range []int64{int64(len(huge)), -1} {
		r := webhookRequest("issue_comment", "huge", huge)
		r.ContentLength = cl
		if w := serve(in, r); w.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("huge signed comment (length %d): %d", cl, w.Code)
		}
	}
	// An event the bot ignores is verified without keeping its bytes, whatever its size.
	if w := serve(in, webhookRequest("push", "push", huge)); w.Code != http.StatusNoContent {
		t.Errorf("large push event: %d", w.Code)
	}
	forged := webhookRequest("push", "forged-push", huge)
	forged.Header.Set("X-Hub-Signature-256", sign("not the secret", huge))
	if w := serve(in, forged); w.Code != http.StatusUnauthorized {
		t.Errorf("forged push event: %d", w.Code)
	}
	budgetIdle(t, in)
}

// stalledBody writes n bytes, then blocks until released: a request whose
// memory is held while its signature is still unknown.
type stalledBody struct {
	pr      *io.PipeReader
	release func()
}

func newStalledBody(n int) *stalledBody {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		pw.Write(bytes.Repeat([]byte("x"), n))
		<-done
		pw.Close()
	}()
	var once sync.Once
	return &stalledBody{pr: pr, release: func() { once.Do(func() { close(done) }) }}
}

func (s *stalledBody) Read(p []byte) (int, error) { return s.pr.Read(p) }

// TestIntakeFloodOfForgedBodiesCannotCrowdOutARealDelivery holds many
// large forged bodies mid-read (the worst moment: bytes kept, signature
// unknown) and checks the memory they hold stays within the budget while a
// signed command is still accepted.
func TestIntakeFloodOfForgedBodiesCannotCrowdOutARealDelivery(t *testing.T) {
	in, q, _ := newTestIntake(t)
	in.budget = newBodyBudget(16, 1<<20) // small, so that the flood exceeds it
	const flood, each = 12, 512 << 10
	var wg sync.WaitGroup
	codes := make(chan int, flood)
	var bodies []*stalledBody
	for i := range flood {
		body := newStalledBody(each)
		bodies = append(bodies, body)
		r := httptest.NewRequest(http.MethodPost, "/api/github/webhooks", body)
		r.ContentLength = -1
		r.Header.Set("X-GitHub-Event", "issue_comment")
		r.Header.Set("X-GitHub-Delivery", fmt.Sprintf("forged-%d", i))
		r.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("ab", 32))
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- serve(in, r).Code
		}()
	}
	defer func() {
		for _, b := range bodies {
			b.release()
		}
	}()
	// Wait until the flood has read what it sent (each stalls after `each` bytes).
	waitFor(t, func() bool { return len(in.budget.slots) == flood })
	waitFor(t, func() bool {
		return in.budget.large.Load() >= 1<<20-each // the pool is spent
	})
	if used := in.budget.large.Load(); used > 1<<20 {
		t.Fatalf("flood holds %d pool bytes, over the 1 MiB budget", used)
	}
	start := time.Now()
	if w := serve(in, webhookRequest("issue_comment", "real", defaultComment("/launch").JSON())); w.Code != http.StatusAccepted {
		t.Fatalf("signed command during the flood: %d %s", w.Code, w.Body)
	}
	t.Logf("signed command accepted in %s during the flood", time.Since(start))
	if n := len(q.Jobs()); n != 1 {
		t.Errorf("%d jobs queued, want 1", n)
	}
	for _, b := range bodies {
		b.release()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusUnauthorized {
			t.Errorf("forged request answered %d, want 401", c)
		}
	}
	budgetIdle(t, in)
}
