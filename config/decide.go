package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packit/packit-launch/commands"
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

// CheckAccess decides whether user, with their GitHub permission on the
// repository, may launch there. Reasons address the user, who the caller mentions. repo may be nil (no repo config yet).
func CheckAccess(repo *Repo, user, permission string) *Refusal {
	permission = NormalizePermission(permission)
	if permission != "admin" && permission != "write" {
		return refuse("`/launch` needs write access to this repository, and you have %s access. "+
			"Ask a maintainer to launch the VM for you, or to grant you write access.", permission)
	}
	if repo == nil {
		return nil
	}
	if repo.Access.AdminsOnly && permission != "admin" {
		return refuse("This repository lets only its admins use `/launch` (`access.admins_only` in `%s`).", RepoConfigPath)
	}
	if len(repo.Access.Users) > 0 && !slices.ContainsFunc(repo.Access.Users, func(u string) bool { return strings.EqualFold(u, user) }) {
		return refuse("This repository lets only the people listed under `access.users` in `%s` use `/launch`. "+
			"Ask a maintainer to add you there (on the default branch).", RepoConfigPath)
	}
	return nil
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
		return LaunchSpec{}, refuse("There is no machine named `%s` in `%s`. Machines here: %s.", name, RepoConfigPath, machineList(repo))
	}
	profileName, p, err := s.profileFor(m, project)
	if err != nil {
		return LaunchSpec{}, refuse("Machine `%s` cannot be launched: %v. Fix `%s` on the default branch.", name, err, RepoConfigPath)
	}
	spec := LaunchSpec{
		Machine:          name,
		Image:            m.Image,
		Region:           m.Region,
		InstanceType:     m.InstanceType,
		SSHUser:          m.SSHUser,
		Profile:          profileName,
		LaunchTemplateID: p.LaunchTemplateID,
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
			return LaunchSpec{}, refuse("`--lifetime %s` is longer than the %s this machine's profile (`%s`) allows. Ask for %s or less; you can `/launch extend` later, up to that maximum.",
				cmd.Lifetime, spec.MaxLifetime, profileName, spec.MaxLifetime)
		}
		spec.Lifetime = cmd.Lifetime
	}
	if cmd.InstanceType != "" {
		if !slices.Contains(p.InstanceTypes, cmd.InstanceType) {
			return LaunchSpec{}, refuse("Instance type `%s` is not allowed for machine `%s`. Allowed types: %s.", cmd.InstanceType, name, codeList(p.InstanceTypes))
		}
		spec.InstanceType = cmd.InstanceType
	}
	if cmd.Image != "" {
		if !repo.AllowImageOverride {
			return LaunchSpec{}, refuse("This repository does not allow `--image`. A maintainer can enable it with `allow_image_override: true` in `%s`.", RepoConfigPath)
		}
		if !ValidImage(cmd.Image) {
			return LaunchSpec{}, refuse("`--image %s` is neither an AMI id (`ami-…`) nor an Image Builder compose id (a UUID).", cmd.Image)
		}
		spec.Image = cmd.Image
	}
	return spec, nil
}

func machineList(r *Repo) string {
	return codeList(sortedKeys(r.Machines))
}

func codeList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = "`" + s + "`"
	}
	return strings.Join(quoted, ", ")
}
