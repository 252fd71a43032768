package setup

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
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
	"github.com/packit/packit-launch/config"
)

var quiet = slog.New(slog.DiscardHandler)

// newPage is a setup page on an httptest server, as serve wires it: its
// listen address is the server's.
func newPage(t *testing.T, gh *githubtest.Server, env string, done func()) (*Page, *httptest.Server) {
	t.Helper()
	page := &Page{Manifest: packitlaunch.AppManifest, WebURL: gh.URL + "/", APIURL: gh.URL + "/", WebhookPath: "/api/github/webhooks",
		PublicURL: "https://bot.example.org", EnvFile: env, Done: done, Log: quiet, Trusted: []string{"packit/*"},
		Missing: []config.Setting{
			{Name: "GITHUB_APP_ID", How: "the App ID"},
			{Name: "GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH", How: "a key"},
			{Name: "GITHUB_WEBHOOK_SECRET", How: "the secret"},
			{Name: "LAUNCH_SOURCE_ID", How: "the id of your AWS source"},
		}}
	srv := httptest.NewUnstartedServer(nil)
	page.ListenAddr = srv.Listener.Addr().String()
	srv.Config.Handler = page.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return page, srv
}

var (
	tokenRE   = regexp.MustCompile(`name="token" value="([^"]+)"`)
	confirmRE = regexp.MustCompile(`action="([^"]+)"[\s\S]*name="manifest" value="([^"]+)"`)
)

// formToken loads the form and returns its token.
func formToken(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	body := get(t, srv.URL+"/")
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("form without a token: %s", body)
	}
	return m[1]
}

// The whole flow without a browser: the form, GitHub's (fake) App creation
// and redirect, the code exchange, .env written and Done called.
func TestManifestFlow(t *testing.T) {
	gh := githubtest.NewServer()
	defer gh.Close()
	env := filepath.Join(t.TempDir(), ".env")
	done := 0
	_, srv := newPage(t, gh, env, func() { done++ })
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	body := get(t, srv.URL+"/")
	for _, want := range []string{"as GitHub will call it", "smee-client --url CHANNEL-URL --target " + srv.URL + "/api/github/webhooks", "ngrok", "cloudflared",
		`name="name" required maxlength="34" value="packit-launch"`, "names are unique across all of GitHub", "any account"} {
		if !strings.Contains(body, want) {
			t.Errorf("form lacks %q", want)
		}
	}
	if strings.Contains(body, "gh webhook forward") {
		t.Error("the form names gh webhook forward, which does not forward an App's deliveries")
	}
	token := formToken(t, srv)
	// GitHub cannot deliver to this machine's loopback: refused, with the way out.
	resp, err := http.PostForm(srv.URL+"/setup/app", url.Values{"token": {token}, "url": {"http://127.0.0.1:3000"}, "name": {"x"}, "owner": {"personal"}})
	if b := read(t, resp, err); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(b, "cannot deliver webhooks to 127.0.0.1") ||
		!strings.Contains(b, `value="`+token+`"`) {
		t.Errorf("loopback URL: %d %s", resp.StatusCode, b)
	}
	resp, err = http.PostForm(srv.URL+"/setup/app", url.Values{"token": {token}, "url": {"https://bot.example.org"}, "name": {strings.Repeat("n", 35)}, "owner": {"personal"}})
	if b := read(t, resp, err); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(b, "1 to 34 characters") {
		t.Errorf("long name: %d %s", resp.StatusCode, b)
	}
	resp, err = http.PostForm(srv.URL+"/setup/app", url.Values{"token": {token}, "url": {"https://bot.example.org/"}, "name": {"packit-launch-team"},
		"owner": {"org"}, "org": {"packit"}, "installs": {"any"}})
	confirm := read(t, resp, err)
	m := confirmRE.FindStringSubmatch(confirm)
	if m == nil {
		t.Fatalf("confirm page: %s", confirm)
	}
	action, manifest := html.UnescapeString(m[1]), html.UnescapeString(m[2])
	if action != gh.URL+"/organizations/packit/settings/apps/new?state="+token {
		t.Errorf("form target %s", action)
	}
	if !strings.Contains(confirm, "any account can install it") {
		t.Errorf("confirm page does not say who may install: %s", confirm)
	}
	// GitHub (the fake) creates the App and sends the browser back with a code.
	resp, err = noFollow.PostForm(action, url.Values{"manifest": {manifest}})
	read(t, resp, err)
	back := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(back, srv.URL+"/setup/done?") {
		t.Fatalf("GitHub's answer: %d %s", resp.StatusCode, back)
	}
	apps := gh.ManifestApps()
	if len(apps) != 1 || apps[0].Org != "packit" {
		t.Fatalf("created %+v", apps)
	}
	got := apps[0].Manifest
	if got["hook_attributes"].(map[string]any)["url"] != "https://bot.example.org/api/github/webhooks" || got["name"] != "packit-launch-team" ||
		got["public"] != true || fmt.Sprint(got["callback_urls"]) != "[https://bot.example.org/login/callback]" {
		t.Errorf("manifest %v", got)
	}
	donePage := get(t, back)
	if !strings.Contains(donePage, "installations/new") || done != 1 {
		t.Fatalf("done page (%d): %s", done, donePage)
	}
	// What is still missing, and what is not any more.
	if !strings.Contains(donePage, "Still missing") || !strings.Contains(donePage, "LAUNCH_SOURCE_ID") || strings.Contains(donePage, "GITHUB_APP_ID") ||
		strings.Contains(donePage, "GITHUB_PRIVATE_KEY") || !strings.Contains(donePage, "<code>packit/*</code>") {
		t.Errorf("done page does not list what is missing: %s", donePage)
	}
	st, err := os.Stat(env)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf(".env: %v %v", st, err)
	}
	written, err := godotenv.Read(env)
	if err != nil || written["GITHUB_APP_ID"] != "1000" || written["GITHUB_WEBHOOK_SECRET"] != apps[0].WebhookSecret ||
		written["GITHUB_PRIVATE_KEY"] != string(gh.PrivateKeyPEM) || written["GITHUB_CLIENT_ID"] != "Iv1.fake" || len(written["GITHUB_CLIENT_SECRET"]) != 40 {
		t.Errorf(".env read back: %v %v", written, err)
	}
	// The link works once.
	resp, err = http.Get(back)
	if b := read(t, resp, err); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "Start again") {
		t.Errorf("second use of the link: %d %s", resp.StatusCode, b)
	}
}

// A smee.io channel takes deliveries only at its own URL: used as it is,
// with the client's command line to run.
func TestSmeeChannelUsedAsIs(t *testing.T) {
	gh := githubtest.NewServer()
	defer gh.Close()
	_, srv := newPage(t, gh, filepath.Join(t.TempDir(), ".env"), nil)
	resp, err := http.PostForm(srv.URL+"/setup/app", url.Values{"token": {formToken(t, srv)}, "url": {"https://smee.io/AbC123xyz"}, "name": {"packit-launch"}, "owner": {"personal"}})
	confirm := read(t, resp, err)
	m := confirmRE.FindStringSubmatch(confirm)
	if m == nil {
		t.Fatalf("confirm page: %s", confirm)
	}
	var manifest map[string]any
	if err := json.Unmarshal([]byte(html.UnescapeString(m[2])), &manifest); err != nil {
		t.Fatal(err)
	}
	if hook := manifest["hook_attributes"].(map[string]any)["url"]; hook != "https://smee.io/AbC123xyz" || manifest["public"] != false {
		t.Errorf("manifest %v", manifest)
	}
	if !strings.Contains(confirm, "npx smee-client --url https://smee.io/AbC123xyz --target "+srv.URL+"/api/github/webhooks") {
		t.Errorf("confirm page without the smee client's command: %s", confirm)
	}
}

// The page answers only its own host names, and only same-origin posts
// carrying its token: otherwise no manifest (whose redirect_url would send
// GitHub's one-time code elsewhere) and no state.
func TestOnlyItsOwnHostAndOrigin(t *testing.T) {
	gh := githubtest.NewServer()
	defer gh.Close()
	_, srv := newPage(t, gh, filepath.Join(t.TempDir(), ".env"), nil)
	token := formToken(t, srv)
	form := url.Values{"token": {token}, "url": {"https://attacker.example"}, "name": {"packit-launch"}, "owner": {"personal"}}
	post := func(host string, header map[string]string, form url.Values) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/setup/app", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if host != "" {
			req.Host = host
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		return resp.StatusCode, read(t, resp, err)
	}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, c := range []struct {
		name   string
		host   string
		header map[string]string
		form   url.Values
		status int
	}{
		{"foreign host (DNS rebinding)", "evil.example:" + port, nil, form, http.StatusMisdirectedRequest},
		{"foreign host, same-origin headers", "evil.example:" + port, map[string]string{"Origin": "http://evil.example:" + port, "Sec-Fetch-Site": "same-origin"}, form, http.StatusMisdirectedRequest},
		{"loopback name on another port", "localhost:1", nil, form, http.StatusMisdirectedRequest},
		{"cross-site browser post", "", map[string]string{"Origin": "https://attacker.example", "Sec-Fetch-Site": "cross-site"}, form, http.StatusForbidden},
		{"cross-origin post, old browser", "", map[string]string{"Origin": "https://attacker.example"}, form, http.StatusForbidden},
		{"no token", "", nil, url.Values{"url": {"https://attacker.example"}, "name": {"x"}}, http.StatusForbidden},
		{"forged token", "", nil, url.Values{"token": {strings.Repeat("0", 32)}, "url": {"https://attacker.example"}, "name": {"x"}}, http.StatusForbidden},
	} {
		status, body := post(c.host, c.header, c.form)
		if status != c.status || strings.Contains(body, `name="manifest"`) || strings.Contains(body, "redirect_url") {
			t.Errorf("%s: %d, want %d without a manifest: %s", c.name, status, c.status, body)
		}
	}
	// A foreign host gets no form either (nor its token).
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Host = "evil.example:" + port
	resp, err := http.DefaultClient.Do(req)
	if body := read(t, resp, err); resp.StatusCode != http.StatusMisdirectedRequest || strings.Contains(body, `name="token"`) {
		t.Errorf("GET with a foreign host: %d %s", resp.StatusCode, body)
	}
	// The page's own names all work: localhost, and PUBLIC_URL's host.
	for _, host := range []string{"localhost:" + port, "bot.example.org"} {
		status, body := post(host, map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}, form)
		m := confirmRE.FindStringSubmatch(body)
		if status != http.StatusOK || m == nil {
			t.Errorf("own host %s: %d %s", host, status, body)
			continue
		}
		want := "http://" + host + "/setup/done"
		if host == "bot.example.org" {
			want = "https://bot.example.org/setup/done" // PUBLIC_URL's scheme, behind a proxy ending TLS
		}
		if !strings.Contains(html.UnescapeString(m[2]), `"redirect_url":"`+want+`"`) {
			t.Errorf("own host %s: manifest %s, want redirect_url %s", host, html.UnescapeString(m[2]), want)
		}
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
