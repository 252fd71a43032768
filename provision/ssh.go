package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision/sshd"
	"github.com/packit/packit-launch/store"
)

// A running VM is reported ready once its sshd answers, or once its
// profile's ssh_wait has passed. Meanwhile, and after the ready comment
// until the console shows them, scheduled looks (JobSSHPoll) probe port 22
// and read the VM's console for the host keys cloud-init prints: the ready
// comment pins the keys the console vouches for, and a key presented to
// the bot that the console does not list is a warning, never silent.

// JobSSHPoll is one look at a running VM's sshd and console.
const JobSSHPoll = "ssh-poll"

// SSHProber probes a VM's port 22 (sshd.Prober).
type SSHProber interface {
	Probe(ctx context.Context, host string) (sshd.Answer, error)
}

const (
	// sshPollEvery is how often a VM's sshd is probed until it answers.
	sshPollEvery = 5 * time.Second
	// consolePollEvery is how often the console is read once the ready
	// comment is out: EC2 updates it minutes apart.
	consolePollEvery = 30 * time.Second
	// consoleFor bounds the looks at a VM's console after it runs.
	consoleFor = 15 * time.Minute
	// sshPollStalled is when a launch's ssh looks count as lost (a job
	// dropped by a Redis failover): the sweep looks again.
	sshPollStalled = 5 * time.Minute
)

// waitingForSSHD reports whether the ready comment still waits for sshd.
func waitingForSSHD(l *store.Launch, now time.Time) bool {
	return l.State == store.StateRunning && !l.SSH.WaitUntil.IsZero() && l.SSH.AnsweredAt.IsZero() && now.Before(l.SSH.WaitUntil)
}

// sshLooks reports whether a launch still looks at its VM: for sshd, or
// for the host keys on the console.
func sshLooks(l *store.Launch, now time.Time) bool {
	if l.State != store.StateRunning || l.SSH.Started.IsZero() || !now.Before(l.SSH.ConsoleUntil) {
		return false
	}
	probes := !l.SSH.WaitUntil.IsZero()
	return len(l.SSH.ConsoleKeys) == 0 || (probes && l.SSH.PresentedKey == "")
}

func (lc *Lifecycle) sshPolls(now time.Time) pollKind {
	return pollKind{job: JobSSHPoll, maxRetry: 5,
		waits:  func(l *store.Launch) bool { return sshLooks(l, now) },
		liveAt: func(l *store.Launch) *time.Time { return &l.SSH.PollAt }}
}

// sshHost is the address the ready comment gives, where sshd is probed.
func sshHost(l *store.Launch) string {
	if l.PublicIPv4 != "" {
		return l.PublicIPv4
	}
	return l.PublicDNS
}

// checkSSH starts a running launch's look at its sshd and host keys, once,
// and reports whether the ready comment must still wait for sshd.
func (lc *Lifecycle) checkSSH(ctx context.Context, l *store.Launch) (waiting bool, err error) {
	if lc.prov.ssh == nil || l.State != store.StateRunning {
		return false, nil
	}
	now := lc.now()
	if l.SSH.Started.IsZero() {
		wait, probe := config.DefaultSSHWait, true
		if p, ok := lc.cfg.Profiles[l.Profile]; ok {
			wait, probe = p.SSHWait.D(), p.Probes()
		}
		at := now.UTC().Round(time.Second)
		saved, err := update(ctx, lc.records, l.ID, now, func(x *store.Launch) error {
			if x.State != store.StateRunning || !x.SSH.Started.IsZero() {
				return store.ErrNoChange
			}
			x.SSH.Started = now.UTC()
			if probe && sshHost(x) != "" {
				x.SSH.WaitUntil = now.Add(wait).UTC()
			}
			x.SSH.ConsoleUntil = now.Add(consoleFor).UTC()
			if x.SSH.WaitUntil.After(x.SSH.ConsoleUntil.Add(-5 * time.Minute)) {
				x.SSH.ConsoleUntil = x.SSH.WaitUntil.Add(5 * time.Minute)
			}
			x.SSH.PollAt = at
			return nil
		})
		if err != nil {
			return false, err
		}
		*l = *saved
		if waitingForSSHD(l, now) {
			lc.report.WaitingForSSH(ctx, l)
		}
	}
	if !l.SSH.PollAt.IsZero() && sshLooks(l, now) {
		// Queued again on a retry: the job id makes it once.
		if err := lc.enqueuePoll(ctx, l, lc.sshPolls(now), l.SSH.PollAt); err != nil {
			return false, err
		}
	}
	return waitingForSSHD(l, now), nil
}

// HandleSSHPoll runs one look at a running VM's sshd and console, if it is
// the launch's live look. Once the wait for sshd is over the launch is
// reported by one report job (JobReport); a report already out is
// edited when the looks learned more.
func (lc *Lifecycle) HandleSSHPoll(ctx context.Context, payload []byte) error {
	var j Poll
	if err := json.Unmarshal(payload, &j); err != nil {
		return store.SkipRetry(err)
	}
	l, err := lc.Get(ctx, j.LaunchID)
	if err != nil || l == nil {
		return err
	}
	now := lc.now()
	switch {
	case l.State == store.StateRunning && l.SSH.PollAt.Equal(j.At.UTC().Truncate(time.Millisecond)): // the live look
		if err := lc.lookAtSSH(ctx, l, now); err != nil {
			return err
		}
	case sshLooks(l, now) && !l.SSH.PollAt.IsZero():
		// A retry of a look whose next one may not be queued: the job id
		// makes it once.
		if err := lc.enqueuePoll(ctx, l, lc.sshPolls(now), l.SSH.PollAt); err != nil {
			return err
		}
	}
	return lc.show(ctx, l)
}

// show brings the PR up to date with a launch the ssh looks changed: its
// report once the wait for sshd is over (or it ended meanwhile), or an
// edit of the report with what the looks learned.
func (lc *Lifecycle) show(ctx context.Context, l *store.Launch) error {
	now := lc.now()
	// Exactly one job reports a launch, so that its PR never gets two
	// ready comments: its launch job, unless that job left the report to
	// the wait for sshd (WaitUntil set); then the report job, once the
	// wait is over or the launch ended.
	switch {
	case !l.Reported && l.SSH.WaitUntil.IsZero():
		return nil // its own launch job reports it
	case !l.Reported && waitingForSSHD(l, now):
		return nil // once sshd answers, or the wait is over
	case !l.Reported:
		return lc.enqueueReport(ctx, l)
	case l.SSH.Rev > l.SSHShown:
		return lc.report.Refresh(ctx, l)
	}
	return nil
}

// enqueueReport queues the one job that reports a launch whose wait for
// sshd is over (HandleReport), retried for hours.
func (lc *Lifecycle) enqueueReport(ctx context.Context, l *store.Launch) error {
	err := lc.queue.Enqueue(ctx, store.Job{Kind: JobReport, ID: "report:" + l.ID, Payload: []byte(l.ID), Queue: store.QueueLifecycle, MaxRetry: lc.MaxRetry})
	if err != nil && !errors.Is(err, store.ErrDuplicateJob) {
		return fmt.Errorf("queue the report: %w", err)
	}
	return nil
}

// lookAtSSH probes the VM's sshd and reads its console for what l does
// not know yet, saves what it learned and queues the next look while
// there is more to learn; l becomes the saved record.
func (lc *Lifecycle) lookAtSSH(ctx context.Context, l *store.Launch, now time.Time) error {
	log := lc.log.With(l.LogAttrs()...)
	var answer sshd.Answer
	var console sshd.Console
	readConsole := false
	if sshLooks(l, now) {
		if host := sshHost(l); !l.SSH.WaitUntil.IsZero() && l.SSH.PresentedKey == "" && host != "" {
			var err error
			if answer, err = lc.prov.ssh.Probe(ctx, host); err != nil {
				log.Debug("ssh: sshd not answering yet", "err", err)
			}
		}
		// EC2 updates the console minutes apart: read it at its own pace.
		if len(l.SSH.ConsoleKeys) == 0 && now.Sub(l.SSH.ConsoleReadAt) >= lc.ConsolePollEvery {
			text, err := lc.prov.ConsoleOutput(ctx, l.Region, l.InstanceID)
			if err != nil {
				log.Warn("ssh: read the VM's console for its host keys", "err", err)
			}
			console, readConsole = sshd.ParseConsole(text), true
		}
	}
	learned := false
	saved, err := update(ctx, lc.records, l.ID, now, func(x *store.Launch) error {
		learned = false
		if x.State != store.StateRunning {
			return store.ErrNoChange
		}
		if readConsole {
			x.SSH.ConsoleReadAt = now.UTC()
		}
		if answer.Answered() && x.SSH.AnsweredAt.IsZero() {
			x.SSH.AnsweredAt, learned = now.UTC(), true
		}
		if answer.HostKey != "" && x.SSH.PresentedKey == "" {
			x.SSH.PresentedKey, learned = answer.HostKey, true
		}
		if len(console.Keys) > 0 && len(x.SSH.ConsoleKeys) == 0 || len(console.Fingerprints) > len(x.SSH.ConsoleFingerprints) {
			x.SSH.ConsoleKeys, x.SSH.ConsoleFingerprints, learned = console.Keys, console.Fingerprints, true
		}
		changed, looked := learned, !x.SSH.PollAt.IsZero()
		x.SSH.PollAt = time.Time{}
		if sshLooks(x, now) {
			every := lc.ConsolePollEvery
			if waitingForSSHD(x, now) {
				every = lc.SSHPollEvery
			}
			x.SSH.PollAt = now.Add(every).UTC().Round(time.Second)
		} else if looked {
			changed = true // the looks are over: the comment stops promising more
		}
		if changed {
			x.SSH.Rev++
		}
		return nil
	})
	if err != nil {
		return err
	}
	*l = *saved
	if learned {
		lc.tellHostKeys(l, now)
	}
	if !l.SSH.PollAt.IsZero() && sshLooks(l, now) {
		return lc.enqueuePoll(ctx, l, lc.sshPolls(now), l.SSH.PollAt)
	}
	return nil
}

// resumeSSH takes up a launch's ssh looks that stopped (their job lost):
// looks again now, or, when they are over, ends them and shows the PR.
func (lc *Lifecycle) resumeSSH(ctx context.Context, l *store.Launch, now time.Time) error {
	if sshLooks(l, now) {
		return lc.schedulePoll(ctx, l, lc.sshPolls(now), now.UTC().Round(time.Second))
	}
	if err := lc.lookAtSSH(ctx, l, now); err != nil { // looks at nothing: ends them
		return err
	}
	return lc.show(ctx, l)
}

// tellHostKeys logs what the bot knows of a VM's host keys, and a mismatch
// as a warning (the PR's report shows it too).
func (lc *Lifecycle) tellHostKeys(l *store.Launch, now time.Time) {
	log := lc.log.With(l.LogAttrs()...)
	keys := KeysOf(l)
	switch {
	case keys.Mismatch:
		hostKeyMismatchTotal.Inc()
		log.Warn("ssh: the host key the VM presented to the bot is not among those its console printed; someone may be in between",
			"presented", keys.Presented, "console", l.SSH.ConsoleFingerprints, "host", sshHost(l))
	case !l.SSH.AnsweredAt.IsZero() && l.SSH.AnsweredAt.Equal(now.UTC()):
		sshAnswerSeconds.Observe(l.SSH.AnsweredAt.Sub(l.SSH.Started).Seconds())
		log.Info("ssh: sshd answers", "after", l.SSH.AnsweredAt.Sub(l.SSH.Started).Round(time.Second), "host_keys", keys.Fingerprints)
	default:
		log.Info("ssh: host keys learned", "host_keys", keys.Fingerprints, "presented", keys.Presented)
	}
}

// HostKeys is what the bot can say of a VM's host keys.
type HostKeys struct {
	// Pinned are the keys the console vouches for ("type base64"): those it
	// printed (one per type), or the presented key when the console printed
	// only its fingerprint. Empty until the console shows them.
	Pinned []string
	// Fingerprints are the console's (SHA256), or else the presented key's.
	Fingerprints []string
	// Presented is the fingerprint of the key the VM presented to the bot.
	Presented string
	// FromConsole: Fingerprints are the console's.
	FromConsole bool
	// Mismatch: the VM presented a key its console does not list.
	Mismatch bool
}

// KeysOf compares the two sources of a launch's host keys.
func KeysOf(l *store.Launch) HostKeys {
	k := HostKeys{Presented: sshd.Fingerprint(l.SSH.PresentedKey)}
	if len(l.SSH.ConsoleFingerprints) == 0 {
		if k.Presented != "" {
			k.Fingerprints = []string{k.Presented}
		}
		return k
	}
	k.FromConsole, k.Fingerprints = true, slices.Clone(l.SSH.ConsoleFingerprints)
	k.Mismatch = k.Presented != "" && !slices.Contains(l.SSH.ConsoleFingerprints, k.Presented)
	types := map[string]bool{}
	for _, key := range l.SSH.ConsoleKeys {
		typ, _, _ := strings.Cut(key, " ")
		if !types[typ] {
			types[typ] = true
			k.Pinned = append(k.Pinned, key)
		}
	}
	if len(k.Pinned) == 0 && k.Presented != "" && !k.Mismatch {
		k.Pinned = []string{l.SSH.PresentedKey}
	}
	return k
}

var dnsNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

// KnownHost is the address a known_hosts line names for a launch's VM:
// its public IPv4 or DNS name, "" when neither is one.
func KnownHost(l *store.Launch) string {
	host := sshHost(l)
	if ip := net.ParseIP(host); ip != nil {
		return ip.String()
	}
	if dnsNameRE.MatchString(host) {
		return host
	}
	return ""
}

// ConsoleOutput is a VM's console output (ec2.Cloud.ConsoleOutput).
func (p *Provisioner) ConsoleOutput(ctx context.Context, region, instanceID string) (string, error) {
	if p.cloud == nil {
		return "", errNoAWS
	}
	return p.cloud.ConsoleOutput(ctx, region, instanceID)
}
