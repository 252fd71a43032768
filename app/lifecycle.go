package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/commands"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
)

// Queue kinds of the lifecycle: timers and GitHub events that end VMs.
const (
	JobExpire         = "expire"
	JobWarn           = "warn"
	JobButton         = "button"
	JobPRClosed       = "pr-closed"
	JobUninstalled    = "uninstalled"
	JobReposRemoved   = "repos-removed"
	warnBefore        = 15 * time.Minute
	buttonExtendStep  = time.Hour
	actionExtend      = "extend"
	actionTerminate   = "terminate"
	lifecycleRetries  = 20
	reasonExpired     = "its lifetime ended"
	reasonPRClosed    = "the pull request was closed"
	reasonUninstalled = "the GitHub App was uninstalled from the repository"
	reasonUntrusted   = "the repository is no longer trusted by this instance"
)

// expireJob is self-sufficient: it can end the VM even if Redis lost the record.
type expireJob struct {
	LaunchID   string    `json:"launch_id"`
	Region     string    `json:"region"`
	InstanceID string    `json:"instance_id"`
	ExpiresAt  time.Time `json:"expires_at"`
}

type warnJob struct {
	LaunchID  string    `json:"launch_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

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

// schedule sets the timers of a running launch: the terminate job at its
// expiry and the warning before it. Job ids carry the expiry, so scheduling
// the same expiry twice is harmless and an extension adds new timers; the
// old ones find a later expiry on the instance and do nothing.
func (ls *Launches) schedule(ctx context.Context, l *store.Launch) error {
	at := l.ExpiresAt.Unix()
	if err := ls.scheduleExpiry(ctx, expireJob{LaunchID: l.ID, Region: l.Region, InstanceID: l.InstanceID, ExpiresAt: l.ExpiresAt}); err != nil {
		return err
	}
	if warnAt := l.ExpiresAt.Add(-warnBefore); warnAt.After(ls.now()) {
		w, _ := json.Marshal(warnJob{LaunchID: l.ID, ExpiresAt: l.ExpiresAt})
		err := ls.queue.EnqueueAt(ctx, store.Job{Kind: JobWarn, ID: fmt.Sprintf("warn:%s:%d", l.ID, at), Payload: w, Queue: store.QueueLifecycle, MaxRetry: 3}, warnAt)
		if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
			return fmt.Errorf("schedule warning: %w", err)
		}
	}
	return nil
}

// scheduleExpiry queues the terminate job for j.ExpiresAt (once per expiry).
func (ls *Launches) scheduleExpiry(ctx context.Context, j expireJob) error {
	payload, _ := json.Marshal(j)
	err := ls.queue.EnqueueAt(ctx, store.Job{Kind: JobExpire, ID: fmt.Sprintf("expire:%s:%d", j.LaunchID, j.ExpiresAt.Unix()), Payload: payload,
		Queue: store.QueueLifecycle, MaxRetry: lifecycleRetries}, j.ExpiresAt)
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		return fmt.Errorf("schedule termination: %w", err)
	}
	return nil
}

// HandleExpire terminates a VM at its expiry, after checking the expiry the
// instance itself carries: an extension may have moved it.
func (ls *Launches) HandleExpire(ctx context.Context, payload []byte) error {
	var j expireJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	due, carried, gone, err := ls.prov.Due(ctx, j.Region, j.InstanceID, ls.now())
	if err != nil {
		return err
	}
	if !gone && !due {
		if !carried.After(j.ExpiresAt) {
			// Fired early (a replica's clock is off): this very job is the
			// timer for that expiry, so it must run again, not re-queue itself.
			return fmt.Errorf("expiry timer for %s fired %s early", j.LaunchID, carried.Sub(ls.now()).Round(time.Second))
		}
		// Extended: the timer for the later expiry takes over.
		j.ExpiresAt = carried
		return ls.scheduleExpiry(ctx, j)
	}
	if due {
		// The VM first, whatever the record says (it may be lost, stale or unaware of this instance).
		if err := ls.prov.TerminateInstance(ctx, j.Region, j.InstanceID); err != nil {
			return err
		}
	}
	l, err := ls.records.GetLaunch(ctx, j.LaunchID)
	if errors.Is(err, store.ErrNotFound) {
		ls.log.Warn("ended a VM without a launch record; telling its PR from its tags", "launch", j.LaunchID, "instance", j.InstanceID)
		if tags, err := ls.prov.InstanceTags(ctx, j.Region, j.InstanceID); err != nil {
			ls.log.Warn("read the ended VM's tags", "launch", j.LaunchID, "err", err)
		} else if vm, ok := EndedVMFromTags(j.InstanceID, tags, ls.now(), reasonExpired); ok {
			ls.tellEnded(ctx, vm)
		}
		return nil
	}
	if err != nil {
		return err // retried: the VM is gone by then, and the record gets ended
	}
	if l.State.Ended() {
		return nil
	}
	reason := reasonExpired
	if gone && !due {
		reason = "its instance was already gone"
	}
	if l.InstanceID == "" {
		l.InstanceID = j.InstanceID
	}
	return ls.ended(ctx, l, reason)
}

// findLaunch reads a launch record; one that is gone (retention passed, or
// never the bot's) is nil, which the lifecycle's jobs take as nothing to do.
func (ls *Launches) findLaunch(ctx context.Context, id string) (*store.Launch, error) {
	l, err := ls.records.GetLaunch(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return l, err
}

// HandleWarn tells the owner a VM ends soon, unless it was extended or ended.
func (ls *Launches) HandleWarn(ctx context.Context, payload []byte) error {
	var j warnJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	l, err := ls.findLaunch(ctx, j.LaunchID)
	if err != nil || l == nil || l.State != store.StateRunning || !l.ExpiresAt.Equal(j.ExpiresAt) {
		return err
	}
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

// terminate ends a launch's VM and shows it on the PR. A launch still in
// flight is asked to end as soon as its VM is up (ErrStillLaunching).
func (ls *Launches) terminate(ctx context.Context, l *store.Launch, reason string) error {
	if l.State == store.StateWaiting {
		return ls.cancelWaiting(ctx, nil, l, reason, false) // no VM yet: the wait ends
	}
	err := ls.prov.Terminate(ctx, l, reason)
	if errors.Is(err, provision.ErrStillLaunching) {
		if rerr := ls.records.RequestStop(ctx, l.ID, reason); rerr != nil {
			return rerr
		}
		// It may have come up between our read and the request.
		fresh, ferr := ls.records.GetLaunch(ctx, l.ID)
		if ferr != nil || fresh.InstanceID == "" || fresh.State.Ended() {
			return err
		}
		*l = *fresh
		if err := ls.prov.Terminate(ctx, l, reason); err != nil {
			return err
		}
		return ls.refresh(ctx, l)
	}
	if err != nil {
		return err
	}
	return ls.refresh(ctx, l)
}

// ended records a launch whose VM is already gone and shows it on the PR.
func (ls *Launches) ended(ctx context.Context, l *store.Launch, reason string) error {
	if err := ls.prov.MarkEnded(ctx, l, reason); err != nil {
		return err
	}
	return ls.refresh(ctx, l)
}

// refresh brings the sticky comment and the check run up to date with the record.
func (ls *Launches) refresh(ctx context.Context, l *store.Launch) error {
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
	body := readyComment(l, now)
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
	if id != l.CommentID { // the sticky comment was deleted and posted anew
		saved, err := ls.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error { x.CommentID = id; return nil })
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
	launches, err := ls.records.LaunchesByPR(ctx, job.Repo, job.Number)
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
		line, err := ls.extendOnce(ctx, job.Delivery, l, d)
		if err != nil {
			return err
		}
		lines = append(lines, line)
	}
	return t.Comment(ctx, fmt.Sprintf("%s %s", mdsafe.Mention(job.User), strings.Join(lines, "\n")))
}

// extendOnce extends one launch once per delivery: a retried or held job
// (its answer failed, or one of several VMs did) does not extend it again,
// and its answer says what the first attempt did.
func (ls *Launches) extendOnce(ctx context.Context, delivery string, l *store.Launch, d time.Duration) (string, error) {
	key := "extend:" + delivery + ":" + l.ID
	first, err := ls.records.FirstNotice(ctx, key, 24*time.Hour)
	if err != nil {
		return "", err
	}
	if !first {
		return extendedLine(l, ls.now()), nil
	}
	line, err := ls.extend(ctx, l, d)
	var refusal *config.Refusal
	if err != nil && !errors.As(err, &refusal) {
		// Not applied: let the retry extend it.
		if ferr := ls.records.ForgetNotice(context.WithoutCancel(ctx), key); ferr != nil {
			ls.log.Warn("forget extension", "launch", l.ID, "err", ferr)
		}
	}
	return line, err
}

// extend moves one launch's expiry and says what happened, in one line.
func (ls *Launches) extend(ctx context.Context, l *store.Launch, d time.Duration) (string, error) {
	if d == 0 {
		d = l.ExtendStep
	}
	if err := ls.checkBudget(ctx, l, d); err != nil {
		return "", err
	}
	before := l.ExpiresAt
	err := ls.prov.Extend(ctx, l, d)
	if errors.Is(err, provision.ErrAtHardExpiry) {
		return fmt.Sprintf("`%s` is already at its latest possible end, %s; it cannot be extended.", l.ID, whenUTC(l.HardExpiresAt, ls.now())), nil
	}
	if err != nil {
		return "", err
	}
	if err := ls.schedule(ctx, l); err != nil {
		return "", err
	}
	if _, err := ls.records.AddInstanceHours(ctx, l.Project, ls.now(), l.ExpiresAt.Sub(before).Hours()); err != nil {
		ls.log.Warn("count instance-hours", "launch", l.ID, "err", err)
	}
	if err := ls.refresh(ctx, l); err != nil {
		ls.log.Warn("refresh after extend", "launch", l.ID, "err", err)
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
	var picked []*store.Launch
	for _, l := range launches {
		mine := strings.EqualFold(l.Owner, job.User)
		// A retried or held job answers for what its first attempt stopped.
		stoppedByThis := l.State == store.StateEnded && l.EndReason == stoppedBy(job.User) && !job.ReceivedAt.IsZero() && !l.EndedAt.Before(job.ReceivedAt)
		if (!l.State.Ended() || stoppedByThis) && (target == "" && mine || target == commands.StopAll || strings.EqualFold(target, l.ID)) {
			picked = append(picked, l)
		}
	}
	if len(picked) == 0 {
		if target != "" && target != commands.StopAll {
			return refuse("There is no running VM %s on this pull request. `/launch status` lists its VMs.", mdsafe.Code(target))
		}
		return refuse("There is no running VM of yours on this pull request. `/launch status` lists its VMs.")
	}
	perm, err := permissionOf(ctx, t.gh, job.Repo, job.User)
	if err != nil {
		return err
	}
	var allowed []*store.Launch
	for _, l := range picked {
		if r := config.Permit(nil, config.ActionStop, job.User, perm, l.Owner); r != nil {
			if target != commands.StopAll {
				return r
			}
			continue // "all" from someone who is not an admin: all of their own
		}
		allowed = append(allowed, l)
	}
	if len(allowed) == 0 {
		return refuse("There is no running VM of yours on this pull request. `/launch status` lists its VMs.")
	}
	var lines []string
	for _, l := range allowed {
		err := ls.terminate(ctx, l, stoppedBy(job.User))
		if errors.Is(err, provision.ErrStillLaunching) {
			lines = append(lines, fmt.Sprintf("`%s` is still launching; it will be terminated as soon as it is up.", l.ID))
			continue
		}
		if err != nil {
			return err
		}
		if l.InstanceID == "" {
			lines = append(lines, fmt.Sprintf("`%s` (%s) is cancelled; it was still waiting for Packit's build.", l.ID, mdsafe.Code(l.Machine)))
			continue
		}
		lines = append(lines, fmt.Sprintf("`%s` (%s) is terminated.", l.ID, mdsafe.Code(l.Machine)))
	}
	return t.Comment(ctx, fmt.Sprintf("%s %s", mdsafe.Mention(job.User), strings.Join(lines, "\n")))
}

// stoppedBy is the end reason of a VM someone stopped: shown on the PR to
// its owner, so it names the person without mentioning them.
func stoppedBy(user string) string { return mdsafe.Login(user) + " stopped it" }

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
	live, err := ls.prov.ListManaged(ctx, ls.cfg.Regions())
	if err != nil {
		return err
	}
	for _, in := range live {
		if in.Tags[ec2.TagLaunch] == j.LaunchID && in.Tags[ec2.TagRepo] == j.Repo {
			return ls.answerUnrecordedButton(ctx, gh, j, in)
		}
	}
	vm := EndedVM{LaunchID: j.LaunchID, Repo: j.Repo, PR: j.PR, CheckRunID: j.CheckRunID, EndedAt: ls.now().UTC()}
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
func (ls *Launches) answerUnrecordedButton(ctx context.Context, gh *github.Client, j ButtonJob, in ec2.Instance) error {
	t := newThread(gh, j.Repo, j.PR, 0, j.Sender, "", ls.log)
	if j.Action != actionTerminate {
		if j.PR == 0 {
			return nil
		}
		return t.Comment(ctx, fmt.Sprintf("%s I lost my record of VM %s, so I cannot extend it; it ends as planned (%s). Its **Terminate** button still works.",
			mdsafe.Mention(j.Sender), mdsafe.Code(j.LaunchID), mdsafe.Code(in.Tags[ec2.TagExpiresAt])))
	}
	owner := in.Tags[ec2.TagOwner]
	err := authorize(ctx, gh, ls.cfg, j.Repo, j.Sender, config.ActionStop, owner)
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
	if err := ls.prov.TerminateInstance(ctx, in.Region, in.ID); err != nil {
		return err
	}
	ls.log.Info("terminated a VM without a record by its button", "launch", j.LaunchID, "instance", in.ID, "sender", j.Sender)
	if vm, ok := EndedVMFromTags(in.ID, in.Tags, ls.now(), stoppedBy(j.Sender)); ok {
		ls.tellEnded(ctx, vm)
	}
	return nil
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
	l, err := ls.records.GetLaunch(ctx, j.LaunchID)
	if errors.Is(err, store.ErrNotFound) {
		return ls.answerEndedButton(ctx, j)
	}
	if err != nil {
		return err
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
		ls.log.Info("button refused", "launch", l.ID, "sender", j.Sender, "reason", refusal.Reason)
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
		line, err := ls.extendOnce(ctx, j.Delivery, l, buttonExtendStep)
		var refusal *config.Refusal
		if errors.As(err, &refusal) {
			line, err = refusal.Reason, nil
		}
		if err != nil {
			return err
		}
		return t.Comment(ctx, fmt.Sprintf("%s %s", mdsafe.Mention(j.Sender), line))
	case actionTerminate:
		err := ls.terminate(ctx, l, stoppedBy(j.Sender))
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
	launches, err := ls.records.LaunchesByPR(ctx, j.Repo, j.Number)
	if err != nil {
		return err
	}
	active := liveOnly(launches)
	if len(active) == 0 {
		return nil
	}
	if project, ok := ls.cfg.ProjectFor(j.Repo); ok {
		gh, err := ls.clients.Client(ctx, j.InstallationID)
		if err != nil {
			return err
		}
		// From the default branch (""): a writer's own base branch must not
		// decide that its VMs outlive their PR.
		repoCfg, err := readRepoConfig(ctx, gh, ls.cfg, project, j.Repo, "")
		var refusal *config.Refusal
		if err != nil && !errors.As(err, &refusal) {
			return err
		}
		if repoCfg != nil && repoCfg.KeepOnClose {
			ls.log.Info("PR closed; VMs kept until expiry (keep_on_close)", "repo", j.Repo, "pr", j.Number)
			return nil
		}
	}
	return ls.terminateAll(ctx, active, reasonPRClosed)
}

// HandleInstallation terminates the VMs of an installation that is gone, or
// of repositories removed from it.
func (ls *Launches) HandleInstallation(ctx context.Context, payload []byte) error {
	var j InstallationJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	all, err := ls.records.ActiveLaunches(ctx)
	if err != nil {
		return err
	}
	var mine []*store.Launch
	for _, l := range all {
		if l.InstallationID == j.InstallationID && (len(j.Repos) == 0 || containsFold(j.Repos, l.Repo)) {
			mine = append(mine, l)
		}
	}
	var errs []error
	for _, l := range liveOnly(mine) {
		// The app can no longer write to the PR: end the VM and the record only.
		if l.State == store.StateWaiting {
			// No VM yet, and the PR can no longer be told: end the record only, if it still waits.
			_, err := ls.records.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
				if x.State != store.StateWaiting {
					return store.ErrNoChange
				}
				x.State, x.EndedAt, x.EndReason = store.StateEnded, ls.now().UTC(), reasonUninstalled
				return nil
			})
			errs = append(errs, err)
			continue
		}
		err := ls.prov.Terminate(ctx, l, reasonUninstalled)
		if errors.Is(err, provision.ErrStillLaunching) {
			err = ls.records.RequestStop(ctx, l.ID, reasonUninstalled)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (ls *Launches) terminateAll(ctx context.Context, launches []*store.Launch, reason string) error {
	var errs []error
	for _, l := range launches {
		if err := ls.terminate(ctx, l, reason); err != nil && !errors.Is(err, provision.ErrStillLaunching) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func liveOnly(ls []*store.Launch) []*store.Launch {
	var out []*store.Launch
	for _, l := range ls {
		if !l.State.Ended() {
			out = append(out, l)
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// checkBudget refuses an extension that would pass its project's daily
// instance-hours.
func (ls *Launches) checkBudget(ctx context.Context, l *store.Launch, d time.Duration) error {
	project, ok := ls.cfg.ProjectFor(l.Repo)
	if !ok || project.Limits.DailyInstanceHours <= 0 {
		return nil
	}
	used, err := ls.records.InstanceHours(ctx, project.Name(), ls.now())
	if err != nil {
		return err
	}
	if used+d.Hours() > project.Limits.DailyInstanceHours {
		return refuse("Extending `%s` by %s would pass this project's %.0f instance-hours for today (UTC; %.1f used).",
			l.ID, commands.FormatDuration(d), project.Limits.DailyInstanceHours, used)
	}
	return nil
}
