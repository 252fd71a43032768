package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packit/packit-launch/commands"
	"github.com/packit/packit-launch/mdsafe"
)

// Refusal is a decision not to act, with words for the PR: what happened
// and what to do.
type Refusal struct {
	Reason string
}

func (r *Refusal) Error() string { return "refused: " + r.Reason }

func refuse(format string, args ...any) *Refusal {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// LaunchSpec is everything needed to launch one VM, decided and checked.
type LaunchSpec struct {
	Machine string
	// Image is the AMI id or compose id to launch; "" while PackitTarget
	// names an image the app has yet to find in Packit's check runs.
	Image string
	// PackitTarget is set when the image comes from Packit: the
	// vm-image-build target (e.g. fedora-39-x86_64) whose build to launch.
	PackitTarget string
	// AnyCommit accepts Packit's newest successful build even when it was
	// built from an older commit of the PR than its head.
	AnyCommit        bool
	Region           string
	InstanceType     string
	SSHUser          string
	Profile          string
	LaunchTemplateID string
	SecurityGroupIDs []string
	SubnetID         string
	// Lifetime sets the expiry; MaxLifetime the hard expiry (both from launch time).
	Lifetime    time.Duration
	MaxLifetime time.Duration
	ExtendStep  time.Duration
	// Key is the fingerprint asked for with --key, if any.
	Key string
}

// NormalizePermission maps GitHub's permission field to admin, write, read or none.
func NormalizePermission(p string) string {
	switch p {
	case "admin", "write", "read":
		return p
	case "maintain":
		return "write"
	case "triage":
		return "read"
	}
	return "none"
}

// Resolve turns a launch command into a launch spec within the machine's
// profile, or refuses with the reason.
func (s *Server) Resolve(project *Project, repo *Repo, cmd commands.Command) (LaunchSpec, error) {
	name := cmd.Machine
	if name == "" {
		name = repo.Default
		if name == "" && len(repo.Machines) == 1 {
			for n := range repo.Machines {
				name = n
			}
		}
	}
	m, ok := repo.Machines[name]
	if !ok {
		return LaunchSpec{}, refuse("There is no machine named %s in `%s`. Machines here: %s.%s", mdsafe.Code(name), RepoConfigPath, machineList(repo), didYouMean(name))
	}
	profileName, p, err := s.profileFor(m, project)
	if err != nil {
		return LaunchSpec{}, refuse("Machine %s cannot be launched: %v. A maintainer needs to fix `%s` on the base branch.", mdsafe.Code(name), err, RepoConfigPath)
	}
	spec := LaunchSpec{
		Machine:          name,
		Image:            m.Image.ID,
		PackitTarget:     m.Image.Packit,
		Region:           m.Region,
		InstanceType:     m.InstanceType,
		SSHUser:          m.SSHUser,
		Profile:          profileName,
		LaunchTemplateID: p.In(m.Region).LaunchTemplateID,
		SecurityGroupIDs: p.In(m.Region).SecurityGroupIDs,
		SubnetID:         p.In(m.Region).SubnetID,
		Lifetime:         m.Lifetime.D(),
		MaxLifetime:      p.MaxLifetime.D(),
		ExtendStep:       p.ExtendStep.D(),
		Key:              cmd.Key,
	}
	if spec.SSHUser == "" {
		spec.SSHUser = "ec2-user"
	}
	if spec.Lifetime == 0 {
		spec.Lifetime = p.DefaultLifetime.D()
	}
	if cmd.Lifetime != 0 {
		if cmd.Lifetime > spec.MaxLifetime {
			return LaunchSpec{}, refuse("`--lifetime %s` is longer than the %s this machine's profile (%s) allows. Ask for %s or less; you can `/launch extend` later, up to that maximum.",
				commands.FormatDuration(cmd.Lifetime), commands.FormatDuration(spec.MaxLifetime), mdsafe.Code(profileName), commands.FormatDuration(spec.MaxLifetime))
		}
		spec.Lifetime = cmd.Lifetime
	}
	if cmd.InstanceType != "" {
		if !slices.Contains(p.InstanceTypes, cmd.InstanceType) {
			return LaunchSpec{}, refuse("Instance type %s is not allowed for machine %s. Allowed types: %s.", mdsafe.Code(cmd.InstanceType), mdsafe.Code(name), codeList(p.InstanceTypes))
		}
		spec.InstanceType = cmd.InstanceType
	}
	if cmd.Image != "" {
		if !repo.AllowImageOverride {
			return LaunchSpec{}, refuse("This repository does not allow `--image`. A maintainer can enable it with `allow_image_override: true` in `%s`.", RepoConfigPath)
		}
		if err := overrideImage(&spec, m, cmd.Image); err != nil {
			return LaunchSpec{}, err
		}
	}
	if cmd.AnyCommit {
		if spec.PackitTarget == "" {
			return LaunchSpec{}, refuse("`--any-commit` only applies to an image from Packit: machine %s has a fixed image. Use it with `--image packit:TARGET`, or leave it out.", mdsafe.Code(name))
		}
		spec.AnyCommit = true
	}
	return spec, nil
}

// overrideImage applies `--image` to spec: an AMI or compose id, `packit`
// (the machine's own Packit target) or `packit:TARGET`.
func overrideImage(spec *LaunchSpec, m Machine, image string) error {
	switch target, fromPackit := strings.CutPrefix(image, PackitImagePrefix); {
	case image == PackitImage:
		if !m.Image.FromPackit() {
			return refuse("Machine %s has a fixed image, so `--image packit` does not say which Packit build to launch. Name the `vm-image-build` target: `--image packit:TARGET`, e.g. `--image packit:fedora-39-x86_64`.", mdsafe.Code(spec.Machine))
		}
		spec.Image, spec.PackitTarget = "", m.Image.Packit
	case fromPackit:
		if !ValidPackitTarget(target) {
			return refuse("%s: %s is not a `vm-image-build` target (like `fedora-39-x86_64`).", mdsafe.Code("--image "+image), mdsafe.Code(target))
		}
		spec.Image, spec.PackitTarget = "", target
	case ValidImage(image):
		spec.Image, spec.PackitTarget = image, ""
	default:
		return refuse("%s is neither an AMI id (`ami-…`) nor an Image Builder compose id (a UUID), nor `packit` or `packit:TARGET` for the image Packit built for this pull request.", mdsafe.Code("--image "+image))
	}
	return nil
}

func machineList(r *Repo) string {
	return codeList(sortedKeys(r.Machines))
}

// codeList shows names as code: machine names are the repository's words,
// and operator values get the same treatment so nothing is left to judge.
func codeList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = mdsafe.Code(s)
	}
	return strings.Join(quoted, ", ")
}

// didYouMean suggests a command when a would-be machine name is a typo of one.
func didYouMean(word string) string {
	for _, c := range []commands.Kind{commands.KindStatus, commands.KindExtend, commands.KindStop, commands.KindHelp} {
		if editDistance(strings.ToLower(word), string(c)) <= 2 {
			return fmt.Sprintf(" Did you mean `/launch %s`? `/launch help` lists the commands.", c)
		}
	}
	return " `/launch help` lists the commands."
}

// editDistance is the Levenshtein distance of two short words.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
