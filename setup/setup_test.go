package setup

import (
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/joho/godotenv"

	packitlaunch "github.com/packit/packit-launch"
	"github.com/packit/packit-launch/app/githubtest"
)

var quiet = slog.New(slog.DiscardHandler)

// The whole flow without a browser: the form, GitHub's (fake) App creation
// and redirect, the code exchange, .env written and Done called.
func TestManifestFlow(t *testing.T) {
	gh := githubtest.NewServer()
	defer gh.Close()
	env := filepath.Join(t.TempDir(), ".env")
	done := 0
	page := &Page{Manifest: packitlaunch.AppManifest, WebURL: gh.URL + "/", APIURL: gh.URL + "/", WebhookPath: "/api/github/webhooks",
		EnvFile: env, Done: func() { done++ }, Log: quiet}
	srv := httptest.NewServer(page.Handler())
	defer srv.Close()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	body := get(t, srv.URL+"/")
	if !strings.Contains(body, "The bot's public URL") || !strings.Contains(body, "tunnel") {
		t.Errorf("form: %s", body)
	}
	// GitHub cannot deliver to this machine's loopback: refused, with the way out.
	resp, err := http.PostForm(srv.URL+"/setup/app", url.Values{"url": {"http://127.0.0.1:3000"}, "owner": {"personal"}})
	if b := read(t, resp, err); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(b, "cannot deliver webhooks to 127.0.0.1") {
		t.Errorf("loopback URL: %d %s", resp.StatusCode, b)
	}
	resp, err = http.PostForm(srv.URL+"/setup/app", url.Values{"url": {"https://bot.example.org/"}, "owner": {"org"}, "org": {"packit"}})
	confirm := read(t, resp, err)
	m := regexp.MustCompile(`action="([^"]+)"[\s\S]*name="manifest" value="([^"]+)"`).FindStringSubmatch(confirm)
	if m == nil {
		t.Fatalf("confirm page: %s", confirm)
	}
	action, manifest := html.UnescapeString(m[1]), html.UnescapeString(m[2])
	if !strings.HasPrefix(action, gh.URL+"/organizations/packit/settings/apps/new?state=") {
		t.Errorf("form target %s", action)
	}
	// GitHub (the fake) creates the App and sends the browser back with a code.
	resp, err = noFollow.PostForm(action, url.Values{"manifest": {manifest}})
	read(t, resp, err)
	back := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(back, srv.URL+"/setup/done?") {
		t.Fatalf("GitHub's answer: %d %s", resp.StatusCode, back)
	}
	apps := gh.ManifestApps()
	if len(apps) != 1 || apps[0].Org != "packit" || apps[0].Manifest["hook_attributes"].(map[string]any)["url"] != "https://bot.example.org/api/github/webhooks" ||
		apps[0].Manifest["name"] != "packit-launch" {
		t.Fatalf("created %+v", apps)
	}
	if b := get(t, back); !strings.Contains(b, "installations/new") || done != 1 {
		t.Fatalf("done page (%d): %s", done, b)
	}
	st, err := os.Stat(env)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf(".env: %v %v", st, err)
	}
	written, err := godotenv.Read(env)
	if err != nil || written["GITHUB_APP_ID"] != "1000" || written["GITHUB_WEBHOOK_SECRET"] != apps[0].WebhookSecret ||
		written["GITHUB_PRIVATE_KEY"] != string(gh.PrivateKeyPEM) {
		t.Errorf(".env read back: %v %v", written, err)
	}
	// The link works once.
	resp, err = http.Get(back)
	if b := read(t, resp, err); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "Start again") {
		t.Errorf("second use of the link: %d %s", resp.StatusCode, b)
	}
}

// An existing value is never overwritten, and says so.
func TestWriteEnvKeepsExistingValues(t *testing.T) {
	env := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(env, []byte("GITHUB_WEBHOOK_SECRET=mine\nREDIS_URL=redis://x\n"), 0o644)
	kept, err := writeEnv(env, map[string]string{"GITHUB_WEBHOOK_SECRET": "theirs", "GITHUB_APP_ID": "7", "GITHUB_PRIVATE_KEY": "-----BEGIN\n\"k\\\"\n-----END"})
	if err != nil || len(kept) != 1 || kept[0] != "GITHUB_WEBHOOK_SECRET" {
		t.Fatalf("kept %v %v", kept, err)
	}
	got, _ := godotenv.Read(env)
	if got["GITHUB_WEBHOOK_SECRET"] != "mine" || got["GITHUB_APP_ID"] != "7" || got["REDIS_URL"] != "redis://x" || got["GITHUB_PRIVATE_KEY"] != "-----BEGIN\n\"k\\\"\n-----END" {
		t.Errorf("read back %q", got)
	}
	if st, _ := os.Stat(env); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	return read(t, resp, err)
}

func read(t *testing.T, resp *http.Response, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Posting the form in a loop costs bounded memory.
func TestStatesAreBounded(t *testing.T) {
	p := &Page{}
	for range 10 * maxStates {
		p.newState()
	}
	if n := len(p.states); n > maxStates {
		t.Errorf("%d states remembered, want at most %d", n, maxStates)
	}
}
