// Package setup is the first-run page: while the GitHub App settings are
// missing, it registers a new GitHub App from the manifest (app.yml)
// through GitHub's manifest flow, writes its credentials to .env and lets
// the server start with them, as a Probot app does.
//
// Whoever drives the page gets the new App's private key, so it answers
// only its own host names (a DNS-rebinding page in the operator's browser
// gets nothing), refuses cross-site posts, and its form carries a token
// that is also the state GitHub hands back.
package setup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
	"go.yaml.in/yaml/v3"

	"github.com/packit/packit-launch/config"
)

// LoginCallbackPath is where GitHub sends people back after they log in
// to the bot's pages; the manifest lists it under PUBLIC_URL.
const LoginCallbackPath = "/login/callback"

// Page serves the setup flow. Handler routes GET /, POST /setup/app and
// GET /setup/done.
type Page struct {
	// Manifest is app.yml: the App's name, events and permissions.
	Manifest []byte
	// WebURL is GitHub's web UI (https://github.com/), APIURL its API; both end in /.
	WebURL, APIURL string
	// WebhookPath is where the bot takes deliveries.
	WebhookPath string
	// ListenAddr is the address the server listens on (host:port, the port
	// resolved); with PublicURL it decides which Host headers are answered.
	ListenAddr string
	// PublicURL is the bot's public address (PUBLIC_URL), or "".
	PublicURL string
	// EnvFile is the .env the credentials are written to.
	EnvFile string
	// Missing is what the bot lacked when the page started (config.Server.Missing);
	// the done page lists what is left of it once the App's settings are written.
	Missing []config.Setting
	// Trusted are the repository patterns the server config trusts.
	Trusted []string
	// Done is called once the credentials are written: the server starts
	// again with them.
	Done func()
	Log  *slog.Logger

	mu     sync.Mutex
	states map[string]registration
}

// registration is one run through the form: its token is the state GitHub
// hands back with the code.
type registration struct {
	at      time.Time
	webhook string // set once the form is posted
}

// stateFor bounds how long a registration may take on GitHub's side; GitHub
// gives an hour to exchange the code.
const stateFor = time.Hour

// maxStates bounds the registrations in progress that are remembered.
const maxStates = 100

// maxAppName is GitHub's limit on an App's name.
const maxAppName = 34

// Handler is the setup page's routes: only for the page's own hosts, and
// no cross-site posts.
func (p *Page) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.form)
	mux.HandleFunc("POST /setup/app", p.register)
	mux.HandleFunc("GET /setup/done", p.done)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Log.Warn("setup: cross-site request refused", "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		p.render(w, http.StatusForbidden, failPage, map[string]any{"Problem": "This form was sent from another site, so it was refused. Open the setup page itself and submit it there."})
	}))
	return p.ownHostsOnly(cop.Handler(mux))
}

// ownHostsOnly answers only requests addressed to this page's own host
// names: GitHub sends the one-time code to the address the manifest names,
// and that address comes from the Host header.
func (p *Page) ownHostsOnly(next http.Handler) http.Handler {
	allowed := p.hosts()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed[strings.ToLower(r.Host)] {
			p.Log.Warn("setup: request for a foreign host refused", "host", truncate(r.Host, 100))
			p.render(w, http.StatusMisdirectedRequest, failPage, map[string]any{
				"Problem": "This setup page answers only at its own address: " + p.home() + ". Open it there (or set PUBLIC_URL to the address you use).",
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hosts are the Host header values the page answers: the listen address,
// the loopback names on its port, and PUBLIC_URL's host.
func (p *Page) hosts() map[string]bool {
	allowed := map[string]bool{}
	host, port, err := net.SplitHostPort(p.ListenAddr)
	if err == nil {
		for _, h := range []string{host, "localhost", "127.0.0.1", "[::1]"} {
			if h == "" || strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
				continue
			}
			allowed[strings.ToLower(h)+":"+port] = true
			if port == "80" {
				allowed[strings.ToLower(h)] = true
			}
		}
		if strings.Contains(host, ":") {
			allowed["["+strings.ToLower(host)+"]:"+port] = true
		}
	}
	if u, err := url.Parse(p.PublicURL); err == nil && u.Host != "" {
		allowed[strings.ToLower(u.Host)] = true
	}
	return allowed
}

func (p *Page) port() string {
	if _, port, err := net.SplitHostPort(p.ListenAddr); err == nil {
		return port
	}
	return "PORT"
}

// home is where the page is meant to be opened.
func (p *Page) home() string {
	return "http://127.0.0.1:" + p.port() + "/"
}

func (p *Page) form(w http.ResponseWriter, _ *http.Request) {
	p.renderForm(w, http.StatusOK, p.newState(), formInput{Name: p.defaultName(), Owner: "personal", Installs: "only"}, "")
}

// formInput is what the operator typed, shown again with a problem.
type formInput struct {
	URL, Name, Owner, Org, Installs string
}

func (p *Page) renderForm(w http.ResponseWriter, status int, token string, in formInput, problem string) {
	p.render(w, status, formPage, map[string]any{
		"Problem": problem, "Token": token, "URL": in.URL, "Name": in.Name, "Org": in.Org,
		"Owner": in.Owner, "Installs": in.Installs, "WebhookPath": p.WebhookPath, "Local": p.localWebhook(), "Port": p.port(),
	})
}

// localWebhook is where a tunnel's client forwards deliveries to on this machine.
func (p *Page) localWebhook() string {
	return strings.TrimSuffix(p.home(), "/") + p.WebhookPath
}

// register builds the manifest with the webhook URL and the App's name and
// visibility, and hands the browser a form that posts it to GitHub.
func (p *Page) register(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		p.renderForm(w, http.StatusBadRequest, p.newState(), formInput{Name: p.defaultName(), Owner: "personal", Installs: "only"}, "The form could not be read.")
		return
	}
	f := r.PostForm
	in := formInput{URL: strings.TrimSpace(f.Get("url")), Name: strings.TrimSpace(f.Get("name")), Owner: f.Get("owner"),
		Org: strings.TrimSpace(f.Get("org")), Installs: f.Get("installs")}
	token := f.Get("token")
	if !p.validState(token) {
		p.renderForm(w, http.StatusForbidden, p.newState(), in, "This form is out of date (over an hour old, or the bot restarted since). Check the values and send it again.")
		return
	}
	again := func(problem string) { p.renderForm(w, http.StatusUnprocessableEntity, token, in, problem) }
	webhook, problem := webhookURL(in.URL, p.WebhookPath)
	if problem != "" {
		again(problem)
		return
	}
	if in.Name == "" || len([]rune(in.Name)) > maxAppName {
		again(fmt.Sprintf("Give the App a name of 1 to %d characters. App names are unique across GitHub, so a name someone already took is refused there.", maxAppName))
		return
	}
	if in.Owner == "org" && !orgRE(in.Org) {
		again("Name the organization the App is for (its login, as in github.com/ORG).")
		return
	}
	org := in.Org
	if in.Owner != "org" {
		org = ""
	}
	manifest, err := p.manifest(webhook, in.Name, in.Installs == "any", p.doneURL(r))
	if err != nil {
		p.Log.Error("setup: app.yml", "err", err)
		again("app.yml cannot be read; see the log.")
		return
	}
	p.remember(token, webhook)
	target := p.WebURL + "settings/apps/new"
	if org != "" {
		target = p.WebURL + "organizations/" + url.PathEscape(org) + "/settings/apps/new"
	}
	p.render(w, http.StatusOK, confirmPage, map[string]any{
		"Action": target + "?state=" + token, "Manifest": string(manifest), "Webhook": webhook, "Org": org,
		"Name": in.Name, "Public": in.Installs == "any", "Smee": smeeCommand(webhook, p.localWebhook()),
	})
}

// doneURL is where GitHub sends the browser back: the host the request was
// addressed to, which ownHostsOnly has checked.
func (p *Page) doneURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if u, err := url.Parse(p.PublicURL); err == nil && strings.EqualFold(u.Host, r.Host) {
		scheme = u.Scheme // behind a proxy that ends TLS
	}
	return scheme + "://" + r.Host + "/setup/done"
}

// webhookURL is the URL GitHub will deliver to: as given when it has a
// path (a smee.io channel takes deliveries only at its own URL), else the
// host with the bot's webhook path. GitHub must be able to reach it, so
// loopback addresses are refused with the way out. (Private ones are not:
// GitHub Enterprise Server may well reach them.)
func webhookURL(raw, webhookPath string) (string, string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return "", "Give the webhook URL GitHub will call, such as https://packit-launch.example.org or a smee.io channel's URL."
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return "", "GitHub cannot deliver webhooks to " + host + ". To try the bot on this machine, give the public URL of a tunnel to it (a smee.io channel, ngrok or cloudflared)."
	}
	if strings.Trim(u.EscapedPath(), "/") == "" && u.RawQuery == "" {
		return u.Scheme + "://" + u.Host + webhookPath, ""
	}
	return u.String(), ""
}

// smeeCommand is the smee client's command line for a smee.io channel, or "".
func smeeCommand(webhook, local string) string {
	u, err := url.Parse(webhook)
	if err != nil || !strings.EqualFold(u.Hostname(), "smee.io") {
		return ""
	}
	return "npx smee-client --url " + webhook + " --target " + local
}

func orgRE(s string) bool {
	if s == "" || len(s) > 39 || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (p *Page) defaultName() string {
	var m struct{ Name string }
	_ = yaml.Unmarshal(p.Manifest, &m)
	return m.Name
}

// manifest is app.yml as JSON, with the App's name, who may install it,
// its webhook, this page's return address and, with PUBLIC_URL, the login
// callback of the bot's pages.
func (p *Page) manifest(webhook, name string, public bool, redirect string) ([]byte, error) {
	var m map[string]any
	if err := yaml.Unmarshal(p.Manifest, &m); err != nil {
		return nil, fmt.Errorf("parse app.yml: %w", err)
	}
	m["name"] = name
	m["public"] = public
	m["hook_attributes"] = map[string]any{"url": webhook, "active": true}
	m["redirect_url"] = redirect
	if p.PublicURL != "" {
		m["callback_urls"] = []string{strings.TrimRight(p.PublicURL, "/") + LoginCallbackPath}
	}
	return json.Marshal(m)
}

// newState hands out a form token, which becomes the state GitHub returns.
func (p *Page) newState() string {
	b := make([]byte, 16)
	rand.Read(b)
	state := hex.EncodeToString(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.states == nil {
		p.states = map[string]registration{}
	}
	for s, reg := range p.states {
		if time.Since(reg.at) > stateFor || len(p.states) >= maxStates {
			delete(p.states, s) // whoever reaches the page may load it in a loop
		}
	}
	p.states[state] = registration{at: time.Now()}
	return state
}

func (p *Page) validState(state string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	reg, ok := p.states[state]
	return ok && time.Since(reg.at) <= stateFor
}

func (p *Page) remember(state, webhook string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if reg, ok := p.states[state]; ok {
		reg.webhook = webhook
		p.states[state] = reg
	}
}

// takeState reports whether state was handed out by this page, posted with
// the form, within the hour, and not used yet.
func (p *Page) takeState(state string) (registration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	reg, ok := p.states[state]
	delete(p.states, state)
	return reg, ok && reg.webhook != "" && time.Since(reg.at) <= stateFor
}

// done is where GitHub sends the browser back: the code becomes the App's
// credentials, written to .env.
func (p *Page) done(w http.ResponseWriter, r *http.Request) {
	reg, ok := p.takeState(r.URL.Query().Get("state"))
	if !ok {
		p.render(w, http.StatusBadRequest, failPage, map[string]any{"Problem": "This link did not come from this setup page (or it was used already, or is over an hour old). Start again from the setup page."})
		return
	}
	app, err := p.convert(r.Context(), r.URL.Query().Get("code"))
	if err != nil {
		p.Log.Error("setup: exchange the manifest code", "err", err)
		p.render(w, http.StatusBadGateway, failPage, map[string]any{"Problem": "GitHub did not hand over the new App's credentials (the code may have expired). Start again from the setup page; the log has the details."})
		return
	}
	written := map[string]string{
		"GITHUB_APP_ID":         fmt.Sprint(app.GetID()),
		"GITHUB_PRIVATE_KEY":    app.GetPEM(),
		"GITHUB_WEBHOOK_SECRET": app.GetWebhookSecret(),
		"GITHUB_CLIENT_ID":      app.GetClientID(),
		"GITHUB_CLIENT_SECRET":  app.GetClientSecret(),
	}
	kept, err := writeEnv(p.EnvFile, written)
	if err != nil {
		p.Log.Error("setup: write the App's credentials", "file", p.EnvFile, "err", err)
		p.render(w, http.StatusInternalServerError, failPage, map[string]any{"Problem": "The App was created, but its credentials could not be written to " + p.EnvFile + "; the log says why. Generate a private key on the App's settings page and set the settings by hand."})
		return
	}
	p.Log.Info("setup: GitHub App created; credentials written", "app", app.GetSlug(), "file", p.EnvFile, "kept", strings.Join(kept, ","))
	p.render(w, http.StatusOK, donePage, map[string]any{
		"Name": app.GetName(), "Install": app.GetHTMLURL() + "/installations/new", "File": p.EnvFile, "Kept": kept,
		"Missing": stillMissing(p.Missing, written), "Trusted": p.Trusted, "Smee": smeeCommand(reg.webhook, p.localWebhook()),
	})
	if p.Done != nil {
		p.Done()
	}
}

// stillMissing drops from missing the settings the page has just written.
func stillMissing(missing []config.Setting, written map[string]string) []config.Setting {
	var left []config.Setting
	for _, m := range missing {
		name, _, _ := strings.Cut(m.Name, " ")
		if _, ok := written[name]; !ok {
			left = append(left, m)
		}
	}
	return left
}

func (p *Page) convert(ctx context.Context, code string) (*github.AppConfig, error) {
	if code == "" {
		return nil, errors.New("no code")
	}
	gh := github.NewClient(&http.Client{Timeout: 30 * time.Second})
	base, err := url.Parse(p.APIURL)
	if err != nil {
		return nil, err
	}
	gh.BaseURL = base
	app, _, err := gh.Apps.CompleteAppManifest(ctx, code)
	return app, err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (p *Page) render(w http.ResponseWriter, status int, pg page, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// form-action: the confirm page posts the manifest to GitHub's web UI.
	formAction := "'self'"
	if u, err := url.Parse(p.WebURL); err == nil && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, pg(data))
}
