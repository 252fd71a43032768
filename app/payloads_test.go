package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/packit/packit-launch/app/githubtest"
)

// comment describes an issue_comment delivery for tests; the JSON is
// written here, shaped like GitHub's.
type comment struct {
	Action       string
	Repo         string
	Number       int
	OnPR         bool
	ID           int64 // 1001 for tests without a fake GitHub; postTo sets the fake's id
	User         string
	UserType     string
	SenderType   string // defaults to UserType
	Body         string
	CreatedAt    time.Time
	Installation int64

	posted bool // registered in a fake GitHub by postTo
}

func defaultComment(body string) *comment {
	return &comment{Action: "created", Repo: "packit/ogr", Number: 7, OnPR: true, ID: 1001, User: "alice", UserType: "User",
		Body: body, CreatedAt: time.Now().UTC().Add(-time.Minute), Installation: 55}
}

// postTo is the issue_comment delivery of c as GitHub sends it to the bot:
// the comment exists on GitHub first. The first call registers c in gh (whose
// reactions need the comment to exist) and sets c.ID to the id gh gave it;
// later calls are redeliveries of the same comment. A new comment needs a
// new *comment.
func (c *comment) postTo(gh *githubtest.Server) []byte {
	if !c.posted {
		c.ID = gh.AddComment(c.Repo, c.Number, c.User, c.Body).ID
		c.posted = true
	}
	return c.JSON()
}

// botComments are the bot's comments on issue number of repo, oldest first:
// what it said, without the humans' commands the tests post.
func botComments(gh *githubtest.Server, repo string, number int) []githubtest.Comment {
	var out []githubtest.Comment
	for _, c := range gh.Comments(repo, number) {
		if c.User == githubtest.BotLogin {
			out = append(out, c)
		}
	}
	return out
}

func (c comment) JSON() []byte {
	owner, name, _ := strings.Cut(c.Repo, "/")
	user := map[string]any{"login": c.User, "id": 501, "type": c.UserType}
	sender := map[string]any{"login": c.User, "id": 501, "type": c.UserType}
	if c.SenderType != "" {
		sender["type"] = c.SenderType
	}
	issue := map[string]any{
		"number": c.Number, "title": "Make it faster", "state": "open",
		"html_url": fmt.Sprintf("https://github.com/%s/pull/%d", c.Repo, c.Number),
		"user":     map[string]any{"login": "bob", "type": "User"},
	}
	if c.OnPR {
		issue["pull_request"] = map[string]any{"url": fmt.Sprintf("https://api.github.com/repos/%s/pulls/%d", c.Repo, c.Number)}
	}
	payload := map[string]any{
		"action": c.Action,
		"issue":  issue,
		"comment": map[string]any{
			"id": c.ID, "body": c.Body, "user": user, "author_association": "MEMBER",
			"created_at": c.CreatedAt.Format(time.RFC3339), "updated_at": c.CreatedAt.Format(time.RFC3339),
			"html_url": fmt.Sprintf("https://github.com/%s/pull/%d#issuecomment-%d", c.Repo, c.Number, c.ID),
		},
		"repository": map[string]any{
			"id": 9, "name": name, "full_name": c.Repo, "private": false, "default_branch": "main",
			"owner": map[string]any{"login": owner, "type": "Organization"},
		},
		"sender": sender,
	}
	if c.Installation != 0 {
		payload["installation"] = map[string]any{"id": c.Installation}
	}
	b, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	return b
}

const testSecret = "It's a Secret to Everybody"

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func webhookRequest(event, delivery string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/github/webhooks", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-GitHub-Event", event)
	r.Header.Set("X-GitHub-Delivery", delivery)
	r.Header.Set("X-Hub-Signature-256", sign(testSecret, body))
	return r
}

// buttonPayload is a check_run requested_action delivery for a launch's check run.
func buttonPayload(repo, launchID, identifier, sender string, checkRunID int64, pr int) []byte {
	owner, name, _ := strings.Cut(repo, "/")
	b, _ := json.Marshal(map[string]any{
		"action": "requested_action",
		"check_run": map[string]any{"id": checkRunID, "name": "packit-launch (fedora)", "external_id": launchID, "status": "completed", "head_sha": strings.Repeat("a", 40),
			"pull_requests": []map[string]any{{"number": pr, "head": map[string]any{"sha": strings.Repeat("a", 40)}, "base": map[string]any{"ref": "main"}}}},
		"requested_action": map[string]any{"identifier": identifier},
		"repository":       map[string]any{"name": name, "full_name": repo, "owner": map[string]any{"login": owner}},
		"sender":           map[string]any{"login": sender, "type": "User"},
		"installation":     map[string]any{"id": 55},
	})
	return b
}

// prClosedPayload is a pull_request closed delivery.
func prClosedPayload(repo string, number int) []byte { return prPayload("closed", repo, number) }

// prPayload is a pull_request delivery with action, for the PR at head aaaa….
func prPayload(action, repo string, number int) []byte {
	owner, name, _ := strings.Cut(repo, "/")
	b, _ := json.Marshal(map[string]any{
		"action": action,
		"number": number,
		"pull_request": map[string]any{"number": number, "state": map[bool]string{true: "closed", false: "open"}[action == "closed"], "merged": action == "closed",
			"base": map[string]any{"ref": "main", "sha": strings.Repeat("b", 40)}, "head": map[string]any{"ref": "feature", "sha": strings.Repeat("a", 40)}},
		"repository":   map[string]any{"name": name, "full_name": repo, "owner": map[string]any{"login": owner}},
		"sender":       map[string]any{"login": "bob", "type": "User"},
		"installation": map[string]any{"id": 55},
	})
	return b
}

// uninstalledPayload is an installation deleted delivery.
func uninstalledPayload(installation int64) []byte {
	b, _ := json.Marshal(map[string]any{
		"action":       "deleted",
		"installation": map[string]any{"id": installation, "account": map[string]any{"login": "packit"}},
		"sender":       map[string]any{"login": "bob", "type": "User"},
	})
	return b
}
