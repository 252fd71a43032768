package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Comment is an issue or pull request comment.
type Comment struct {
	ID        int64
	Repo      string // "owner/name" as first spelled
	Issue     int
	User      string
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

type reaction struct {
	id        int64
	repo      string
	user      string
	content   string
	createdAt time.Time
}

// AddComment seeds a comment written by user (a human, say) and returns it
// with the id the fake gave it. Register a human's command this way before
// delivering its webhook, with the returned ID in the payload: the fake
// refuses reactions to comments it does not know, as GitHub does. Issue
// number issue of repo exists from then on (a plain issue unless SetPull
// made it a pull request): someone commented on it. The body is stored as
// given, without the length limit the API enforces on the bot's comments.
func (s *Server) AddComment(repo string, issue int, user, body string) Comment {
	if issue <= 0 {
		panic("githubtest: AddComment: issue must be positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs := s.repo(repo); !rs.hasIssue(issue) {
		rs.issues[issue] = true
	}
	return *s.addComment(repo, issue, user, body)
}

// DeleteComment deletes a comment, as a person may on GitHub: editing it or
// reacting to it then answers 404.
func (s *Server) DeleteComment(commentID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.comments, commentID)
}

// Comment returns the comment with id commentID in repo, if the fake knows
// it.
func (s *Server) Comment(repo string, commentID int64) (Comment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.comments[commentID]
	if c == nil || !strings.EqualFold(c.Repo, repo) {
		return Comment{}, false
	}
	return *c, true
}

// addComment stores a comment. Callers hold mu.
func (s *Server) addComment(repo string, issue int, user, body string) *Comment {
	now := s.now().UTC().Truncate(time.Second)
	c := &Comment{
		ID: s.newID(), Repo: s.repo(repo).fullName, Issue: issue, User: user, Body: body,
		CreatedAt: now, UpdatedAt: now,
	}
	s.comments[c.ID] = c
	return c
}

// Comments returns the comments on issue (or pull request) number issue of
// repo, oldest first.
func (s *Server) Comments(repo string, issue int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, id := range sortedIDs(s.comments) {
		if c := s.comments[id]; strings.EqualFold(c.Repo, repo) && c.Issue == issue {
			out = append(out, *c)
		}
	}
	return out
}

// Reactions returns the contents ("eyes", "rocket", …) of the reactions on
// comment commentID of repo, in the order they were made.
func (s *Server) Reactions(repo string, commentID int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, re := range s.reactions[commentID] {
		if strings.EqualFold(re.repo, repo) {
			out = append(out, re.content)
		}
	}
	return out
}

// commentJSON renders c like GitHub's issue comment. Callers hold mu.
func (s *Server) commentJSON(c *Comment) map[string]any {
	kind := "issues"
	if _, ok := s.repo(c.Repo).pulls[c.Issue]; ok {
		kind = "pull"
	}
	assoc := "NONE"
	if role := s.repo(c.Repo).perms[strings.ToLower(c.User)]; role != "" && role != "none" {
		assoc = "COLLABORATOR"
	}
	return map[string]any{
		"id": c.ID, "node_id": fmt.Sprintf("IC_%d", c.ID), "body": c.Body, "user": s.userJSON(c.User),
		"created_at": timestamp(c.CreatedAt), "updated_at": timestamp(c.UpdatedAt),
		"author_association": assoc,
		"html_url":           fmt.Sprintf("https://github.com/%s/%s/%d#issuecomment-%d", c.Repo, kind, c.Issue, c.ID),
		"issue_url":          fmt.Sprintf("https://api.github.com/repos/%s/issues/%d", c.Repo, c.Issue),
		"url":                fmt.Sprintf("https://api.github.com/repos/%s/issues/comments/%d", c.Repo, c.ID),
	}
}

// decodeBody decodes the JSON request body into v, answering 400 as GitHub
// does when it is not JSON.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return false
	}
	return true
}

func pathInt(r *http.Request, name string) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return n, err == nil && n > 0
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request) {
	n, ok := pathInt(r, "number")
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	var req struct {
		Body *string `json:"body"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	s.mu.Lock()
	known := s.repo(repoName(r)).hasIssue(int(n))
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if errs := validateCommentBody(req.Body); len(errs) > 0 {
		writeValidation(w, errs...)
		return
	}
	s.mu.Lock()
	out := s.commentJSON(s.addComment(repoName(r), int(n), BotLogin, *req.Body))
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

// MaxCommentChars is the most characters (Unicode code points, not bytes)
// GitHub accepts in an issue or pull request comment body.
const MaxCommentChars = 65536

// validateCommentBody checks a comment body sent to create or edit a
// comment the way GitHub does.
func validateCommentBody(body *string) []fieldError {
	if body == nil || *body == "" {
		return []fieldError{{Resource: "IssueComment", Field: "body", Code: "missing_field"}}
	}
	if utf8.RuneCountInString(*body) > MaxCommentChars {
		return []fieldError{{Resource: "IssueComment", Field: "body", Code: "custom",
			Message: fmt.Sprintf("body is too long (maximum is %d characters)", MaxCommentChars)}}
	}
	return nil
}

func (s *Server) editComment(w http.ResponseWriter, r *http.Request) {
	id, _ := pathInt(r, "id")
	var req struct {
		Body *string `json:"body"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	s.mu.Lock()
	c := s.comments[id]
	if c == nil || !strings.EqualFold(c.Repo, repoName(r)) {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if errs := validateCommentBody(req.Body); len(errs) > 0 {
		s.mu.Unlock()
		writeValidation(w, errs...)
		return
	}
	c.Body = *req.Body
	c.UpdatedAt = s.now().UTC().Truncate(time.Second)
	out := s.commentJSON(c)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request) {
	n, _ := pathInt(r, "number")
	repo := repoName(r)
	s.mu.Lock()
	if !s.repo(repo).hasIssue(int(n)) {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	var all []map[string]any
	for _, id := range sortedIDs(s.comments) {
		if c := s.comments[id]; strings.EqualFold(c.Repo, repo) && int64(c.Issue) == n {
			all = append(all, s.commentJSON(c))
		}
	}
	s.mu.Unlock()
	lo, hi := paginate(w, r, len(all))
	writeJSON(w, http.StatusOK, append([]map[string]any{}, all[lo:hi]...))
}

var reactionContents = map[string]bool{
	"+1": true, "-1": true, "laugh": true, "confused": true, "heart": true, "hooray": true, "rocket": true, "eyes": true,
}

// reactionJSON renders a reaction. Callers hold mu.
func (s *Server) reactionJSON(re reaction) map[string]any {
	return map[string]any{
		"id": re.id, "node_id": fmt.Sprintf("REA_%d", re.id), "user": s.userJSON(re.user),
		"content": re.content, "created_at": timestamp(re.createdAt),
	}
}

// createReaction adds the app's reaction to a comment of the repository.
// As on GitHub, the comment must exist: tests register a human's comment
// with AddComment before delivering its webhook. The same content twice
// answers 200 with the existing reaction.
func (s *Server) createReaction(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	var req struct {
		Content string `json:"content"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if !reactionContents[req.Content] {
		writeValidation(w, fieldError{Resource: "Reaction", Field: "content", Code: "invalid"})
		return
	}
	repo := repoName(r)
	s.mu.Lock()
	if c := s.comments[id]; c == nil || !strings.EqualFold(c.Repo, repo) {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	for _, re := range s.reactions[id] {
		if re.user == BotLogin && re.content == req.Content && strings.EqualFold(re.repo, repo) {
			out := s.reactionJSON(re)
			s.mu.Unlock()
			writeJSON(w, http.StatusOK, out)
			return
		}
	}
	re := reaction{id: s.newID(), repo: s.repo(repo).fullName, user: BotLogin, content: req.Content, createdAt: s.now()}
	s.reactions[id] = append(s.reactions[id], re)
	out := s.reactionJSON(re)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listReactions(w http.ResponseWriter, r *http.Request) {
	id, _ := pathInt(r, "id")
	repo := repoName(r)
	content := r.URL.Query().Get("content")
	s.mu.Lock()
	if c := s.comments[id]; c == nil || !strings.EqualFold(c.Repo, repo) {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	all := []map[string]any{}
	for _, re := range s.reactions[id] {
		if strings.EqualFold(re.repo, repo) && (content == "" || re.content == content) {
			all = append(all, s.reactionJSON(re))
		}
	}
	s.mu.Unlock()
	lo, hi := paginate(w, r, len(all))
	writeJSON(w, http.StatusOK, all[lo:hi])
}
