package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"

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
}

// configCheckName is the check run's name on the PR.
const configCheckName = "packit-launch config"

// maxAnnotations is how many annotations GitHub takes in one request.
const maxAnnotations = 50

// HandleConfigCheck checks a PR's .packit-launch.yaml when the PR changes
// it: one request (the PR's files) when it does not.
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
	status, err := fileStatus(ctx, gh, owner, name, j.Number, config.RepoConfigPath)
	if err != nil || status == "" {
		return err
	}
	out := configCheck{conclusion: "neutral", title: "This pull request removes " + config.RepoConfigPath,
		summary: "Once it is merged, `/launch` has no machines to launch in this repository."}
	if status != "removed" {
		data, err := fileAt(ctx, gh, owner, name, config.RepoConfigPath, j.HeadSHA)
		if err != nil {
			return err
		}
		out = checkRepoConfig(w.cfg, project, data)
	}
	return createConfigCheck(ctx, gh, owner, name, j.HeadSHA, out)
}

// fileStatus is how the PR changes path ("added", "modified", "removed",
// "renamed"…), or "" when it does not.
func fileStatus(ctx context.Context, gh *github.Client, owner, name string, number int, path string) (string, error) {
	opts := &github.ListOptions{PerPage: 100}
	for {
		files, resp, err := gh.PullRequests.ListFiles(ctx, owner, name, number, opts)
		if err != nil {
			return "", fmt.Errorf("list the pull request's files: %w", err)
		}
		for _, f := range files {
			if f.GetFilename() == path || f.GetPreviousFilename() == path && f.GetStatus() == "renamed" {
				if f.GetFilename() != path {
					return "removed", nil // renamed away
				}
				return f.GetStatus(), nil
			}
		}
		if resp.NextPage == 0 {
			return "", nil
		}
		opts.Page = resp.NextPage
	}
}

// fileAt reads path at ref.
func fileAt(ctx context.Context, gh *github.Client, owner, name, path, ref string) ([]byte, error) {
	f, _, _, err := gh.Repositories.GetContents(ctx, owner, name, path, &github.RepositoryContentGetOptions{Ref: ref})
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", path, ref, err)
	}
	text, err := f.GetContent()
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return []byte(text), nil
}

// configCheck is the check run's outcome.
type configCheck struct {
	conclusion, title, summary string
	annotations                []*github.CheckRunAnnotation
}

// checkRepoConfig validates a repo config against the server's policy for
// its project. Pure.
func checkRepoConfig(cfg *config.Server, project *config.Project, data []byte) configCheck {
	_, err := cfg.ParseRepo(data, project)
	if err == nil {
		return configCheck{conclusion: "success", title: config.RepoConfigPath + " is valid",
			summary: "It is valid against this instance's policy. `/launch` keeps using the base branch's version until this is merged."}
	}
	var problems config.Problems
	if !errors.As(err, &problems) {
		problems = config.Problems{err.Error()}
	}
	out := configCheck{conclusion: "failure", title: fmt.Sprintf("%d problem(s) in %s", len(problems), config.RepoConfigPath)}
	var lines []string
	for _, p := range problems {
		lines = append(lines, "- "+p) // problems are markdown already, the repository's words escaped
		if len(out.annotations) < maxAnnotations {
			line := max(config.ProblemLine(data, p), 1)
			msg, _ := fit(p, maxCheckText, "…")
			out.annotations = append(out.annotations, &github.CheckRunAnnotation{Path: github.String(config.RepoConfigPath),
				StartLine: github.Int(line), EndLine: github.Int(line), AnnotationLevel: github.String("failure"), Message: github.String(msg)})
		}
	}
	out.summary = "Once merged, `/launch` would refuse to launch until these are fixed:\n\n" + strings.Join(lines, "\n")
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
