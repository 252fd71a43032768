package web

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/store"
)

const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(2)>&amp;`

func testServer(t *testing.T) *Server {
	t.Helper()
	cfg := &config.Server{Web: config.Web{PublicURL: "https://launch.example.org", SessionKey: config.Secret(strings.Repeat("k", 32))},
		GitHub: config.GitHub{ClientID: "Iv1.x", ClientSecret: "s"}, Operators: []string{"ops"}}
	s, err := New(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Whatever a commenter, a repository or another service wrote reaches the
// page as text: no element, attribute or entity of theirs.
func TestHostileTextRendersInert(t *testing.T) {
	s := testServer(t)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	l := &store.Launch{ID: "abc123", Repo: "o/" + hostile, PR: 7, Owner: hostile, Machine: hostile, Image: hostile, InstanceType: hostile, Region: hostile,
		Command: "/launch " + hostile, State: store.StateFailed, Failure: hostile, EndReason: hostile, SSHUser: hostile, PublicIPv4: hostile,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), HardExpiresAt: now.Add(2 * time.Hour),
		Events: []store.Event{{At: now, Name: "accept"}, {At: now, Name: "run"}, {At: now, Name: hostile}, {At: now, Name: "fail"}}}
	sess := &session{Login: hostile, CSRF: hostile}
	for name, page := range map[string]string{
		"story":    layout("t", sess, true, s.story(sess, l, hostile, hostile)),
		"problem":  layout(hostile, sess, false, ""),
		"timeline": s.story(sess, l, "", ""),
	} {
		for _, bad := range []string{"<script", "<img", "%!"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s: hostile text rendered as markup (%q):\n%s", name, bad, page)
			}
		}
		if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the hostile text is not shown as text:\n%s", name, page)
		}
	}
}

func TestLoginReturnsOnlyToThisSite(t *testing.T) {
	for next, want := range map[string]string{
		"/launches/abc": "/launches/abc", "": "/launches", "https://evil.test/": "/launches", "//evil.test/x": "/launches",
		`/\evil.test`: "/launches", "javascript:alert(1)": "/launches", "/fleet?x=1": "/fleet?x=1",
	} {
		if got := localPath(next); got != want {
			t.Errorf("localPath(%q) = %q, want %q", next, got, want)
		}
	}
}

func TestSessionCookiesAreSealed(t *testing.T) {
	s := testServer(t)
	v, err := s.seal.seal(sessionCookie, session{Login: "alice", Token: "ghu_secret"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "ghu_secret") || strings.Contains(v, "alice") {
		t.Fatal("the cookie shows its content")
	}
	var got session
	if err := s.seal.open(sessionCookie, v, &got); err != nil || got.Login != "alice" {
		t.Fatalf("open: %+v, %v", got, err)
	}
	if s.seal.open(loginCookie, v, &got) == nil {
		t.Error("a session cookie opened as another cookie")
	}
	tampered := []byte(v)
	tampered[len(tampered)/2] ^= 1
	if s.seal.open(sessionCookie, string(tampered), &got) == nil {
		t.Error("a tampered cookie opened")
	}
	other := testServer(t)
	other.seal, _ = newSealer(strings.Repeat("z", 32))
	if other.seal.open(sessionCookie, v, &got) == nil {
		t.Error("another key opened the cookie")
	}
}

func TestReadyQuantileFromBuckets(t *testing.T) {
	counts := make([]int64, len(store.ReadyBuckets)+1)
	if !math.IsNaN(readyQuantile(counts, 0.5)) {
		t.Error("a day without launches has a quantile")
	}
	counts[1], counts[3] = 9, 1 // nine within 30 s, one within 60 s
	if p50, p90, p99 := readyQuantile(counts, 0.5), readyQuantile(counts, 0.9), readyQuantile(counts, 0.99); p50 != 30 || p90 != 30 || p99 != 60 {
		t.Errorf("p50 %v p90 %v p99 %v", p50, p90, p99)
	}
}

func TestChartsDrawTheirNumbers(t *testing.T) {
	svg := barChart("launches", []string{"12-05", "12-06"}, []series{{"running", "#1a7f37", []float64{3, 7}}, {"failed", "#cf222e", []float64{0, 1}}}, 10)
	if strings.Count(svg, "<rect x=") != 3+2 || !strings.Contains(svg, "12-06 running: 7") || !strings.Contains(svg, "budget 10") {
		t.Errorf("bar chart:\n%s", svg)
	}
	line := lineChart("ready", []string{"a", "b", "c"}, []series{{"p50", "#0969da", []float64{1, math.NaN(), 2}}})
	if strings.Count(line, "<circle") != 2 || !strings.Contains(line, "<polyline") {
		t.Errorf("line chart:\n%s", line)
	}
	if niceTop(7) != 10 || niceTop(0) != 1 || niceTop(120) != 200 || niceTop(1) != 1 {
		t.Errorf("niceTop: %v %v %v %v", niceTop(7), niceTop(0), niceTop(120), niceTop(1))
	}
}
