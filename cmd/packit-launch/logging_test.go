package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/internal/syncbuf"
	"github.com/packit/packit-launch/store/storetest"
)

// With LOG_FORMAT=json every line is JSON, the libraries' own too: here
// go-redis's, when the bot's Redis goes away under a running bot. (And a
// webhook secret in the old OLD,NEW form is explained at start.)
func TestJSONLogsWithRedisDown(t *testing.T) {
	examples, _ := filepath.Abs("../../examples")
	inDir(t)
	rs := storetest.NewServer(t)
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	for k, v := range map[string]string{"LOG_FORMAT": "json", "REDIS_URL": rs.URL, "LISTEN_ADDR": "127.0.0.1:0", "GITHUB_WEBHOOK_SECRET": "old,new",
		"GITHUB_APP_ID": fmt.Sprint(gh.AppID), "GITHUB_PRIVATE_KEY": string(gh.PrivateKeyPEM), "GITHUB_API_URL": gh.URL + "/"} {
		t.Setenv(k, v)
	}
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", filepath.Join(examples, "packit-launch.yaml")}, logs, logs)
	}()
	stop := sync.OnceValue(func() int { cancel(); return <-done })
	t.Cleanup(func() { stop() })

	lines := func() []map[string]any {
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("not a JSON line: %q", line)
			}
			out = append(out, m)
		}
		return out
	}
	find := func(msg string) map[string]any {
		for _, m := range lines() {
			if m["msg"] == msg {
				return m
			}
		}
		return nil
	}
	var addr string
	for deadline := time.Now().Add(20 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if m := find("listening"); m != nil {
			addr, _ = m["addr"].(string)
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
	}
	rs.Kill()
	for deadline := time.Now().Add(30 * time.Second); find("redis client") == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no line of go-redis's own in 30 s:\n%s", logs.String())
		}
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil { // a Redis call, which go-redis fails to dial for
			resp.Body.Close()
		}
	}
	stop()
	lines() // every line, to the end, is JSON
	if m := find(commaSecret); m == nil || m["level"] != "WARN" {
		t.Errorf("a secret with a comma and no previous one is not explained: %v", m)
	}
}

// A value longer than maxLogValue, such as a refused comment quoted whole,
// is cut in the log and says how long it was; so is an error's text.
func TestLogValuesAreCapped(t *testing.T) {
	var buf bytes.Buffer
	l, err := newLogger(&buf, "json", "")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 66_000) // 132,000 bytes, a comment's worth
	l.Info("command refused", "line", long, "err", errors.New(long), "short", "kept")
	if buf.Len() > 3*maxLogValue {
		t.Errorf("a %d-byte line", buf.Len())
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"line", "err"} {
		if v, _ := m[k].(string); !strings.HasSuffix(v, "…[cut: 132000 bytes in all]") || !strings.HasPrefix(v, "éé") {
			t.Errorf("%s = %.80q…", k, v)
		}
	}
	if m["short"] != "kept" {
		t.Errorf("short = %v", m["short"])
	}
	// The standard log writes through the bot's once run has set it.
	buf.Reset()
	slog.SetDefault(l)
	log.Printf("http: TLS handshake error from 192.0.2.1:1234: EOF")
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || !strings.Contains(fmt.Sprint(m["msg"]), "TLS handshake error") {
		t.Errorf("the standard log wrote %q", buf.String())
	}
}
