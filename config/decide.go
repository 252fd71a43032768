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
	Machine          string
	Image            string
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
		Image:            m.Image,
		Region:           m.Region,
		InstanceType:     m.InstanceType,
		SSHUser:          m.SSHUser,
		Profile:          profileName,
		LaunchTemplateID: p.LaunchTemplateID,
		SecurityGroupIDs: p.SecurityGroupIDs,
		SubnetID:         p.SubnetID,
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
		if !ValidImage(cmd.Image) {
			return LaunchSpec{}, refuse("%s is neither an AMI id (`ami-…`) nor an Image Builder compose id (a UUID).", mdsafe.Code("--image "+cmd.Image))
		}
		spec.Image = cmd.Image
	}
	return spec, nil
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
