package app

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/mdsafe"
)

// Packit reports each `/packit vm-image-build` as a check run on the commit it
// built, named vm-image-build:<target> (older deployments:
// vm-image-build-<target>); on success its summary holds the AWS console link
// to launch the image, which names the region and the AMI.

// packitBuild is one of Packit's vm-image-build check runs, as the bot reads it.
type packitBuild struct {
	ID                 int64
	Name, SHA, URL     string
	Status, Conclusion string
	Region, AMI        string // from the output, on success
}

func (b packitBuild) done() bool { return b.Status == "completed" }

// sha and url are a build's commit and check run, "" without a build.
func (b *packitBuild) sha() string {
	if b == nil {
		return ""
	}
	return b.SHA
}

func (b *packitBuild) url() string {
	if b == nil {
		return ""
	}
	return b.URL
}
func (b packitBuild) succeeded() bool { return b.done() && b.Conclusion == "success" && b.AMI != "" }

// packitImageRE is the console link in a successful build's summary.
var packitImageRE = regexp.MustCompile(`https://console\.aws\.amazon\.com/ec2/v2/home\?region=([a-z]{2}(?:-[a-z]+)+-[0-9]+)#LaunchInstanceWizard:ami=(ami-[0-9a-f]{8}(?:[0-9a-f]{9})?)\b`)

// parsePackitImage reads region and AMI from a build's output summary.
func parsePackitImage(summary string) (region, ami string, ok bool) {
	m := packitImageRE.FindStringSubmatch(summary)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// packitCheckNames are the names Packit gives a target's check run.
func packitCheckNames(target string) []string {
	return []string{"vm-image-build:" + target, "vm-image-build-" + target}
}

// packitBuilds lists Packit's builds of target on commit sha, newest first;
// lookalikes counts check runs of the same names made by other apps (a
// workflow could name a run that way), which are never trusted.
func packitBuilds(ctx context.Context, gh *github.Client, repo, sha, target string, slugs []string) (builds []packitBuild, lookalikes int, err error) {
	owner, name, _ := strings.Cut(repo, "/")
	for _, check := range packitCheckNames(target) {
		opts := &github.ListCheckRunsOptions{CheckName: github.String(check), Filter: github.String("all"), ListOptions: github.ListOptions{PerPage: 100}}
		for {
			page, resp, err := gh.Checks.ListCheckRunsForRef(ctx, owner, name, sha, opts)
			if err != nil {
				return nil, 0, fmt.Errorf("list check runs of %s: %w", sha, err)
			}
			for _, cr := range page.CheckRuns {
				if !slices.Contains(slugs, cr.GetApp().GetSlug()) {
					lookalikes++
					continue
				}
				b := packitBuild{ID: cr.GetID(), Name: cr.GetName(), SHA: cr.GetHeadSHA(), URL: cr.GetHTMLURL(), Status: cr.GetStatus(), Conclusion: cr.GetConclusion()}
				if b.Status == "completed" && b.Conclusion == "success" {
					b.Region, b.AMI, _ = parsePackitImage(cr.GetOutput().GetSummary())
				}
				builds = append(builds, b)
			}
			if resp.NextPage == 0 {
				break
			}
			opts.Page = resp.NextPage
		}
	}
	// Check run ids grow with time: the newest first.
	slices.SortFunc(builds, func(a, b packitBuild) int { return cmp.Compare(b.ID, a.ID) })
	return builds, lookalikes, nil
}

// maxOlderCommits bounds how many earlier commits of a PR are searched for a
// build (two GitHub calls each).
const maxOlderCommits = 10

// resolvePackit finds the image Packit built for the PR's head (or, with
// --any-commit, an earlier commit), puts it into spec and returns its build.
// A build of the head still running is returned with waiting set, to wait
// for; everything else that stops the launch is a refusal saying what to do.
func (w *Worker) resolvePackit(ctx context.Context, gh *github.Client, repo string, number int, headSHA string, spec *config.LaunchSpec) (build *packitBuild, waiting bool, err error) {
	slugs := w.cfg.Packit.AppSlugs
	check := mdsafe.Code("vm-image-build:" + spec.PackitTarget)
	builds, lookalikes, err := packitBuilds(ctx, gh, repo, headSHA, spec.PackitTarget, slugs)
	if err != nil {
		return nil, false, err
	}
	var headFailed error
	if len(builds) > 0 {
		b := builds[0]
		switch {
		case !b.done():
			return &b, true, nil // never an older image while the head's is being built
		case b.succeeded():
			return &b, false, usePackitBuild(spec, b)
		case b.Conclusion == "success":
			headFailed = refuse("Packit's build %s of %s succeeded but reported no AWS image (was it built for AWS?). See [its check run](%s).", check, shortSHA(b.SHA), safeURL(b.URL))
		default:
			headFailed = refuse("Packit's build %s of %s ended with %s. Comment `/packit vm-image-build` to build it again, then `/launch` (I wait for a build in progress).",
				check, shortSHA(b.SHA), mdsafe.Code(b.Conclusion))
		}
		if !spec.AnyCommit {
			return nil, false, headFailed
		}
	}
	older, err := w.olderPackitBuild(ctx, gh, repo, number, headSHA, spec.PackitTarget, slugs)
	if err != nil {
		return nil, false, err
	}
	if older != nil && spec.AnyCommit {
		return older, false, usePackitBuild(spec, *older)
	}
	if headFailed != nil {
		return nil, false, headFailed
	}
	note := ""
	if lookalikes > 0 {
		note = fmt.Sprintf(" (I ignored %d check run(s) of that name made by other apps: only Packit's are trusted, %s.)", lookalikes, codeList(slugs))
	}
	if older != nil {
		return nil, false, refuse("Packit has not built %s for this pull request's head %s; its newest successful build is from the earlier commit %s. "+
			"Comment `/launch --any-commit` to launch that one, or `/packit vm-image-build` to build the head (then `/launch` waits for it).%s",
			check, shortSHA(headSHA), shortSHA(older.SHA), note)
	}
	return nil, false, refuse("Packit has not built %s for this pull request. Comment `/packit vm-image-build` to build it; once Packit has started, `/launch` waits for the build.%s", check, note)
}

// olderPackitBuild is the newest successful build on an earlier commit of the PR.
func (w *Worker) olderPackitBuild(ctx context.Context, gh *github.Client, repo string, number int, headSHA, target string, slugs []string) (*packitBuild, error) {
	owner, name, _ := strings.Cut(repo, "/")
	var shas []string
	opts := &github.ListOptions{PerPage: 100}
	for {
		commits, resp, err := gh.PullRequests.ListCommits(ctx, owner, name, number, opts)
		if err != nil {
			return nil, fmt.Errorf("list the pull request's commits: %w", err)
		}
		for _, c := range commits {
			shas = append(shas, c.GetSHA())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	checked := 0
	for i := len(shas) - 1; i >= 0 && checked < maxOlderCommits; i-- {
		if shas[i] == headSHA {
			continue
		}
		checked++
		builds, _, err := packitBuilds(ctx, gh, repo, shas[i], target, slugs)
		if err != nil {
			return nil, err
		}
		for _, b := range builds {
			if b.succeeded() {
				return &b, nil
			}
		}
	}
	return nil, nil
}

// usePackitBuild puts a successful build's image into spec, which must
// launch in the image's region (an AMI exists only there).
func usePackitBuild(spec *config.LaunchSpec, b packitBuild) error {
	if b.Region != spec.Region {
		return refuse("Packit built %s in region %s, but machine %s launches in %s, and an image can be launched only in its own region. "+
			"A maintainer can set the machine's `region` to %s (if its profile allows it), or Packit can build the image in %s.",
			mdsafe.Code("vm-image-build:"+spec.PackitTarget), mdsafe.Code(b.Region), mdsafe.Code(spec.Machine), mdsafe.Code(spec.Region), mdsafe.Code(b.Region), mdsafe.Code(spec.Region))
	}
	spec.Image = b.AMI
	return nil
}

// shortSHA shows a commit the way GitHub does.
func shortSHA(sha string) string { return mdsafe.Code(sha[:min(len(sha), 7)]) }

// safeURL passes a URL GitHub gave into a markdown link only when it is a
// plain https URL; otherwise the link goes nowhere.
func safeURL(u string) string {
	if strings.HasPrefix(u, "https://") && !strings.ContainsAny(u, " ()<>[]`\"'|\n\r\t\\") {
		return u
	}
	return "#"
}

// codeList shows names as code, comma-separated.
func codeList(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = mdsafe.Code(s)
	}
	return strings.Join(out, ", ")
}
