package app

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/packit/packit-launch/store"
)

// memDeliveries is an in-memory dedupe for fuzzing intake without Redis.
type memDeliveries struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memDeliveries) ClaimDelivery(_ context.Context, id string) (bool, store.Redelivery, error, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[id] {
		return false, store.Redelivery{}, nil, nil
	}
	m.seen[id] = true
	return true, store.Redelivery{}, nil, nil
}
func (m *memDeliveries) ConfirmDelivery(context.Context, string) error { return nil }
func (m *memDeliveries) ForgetDelivery(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, id)
	return nil
}

// countingQueue counts what intake queues.
type countingQueue struct {
	mu   sync.Mutex
	jobs int
}

func (q *countingQueue) Enqueue(context.Context, store.Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs++
	return nil
}

// FuzzIntake: whatever anyone POSTs to the webhook, intake never panics,
// never answers 5xx (the store here is up), and never queues a request
// whose signature is not GitHub's.
func FuzzIntake(f *testing.F) {
	for _, seed := range []struct {
		event string
		body  []byte
		sign  bool
	}{
		{"issue_comment", defaultComment("/launch").JSON(), true},
		{"issue_comment", defaultComment("/launch").JSON(), false},
		{"check_run", buttonPayload("packit/ogr", "k3x9p2ab", "terminate", "alice", 77, 7), true},
		{"pull_request", prClosedPayload("packit/ogr", 7), true},
		{"installation", []byte(`{"action":"deleted","installation":{"id":5}}`), true},
		{"ping", []byte(`{"zen":"x"}`), true},
		{"issue_comment", []byte(`{"action":"created","comment":{"body":"/launch"`), true},
		{"issue_comment", []byte(`/launch`), true},
		{"", nil, false},
	} {
		f.Add(seed.event, seed.body, seed.sign, "d1")
	}
	f.Fuzz(func(t *testing.T, event string, body []byte, signed bool, delivery string) {
		q := &countingQueue{}
		in := NewIntake(testSecret, "", &memDeliveries{seen: map[string]bool{}}, q, quiet)
		in.now = func() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) }
		r := httptest.NewRequest(http.MethodPost, "/api/github/webhooks", bytes.NewReader(body))
		r.Header.Set("X-GitHub-Event", event)
		r.Header.Set("X-GitHub-Delivery", delivery)
		sig := "sha256=" + string(bytes.Repeat([]byte("ab"), 32))
		if signed {
			sig = sign(testSecret, body)
		}
		r.Header.Set("X-Hub-Signature-256", sig)
		w := serve(in, r)
		if w.Code >= 500 {
			t.Fatalf("event %q, body %q: answered %d", event, body, w.Code)
		}
		if !signed && (q.jobs != 0 || w.Code != http.StatusUnauthorized) {
			t.Fatalf("unsigned request: answered %d, %d jobs queued", w.Code, q.jobs)
		}
	})
}
