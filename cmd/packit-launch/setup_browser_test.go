package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/joho/godotenv"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/internal/syncbuf"
)

// `make run` on a fresh machine, in a real browser: the setup page
// registers the App on (the fake) GitHub, writes .env, and the running bot
// takes deliveries signed with the new App's secret, without a restart.
// SCREENSHOT=path saves the setup page as a PNG (README's picture).
func TestSetupPageInABrowser(t *testing.T) {
	browser := chromium(t)
	examples, _ := filepath.Abs("../../examples")
	dir := inDir(t)
	gh := githubtest.NewServer()
	defer gh.Close()
	addr := freeAddr(t) // the same address after the bot starts again
	for k, v := range map[string]string{"LISTEN_ADDR": addr, "GITHUB_WEB_URL": gh.URL + "/", "GITHUB_API_URL": gh.URL + "/"} {
		t.Setenv(k, v)
	}
	// Unset, not empty: the environment wins over .env, even with an empty value.
	for _, k := range []string{"GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY_PATH", "GITHUB_WEBHOOK_SECRET", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET",
		"REDIS_URL", "SETUP_PAGE", "PUBLIC_URL", "LAUNCH_SOURCE_ID"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", filepath.Join(examples, "packit-launch.yaml")}, os.Stdout, logs)
	}()
	defer func() { cancel(); <-done }()
	waitServing(t, "http://"+addr+"/healthz", logs)

	// evil.test and attacker.test resolve to this machine, as a DNS
	// rebinding or a hostile page in the operator's browser would.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1000, 900),
		chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1, MAP attacker.test 127.0.0.1"))
	actx, stopAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer stopAlloc()
	bctx, stopBrowser := chromedp.NewContext(actx)
	defer stopBrowser()
	bctx, stopTimeout := context.WithTimeout(bctx, 60*time.Second)
	defer stopTimeout()
	_, port, _ := net.SplitHostPort(addr)

	// A foreign Host gets neither the form nor a manifest.
	if err := chromedp.Do(bctx, chromedp.Navigate("http://evil.test:"+port+"/")); err != nil {
		t.Fatalf("browser: %v", err)
	}
	foreign, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(foreign, "answers only at its own address") || strings.Contains(foreign, "webhook URL") {
		t.Errorf("the page under a foreign name: %s", foreign)
	}
	// A hostile page posting the form cross-site is refused.
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form id="f" method="post" action="http://%s/setup/app"><input name="url" value="https://attacker.example">
<input name="name" value="packit-launch"><input name="owner" value="personal"></form><script>document.getElementById("f").submit()</script>`, addr)
	}))
	defer attacker.Close()
	_, attackerPort, _ := net.SplitHostPort(attacker.Listener.Addr().String())
	if err := chromedp.Do(bctx, chromedp.Navigate("http://attacker.test:"+attackerPort+"/"),
		chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "Setup did not finish")]`))); err != nil {
		t.Fatalf("browser: %v\nbot log:\n%s", err, logs.String())
	}
	crossSite, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(crossSite, "sent from another site") {
		t.Errorf("a cross-site post: %s", crossSite)
	}
	if n := len(gh.ManifestApps()); n != 0 {
		t.Fatalf("%d apps created by foreign requests", n)
	}

	// The operator's own flow, on the page's own address.
	create := chromedp.Search(`//button[contains(., "Create the GitHub App")]`)
	if err := chromedp.Do(bctx,
		chromedp.Navigate("http://"+addr+"/"),
		chromedp.WaitVisible(chromedp.ID("url")),
		chromedp.SendKeys(chromedp.ID("url"), "https://launch.example.org"),
		chromedp.SetValue(chromedp.ID("name"), "packit-launch-ci"),
		chromedp.Click(chromedp.CSS(`input[name=installs][value=any]`)),
	); err != nil {
		t.Fatalf("browser: %v\nbot log:\n%s", err, logs.String())
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(create),
		chromedp.Click(create),
		chromedp.WaitVisible(chromedp.Search(`//a[contains(., "Install the App")]`)),
	); err != nil {
		t.Fatalf("browser: %v\nbot log:\n%s", err, logs.String())
	}
	finished, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil {
		t.Fatal(err)
	}
	if p := os.Getenv("SCREENSHOT"); p != "" {
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(finished, "is created") || !strings.Contains(finished, "Still missing") || !strings.Contains(finished, "LAUNCH_SOURCE_ID") {
		t.Errorf("last page: %s", finished)
	}
	apps := gh.ManifestApps()
	if len(apps) != 1 || apps[0].Manifest["hook_attributes"].(map[string]any)["url"] != "https://launch.example.org/api/github/webhooks" ||
		apps[0].Manifest["name"] != "packit-launch-ci" || apps[0].Manifest["public"] != true {
		t.Fatalf("apps created: %+v", apps)
	}
	env, err := godotenv.Read(filepath.Join(dir, ".env"))
	if err != nil || env["GITHUB_APP_ID"] != "1000" || env["GITHUB_WEBHOOK_SECRET"] != apps[0].WebhookSecret || !strings.Contains(env["GITHUB_PRIVATE_KEY"], "PRIVATE KEY") ||
		env["GITHUB_CLIENT_ID"] == "" || env["GITHUB_CLIENT_SECRET"] == "" {
		t.Fatalf(".env: %v %v", env, err)
	}
	if st, _ := os.Stat(filepath.Join(dir, ".env")); st.Mode().Perm() != 0o600 {
		t.Errorf(".env mode %v", st.Mode())
	}
	// The bot started again with the new settings: a ping signed with the
	// App's secret is taken.
	body := []byte(`{"zen":"Design for failure.","hook_id":1}`)
	mac := hmac.New(sha256.New, []byte(apps[0].WebhookSecret))
	mac.Write(body)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/github/webhooks", strings.NewReader(string(body)))
		req.Header.Set("X-GitHub-Event", "ping")
		req.Header.Set("X-GitHub-Delivery", "setup-ping")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bot never took a ping signed with the new secret (%v)\n%s", err, logs.String())
		}
	}
	// The page is gone once the App is set up.
	if resp, err := http.Get("http://" + addr + "/"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("setup page after setup: %v %v", resp, err)
	}
	if strings.Contains(logs.String(), apps[0].WebhookSecret) || strings.Contains(logs.String(), "PRIVATE KEY") || strings.Contains(logs.String(), env["GITHUB_CLIENT_SECRET"]) {
		t.Error("the log shows a secret")
	}
}

// chromium is Debian's headless browser; make test installs it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on this machine: run `make test` (it installs it), or apt-get install chromium")
	return ""
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitServing(t testing.TB, url string, logs *syncbuf.Buffer) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bot never served %s:\n%s", url, logs.String())
		}
	}
}
