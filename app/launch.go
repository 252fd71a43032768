package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/store"
)

// JobLaunch is the queue kind of an accepted launch; its payload is the launch id.
const JobLaunch = "launch"

// launchRetries bounds attempts at a launch whose errors may pass; the
// last attempt reports the failure on the PR.
const launchRetries = 8

// launchRecords keeps launch records.
type launchRecords interface {
	CreateLaunch(ctx context.Context, l *store.Launch) (*store.Launch, bool, error)
	GetLaunch(ctx context.Context, id string) (*store.Launch, error)
	SaveLaunch(ctx context.Context, l *store.Launch) error
}

// provisioner launches a recorded launch's VM.
type provisioner interface {
	Launch(ctx context.Context, l *store.Launch, onSlow func()) error
	GiveUp(ctx context.Context, l *store.Launch, cause error) *provision.Failure
}

// Launches accepts allowed /launch commands and carries them to a running
// VM and an answer on the PR: 👀 and an in-progress check run at once, then
// the comment with how to connect, 🚀, and the completed check run.
type Launches struct {
	// MaxRetry bounds attempts at a launch job; the last one reports.
	MaxRetry int
	records  launchRecords
	queue    enqueuer
	prov     provisioner
	clients  clientSource
	now      func() time.Time
	log      *slog.Logger
}

// NewLaunches wires the launch stage.
func NewLaunches(recs launchRecords, q enqueuer, prov provisioner, clients clientSource, log *slog.Logger) *Launches {
	return &Launches{MaxRetry: launchRetries, records: recs, queue: q, prov: prov, clients: clients, now: time.Now, log: log}
}

// Register adds the launch job to a queue worker.
func (ls *Launches) Register(qw *store.Worker) {
	qw.Handle(JobLaunch, ls.HandleLaunch)
}

// Launch accepts an allowed launch: picks the person's key, records the
// launch (once per delivery), opens the check run and queues the launch job.
func (ls *Launches) Launch(ctx context.Context, req LaunchRequest) error {
	t := req.Thread
	key, err := ls.pickKey(ctx, t.gh, req.Job.User, req.Spec.Key)
	var noKey *noUsableKeyError
	if errors.As(err, &noKey) {
		return &config.Refusal{Reason: noKey.reason}
	}
	if err != nil {
		return err
	}
	now := ls.now().UTC()
	l, created, err := ls.records.CreateLaunch(ctx, &store.Launch{
		Delivery: req.Job.Delivery, InstallationID: req.Job.InstallationID,
		Owner: req.Job.User, Repo: req.Job.Repo, PR: req.Job.Number, HeadSHA: req.HeadSHA,
		CommandCommentID: req.Job.CommentID, Command: req.Job.Line,
		Machine: req.Spec.Machine, Image: req.Spec.Image, Region: req.Spec.Region, InstanceType: req.Spec.InstanceType,
		SSHUser: req.Spec.SSHUser, Profile: req.Spec.Profile, LaunchTemplateID: req.Spec.LaunchTemplateID,
		Lifetime: req.Spec.Lifetime, ExtendStep: req.Spec.ExtendStep,
		KeyFingerprint: key.Fingerprint, KeyType: key.Type, KeyBody: key.Body,
		CreatedAt: now, ExpiresAt: now.Add(req.Spec.Lifetime), HardExpiresAt: now.Add(req.Spec.MaxLifetime),
		State: store.StateAccepted,
	})
	if err != nil {
		return fmt.Errorf("record launch: %w", err)
	}
	log := t.log.With("launch", l.ID)
	if created {
		log.Info("launch recorded", "machine", l.Machine, "key", l.KeyFingerprint, "expires", l.ExpiresAt)
	}
	if l.CheckRunID == 0 && !l.State.Ended() {
		cr, _, err := t.gh.Checks.CreateCheckRun(ctx, t.owner, t.name, github.CreateCheckRunOptions{
			Name:       checkRunName(l),
			HeadSHA:    l.HeadSHA,
			ExternalID: github.String(l.ID),
			Status:     github.String("in_progress"),
			StartedAt:  &github.Timestamp{Time: now},
			Output:     &github.CheckRunOutput{Title: github.String(launchingTitle(l)), Summary: github.String(launchingSummary(l))},
		})
		if err != nil {
			return fmt.Errorf("create check run: %w", err)
		}
		l.CheckRunID = cr.GetID()
		if err := ls.records.SaveLaunch(ctx, l); err != nil {
			return err
		}
	}
	err = ls.queue.Enqueue(ctx, store.Job{Kind: JobLaunch, ID: "launch:" + l.ID, Payload: []byte(l.ID), MaxRetry: ls.MaxRetry})
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		return err
	}
	return nil
}

// pickKey reads the person's keys from GitHub (all pages) and selects one.
func (ls *Launches) pickKey(ctx context.Context, gh *github.Client, user, fingerprint string) (SSHKey, error) {
	var keys []string
	opts := &github.ListOptions{PerPage: 100}
	for {
		page, resp, err := gh.Users.ListKeys(ctx, user, opts)
		if err != nil {
			return SSHKey{}, fmt.Errorf("list %s's keys: %w", user, err)
		}
		for _, k := range page {
			keys = append(keys, k.GetKey())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return selectKey(user, keys, fingerprint)
}

// HandleLaunch runs a launch job: provision, then report. It is safe to run
// again at any point: the record says what is done.
func (ls *Launches) HandleLaunch(ctx context.Context, payload []byte) error {
	l, err := ls.records.GetLaunch(ctx, string(payload))
	if errors.Is(err, store.ErrNotFound) {
		return store.SkipRetry(err)
	}
	if err != nil {
		return err
	}
	log := ls.log.With("launch", l.ID, "repo", l.Repo, "pr", l.PR)
	gh, err := ls.clients.Client(ctx, l.InstallationID)
	if err != nil {
		return err
	}
	t := newThread(gh, l.Repo, l.PR, l.CommandCommentID, l.Owner, l.Command, log)
	if !l.State.Ended() && l.State != store.StateRunning {
		err := ls.prov.Launch(ctx, l, func() { ls.tellSlow(ctx, t, l) })
		var failure *provision.Failure
		if err != nil && !errors.As(err, &failure) {
			if !store.FinalAttempt(ctx) || ctx.Err() != nil {
				log.Warn("launch attempt failed; will retry", "err", err)
				return err
			}
			ls.prov.GiveUp(ctx, l, err)
		}
	}
	if l.Reported {
		return nil
	}
	if err := ls.report(ctx, t, l); err != nil {
		return err
	}
	l.Reported = true
	return ls.records.SaveLaunch(ctx, l)
}

// tellSlow tells the PR once that the launch is slower than usual.
func (ls *Launches) tellSlow(ctx context.Context, t *Thread, l *store.Launch) {
	if l.Slow {
		return
	}
	l.Slow = true
	if err := ls.records.SaveLaunch(ctx, l); err != nil {
		t.log.Warn("save slow mark", "err", err)
	}
	if err := t.Comment(ctx, slowComment(l)); err != nil {
		t.log.Warn("tell the PR the launch is slow", "err", err)
	}
}

// report puts the outcome on the PR: the comment (kept in place on retries),
// the reaction and the completed check run.
func (ls *Launches) report(ctx context.Context, t *Thread, l *store.Launch) error {
	now := ls.now()
	body, reaction, conclusion, title := failedComment(l), "confused", "failure", failedTitle(l)
	if l.State == store.StateRunning {
		body, reaction, conclusion, title = readyComment(l, now), "rocket", "success", readyTitle(l)
	}
	id, err := t.Post(ctx, l.CommentID, body)
	if err != nil {
		return err
	}
	if l.CommentID == 0 {
		l.CommentID = id
		if err := ls.records.SaveLaunch(ctx, l); err != nil {
			return err
		}
	}
	if err := t.React(ctx, reaction); err != nil {
		return err
	}
	if l.CheckRunID == 0 {
		return nil
	}
	_, _, err = t.gh.Checks.UpdateCheckRun(ctx, t.owner, t.name, l.CheckRunID, github.UpdateCheckRunOptions{
		Name:        checkRunName(l), // go-github sends "" when unset
		ExternalID:  github.String(l.ID),
		Status:      github.String("completed"),
		Conclusion:  github.String(conclusion),
		CompletedAt: &github.Timestamp{Time: now},
		Output:      &github.CheckRunOutput{Title: github.String(title), Summary: github.String(checkSummary(l, now))},
	})
	if err != nil {
		return fmt.Errorf("complete check run: %w", err)
	}
	return nil
}
