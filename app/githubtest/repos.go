package githubtest

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type repoState struct {
	id            int64
	fullName      string // as first spelled
	defaultBranch string
	perms         map[string]string // lower-case login -> role
	pulls         map[int]PullRequest
	commits       map[int][]string // a pull request's commits, oldest first, once SetPullCommits set them
	pullFiles     map[int][]PullFile
	issues        map[int]bool // plain issues (pull requests are in pulls)
	files         map[fileKey]string
}

type fileKey struct{ ref, path string }

// repo returns the state of "owner/name", creating it. Callers hold mu.
func (s *Server) repo(name string) *repoState {
	key := strings.ToLower(name)
	rs := s.repos[key]
	if rs == nil {
		rs = &repoState{
			id: s.newID(), fullName: name, defaultBranch: DefaultBranch,
			perms: map[string]string{}, pulls: map[int]PullRequest{}, commits: map[int][]string{}, issues: map[int]bool{}, files: map[fileKey]string{},
		}
		s.repos[key] = rs
	}
	return rs
}

// userJSON is a GitHub "simple user". Callers hold mu.
func (s *Server) userJSON(login string) map[string]any {
	key := strings.ToLower(login)
	id, ok := s.userIDs[key]
	if !ok {
		id = s.newID()
		s.userIDs[key] = id
	}
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return map[string]any{
		"login": login, "id": id, "node_id": fmt.Sprintf("U_%d", id), "type": typ, "site_admin": false,
		"avatar_url": fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", id),
		"url":        "https://api.github.com/users/" + login,
		"html_url":   "https://github.com/" + strings.TrimSuffix(login, "[bot]"),
	}
}

// SetDefaultBranch sets repo's default branch (DefaultBranch unless set).
func (s *Server) SetDefaultBranch(repo, branch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(repo).defaultBranch = branch
}

// roles maps a repository role to the "permission" field GitHub reports.
var roles = map[string]string{
	"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read", "none": "none",
}

// SetPermission gives user a role on repo: admin, maintain, write, triage,
// read or none (the default). The permission endpoint reports maintain as
// write and triage as read, as GitHub does; role_name carries the role.
func (s *Server) SetPermission(repo, user, role string) {
	if _, ok := roles[role]; !ok {
		panic(fmt.Sprintf("githubtest: SetPermission: unknown role %q", role))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(repo).perms[strings.ToLower(user)] = role
}

func (s *Server) getPermission(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	s.mu.Lock()
	rs := s.repo(repoName(r))
	// A user token reads permissions only with push access, as on GitHub.
	if asker := infoFrom(r).user; asker != "" && roleRank[rs.perms[strings.ToLower(asker)]] < roleRank["write"] {
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "Must have push access to view collaborator permission.")
		return
	}
	role := rs.perms[strings.ToLower(user)]
	if role == "" {
		role = "none"
	}
	u := s.userJSON(user)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"permission": roles[role], "role_name": role, "user": u})
}

// PullRequest configures a pull request. Zero fields get defaults: State
// "open", HeadRef "feature", HeadSHA a random commit id, BaseRef the repo's
// default branch, User "octocat", Title "Pull request #N", HeadRepo the
// repo itself.
type PullRequest struct {
	Number   int
	State    string // open or closed
	Title    string
	User     string
	HeadSHA  string
	HeadRef  string
	HeadRepo string // "owner/name" of the head (a fork), default the base repo
	BaseRef  string
	Merged   bool
	Draft    bool
}

// SetPull adds or replaces a pull request and returns it with defaults
// filled in.
func (s *Server) SetPull(repo string, pr PullRequest) PullRequest {
	if pr.Number <= 0 {
		panic("githubtest: SetPull: Number must be positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.repo(repo)
	if pr.State == "" {
		pr.State = "open"
	}
	if pr.Title == "" {
		pr.Title = fmt.Sprintf("Pull request #%d", pr.Number)
	}
	if pr.User == "" {
		pr.User = "octocat"
	}
	if pr.HeadSHA == "" {
		pr.HeadSHA = randomSHA()
	}
	if pr.HeadRef == "" {
		pr.HeadRef = "feature"
	}
	if pr.HeadRepo == "" {
		pr.HeadRepo = rs.fullName
	}
	if pr.BaseRef == "" {
		pr.BaseRef = rs.defaultBranch
	}
	rs.pulls[pr.Number] = pr
	delete(rs.issues, pr.Number)
	if c := rs.commits[pr.Number]; len(c) > 0 && c[len(c)-1] != pr.HeadSHA {
		rs.commits[pr.Number] = append(c, pr.HeadSHA) // a push
	}
	return pr
}

// SetPullCommits sets the commits of pull request number, oldest first,
// and makes the last one its head. The pull request must exist (SetPull).
// Without SetPullCommits a pull request has one commit, its head; once set,
// a SetPull with a new HeadSHA adds that commit, as a push does.
func (s *Server) SetPullCommits(repo string, number int, shas ...string) {
	if len(shas) == 0 {
		panic("githubtest: SetPullCommits: give at least one commit")
	}
	for _, sha := range shas {
		if b, err := hex.DecodeString(sha); err != nil || len(b) != 20 {
			panic(fmt.Sprintf("githubtest: SetPullCommits: %q is not a commit SHA", sha))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.repo(repo)
	pr, ok := rs.pulls[number]
	if !ok {
		panic(fmt.Sprintf("githubtest: SetPullCommits: %s has no pull request #%d", repo, number))
	}
	rs.commits[number] = append([]string(nil), shas...)
	pr.HeadSHA = shas[len(shas)-1]
	rs.pulls[number] = pr
}

// pullCommits returns the commits of a pull request, oldest first.
// Callers hold mu.
func (rs *repoState) pullCommits(number int) []string {
	if c := rs.commits[number]; len(c) > 0 {
		return c
	}
	return []string{rs.pulls[number].HeadSHA}
}

// listPullCommits answers GET /repos/{o}/{r}/pulls/{n}/commits: the
// commits oldest first, paginated (GitHub lists at most 250).
func (s *Server) listPullCommits(w http.ResponseWriter, r *http.Request) {
	rs, n, pr, ok := s.lockPull(w, r)
	if !ok {
		return
	}
	shas := rs.pullCommits(n)
	shas = shas[max(0, len(shas)-250):]
	author := s.userJSON(pr.User)
	out := make([]map[string]any, 0, len(shas))
	for i, sha := range shas {
		parents := []map[string]any{}
		if i > 0 {
			parents = append(parents, map[string]any{"sha": shas[i-1]})
		}
		who := map[string]any{"name": pr.User, "email": pr.User + "@users.noreply.github.com", "date": timestamp(s.now())}
		out = append(out, map[string]any{
			"sha": sha, "node_id": "C_" + sha,
			"url":      fmt.Sprintf("https://api.github.com/repos/%s/commits/%s", rs.fullName, sha),
			"html_url": fmt.Sprintf("https://github.com/%s/commit/%s", rs.fullName, sha),
			"commit": map[string]any{
				"message": fmt.Sprintf("Commit %d of pull request #%d", i+1, n),
				"author":  who, "committer": who,
			},
			"author": author, "committer": author, "parents": parents,
		})
	}
	s.mu.Unlock()
	lo, hi := paginate(w, r, len(out))
	writeJSON(w, http.StatusOK, out[lo:hi])
}

// SetIssue makes number a plain issue of repo, so that comments can be
// posted on it. Pull requests need no SetIssue: SetPull makes them exist
// (on GitHub every pull request is an issue too). A number that is already
// a pull request stays one.
func (s *Server) SetIssue(repo string, number int) {
	if number <= 0 {
		panic("githubtest: SetIssue: number must be positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.repo(repo)
	if _, pull := rs.pulls[number]; !pull {
		rs.issues[number] = true
	}
}

// hasIssue says whether number is an issue or a pull request of rs.
func (rs *repoState) hasIssue(number int) bool {
	_, pull := rs.pulls[number]
	return pull || rs.issues[number]
}

func randomSHA() string {
	b := make([]byte, 20)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// repoJSON is a minimal repository object. Callers hold mu.
func (s *Server) repoJSON(rs *repoState) map[string]any {
	owner, name, _ := strings.Cut(rs.fullName, "/")
	return map[string]any{
		"id": rs.id, "node_id": fmt.Sprintf("R_%d", rs.id), "name": name, "full_name": rs.fullName,
		"owner": s.userJSON(owner), "private": false, "default_branch": rs.defaultBranch,
		"html_url": "https://github.com/" + rs.fullName,
		"url":      "https://api.github.com/repos/" + rs.fullName,
	}
}

// lockPull takes mu and finds the request's pull request; when there is
// none it answers 404, releases mu and reports false.
func (s *Server) lockPull(w http.ResponseWriter, r *http.Request) (*repoState, int, PullRequest, bool) {
	n, err := strconv.Atoi(r.PathValue("number"))
	s.mu.Lock()
	rs := s.repo(repoName(r))
	pr, ok := rs.pulls[n]
	if err != nil || !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return nil, 0, PullRequest{}, false
	}
	return rs, n, pr, true
}

func (s *Server) getPull(w http.ResponseWriter, r *http.Request) {
	rs, n, pr, ok := s.lockPull(w, r)
	if !ok {
		return
	}
	headRepo := s.repo(pr.HeadRepo)
	headOwner, _, _ := strings.Cut(headRepo.fullName, "/")
	baseOwner, _, _ := strings.Cut(rs.fullName, "/")
	out := map[string]any{
		"id": rs.id*100000 + int64(n), "number": n, "state": pr.State, "title": pr.Title,
		"locked": false, "draft": pr.Draft, "merged": pr.Merged,
		"user":     s.userJSON(pr.User),
		"html_url": fmt.Sprintf("https://github.com/%s/pull/%d", rs.fullName, n),
		"url":      fmt.Sprintf("https://api.github.com/repos/%s/pulls/%d", rs.fullName, n),
		"head": map[string]any{
			"label": headOwner + ":" + pr.HeadRef, "ref": pr.HeadRef, "sha": pr.HeadSHA,
			"user": s.userJSON(headOwner), "repo": s.repoJSON(headRepo),
		},
		"base": map[string]any{
			"label": baseOwner + ":" + pr.BaseRef, "ref": pr.BaseRef, "sha": randomSHA(),
			"user": s.userJSON(baseOwner), "repo": s.repoJSON(rs),
		},
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// SetFile stores content at path on ref of repo; an empty ref means the
// repo's default branch at the time of the call.
func (s *Server) SetFile(repo, ref, path, content string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.repo(repo)
	if ref == "" {
		ref = rs.defaultBranch
	}
	rs.files[fileKey{ref, strings.Trim(path, "/")}] = content
}

// RemoveFile deletes a file set by SetFile.
func (s *Server) RemoveFile(repo, ref, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.repo(repo)
	if ref == "" {
		ref = rs.defaultBranch
	}
	delete(rs.files, fileKey{ref, strings.Trim(path, "/")})
}

// blobSHA is git's object id for content.
func blobSHA(content string) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write([]byte(content))
	return hex.EncodeToString(h.Sum(nil))
}

// wrapBase64 encodes like GitHub: 60-character lines, each ending in "\n".
func wrapBase64(content string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(content))
	var b strings.Builder
	for len(enc) > 60 {
		b.WriteString(enc[:60])
		b.WriteByte('\n')
		enc = enc[60:]
	}
	b.WriteString(enc)
	b.WriteByte('\n')
	return b.String()
}

// MaxContentsBytes is the largest file the contents API serves as JSON.
const MaxContentsBytes = 1 << 20

func (s *Server) getContents(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(r.PathValue("path"), "/")
	ref := r.URL.Query().Get("ref")
	s.mu.Lock()
	rs := s.repo(repoName(r))
	if ref == "" {
		ref = rs.defaultBranch
	}
	content, ok := rs.files[fileKey{ref, path}]
	fullName := rs.fullName
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if len(content) > MaxContentsBytes {
		// GitHub's answer with the default media type; the raw and object
		// ones, and the blobs API, serve up to 100 MB.
		writeJSON(w, http.StatusForbidden, map[string]any{
			"message": "This API returns blobs up to 1 MB in size. The requested blob is too large to fetch via the API, but you can use the Git Data API to request blobs up to 100 MB in size.",
			"errors":  []fieldError{{Resource: "Blob", Field: "data", Code: "too_large"}}, "documentation_url": docsURL,
		})
		return
	}
	sha := blobSHA(content)
	name := path[strings.LastIndex(path, "/")+1:]
	apiURL := fmt.Sprintf("https://api.github.com/repos/%s/contents/%s?ref=%s", fullName, path, ref)
	htmlURL := fmt.Sprintf("https://github.com/%s/blob/%s/%s", fullName, ref, path)
	gitURL := fmt.Sprintf("https://api.github.com/repos/%s/git/blobs/%s", fullName, sha)
	writeJSON(w, http.StatusOK, map[string]any{
		"type": "file", "encoding": "base64", "size": len(content), "name": name, "path": path,
		"content": wrapBase64(content), "sha": sha,
		"url": apiURL, "html_url": htmlURL, "git_url": gitURL,
		"download_url": fmt.Sprintf("https://raw.githubusercontent.com/%s/%s/%s", fullName, ref, path),
		"_links":       map[string]string{"self": apiURL, "git": gitURL, "html": htmlURL},
	})
}

// Key is a user's public SSH key as GET /users/{u}/keys lists it.
type Key struct {
	ID  int64  `json:"id"`
	Key string `json:"key"`
}

// SetKeys replaces user's public SSH keys and returns them with their ids.
// Users without keys list none (the fake does not know unknown users).
func (s *Server) SetKeys(user string, keys ...string) []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Key, 0, len(keys))
	for _, k := range keys {
		out = append(out, Key{ID: s.newID(), Key: k})
	}
	s.keys[strings.ToLower(user)] = out
	return append([]Key(nil), out...)
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	keys := append([]Key{}, s.keys[strings.ToLower(r.PathValue("user"))]...)
	s.mu.Unlock()
	lo, hi := paginate(w, r, len(keys))
	writeJSON(w, http.StatusOK, keys[lo:hi])
}

// paginate applies GitHub's page/per_page (default 30, at most 100) to n
// items, sets the Link header and returns the slice bounds of the page.
func paginate(w http.ResponseWriter, r *http.Request, n int) (lo, hi int) {
	q := r.URL.Query()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage < 1 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	last := max(1, (n+perPage-1)/perPage)
	link := func(p int, rel string) string {
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, baseURL(r), r.URL.Path, q.Encode(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(min(page-1, last), "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	lo = min((page-1)*perPage, n)
	hi = min(lo+perPage, n)
	return lo, hi
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeErrorDoc(w, status, msg, docsURL)
}

func writeErrorDoc(w http.ResponseWriter, status int, msg, doc string) {
	writeJSON(w, status, map[string]any{"message": msg, "documentation_url": doc})
}

// fieldError is one entry of a 422's "errors".
type fieldError struct {
	Resource string `json:"resource,omitempty"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

func writeValidation(w http.ResponseWriter, errs ...fieldError) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"message": "Validation Failed", "errors": errs, "documentation_url": docsURL,
	})
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
