package githubtest

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CheckRun is a check run as the fake stores it.
type CheckRun struct {
	ID   int64
	Repo string
	// AppSlug is the GitHub App that made it: AppSlug for those the bot
	// creates through the API, another app's for AddCheckRun.
	AppSlug     string
	Name        string
	HeadSHA     string
	Status      string // queued, in_progress or completed
	Conclusion  string // empty until completed
	ExternalID  string
	DetailsURL  string
	Title       string
	Summary     string
	Text        string
	Actions     []CheckRunAction
	Annotations []Annotation
	StartedAt   time.Time
	CompletedAt time.Time // zero until completed
}

// CheckRunAction is a button on a check run.
type CheckRunAction struct {
	Label       string `json:"label"`
	Description string `json:"description"`
	Identifier  string `json:"identifier"`
}

// CheckRuns returns the check runs of repo, oldest first.
func (s *Server) CheckRuns(repo string) []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CheckRun
	for _, id := range sortedIDs(s.checkRuns) {
		if cr := s.checkRuns[id]; strings.EqualFold(cr.Repo, repo) {
			c := *cr
			c.Actions = append([]CheckRunAction(nil), cr.Actions...)
			out = append(out, c)
		}
	}
	return out
}

// checkRunRequest is the body of a create or update; pointers tell absent
// fields from empty ones.
type checkRunRequest struct {
	Name        *string    `json:"name"`
	HeadSHA     *string    `json:"head_sha"`
	DetailsURL  *string    `json:"details_url"`
	ExternalID  *string    `json:"external_id"`
	Status      *string    `json:"status"`
	Conclusion  *string    `json:"conclusion"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
	Output      *struct {
		Title       *string      `json:"title"`
		Summary     *string      `json:"summary"`
		Text        *string      `json:"text"`
		Annotations []Annotation `json:"annotations"`
	} `json:"output"`
	Actions *[]CheckRunAction `json:"actions"`
}

var (
	checkStatuses    = map[string]bool{"queued": true, "in_progress": true, "completed": true}
	checkConclusions = map[string]bool{
		"action_required": true, "cancelled": true, "failure": true, "neutral": true,
		"success": true, "skipped": true, "stale": true, "timed_out": true,
	}
)

const maxOutputBytes = 65535

// maxAnnotations is GitHub's limit per create or update request.
const maxAnnotations = 50

var annotationLevels = map[string]bool{"notice": true, "warning": true, "failure": true}

// Annotation is a problem a check run marks on a file's lines.
type Annotation struct {
	Path            string `json:"path"`
	StartLine       int    `json:"start_line"`
	EndLine         int    `json:"end_line"`
	AnnotationLevel string `json:"annotation_level"`
	Message         string `json:"message"`
}

// validate checks req the way GitHub documents it; create says whether
// name and head_sha are required.
func (req *checkRunRequest) validate(create bool) []fieldError {
	var errs []fieldError
	missing := func(field string) {
		errs = append(errs, fieldError{Resource: "CheckRun", Field: field, Code: "missing_field"})
	}
	invalid := func(field, msg string) {
		errs = append(errs, fieldError{Resource: "CheckRun", Field: field, Code: "invalid", Message: msg})
	}
	if (create && req.Name == nil) || (req.Name != nil && *req.Name == "") {
		// go-github sends "name":"" on an update that leaves Name unset
		// (no omitempty); a check run cannot be renamed to nothing.
		missing("name")
	}
	if create {
		if req.HeadSHA == nil || *req.HeadSHA == "" {
			missing("head_sha")
		} else if b, err := hex.DecodeString(*req.HeadSHA); err != nil || len(b) != 20 {
			invalid("head_sha", "No commit found for SHA: "+*req.HeadSHA)
		}
	}
	if req.Status != nil && !checkStatuses[*req.Status] {
		invalid("status", "status is not included in the list")
	}
	if req.Conclusion != nil && !checkConclusions[*req.Conclusion] {
		invalid("conclusion", "conclusion is not included in the list")
	}
	if o := req.Output; o != nil {
		if o.Title == nil || *o.Title == "" {
			missing("output.title")
		}
		if o.Summary == nil || *o.Summary == "" {
			missing("output.summary")
		} else if len(*o.Summary) > maxOutputBytes {
			invalid("output.summary", "summary is too long (maximum is 65535 characters)")
		}
		if o.Text != nil && len(*o.Text) > maxOutputBytes {
			invalid("output.text", "text is too long (maximum is 65535 characters)")
		}
		if len(o.Annotations) > maxAnnotations {
			invalid("output.annotations", "Only 50 annotations are allowed per request")
		}
		for _, a := range o.Annotations {
			if a.Path == "" || a.StartLine < 1 || a.EndLine < a.StartLine || a.Message == "" || !annotationLevels[a.AnnotationLevel] {
				invalid("output.annotations", "annotations need a path, start_line ≤ end_line, a message and an annotation_level of notice, warning or failure")
				break
			}
		}
	}
	if req.Actions != nil {
		if len(*req.Actions) > 3 {
			invalid("actions", "Only 3 actions are allowed")
		}
		for _, a := range *req.Actions {
			switch {
			case a.Label == "" || len([]rune(a.Label)) > 20:
				invalid("actions.label", "label must be 1 to 20 characters")
			case a.Description == "" || len([]rune(a.Description)) > 40:
				invalid("actions.description", "description must be 1 to 40 characters")
			case a.Identifier == "" || len([]rune(a.Identifier)) > 20:
				invalid("actions.identifier", "identifier must be 1 to 20 characters")
			}
		}
	}
	return errs
}

// apply copies the fields present in req onto cr. Callers hold mu.
func (s *Server) apply(cr *CheckRun, req *checkRunRequest) []fieldError {
	if req.Name != nil {
		cr.Name = *req.Name // as sent: go-github sends "name" on every update
	}
	if req.DetailsURL != nil {
		cr.DetailsURL = *req.DetailsURL
	}
	if req.ExternalID != nil {
		cr.ExternalID = *req.ExternalID
	}
	if req.Status != nil {
		cr.Status = *req.Status
	}
	if req.Conclusion != nil {
		cr.Conclusion = *req.Conclusion
		cr.Status = "completed" // GitHub: a conclusion completes the run
	}
	if cr.Status == "completed" && cr.Conclusion == "" {
		return []fieldError{{Resource: "CheckRun", Field: "conclusion", Code: "missing_field",
			Message: "conclusion must be set when status is completed"}}
	}
	if cr.Status != "completed" {
		cr.Conclusion, cr.CompletedAt = "", time.Time{}
	} else if req.CompletedAt != nil {
		cr.CompletedAt = req.CompletedAt.UTC()
	} else if cr.CompletedAt.IsZero() {
		cr.CompletedAt = s.now().UTC().Truncate(time.Second)
	}
	if o := req.Output; o != nil {
		cr.Title, cr.Summary = *o.Title, *o.Summary
		if o.Text != nil {
			cr.Text = *o.Text
		}
		cr.Annotations = append(cr.Annotations, o.Annotations...) // GitHub adds them up across updates
	}
	if req.Actions != nil {
		cr.Actions = append([]CheckRunAction(nil), (*req.Actions)...)
	}
	return nil
}

// checkRunJSON renders cr like GitHub. Callers hold mu.
func (s *Server) checkRunJSON(cr *CheckRun) map[string]any {
	var conclusion, completedAt any
	if cr.Status == "completed" {
		conclusion, completedAt = cr.Conclusion, timestamp(cr.CompletedAt)
	}
	rs := s.repo(cr.Repo)
	var pulls []map[string]any
	for n, pr := range rs.pulls {
		if pr.HeadSHA == cr.HeadSHA {
			pulls = append(pulls, map[string]any{
				"id": rs.id*100000 + int64(n), "number": n,
				"url":  fmt.Sprintf("https://api.github.com/repos/%s/pulls/%d", rs.fullName, n),
				"head": map[string]any{"ref": pr.HeadRef, "sha": pr.HeadSHA},
				"base": map[string]any{"ref": pr.BaseRef},
			})
		}
	}
	if pulls == nil {
		pulls = []map[string]any{}
	}
	return map[string]any{
		"id": cr.ID, "node_id": fmt.Sprintf("CR_%d", cr.ID), "name": cr.Name, "head_sha": cr.HeadSHA,
		"external_id": cr.ExternalID, "details_url": cr.DetailsURL,
		"status": cr.Status, "conclusion": conclusion,
		"started_at": timestamp(cr.StartedAt), "completed_at": completedAt,
		"url":      fmt.Sprintf("https://api.github.com/repos/%s/check-runs/%d", cr.Repo, cr.ID),
		"html_url": fmt.Sprintf("https://github.com/%s/runs/%d", cr.Repo, cr.ID),
		"output": map[string]any{
			"title": cr.Title, "summary": cr.Summary, "text": cr.Text, "annotations_count": 0,
			"annotations_url": fmt.Sprintf("https://api.github.com/repos/%s/check-runs/%d/annotations", cr.Repo, cr.ID),
		},
		"check_suite":   map[string]any{"id": rs.id},
		"app":           map[string]any{"id": s.appIDFor(cr.AppSlug), "slug": cr.AppSlug, "name": cr.AppSlug},
		"pull_requests": pulls,
	}
}

func (s *Server) createCheckRun(w http.ResponseWriter, r *http.Request) {
	var req checkRunRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if errs := req.validate(true); len(errs) > 0 {
		writeValidation(w, errs...)
		return
	}
	s.mu.Lock()
	now := s.now().UTC().Truncate(time.Second)
	cr := &CheckRun{Repo: s.repo(repoName(r)).fullName, AppSlug: AppSlug, HeadSHA: *req.HeadSHA, Status: "queued", StartedAt: now}
	if req.StartedAt != nil {
		cr.StartedAt = req.StartedAt.UTC()
	}
	if errs := s.apply(cr, &req); len(errs) > 0 {
		s.mu.Unlock()
		writeValidation(w, errs...)
		return
	}
	cr.ID = s.newID()
	s.checkRuns[cr.ID] = cr
	out := s.checkRunJSON(cr)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) updateCheckRun(w http.ResponseWriter, r *http.Request) {
	id, _ := pathInt(r, "id")
	var req checkRunRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if errs := req.validate(false); len(errs) > 0 {
		writeValidation(w, errs...)
		return
	}
	s.mu.Lock()
	cr := s.checkRuns[id]
	if cr == nil || !strings.EqualFold(cr.Repo, repoName(r)) {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if cr.AppSlug != AppSlug {
		// GitHub: an app may update only the check runs it created.
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "Resource not accessible by integration")
		return
	}
	updated := *cr
	if errs := s.apply(&updated, &req); len(errs) > 0 {
		s.mu.Unlock()
		writeValidation(w, errs...)
		return
	}
	*cr = updated
	out := s.checkRunJSON(cr)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getCheckRun(w http.ResponseWriter, r *http.Request) {
	id, _ := pathInt(r, "id")
	s.mu.Lock()
	cr := s.checkRuns[id]
	if cr == nil || !strings.EqualFold(cr.Repo, repoName(r)) {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	out := s.checkRunJSON(cr)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// listCheckRunsForRef lists the check runs on a commit SHA (the fake knows
// no branches here), newest first, filtered by check_name, status, app_id
// and filter: latest (the default) keeps only the newest run of each name
// and app, all keeps every run.
func (s *Server) listCheckRunsForRef(w http.ResponseWriter, r *http.Request) {
	ref, repo, q := r.PathValue("ref"), repoName(r), r.URL.Query()
	filter := q.Get("filter")
	if filter != "" && filter != "latest" && filter != "all" {
		writeValidation(w, fieldError{Resource: "CheckRun", Field: "filter", Code: "invalid", Message: "filter must be latest or all"})
		return
	}
	var appID int64
	if v := q.Get("app_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeValidation(w, fieldError{Resource: "CheckRun", Field: "app_id", Code: "invalid", Message: "app_id is not a number"})
			return
		}
		appID = id
	}
	type nameApp struct{ name, app string }
	seen := map[nameApp]bool{}
	s.mu.Lock()
	var all []map[string]any
	ids := sortedIDs(s.checkRuns)
	for i := len(ids) - 1; i >= 0; i-- {
		cr := s.checkRuns[ids[i]]
		if !strings.EqualFold(cr.Repo, repo) || cr.HeadSHA != ref {
			continue
		}
		// GitHub picks the latest run per name and app before it filters.
		key := nameApp{cr.Name, cr.AppSlug}
		if filter != "all" && seen[key] {
			continue
		}
		seen[key] = true
		if (q.Get("check_name") != "" && cr.Name != q.Get("check_name")) ||
			(q.Get("status") != "" && cr.Status != q.Get("status")) ||
			(appID != 0 && s.appIDFor(cr.AppSlug) != appID) {
			continue
		}
		all = append(all, s.checkRunJSON(cr))
	}
	s.mu.Unlock()
	lo, hi := paginate(w, r, len(all))
	writeJSON(w, http.StatusOK, map[string]any{
		"total_count": len(all), "check_runs": append([]map[string]any{}, all[lo:hi]...),
	})
}

// appIDFor is the id of the app with slug: the fake's own AppID for
// AppSlug, a stable id of its own for any other. Callers hold mu.
func (s *Server) appIDFor(slug string) int64 {
	if slug == AppSlug {
		return s.AppID
	}
	id, ok := s.appIDs[slug]
	if !ok {
		id = s.newID()
		s.appIDs[slug] = id
	}
	return id
}

// AddCheckRun adds a check run made by another GitHub App, such as
// Packit's `vm-image-build:<target>`, and returns it with its ID and times.
// cr.AppSlug, Name and HeadSHA are required; Status defaults to queued, or
// completed when a Conclusion is given; Title, Summary and the rest are
// kept as given.
func (s *Server) AddCheckRun(repo string, cr CheckRun) CheckRun {
	if cr.AppSlug == "" || cr.Name == "" || cr.HeadSHA == "" {
		panic("githubtest: AddCheckRun: AppSlug, Name and HeadSHA are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cr.Repo = s.repo(repo).fullName
	cr.Actions = append([]CheckRunAction(nil), cr.Actions...)
	now := s.now().UTC().Truncate(time.Second)
	if cr.StartedAt.IsZero() {
		cr.StartedAt = now
	}
	if cr.Status == "" {
		cr.Status = "queued"
		if cr.Conclusion != "" {
			cr.Status = "completed"
		}
	}
	settle(&cr, now, "AddCheckRun")
	cr.ID = s.newID()
	stored := cr
	s.checkRuns[cr.ID] = &stored
	return cr
}

// UpdateCheckRunAs changes a check run the way the app that made it would,
// e.g. Packit moving its build from queued to in_progress to completed
// with a conclusion and output. Completing it stamps CompletedAt (unless
// update set it); anything but completed clears Conclusion and
// CompletedAt. ID, Repo and AppSlug stay. It panics for an unknown run.
func (s *Server) UpdateCheckRunAs(repo string, id int64, update func(*CheckRun)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cr := s.checkRuns[id]
	if cr == nil || !strings.EqualFold(cr.Repo, repo) {
		panic(fmt.Sprintf("githubtest: UpdateCheckRunAs: no check run %d in %s", id, repo))
	}
	updated := *cr
	updated.Actions = append([]CheckRunAction(nil), cr.Actions...)
	update(&updated)
	updated.ID, updated.Repo, updated.AppSlug = cr.ID, cr.Repo, cr.AppSlug
	settle(&updated, s.now().UTC().Truncate(time.Second), "UpdateCheckRunAs")
	*cr = updated
}

// settle makes a check run's status, conclusion and completion time agree,
// as GitHub keeps them; who names the caller for its panics.
func settle(cr *CheckRun, now time.Time, who string) {
	if !checkStatuses[cr.Status] {
		panic(fmt.Sprintf("githubtest: %s: status %q is not queued, in_progress or completed", who, cr.Status))
	}
	if cr.Status != "completed" {
		cr.Conclusion, cr.CompletedAt = "", time.Time{}
		return
	}
	if !checkConclusions[cr.Conclusion] {
		panic(fmt.Sprintf("githubtest: %s: a completed check run needs a conclusion, not %q", who, cr.Conclusion))
	}
	if cr.CompletedAt.IsZero() {
		cr.CompletedAt = now
	}
}
