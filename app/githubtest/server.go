// Package githubtest is a fake of the GitHub REST API for tests, the local
// demo and benchmarks. It speaks the plain api.github.com paths (no /api/v3
// prefix) that packit-launch uses, authenticates like GitHub does (app JWT for
// /app endpoints, installation tokens for everything else) and records every
// call so tests can assert on what the bot did.
//
// Typical use in a test:
//
//	gh := githubtest.NewServer()
//	defer gh.Close()
//	gh.SetPermission("octo/repo", "alice", "write")
//	gh.SetPull("octo/repo", githubtest.PullRequest{Number: 7, HeadSHA: sha})
//	gh.SetFile("octo/repo", "", ".packit-launch.yaml", "machines: ...")
//	gh.SetKeys("alice", "ssh-ed25519 AAAA...")
//
//	human := gh.AddComment("octo/repo", 7, "alice", "/launch") // deliver its webhook with human.ID
//
//	// The bot builds its clients the way it does in production:
//	tr, _ := ghinstallation.New(http.DefaultTransport, gh.AppID, githubtest.DefaultInstallationID, gh.PrivateKeyPEM)
//	tr.BaseURL = gh.URL
//	client := github.NewClient(&http.Client{Transport: tr})
//	client.BaseURL, _ = url.Parse(gh.URL + "/")
//	// (or simply: client, _ := gh.Client(githubtest.DefaultInstallationID))
//
//	... run the handler ...
//
//	gh.Comments("octo/repo", 7)  // what the bot said
//	gh.Reactions("octo/repo", human.ID)
//	gh.CheckRuns("octo/repo")
//	gh.Calls()                   // every request, in order
//
// The fake enforces what GitHub enforces, so a test against it means
// something: comments only on issues and pull requests that exist (SetPull,
// SetIssue, or AddComment, which makes its issue exist), reactions only on
// comments it knows (a human's command must be seeded with AddComment and
// delivered with the id it returns), comment bodies of at most
// MaxCommentChars characters, and GitHub's limits on check runs (output
// summary and text, actions and their fields) on create and update alike.
//
// Other apps' check runs (Packit's `vm-image-build:<target>` above all) are
// played with AddCheckRun and UpdateCheckRunAs (queued → in_progress →
// completed); each run carries the slug of the app that made it, the bot
// may update only its own, and listing a commit's check runs honours
// check_name, status, app_id and filter (latest, the default, or all). A
// pull request's commits are its head alone unless SetPullCommits says
// otherwise; a later SetPull with a new head adds it, as a push does.
//
// The app identity (AppID, PrivateKeyPEM) is fixed when the server is built;
// NewServer uses one RSA key generated once per process so that many servers
// stay cheap. Installation DefaultInstallationID exists from the start and may
// access every repository; SetInstallation adds or restricts installations.
//
// Failures are injected with FailNext, SecondaryRateLimitNext and Fail, the
// primary rate limit with SetRateLimit, and a fixed per-request delay with
// SetLatency. SetClock replaces the clock used for token expiry and JWT
// validation, so tests can expire tokens without sleeping.
//
// People sign in to the bot's pages with the App's user authorization (the
// web flow, userauth.go): the fake has no login form, so a test picks who
// is signed in with LogInAs; GET /login/oauth/authorize then redirects at
// once to the App's callback (SetCallbackURL, or the manifest's
// callback_urls) with a code, and POST /login/oauth/access_token trades
// the code, once and within ten minutes, for an 8-hour "ghu_" user token
// (ClientID, ClientSecret; PKCE S256 and refresh tokens too). The user
// token serves GET /user, /user/installations and
// /user/installations/{id}/repositories (repositories the user has a role
// on), and reads of the repository endpoints where both the user and an
// installation may read; it is refused on the /app endpoints and on writes.
// Every Call records which credential made it (Auth), and UserRequests
// counts a user's, so a test can bound what a page view costs.
//
// For the demo, New builds a Server without a listener and Handler serves it
// on any address. All methods are safe for concurrent use.
package githubtest

import (
	"bytes"
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultAppID is the app id of a Server built by New or NewServer.
	DefaultAppID int64 = 1000
	// DefaultInstallationID is the installation that exists from the start
	// and may access every repository.
	DefaultInstallationID int64 = 1
	// AppSlug is the fake app's slug.
	AppSlug = "packit-launch"
	// BotLogin authors everything the app creates (comments, reactions).
	BotLogin = AppSlug + "[bot]"
	// DefaultBranch is every repository's default branch unless
	// SetDefaultBranch says otherwise.
	DefaultBranch = "main"

	docsURL = "https://docs.github.com/rest"
)

// Server is a fake GitHub API. Build it with NewServer (listening on a
// loopback port, like httptest.Server) or New (no listener; serve Handler).
type Server struct {
	// URL is the base URL of the listening server, without a trailing
	// slash (go-github wants URL+"/", ghinstallation wants URL). Empty for
	// a Server built by New; a demo serving Handler itself may set it before
	// first use so that Client works.
	URL string
	// AppID is the id of the fake app; app JWTs must carry it as "iss".
	AppID int64
	// PrivateKeyPEM is the app's private key (PKCS#1 PEM), as GitHub hands
	// it out; sign app JWTs with it.
	PrivateKeyPEM []byte
	// ClientID and ClientSecret are the App's OAuth client credentials for
	// the user authorization flow: DefaultClientID and a random secret. Set
	// them, if at all, before first use.
	ClientID     string
	ClientSecret string

	publicKey *rsa.PublicKey
	ts        *httptest.Server
	handler   http.Handler

	mu            sync.Mutex
	now           func() time.Time
	nextID        int64
	installations map[int64]*installation
	tokens        map[string]issuedToken
	repos         map[string]*repoState
	userIDs       map[string]int64
	keys          map[string][]Key
	comments      map[int64]*Comment
	reactions     map[int64][]reaction // by comment id
	checkRuns     map[int64]*CheckRun
	appIDs        map[string]int64 // other apps' ids, by slug
	deliveries    []Delivery
	calls         []Call
	failures      []*Failure
	rateRemaining int
	rateReset     time.Time
	latency       time.Duration
	// The App's settings when changed from app.yml's (nil: as app.yml).
	appPermissions map[string]string
	appEvents      []string
	manifests      manifestState // Apps created through the manifest flow
	users          userAuthState // the user authorization flow (userauth.go)
}

// Call is one request the fake received.
type Call struct {
	Method string
	Path   string
	Query  url.Values
	Body   []byte
	// Status is the status code the fake answered with; 304 (a
	// conditional request) does not count against the rate limit.
	Status int
	// InstallationID is the installation whose token authenticated the
	// call, or 0.
	InstallationID int64
	// Auth is the kind of credential the call carried, valid or not:
	// "app" (a JWT signed with the App's key), "installation" (a token the
	// fake issued for an installation), "user:<login>" (a user access token
	// the fake issued to login) or "none" (nothing, or a credential the
	// fake never issued).
	Auth string
}

// NewServer returns a started fake listening on a loopback port. Close it
// when done.
func NewServer() *Server {
	s := New()
	s.ts = httptest.NewServer(s.handler)
	s.URL = s.ts.URL
	return s
}

// New returns a fake without a listener, for serving Handler on an address
// of the caller's choosing (the demo). Its app key is the per-process key
// NewServer uses too.
func New() *Server {
	k, err := processAppKey()
	if err != nil {
		panic(fmt.Sprintf("githubtest: generate app key: %v", err))
	}
	s := &Server{
		AppID:         DefaultAppID,
		PrivateKeyPEM: k.pem,
		ClientID:      DefaultClientID,
		ClientSecret:  randomHex(20),
		publicKey:     &k.key.PublicKey,
		now:           time.Now,
		installations: map[int64]*installation{DefaultInstallationID: {id: DefaultInstallationID}},
		tokens:        map[string]issuedToken{},
		users:         newUserAuthState(),
	}
	s.resetState()
	s.handler = s.routes()
	return s
}

// Handler returns the HTTP handler serving the fake API.
func (s *Server) Handler() http.Handler { return s.handler }

// Close shuts the listening server down (no-op for a Server built by New).
func (s *Server) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
}

// resetState clears repository state, calls, failures and limits. It holds
// no lock; callers do.
func (s *Server) resetState() {
	s.repos = map[string]*repoState{}
	s.userIDs = map[string]int64{}
	s.keys = map[string][]Key{}
	s.comments = map[int64]*Comment{}
	s.reactions = map[int64][]reaction{}
	s.checkRuns = map[int64]*CheckRun{}
	s.appIDs = map[string]int64{}
	s.deliveries = nil
	s.calls = nil
	s.failures = nil
	s.rateRemaining = rateLimit
	s.rateReset = time.Time{}
	s.latency = 0
}

// Reset returns the fake to its fresh state: no permissions, pull requests,
// files, keys, comments, reactions, check runs, deliveries, recorded calls,
// injected failures, rate limit or latency. The app identity, installations,
// issued tokens (installation and user) and the user authorization settings
// (callback URLs, who is signed in) are kept, so existing clients keep
// working.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetState()
}

// ResetCalls forgets the recorded calls.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// Calls returns a copy of every request received so far, in the order they
// completed.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	copy(out, s.calls)
	return out
}

// CallCount counts recorded calls whose method equals method and whose path
// starts with pathPrefix; an empty method or prefix matches anything.
func (s *Server) CallCount(method, pathPrefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if matches(c.Method, c.Path, method, pathPrefix) {
			n++
		}
	}
	return n
}

// SetClock replaces the clock used to issue and check installation and
// user tokens, authorization codes and app JWTs and to stamp created
// objects. Pass nil for time.Now.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	s.now = now
}

// SetLatency delays every answer by d (0 turns it off). A request whose
// context ends first gets no answer.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Failure describes an injected error answer.
type Failure struct {
	// Method matches the request method; empty matches any.
	Method string
	// PathPrefix matches the start of the request path; empty matches any.
	PathPrefix string
	// Status is the status code to answer with.
	Status int
	// Times is how many matching requests fail; negative means every one
	// until Reset or ClearFailures. Zero is treated as 1.
	Times int
	// Body is the JSON body; empty means {"message": ..., "documentation_url": ...}
	// with GitHub's message for Status.
	Body string
	// Header is added to the answer (e.g. Retry-After).
	Header http.Header
	// Hang answers nothing: the request ends when the client gives up (its
	// timeout), as with a GitHub that does not answer. Status is unused.
	Hang bool
}

// Fail injects f. Failures are checked in the order they were added, before
// authentication and routing; the call is recorded with the injected status.
func (s *Server) Fail(f Failure) {
	if f.Times == 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &f)
}

// FailNext makes the next times requests matching method and pathPrefix
// (empty matches any) fail with status and a GitHub-shaped error body.
func (s *Server) FailNext(method, pathPrefix string, status, times int) {
	s.Fail(Failure{Method: method, PathPrefix: pathPrefix, Status: status, Times: times})
}

// SecondaryRateLimitNext makes the next times matching requests fail the
// way GitHub's secondary rate limit does (403, Retry-After, a documentation
// URL go-github recognises as *github.AbuseRateLimitError).
func (s *Server) SecondaryRateLimitNext(method, pathPrefix string, retryAfter time.Duration, times int) {
	h := http.Header{}
	h.Set("Retry-After", fmt.Sprint(int(retryAfter/time.Second)))
	s.Fail(Failure{
		Method: method, PathPrefix: pathPrefix, Status: http.StatusForbidden, Times: times, Header: h,
		Body: `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",` +
			`"documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`,
	})
}

// ClearFailures removes every injected failure.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = nil
}

const rateLimit = 5000

// SetRateLimit sets the primary rate limit the fake reports in the
// X-RateLimit-* headers of installation-authenticated answers. The fake
// does not count calls down: remaining stays as set. With remaining 0 such
// calls get 403 "API rate limit exceeded" (go-github's *RateLimitError, and
// go-github then refuses further calls itself until reset) until reset
// passes on the fake's clock. A zero reset means one hour from now.
func (s *Server) SetRateLimit(remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reset.IsZero() {
		reset = s.now().Add(time.Hour)
	}
	s.rateRemaining = remaining
	s.rateReset = reset
}

func matches(method, path, wantMethod, wantPrefix string) bool {
	return (wantMethod == "" || strings.EqualFold(method, wantMethod)) && strings.HasPrefix(path, wantPrefix)
}

// newID returns the next id of the one increasing counter. Callers hold mu.
func (s *Server) newID() int64 {
	s.nextID++
	return s.nextID
}

// requestInfo travels in the request context so the recorder learns which
// installation a call was made as, and handlers which user.
type requestInfo struct {
	installationID int64
	auth           string // Call.Auth
	user           string // the login of a valid user token, once checked
}

type infoKey struct{}

func infoFrom(r *http.Request) *requestInfo {
	info, _ := r.Context().Value(infoKey{}).(*requestInfo)
	if info == nil {
		return &requestInfo{}
	}
	return info
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// serve wraps the router: it reads and records the request, applies latency
// and injected failures.
func (s *Server) serve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		info := &requestInfo{auth: s.authKind(r)}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.calls = append(s.calls, Call{
				Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body,
				Status: rec.status, InstallationID: info.installationID, Auth: info.auth,
			})
		}()

		s.mu.Lock()
		latency := s.latency
		s.mu.Unlock()
		if latency > 0 {
			t := time.NewTimer(latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}

		rec.Header().Set("Content-Type", "application/json; charset=utf-8")
		rec.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
		if f := s.takeFailure(r); f != nil {
			if f.Hang {
				<-r.Context().Done()
				return
			}
			for k, vs := range f.Header {
				for _, v := range vs {
					rec.Header().Add(k, v)
				}
			}
			if f.Body != "" {
				rec.WriteHeader(f.Status)
				io.WriteString(rec, f.Body)
				return
			}
			writeError(rec, f.Status, messageFor(f.Status))
			return
		}
		if r.Method == http.MethodGet {
			serveConditional(rec, r, next)
			return
		}
		next.ServeHTTP(rec, r)
	})
}

func (s *Server) takeFailure(r *http.Request) *Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.failures {
		if !matches(r.Method, r.URL.Path, f.Method, f.PathPrefix) {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.failures = append(s.failures[:i:i], s.failures[i+1:]...)
			}
		}
		return f
	}
	return nil
}

func messageFor(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "Bad credentials"
	case http.StatusNotFound:
		return "Not Found"
	case http.StatusUnprocessableEntity:
		return "Validation Failed"
	case http.StatusInternalServerError, http.StatusBadGateway:
		return "Server Error"
	}
	return http.StatusText(status)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// App (JWT) endpoints.
	mux.HandleFunc("GET /app", s.withApp(s.getApp))
	mux.HandleFunc("GET /app/installations", s.withApp(s.listInstallations))
	mux.HandleFunc("GET /app/installations/{id}", s.withApp(s.getInstallation))
	mux.HandleFunc("POST /app/installations/{id}/access_tokens", s.withApp(s.createToken))
	mux.HandleFunc("GET /repos/{owner}/{repo}/installation", s.withApp(s.getRepoInstallation))
	mux.HandleFunc("GET /app/hook/deliveries", s.withApp(s.listDeliveries))
	mux.HandleFunc("GET /app/hook/deliveries/{id}", s.withApp(s.getDelivery))
	mux.HandleFunc("POST /app/hook/deliveries/{id}/attempts", s.withApp(s.redeliver))
	// The manifest flow: the web UI's form target, and the unauthenticated exchange.
	mux.HandleFunc("POST /settings/apps/new", s.newAppFromManifest)
	mux.HandleFunc("POST /organizations/{org}/settings/apps/new", s.newAppFromManifest)
	mux.HandleFunc("POST /app-manifests/{code}/conversions", s.convertManifest)
	// The user authorization flow (browser, then the bot's server) and the
	// user-token endpoints.
	mux.HandleFunc("GET /login/oauth/authorize", s.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", s.accessToken)
	mux.HandleFunc("DELETE /applications/{client_id}/token", s.revokeUserToken)
	mux.HandleFunc("GET /user", s.withUser(s.getUser))
	mux.HandleFunc("GET /user/installations", s.withUser(s.listUserInstallations))
	mux.HandleFunc("GET /user/installations/{id}/repositories", s.withUser(s.listUserRepositories))

	// Installation-token endpoints (user tokens may read, see withRepo).
	mux.HandleFunc("GET /repos/{owner}/{repo}/collaborators/{user}/permission", s.withRepo(s.getPermission))
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}", s.withRepo(s.getPull))
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/commits", s.withRepo(s.listPullCommits))
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/files", s.withRepo(s.listPullFiles))
	mux.HandleFunc("GET /repos/{owner}/{repo}/contents/{path...}", s.withRepo(s.getContents))
	mux.HandleFunc("GET /repos/{owner}/{repo}/issues/comments/{id}/reactions", s.withRepo(s.listReactions))
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues/comments/{id}/reactions", s.withRepo(s.createReaction))
	mux.HandleFunc("PATCH /repos/{owner}/{repo}/issues/comments/{id}", s.withRepo(s.editComment))
	mux.HandleFunc("GET /repos/{owner}/{repo}/issues/{number}/comments", s.withRepo(s.listComments))
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues/{number}/comments", s.withRepo(s.createComment))
	mux.HandleFunc("POST /repos/{owner}/{repo}/check-runs", s.withRepo(s.createCheckRun))
	mux.HandleFunc("GET /repos/{owner}/{repo}/check-runs/{id}", s.withRepo(s.getCheckRun))
	mux.HandleFunc("PATCH /repos/{owner}/{repo}/check-runs/{id}", s.withRepo(s.updateCheckRun))
	mux.HandleFunc("GET /repos/{owner}/{repo}/commits/{ref}/check-runs", s.withRepo(s.listCheckRunsForRef))
	// Public: works anonymously too, like on github.com.
	mux.HandleFunc("GET /users/{user}/keys", s.withOptionalToken(s.listKeys))

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Not Found")
	})
	return s.serve(mux)
}

// sortedIDs returns the keys of m in increasing order.
func sortedIDs[V any](m map[int64]V) []int64 {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}
