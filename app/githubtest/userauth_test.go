package githubtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	"golang.org/x/oauth2"

	"github.com/packit/packit-launch/app/githubtest"
)

const callback = "https://bot.example.org/login/callback"

// noRedirects is the browser for the authorize step: it shows where GitHub
// sends it instead of going there.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// userSetup starts a fake with a registered callback and the web UI's
// OAuth configuration.
func userSetup(t *testing.T) (*githubtest.Server, *oauth2.Config) {
	t.Helper()
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	gh.SetCallbackURL(callback)
	return gh, &oauth2.Config{
		ClientID: gh.ClientID, ClientSecret: gh.ClientSecret, RedirectURL: callback,
		Endpoint: oauth2.Endpoint{AuthURL: gh.URL + "/login/oauth/authorize", TokenURL: gh.URL + "/login/oauth/access_token"},
	}
}

// authorize visits authURL as the browser and returns the status and
// where it was sent (nil without a redirect) and the page's text.
func authorize(t *testing.T, authURL string) (int, *url.URL, string) {
	t.Helper()
	resp, err := noRedirects.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	loc, err := resp.Location()
	if errors.Is(err, http.ErrNoLocation) {
		loc = nil
	} else if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, loc, string(body)
}

// code runs the authorize step and returns the code it was redirected with.
func code(t *testing.T, conf *oauth2.Config, opts ...oauth2.AuthCodeOption) string {
	t.Helper()
	status, loc, body := authorize(t, conf.AuthCodeURL("st", opts...))
	if status != http.StatusFound || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %v %s", status, loc, body)
	}
	return loc.Query().Get("code")
}

func userClient(t *testing.T, gh *githubtest.Server, conf *oauth2.Config, tok *oauth2.Token) *github.Client {
	t.Helper()
	return newClient(t, gh, conf.Client(context.Background(), tok).Transport)
}

func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestUserAuthorizationFlow(t *testing.T) {
	gh, conf := userSetup(t)
	ctx := context.Background()
	gh.LogInAs("alice")
	gh.SetPermission(repo, "alice", "write")

	state := "a b&c=d/é?"
	status, loc, _ := authorize(t, conf.AuthCodeURL(state))
	if status != http.StatusFound || loc == nil {
		t.Fatalf("authorize = %d %v, want a redirect", status, loc)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != callback {
		t.Errorf("redirected to %s, want %s", got, callback)
	}
	if loc.Query().Get("state") != state {
		t.Errorf("state = %q, want %q", loc.Query().Get("state"), state)
	}
	c := loc.Query().Get("code")
	tok, err := conf.Exchange(ctx, c)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ghu_") || !strings.HasPrefix(tok.RefreshToken, "ghr_") || tok.TokenType != "bearer" {
		t.Errorf("token = %+v", tok)
	}
	if d := time.Until(tok.Expiry); d < 7*time.Hour || d > 8*time.Hour {
		t.Errorf("token expires in %v, want 8h", d)
	}
	if tok.Extra("refresh_token_expires_in") != int64(15897600) {
		t.Errorf("refresh_token_expires_in = %v", tok.Extra("refresh_token_expires_in"))
	}

	// The code works once.
	if _, err := conf.Exchange(ctx, c); oauthErrorCode(err) != "bad_verification_code" {
		t.Errorf("second exchange: %v, want bad_verification_code", err)
	}

	gh.ResetCalls()
	client := userClient(t, gh, conf, tok)
	u, _, err := client.Users.Get(ctx, "")
	if err != nil || u.GetLogin() != "alice" {
		t.Fatalf("GET /user = %v, %v", u, err)
	}
	ins, _, err := client.Apps.ListUserInstallations(ctx, nil)
	if err != nil || len(ins) != 1 || ins[0].GetID() != githubtest.DefaultInstallationID {
		t.Fatalf("installations = %v, %v", ins, err)
	}
	repos, _, err := client.Apps.ListUserRepos(ctx, ins[0].GetID(), nil)
	if err != nil || repos.GetTotalCount() != 1 || len(repos.Repositories) != 1 {
		t.Fatalf("repositories = %v, %v", repos, err)
	}
	r := repos.Repositories[0]
	p := r.GetPermissions()
	if r.GetFullName() != repo || r.GetName() != name || r.GetOwner().GetLogin() != owner || r.Private == nil ||
		!p["pull"] || !p["triage"] || !p["push"] || p["maintain"] || p["admin"] {
		t.Errorf("repository = %s %s %s private=%v permissions=%v", r.GetFullName(), r.GetName(), r.GetOwner().GetLogin(), r.Private, p)
	}

	if n := gh.UserRequests("alice"); n != 3 {
		t.Errorf("UserRequests(alice) = %d, want 3", n)
	}
	for _, call := range gh.Calls() {
		if call.Auth != "user:alice" {
			t.Errorf("%s %s: Auth = %q, want user:alice", call.Method, call.Path, call.Auth)
		}
	}
}

func TestAuthorizeWithoutSignIn(t *testing.T) {
	gh, conf := userSetup(t)
	status, loc, body := authorize(t, conf.AuthCodeURL("st"))
	if status != http.StatusOK || loc != nil || !strings.Contains(body, "not signed in") {
		t.Errorf("authorize = %d %v %q, want 200 'not signed in' and no redirect", status, loc, body)
	}

	gh.LogInAs("alice")
	unknown := *conf
	unknown.ClientID = "Iv1.someoneelse"
	status, loc, _ = authorize(t, unknown.AuthCodeURL("st"))
	if status != http.StatusNotFound || loc != nil {
		t.Errorf("unknown client_id: %d %v, want 404 and no redirect", status, loc)
	}

	gh.LogInAs("")
	status, loc, _ = authorize(t, conf.AuthCodeURL("st"))
	if status != http.StatusOK || loc != nil {
		t.Errorf("signed out: %d %v, want 200 and no redirect", status, loc)
	}
}

func TestAuthorizeRedirectURI(t *testing.T) {
	gh, conf := userSetup(t)
	gh.LogInAs("alice")
	tests := []struct {
		redirect string
		ok       bool
	}{
		{"", true}, // the registered callback
		{callback, true},
		{callback + "/deeper", true},
		{callback + "?next=/launches", true},
		{"https://bot.example.org/login/callbackx", false},
		{"https://bot.example.org/login", false},
		{"https://bot.example.org/", false},
		{"https://bot.example.org/login/callback/../../evil", false},
		{"http://bot.example.org/login/callback", false},
		{"https://bot.example.org:8443/login/callback", false},
		{"https://evil.example.org/login/callback", false},
		{"https://bot.example.org@evil.example.org/login/callback", false},
		{"/login/callback", false},
	}
	for _, tt := range tests {
		t.Run(tt.redirect, func(t *testing.T) {
			c := *conf
			c.RedirectURL = tt.redirect
			status, loc, body := authorize(t, c.AuthCodeURL("my-state"))
			if status != http.StatusFound || loc == nil {
				t.Fatalf("authorize = %d %v %s, want a redirect", status, loc, body)
			}
			q := loc.Query()
			if q.Get("state") != "my-state" {
				t.Errorf("state = %q", q.Get("state"))
			}
			if tt.ok {
				want := tt.redirect
				if want == "" {
					want = callback
				}
				if !strings.HasPrefix(loc.String(), strings.Split(want, "?")[0]+"?") || q.Get("code") == "" {
					t.Errorf("redirected to %s, want %s with a code", loc, want)
				}
				if strings.Contains(tt.redirect, "next=") && q.Get("next") != "/launches" {
					t.Errorf("the redirect_uri's own query was lost: %s", loc)
				}
				return
			}
			// GitHub sends the error to the registered callback, never to the given one.
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != callback || q.Get("error") != "redirect_uri_mismatch" ||
				q.Get("error_description") == "" || q.Get("code") != "" {
				t.Errorf("redirected to %s, want %s?error=redirect_uri_mismatch", loc, callback)
			}
		})
	}
}

func TestAuthorizeNeedsACallback(t *testing.T) {
	gh, conf := userSetup(t)
	gh.LogInAs("alice")
	gh.SetCallbackURL()
	if status, loc, _ := authorize(t, conf.AuthCodeURL("st")); status != http.StatusBadRequest || loc != nil {
		t.Errorf("authorize = %d %v, want 400 and no redirect", status, loc)
	}
}

func TestTokenExchangeErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// exchange gets a fresh code and returns the exchange's error.
		exchange func(gh *githubtest.Server, conf *oauth2.Config, code string) error
		want     string
	}{
		{"wrong secret", func(_ *githubtest.Server, conf *oauth2.Config, code string) error {
			c := *conf
			c.ClientSecret = "wrong"
			_, err := c.Exchange(ctx, code)
			return err
		}, "incorrect_client_credentials"},
		{"wrong client id", func(_ *githubtest.Server, conf *oauth2.Config, code string) error {
			c := *conf
			c.ClientID = "Iv1.other"
			_, err := c.Exchange(ctx, code)
			return err
		}, "incorrect_client_credentials"},
		{"unknown code", func(_ *githubtest.Server, conf *oauth2.Config, _ string) error {
			_, err := conf.Exchange(ctx, "0123456789abcdef0123")
			return err
		}, "bad_verification_code"},
		{"expired code", func(gh *githubtest.Server, conf *oauth2.Config, code string) error {
			gh.SetClock(func() time.Time { return time.Now().Add(githubtest.CodeLifetime + time.Second) })
			_, err := conf.Exchange(ctx, code)
			return err
		}, "bad_verification_code"},
		{"redirect_uri differs from authorize's", func(_ *githubtest.Server, conf *oauth2.Config, code string) error {
			c := *conf
			c.RedirectURL = callback + "/other"
			_, err := c.Exchange(ctx, code)
			return err
		}, "redirect_uri_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh, conf := userSetup(t)
			gh.LogInAs("alice")
			c := code(t, conf)
			if err := tt.exchange(gh, conf, c); oauthErrorCode(err) != tt.want {
				t.Errorf("exchange: %v, want %s", err, tt.want)
			}
		})
	}
}

// postToken posts form to the token endpoint asking for JSON.
func postToken(t *testing.T, gh *githubtest.Server, form url.Values) (int, string, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", gh.URL+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), out
}

func TestTokenExchangeJSON(t *testing.T) {
	gh, conf := userSetup(t)
	gh.LogInAs("alice")
	form := url.Values{"client_id": {gh.ClientID}, "client_secret": {"nope"}, "code": {code(t, conf)}}
	status, ctype, out := postToken(t, gh, form)
	if status != http.StatusOK || !strings.HasPrefix(ctype, "application/json") ||
		out["error"] != "incorrect_client_credentials" || out["error_description"] == nil || out["error_uri"] == nil {
		t.Errorf("wrong secret: %d %s %v", status, ctype, out)
	}
	form.Set("client_secret", gh.ClientSecret)
	status, _, out = postToken(t, gh, form)
	if status != http.StatusOK || !strings.HasPrefix(out["access_token"].(string), "ghu_") || out["token_type"] != "bearer" ||
		out["scope"] != "" || out["expires_in"] != 28800.0 || !strings.HasPrefix(out["refresh_token"].(string), "ghr_") ||
		out["refresh_token_expires_in"] != 15897600.0 {
		t.Errorf("exchange: %d %v", status, out)
	}
}

func TestRefreshToken(t *testing.T) {
	gh, conf := userSetup(t)
	ctx := context.Background()
	gh.LogInAs("alice")
	tok, err := conf.Exchange(ctx, code(t, conf))
	if err != nil {
		t.Fatal(err)
	}
	// Past the access token's life on the fake's clock it is refused; the
	// refresh token gets a new one, once.
	gh.SetClock(func() time.Time { return time.Now().Add(githubtest.UserTokenLifetime + time.Minute) })
	if _, _, err := userClient(t, gh, conf, tok).Users.Get(ctx, ""); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("expired token: %v, want 401", err)
	}
	fresh, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %+v, %v", fresh, err)
	}
	if u, _, err := userClient(t, gh, conf, fresh).Users.Get(ctx, ""); err != nil || u.GetLogin() != "alice" {
		t.Errorf("refreshed token: %v, %v", u, err)
	}
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if oauthErrorCode(err) != "bad_refresh_token" {
		t.Errorf("reused refresh token: %v, want bad_refresh_token", err)
	}
}

func TestPKCE(t *testing.T) {
	gh, conf := userSetup(t)
	ctx := context.Background()
	gh.LogInAs("alice")
	verifier := oauth2.GenerateVerifier()
	c := code(t, conf, oauth2.S256ChallengeOption(verifier))
	if _, err := conf.Exchange(ctx, c); oauthErrorCode(err) != "bad_verification_code" {
		t.Errorf("no verifier: %v", err)
	}
	if _, err := conf.Exchange(ctx, c, oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthErrorCode(err) != "bad_verification_code" {
		t.Errorf("wrong verifier: %v", err)
	}
	if _, err := conf.Exchange(ctx, c, oauth2.VerifierOption(verifier)); err != nil {
		t.Errorf("right verifier: %v", err)
	}
}

func TestUserTokenBoundaries(t *testing.T) {
	gh, _ := userSetup(t)
	ctx := context.Background()
	gh.SetPermission(repo, "alice", "write")
	user := "Bearer " + gh.UserToken("alice")
	app := appClient(t, gh, gh.AppID, gh.PrivateKeyPEM)
	tok, _, err := app.Apps.CreateInstallationToken(ctx, githubtest.DefaultInstallationID, nil)
	if err != nil {
		t.Fatal(err)
	}
	installation := "token " + tok.GetToken()

	tests := []struct {
		name, method, path, auth string
		status                   int
		message                  string
	}{
		{"user token on GET /app", "GET", "/app", user, 401, "A JSON web token could not be decoded"},
		{"user token on /app/installations", "GET", "/app/installations", user, 401, "A JSON web token could not be decoded"},
		{"user token creating an installation token", "POST", "/app/installations/1/access_tokens", user, 401, "A JSON web token could not be decoded"},
		{"user token on a repo's installation", "GET", "/repos/octo/hello/installation", user, 401, "A JSON web token could not be decoded"},
		{"installation token on /user", "GET", "/user", installation, 403, "Resource not accessible by integration"},
		{"installation token on /user/installations", "GET", "/user/installations", installation, 403, "Resource not accessible by integration"},
		{"installation token on an installation's repositories", "GET", "/user/installations/1/repositories", installation, 403, "Resource not accessible by integration"},
		{"unknown user token", "GET", "/user", "token ghu_nope", 401, "Bad credentials"},
		{"no token on /user", "GET", "/user", "", 401, "Requires authentication"},
		{"user token reading a pull request", "GET", "/repos/octo/hello/pulls/1", user, 200, ""},
		{"user token reading a repo it has no role on", "GET", "/repos/octo/private/pulls/1", user, 404, "Not Found"},
		{"user token writing a comment", "POST", "/repos/octo/hello/issues/1/comments", user, 403, ""},
		{"user token creating a check run", "POST", "/repos/octo/hello/check-runs", user, 403, ""},
		{"user token with push access reading a permission", "GET", "/repos/octo/hello/collaborators/bob/permission", user, 200, ""},
		{"user token reading public keys", "GET", "/users/bob/keys", user, 200, ""},
	}
	gh.SetPull(repo, githubtest.PullRequest{Number: 1})
	gh.SetPull("octo/private", githubtest.PullRequest{Number: 1})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.method == "POST" {
				body = map[string]any{"body": "hi", "name": "x", "head_sha": sha}
			}
			status, out := raw(t, tt.method, gh.URL+tt.path, tt.auth, body)
			if status != tt.status || (tt.message != "" && out["message"] != tt.message) {
				t.Errorf("%d %v, want %d %q", status, out["message"], tt.status, tt.message)
			}
			if tt.status == 403 && out["message"] == nil {
				t.Errorf("a refusal without a message")
			}
		})
	}

	// An app JWT on /user is the App, not a person.
	_, _, err = app.Users.Get(ctx, "")
	if statusOf(err) != http.StatusForbidden {
		t.Errorf("app JWT on /user: %v, want 403", err)
	}

	// Read access is not push access.
	gh.SetPermission(repo, "carol", "read")
	status, out := raw(t, "GET", gh.URL+"/repos/octo/hello/collaborators/bob/permission", "token "+gh.UserToken("carol"), nil)
	if status != http.StatusForbidden || out["message"] != "Must have push access to view collaborator permission." {
		t.Errorf("read-only user reading a permission: %d %v", status, out)
	}

	// A user token expires after 8 hours of the fake's clock.
	gh.SetClock(func() time.Time { return time.Now().Add(githubtest.UserTokenLifetime + time.Second) })
	for _, path := range []string{"/user", "/repos/octo/hello/pulls/1"} {
		if status, out := raw(t, "GET", gh.URL+path, user, nil); status != http.StatusUnauthorized || out["message"] != "Bad credentials" {
			t.Errorf("expired user token on %s: %d %v", path, status, out)
		}
	}

	kinds := map[string]bool{}
	for _, c := range gh.Calls() {
		kinds[c.Auth] = true
	}
	for _, k := range []string{"app", "installation", "user:alice", "user:carol", "none"} {
		if !kinds[k] {
			t.Errorf("no call recorded with Auth %q (have %v)", k, kinds)
		}
	}
}

func TestUserRepositoriesFollowPermissions(t *testing.T) {
	gh, _ := userSetup(t)
	ctx := context.Background()
	gh.SetInstallation(2, "org2/a", "org2/b")
	gh.SetPermission("octo/a", "alice", "admin")
	gh.SetPermission("octo/b", "alice", "read")
	gh.SetPermission("octo/c", "alice", "none")
	gh.SetPermission("octo/c", "bob", "maintain")
	gh.SetPermission("org2/a", "alice", "triage")

	client := func(login string) *github.Client {
		return newClient(t, gh, &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: gh.UserToken(login)})})
	}
	alice := client("alice")
	ins, _, err := alice.Apps.ListUserInstallations(ctx, nil)
	if err != nil || len(ins) != 2 || ins[0].GetID() != 1 || ins[1].GetID() != 2 {
		t.Fatalf("alice's installations = %v, %v", ins, err)
	}
	perms := func(c *github.Client, id int64) map[string]map[string]bool {
		t.Helper()
		out := map[string]map[string]bool{}
		repos, _, err := c.Apps.ListUserRepos(ctx, id, nil)
		if err != nil {
			t.Fatalf("installation %d: %v", id, err)
		}
		for _, r := range repos.Repositories {
			out[r.GetFullName()] = r.GetPermissions()
		}
		return out
	}
	all := perms(alice, 1)
	if len(all) != 3 || !all["octo/a"]["admin"] || all["octo/b"]["triage"] || !all["octo/b"]["pull"] ||
		!all["org2/a"]["triage"] || all["org2/a"]["push"] || all["octo/c"] != nil {
		t.Errorf("alice in installation 1: %v", all)
	}
	if sel := perms(alice, 2); len(sel) != 1 || sel["org2/a"] == nil {
		t.Errorf("alice in installation 2: %v", sel)
	}
	bob := client("bob")
	if p := perms(bob, 1); len(p) != 1 || !p["octo/c"]["maintain"] || p["octo/c"]["admin"] {
		t.Errorf("bob in installation 1: %v", p)
	}
	if ins, _, err := bob.Apps.ListUserInstallations(ctx, nil); err != nil || len(ins) != 1 {
		t.Errorf("bob's installations = %v, %v", ins, err)
	}
	for _, id := range []int64{2, 99} {
		if _, _, err := bob.Apps.ListUserRepos(ctx, id, nil); statusOf(err) != http.StatusNotFound {
			t.Errorf("bob in installation %d: %v, want 404", id, err)
		}
	}
	nobody := client("nobody")
	if ins, _, err := nobody.Apps.ListUserInstallations(ctx, nil); err != nil || len(ins) != 0 {
		t.Errorf("nobody's installations = %v, %v", ins, err)
	}
}

func TestUserRepositoriesPagination(t *testing.T) {
	gh, _ := userSetup(t)
	ctx := context.Background()
	for _, r := range []string{"octo/e", "octo/d", "octo/c", "octo/b", "octo/a"} {
		gh.SetPermission(r, "alice", "write")
	}
	c := newClient(t, gh, &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: gh.UserToken("alice")})})
	var names []string
	opts := &github.ListOptions{PerPage: 2}
	pages := 0
	for {
		repos, resp, err := c.Apps.ListUserRepos(ctx, 1, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if repos.GetTotalCount() != 5 {
			t.Errorf("total_count = %d, want 5", repos.GetTotalCount())
		}
		if pages == 1 && (resp.NextPage != 2 || resp.LastPage != 3) {
			t.Errorf("first page: next %d last %d, Link %q", resp.NextPage, resp.LastPage, resp.Header.Get("Link"))
		}
		for _, r := range repos.Repositories {
			names = append(names, r.GetFullName())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if pages != 3 || strings.Join(names, " ") != "octo/a octo/b octo/c octo/d octo/e" {
		t.Errorf("%d pages: %v", pages, names)
	}
	if n := gh.UserRequests("alice"); n != 3 {
		t.Errorf("UserRequests = %d, want 3", n)
	}
}

// The App created through the manifest flow is the one the user
// authorization flow knows: its callback_urls and client credentials.
func TestManifestAppSignsUsersIn(t *testing.T) {
	gh := githubtest.NewServer()
	defer gh.Close()
	manifest := `{"name":"launch","url":"https://bot.example.org","hook_attributes":{"url":"https://bot.example.org/hook"},` +
		`"redirect_url":"https://bot.example.org/setup","callback_urls":["` + callback + `"]}`
	resp, err := noRedirects.PostForm(gh.URL+"/settings/apps/new?state=s", url.Values{"manifest": {manifest}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	status, app := raw(t, "POST", gh.URL+"/app-manifests/"+loc.Query().Get("code")+"/conversions", "", nil)
	if status != http.StatusCreated {
		t.Fatalf("conversion: %d %v", status, app)
	}
	if got := gh.CallbackURLs(); len(got) != 1 || got[0] != callback {
		t.Errorf("CallbackURLs = %v", got)
	}
	conf := &oauth2.Config{
		ClientID: app["client_id"].(string), ClientSecret: app["client_secret"].(string), RedirectURL: callback,
		Endpoint: oauth2.Endpoint{AuthURL: gh.URL + "/login/oauth/authorize", TokenURL: gh.URL + "/login/oauth/access_token"},
	}
	gh.LogInAs("alice")
	if _, err := conf.Exchange(context.Background(), code(t, conf)); err != nil {
		t.Errorf("the manifest App's credentials: %v", err)
	}
}

// The App revokes a user's token with its client id and secret; the token
// then gets 401, and a wrong secret revokes nothing.
func TestRevokedUserTokenIsRefused(t *testing.T) {
	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetPermission("octo/hello", "alice", "write")
	token := gh.UserToken("alice")
	revoke := func(secret string) int {
		req, _ := http.NewRequest(http.MethodDelete, gh.URL+"/applications/"+gh.ClientID+"/token", strings.NewReader(`{"access_token":"`+token+`"}`))
		req.SetBasicAuth(gh.ClientID, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	me := func() int {
		req, _ := http.NewRequest(http.MethodGet, gh.URL+"/user", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := revoke("wrong"); got != http.StatusNotFound || me() != http.StatusOK {
		t.Fatalf("a wrong secret: %d, then /user %d", got, me())
	}
	if got := revoke(gh.ClientSecret); got != http.StatusNoContent {
		t.Fatalf("revoke: %d", got)
	}
	if got := me(); got != http.StatusUnauthorized {
		t.Fatalf("/user with a revoked token: %d, want 401", got)
	}
}
