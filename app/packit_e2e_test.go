package app

import (
	"fmt"
	"net/http"

	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/store"
)

// Packit's side of the story, played on the fake GitHub: its
// vm-image-build check runs on the PR's commits.

const (
	packitTarget = "fedora-39-x86_64"
	packitCheck  = "vm-image-build:" + packitTarget
	packitRepo   = `
default: fedora
allow_image_override: true
machines:
  fedora:
    image: {from: packit, target: fedora-39-x86_64}
    region: us-east-1
    instance_type: t3.small
    ssh_user: fedora
`
)

var (
	headSHA  = strings.Repeat("a", 40)
	olderSHA = strings.Repeat("b", 40)
)

// newPackitEnv is a launch world whose machine takes Packit's image.
func newPackitEnv(t *testing.T) *launchEnv {
	e := newLaunchEnv(t)
	e.gh.SetFile("packit/ogr", "main", config.RepoConfigPath, packitRepo)
	e.launches.lc.PackitPollEvery = 200 * time.Millisecond
	return e
}

// packitSummary is what Packit writes on a successful AWS build.
func packitSummary(region, ami string) string {
	return "Congratulations! Your image was successfully built.\n\n" +
		fmt.Sprintf("https://console.aws.amazon.com/ec2/v2/home?region=%s#LaunchInstanceWizard:ami=%s\n", region, ami)
}

// packitBuilding adds Packit's check run, still building, on sha.
func (e *launchEnv) packitBuilding(sha string) githubtest.CheckRun {
	return e.gh.AddCheckRun("packit/ogr", githubtest.CheckRun{AppSlug: "packit-as-a-service", HeadSHA: sha, Name: packitCheck,
		Status: "in_progress", Title: "VM Image build is in progress", Summary: "Building."})
}

// packitBuilt adds a finished, successful build of the env's AMI on sha.
func (e *launchEnv) packitBuilt(sha, region string) githubtest.CheckRun {
	return e.gh.AddCheckRun("packit/ogr", githubtest.CheckRun{AppSlug: "packit-as-a-service", HeadSHA: sha, Name: packitCheck,
		Status: "completed", Conclusion: "success", Title: "VM Image build is complete", Summary: packitSummary(region, e.ami)})
}

// launchOf is the launch recorded for comment c.
func (e *launchEnv) launchOf(c *comment) *store.Launch {
	e.t.Helper()
	var found *store.Launch
	waitFor(e.t, func() bool {
		ls, err := e.st.LaunchesByPR(e.t.Context(), c.Repo, c.Number)
		for _, l := range ls {
			if err == nil && l.CommandCommentID == c.ID {
				found = l
			}
		}
		return found != nil
	})
	return found
}

func (e *launchEnv) finishPackit(cr githubtest.CheckRun, conclusion string) {
	e.gh.UpdateCheckRunAs("packit/ogr", cr.ID, func(c *githubtest.CheckRun) {
		c.Status, c.Conclusion = "completed", conclusion
		c.Title, c.Summary = "VM Image build failed...", "The build failed."
		if conclusion == "success" {
			c.Title, c.Summary = "VM Image build is complete", packitSummary("us-east-1", e.ami)
		}
	})
}

func TestPackitLaunchWaitsForTheBuildThenLaunchesIt(t *testing.T) {
	e := newPackitEnv(t)
	build := e.packitBuilding(headSHA)
	c := defaultComment("/launch")
	got := e.command(c)
	if len(got) != 1 || !strings.Contains(got[0].Body, "when Packit's build `"+packitCheck+"` of `aaaaaaa` finishes") {
		t.Fatalf("waiting answer: %+v", got)
	}
	waiting := e.waitState(e.launchOf(c).ID, store.StateWaiting)
	if cr := checkRunFor(t, e.gh, waiting.ID); cr.Status != "in_progress" || !strings.Contains(cr.Title, "Waiting for Packit's build") {
		t.Errorf("check run while waiting: %+v", cr)
	}
	e.finishPackit(build, "success")
	e.waitState(waiting.ID, store.StateRunning)
	l := e.reported(c)
	if l.State != store.StateRunning || l.Image != e.ami || l.PackitSHA != headSHA {
		t.Fatalf("record: state %s image %s sha %s", l.State, l.Image, l.PackitSHA)
	}
	out, err := ec2test.Client(e.moto, "us-east-1").DescribeInstances(t.Context(), &awsec2.DescribeInstancesInput{InstanceIds: []string{l.InstanceID}})
	if err != nil || len(out.Reservations) != 1 || aws.ToString(out.Reservations[0].Instances[0].ImageId) != e.ami {
		t.Errorf("instance %s does not run Packit's image %s: %v", l.InstanceID, e.ami, err)
	}
	// The waiting comment says the build finished; the answer is a new
	// comment, so that the person who waited hears of it.
	comments := botComments(e.gh, "packit/ogr", 7)
	if len(comments) != 2 || !strings.Contains(comments[0].Body, "finished; launching") || !strings.Contains(comments[1].Body, "your VM is ready") ||
		!strings.Contains(comments[1].Body, "Packit's build `"+packitCheck+"` of `aaaaaaa` ([check run](https://github.com/") {
		t.Errorf("comments: %+v", comments)
	}
	// Its lifetime starts when it is launched, not when it began to wait.
	if life := l.ExpiresAt.Sub(l.CreatedAt); life < 2*time.Hour || life > 2*time.Hour+time.Minute || !l.CreatedAt.After(waiting.CreatedAt) {
		t.Errorf("lifetime from %s to %s (waiting since %s)", l.CreatedAt, l.ExpiresAt, waiting.CreatedAt)
	}
}

func TestPackitBuildOfTheHeadIsLaunchedAtOnce(t *testing.T) {
	e := newPackitEnv(t)
	e.packitBuilt(headSHA, "us-east-1")
	l := e.launch(defaultComment("/launch"))
	if l.State != store.StateRunning || l.Image != e.ami {
		t.Fatalf("record: %s %s", l.State, l.Image)
	}
}

func TestPackitFailedBuildIsReported(t *testing.T) {
	e := newPackitEnv(t)
	// While waiting: the build fails.
	build := e.packitBuilding(headSHA)
	c := defaultComment("/launch")
	e.command(c)
	e.finishPackit(build, "failure")
	l := e.waitState(e.launchOf(c).ID, store.StateFailed)
	waitFor(t, func() bool { // the waiting comment says so, and a new one tells the person
		got := botComments(e.gh, "packit/ogr", 7)
		return len(got) == 2 && strings.Contains(got[0].Body, "failed") && strings.Contains(got[1].Body, "/packit vm-image-build")
	})
	if cr := checkRunFor(t, e.gh, l.ID); cr.Status != "completed" || cr.Conclusion != "failure" {
		t.Errorf("check run %s/%s", cr.Status, cr.Conclusion)
	}
	// Already failed when asked: refused at once.
	got := e.command(defaultComment("/launch"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "ended with `failure`") {
		t.Errorf("answer: %+v", got)
	}
}

func TestPackitNoBuildSaysHowToStartOne(t *testing.T) {
	e := newPackitEnv(t)
	got := e.command(defaultComment("/launch"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "Packit has not built `"+packitCheck+"`") || !strings.Contains(got[0].Body, "`/packit vm-image-build`") {
		t.Fatalf("answer: %+v", got)
	}
}

func TestPackitLookAlikeFromAnotherAppIsIgnored(t *testing.T) {
	e := newPackitEnv(t)
	e.gh.AddCheckRun("packit/ogr", githubtest.CheckRun{AppSlug: "github-actions", HeadSHA: headSHA, Name: packitCheck,
		Status: "completed", Conclusion: "success", Title: "VM Image build is complete", Summary: packitSummary("us-east-1", "ami-0123456789abcdef0")})
	got := e.command(defaultComment("/launch"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "I ignored 1 check run(s) of that name made by other apps") {
		t.Fatalf("answer: %+v", got)
	}
}

func TestPackitRegionMismatchIsRefused(t *testing.T) {
	e := newPackitEnv(t)
	e.packitBuilt(headSHA, "eu-west-1")
	got := e.command(defaultComment("/launch"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "in region `eu-west-1`, but machine `fedora` launches in `us-east-1`") {
		t.Fatalf("answer: %+v", got)
	}
}

func TestPackitBuildOfAnOlderCommitNeedsAnyCommit(t *testing.T) {
	e := newPackitEnv(t)
	e.gh.SetPullCommits("packit/ogr", 7, olderSHA, headSHA)
	e.packitBuilt(olderSHA, "us-east-1")
	got := e.command(defaultComment("/launch"))
	if len(got) != 1 || !strings.Contains(got[0].Body, "from the earlier commit `bbbbbbb`") || !strings.Contains(got[0].Body, "`/launch --any-commit`") {
		t.Fatalf("answer: %+v", got)
	}
	l := e.launch(defaultComment("/launch --any-commit"))
	if l.State != store.StateRunning || l.PackitSHA != olderSHA || l.Image != e.ami {
		t.Fatalf("record: %s sha %s image %s", l.State, l.PackitSHA, l.Image)
	}
	if body := botComments(e.gh, "packit/ogr", 7)[1].Body; !strings.Contains(body, "of `bbbbbbb`") {
		t.Errorf("ready comment does not name the commit:\n%s", body)
	}
}

func TestPackitPushCancelsTheWait(t *testing.T) {
	e := newPackitEnv(t)
	e.packitBuilding(headSHA)
	c := defaultComment("/launch")
	e.command(c)
	e.waitState(e.launchOf(c).ID, store.StateWaiting)
	e.gh.SetPull("packit/ogr", githubtest.PullRequest{Number: 7, State: "open", HeadSHA: strings.Repeat("c", 40), HeadRef: "feature", BaseRef: "main"})
	l := e.waitState(e.launchOf(c).ID, store.StateEnded)
	if !strings.Contains(l.EndReason, "a new push (`ccccccc`)") {
		t.Errorf("end reason %q", l.EndReason)
	}
	waitFor(t, func() bool {
		got := botComments(e.gh, "packit/ogr", 7)
		return len(got) == 2 && strings.Contains(got[0].Body, "was cancelled") && strings.Contains(got[1].Body, "a new push")
	})
}

func TestPackitStopCancelsAWaitingLaunch(t *testing.T) {
	e := newPackitEnv(t)
	e.launches.lc.PackitPollEvery = time.Hour // only the stop ends it
	e.packitBuilding(headSHA)
	c := defaultComment("/launch")
	e.command(c)
	l := e.waitState(e.launchOf(c).ID, store.StateWaiting)
	// It counts toward the owner's quota while it waits.
	if got := e.command(defaultComment("/launch status")); len(got) != 1 || !strings.Contains(got[0].Body, "waiting") {
		t.Errorf("status: %+v", got)
	}
	got := e.command(defaultComment("/launch stop " + l.ID))
	if len(got) != 1 || !strings.Contains(got[0].Body, "is cancelled") {
		t.Fatalf("stop answer: %+v", got)
	}
	ended, _ := e.st.GetLaunch(t.Context(), l.ID)
	if ended.State != store.StateEnded {
		t.Errorf("state %s", ended.State)
	}
	if cr := checkRunFor(t, e.gh, l.ID); cr.Status != "completed" || cr.Conclusion != "neutral" {
		t.Errorf("check run %s/%s", cr.Status, cr.Conclusion)
	}
}

// A poll that meets a GitHub outage does not end the wait: the next poll
// comes all the same, and the launch goes ahead once GitHub answers.
func TestPackitWaitSurvivesPollErrors(t *testing.T) {
	e := newPackitEnv(t)
	build := e.packitBuilding(headSHA)
	c := defaultComment("/launch")
	e.command(c)
	waiting := e.waitState(e.launchOf(c).ID, store.StateWaiting)
	e.gh.FailNext(http.MethodGet, "/repos/packit/ogr/pulls/7", http.StatusBadGateway, 20) // more than a job's retries
	e.finishPackit(build, "success")
	if l := e.waitState(waiting.ID, store.StateRunning); l.Image != e.ami {
		t.Fatalf("image %s", l.Image)
	}
}

// Packit's older name for the check run, vm-image-build-<target>, counts too.
func TestPackitOlderCheckRunNameIsRead(t *testing.T) {
	e := newPackitEnv(t)
	e.gh.AddCheckRun("packit/ogr", githubtest.CheckRun{AppSlug: "packit-as-a-service", HeadSHA: headSHA, Name: "vm-image-build-" + packitTarget,
		Status: "completed", Conclusion: "success", Title: "VM Image build is complete", Summary: packitSummary("us-east-1", e.ami)})
	if l := e.launch(defaultComment("/launch")); l.State != store.StateRunning || l.Image != e.ami {
		t.Fatalf("record: %s %s", l.State, l.Image)
	}
}

// Who may launch is checked again when the build is done.
func TestPackitPermissionIsCheckedAgainWhenTheBuildIsDone(t *testing.T) {
	e := newPackitEnv(t)
	build := e.packitBuilding(headSHA)
	c := defaultComment("/launch")
	e.command(c)
	l := e.waitState(e.launchOf(c).ID, store.StateWaiting)
	e.gh.SetPermission("packit/ogr", "alice", "read")
	e.finishPackit(build, "success")
	failed := e.waitState(l.ID, store.StateFailed)
	if !strings.Contains(failed.Failure, "no longer launch") {
		t.Errorf("failure %q", failed.Failure)
	}
}
