// Package setup is the first-run page: while the GitHub App settings are
// missing, it registers a new GitHub App from the manifest (app.yml)
// through GitHub's manifest flow, writes its credentials to .env and lets
// the server start with them, as a Probot app does.
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
)

// Page serves the setup flow. Handler routes GET /, POST /setup/app and
// GET /setup/done.
type Page struct {
	// Manifest is app.yml: the App's name, events and permissions.
	Manifest []byte
	// WebURL is GitHub's web UI (https://github.com/), APIURL its API; both end in /.
	WebURL, APIURL string
	// WebhookPath is where the bot takes deliveries, appended to the public URL.
	WebhookPath string
	// EnvFile is the .env the credentials are written to.
	EnvFile string
	// Done is called once the credentials are written: the server starts
	// again with them.
	Done func()
	Log  *slog.Logger

	mu     sync.Mutex
	states map[string]time.Time // state → when it was handed out
}

// stateFor bounds how long a registration may take on GitHub's side; GitHub
// gives an hour to exchange the code.
const stateFor = time.Hour

// maxStates bounds the registrations in progress that are remembered.
const maxStates = 100

// Handler is the setup page's routes.
func (p *Page) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.form)
	mux.HandleFunc("POST /setup/app", p.register)
	mux.HandleFunc("GET /setup/done", p.done)
	return mux
}

func (p *Page) form(w http.ResponseWriter, _ *http.Request) {
	render(w, http.StatusOK, formPage, map[string]any{"WebhookPath": p.WebhookPath})
}

// register builds the manifest with the bot's public URL and hands the
// browser a form that posts it to GitHub.
func (p *Page) register(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		render(w, http.StatusBadRequest, formPage, map[string]any{"Problem": "The form could not be read.", "WebhookPath": p.WebhookPath})
		return
	}
	public, org := strings.TrimSpace(r.PostForm.Get("url")), strings.TrimSpace(r.PostForm.Get("org"))
	again := func(problem string) {
		render(w, http.StatusUnprocessableEntity, formPage, map[string]any{"Problem": problem, "URL": public, "Org": org, "WebhookPath": p.WebhookPath})
	}
	base, problem := publicURL(public)
	if problem != "" {
		again(problem)
		return
	}
	if r.PostForm.Get("owner") == "org" && !orgRE(org) {
		again("Name the organization the App is for (its login, as in github.com/ORG).")
		return
	}
	if r.PostForm.Get("owner") != "org" {
		org = ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	manifest, err := p.manifest(base, scheme+"://"+r.Host+"/setup/done")
	if err != nil {
		p.Log.Error("setup: app.yml", "err", err)
		again("app.yml cannot be read; see the log.")
		return
	}
	target := p.WebURL + "settings/apps/new"
	if org != "" {
		target = p.WebURL + "organizations/" + url.PathEscape(org) + "/settings/apps/new"
	}
	render(w, http.StatusOK, confirmPage, map[string]any{
		"Action": target + "?state=" + p.newState(), "Manifest": string(manifest), "Webhook": base + p.WebhookPath, "Org": org,
	})
}

// publicURL checks the bot's public base URL: GitHub must be able to reach
// it, so loopback addresses are refused with the way out. (Private ones
// are not: GitHub Enterprise Server may well reach them.)
func publicURL(raw string) (string, string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", "Give the bot's public URL, such as https://packit-launch.example.org."
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return "", "GitHub cannot deliver webhooks to " + host + ". To try the bot on this machine, forward a public URL to it (a tunnel such as smee.io, `gh webhook forward`, ngrok or cloudflared) and give that URL."
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), ""
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

// manifest is app.yml as JSON, with the bot's webhook and this page's return address.
func (p *Page) manifest(base, redirect string) ([]byte, error) {
	var m map[string]any
	if err := yaml.Unmarshal(p.Manifest, &m); err != nil {
		return nil, fmt.Errorf("parse app.yml: %w", err)
	}
	m["hook_attributes"] = map[string]any{"url": base + p.WebhookPath, "active": true}
	m["redirect_url"] = redirect
	return json.Marshal(m)
}

func (p *Page) newState() string {
	b := make([]byte, 16)
	rand.Read(b)
	state := hex.EncodeToString(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.states == nil {
		p.states = map[string]time.Time{}
	}
	for s, at := range p.states {
		if time.Since(at) > stateFor || len(p.states) >= maxStates {
			delete(p.states, s) // whoever reaches the page may post it in a loop
		}
	}
	p.states[state] = time.Now()
	return state
}

// takeState reports whether state was handed out by this page, within the
// hour, and not used yet.
func (p *Page) takeState(state string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.states[state]
	delete(p.states, state)
	return ok && time.Since(at) <= stateFor
}

// done is where GitHub sends the browser back: the code becomes the App's
// credentials, written to .env.
func (p *Page) done(w http.ResponseWriter, r *http.Request) {
	if !p.takeState(r.URL.Query().Get("state")) {
		render(w, http.StatusBadRequest, failPage, map[string]any{"Problem": "This link did not come from this setup page (or it was used already, or is over an hour old). Start again from the setup page."})
		return
	}
	app, err := p.convert(r.Context(), r.URL.Query().Get("code"))
	if err != nil {
		p.Log.Error("setup: exchange the manifest code", "err", err)
		render(w, http.StatusBadGateway, failPage, map[string]any{"Problem": "GitHub did not hand over the new App's credentials (the code may have expired). Start again from the setup page; the log has the details."})
		return
	}
	kept, err := writeEnv(p.EnvFile, map[string]string{
		"GITHUB_APP_ID":         fmt.Sprint(app.GetID()),
		"GITHUB_PRIVATE_KEY":    app.GetPEM(),
		"GITHUB_WEBHOOK_SECRET": app.GetWebhookSecret(),
	})
	if err != nil {
		p.Log.Error("setup: write the App's credentials", "file", p.EnvFile, "err", err)
		render(w, http.StatusInternalServerError, failPage, map[string]any{"Problem": "The App was created, but its credentials could not be written to " + p.EnvFile + "; the log says why. Generate a private key on the App's settings page and set the settings by hand."})
		return
	}
	p.Log.Info("setup: GitHub App created; credentials written", "app", app.GetSlug(), "file", p.EnvFile, "kept", strings.Join(kept, ","))
	render(w, http.StatusOK, donePage, map[string]any{
		"Name": app.GetName(), "Install": app.GetHTMLURL() + "/installations/new", "File": p.EnvFile, "Kept": kept,
	})
	if p.Done != nil {
		p.Done()
	}
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

func render(w http.ResponseWriter, status int, p page, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action *")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, p(data))
}
