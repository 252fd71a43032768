package githubtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// GitHub's user authorization for GitHub Apps (docs: "Generating a user
// access token for a GitHub App"): the browser visits
// /login/oauth/authorize?client_id&redirect_uri&state, GitHub redirects to
// the App's callback with ?code&state, and the App's server trades the
// code at POST /login/oauth/access_token for a user access token ("ghu_",
// 8 hours) and a refresh token ("ghr_", about six months). Errors of the
// exchange are HTTP 200 with an "error" field, as on GitHub.

const (
	// DefaultClientID is the ClientID of a Server built by New or NewServer.
	DefaultClientID = "Iv1.fake"
	// CodeLifetime is how long an authorization code may be exchanged.
	CodeLifetime = 10 * time.Minute
	// UserTokenLifetime is how long a user access token is valid.
	UserTokenLifetime = 8 * time.Hour
	// RefreshTokenLifetime is how long a refresh token is valid.
	RefreshTokenLifetime = 15897600 * time.Second

	troubleshootURL = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
)

// userAuthState is the user authorization flow's state. Callers hold mu.
type userAuthState struct {
	signedIn  string   // the browser's GitHub session; "" = nobody
	callbacks []string // the App's callback URLs; the first is the default
	codes     map[string]authCode
	tokens    map[string]userToken // access tokens
	refresh   map[string]userToken // refresh tokens
}

func newUserAuthState() userAuthState {
	return userAuthState{codes: map[string]authCode{}, tokens: map[string]userToken{}, refresh: map[string]userToken{}}
}

type authCode struct {
	login       string
	redirectURI string // where the code was sent; an exchange naming another is refused
	challenge   string // PKCE code_challenge (S256), if the page sent one
	expiresAt   time.Time
}

type userToken struct {
	login     string
	expiresAt time.Time
}

// LogInAs makes login the person signed in to GitHub in the browser: the
// authorize page then grants the App at once as login. An empty login
// signs out (the page then says "not signed in" and redirects nowhere).
func (s *Server) LogInAs(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users.signedIn = login
}

// SetCallbackURL replaces the App's registered callback URLs; the first is
// where authorize sends people when the page names no redirect_uri. A
// Server starts with none, and authorize refuses to run without one.
func (s *Server) SetCallbackURL(urls ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users.callbacks = slices.Clone(urls)
}

// CallbackURLs returns the App's registered callback URLs.
func (s *Server) CallbackURLs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.users.callbacks)
}

// UserToken issues a user access token for login without the web flow,
// for tests of the user-token endpoints. It expires after
// UserTokenLifetime on the fake's clock.
func (s *Server) UserToken(login string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	access, _ := s.issueUserTokens(login)
	return access
}

// UserRequests counts the recorded calls made with a user token issued to
// login (valid or not).
func (s *Server) UserRequests(login string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if who, ok := strings.CutPrefix(c.Auth, "user:"); ok && strings.EqualFold(who, login) {
			n++
		}
	}
	return n
}

// issueUserTokens stores a new access and refresh token for login.
// Callers hold mu.
func (s *Server) issueUserTokens(login string) (access, refresh string) {
	now := s.now()
	access, refresh = newToken("ghu_", 36), newToken("ghr_", 76)
	s.users.tokens[access] = userToken{login: login, expiresAt: now.Add(UserTokenLifetime)}
	s.users.refresh[refresh] = userToken{login: login, expiresAt: now.Add(RefreshTokenLifetime)}
	return access, refresh
}

// writePage answers the browser with a small HTML page.
func writePage(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!DOCTYPE html>\n<title>%s</title>\n<h1>%s</h1>\n<p>%s</p>\n",
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(text))
}

// redirectTo sends the browser to target with params added to its query.
func redirectTo(w http.ResponseWriter, r *http.Request, target string, params url.Values) {
	u, err := url.Parse(target)
	if err != nil {
		writePage(w, http.StatusBadRequest, "Bad callback URL", err.Error())
		return
	}
	q := u.Query()
	for k, vs := range params {
		if vs[0] != "" {
			q[k] = vs
		}
	}
	u.RawQuery = q.Encode()
	w.Header().Del("Content-Type") // let http.Redirect write its HTML body
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// redirectAllowed applies GitHub's rule: same scheme, host and port as the
// callback, and the callback's path or a subdirectory of it.
func redirectAllowed(callback, redirect string) bool {
	c, err1 := url.Parse(callback)
	u, err2 := url.Parse(redirect)
	if err1 != nil || err2 != nil || !u.IsAbs() || u.User != nil {
		return false
	}
	if !strings.EqualFold(c.Scheme, u.Scheme) || !strings.EqualFold(c.Host, u.Host) {
		return false
	}
	if slices.Contains(strings.Split(u.Path, "/"), "..") {
		return false
	}
	return u.Path == c.Path || strings.HasPrefix(u.Path, strings.TrimSuffix(c.Path, "/")+"/")
}

// authorize is the browser's GET /login/oauth/authorize: as the signed-in
// user, it grants the App at once and redirects to the callback with a code.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.ClientID {
		writePage(w, http.StatusNotFound, "Page not found", "No GitHub App has the client_id "+strconv.Quote(q.Get("client_id"))+".")
		return
	}
	s.mu.Lock()
	login, callbacks := s.users.signedIn, slices.Clone(s.users.callbacks)
	s.mu.Unlock()
	if login == "" {
		writePage(w, http.StatusOK, "Sign in to GitHub", "githubtest: not signed in (a test signs someone in with LogInAs).")
		return
	}
	if len(callbacks) == 0 {
		writePage(w, http.StatusBadRequest, "Bad callback URL", "githubtest: the App has no callback URL (SetCallbackURL, or callback_urls in its manifest).")
		return
	}
	state := q.Get("state")
	target := callbacks[0]
	if ru := q.Get("redirect_uri"); ru != "" {
		if !slices.ContainsFunc(callbacks, func(cb string) bool { return redirectAllowed(cb, ru) }) {
			redirectTo(w, r, callbacks[0], url.Values{
				"error":             {"redirect_uri_mismatch"},
				"error_description": {"The redirect_uri MUST match the registered callback URL for this application."},
				"error_uri":         {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch"},
				"state":             {state},
			})
			return
		}
		target = ru
	}
	challenge := q.Get("code_challenge")
	if m := q.Get("code_challenge_method"); challenge != "" && m != "S256" {
		writePage(w, http.StatusBadRequest, "Bad request", "code_challenge_method must be S256, not "+strconv.Quote(m)+".")
		return
	}
	code := randomHex(10)
	s.mu.Lock()
	s.users.codes[code] = authCode{login: login, redirectURI: target, challenge: challenge, expiresAt: s.now().Add(CodeLifetime)}
	s.mu.Unlock()
	redirectTo(w, r, target, url.Values{"code": {code}, "state": {state}})
}

// writeOAuth answers the token endpoint: JSON when asked for, else a form,
// as GitHub does.
func writeOAuth(w http.ResponseWriter, r *http.Request, fields map[string]any) {
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, fields)
		return
	}
	v := url.Values{}
	for k, f := range fields {
		v.Set(k, fmt.Sprint(f))
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, v.Encode())
}

func writeOAuthError(w http.ResponseWriter, r *http.Request, code, description, anchor string) {
	uri := troubleshootURL
	if anchor != "" {
		uri += "#" + anchor
	}
	writeOAuth(w, r, map[string]any{"error": code, "error_description": description, "error_uri": uri})
}

// accessToken is POST /login/oauth/access_token: a code (or a refresh
// token) for a user access token. Client credentials come as form fields
// or, as golang.org/x/oauth2 tries first, HTTP Basic.
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, r, "invalid_request", "The request body is not a form.", "")
		return
	}
	id, secret := r.Form.Get("client_id"), r.Form.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok && id == "" {
		// x/oauth2 query-escapes both before encoding them.
		id, _ = url.QueryUnescape(user)
		secret, _ = url.QueryUnescape(pass)
	}
	if id != s.ClientID || secret != s.ClientSecret {
		writeOAuthError(w, r, "incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.", "incorrect-client-credentials")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var login string
	switch grant := r.Form.Get("grant_type"); grant {
	case "", "authorization_code":
		code := r.Form.Get("code")
		c, ok := s.users.codes[code]
		if !ok || !now.Before(c.expiresAt) {
			writeOAuthError(w, r, "bad_verification_code", "The code passed is incorrect or expired.", "bad-verification-code")
			return
		}
		if ru := r.Form.Get("redirect_uri"); ru != "" && ru != c.redirectURI {
			writeOAuthError(w, r, "redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.", "redirect-uri-mismatch2")
			return
		}
		if c.challenge != "" && pkceS256(r.Form.Get("code_verifier")) != c.challenge {
			writeOAuthError(w, r, "bad_verification_code", "The code_verifier does not match the code_challenge.", "bad-verification-code")
			return
		}
		delete(s.users.codes, code) // a code works once
		login = c.login
	case "refresh_token":
		rt := r.Form.Get("refresh_token")
		t, ok := s.users.refresh[rt]
		if !ok || !now.Before(t.expiresAt) {
			writeOAuthError(w, r, "bad_refresh_token", "The refresh token passed is incorrect or expired.", "bad-refresh-token")
			return
		}
		delete(s.users.refresh, rt) // refresh tokens rotate
		login = t.login
	default:
		writeOAuthError(w, r, "unsupported_grant_type", "The grant_type "+strconv.Quote(grant)+" is not supported.", "")
		return
	}
	access, refresh := s.issueUserTokens(login)
	writeOAuth(w, r, map[string]any{
		"access_token": access, "token_type": "bearer", "scope": "",
		"expires_in": int(UserTokenLifetime / time.Second), "refresh_token": refresh,
		"refresh_token_expires_in": int(RefreshTokenLifetime / time.Second),
	})
}

func pkceS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// userTokenFor looks for a user token on r. isUser is false when r carries
// none (other credentials are someone else's business). With one, login is
// its user, or "" when it has expired and 401 was answered.
func (s *Server) userTokenFor(w http.ResponseWriter, r *http.Request) (login string, isUser bool) {
	scheme, cred := credentials(r)
	if scheme != "token" && scheme != "bearer" {
		return "", false
	}
	s.mu.Lock()
	t, ok := s.users.tokens[cred]
	valid := ok && s.now().Before(t.expiresAt)
	s.mu.Unlock()
	if !ok {
		return "", false
	}
	if !valid {
		writeError(w, http.StatusUnauthorized, "Bad credentials")
		return "", true
	}
	infoFrom(r).user = t.login
	return t.login, true
}

// withUser requires a valid user token. The App itself (a JWT or an
// installation token) gets GitHub's 403: these endpoints act for a person.
func (s *Server) withUser(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if login, isUser := s.userTokenFor(w, r); isUser {
			if login != "" {
				h(w, r, login)
			}
			return
		}
		scheme, cred := credentials(r)
		if scheme == "" {
			writeError(w, http.StatusUnauthorized, "Requires authentication")
			return
		}
		s.mu.Lock()
		tok, inst := s.tokens[cred]
		inst = inst && s.now().Before(tok.expiresAt) && s.installations[tok.installationID] != nil
		s.mu.Unlock()
		jwtOK := strings.Count(cred, ".") == 2 && s.checkJWT(cred) == ""
		if (scheme == "token" || scheme == "bearer") && (inst || jwtOK) {
			writeError(w, http.StatusForbidden, "Resource not accessible by integration")
			return
		}
		writeError(w, http.StatusUnauthorized, "Bad credentials")
	}
}

// userRead decides a repository request made with login's user token:
// GitHub allows what both the user and the App may do. The fake serves
// reads of repositories an installation covers and the user has a role on;
// it refuses writes loudly rather than act as the user.
func (s *Server) userRead(w http.ResponseWriter, r *http.Request, login string) bool {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusForbidden, "githubtest: the fake serves user access tokens on repository endpoints for reads only; write with an installation token")
		return false
	}
	repo := repoName(r)
	s.mu.Lock()
	role := s.roleOf(strings.ToLower(repo), login)
	installed := false
	for _, in := range s.installations {
		installed = installed || in.allows(repo)
	}
	s.mu.Unlock()
	if role == "none" || !installed {
		writeError(w, http.StatusNotFound, "Not Found")
		return false
	}
	return true
}

// roleOf is login's role on the repository with lower-case key, "none"
// when it has none. Callers hold mu.
func (s *Server) roleOf(key, login string) string {
	if rs := s.repos[key]; rs != nil {
		if role := rs.perms[strings.ToLower(login)]; role != "" {
			return role
		}
	}
	return "none"
}

// roleRank orders roles; permissionsJSON and push checks compare ranks.
var roleRank = map[string]int{"none": 0, "read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}

// permissionsJSON is a repository's "permissions" for a user with role.
func permissionsJSON(role string) map[string]bool {
	n := roleRank[role]
	return map[string]bool{"pull": n >= 1, "triage": n >= 2, "push": n >= 3, "maintain": n >= 4, "admin": n >= 5}
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, login string) {
	s.mu.Lock()
	u := s.userJSON(login)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, u)
}

// userRepos lists the repositories of in that login has a role on, by
// name. Callers hold mu.
func (s *Server) userRepos(in *installation, login string) []*repoState {
	var out []*repoState
	for key, rs := range s.repos {
		if in.allows(key) && s.roleOf(key, login) != "none" {
			out = append(out, rs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].fullName) < strings.ToLower(out[j].fullName) })
	return out
}

// listUserInstallations lists the App's installations in which the user
// can reach at least one repository.
func (s *Server) listUserInstallations(w http.ResponseWriter, r *http.Request, login string) {
	s.mu.Lock()
	out := []map[string]any{}
	for _, id := range sortedIDs(s.installations) {
		if in := s.installations[id]; len(s.userRepos(in, login)) > 0 {
			out = append(out, s.installationJSON(in))
		}
	}
	s.mu.Unlock()
	lo, hi := paginate(w, r, len(out))
	writeJSON(w, http.StatusOK, map[string]any{"total_count": len(out), "installations": out[lo:hi]})
}

// listUserRepositories lists the installation's repositories the user has
// a role on, with the user's permissions; 404 when there are none.
func (s *Server) listUserRepositories(w http.ResponseWriter, r *http.Request, login string) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	var repos []*repoState
	in := s.installations[id]
	if in != nil {
		repos = s.userRepos(in, login)
	}
	out := make([]map[string]any, 0, len(repos))
	for _, rs := range repos {
		j := s.repoJSON(rs)
		j["permissions"] = permissionsJSON(s.roleOf(strings.ToLower(rs.fullName), login))
		out = append(out, j)
	}
	s.mu.Unlock()
	if len(out) == 0 {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	selection := "all"
	if in.repos != nil {
		selection = "selected"
	}
	lo, hi := paginate(w, r, len(out))
	writeJSON(w, http.StatusOK, map[string]any{"total_count": len(out), "repository_selection": selection, "repositories": out[lo:hi]})
}

// revokeUserToken is DELETE /applications/{client_id}/token: the App, by its
// client id and secret (basic auth), revokes a user's token. GitHub answers
// 404 for wrong credentials or an unknown token, and 204 when revoked; a
// revoked token then gets 401 "Bad credentials".
func (s *Server) revokeUserToken(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != s.ClientID || pass != s.ClientSecret || r.PathValue("client_id") != s.ClientID {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "Problems parsing JSON")
		return
	}
	s.mu.Lock()
	t, known := s.users.tokens[body.AccessToken]
	if known {
		t.expiresAt = time.Time{} // refused from now on, as expired tokens are
		s.users.tokens[body.AccessToken] = t
	}
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
