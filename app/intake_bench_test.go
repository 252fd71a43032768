package app

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// nonCommand is a 12 KB issue_comment that is not a command: the delivery
// intake sees most.
func nonCommand(b testing.TB) []byte {
	c := defaultComment("Looks good to me. " + strings.Repeat("Some detailed review prose about the change. ", 260))
	body := c.JSON()
	if len(body) < 12<<10 {
		b.Fatalf("payload is %d bytes, want ≥ 12 KB", len(body))
	}
	return body[:len(body):len(body)]
}

// BenchmarkIntakeNonCommand measures the handler alone: verify the
// signature, look at the event and body, answer 204.
func BenchmarkIntakeNonCommand(b *testing.B) {
	benchNonCommand(b, NewIntake(testSecret, "", nil, nil, quiet))
}

// BenchmarkRoutesNonCommand is BenchmarkIntakeNonCommand through the HTTP
// surface (router and delivery counter), without the network.
func BenchmarkRoutesNonCommand(b *testing.B) {
	benchNonCommand(b, Routes("/api/github/webhooks", NewIntake(testSecret, "", nil, nil, quiet), nil, quiet))
}

// benchNonCommand sends h a signed non-command comment per iteration.
func benchNonCommand(b *testing.B, h http.Handler) {
	body := nonCommand(b)
	req := webhookRequest("issue_comment", "bench", body)
	rd := bytes.NewReader(body)
	w := &discardWriter{h: http.Header{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = io.NopCloser(rd)
		w.code = 0
		h.ServeHTTP(w, req)
		if w.code != http.StatusNoContent {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkIntakeNonCommandHTTP goes through a real HTTP server on
// 127.0.0.1 with 8 concurrent connections per core (run with -cpu 1 for the
// per-core figure).
func BenchmarkIntakeNonCommandHTTP(b *testing.B) {
	body := nonCommand(b)
	srv := httptest.NewServer(Routes("/api/github/webhooks", NewIntake(testSecret, "", nil, nil, quiet), nil, quiet))
	defer srv.Close()
	sig := sign(testSecret, body)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	b.SetParallelism(8)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/github/webhooks", bytes.NewReader(body))
			req.Header.Set("X-GitHub-Event", "issue_comment")
			req.Header.Set("X-GitHub-Delivery", "bench")
			req.Header.Set("X-Hub-Signature-256", sig)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
