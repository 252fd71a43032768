package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/commands"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/store"
)

// Queue kinds of the GitHub events that end or extend VMs.
const (
	JobButton        = "button"
	JobPRClosed      = "pr-closed"
	JobUninstalled   = "uninstalled"
	JobReposRemoved  = "repos-removed"
	buttonExtendStep = time.Hour
	actionExtend     = "extend"
	actionTerminate  = "terminate"
	// eventRetries bounds attempts at a GitHub event's job (exponential backoff, hours).
	eventRetries = 20
)

// ButtonJob is a click on a check run's Extend or Terminate button.
type ButtonJob struct {
	Delivery       string `json:"delivery"`
	InstallationID int64  `json:"installation_id"`
	Repo           string `json:"repo"`
	LaunchID       string `json:"launch_id"`
	Action         string `json:"action"`
	Sender         string `json:"sender"`
	CheckRunID     int64  `json:"check_run_id,omitempty"`
	PR             int    `json:"pr,omitempty"` // the check run's pull request, when GitHub names one
}

// PRClosedJob is a closed or merged pull request.
type PRClosedJob struct {
	InstallationID int64  `json:"installation_id"`
	Repo           string `json:"repo"`
	Number         int    `json:"number"`
}

// InstallationJob is the app leaving an installation or some of its repositories.
type InstallationJob struct {
	InstallationID int64    `json:"installation_id"`
	Repos          []string `json:"repos,omitempty"` // empty: the whole installation
}

// Warn tells the owner a VM ends soon.
func (ls *Launches) Warn(ctx context.Context, l *store.Launch) error {
	t, err := ls.thread(ctx, l)
	if err != nil {
		return err
	}
	extend := "It cannot be extended: it is at its latest possible end."
	if l.ExpiresAt.Before(l.HardExpiresAt) {
		extend = fmt.Sprintf("Comment `/launch extend` to keep it longer (up to %s), or use the check run's **Extend 1h** button.", l.HardExpiresAt.UTC().Format("15:04 UTC"))
	}
	return t.Comment(ctx, fmt.Sprintf("%s your VM `%s` (%s) will be terminated at %s. %s",
		mdsafe.Mention(l.Owner), l.ID, mdsafe.Code(l.Machine), whenUTC(l.ExpiresAt, ls.now()), extend))
}

// Refresh brings the sticky comment and the check run up to date with the record.
func (ls *Launches) Refresh(ctx context.Context, l *store.Launch) error {
	if !l.Reported {
		return nil // the launch job reports the outcome itself
	}
	t, err := ls.thread(ctx, l)
	if err != nil {
		return err
	}
	now := ls.now()
	// The check run first: it must show the truth whatever becomes of the comment.
	if err := ls.updateCheckRun(ctx, t, l, now); err != nil {
		return err
	}
	if l.CommentID == 0 {
		return nil
	}
	body := readyComment(l, now, ls.pageOf(l))
	switch l.State {
	case store.StateEnded:
		body = endedComment(l)
	case store.StateFailed:
		body = failedComment(l)
	}
	id, err := t.Post(ctx, l.CommentID, body)
	if errors.Is(err, errAnswerRefused) {
		t.log.Error("the sticky comment could not be updated; the check run shows the state", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if id != l.CommentID || l.SSH.Rev > l.SSHShown { // posted anew (the sticky comment was deleted), or showing more of ssh
		saved, err := ls.marks.UpdateReport(ctx, l.ID, func(x *store.Report) error {
			x.CommentID, x.SSHShown = id, max(x.SSHShown, l.SSH.Rev)
			return nil
		})
		if err != nil {
			return err
		}
		*l = *saved
	}
	return nil
}

func (ls *Launches) updateCheckRun(ctx context.Context, t *Thread, l *store.Launch, now time.Time) error {
	if l.CheckRunID == 0 {
		return nil
	}
	conclusion, title := "success", readyTitle(l)
	actions := []*github.CheckRunAction{} // empty, not absent: an ended VM loses its buttons
	switch {
	case l.State == store.StateFailed:
		conclusion, title = "failure", failedTitle(l)
	case l.State.Ended():
		conclusion, title = "neutral", endedTitle(l)
	default:
		if l.ExpiresAt.Before(l.HardExpiresAt) {
			actions = append(actions, &github.CheckRunAction{Label: "Extend 1h", Description: "Terminate an hour later", Identifier: actionExtend})
		}
		actions = append(actions, &github.CheckRunAction{Label: "Terminate", Description: "Terminate the VM now", Identifier: actionTerminate})
	}
	summary, cut := fit(checkSummary(l, now), maxCheckText, cutNote)
	if cut {
		t.log.Warn("check run summary cut to GitHub's limit", "launch", l.ID, "summary", checkSummary(l, now))
	}
	title, _ = fit(title, maxCheckTitle, "…")
	err := ls.patchCheckRun(ctx, t, l, "completed", conclusion, title, summary, actions, now)
	if err != nil && permanent(err) {
		// Never leave it in progress: a short output says where the rest is.
		t.log.Error("GitHub refused the check run update; sending a short one", "launch", l.ID, "err", err)
		err = ls.patchCheckRun(ctx, t, l, "completed", conclusion, title, "The details did not fit GitHub's check run; see the pull request's comments or the bot's log. Launch id `"+l.ID+"`.", actions, now)
		if err != nil && permanent(err) {
			t.log.Error("GitHub refused the short check run update too", "launch", l.ID, "err", err)
			return nil // a retry cannot change it
		}
	}
	return err
}

// patchCheckRun updates a launch's check run; conclusion and completion
// time go with status "completed" only.
func (ls *Launches) patchCheckRun(ctx context.Context, t *Thread, l *store.Launch, status, conclusion, title, summary string, actions []*github.CheckRunAction, now time.Time) error {
	// go-github drops an empty actions list (omitempty), which would leave
	// stale buttons: send the update with the list always present.
	update := struct {
		github.UpdateCheckRunOptions
		Actions []*github.CheckRunAction `json:"actions"`
	}{
		UpdateCheckRunOptions: github.UpdateCheckRunOptions{
			Name:       checkRunName(l), // go-github sends "" when unset
			ExternalID: github.String(l.ID),
			Status:     github.String(status),
			Output:     &github.CheckRunOutput{Title: github.String(title), Summary: github.String(summary)},
		},
		Actions: actions,
	}
	if status == "completed" {
		update.Conclusion, update.CompletedAt = github.String(conclusion), &github.Timestamp{Time: now}
	}
	req, err := t.gh.NewRequest(http.MethodPatch, fmt.Sprintf("repos/%s/%s/check-runs/%d", t.owner, t.name, l.CheckRunID), update)
	if err == nil {
		_, err = t.gh.Do(ctx, req, nil)
	}
	if err != nil {
		return fmt.Errorf("update check run: %w", err)
	}
	return nil
}

func (ls *Launches) thread(ctx context.Context, l *store.Launch) (*Thread, error) {
	gh, err := ls.clients.Client(ctx, l.InstallationID)
	if err != nil {
		return nil, err
	}
	return newThread(gh, l.Repo, l.PR, l.CommandCommentID, l.Owner, l.Command, ls.log.With("launch", l.ID, "repo", l.Repo, "pr", l.PR)), nil
}

// Manage runs /launch status, extend and stop on the command's PR.
func (ls *Launches) Manage(ctx context.Context, t *Thread, job CommandJob, cmd commands.Command) error {
	launches, err := ls.lc.OnPR(ctx, job.Repo, job.Number)
	if err != nil {
		return err
	}
	switch cmd.Kind {
	case commands.KindStatus:
		return t.Comment(ctx, statusComment(launches, ls.now()))
	case commands.KindExtend:
		return ls.extendOwn(ctx, t, job, launches, cmd.Lifetime)
	case commands.KindStop:
		return ls.stop(ctx, t, job, launches, cmd.Target)
	}
	return store.SkipRetry(fmt.Errorf("manage: unexpected command %s", cmd.Kind))
}

func (ls *Launches) extendOwn(ctx context.Context, t *Thread, job CommandJob, launches []*store.Launch, d time.Duration) error {
	var own []*store.Launch
	for _, l := range launches {
		if strings.EqualFold(l.Owner, job.User) && l.State == store.StateRunning {
			own = append(own, l)
		}
	}
	if len(own) == 0 {
		return refuse("You have no running VM on this pull request to extend. `/launch status` lists its VMs.")
	}
	if err := authorize(ctx, t.gh, ls.cfg, job.Repo, job.User, config.ActionExtend, job.User); err != nil {
		return err
	}
	var lines []string
	for _, l := range own {
		line, err := ls.extendOnce(ctx, job.Delivery, l, d, job.User)
		if err != nil {
			return err
		}
		lines = append(lines, line)
	}
	return t.Comment(ctx, fmt.Sprintf("%s %s", mdsafe.Mention(job.User), strings.Join(lines, "\n")))
}

// extendOnce extends one launch (once per delivery) and says what happened, in one line.
func (ls *Launches) extendOnce(ctx context.Context, delivery string, l *store.Launch, d time.Duration, by string) (string, error) {
	err := ls.lc.Extend(ctx, delivery, l, d, by)
	if errors.Is(err, provision.ErrAtHardExpiry) {
		return fmt.Sprintf("`%s` is already at its latest possible end, %s; it cannot be extended.", l.ID, whenUTC(l.HardExpiresAt, ls.now())), nil
	}
	if err != nil {
		return "", err
	}
	return extendedLine(l, ls.now()), nil
}

// extendedLine says when an extended launch now ends.
func extendedLine(l *store.Launch, now time.Time) string {
	capped := ""
	if l.ExpiresAt.Equal(l.HardExpiresAt) {
		capped = " (its latest possible end)"
	}
	return fmt.Sprintf("`%s` now terminates at %s%s.", l.ID, whenUTC(l.ExpiresAt, now), capped)
}

// stop terminates the person's own VMs on the PR, one by id, or all; VMs of
// others need the person to be a repository admin (config.Permit).
func (ls *Launches) stop(ctx context.Context, t *Thread, job CommandJob, launches []*store.Launch, target string) error {
	if target == "" || target == commands.StopAll {
		// A /launch of theirs written before this and not recorded yet is refused.
		if err := ls.lc.StopBefore(ctx, job.Repo, job.Number, job.User, job.CommentID); err != nil {
			return err
		}
	}
	picked, err := provision.PickStops(launches, job.User, target, job.ReceivedAt)
	if err != nil {
		return err
	}
	perm, err := permissionOf(ctx, t.gh, job.Repo, job.User)
	if err != nil {
		return err
	}
	allowed, err := provision.PermitStops(picked, job.User, target, perm)
	if err != nil {
		return err
	}
	var lines []string
	for _, l := range allowed {
		err := ls.lc.Stop(ctx, l, provision.StoppedBy(job.User))
		if errors.Is(err, provision.ErrStillLaunching) {
			lines = append(lines, fmt.Sprintf("`%s` is still launching; it will be terminated as soon as it is up.", l.ID))
			continue
		}
		if err != nil {
			return err
		}
		if l.InstanceID == "" {
			lines = append(lines, fmt.Sprintf("`%s` (%s) is cancelled before its VM was launched.", l.ID, mdsafe.Code(l.Machine)))
			continue
		}
		lines = append(lines, fmt.Sprintf("`%s` (%s) is terminated.", l.ID, mdsafe.Code(l.Machine)))
	}
	return t.Comment(ctx, fmt.Sprintf("%s %s", mdsafe.Mention(job.User), strings.Join(lines, "\n")))
}

// answerEndedButton answers a button of a launch the bot has no record of.
// Its VM may still run (the record was lost, not the VM): then Terminate
// ends it, as the person may, and Extend says why it cannot. A VM that is
// gone gets its check run completed without buttons and the person told,
// so that a click is never met with silence.
func (ls *Launches) answerEndedButton(ctx context.Context, j ButtonJob) error {
	gh, err := ls.clients.Client(ctx, j.InstallationID)
	if err != nil {
		return err
	}
	live, err := ls.lc.FindUnrecorded(ctx, j.LaunchID, j.Repo)
	if err != nil {
		return err
	}
	if live != nil {
		return ls.answerUnrecordedButton(ctx, gh, j, live)
	}
	vm := provision.EndedVM{LaunchID: j.LaunchID, Repo: j.Repo, PR: j.PR, CheckRunID: j.CheckRunID, EndedAt: ls.now().UTC()}
	owner, name, _ := strings.Cut(j.Repo, "/")
	if j.CheckRunID != 0 {
		update := map[string]any{"status": "completed", "conclusion": "neutral", "completed_at": vm.EndedAt.Format(time.RFC3339), "actions": []any{},
			"output": map[string]string{"title": "This VM has already ended", "summary": fmt.Sprintf("VM `%s` has already ended; its buttons do nothing now. Comment `/launch` for a new one.", mdsafe.Code(j.LaunchID))}}
		req, err := gh.NewRequest(http.MethodPatch, fmt.Sprintf("repos/%s/%s/check-runs/%d", owner, name, j.CheckRunID), update)
		if err == nil {
			_, err = gh.Do(ctx, req, nil)
		}
		if err != nil && !permanent(err) {
			return fmt.Errorf("update check run: %w", err)
		}
	}
	if j.PR == 0 {
		return nil
	}
	t := newThread(gh, j.Repo, j.PR, 0, j.Sender, "", ls.log)
	return t.Comment(ctx, fmt.Sprintf("%s this VM (%s) has already ended, so its buttons do nothing now. Comment `/launch` for a new one.", mdsafe.Mention(j.Sender), mdsafe.Code(j.LaunchID)))
}

// answerUnrecordedButton handles a button of a live VM whose record is gone.
func (ls *Launches) answerUnrecordedButton(ctx context.Context, gh *github.Client, j ButtonJob, vm *provision.VM) error {
	t := newThread(gh, j.Repo, j.PR, 0, j.Sender, "", ls.log)
	if j.Action != actionTerminate {
		if j.PR == 0 {
			return nil
		}
		return t.Comment(ctx, fmt.Sprintf("%s I lost my record of VM %s, so I cannot extend it; it ends as planned (%s). Its **Terminate** button still works.",
			mdsafe.Mention(j.Sender), mdsafe.Code(j.LaunchID), mdsafe.Code(vm.ExpiresAt)))
	}
	err := authorize(ctx, gh, ls.cfg, j.Repo, j.Sender, config.ActionStop, vm.Owner)
	var refusal *config.Refusal
	if errors.As(err, &refusal) {
		if j.PR == 0 {
			return nil
		}
		return t.Comment(ctx, fmt.Sprintf("%s %s (button of %s)", mdsafe.Mention(j.Sender), refusal.Reason, mdsafe.Code(j.LaunchID)))
	}
	if err != nil {
		return err
	}
	ls.log.Info("terminating a VM without a record by its button", "launch", j.LaunchID, "instance", vm.InstanceID, "sender", j.Sender)
	return ls.lc.EndUnrecorded(ctx, vm, provision.StoppedBy(j.Sender))
}

// buttonActions are the check run's buttons as config.Permit knows them.
var buttonActions = map[string]config.Action{actionExtend: config.ActionExtend, actionTerminate: config.ActionStop}

// HandleButton runs a check-run button click, after checking the clicking
// user's own permission (config.Permit).
func (ls *Launches) HandleButton(ctx context.Context, payload []byte) error {
	var j ButtonJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	l, err := ls.lc.Get(ctx, j.LaunchID)
	if err != nil {
		return err
	}
	if l == nil {
		return ls.answerEndedButton(ctx, j)
	}
	if l.Repo != j.Repo {
		return store.SkipRetry(fmt.Errorf("button for launch %s came from %s", l.ID, j.Repo))
	}
	action, ok := buttonActions[j.Action]
	if !ok {
		return store.SkipRetry(fmt.Errorf("unknown button %q", j.Action))
	}
	t, err := ls.thread(ctx, l)
	if err != nil {
		return err
	}
	err = authorize(ctx, t.gh, ls.cfg, l.Repo, j.Sender, action, l.Owner)
	var refusal *config.Refusal
	if errors.As(err, &refusal) {
		ls.log.With(l.LogAttrs()...).Info("button refused", "sender", j.Sender, "reason", refusal.Reason)
		return t.Comment(ctx, fmt.Sprintf("%s %s (button of `%s`)", mdsafe.Mention(j.Sender), refusal.Reason, l.ID))
	}
	if err != nil {
		return err
	}
	switch j.Action {
	case actionExtend:
		if l.State != store.StateRunning {
			return nil
		}
		line, err := ls.extendOnce(ctx, j.Delivery, l, buttonExtendStep, j.Sender)
		var refusal *config.Refusal
		if errors.As(err, &refusal) {
			line, err = refusal.Reason, nil
		}
		if err != nil {
			return err
		}
		return t.Comment(ctx, fmt.Sprintf("%s %s", mdsafe.Mention(j.Sender), line))
	case actionTerminate:
		err := ls.lc.Stop(ctx, l, provision.StoppedBy(j.Sender))
		if errors.Is(err, provision.ErrStillLaunching) {
			return nil
		}
		return err
	}
	return store.SkipRetry(fmt.Errorf("unknown button %q", j.Action))
}

// HandlePRClosed terminates a closed PR's VMs, unless its repo config keeps them.
func (ls *Launches) HandlePRClosed(ctx context.Context, payload []byte) error {
	var j PRClosedJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	launches, err := ls.lc.OnPR(ctx, j.Repo, j.Number)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(launches, func(l *store.Launch) bool { return !l.State.Ended() }) {
		return nil
	}
	keep := false
	if project, ok := ls.cfg.ProjectFor(j.Repo); ok {
		gh, err := ls.clients.Client(ctx, j.InstallationID)
		if err != nil {
			return err
		}
		// From the default branch (""): a writer's own base branch must not
		// decide that its VMs outlive their PR.
		repoCfg, err := readRepoConfig(ctx, gh, ls.cfg, project, j.Repo, "", "")
		var refusal *config.Refusal
		if err != nil && !errors.As(err, &refusal) {
			return err
		}
		keep = repoCfg != nil && repoCfg.KeepOnClose
	}
	return ls.lc.PRClosed(ctx, j.Repo, j.Number, keep)
}

// HandleInstallation terminates the VMs of an installation that is gone, or
// of repositories removed from it.
func (ls *Launches) HandleInstallation(ctx context.Context, payload []byte) error {
	var j InstallationJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	return ls.lc.EndInstallation(ctx, j.InstallationID, j.Repos)
}
