// Package web is the pages people look at: the launches they may see, a
// launch's story, and (for operators) the fleet's figures, behind GitHub
// login (the App's own user authorization). It gathers facts and shows
// them; what a form may do is decided where a comment's is (Actions), and
// the lifecycle's verbs do it.
package web

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/oauth2"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/store"
)

// Records are the launch records and totals the pages read (*store.Store).
type Records interface {
	ActiveIndex(ctx context.Context) ([]store.Active, error)
	LiveRecords(ctx context.Context, ids []string) ([]*store.Launch, error)
	RecentEnded(ctx context.Context, offset, count int) ([]string, error)
	Launches(ctx context.Context, ids []string) ([]*store.Launch, error)
	GetLaunch(ctx context.Context, id string) (*store.Launch, error)
	Days(ctx context.Context, last time.Time, n int, projects []string) ([]store.DayTotals, error)
}

// Actions change a launch for a person as their comment or button would:
// the same who-may-do-what decides (a refusal is a *config.Refusal), the
// PR is told. once makes a resubmitted form act once.
type Actions interface {
	ExtendAs(ctx context.Context, l *store.Launch, user, once string) (string, error)
	TerminateAs(ctx context.Context, l *store.Launch, user string) (string, error)
}

// Server serves the pages.
type Server struct {
	cfg     *config.Server
	records Records
	actions Actions
	oauth   *oauth2.Config
	apiURL  string
	webURL  string
	public  *url.URL
	secure  bool // cookies only over HTTPS
	seal    *sealer
	http    *http.Client
	now     func() time.Time
	log     *slog.Logger

	mu    sync.Mutex
	repos map[string]viewerRepos // by login
	// busy bounds the pages served at once: page views must not take the
	// connections and CPU the webhook needs.
	busy chan struct{}
}

// maxPagesAtOnce is how many page requests are served at once.
const maxPagesAtOnce = 16

// New returns the pages for cfg (cfg.WebOn must hold).
func New(cfg *config.Server, records Records, actions Actions, log *slog.Logger) (*Server, error) {
	public, err := url.Parse(strings.TrimRight(cfg.Web.PublicURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("web: PUBLIC_URL: %w", err)
	}
	// Browsers send Host without the scheme's own port.
	if p := public.Port(); (p == "443" && public.Scheme == "https") || (p == "80" && public.Scheme == "http") {
		public.Host = public.Hostname()
	}
	seal, err := newSealer(cfg.Web.SessionKey.Reveal())
	if err != nil {
		return nil, err
	}
	webURL := cfg.GitHub.WebURL
	if webURL == "" {
		webURL = "https://github.com/"
	}
	webURL = strings.TrimRight(webURL, "/") + "/"
	apiURL := cfg.GitHub.APIURL
	if apiURL == "" {
		apiURL = "https://api.github.com/"
	}
	return &Server{
		cfg: cfg, records: records, actions: actions, apiURL: apiURL, webURL: webURL, public: public, seal: seal,
		secure: public.Scheme == "https" || !isLoopback(public.Hostname()),
		oauth: &oauth2.Config{
			ClientID: cfg.GitHub.ClientID, ClientSecret: cfg.GitHub.ClientSecret.Reveal(), RedirectURL: public.String() + LoginCallbackPath,
			Endpoint: oauth2.Endpoint{AuthURL: webURL + "login/oauth/authorize", TokenURL: webURL + "login/oauth/access_token"},
		},
		http: &http.Client{Timeout: 15 * time.Second},
		now:  time.Now, log: log, repos: map[string]viewerRepos{}, busy: make(chan struct{}, maxPagesAtOnce),
	}, nil
}

// LoginCallbackPath is where GitHub sends a viewer back after login (the
// App's registered callback: PUBLIC_URL + this).
const LoginCallbackPath = "/login/callback"

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// Register adds the pages to r.
func (s *Server) Register(r *mux.Router) {
	page := func(path string, h http.HandlerFunc, methods ...string) {
		r.Handle(path, s.guard(h)).Methods(methods...)
	}
	page("/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/launches", http.StatusSeeOther) }, http.MethodGet)
	page("/web.css", s.serveCSS, http.MethodGet)
	page("/login", s.login, http.MethodGet)
	page(LoginCallbackPath, s.callback, http.MethodGet)
	page("/logout", s.logout, http.MethodPost)
	page("/launches", s.launchesPage, http.MethodGet)
	page("/launches/{id:[a-z0-9]{1,16}}", s.launchPage, http.MethodGet)
	page("/launches/{id:[a-z0-9]{1,16}}/{action:extend|terminate}", s.act, http.MethodPost)
	page("/fleet", s.fleetPage, http.MethodGet)
}

// guard answers only the bot's own host, refuses cross-site posts and
// sets the headers every page gets.
func (s *Server) guard(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if !strings.EqualFold(r.Host, s.public.Host) {
			http.Error(w, "This page answers only at the bot's own address ("+s.public.Host+").", http.StatusMisdirectedRequest)
			return
		}
		if r.Method == http.MethodPost && !s.sameOrigin(r) {
			http.Error(w, "Cross-site form posts are refused.", http.StatusForbidden)
			return
		}
		select {
		case s.busy <- struct{}{}:
			defer func() { <-s.busy }()
		default:
			w.Header().Set("Retry-After", "5")
			http.Error(w, "The bot is busy; reload in a few seconds.", http.StatusServiceUnavailable)
			return
		}
		next(w, r)
	})
}

// sameOrigin holds for a post from the bot's own pages: browsers send
// Origin (and Sec-Fetch-Site) with every form post.
func (s *Server) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	origin := r.Header.Get("Origin")
	return origin != "" && strings.EqualFold(origin, s.public.Scheme+"://"+s.public.Host)
}

// validCSRF holds when the form carries the session's token.
func validCSRF(sess *session, r *http.Request) bool {
	return subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) == 1
}

func (s *Server) serveCSS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write([]byte(css))
}

// write sends a page.
func write(w http.ResponseWriter, status int, page string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(page))
}

// problem answers with a short page saying what went wrong (details go to the log).
func (s *Server) problem(w http.ResponseWriter, sess *session, status int, text string) {
	var d doc
	d.f(`<h1>%s</h1><p class="problem" role="alert">%s</p><p><a href="/launches">Back to the launches</a></p>`, http.StatusText(status), text)
	write(w, status, layout(http.StatusText(status), sess, sess != nil && s.cfg.IsOperator(sess.Login), d.String()))
}
