package githubtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/app/githubtest"
)

const (
	repo  = "octo/hello"
	owner = "octo"
	name  = "hello"
	sha   = "0123456789abcdef0123456789abcdef01234567"
)

// setup starts a fake and an installation client built the way the bot
// builds it: ghinstallation.New + BaseURL on both.
func setup(t *testing.T) (*githubtest.Server, *github.Client, *ghinstallation.Transport) {
	t.Helper()
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	tr, err := ghinstallation.New(http.DefaultTransport, gh.AppID, githubtest.DefaultInstallationID, gh.PrivateKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tr.BaseURL = gh.URL
	return gh, newClient(t, gh, tr), tr
}

func newClient(t *testing.T, gh *githubtest.Server, tr http.RoundTripper) *github.Client {
	t.Helper()
	c := github.NewClient(&http.Client{Transport: tr})
	base, err := url.Parse(gh.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = base
	return c
}

func appClient(t *testing.T, gh *githubtest.Server, appID int64, key []byte) *github.Client {
	t.Helper()
	tr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, appID, key)
	if err != nil {
		t.Fatal(err)
	}
	tr.BaseURL = gh.URL
	return newClient(t, gh, tr)
}

// raw sends a request with the given Authorization header and returns the
// status and decoded JSON body.
func raw(t *testing.T, method, u, auth string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func statusOf(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		return er.Response.StatusCode
	}
	var he *ghinstallation.HTTPError
	if errors.As(err, &he) && he.Response != nil {
		return he.Response.StatusCode
	}
	return 0
}

func TestTokenExchange(t *testing.T) {
	gh, client, tr := setup(t)
	ctx := context.Background()

	tok, err := tr.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "ghs_") || len(tok) < 100 {
		t.Errorf("token %q: want a long ghs_ token", tok)
	}
	expires, _, err := tr.Expiry()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(expires); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("token expires in %v, want about 1h", d)
	}

	if _, _, err := client.Repositories.GetPermissionLevel(ctx, owner, name, "alice"); err != nil {
		t.Fatal(err)
	}
	calls := gh.Calls()
	if len(calls) != 2 {
		t.Fatalf("calls = %+v, want token exchange + one call", calls)
	}
	if c := calls[0]; c.Method != "POST" || c.Path != "/app/installations/1/access_tokens" || c.Status != 201 {
		t.Errorf("first call = %+v", c)
	}
	if c := calls[1]; c.InstallationID != githubtest.DefaultInstallationID || c.Status != 200 {
		t.Errorf("second call = %+v", c)
	}

	// The helper client works the same way.
	hc, err := gh.Client(githubtest.DefaultInstallationID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := hc.Repositories.GetPermissionLevel(ctx, owner, name, "alice"); err != nil {
		t.Fatal(err)
	}
}

func TestAuthFailures(t *testing.T) {
	otherKey, err := githubtest.GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	permURL := func(gh *githubtest.Server) string {
		return gh.URL + "/repos/octo/hello/collaborators/alice/permission"
	}
	tests := []struct {
		name string
		// call returns the status of the failed call.
		call func(t *testing.T, gh *githubtest.Server) int
		want int
	}{
		{"app JWT signed with another key", func(t *testing.T, gh *githubtest.Server) int {
			_, _, err := appClient(t, gh, gh.AppID, otherKey).Apps.Get(ctx, "")
			return statusOf(err)
		}, 401},
		{"token exchange with another key", func(t *testing.T, gh *githubtest.Server) int {
			tr, _ := ghinstallation.New(http.DefaultTransport, gh.AppID, 1, otherKey)
			tr.BaseURL = gh.URL
			_, err := tr.Token(ctx)
			return statusOf(err)
		}, 401},
		{"app JWT with another app id", func(t *testing.T, gh *githubtest.Server) int {
			_, _, err := appClient(t, gh, gh.AppID+1, gh.PrivateKeyPEM).Apps.Get(ctx, "")
			return statusOf(err)
		}, 401},
		{"app JWT expired by the fake's clock", func(t *testing.T, gh *githubtest.Server) int {
			gh.SetClock(func() time.Time { return time.Now().Add(10 * time.Minute) })
			_, _, err := appClient(t, gh, gh.AppID, gh.PrivateKeyPEM).Apps.Get(ctx, "")
			return statusOf(err)
		}, 401},
		{"no JWT on an app endpoint", func(t *testing.T, gh *githubtest.Server) int {
			code, _ := raw(t, "GET", gh.URL+"/app/hook/deliveries", "", nil)
			return code
		}, 401},
		{"installation token on an app endpoint", func(t *testing.T, gh *githubtest.Server) int {
			c, _ := gh.Client(1)
			_, _, err := c.Apps.ListHookDeliveries(ctx, nil)
			return statusOf(err)
		}, 401},
		{"token for an unknown installation", func(t *testing.T, gh *githubtest.Server) int {
			c, _ := gh.Client(99)
			_, _, err := c.Repositories.GetPermissionLevel(ctx, owner, name, "alice")
			return statusOf(err)
		}, 404},
		{"missing token", func(t *testing.T, gh *githubtest.Server) int {
			code, body := raw(t, "GET", permURL(gh), "", nil)
			if body["message"] != "Requires authentication" {
				t.Errorf("message = %v", body["message"])
			}
			return code
		}, 401},
		{"unknown token", func(t *testing.T, gh *githubtest.Server) int {
			code, body := raw(t, "GET", permURL(gh), "token ghs_nope", nil)
			if body["message"] != "Bad credentials" {
				t.Errorf("message = %v", body["message"])
			}
			return code
		}, 401},
		{"expired token", func(t *testing.T, gh *githubtest.Server) int {
			c, _ := gh.Client(1)
			if _, _, err := c.Repositories.GetPermissionLevel(ctx, owner, name, "alice"); err != nil {
				t.Fatalf("fresh token: %v", err)
			}
			gh.SetClock(func() time.Time { return time.Now().Add(githubtest.TokenLifetime + time.Minute) })
			_, _, err := c.Repositories.GetPermissionLevel(ctx, owner, name, "alice")
			return statusOf(err)
		}, 401},
		{"uninstalled app", func(t *testing.T, gh *githubtest.Server) int {
			c, _ := gh.Client(1)
			if _, _, err := c.Repositories.GetPermissionLevel(ctx, owner, name, "alice"); err != nil {
				t.Fatalf("fresh token: %v", err)
			}
			gh.RemoveInstallation(1)
			_, _, err := c.Repositories.GetPermissionLevel(ctx, owner, name, "alice")
			return statusOf(err)
		}, 401},
		{"repo outside the installation", func(t *testing.T, gh *githubtest.Server) int {
			gh.SetInstallation(7, "octo/other")
			c, _ := gh.Client(7)
			if _, _, err := c.Repositories.GetPermissionLevel(ctx, "octo", "other", "alice"); err != nil {
				t.Fatalf("installed repo: %v", err)
			}
			_, _, err := c.Repositories.GetPermissionLevel(ctx, owner, name, "alice")
			return statusOf(err)
		}, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := githubtest.NewServer()
			defer gh.Close()
			if got := tt.call(t, gh); got != tt.want {
				t.Errorf("status = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAppEndpoints(t *testing.T) {
	gh := githubtest.NewServer()
	defer gh.Close()
	gh.SetInstallation(5, "Octo/Hello")
	app := appClient(t, gh, gh.AppID, gh.PrivateKeyPEM)
	ctx := context.Background()

	a, _, err := app.Apps.Get(ctx, "")
	if err != nil || a.GetID() != gh.AppID || a.GetSlug() != githubtest.AppSlug {
		t.Errorf("Apps.Get = %+v, %v", a, err)
	}
	ins, _, err := app.Apps.ListInstallations(ctx, nil)
	if err != nil || len(ins) != 2 {
		t.Fatalf("ListInstallations = %v, %v", ins, err)
	}
	in, _, err := app.Apps.FindRepositoryInstallation(ctx, "octo", "hello")
	if err != nil || in.GetID() != 1 {
		t.Errorf("FindRepositoryInstallation = %v, %v; want the all-repos installation 1", in, err)
	}
	gh.RemoveInstallation(1)
	in, _, err = app.Apps.FindRepositoryInstallation(ctx, "octo", "hello")
	if err != nil || in.GetID() != 5 || in.GetRepositorySelection() != "selected" {
		t.Errorf("FindRepositoryInstallation = %v, %v; want 5", in, err)
	}
	if _, _, err := app.Apps.FindRepositoryInstallation(ctx, "octo", "nope"); statusOf(err) != 404 {
		t.Errorf("uninstalled repo: %v, want 404", err)
	}
}

func TestPermission(t *testing.T) {
	gh, client, _ := setup(t)
	tests := []struct{ role, want string }{
		{"admin", "admin"},
		{"maintain", "write"},
		{"write", "write"},
		{"triage", "read"},
		{"read", "read"},
		{"none", "none"},
		{"", "none"}, // never set
	}
	for i, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			user := fmt.Sprintf("user%d", i)
			if tt.role != "" {
				gh.SetPermission(repo, user, tt.role)
			}
			p, _, err := client.Repositories.GetPermissionLevel(context.Background(), owner, name, user)
			if err != nil {
				t.Fatal(err)
			}
			if p.GetPermission() != tt.want || p.GetUser().GetLogin() != user {
				t.Errorf("got %q for %q, want %q", p.GetPermission(), p.GetUser().GetLogin(), tt.want)
			}
		})
	}
}

func TestGetPull(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	gh.SetDefaultBranch(repo, "trunk")
	gh.SetPull(repo, githubtest.PullRequest{Number: 7, HeadSHA: sha, HeadRef: "fix", User: "alice", HeadRepo: "alice/hello"})
	gh.SetPull(repo, githubtest.PullRequest{Number: 8, State: "closed", Merged: true, BaseRef: "rel"})

	pr, _, err := client.PullRequests.Get(ctx, owner, name, 7)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{pr.GetNumber(), pr.GetState(), pr.GetHead().GetSHA(), pr.GetHead().GetRef(),
		pr.GetHead().GetRepo().GetFullName(), pr.GetBase().GetRef(), pr.GetBase().GetRepo().GetFullName(),
		pr.GetUser().GetLogin(), pr.GetHTMLURL(), pr.GetMerged()}
	want := []any{7, "open", sha, "fix", "alice/hello", "trunk", repo, "alice", "https://github.com/octo/hello/pull/7", false}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("PR 7 = %v, want %v", got, want)
	}
	pr, _, err = client.PullRequests.Get(ctx, owner, name, 8)
	if err != nil || pr.GetState() != "closed" || !pr.GetMerged() || pr.GetBase().GetRef() != "rel" || len(pr.GetHead().GetSHA()) != 40 {
		t.Errorf("PR 8 = %+v, %v", pr, err)
	}
	if _, _, err := client.PullRequests.Get(ctx, owner, name, 9); statusOf(err) != 404 {
		t.Errorf("unknown PR: %v, want 404", err)
	}
}

func TestGetContents(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	long := strings.Repeat("machines:\n  default: {image: ami-123, lifetime: 2h}\n", 20)
	gh.SetFile(repo, "", ".packit-launch.yaml", long)
	gh.SetFile(repo, "feature", ".packit-launch.yaml", "loose: true\n")
	gh.SetFile(repo, "main", "docs/hello.txt", "hello\n")

	tests := []struct {
		name, path, ref, want string
		status                int
	}{
		{"default branch without ref", ".packit-launch.yaml", "", long, 200},
		{"explicit base ref", ".packit-launch.yaml", "main", long, 200},
		{"other ref", ".packit-launch.yaml", "feature", "loose: true\n", 200},
		{"nested path", "docs/hello.txt", "", "hello\n", 200},
		{"absent file", "nope.yaml", "main", "", 404},
		{"absent ref", "docs/hello.txt", "feature", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts *github.RepositoryContentGetOptions
			if tt.ref != "" {
				opts = &github.RepositoryContentGetOptions{Ref: tt.ref}
			}
			fc, _, _, err := client.Repositories.GetContents(ctx, owner, name, tt.path, opts)
			if tt.status != 200 {
				if statusOf(err) != tt.status {
					t.Fatalf("err = %v, want %d", err, tt.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := fc.GetContent()
			if err != nil || got != tt.want {
				t.Errorf("content = %q, %v; want %q", got, err, tt.want)
			}
			if fc.GetType() != "file" || fc.GetEncoding() != "base64" || fc.GetPath() != tt.path {
				t.Errorf("file = %s", fc)
			}
		})
	}

	// The sha is git's blob id (git hash-object of "hello\n").
	fc, _, _, err := client.Repositories.GetContents(ctx, owner, name, "docs/hello.txt", nil)
	if err != nil || fc.GetSHA() != "ce013625030ba8dba906f756967f9e9ca394464a" || fc.GetName() != "hello.txt" {
		t.Errorf("sha/name = %q %q, %v", fc.GetSHA(), fc.GetName(), err)
	}
	calls := gh.Calls()
	if last := calls[len(calls)-1]; last.Path != "/repos/octo/hello/contents/docs/hello.txt" {
		t.Errorf("path = %q", last.Path)
	}
}

func TestListKeysPagination(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	var want []string
	for i := range 45 {
		want = append(want, fmt.Sprintf("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI%03d alice", i))
	}
	gh.SetKeys("alice", want...)

	tests := []struct {
		perPage   int
		wantPages int
	}{
		{0, 2}, // GitHub's default of 30
		{10, 5},
		{45, 1},
		{100, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("per_page=", tt.perPage), func(t *testing.T) {
			opts := &github.ListOptions{PerPage: tt.perPage}
			var got []string
			pages := 0
			for {
				keys, resp, err := client.Users.ListKeys(ctx, "alice", opts)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, k := range keys {
					got = append(got, k.GetKey())
					if k.GetID() == 0 {
						t.Errorf("key without id")
					}
				}
				if pages == 1 && tt.wantPages > 1 && resp.LastPage != tt.wantPages {
					t.Errorf("LastPage = %d, want %d", resp.LastPage, tt.wantPages)
				}
				if resp.NextPage == 0 {
					break
				}
				opts.Page = resp.NextPage
			}
			if pages != tt.wantPages || strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%d pages, %d keys; want %d pages, 45 keys in order", pages, len(got), tt.wantPages)
			}
		})
	}

	keys, _, err := client.Users.ListKeys(ctx, "nobody", nil)
	if err != nil || len(keys) != 0 {
		t.Errorf("user without keys: %v, %v", keys, err)
	}
	// Public data: anonymous requests work, as on github.com.
	anon := newClient(t, gh, http.DefaultTransport)
	keys, _, err = anon.Users.ListKeys(ctx, "alice", &github.ListOptions{PerPage: 5})
	if err != nil || len(keys) != 5 {
		t.Errorf("anonymous: %d keys, %v", len(keys), err)
	}
}

func TestReactionsIdempotent(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	gh.SetPull(repo, githubtest.PullRequest{Number: 7})
	commentID := gh.AddComment(repo, 7, "alice", "/launch").ID // the human's command

	steps := []struct {
		content    string
		wantStatus int
	}{
		{"eyes", 201},
		{"eyes", 200},
		{"rocket", 201},
		{"eyes", 200},
		{"thumbsup", 422},
	}
	var eyesID int64
	for _, st := range steps {
		r, resp, err := client.Reactions.CreateIssueCommentReaction(ctx, owner, name, commentID, st.content)
		if st.wantStatus == 422 {
			if statusOf(err) != 422 {
				t.Errorf("%s: %v, want 422", st.content, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != st.wantStatus || r.GetContent() != st.content || r.GetUser().GetLogin() != githubtest.BotLogin {
			t.Errorf("%s: status %d, reaction %s", st.content, resp.StatusCode, r)
		}
		if st.content == "eyes" {
			if eyesID != 0 && r.GetID() != eyesID {
				t.Errorf("eyes again got a new id %d, want %d", r.GetID(), eyesID)
			}
			eyesID = r.GetID()
		}
	}
	if got := gh.Reactions(repo, commentID); strings.Join(got, ",") != "eyes,rocket" {
		t.Errorf("Reactions = %v", got)
	}
	listed, _, err := client.Reactions.ListIssueCommentReactions(ctx, owner, name, commentID, nil)
	if err != nil || len(listed) != 2 {
		t.Errorf("listed %v, %v", listed, err)
	}
	if got := gh.Reactions("octo/other", commentID); len(got) != 0 {
		t.Errorf("reactions leak across repos: %v", got)
	}
}

func TestComments(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	gh.SetPull(repo, githubtest.PullRequest{Number: 7})
	human := gh.AddComment(repo, 7, "alice", "/launch")

	c, resp, err := client.Issues.CreateComment(ctx, owner, name, 7, &github.IssueComment{Body: github.String("launching…")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 201 || c.GetUser().GetLogin() != githubtest.BotLogin || c.GetID() <= human.ID ||
		c.GetHTMLURL() != fmt.Sprintf("https://github.com/octo/hello/pull/7#issuecomment-%d", c.GetID()) {
		t.Errorf("created %d %s", resp.StatusCode, c)
	}
	e, resp, err := client.Issues.EditComment(ctx, owner, name, c.GetID(), &github.IssueComment{Body: github.String("ready: ssh …")})
	if err != nil || resp.StatusCode != 200 || e.GetBody() != "ready: ssh …" || e.GetID() != c.GetID() {
		t.Errorf("edited %v %v", e, err)
	}
	for range 3 {
		if _, _, err := client.Issues.CreateComment(ctx, owner, name, 7, &github.IssueComment{Body: github.String("more")}); err != nil {
			t.Fatal(err)
		}
	}

	got := gh.Comments(repo, 7)
	if len(got) != 5 || got[0].User != "alice" || got[1].Body != "ready: ssh …" || got[1].User != githubtest.BotLogin {
		t.Errorf("Comments = %+v", got)
	}
	var listed []*github.IssueComment
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 2}}
	for {
		page, resp, err := client.Issues.ListComments(ctx, owner, name, 7, opts)
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, page...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if len(listed) != 5 || listed[0].GetBody() != "/launch" {
		t.Errorf("listed %d comments", len(listed))
	}

	failures := []struct {
		name string
		err  func() error
		want int
	}{
		{"edit unknown comment", func() error {
			_, _, err := client.Issues.EditComment(ctx, owner, name, 999999, &github.IssueComment{Body: github.String("x")})
			return err
		}, 404},
		{"edit comment of another repo", func() error {
			_, _, err := client.Issues.EditComment(ctx, owner, "other", c.GetID(), &github.IssueComment{Body: github.String("x")})
			return err
		}, 404},
		{"empty body", func() error {
			_, _, err := client.Issues.CreateComment(ctx, owner, name, 7, &github.IssueComment{Body: github.String("")})
			return err
		}, 422},
	}
	for _, f := range failures {
		if got := statusOf(f.err()); got != f.want {
			t.Errorf("%s: status %d, want %d", f.name, got, f.want)
		}
	}
}

// errorResponse asserts that err is go-github's *ErrorResponse with status
// want and returns it.
func errorResponse(t *testing.T, what string, err error, want int) *github.ErrorResponse {
	t.Helper()
	var er *github.ErrorResponse
	if !errors.As(err, &er) {
		t.Errorf("%s: err = %v, want *github.ErrorResponse %d", what, err, want)
		return nil
	}
	if er.Response.StatusCode != want {
		t.Errorf("%s: status %d, want %d (%v)", what, er.Response.StatusCode, want, err)
	}
	return er
}

func TestCommentBodyLimit(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	gh.SetPull(repo, githubtest.PullRequest{Number: 7})
	// GitHub counts characters, not bytes: 65,536 three-byte characters fit.
	atLimit := strings.Repeat("€", githubtest.MaxCommentChars)
	tooLong := strings.Repeat("a", githubtest.MaxCommentChars+1)

	c, resp, err := client.Issues.CreateComment(ctx, owner, name, 7, &github.IssueComment{Body: github.String(atLimit)})
	if err != nil || resp.StatusCode != 201 || c.GetBody() != atLimit {
		t.Fatalf("create at the limit: %v", err)
	}
	atLimit = strings.Repeat("é", githubtest.MaxCommentChars)
	e, resp, err := client.Issues.EditComment(ctx, owner, name, c.GetID(), &github.IssueComment{Body: github.String(atLimit)})
	if err != nil || resp.StatusCode != 200 || e.GetBody() != atLimit {
		t.Fatalf("edit at the limit: %v", err)
	}

	wantErr := github.Error{Resource: "IssueComment", Field: "body", Code: "custom",
		Message: "body is too long (maximum is 65536 characters)"}
	_, _, err = client.Issues.CreateComment(ctx, owner, name, 7, &github.IssueComment{Body: github.String(tooLong)})
	if er := errorResponse(t, "create too long", err, 422); er != nil &&
		(er.Message != "Validation Failed" || len(er.Errors) != 1 || er.Errors[0] != wantErr) {
		t.Errorf("create too long: %+v", er)
	}
	_, _, err = client.Issues.EditComment(ctx, owner, name, c.GetID(), &github.IssueComment{Body: github.String(atLimit + "a")})
	if er := errorResponse(t, "edit too long", err, 422); er != nil && (len(er.Errors) != 1 || er.Errors[0] != wantErr) {
		t.Errorf("edit too long: %+v", er)
	}
	got := gh.Comments(repo, 7)
	if len(got) != 1 || got[0].Body != atLimit {
		t.Errorf("a refused body was stored: %d comments", len(got))
	}
}

func TestCommentsNeedAnIssue(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	create := func(number int) error {
		_, _, err := client.Issues.CreateComment(ctx, owner, name, number, &github.IssueComment{Body: github.String("hi")})
		return err
	}
	list := func(number int) error {
		_, _, err := client.Issues.ListComments(ctx, owner, name, number, nil)
		return err
	}
	errorResponse(t, "comment on an unknown issue", create(8), 404)
	errorResponse(t, "list comments of an unknown issue", list(8), 404)

	gh.SetIssue(repo, 8)
	if err := create(8); err != nil {
		t.Errorf("comment on a SetIssue issue: %v", err)
	}
	gh.SetPull(repo, githubtest.PullRequest{Number: 9})
	if err := create(9); err != nil {
		t.Errorf("comment on a SetPull pull request: %v", err)
	}
	gh.AddComment(repo, 10, "alice", "/launch") // a human commented: the issue exists
	if err := create(10); err != nil || list(10) != nil {
		t.Errorf("comment on an issue a human commented on: %v", err)
	}
	// Another repository's issue 8 is not this one's.
	_, _, err := client.Issues.CreateComment(ctx, owner, "other", 8, &github.IssueComment{Body: github.String("hi")})
	errorResponse(t, "comment on another repo's number", err, 404)
	if got := len(gh.Comments(repo, 8)) + len(gh.Comments("octo/other", 8)); got != 1 {
		t.Errorf("%d comments on issue 8, want 1", got)
	}
}

func TestReactionsNeedAComment(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	gh.SetPull(repo, githubtest.PullRequest{Number: 7})
	gh.SetPull("octo/other", githubtest.PullRequest{Number: 7})
	elsewhere := gh.AddComment("octo/other", 7, "alice", "/launch")
	bots, _, err := client.Issues.CreateComment(ctx, owner, name, 7, &github.IssueComment{Body: github.String("hi")})
	if err != nil {
		t.Fatal(err)
	}

	_, _, err = client.Reactions.CreateIssueCommentReaction(ctx, owner, name, 424242, "eyes")
	errorResponse(t, "react to an unknown comment", err, 404)
	_, _, err = client.Reactions.CreateIssueCommentReaction(ctx, owner, name, elsewhere.ID, "eyes")
	errorResponse(t, "react to another repo's comment", err, 404)
	_, _, err = client.Reactions.ListIssueCommentReactions(ctx, owner, name, 424242, nil)
	errorResponse(t, "list reactions of an unknown comment", err, 404)
	if got := gh.Reactions("octo/other", elsewhere.ID); len(got) != 0 {
		t.Errorf("refused reaction stored: %v", got)
	}
	// Any comment the fake knows will do, the bot's own too.
	if _, resp, err := client.Reactions.CreateIssueCommentReaction(ctx, owner, name, bots.GetID(), "eyes"); err != nil || resp.StatusCode != 201 {
		t.Errorf("react to a known comment: %v", err)
	}
	if c, ok := gh.Comment(repo, bots.GetID()); !ok || c.User != githubtest.BotLogin {
		t.Errorf("Comment(%d) = %+v, %v", bots.GetID(), c, ok)
	}
	if _, ok := gh.Comment(repo, elsewhere.ID); ok {
		t.Error("Comment found another repo's comment")
	}
}

func TestCheckRunRoundTrip(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	gh.SetPull(repo, githubtest.PullRequest{Number: 7, HeadSHA: sha})

	cr, resp, err := client.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
		Name: "packit-launch", HeadSHA: sha, Status: github.String("in_progress"), ExternalID: github.String("launch-1"),
		Output: &github.CheckRunOutput{Title: github.String("Launching"), Summary: github.String("waiting for AWS")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 201 || cr.GetStatus() != "in_progress" || cr.GetConclusion() != "" ||
		len(cr.PullRequests) != 1 || cr.PullRequests[0].GetNumber() != 7 {
		t.Errorf("created %d %s", resp.StatusCode, cr)
	}

	actions := []*github.CheckRunAction{
		{Label: "Extend", Description: "Keep the VM for one more hour", Identifier: "extend"},
		{Label: "Terminate", Description: "Terminate the VM now", Identifier: "terminate"},
	}
	up, resp, err := client.Checks.UpdateCheckRun(ctx, owner, name, cr.GetID(), github.UpdateCheckRunOptions{
		Name: "packit-launch", Conclusion: github.String("success"), Actions: actions,
		Output: &github.CheckRunOutput{Title: github.String("Running"), Summary: github.String("ssh ec2-user@…"), Text: github.String("details")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || up.GetStatus() != "completed" || up.GetConclusion() != "success" || up.CompletedAt == nil {
		t.Errorf("updated %s", up)
	}
	got, _, err := client.Checks.GetCheckRun(ctx, owner, name, cr.GetID())
	if err != nil || got.GetOutput().GetTitle() != "Running" || got.GetExternalID() != "launch-1" || got.GetName() != "packit-launch" {
		t.Errorf("get %v %v", got, err)
	}

	// go-github always sends "name" on update: forgetting it sends "" and is refused.
	if _, _, err := client.Checks.UpdateCheckRun(ctx, owner, name, cr.GetID(), github.UpdateCheckRunOptions{
		Output: &github.CheckRunOutput{Title: github.String("Terminated"), Summary: github.String("gone")},
	}); statusOf(err) != 422 {
		t.Fatalf("update without a name: %v, want 422", err)
	}
	if _, _, err := client.Checks.UpdateCheckRun(ctx, owner, name, cr.GetID(), github.UpdateCheckRunOptions{
		Name: "packit-launch", Output: &github.CheckRunOutput{Title: github.String("Terminated"), Summary: github.String("gone")},
	}); err != nil {
		t.Fatal(err)
	}
	runs := gh.CheckRuns(repo)
	if len(runs) != 1 {
		t.Fatalf("CheckRuns = %+v", runs)
	}
	r := runs[0]
	if r.Name != "packit-launch" || r.Title != "Terminated" || r.Text != "details" || r.Status != "completed" || r.ExternalID != "launch-1" ||
		r.HeadSHA != sha || len(r.Actions) != 2 || r.Actions[1].Identifier != "terminate" {
		t.Errorf("stored run = %+v", r)
	}

	list, _, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, sha, nil)
	if err != nil || list.GetTotal() != 1 || list.CheckRuns[0].GetID() != cr.GetID() {
		t.Errorf("ListCheckRunsForRef = %v, %v", list, err)
	}
	if _, _, err := client.Checks.GetCheckRun(ctx, owner, "other", cr.GetID()); statusOf(err) != 404 {
		t.Errorf("run of another repo: %v, want 404", err)
	}
}

func TestCheckRunValidation(t *testing.T) {
	_, client, _ := setup(t)
	ctx := context.Background()
	act := func(label, desc, id string) *github.CheckRunAction {
		return &github.CheckRunAction{Label: label, Description: desc, Identifier: id}
	}
	tests := []struct {
		name string
		opts github.CreateCheckRunOptions
	}{
		{"missing head_sha", github.CreateCheckRunOptions{Name: "x"}},
		{"branch name as head_sha", github.CreateCheckRunOptions{Name: "x", HeadSHA: "main"}},
		{"missing name", github.CreateCheckRunOptions{HeadSHA: sha}},
		{"completed without conclusion", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha, Status: github.String("completed")}},
		{"unknown conclusion", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha, Conclusion: github.String("ok")}},
		{"output without title", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha, Output: &github.CheckRunOutput{Summary: github.String("s")}}},
		{"summary too long", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha,
			Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String(strings.Repeat("a", 65536))}}},
		{"four actions", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha, Actions: []*github.CheckRunAction{
			act("a", "a", "a"), act("b", "b", "b"), act("c", "c", "c"), act("d", "d", "d")}}},
		{"label over 20", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha, Actions: []*github.CheckRunAction{
			act(strings.Repeat("l", 21), "d", "i")}}},
		{"description over 40", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha, Actions: []*github.CheckRunAction{
			act("l", strings.Repeat("d", 41), "i")}}},
		{"identifier over 20", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha, Actions: []*github.CheckRunAction{
			act("l", "d", strings.Repeat("i", 21))}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := client.Checks.CreateCheckRun(ctx, owner, name, tt.opts)
			var er *github.ErrorResponse
			if !errors.As(err, &er) || er.Response.StatusCode != 422 || len(er.Errors) == 0 {
				t.Errorf("err = %v, want 422 with field errors", err)
			}
		})
	}
	if _, _, err := client.Checks.UpdateCheckRun(ctx, owner, name, 999999, github.UpdateCheckRunOptions{Name: "x"}); statusOf(err) != 404 {
		t.Errorf("update unknown run: %v, want 404", err)
	}
}

// The output and action limits hold on update as on create, and a value
// exactly at a limit is accepted by both.
func TestCheckRunLimitsOnCreateAndUpdate(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	out := func(summary, text string) *github.CheckRunOutput {
		return &github.CheckRunOutput{Title: github.String("t"), Summary: github.String(summary), Text: github.String(text)}
	}
	act := func(label, desc, id string) *github.CheckRunAction {
		return &github.CheckRunAction{Label: label, Description: desc, Identifier: id}
	}
	// 65,535 bytes: the limit is in bytes, so 21,845 three-byte characters fit.
	maxBytes := strings.Repeat("€", 65535/3)
	atLimit := []*github.CheckRunAction{
		act(strings.Repeat("l", 20), strings.Repeat("d", 40), strings.Repeat("i", 20)),
		act("b", "b", "b"), act("c", "c", "c"),
	}
	cr, _, err := client.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
		Name: "x", HeadSHA: sha, Output: out(maxBytes, maxBytes), Actions: atLimit})
	if err != nil {
		t.Fatalf("create at the limits: %v", err)
	}
	if _, _, err := client.Checks.UpdateCheckRun(ctx, owner, name, cr.GetID(), github.UpdateCheckRunOptions{
		Name: "x", Output: out(maxBytes, maxBytes), Actions: atLimit}); err != nil {
		t.Fatalf("update at the limits: %v", err)
	}
	stored := gh.CheckRuns(repo)[0]

	tests := []struct {
		name    string
		output  *github.CheckRunOutput
		actions []*github.CheckRunAction
	}{
		{"summary over 65535 bytes", out(maxBytes+"a", "t"), nil},
		{"text over 65535 bytes", out("s", maxBytes+"a"), nil},
		{"four actions", nil, []*github.CheckRunAction{act("a", "a", "a"), act("b", "b", "b"), act("c", "c", "c"), act("d", "d", "d")}},
		{"label over 20", nil, []*github.CheckRunAction{act(strings.Repeat("l", 21), "d", "i")}},
		{"description over 40", nil, []*github.CheckRunAction{act("l", strings.Repeat("d", 41), "i")}},
		{"identifier over 20", nil, []*github.CheckRunAction{act("l", "d", strings.Repeat("i", 21))}},
		{"empty label", nil, []*github.CheckRunAction{act("", "d", "i")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := client.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
				Name: "x", HeadSHA: sha, Output: tt.output, Actions: tt.actions})
			if er := errorResponse(t, "create", err, 422); er != nil && len(er.Errors) == 0 {
				t.Errorf("create: no field errors: %v", er)
			}
			_, _, err = client.Checks.UpdateCheckRun(ctx, owner, name, cr.GetID(), github.UpdateCheckRunOptions{
				Name: "x", Output: tt.output, Actions: tt.actions})
			if er := errorResponse(t, "update", err, 422); er != nil && len(er.Errors) == 0 {
				t.Errorf("update: no field errors: %v", er)
			}
		})
	}
	runs := gh.CheckRuns(repo)
	if len(runs) != 1 || runs[0].Summary != stored.Summary || len(runs[0].Actions) != 3 {
		t.Errorf("a refused create or update changed the runs: %d runs", len(runs))
	}
}

func TestHookDeliveries(t *testing.T) {
	gh := githubtest.NewServer()
	defer gh.Close()
	ctx := context.Background()
	app := appClient(t, gh, gh.AppID, gh.PrivateKeyPEM)
	var added []githubtest.Delivery
	for i := range 5 {
		added = append(added, gh.AddDelivery(githubtest.Delivery{GUID: fmt.Sprintf("guid-%d", i), Event: "issue_comment", Action: "created"}))
	}
	gh.AddDelivery(githubtest.Delivery{GUID: "guid-failed", Event: "issue_comment", StatusCode: 502})

	var got []string
	opts := &github.ListCursorOptions{PerPage: 2}
	for pages := 0; ; pages++ {
		ds, resp, err := app.Apps.ListHookDeliveries(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		for _, d := range ds {
			got = append(got, fmt.Sprintf("%s/%d", d.GetGUID(), d.GetStatusCode()))
		}
		if resp.Cursor == "" {
			break
		}
		opts.Cursor = resp.Cursor
	}
	want := "guid-failed/502 guid-4/200 guid-3/200 guid-2/200 guid-1/200 guid-0/200"
	if strings.Join(got, " ") != want {
		t.Errorf("listed %v, want newest first: %s", got, want)
	}

	_, _, err := app.Apps.RedeliverHookDelivery(ctx, added[2].ID)
	var accepted *github.AcceptedError
	if !errors.As(err, &accepted) {
		t.Errorf("redeliver: %v, want 202 Accepted", err)
	}
	all := gh.Deliveries()
	last := all[len(all)-1]
	if len(all) != 7 || last.GUID != "guid-2" || !last.Redelivery || last.ID == added[2].ID {
		t.Errorf("after redelivery: %+v", last)
	}
	if _, _, err := app.Apps.RedeliverHookDelivery(ctx, 999999); statusOf(err) != 404 {
		t.Errorf("redeliver unknown: %v, want 404", err)
	}
}

func TestFailureInjection(t *testing.T) {
	ctx := context.Background()
	t.Run("FailNext fails exactly times calls", func(t *testing.T) {
		gh, client, _ := setup(t)
		gh.SetPull(repo, githubtest.PullRequest{Number: 1})
		gh.FailNext("GET", "/repos/octo/hello/pulls/", 502, 2)
		var statuses []int
		for range 3 {
			_, resp, _ := client.PullRequests.Get(ctx, owner, name, 1)
			statuses = append(statuses, resp.StatusCode)
		}
		if fmt.Sprint(statuses) != "[502 502 200]" {
			t.Errorf("statuses = %v", statuses)
		}
		if n := gh.CallCount("GET", "/repos/octo/hello/pulls/1"); n != 3 {
			t.Errorf("CallCount = %d", n)
		}
	})
	t.Run("other methods and paths are untouched", func(t *testing.T) {
		gh, client, _ := setup(t)
		gh.FailNext("POST", "/repos/octo/hello/check-runs", 500, 1)
		if _, _, err := client.Repositories.GetPermissionLevel(ctx, owner, name, "a"); err != nil {
			t.Errorf("GET failed: %v", err)
		}
		_, _, err := client.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{Name: "x", HeadSHA: sha})
		if statusOf(err) != 500 {
			t.Errorf("POST: %v, want 500", err)
		}
		if len(gh.CheckRuns(repo)) != 0 {
			t.Error("a failed create stored a run")
		}
	})
	t.Run("token exchange failure", func(t *testing.T) {
		gh, client, _ := setup(t)
		gh.FailNext("POST", "/app/installations/", 503, 1)
		if _, _, err := client.Users.ListKeys(ctx, "alice", nil); statusOf(err) != 503 {
			t.Errorf("first call: %v, want the exchange's 503", err)
		}
		if _, _, err := client.Users.ListKeys(ctx, "alice", nil); err != nil {
			t.Errorf("second call: %v", err)
		}
	})
	t.Run("negative times fails until cleared", func(t *testing.T) {
		gh, client, _ := setup(t)
		gh.FailNext("", "/users/", 500, -1)
		for range 3 {
			if _, _, err := client.Users.ListKeys(ctx, "alice", nil); statusOf(err) != 500 {
				t.Fatalf("got %v, want 500", err)
			}
		}
		gh.ClearFailures()
		if _, _, err := client.Users.ListKeys(ctx, "alice", nil); err != nil {
			t.Errorf("after ClearFailures: %v", err)
		}
	})
	t.Run("secondary rate limit", func(t *testing.T) {
		gh, client, _ := setup(t)
		gh.SecondaryRateLimitNext("POST", "/repos/", 90*time.Second, 1)
		_, _, err := client.Issues.CreateComment(ctx, owner, name, 1, &github.IssueComment{Body: github.String("hi")})
		var abuse *github.AbuseRateLimitError
		if !errors.As(err, &abuse) || abuse.RetryAfter == nil || *abuse.RetryAfter != 90*time.Second {
			t.Errorf("err = %#v, want AbuseRateLimitError with Retry-After 90s", err)
		}
	})
	t.Run("primary rate limit", func(t *testing.T) {
		gh, client, _ := setup(t)
		_, resp, err := client.Users.ListKeys(ctx, "alice", nil)
		if err != nil || resp.Rate.Limit != 5000 || resp.Rate.Remaining != 5000 {
			t.Fatalf("rate = %+v, %v", resp.Rate, err)
		}
		gh.SetRateLimit(0, time.Now().Add(time.Hour))
		_, _, err = client.Users.ListKeys(ctx, "alice", nil)
		var rl *github.RateLimitError
		if !errors.As(err, &rl) || rl.Rate.Remaining != 0 {
			t.Fatalf("err = %v, want RateLimitError", err)
		}
		before := gh.CallCount("", "")
		if _, _, err := client.Users.ListKeys(ctx, "alice", nil); !errors.As(err, &rl) {
			t.Errorf("err = %v, want go-github to refuse locally", err)
		}
		if gh.CallCount("", "") != before {
			t.Error("go-github sent a request while rate limited")
		}
	})
	t.Run("latency honours the caller's deadline", func(t *testing.T) {
		gh, client, _ := setup(t)
		// A first call gets the token before the fake turns slow.
		if _, _, err := client.Users.ListKeys(ctx, "alice", nil); err != nil {
			t.Fatal(err)
		}
		gh.SetLatency(time.Minute)
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, _, err := client.Users.ListKeys(short, "alice", nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want deadline exceeded", err)
		}
	})
}

func TestUnknownRoutes(t *testing.T) {
	gh, _, tr := setup(t)
	tok, err := tr.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ method, path string }{
		{"GET", "/nope"},
		{"GET", "/repos/octo/hello/issues/comments/5"}, // only PATCH exists
		{"DELETE", "/repos/octo/hello/check-runs/1"},   // no such method
		{"GET", "/api/v3/repos/octo/hello/pulls/1"},    // no enterprise prefix
		{"POST", "/repos/octo/hello/check-runs/extra"}, // too deep
	}
	for _, tt := range tests {
		code, body := raw(t, tt.method, gh.URL+tt.path, "token "+tok, nil)
		if code != 404 || body["message"] != "Not Found" || body["documentation_url"] == nil {
			t.Errorf("%s %s = %d %v", tt.method, tt.path, code, body)
		}
	}
}

func TestCallsAndReset(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	gh.SetFile(repo, "", "a.txt", "a")
	gh.SetIssue(repo, 3)
	if _, _, _, err := client.Repositories.GetContents(ctx, owner, name, "a.txt", &github.RepositoryContentGetOptions{Ref: "main"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Issues.CreateComment(ctx, owner, name, 3, &github.IssueComment{Body: github.String("hello")}); err != nil {
		t.Fatal(err)
	}
	calls := gh.Calls()
	if len(calls) != 3 {
		t.Fatalf("calls = %+v", calls)
	}
	get, post := calls[1], calls[2]
	if get.Method != "GET" || get.Path != "/repos/octo/hello/contents/a.txt" || get.Query.Get("ref") != "main" || get.Status != 200 {
		t.Errorf("GET call = %+v", get)
	}
	var body map[string]string
	if err := json.Unmarshal(post.Body, &body); err != nil || body["body"] != "hello" || post.Status != 201 {
		t.Errorf("POST call = %+v (%s)", post, post.Body)
	}
	if n := gh.CallCount("POST", "/repos/"); n != 1 {
		t.Errorf("CallCount(POST, /repos/) = %d", n)
	}
	if n := gh.CallCount("", ""); n != 3 {
		t.Errorf("CallCount() = %d", n)
	}

	gh.ResetCalls()
	if len(gh.Calls()) != 0 || len(gh.Comments(repo, 3)) != 1 {
		t.Error("ResetCalls must forget calls only")
	}
	gh.Reset()
	if len(gh.Comments(repo, 3)) != 0 {
		t.Error("Reset kept comments")
	}
	// Tokens survive Reset; the file does not.
	_, _, _, err := client.Repositories.GetContents(ctx, owner, name, "a.txt", nil)
	if statusOf(err) != 404 || gh.CallCount("POST", "/app/") != 0 {
		t.Errorf("after Reset: %v, %d exchanges", err, gh.CallCount("POST", "/app/"))
	}
}

func TestConcurrentWritesGetDistinctIncreasingIDs(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	gh.SetIssue(repo, 1)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := client.Issues.CreateComment(ctx, owner, name, 1, &github.IssueComment{Body: github.String(fmt.Sprint(i))}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got := gh.Comments(repo, 1)
	if len(got) != 20 {
		t.Fatalf("%d comments", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Errorf("ids not increasing: %d then %d", got[i-1].ID, got[i].ID)
		}
	}
}

// packitSummary is what Packit's vm-image-build check run says on success.
const packitSummary = "Congratulations! Your image was successfully built.\n\n" +
	"https://console.aws.amazon.com/ec2/v2/home?region=us-east-1#LaunchInstanceWizard:ami=ami-0123456789abcdef0"

func TestPackitCheckRunLifecycle(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	gh.SetPull(repo, githubtest.PullRequest{Number: 7, HeadSHA: sha})

	added := gh.AddCheckRun(repo, githubtest.CheckRun{AppSlug: "packit-as-a-service", Name: "vm-image-build:fedora-39-x86_64", HeadSHA: sha})
	if added.ID == 0 || added.Status != "queued" || added.StartedAt.IsZero() || !added.CompletedAt.IsZero() || added.Repo != repo {
		t.Fatalf("AddCheckRun = %+v", added)
	}
	get := func() *github.CheckRun {
		t.Helper()
		cr, _, err := client.Checks.GetCheckRun(ctx, owner, name, added.ID)
		if err != nil {
			t.Fatal(err)
		}
		return cr
	}
	if cr := get(); cr.GetApp().GetSlug() != "packit-as-a-service" || cr.GetApp().GetName() != "packit-as-a-service" ||
		cr.GetApp().GetID() == gh.AppID || cr.GetApp().GetID() == 0 || cr.GetStatus() != "queued" {
		t.Errorf("queued run = %s", cr)
	}

	gh.UpdateCheckRunAs(repo, added.ID, func(cr *githubtest.CheckRun) { cr.Status = "in_progress" })
	if cr := get(); cr.GetStatus() != "in_progress" || cr.CompletedAt != nil {
		t.Errorf("in progress run = %s", cr)
	}
	gh.UpdateCheckRunAs(repo, added.ID, func(cr *githubtest.CheckRun) {
		cr.Status, cr.Conclusion = "completed", "success"
		cr.Title, cr.Summary = "VM Image build is complete", packitSummary
		cr.ID, cr.AppSlug = 99, "someone-else" // not changeable
	})
	cr := get()
	if cr.GetStatus() != "completed" || cr.GetConclusion() != "success" || cr.CompletedAt == nil ||
		cr.GetOutput().GetTitle() != "VM Image build is complete" || cr.GetOutput().GetSummary() != packitSummary ||
		cr.GetApp().GetSlug() != "packit-as-a-service" || cr.GetID() != added.ID {
		t.Errorf("completed run = %s", cr)
	}

	// The bot cannot change another app's check run, as on GitHub.
	if _, _, err := client.Checks.UpdateCheckRun(ctx, owner, name, added.ID, github.UpdateCheckRunOptions{Name: "x", Status: github.String("queued")}); statusOf(err) != 403 {
		t.Errorf("bot updating Packit's run: %v, want 403", err)
	}
	// The bot's own check runs carry the fake's own app.
	own, _, err := client.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{Name: "packit-launch", HeadSHA: sha})
	if err != nil || own.GetApp().GetSlug() != githubtest.AppSlug || own.GetApp().GetID() != gh.AppID {
		t.Errorf("bot's run: %s, %v", own, err)
	}
	if runs := gh.CheckRuns(repo); len(runs) != 2 || runs[0].AppSlug != "packit-as-a-service" || runs[1].AppSlug != githubtest.AppSlug {
		t.Errorf("CheckRuns = %+v", runs)
	}

	failed := gh.AddCheckRun(repo, githubtest.CheckRun{AppSlug: "packit-as-a-service", Name: "vm-image-build:fedora-40-x86_64", HeadSHA: sha,
		Conclusion: "failure", Title: "VM Image build failed...", Summary: "boom"})
	if failed.Status != "completed" || failed.CompletedAt.IsZero() {
		t.Errorf("a run added with a conclusion = %+v", failed)
	}
	gh.UpdateCheckRunAs(repo, failed.ID, func(cr *githubtest.CheckRun) { cr.Status = "queued" }) // /packit vm-image-build again
	if runs := gh.CheckRuns(repo); runs[2].Conclusion != "" || !runs[2].CompletedAt.IsZero() {
		t.Errorf("re-queued run = %+v", runs[2])
	}
}

func TestListCheckRunsForRefFilters(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	const target = "vm-image-build:fedora-39-x86_64"
	add := func(slug, checkName, conclusion string) int64 {
		return gh.AddCheckRun(repo, githubtest.CheckRun{AppSlug: slug, Name: checkName, HeadSHA: sha, Conclusion: conclusion, Title: "t", Summary: "s"}).ID
	}
	oldFailed := add("packit-as-a-service", target, "failure")
	newest := add("packit-as-a-service", target, "success")
	lookAlike := add("github-actions", target, "success")
	other := add("packit-as-a-service", "vm-image-build:fedora-40-x86_64", "")
	gh.AddCheckRun(repo, githubtest.CheckRun{AppSlug: "packit-as-a-service", Name: target, HeadSHA: strings.Repeat("f", 40), Conclusion: "success"})

	list := func(opts *github.ListCheckRunsOptions) []int64 {
		t.Helper()
		res, _, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, sha, opts)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, cr := range res.CheckRuns {
			ids = append(ids, cr.GetID())
		}
		if res.GetTotal() != len(ids) {
			t.Errorf("total_count %d, %d runs", res.GetTotal(), len(ids))
		}
		return ids
	}
	packitID := func() int64 {
		res, _, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, sha, &github.ListCheckRunsOptions{CheckName: github.String(target), Filter: github.String("all")})
		if err != nil {
			t.Fatal(err)
		}
		return res.CheckRuns[len(res.CheckRuns)-1].GetApp().GetID() // oldFailed is Packit's
	}()
	tests := []struct {
		name string
		opts *github.ListCheckRunsOptions
		want []int64
	}{
		{"latest by default", nil, []int64{other, lookAlike, newest}},
		{"latest", &github.ListCheckRunsOptions{Filter: github.String("latest")}, []int64{other, lookAlike, newest}},
		{"all", &github.ListCheckRunsOptions{Filter: github.String("all")}, []int64{other, lookAlike, newest, oldFailed}},
		{"by name, latest per app", &github.ListCheckRunsOptions{CheckName: github.String(target)}, []int64{lookAlike, newest}},
		{"by name, all", &github.ListCheckRunsOptions{CheckName: github.String(target), Filter: github.String("all")}, []int64{lookAlike, newest, oldFailed}},
		{"by status", &github.ListCheckRunsOptions{Status: github.String("queued")}, []int64{other}},
		{"by app", &github.ListCheckRunsOptions{AppID: github.Int64(packitID), Filter: github.String("all")}, []int64{other, newest, oldFailed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := list(tt.opts); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
		})
	}
	res, _, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, sha, &github.ListCheckRunsOptions{CheckName: github.String(target)})
	if err != nil {
		t.Fatal(err)
	}
	for _, cr := range res.CheckRuns {
		if want := map[int64]string{newest: "packit-as-a-service", lookAlike: "github-actions"}[cr.GetID()]; cr.GetApp().GetSlug() != want {
			t.Errorf("run %d made by %q, want %q", cr.GetID(), cr.GetApp().GetSlug(), want)
		}
	}
	if _, _, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, sha, &github.ListCheckRunsOptions{Filter: github.String("newest")}); statusOf(err) != 422 {
		t.Errorf("unknown filter: %v, want 422", err)
	}
}

func TestListCheckRunsForRefPagination(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	var want []int64
	for i := range 7 {
		cr := gh.AddCheckRun(repo, githubtest.CheckRun{AppSlug: "packit-as-a-service", Name: fmt.Sprintf("vm-image-build:t%d", i), HeadSHA: sha})
		want = append([]int64{cr.ID}, want...) // newest first
	}
	opts := &github.ListCheckRunsOptions{ListOptions: github.ListOptions{PerPage: 3}}
	var got []int64
	pages := 0
	for {
		res, resp, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, sha, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if res.GetTotal() != 7 {
			t.Errorf("total_count = %d, want 7", res.GetTotal())
		}
		for _, cr := range res.CheckRuns {
			got = append(got, cr.GetID())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if pages != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%d pages of %v, want 3 pages of %v", pages, got, want)
	}
}

func TestPullCommits(t *testing.T) {
	gh, client, _ := setup(t)
	ctx := context.Background()
	shaOf := func(c byte) string { return strings.Repeat(string(c), 40) }
	list := func(number int, opts *github.ListOptions) ([]string, *github.Response, error) {
		commits, resp, err := client.PullRequests.ListCommits(ctx, owner, name, number, opts)
		var shas []string
		for _, c := range commits {
			shas = append(shas, c.GetSHA())
			if c.GetCommit().GetMessage() == "" {
				t.Errorf("commit %s without a message", c.GetSHA())
			}
		}
		return shas, resp, err
	}

	gh.SetPull(repo, githubtest.PullRequest{Number: 7, HeadSHA: sha})
	if got, _, err := list(7, nil); err != nil || fmt.Sprint(got) != fmt.Sprint([]string{sha}) {
		t.Errorf("without SetPullCommits: %v, %v; want the head alone", got, err)
	}

	gh.SetPullCommits(repo, 7, shaOf('a'), shaOf('b'), shaOf('c'))
	pr, _, err := client.PullRequests.Get(ctx, owner, name, 7)
	if err != nil || pr.GetHead().GetSHA() != shaOf('c') {
		t.Errorf("head after SetPullCommits = %q, %v; want the last commit", pr.GetHead().GetSHA(), err)
	}
	gh.SetPull(repo, githubtest.PullRequest{Number: 7, HeadSHA: shaOf('d')}) // a push
	want := []string{shaOf('a'), shaOf('b'), shaOf('c'), shaOf('d')}
	if got, _, err := list(7, nil); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a push: %v, %v; want %v", got, err, want)
	}

	var got []string
	opts := &github.ListOptions{PerPage: 3}
	pages := 0
	for {
		shas, resp, err := list(7, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, shas...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if pages != 2 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("paginated: %d pages of %v, want 2 pages of %v", pages, got, want)
	}

	if _, _, err := list(8, nil); statusOf(err) != 404 {
		t.Errorf("unknown pull request: %v, want 404", err)
	}
}
