package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/store"
)

// The web view's Extend and Terminate: decided as the check run's buttons
// are (authorize, config.Permit), done through the same lifecycle verbs,
// and told on the PR as a button's extension is. A refusal is a
// *config.Refusal, worded for the PR.

// ExtendAs extends a running launch by an hour for user; once makes a
// resubmitted form extend once.
func (ls *Launches) ExtendAs(ctx context.Context, l *store.Launch, user, once string) (string, error) {
	t, err := ls.thread(ctx, l)
	if err != nil {
		return "", err
	}
	if err := authorize(ctx, t.gh, ls.cfg, l.Repo, user, config.ActionExtend, l.Owner); err != nil {
		return "", err
	}
	if l.State != store.StateRunning {
		return "", refuse("`%s` is %s: only a running VM can be extended.", l.ID, l.State)
	}
	line, err := ls.extendOnce(ctx, "web:"+once, l, buttonExtendStep, user)
	if err != nil {
		return "", err
	}
	if err := t.Comment(ctx, fmt.Sprintf("%s %s (from the web view)", mdsafe.Mention(user), line)); err != nil {
		ls.log.With(l.LogAttrs()...).Warn("tell the PR of an extension from the web view", "err", err)
	}
	return line, nil
}

// TerminateAs terminates a launch for user.
func (ls *Launches) TerminateAs(ctx context.Context, l *store.Launch, user string) (string, error) {
	t, err := ls.thread(ctx, l)
	if err != nil {
		return "", err
	}
	if err := authorize(ctx, t.gh, ls.cfg, l.Repo, user, config.ActionStop, l.Owner); err != nil {
		return "", err
	}
	err = ls.lc.Stop(ctx, l, provision.StoppedBy(user))
	if errors.Is(err, provision.ErrStillLaunching) {
		return fmt.Sprintf("`%s` is still launching; it will be terminated as soon as it is up.", l.ID), nil
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("`%s` (%s) is terminated.", l.ID, mdsafe.Code(l.Machine)), nil
}
