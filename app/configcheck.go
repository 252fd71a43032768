package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"
	"golang.org/x/sync/semaphore"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/store"
)

// A pull request that changes .packit-launch.yaml gets a check run that
// validates its version against this instance's policy, problem by problem
// on the file's lines. It only informs: launches keep using the trusted
// branches' config.

// JobConfigCheck is the queue kind of checking a PR's .packit-launch.yaml.
const JobConfigCheck = "config-check"

// ConfigCheckJob is a pull request opened, reopened or pushed to.
type ConfigCheckJob struct {
	InstallationID int64  `json:"installation_id"`
	Repo           string `json:"repo"`
	Number         int    `json:"number"`
	HeadSHA        string `json:"head_sha"`
	// BaseSHA is the base branch's commit when the event was sent ("" in
	// jobs queued before it was kept: the PR is read for it).
	BaseSHA string `json:"base_sha,omitempty"`
}

// configCheckName is the check run's name on the PR.
const configCheckName = "packit-launch config"

// maxAnnotations is how many annotations GitHub takes in one request.
const maxAnnotations = 50

// maxListedProblems bounds the problems the check's summary lists; the
// rest are counted.
const maxListedProblems = 200

// MaxRepoConfigBytes is the largest .packit-launch.yaml the bot reads: what
// GitHub's contents API serves (larger files come only through the blobs
// API, which the bot does not use). A config of a hundred machines is
// under 20 KB.
const MaxRepoConfigBytes = 1 << 20

// configParses admits parsing at most MaxRepoConfigBytes of repo configs at
// once: a parsed file costs tens of times its size, and anyone who opens a
// PR chooses the file, while a worker runs several jobs at a time.
var configParses = semaphore.NewWeighted(MaxRepoConfigBytes)

// HandleConfigCheck checks a PR's .packit-launch.yaml when the PR changes
// it, with at most four requests whatever the PR's size: one when its
// first page of files shows it leaves the file alone.
func (w *Worker) HandleConfigCheck(ctx context.Context, payload []byte) error {
	var j ConfigCheckJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	project, ok := w.cfg.ProjectFor(j.Repo)
	if !ok {
		return nil // untrusted repositories hear from the bot only when they ask
	}
	gh, err := w.clients.Client(ctx, j.InstallationID)
	if err != nil {
		return err
	}
	owner, name, _ := strings.Cut(j.Repo, "/")
	change, err := configChange(ctx, gh, owner, name, j)
	if err == nil && change.status == "" {
		return nil
	}
	data := change.head
	if err == nil && data == nil && change.status != "removed" {
		data, err = fileAt(ctx, gh, owner, name, config.RepoConfigPath, j.HeadSHA)
	}
	var large *fileTooLarge
	var out configCheck
	switch {
	case errors.As(err, &large):
		out = tooLargeCheck(large)
	case err != nil:
		return err
	case change.status == "removed":
		out = configCheck{conclusion: "neutral", title: "This pull request removes " + config.RepoConfigPath,
			summary: "Once it is merged, `/launch` has no machines to launch in this repository."}
	default:
		if out, err = checkRepoConfigGated(ctx, w.cfg, project, data); err != nil {
			return err
		}
	}
	return createConfigCheck(ctx, gh, owner, name, j.HeadSHA, out)
}

// fileChange is how a PR changes the repo config: status is "added",
// "modified", "removed" (or renamed away)…, or "" when it does not; head
// is the file at the head when it was read on the way.
type fileChange struct {
	status string
	head   []byte
}

// configChange finds how the PR changes the repo config. The PR's first
// page of files settles it for most PRs; a PR with more files is settled
// by comparing the file at the head and the base, which costs the same
// whatever the PR's size (paging through 3,000 files would cost 30).
func configChange(ctx context.Context, gh *github.Client, owner, name string, j ConfigCheckJob) (fileChange, error) {
	path := config.RepoConfigPath
	files, resp, err := gh.PullRequests.ListFiles(ctx, owner, name, j.Number, &github.ListOptions{PerPage: 100})
	if err != nil {
		return fileChange{}, fmt.Errorf("list the pull request's files: %w", err)
	}
	for _, f := range files {
		if f.GetFilename() == path {
			return fileChange{status: f.GetStatus()}, nil
		}
		if f.GetPreviousFilename() == path && f.GetStatus() == "renamed" {
			return fileChange{status: "removed"}, nil
		}
	}
	if resp.NextPage == 0 {
		return fileChange{}, nil
	}
	base := j.BaseSHA
	if base == "" {
		pr, _, err := gh.PullRequests.Get(ctx, owner, name, j.Number)
		if err != nil {
			return fileChange{}, fmt.Errorf("get the pull request: %w", err)
		}
		base = pr.GetBase().GetSHA()
	}
	head, headSHA, err := contentsAt(ctx, gh, owner, name, path, j.HeadSHA)
	if err != nil {
		return fileChange{}, err
	}
	_, baseSHA, err := contentsAt(ctx, gh, owner, name, path, base)
	if err != nil {
		return fileChange{}, err
	}
	switch {
	case headSHA == baseSHA:
		return fileChange{}, nil
	case baseSHA == "":
		return fileChange{status: "added", head: head}, nil
	case headSHA == "":
		return fileChange{status: "removed"}, nil
	}
	return fileChange{status: "modified", head: head}, nil
}

// fileTooLarge is a repo config larger than MaxRepoConfigBytes.
type fileTooLarge struct{ size int }

func (e *fileTooLarge) Error() string {
	if e.size == 0 {
		return fmt.Sprintf("the file is larger than %d KB, the limit", MaxRepoConfigBytes/1024)
	}
	return fmt.Sprintf("the file is %d KB; the limit is %d KB", (e.size+1023)/1024, MaxRepoConfigBytes/1024)
}

// contentsAt reads path at ref with its blob SHA ("" and no error when it
// is not there). A file over the limit is an *fileTooLarge, read no further.
func contentsAt(ctx context.Context, gh *github.Client, owner, name, path, ref string) ([]byte, string, error) {
	var opts *github.RepositoryContentGetOptions
	if ref != "" {
		opts = &github.RepositoryContentGetOptions{Ref: ref}
	}
	f, _, _, err := gh.Repositories.GetContents(ctx, owner, name, path, opts)
	if isNotFound(err) || (err == nil && f == nil) {
		return nil, "", nil
	}
	if tooLargeForContents(err) {
		return nil, "", &fileTooLarge{}
	}
	if err != nil {
		return nil, "", fmt.Errorf("read %s at %s: %w", path, ref, err)
	}
	if f.GetSize() > MaxRepoConfigBytes {
		return nil, f.GetSHA(), &fileTooLarge{size: f.GetSize()}
	}
	text, err := f.GetContent()
	if err != nil {
		return nil, "", fmt.Errorf("decode %s: %w", path, err)
	}
	return []byte(text), f.GetSHA(), nil
}

// tooLargeForContents is GitHub's answer for a file over 1 MB: 403 with
// the error code too_large.
func tooLargeForContents(err error) bool {
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode != http.StatusForbidden {
		return false
	}
	for _, e := range er.Errors {
		if e.Code == "too_large" {
			return true
		}
	}
	return false
}

// fileAt reads path at ref; a file that is not there is an error here.
func fileAt(ctx context.Context, gh *github.Client, owner, name, path, ref string) ([]byte, error) {
	data, sha, err := contentsAt(ctx, gh, owner, name, path, ref)
	if err == nil && sha == "" {
		return nil, fmt.Errorf("read %s at %s: not found", path, ref)
	}
	return data, err
}

// configCheck is the check run's outcome.
type configCheck struct {
	conclusion, title, summary string
	annotations                []*github.CheckRunAnnotation
}

// checkRepoConfigGated checks a repo config within configParses; a file
// too large to read is its one problem.
func checkRepoConfigGated(ctx context.Context, cfg *config.Server, project *config.Project, data []byte) (configCheck, error) {
	if err := configParses.Acquire(ctx, int64(max(len(data), 1))); err != nil {
		return configCheck{}, err
	}
	defer configParses.Release(int64(max(len(data), 1)))
	return checkRepoConfig(cfg, project, data), nil
}

// tooLargeCheck is the outcome for a file over the limit.
func tooLargeCheck(e *fileTooLarge) configCheck {
	return configCheck{conclusion: "failure", title: config.RepoConfigPath + " is too large",
		summary: fmt.Sprintf("%s: %s. `/launch` could not read it once merged; a repo config of a hundred machines is under 20 KB.", config.RepoConfigPath, e)}
}

// checkRepoConfig validates a repo config against the server's policy for
// its project, parsing it once. Pure.
func checkRepoConfig(cfg *config.Server, project *config.Project, data []byte) configCheck {
	problems, lines, more := cfg.CheckRepo(data, project, maxListedProblems)
	if len(problems) == 0 {
		return configCheck{conclusion: "success", title: config.RepoConfigPath + " is valid",
			summary: "It is valid against this instance's policy. `/launch` keeps using the base branch's version until this is merged."}
	}
	out := configCheck{conclusion: "failure", title: fmt.Sprintf("%d problem(s) in %s", len(problems)+more, config.RepoConfigPath)}
	var b strings.Builder
	b.WriteString("Once merged, `/launch` would refuse to launch until these are fixed:\n")
	for i, p := range problems {
		b.WriteString("\n- " + p) // problems are markdown already, the repository's words escaped
		if i < maxAnnotations {
			line := max(lines[i], 1)
			msg, _ := fit(p, maxCheckText, "…")
			out.annotations = append(out.annotations, &github.CheckRunAnnotation{Path: github.String(config.RepoConfigPath),
				StartLine: github.Int(line), EndLine: github.Int(line), AnnotationLevel: github.String("failure"), Message: github.String(msg)})
		}
	}
	if more > 0 {
		fmt.Fprintf(&b, "\n\n…and %d more; fix these first.", more)
	}
	out.summary = b.String()
	return out
}

// createConfigCheck reports the outcome as a completed check run on the PR's head.
func createConfigCheck(ctx context.Context, gh *github.Client, owner, name, sha string, c configCheck) error {
	summary, _ := fit(c.summary, maxCheckText, cutNote)
	title, _ := fit(c.title, maxCheckTitle, "…")
	_, _, err := gh.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
		Name: configCheckName, HeadSHA: sha, Status: github.String("completed"), Conclusion: github.String(c.conclusion),
		Output: &github.CheckRunOutput{Title: github.String(title), Summary: github.String(summary), Annotations: c.annotations},
	})
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusUnprocessableEntity {
		return store.SkipRetry(fmt.Errorf("create the config check run: %w", err)) // a retry sends the same
	}
	if err != nil {
		return fmt.Errorf("create the config check run: %w", err)
	}
	return nil
}
