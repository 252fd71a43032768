package githubtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// The manifest flow (docs: "Registering a GitHub App from a manifest"): a
// page POSTs manifest=<json> to /settings/apps/new?state=S (or the
// organization's), GitHub creates the App once the person confirms and
// redirects to the manifest's redirect_url with ?code=C&state=S, and the
// code is exchanged within an hour, once, at POST /app-manifests/{code}/conversions.
// The fake confirms at once; the App it creates is this fake's own (AppID,
// PrivateKeyPEM, ClientID, ClientSecret), with a new webhook secret, and
// the manifest's callback_urls become the App's callback URLs for the user
// authorization flow.

// ManifestApp is an App created through the manifest flow.
type ManifestApp struct {
	Manifest      map[string]any
	Org           string // "" for a personal account
	WebhookSecret string
	code          string
	createdAt     time.Time
	converted     bool
}

type manifestState struct {
	mu   sync.Mutex
	apps []*ManifestApp
}

// ManifestApps are the Apps created through the manifest flow, oldest first.
func (s *Server) ManifestApps() []ManifestApp {
	m := &s.manifests
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ManifestApp, len(m.apps))
	for i, a := range m.apps {
		out[i] = *a
	}
	return out
}

// newAppFromManifest is the web UI's form target: GitHub refuses a manifest
// without a url or with a hook without one, and redirects back with a code.
func (s *Server) newAppFromManifest(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	var manifest map[string]any
	if err := json.Unmarshal([]byte(r.PostForm.Get("manifest")), &manifest); err != nil {
		http.Error(w, "Invalid GitHub App configuration: the manifest is not JSON", http.StatusUnprocessableEntity)
		return
	}
	redirect, _ := manifest["redirect_url"].(string)
	hook, _ := manifest["hook_attributes"].(map[string]any)
	hookURL, _ := hook["url"].(string)
	if u, err := url.Parse(redirect); err != nil || !u.IsAbs() || manifest["url"] == nil || hookURL == "" {
		http.Error(w, "Invalid GitHub App configuration: url, hook_attributes.url and redirect_url are required", http.StatusUnprocessableEntity)
		return
	}
	var callbacks []string
	if list, ok := manifest["callback_urls"].([]any); ok {
		for _, c := range list {
			if c, ok := c.(string); ok {
				callbacks = append(callbacks, c)
			}
		}
	}
	if len(callbacks) > 0 {
		s.SetCallbackURL(callbacks...)
	}
	app := &ManifestApp{Manifest: manifest, Org: r.PathValue("org"), WebhookSecret: randomHex(20), code: randomHex(10), createdAt: s.clock()}
	m := &s.manifests
	m.mu.Lock()
	m.apps = append(m.apps, app)
	m.mu.Unlock()
	back, _ := url.Parse(redirect)
	q := back.Query()
	q.Set("code", app.code)
	if st := r.URL.Query().Get("state"); st != "" {
		q.Set("state", st)
	}
	back.RawQuery = q.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// convertManifest exchanges a code for the App's credentials, once, within an hour.
func (s *Server) convertManifest(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	now := s.clock()
	m := &s.manifests
	m.mu.Lock()
	var app *ManifestApp
	for _, a := range m.apps {
		if a.code == code && !a.converted && now.Sub(a.createdAt) < time.Hour {
			app = a
			a.converted = true
		}
	}
	m.mu.Unlock()
	if app == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	name, _ := app.Manifest["name"].(string)
	owner := map[string]any{"login": "octocat", "id": 1, "type": "User"}
	if app.Org != "" {
		owner = map[string]any{"login": app.Org, "id": 2, "type": "Organization"}
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": s.AppID, "slug": AppSlug, "node_id": "A_1", "name": name, "owner": owner,
		"html_url": s.URL + "/apps/" + AppSlug, "external_url": app.Manifest["url"],
		"client_id": s.ClientID, "client_secret": s.ClientSecret,
		"webhook_secret": app.WebhookSecret, "pem": string(s.PrivateKeyPEM),
		"permissions": app.Manifest["default_permissions"], "events": app.Manifest["default_events"],
		"created_at": timestamp(app.createdAt), "updated_at": timestamp(app.createdAt),
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
