package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/store"
)

// A VM that ended without its record (provision.EndedVM) is told on its PR
// all the same: the check run completed without buttons, the sticky comment
// (found by its marker) saying so.

// JobTellEnded is the queue kind of telling a PR that a VM without a record ended.
const JobTellEnded = "tell-ended"

// stickyMarker marks a launch's sticky comment so that it can be found
// without the record: a link reference definition, which renders as nothing.
func stickyMarker(launchID string) string { return "[packit-launch]: #launch-" + launchID }

// withMarker ends a sticky comment body with its launch's marker.
func withMarker(launchID, body string) string { return body + "\n\n" + stickyMarker(launchID) }

// endedVMText says when and why a VM without a record ended.
func endedVMText(vm provision.EndedVM) string {
	return fmt.Sprintf("VM %s (instance %s) was terminated at %s because %s.",
		mdsafe.Code(vm.LaunchID), mdsafe.Code(vm.InstanceID), vm.EndedAt.Format("2006-01-02 15:04 UTC"), vm.Reason)
}

// TellEnded puts an ended VM on its PR from its tags alone: the check run
// completed without buttons, and the sticky comment (one of botLogin's)
// edited, or, if it cannot be found, a new one; each is tried whatever
// becomes of the other. Termination never waits for it.
func TellEnded(ctx context.Context, gh *github.Client, botLogin string, vm provision.EndedVM, log *slog.Logger) error {
	return errors.Join(endCheckRun(ctx, gh, vm), endSticky(ctx, gh, botLogin, vm, log))
}

func endCheckRun(ctx context.Context, gh *github.Client, vm provision.EndedVM) error {
	owner, name, _ := strings.Cut(vm.Repo, "/")
	text := endedVMText(vm)
	if vm.CheckRunID != 0 {
		// No name: the check run keeps the one it has, which only the record knew.
		update := map[string]any{
			"status": "completed", "conclusion": "neutral", "completed_at": vm.EndedAt.Format(time.RFC3339),
			"output":  map[string]string{"title": "The VM was terminated", "summary": text},
			"actions": []any{},
		}
		req, err := gh.NewRequest(http.MethodPatch, fmt.Sprintf("repos/%s/%s/check-runs/%d", owner, name, vm.CheckRunID), update)
		if err == nil {
			_, err = gh.Do(ctx, req, nil)
		}
		if err != nil {
			return fmt.Errorf("update check run: %w", err)
		}
	}
	return nil
}

func endSticky(ctx context.Context, gh *github.Client, botLogin string, vm provision.EndedVM, log *slog.Logger) error {
	t := newThread(gh, vm.Repo, vm.PR, 0, vm.Owner, "", log)
	id, err := findSticky(ctx, gh, botLogin, vm)
	if err != nil {
		return err
	}
	_, err = t.Post(ctx, id, withMarker(vm.LaunchID, fmt.Sprintf("%s %s\n\nComment `/launch` for a new one.", mdsafe.Mention(vm.Owner), endedVMText(vm))))
	if errors.Is(err, errAnswerRefused) {
		log.Error("the PR could not be told a VM ended", "launch", vm.LaunchID, "err", err)
		return nil
	}
	return err
}

// maxStickyPages bounds the search for a sticky comment (100 comments a page).
const maxStickyPages = 10

// findSticky finds the launch's sticky comment by its marker among
// botLogin's comments (the marker is public: another app's bot may quote
// it); 0 when none. Launches from before the marker have none.
func findSticky(ctx context.Context, gh *github.Client, botLogin string, vm provision.EndedVM) (int64, error) {
	owner, name, _ := strings.Cut(vm.Repo, "/")
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for range maxStickyPages {
		page, resp, err := gh.Issues.ListComments(ctx, owner, name, vm.PR, opts)
		if err != nil {
			return 0, fmt.Errorf("list comments: %w", err)
		}
		for _, c := range page {
			if strings.EqualFold(c.GetUser().GetLogin(), botLogin) && strings.Contains(c.GetBody(), stickyMarker(vm.LaunchID)) {
				return c.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return 0, nil
}

// ForRepo is a client for the installation that covers repo, found with
// the App's own JWT (a VM's tags name its repository, not its
// installation), and the login the App comments as.
func (i *Installations) ForRepo(ctx context.Context, repo string) (*github.Client, string, error) {
	app := i.app
	self, _, err := app.Apps.Get(ctx, "")
	if err != nil {
		return nil, "", fmt.Errorf("read the GitHub App: %w", err)
	}
	owner, name, _ := strings.Cut(repo, "/")
	inst, _, err := app.Apps.FindRepositoryInstallation(ctx, owner, name)
	if err != nil {
		return nil, "", fmt.Errorf("find the installation of %s: %w", repo, err)
	}
	gh, err := i.Client(ctx, inst.GetID())
	return gh, self.GetSlug() + "[bot]", err
}

// repoClients gives a client for the installation that covers a repository.
type repoClients interface {
	ForRepo(ctx context.Context, repo string) (*github.Client, string, error)
}

// Denied tells a VM's PR that AWS refused to terminate it at its time:
// it keeps running until the operators end it. Best effort: the log and
// the metric tell the operators whatever becomes of this.
func (ls *Launches) Denied(ctx context.Context, vm provision.EndedVM) {
	log := ls.log.With("launch", vm.LaunchID, "repo", vm.Repo, "pr", vm.PR, "instance", vm.InstanceID)
	rc, ok := ls.clients.(repoClients)
	if !ok {
		return
	}
	gh, _, err := rc.ForRepo(ctx, vm.Repo)
	if err == nil {
		t := newThread(gh, vm.Repo, vm.PR, 0, vm.Owner, "", log)
		err = t.Comment(ctx, fmt.Sprintf("The VM of launch %s (instance %s) is past its time, but AWS refused to let me terminate it, so it is still running. "+
			"The operators of this packit-launch instance can see it in its log and metrics and must end it by hand; you do not need to do anything.",
			mdsafe.Code(vm.LaunchID), mdsafe.Code(vm.InstanceID)))
	}
	if err != nil {
		log.Warn("tell the PR that AWS refused to terminate its VM", "err", err)
	}
}

// Ended queues telling a PR that a VM without a record ended.
func (ls *Launches) Ended(ctx context.Context, vm provision.EndedVM) {
	payload, _ := json.Marshal(vm)
	err := ls.queue.Enqueue(ctx, store.Job{Kind: JobTellEnded, ID: "tell-ended:" + vm.LaunchID, Payload: payload, Queue: store.QueueLifecycle, MaxRetry: 3})
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		ls.log.Warn("queue telling the PR a VM ended", "launch", vm.LaunchID, "err", err)
	}
}

// HandleTellEnded tells a PR that a VM without a record ended. A PR that
// cannot be told (app uninstalled, repository gone) is logged and counted,
// not retried forever.
func (ls *Launches) HandleTellEnded(ctx context.Context, payload []byte) error {
	var vm provision.EndedVM
	if err := json.Unmarshal(payload, &vm); err != nil {
		return store.SkipRetry(err)
	}
	rc, ok := ls.clients.(repoClients)
	if !ok {
		return store.SkipRetry(errors.New("no way to find a repository's installation"))
	}
	gh, bot, err := rc.ForRepo(ctx, vm.Repo)
	if err == nil {
		err = TellEnded(ctx, gh, bot, vm, ls.log)
	}
	switch {
	case err == nil:
		prUpdatesTotal.WithLabelValues("told").Inc()
		return nil
	case permanent(err) || isNotFound(err):
		ls.log.Warn("the PR of a VM without a record cannot be told", "launch", vm.LaunchID, "repo", vm.Repo, "pr", vm.PR, "err", err)
		prUpdatesTotal.WithLabelValues("failed").Inc()
		return store.SkipRetry(err)
	case store.FinalAttempt(ctx):
		prUpdatesTotal.WithLabelValues("failed").Inc()
	}
	return err
}
