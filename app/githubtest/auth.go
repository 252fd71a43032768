package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v60/github"
)

// TokenLifetime is how long an installation token is valid, as on GitHub.
const TokenLifetime = time.Hour

// GenerateAppKey returns a fresh 2048-bit RSA private key as PKCS#1 PEM, the
// format GitHub hands app keys out in.
func GenerateAppKey() ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), nil
}

type appKey struct {
	key *rsa.PrivateKey
	pem []byte
}

// processAppKey is the key every Server of this process shares: RSA key
// generation is slow, especially under -race.
var processAppKey = sync.OnceValues(func() (appKey, error) {
	pemBytes, err := GenerateAppKey()
	if err != nil {
		return appKey{}, err
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(pemBytes)
	return appKey{key, pemBytes}, err
})

// Client returns a go-github client authenticated as the installation
// through ghinstallation, the way the bot builds its clients.
func (s *Server) Client(installationID int64) (*github.Client, error) {
	tr, err := ghinstallation.New(http.DefaultTransport, s.AppID, installationID, s.PrivateKeyPEM)
	if err != nil {
		return nil, err
	}
	tr.BaseURL = s.URL
	return s.newClient(tr)
}

func (s *Server) newClient(tr http.RoundTripper) (*github.Client, error) {
	if s.URL == "" {
		return nil, errors.New("githubtest: server has no URL (built by New, not NewServer)")
	}
	c := github.NewClient(&http.Client{Transport: tr})
	base, err := url.Parse(s.URL + "/")
	if err != nil {
		return nil, err
	}
	c.BaseURL = base
	return c, nil
}

type installation struct {
	id    int64
	repos map[string]bool // lower-case "owner/name"; nil = all repositories
}

func (in *installation) allows(repo string) bool {
	return in.repos == nil || in.repos[strings.ToLower(repo)]
}

type issuedToken struct {
	installationID int64
	expiresAt      time.Time
}

// SetInstallation creates or replaces installation id. With no repos it may
// access every repository; otherwise only the given "owner/name" ones
// (others answer 404, as on GitHub).
func (s *Server) SetInstallation(id int64, repos ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := &installation{id: id}
	if len(repos) > 0 {
		in.repos = map[string]bool{}
		for _, r := range repos {
			in.repos[strings.ToLower(r)] = true
		}
	}
	s.installations[id] = in
}

// RemoveInstallation deletes installation id (the app was uninstalled);
// its tokens stop working.
func (s *Server) RemoveInstallation(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.installations, id)
}

// withApp requires a valid app JWT.
func (s *Server) withApp(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, cred := credentials(r)
		if scheme != "bearer" || strings.Count(cred, ".") != 2 {
			writeError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
			return
		}
		if msg := s.checkJWT(cred); msg != "" {
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		h(w, r)
	}
}

func credentials(r *http.Request) (scheme, cred string) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok {
		return "", ""
	}
	return strings.ToLower(scheme), strings.TrimSpace(cred)
}

// checkJWT validates an app JWT the way GitHub does and returns GitHub's
// complaint, or "" when it is fine.
func (s *Server) checkJWT(raw string) string {
	claims := jwt.MapClaims{}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if _, err := parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return s.publicKey, nil }); err != nil {
		return "A JSON web token could not be decoded"
	}
	iat, okIat := numericClaim(claims["iat"])
	exp, okExp := numericClaim(claims["exp"])
	now := s.clock().Unix()
	switch {
	case !okIat:
		return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	case !okExp:
		return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	case iat > now+1:
		return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
	case exp <= now:
		return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	case exp-iat > 600:
		return "'Expiration time' claim ('exp') is too far in the future"
	}
	if iss := fmt.Sprint(claims["iss"]); iss != strconv.FormatInt(s.AppID, 10) {
		if f, ok := claims["iss"].(float64); !ok || int64(f) != s.AppID {
			return "Integration not found"
		}
	}
	return ""
}

// signedByApp says whether raw is a JWT signed with the App's key, whatever
// its claims.
func (s *Server) signedByApp(raw string) bool {
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	_, err := parser.Parse(raw, func(*jwt.Token) (any, error) { return s.publicKey, nil })
	return err == nil
}

// authKind names the credential on r for Call.Auth.
func (s *Server) authKind(r *http.Request) string {
	scheme, cred := credentials(r)
	if scheme != "token" && scheme != "bearer" {
		return "none"
	}
	s.mu.Lock()
	ut, user := s.users.tokens[cred]
	_, inst := s.tokens[cred]
	s.mu.Unlock()
	switch {
	case user:
		return "user:" + ut.login
	case inst:
		return "installation"
	case strings.Count(cred, ".") == 2 && s.signedByApp(cred):
		return "app"
	}
	return "none"
}

func numericClaim(v any) (int64, bool) {
	f, ok := v.(float64)
	if !ok || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}

func (s *Server) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

// installationFor checks the installation token on r. It answers 401 and
// returns false when the token is missing, unknown or expired.
func (s *Server) installationFor(w http.ResponseWriter, r *http.Request) (*installation, bool) {
	scheme, cred := credentials(r)
	if scheme == "" {
		writeError(w, http.StatusUnauthorized, "Requires authentication")
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := s.tokens[cred]
	in := s.installations[tok.installationID]
	if (scheme != "token" && scheme != "bearer") || !ok || !s.now().Before(tok.expiresAt) || in == nil {
		writeError(w, http.StatusUnauthorized, "Bad credentials")
		return nil, false
	}
	infoFrom(r).installationID = in.id
	return in, true
}

// rateLimited sets the X-RateLimit headers and answers 403 when the
// primary limit is exhausted.
func (s *Server) rateLimited(w http.ResponseWriter, installationID int64) bool {
	s.mu.Lock()
	now := s.now()
	if !s.rateReset.IsZero() && !now.Before(s.rateReset) {
		s.rateRemaining, s.rateReset = rateLimit, time.Time{}
	}
	remaining, reset := s.rateRemaining, s.rateReset
	s.mu.Unlock()
	if reset.IsZero() {
		reset = now.Add(time.Hour)
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(rateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(rateLimit-remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
	if remaining > 0 {
		return false
	}
	writeErrorDoc(w, http.StatusForbidden, fmt.Sprintf("API rate limit exceeded for installation ID %d.", installationID),
		"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits")
	return true
}

// withRepo requires a valid installation token whose installation may
// access {owner}/{repo}, or a user token allowed to read it (userRead).
func (s *Server) withRepo(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if login, isUser := s.userTokenFor(w, r); isUser {
			if login != "" && s.userRead(w, r, login) {
				h(w, r)
			}
			return
		}
		in, ok := s.installationFor(w, r)
		if !ok || s.rateLimited(w, in.id) {
			return
		}
		if !in.allows(repoName(r)) {
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		h(w, r)
	}
}

// withOptionalToken serves anonymous requests and checks a token when one
// is sent (a bad token is a 401 on GitHub even for public data).
func (s *Server) withOptionalToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if login, isUser := s.userTokenFor(w, r); isUser {
			if login != "" {
				h(w, r)
			}
			return
		}
		if r.Header.Get("Authorization") != "" {
			in, ok := s.installationFor(w, r)
			if !ok || s.rateLimited(w, in.id) {
				return
			}
		}
		h(w, r)
	}
}

func repoName(r *http.Request) string {
	return r.PathValue("owner") + "/" + r.PathValue("repo")
}

const tokenAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newToken returns a token of prefix ("ghs_", "ghu_", "ghr_") and n random
// characters. Installation tokens get 120: GitHub's tokens are long (and
// getting longer), so code must not assume 40.
func newToken(prefix string, n int) string {
	var b strings.Builder
	b.WriteString(prefix)
	max := big.NewInt(int64(len(tokenAlphabet)))
	for range n {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err)
		}
		b.WriteByte(tokenAlphabet[n.Int64()])
	}
	return b.String()
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	in := s.installations[id]
	if err != nil || in == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	tok := newToken("ghs_", 120)
	expires := s.now().Add(TokenLifetime).UTC().Truncate(time.Second)
	s.tokens[tok] = issuedToken{installationID: id, expiresAt: expires}
	selection := "all"
	if in.repos != nil {
		selection = "selected"
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":                tok,
		"expires_at":           expires.Format(time.RFC3339),
		"permissions":          appPermissions,
		"repository_selection": selection,
	})
}

// appPermissions and appEvents are the App's settings as app.yml asks for them.
var (
	appPermissions = map[string]string{
		"checks": "write", "issues": "write", "pull_requests": "write", "contents": "read", "metadata": "read",
	}
	appEvents = []string{"issue_comment", "pull_request", "check_run"}
)

// SetAppSettings replaces the App's permissions and events as GET /app
// reports them (e.g. an operator who forgot one).
func (s *Server) SetAppSettings(permissions map[string]string, events ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appPermissions, s.appEvents = maps.Clone(permissions), slices.Clone(events)
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	perms, events := appPermissions, appEvents
	if s.appPermissions != nil {
		perms, events = s.appPermissions, s.appEvents
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"id": s.AppID, "slug": AppSlug, "name": AppSlug, "node_id": fmt.Sprintf("A_%d", s.AppID),
		"owner":       map[string]any{"login": "packit", "id": 1, "type": "Organization"},
		"description": "Launch a VM from a pull request comment",
		"html_url":    "https://github.com/apps/" + AppSlug,
		"permissions": perms,
		"events":      events,
	})
}

func (s *Server) installationJSON(in *installation) map[string]any {
	selection, account := "all", "octo-org"
	if in.repos != nil {
		selection = "selected"
		names := make([]string, 0, len(in.repos))
		for r := range in.repos {
			names = append(names, r)
		}
		sort.Strings(names)
		account, _, _ = strings.Cut(names[0], "/")
	}
	return map[string]any{
		"id": in.id, "app_id": s.AppID, "app_slug": AppSlug, "target_type": "Organization",
		"account":              s.userJSON(account),
		"repository_selection": selection,
		"access_tokens_url":    fmt.Sprintf("https://api.github.com/app/installations/%d/access_tokens", in.id),
		"permissions":          appPermissions,
		"events":               []string{"issue_comment", "pull_request", "check_run"},
	}
}

func (s *Server) listInstallations(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := []map[string]any{}
	for _, id := range sortedIDs(s.installations) {
		out = append(out, s.installationJSON(s.installations[id]))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getInstallation(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	in := s.installations[id]
	var out map[string]any
	if in != nil {
		out = s.installationJSON(in)
	}
	s.mu.Unlock()
	if out == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// getRepoInstallation finds the installation that may access the repo; the
// lowest id wins when several may.
func (s *Server) getRepoInstallation(w http.ResponseWriter, r *http.Request) {
	repo := repoName(r)
	s.mu.Lock()
	var out map[string]any
	for _, id := range sortedIDs(s.installations) {
		if in := s.installations[id]; in.allows(repo) {
			out = s.installationJSON(in)
			break
		}
	}
	s.mu.Unlock()
	if out == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, out)
}
