package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/internal/syncbuf"
	"github.com/packit/packit-launch/store/storetest"
)

// inDir runs the test in a fresh working directory (run reads ./.env).
func inDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	// The AWS SDK must not look for an EC2 instance role: that is a network call off this machine.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))
	t.Setenv("LOG_FORMAT", "text") // the tests read the log as text lines; TestLogFormats reads JSON
	t.Setenv("LOG_LEVEL", "")
	return dir
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestConfigValidate(t *testing.T) {
	examples, _ := filepath.Abs("../../examples")
	inDir(t)
	code, out, errs := runCmd("config", "validate", "--config", filepath.Join(examples, "packit-launch.yaml"),
		"--repo", filepath.Join(examples, ".packit-launch.yaml"), "--for", "packit/ogr")
	if code != 0 || !strings.Contains(out, "repo config") || !strings.Contains(out, "not set: GITHUB_APP_ID") {
		t.Fatalf("code %d\n%s\n%s", code, out, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("profiles: {p: {max_lifetime: 1h}}\nprojects: [{repos: [x], profiles: [q]}]\n"), 0o600)
	code, _, errs = runCmd("config", "validate", "--config", bad)
	for _, want := range []string{"profiles.p.instance_types", "profiles.p.regions", `unknown profile "q"`, `pattern "x"`} {
		if code != exitUsage || !strings.Contains(errs, want) {
			t.Errorf("code %d, want %d and %q in:\n%s", code, exitUsage, want, errs)
		}
	}
}

func TestDotEnvErrorsNeverQuoteTheFile(t *testing.T) {
	dir := inDir(t)
	os.WriteFile(filepath.Join(dir, ".env"), []byte("GITHUB_PRIVATE_KEY=-----BEGIN RSA\nMIIEsup3rs3cret+key\n"), 0o600)
	code, out, errs := runCmd("serve")
	if code != exitUsage || !strings.Contains(errs, ".env cannot be parsed") || strings.Contains(out+errs, "sup3rs3cret") {
		t.Fatalf("code %d\n%s%s", code, out, errs)
	}
}

func TestWorkerNeedsSharedRedisAndCredentials(t *testing.T) {
	inDir(t)
	t.Setenv("REDIS_URL", "")
	code, _, errs := runCmd("worker")
	if code != exitUsage || !strings.Contains(errs, "REDIS_URL") {
		t.Errorf("worker without REDIS_URL: code %d\n%s", code, errs)
	}
}

func TestUsage(t *testing.T) {
	if code, _, errs := runCmd("frobnicate"); code != exitUsage || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: %d %s", code, errs)
	}
	if code, out, _ := runCmd("help"); code != 0 || !strings.Contains(out, "packit-launch serve") {
		t.Errorf("help: %d %s", code, out)
	}
}

// TestServeStartsOnTheExampleConfig is `make run` on a machine with no
// settings: it starts on the embedded store, lists what is missing, answers
// health checks, and does not serve the webhook.
func TestServeStartsOnTheExampleConfig(t *testing.T) {
	examples, _ := filepath.Abs("../../examples")
	inDir(t)
	for _, k := range []string{"GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY_PATH", "GITHUB_WEBHOOK_SECRET", "REDIS_URL", "LAUNCH_CLIENT_ID", "LAUNCH_OFFLINE_TOKEN", "LAUNCH_IDENTITY",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	addr, logs, stop := startRun(t, "serve", "--config", filepath.Join(examples, "packit-launch.yaml"))
	// Not ready, and /readyz says which part is missing (first the webhook).
	expectEndpoints(t, addr, http.StatusServiceUnavailable, "not ready: the webhook endpoint is not served: GITHUB_WEBHOOK_SECRET is not set")
	resp, err := http.Post("http://"+addr+"/api/github/webhooks", "application/json", strings.NewReader("{}"))
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("webhook without a secret: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	for _, want := range []string{"setting=GITHUB_APP_ID", "setting=GITHUB_WEBHOOK_SECRET", "setting=LAUNCH_SOURCE_ID", "NOT durable", "webhook endpoint not served"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q", want)
		}
	}
	// No AWS credentials: said once, with what to set, and no sweep tries (and fails) meanwhile.
	if n := strings.Count(logs.String(), "no AWS credentials found: set AWS_ACCESS_KEY_ID"); n != 1 {
		t.Errorf("the missing AWS credentials were told %d times:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "msg=sweep") {
		t.Errorf("a sweep ran without AWS credentials:\n%s", logs.String())
	}
}

// A separate worker has no webhook but answers probes and serves metrics.
func TestWorkerServesHealthAndMetrics(t *testing.T) {
	examples, _ := filepath.Abs("../../examples")
	dir := inDir(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemPath := filepath.Join(dir, "app.pem")
	os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	for k, v := range map[string]string{"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": "", "GITHUB_PRIVATE_KEY_PATH": pemPath,
		"GITHUB_WEBHOOK_SECRET": "", "REDIS_URL": storetest.StartRedis(t), "LAUNCH_CLIENT_ID": "", "LAUNCH_OFFLINE_TOKEN": "", "LAUNCH_IDENTITY": "",
		// AWS access of its own (it sweeps), and GitHub (it looks for missed
		// deliveries), pointed where nothing answers.
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "GITHUB_API_URL": "http://127.0.0.1:1/"} {
		t.Setenv(k, v)
	}
	addr, logs, stop := startRun(t, "worker", "--config", filepath.Join(examples, "packit-launch.yaml"))
	expectEndpoints(t, addr, http.StatusOK, "ready")
	if code := stop(); code != 0 {
		t.Errorf("exit code %d\n%s", code, logs.String())
	}
	if !strings.Contains(logs.String(), "worker started") {
		t.Errorf("worker did not start:\n%s", logs.String())
	}
}

// startRun runs the command until stop is called and returns the address
// it listens on (LISTEN_ADDR is set to a free port).
func startRun(t *testing.T, args ...string) (addr string, logs *syncbuf.Buffer, stop func() int) {
	t.Helper()
	t.Setenv("LISTEN_ADDR", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, logs, logs) }()
	stop = func() int { cancel(); return <-done }
	addrRE := regexp.MustCompile(`msg=listening addr=(\S+)`)
	for deadline := time.Now().Add(20 * time.Second); addr == ""; {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			stop()
			t.Fatalf("%s did not start:\n%s", args[0], logs.String())
		} else {
			time.Sleep(20 * time.Millisecond) // waiting for a server to come up
		}
	}
	return addr, logs, stop
}

// expectEndpoints checks the probes and the metrics page an operator scrapes.
func expectEndpoints(t *testing.T, addr string, readyCode int, ready string) {
	t.Helper()
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": ready, "/metrics": "packit_launch_managed_vms"} {
		code := http.StatusOK
		if path == "/readyz" {
			code = readyCode
		}
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != code || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %q, want %d with %q", path, resp.StatusCode, body, code, want)
		}
	}
}

// The production binary links none of the fakes, nor the testing package:
// the demo that plays against them is built only with -tags demo.
func TestBinaryShipsNoTestCode(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "testing" || dep == "net/http/httptest" || strings.HasSuffix(dep, "test") && strings.HasPrefix(dep, "github.com/packit/packit-launch/") {
			t.Errorf("the binary links %s", dep)
		}
	}
}

// Off a terminal the log is JSON lines a collector can ingest, at the
// level asked; a wrong LOG_FORMAT or LOG_LEVEL is refused at once.
func TestLogFormats(t *testing.T) {
	examples, _ := filepath.Abs("../../examples")
	inDir(t)
	t.Setenv("LOG_FORMAT", "")
	t.Setenv("GITHUB_APP_ID", "")
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", filepath.Join(examples, "packit-launch.yaml")}, io.Discard, logs)
	}()
	var lines []map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lines = lines[:0]
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("not a JSON line: %q", line)
			}
			lines = append(lines, m)
		}
		if slices.ContainsFunc(lines, func(m map[string]any) bool { return m["msg"] == "listening" }) || time.Now().After(deadline) {
			break
		}
	}
	cancel()
	<-done
	if !slices.ContainsFunc(lines, func(m map[string]any) bool {
		return m["msg"] == "setting missing" && m["setting"] == "GITHUB_APP_ID" && m["level"] == "ERROR"
	}) {
		t.Errorf("no JSON line names the missing GITHUB_APP_ID: %v", lines)
	}
	for _, bad := range [][2]string{{"LOG_FORMAT", "xml"}, {"LOG_LEVEL", "loud"}} {
		t.Setenv(bad[0], bad[1])
		if code, _, errs := runCmd("help"); code != exitUsage || !strings.Contains(errs, bad[0]) {
			t.Errorf("%s=%s: code %d, %q", bad[0], bad[1], code, errs)
		}
		t.Setenv(bad[0], "")
	}
	if l, err := newLogger(io.Discard, "text", "error"); err != nil || l.Enabled(context.Background(), slog.LevelWarn) {
		t.Errorf("LOG_LEVEL=error still logs warnings (%v)", err)
	}
}

// The setup page shows only while the App settings are missing, and by
// default only on a loopback address: anyone reaching it could register an
// App of theirs as this bot's.
func TestSetupPageOnlyWhereItIsSafe(t *testing.T) {
	quietLog := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		mode, addr string
		appID      int64
		want       bool
	}{
		{"auto", "127.0.0.1:3000", 0, true},
		{"auto", "localhost:3000", 0, true},
		{"auto", "0.0.0.0:3000", 0, false},
		{"auto", "10.1.2.3:3000", 0, false},
		{"on", "0.0.0.0:3000", 0, true},
		{"off", "127.0.0.1:3000", 0, false},
		{"on", "127.0.0.1:3000", 42, false}, // set up already
	} {
		cfg := &config.Server{ListenAddr: c.addr}
		cfg.GitHub.AppID = c.appID
		got := setupPage(cfg, setupSettings{mode: c.mode, webURL: "https://github.com/"}, c.addr, nil, quietLog) != nil
		if got != c.want {
			t.Errorf("SETUP_PAGE=%s on %s (app %d): page %v, want %v", c.mode, c.addr, c.appID, got, c.want)
		}
	}
	if _, err := readSetupSettings(map[string]string{"SETUP_PAGE": "maybe"}); err == nil {
		t.Error("SETUP_PAGE=maybe accepted")
	}
	if _, err := readSetupSettings(map[string]string{"PUBLIC_URL": "bot.example.org"}); err == nil || !strings.Contains(err.Error(), "PUBLIC_URL") {
		t.Errorf("PUBLIC_URL without a scheme: %v", err)
	}
}
