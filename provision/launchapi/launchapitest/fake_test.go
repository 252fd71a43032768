package launchapitest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestManualClock(t *testing.T) {
	c := NewManualClock(time.Time{})
	start := c.Now()
	c.Advance(time.Minute)
	if err := c.Sleep(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := c.Now().Sub(start); got != 90*time.Second {
		t.Fatalf("clock moved %s, want 1m30s", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Sleep(ctx, time.Hour); err == nil || c.Now().Sub(start) != 90*time.Second {
		t.Fatal("Sleep with a done context must fail without moving the clock")
	}
}

func TestFaultTimes(t *testing.T) {
	f := New(Options{})
	tok := f.IssueToken("o")
	f.InjectFault(Fault{Method: http.MethodGet, Path: "/pubkeys", Status: 503, Times: 2})
	f.InjectFault(Fault{Path: "/sources", Status: 502, Times: -1})
	get := func(path string) int {
		req := httptest.NewRequest(http.MethodGet, APIPrefix+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Header().Get(FaultHeader) == "" {
			t.Errorf("fault answer not marked")
		}
		return rec.Code
	}
	for i, want := range []int{503, 503, 200, 200} {
		if got := get("/pubkeys"); got != want {
			t.Errorf("pubkeys call %d = %d, want %d", i, got, want)
		}
	}
	for range 3 {
		if got := get("/sources"); got != 502 {
			t.Errorf("unlimited fault stopped: %d", got)
		}
	}
	f.ClearFaults()
	if got := get("/sources"); got != 200 {
		t.Errorf("after ClearFaults: %d", got)
	}
	if n := len(f.Requests()); n != 8 {
		t.Errorf("recorded %d requests, want 8", n)
	}
}
