package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/store"
)

// The words a launch puts on the PR. Pure: record and time in, markdown out.
// Every value that came from a person or another service goes through mdsafe.

// maxFailureBytes bounds the Launch service's or AWS's error text shown on the PR.
const maxFailureBytes = 4000

func checkRunName(l *store.Launch) string { return fmt.Sprintf("packit-launch (%s)", l.Machine) }

func launchingTitle(l *store.Launch) string { return fmt.Sprintf("Launching %s", l.Machine) }

func launchingSummary(l *store.Launch) string {
	return fmt.Sprintf("Launching machine %s for %s: %s.\n\nLaunch id `%s`.", mdsafe.Code(l.Machine), mdsafe.Login(l.Owner), what(l), l.ID)
}

func readyTitle(l *store.Launch) string {
	return fmt.Sprintf("%s is running until %s", l.Machine, l.ExpiresAt.UTC().Format("15:04 UTC"))
}

func failedTitle(l *store.Launch) string { return fmt.Sprintf("Launching %s failed", l.Machine) }

// what describes the machine: image, type and region.
func what(l *store.Launch) string {
	image := mdsafe.Code(l.Image)
	if l.Image == "" && l.PackitTarget != "" {
		image = "from Packit's build " + mdsafe.Code("vm-image-build:"+l.PackitTarget)
	}
	return fmt.Sprintf("image %s, %s in %s", image, mdsafe.Code(l.InstanceType), mdsafe.Code(l.Region))
}

// connect is the ssh command, or an honest note when no address is known.
func connect(l *store.Launch, now time.Time) string {
	addr := firstNonEmpty(l.PublicIPv4, l.PublicDNS)
	if addr == "" {
		return fmt.Sprintf("The Launch service reported no public address for instance %s (region %s). "+
			"It may have none; the operators can look it up in the AWS console.", mdsafe.Code(l.InstanceID), mdsafe.Code(l.Region))
	}
	keys, host := provision.KeysOf(l), provision.KnownHost(l)
	if len(keys.Pinned) == 0 || host == "" {
		// The address comes from the Launch service or AWS: shown, never rendered.
		return mdsafe.Block("ssh "+l.SSHUser+"@"+addr, 400) + hostKeyNote(l, keys, now)
	}
	// Pinned: ssh refuses any other key, so the first connection cannot be
	// someone else's. Keys were parsed and written anew: no shell text.
	file := "~/.ssh/packit-launch-" + l.ID
	var b strings.Builder
	fmt.Fprintf(&b, "mkdir -p ~/.ssh && cat > %s <<'EOF'\n", file)
	for _, k := range keys.Pinned {
		fmt.Fprintf(&b, "%s %s\n", host, k)
	}
	fmt.Fprintf(&b, "EOF\nssh -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes %s@%s", file, l.SSHUser, host)
	return mdsafe.Block(b.String(), 8000) + hostKeyNote(l, keys, now)
}

// hostKeyNote says where the host keys come from, or why they are not
// pinned yet, and warns of a key the console does not vouch for.
func hostKeyNote(l *store.Launch, keys provision.HostKeys, now time.Time) string {
	var b strings.Builder
	fps := make([]string, len(keys.Fingerprints))
	for i, fp := range keys.Fingerprints {
		fps[i] = "`" + fp + "`"
	}
	switch {
	case l.SSH.Started.IsZero():
		return ""
	case keys.Mismatch:
		fmt.Fprintf(&b, "\n\n> [!WARNING]\n> **Host key mismatch.** The VM presented the bot the key `%s`, which its console does not list (%s). "+
			"Someone may be between the bot and the VM. The command above trusts only the console's keys, so ssh refuses any other; tell this instance's operators.",
			keys.Presented, strings.Join(fps, ", "))
	case len(keys.Pinned) > 0:
		fmt.Fprintf(&b, "\n\nThe command pins the VM's host key (%s), which the bot read from the VM's console through the EC2 API", strings.Join(fps, ", "))
		if keys.Presented != "" {
			b.WriteString("; the VM presented the same key to the bot")
		}
		b.WriteString(". ssh refuses any other key, so nobody can stand in for the VM on your first connection.")
	case keys.FromConsole:
		fmt.Fprintf(&b, "\n\nThe VM's console, read by the bot through the EC2 API, shows its host key fingerprints (%s) but not the keys: "+
			"on your first connection, check that ssh shows one of them.", strings.Join(fps, ", "))
	case !now.Before(l.SSH.ConsoleUntil):
		if keys.Presented != "" {
			fmt.Fprintf(&b, "\n\nThe VM presented the bot the host key `%s`; ", keys.Presented)
		} else {
			b.WriteString("\n\n")
		}
		b.WriteString("its console did not show its host keys (the image may not print them), so ssh will ask you to trust the key on your first connection.")
	case keys.Presented != "":
		fmt.Fprintf(&b, "\n\nThe VM presented the bot the host key `%s`. The bot has not read it from the VM's console yet (EC2 updates it minutes after the boot); "+
			"it will edit this comment with a command that pins the key if the console shows it by %s. Until then, check that ssh shows this fingerprint.",
			keys.Presented, l.SSH.ConsoleUntil.UTC().Format("15:04 UTC"))
	default:
		fmt.Fprintf(&b, "\n\nThe bot has not read the VM's host keys from its console yet (EC2 updates it minutes after the boot); it will edit this comment with a command that pins them if the console shows them by %s.",
			l.SSH.ConsoleUntil.UTC().Format("15:04 UTC"))
	}
	if !l.SSH.WaitUntil.IsZero() && l.SSH.AnsweredAt.IsZero() {
		fmt.Fprintf(&b, "\n\n> [!NOTE]\n> ssh did not answer the bot on port 22 within %s of the VM running. Usual causes: an image without `sshd`, or one still booting; "+
			"a security group that admits only some addresses (the bot's probe may be refused where yours is not: a profile can turn it off with `ssh_probe: false`); "+
			"a subnet without a route to the internet.", l.SSH.WaitUntil.Sub(l.SSH.Started).Round(time.Second))
		if now.Before(l.SSH.ConsoleUntil) {
			fmt.Fprintf(&b, " The bot keeps trying until %s and updates this comment if sshd answers.", l.SSH.ConsoleUntil.UTC().Format("15:04 UTC"))
		}
	}
	return b.String()
}

// whenUTC renders a time as "2026-11-24 14:00 UTC (in 2 h)".
func whenUTC(t, now time.Time) string {
	return fmt.Sprintf("%s (%s)", t.UTC().Format("2006-01-02 15:04 UTC"), relative(t, now))
}

func relative(t, now time.Time) string {
	d := t.Sub(now)
	if d <= 0 {
		return "now"
	}
	switch {
	case d < time.Hour:
		return fmt.Sprintf("in %d min", int(d.Round(time.Minute).Minutes()))
	case d < 48*time.Hour:
		h := d.Round(time.Minute)
		if m := int(h.Minutes()) % 60; m != 0 {
			return fmt.Sprintf("in %d h %d min", int(h.Hours()), m)
		}
		return fmt.Sprintf("in %d h", int(h.Hours()))
	}
	return fmt.Sprintf("in %d days", int(d.Hours()/24))
}

func details(l *store.Launch, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", connect(l, now))
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| machine | %s: %s |\n", mdsafe.Cell(l.Machine), what(l))
	if l.PackitTarget != "" {
		fmt.Fprintf(&b, "| image | %s |\n", packitBuildText(l))
	}
	fmt.Fprintf(&b, "| key | your GitHub key `%s` (%s) |\n", l.KeyFingerprint, strings.TrimPrefix(l.KeyType, "ssh-"))
	fmt.Fprintf(&b, "| terminates | %s |\n", whenUTC(l.ExpiresAt, now))
	fmt.Fprintf(&b, "| latest possible end | %s |\n", l.HardExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "| instance | %s |\n", mdsafe.Cell(l.InstanceID))
	fmt.Fprintf(&b, "| launch id | `%s` |\n", l.ID)
	fmt.Fprintf(&b, "\nExtend it with `/launch extend [D]` (up to the latest possible end), end it early with `/launch stop %s`.", l.ID)
	return b.String()
}

func readyComment(l *store.Launch, now time.Time, page string) string {
	ready := "your VM is ready 🚀"
	if !l.SSH.WaitUntil.IsZero() && l.SSH.AnsweredAt.IsZero() {
		ready = "your VM is running 🚀, but its ssh did not answer yet (see below)"
	}
	body := fmt.Sprintf("%s %s\n\n%s", mdsafe.Mention(l.Owner), ready, details(l, now))
	if page != "" { // ours: PUBLIC_URL and the id
		body += fmt.Sprintf("\n\nIts page, with its story: %s", page)
	}
	return withMarker(l.ID, body)
}

func sshWaitTitle(l *store.Launch) string { return fmt.Sprintf("Waiting for ssh on %s", l.Machine) }

func sshWaitSummary(l *store.Launch) string {
	return fmt.Sprintf("Machine %s (%s) runs as instance %s. The bot waits for its sshd to answer on port 22, until %s, and then posts how to connect.\n\nLaunch id `%s`.",
		mdsafe.Code(l.Machine), what(l), mdsafe.Code(l.InstanceID), l.SSH.WaitUntil.UTC().Format("15:04:05 UTC"), l.ID)
}

func checkSummary(l *store.Launch, now time.Time) string {
	switch l.State {
	case store.StateRunning:
		return details(l, now)
	case store.StateEnded:
		return endedText(l)
	}
	return failureText(l)
}

func failureText(l *store.Launch) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Launching machine %s (%s) failed", mdsafe.Code(l.Machine), what(l))
	if l.FailedStep != "" {
		fmt.Fprintf(&b, " at the Launch service's step %s", mdsafe.Code(l.FailedStep))
	}
	// The failure may quote the Launch service or AWS: shown, never rendered.
	fmt.Fprintf(&b, ":\n\n%s\n", mdsafe.Block(l.Failure, maxFailureBytes))
	if l.FailureAdvice != "" {
		fmt.Fprintf(&b, "\n%s\n", l.FailureAdvice)
	}
	fmt.Fprintf(&b, "\nLaunch id `%s`.", l.ID)
	return b.String()
}

func failedComment(l *store.Launch) string {
	return withMarker(l.ID, fmt.Sprintf("%s %s", mdsafe.Mention(l.Owner), failureText(l)))
}

// endReason says in a few words why a launch ended, for /launch status.
func endReason(l *store.Launch) string {
	switch {
	case l.EndReason != "":
		return l.EndReason
	case l.State == store.StateFailed:
		return "the launch failed (its comment says why)"
	}
	return "ended"
}

func slowTitle(l *store.Launch) string { return fmt.Sprintf("Still launching %s", l.Machine) }

// slowText says why a launch is slow and until when it is tried; cause is
// empty while the Launch service is still working on the reservation.
func slowText(l *store.Launch, cause string, until time.Time) string {
	if cause == "" {
		return fmt.Sprintf("Launch `%s` of %s is taking longer than usual; the Launch service is still working on it.", l.ID, mdsafe.Code(l.Machine))
	}
	return fmt.Sprintf("Launch `%s` of %s has not got through yet: %s. I keep trying until about %s, and the operators can see the details in the bot's log.",
		l.ID, mdsafe.Code(l.Machine), mdsafe.Text(cause), until.UTC().Format("2006-01-02 15:04 UTC"))
}

func slowComment(l *store.Launch, cause string, until time.Time) string {
	return withMarker(l.ID, fmt.Sprintf("%s %s I will update this comment when the VM is ready or if it fails.", mdsafe.Mention(l.Owner), slowText(l, cause, until)))
}

func slowSummary(l *store.Launch, cause string, until time.Time) string {
	return slowText(l, cause, until) + "\n\nMachine: " + what(l) + "."
}

func endedTitle(l *store.Launch) string {
	if l.InstanceID == "" {
		return fmt.Sprintf("Launch of %s was cancelled", l.Machine)
	}
	return fmt.Sprintf("%s was terminated", l.Machine)
}

// endedText says when and why a VM ended (or a launch ended before it had one).
func endedText(l *store.Launch) string {
	if l.InstanceID == "" {
		return fmt.Sprintf("Launch `%s` (%s) was cancelled at %s because %s; no VM was started.",
			l.ID, mdsafe.Code(l.Machine), l.EndedAt.UTC().Format("2006-01-02 15:04 UTC"), l.EndReason)
	}
	return fmt.Sprintf("VM `%s` (%s, instance %s) was terminated at %s because %s.",
		l.ID, mdsafe.Code(l.Machine), mdsafe.Code(l.InstanceID), l.EndedAt.UTC().Format("2006-01-02 15:04 UTC"), l.EndReason)
}

func endedComment(l *store.Launch) string {
	return withMarker(l.ID, fmt.Sprintf("%s %s\n\nComment `/launch` for a new one.", mdsafe.Mention(l.Owner), endedText(l)))
}

// statusComment lists a PR's VMs for /launch status.
func statusComment(launches []*store.Launch, now time.Time) string {
	var b strings.Builder
	var rows int
	b.WriteString("| launch | owner | machine | state | connect | ends |\n|---|---|---|---|---|---|\n")
	for _, l := range launches {
		if l.State.Ended() && now.Sub(l.EndedAt) > 24*time.Hour {
			continue
		}
		rows++
		conn, ends := "—", "—"
		if l.State == store.StateRunning {
			if addr := firstNonEmpty(l.PublicIPv4, l.PublicDNS); addr != "" {
				conn = mdsafe.Cell("ssh " + l.SSHUser + "@" + addr)
			} else {
				conn = "no public address"
			}
			ends = whenUTC(l.ExpiresAt, now)
		}
		if l.State.Ended() {
			ends = l.EndedAt.UTC().Format("15:04 UTC") + ": " + endReason(l)
		}
		// Owners are named, not mentioned: the answer is for whoever asked.
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", l.ID, mdsafe.Login(l.Owner), mdsafe.Cell(l.Machine), l.State, conn, ends)
	}
	if rows == 0 {
		return "There are no VMs on this pull request. Comment `/launch` to start one."
	}
	return "VMs of this pull request:\n\n" + b.String()
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// packitBuildText names the Packit build a launch takes its image from.
func packitBuildText(l *store.Launch) string {
	text := fmt.Sprintf("Packit's build %s of %s", mdsafe.Cell("vm-image-build:"+l.PackitTarget), shortSHA(l.PackitSHA))
	if u := safeURL(l.PackitBuildURL); u != "#" {
		text += fmt.Sprintf(" ([check run](%s))", u)
	}
	return text
}

func waitingTitle(l *store.Launch) string {
	return fmt.Sprintf("Waiting for Packit's build of %s", l.PackitTarget)
}

// waitingText says what a waiting launch waits for and how to cancel it.
func waitingText(l *store.Launch) string {
	return fmt.Sprintf("I will launch %s (launch `%s`) when Packit's build %s of %s finishes: I check every minute, for up to %d hours. `/launch stop %s` cancels it.",
		mdsafe.Code(l.Machine), l.ID, mdsafe.Code("vm-image-build:"+l.PackitTarget), shortSHA(l.PackitSHA), int(provision.PackitWaitFor.Hours()), l.ID)
}

func waitingComment(l *store.Launch) string {
	return withMarker(l.ID, mdsafe.Mention(l.Owner)+" "+waitingText(l))
}
