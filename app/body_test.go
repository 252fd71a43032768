package app

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
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
	if n, k := in.budget.large.Load(), in.budget.keeping.Load(); n != 0 || k != 0 {
		t.Errorf("body budget not returned: %d pool bytes held, %d requests keeping", n, k)
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

// TestIntakeFloodOfForgedBodiesCannotCrowdOutARealDelivery holds forged
// bodies mid-read (the worst moment: bytes kept, signature unknown) with the
// large pool spent, and checks a signed command is still accepted while a
// large signed delivery is refused rather than over-committing memory.
func TestIntakeFloodOfForgedBodiesCannotCrowdOutARealDelivery(t *testing.T) {
	in, q, _ := newTestIntake(t)
	in.budget = newBodyBudget(1 << 20)
	const flood, each = 12, 60 << 10 // each within its own account
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
	releaseAll := func() {
		for _, b := range bodies {
			b.release()
		}
	}
	defer releaseAll()
	waitFor(t, func() bool { return in.budget.keeping.Load() == flood })
	// The large pool is spent, as by big bodies in flight.
	if !in.budget.grow(in.budget.limit) {
		t.Fatal("pool already in use")
	}

	if w := serve(in, webhookRequest("issue_comment", "real", defaultComment("/launch").JSON())); w.Code != http.StatusAccepted {
		t.Fatalf("signed command during the flood: %d %s", w.Code, w.Body)
	}
	large := defaultComment("/launch\n" + strings.Repeat("x", 90<<10)).JSON()
	if w := serve(in, webhookRequest("issue_comment", "large", large)); w.Code != http.StatusServiceUnavailable {
		t.Errorf("large signed delivery with the pool spent: %d, want 503", w.Code)
	}
	if n := len(q.Jobs()); n != 1 {
		t.Errorf("%d jobs queued, want 1", n)
	}
	if used := in.budget.large.Load(); used != in.budget.limit {
		t.Errorf("pool use %d, want exactly the limit %d", used, in.budget.limit)
	}
	releaseAll()
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusUnauthorized {
			t.Errorf("forged request answered %d, want 401", c)
		}
	}
	in.budget.shrink(in.budget.limit)
	budgetIdle(t, in)
}

// A sender that stalls mid-body stops keeping bytes after keepFor and is cut
// off soon after: a real delivery arrives whole within milliseconds.
func TestIntakeSlowSenderHoldsNothingForLong(t *testing.T) {
	in, _, _ := newTestIntake(t)
	srv := httptest.NewServer(in)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := defaultComment("/launch").JSON()
	start := time.Now()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nX-GitHub-Event: issue_comment\r\nX-GitHub-Delivery: slow\r\nX-Hub-Signature-256: %s\r\n\r\n%s",
		len(body), sign(testSecret, body), body[:10])
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took := time.Since(start); resp.StatusCode != http.StatusRequestTimeout || took > readTime(int64(len(body)))+time.Second {
		t.Errorf("stalled sender answered %d after %s, want 408 after about %s", resp.StatusCode, took, readTime(int64(len(body))))
	}
	budgetIdle(t, in)
}
