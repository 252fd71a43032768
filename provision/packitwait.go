package provision

import (
	"fmt"
	"time"

	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/store"
)

// PackitWaitFor is how long a launch waits for Packit's build of its commit.
const PackitWaitFor = 2 * time.Hour

// PackitFacts are what the GitHub side found, on one poll, about the build a
// waiting launch waits for.
type PackitFacts struct {
	PROpen  bool
	HeadSHA string // the PR's head now
	// Build is the newest build of the launch's commit and target; nil when
	// there is none yet.
	Build *PackitBuild
	// Stop is why a stop was asked for the launch, or "".
	Stop string
	// NotAllowed says why the person may no longer launch here (trust,
	// pause, setup check, permission), with Advice; "" when they may.
	NotAllowed, Advice string
}

// PackitBuild is a vm-image-build check run as the GitHub side read it.
type PackitBuild struct {
	Done, Succeeded  bool
	Conclusion       string
	Region, AMI, URL string
}

// PackitAction is what a waiting launch does after a poll.
type PackitAction int

const (
	// PackitPollAgain: the build is still running.
	PackitPollAgain PackitAction = iota
	// PackitCancel: the wait ends (Reason); Tell when the person did not ask for it.
	PackitCancel
	// PackitFail: the launch fails (Reason, Advice).
	PackitFail
	// PackitLaunch: the build is ready: launch its image.
	PackitLaunch
)

// PackitStep is the decision of one poll.
type PackitStep struct {
	Action         PackitAction
	Reason, Advice string
	Tell           bool
}

// DecidePackitWait decides what a waiting launch does with what one poll
// found: a stop, a closed PR or a new push ends the wait; a build still
// running is polled again until PackitWaitFor has passed; a failed build,
// a person who may no longer launch, or an image in another region fails
// it; otherwise it launches.
func DecidePackitWait(l *store.Launch, f PackitFacts, now time.Time) PackitStep {
	switch {
	case f.Stop != "":
		return PackitStep{Action: PackitCancel, Reason: f.Stop}
	case !f.PROpen:
		return PackitStep{Action: PackitCancel, Reason: ReasonPRClosed, Tell: true}
	case f.HeadSHA != l.PackitSHA:
		return PackitStep{Action: PackitCancel, Tell: true,
			Reason: fmt.Sprintf("a new push (%s) replaced the commit whose build it waited for; comment `/launch` again once Packit has built the new one", short(f.HeadSHA))}
	case f.Build == nil || !f.Build.Done:
		if now.Sub(l.CreatedAt) > PackitWaitFor {
			return PackitStep{Action: PackitFail, Reason: fmt.Sprintf("Packit's build did not finish within %s", PackitWaitFor),
				Advice: "Comment `/launch` again when the build has finished."}
		}
		return PackitStep{Action: PackitPollAgain}
	case !f.Build.Succeeded:
		return PackitStep{Action: PackitFail, Reason: fmt.Sprintf("Packit's build ended with %s and reported no AWS image", f.Build.Conclusion),
			Advice: "Comment `/packit vm-image-build` to build it again, then `/launch`."}
	case f.NotAllowed != "":
		return PackitStep{Action: PackitFail, Reason: f.NotAllowed, Advice: f.Advice}
	case f.Build.Region != l.Region:
		return PackitStep{Action: PackitFail, Reason: fmt.Sprintf("Packit built the image in %s, but the machine launches in %s", f.Build.Region, l.Region),
			Advice: "A maintainer can set the machine's `region` to the image's (if its profile allows it)."}
	}
	return PackitStep{Action: PackitLaunch}
}

// short is a commit's short id, as markdown code (the PR shows it).
func short(sha string) string { return mdsafe.Code(sha[:min(len(sha), 7)]) }
