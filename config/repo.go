package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/packit/packit-launch/commands"
)

// RepoConfigPath is where a repository keeps its config, on its base branch.
const RepoConfigPath = ".packit-launch.yaml"

// Repo is a repository's .packit-launch.yaml.
type Repo struct {
	// Default names the machine plain `/launch` takes; optional with one machine.
	Default string `yaml:"default"`
	// AllowImageOverride lets `--image` replace a machine's image.
	AllowImageOverride bool   `yaml:"allow_image_override"`
	Access             Access `yaml:"access"`
	// KeepOnClose keeps VMs running until their expiry when the PR closes.
	KeepOnClose bool               `yaml:"keep_on_close"`
	Machines    map[string]Machine `yaml:"machines"`
}

// Access can only be stricter than the default (write permission).
type Access struct {
	AdminsOnly bool `yaml:"admins_only"`
	// Users, when set, are the only logins allowed (they still need write permission).
	Users []string `yaml:"users"`
}

// Machine is a named entry of a repo config.
type Machine struct {
	// Image is an AMI id or an Image Builder compose UUID.
	Image        string   `yaml:"image"`
	Region       string   `yaml:"region"`
	InstanceType string   `yaml:"instance_type"`
	Lifetime     Duration `yaml:"lifetime"`
	SSHUser      string   `yaml:"ssh_user"`
	// Profile names the server profile it must fit; empty means the project's first.
	Profile string `yaml:"profile"`
}

var (
	amiRE         = regexp.MustCompile(`^ami-[0-9a-f]{8}([0-9a-f]{9})?$`)
	uuidRE        = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	machineNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,39}$`)
	sshUserRE     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	loginRE       = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
)

// ValidImage reports whether s is an AMI id or a compose UUID.
func ValidImage(s string) bool { return amiRE.MatchString(s) || uuidRE.MatchString(s) }

// ParseRepo parses and checks a repo config against the server policy for
// its project; every problem is reported with its path.
func (s *Server) ParseRepo(data []byte, project *Project) (*Repo, error) {
	r := &Repo{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(r); err != nil {
		return nil, decodeProblems(err)
	}
	var problems Problems
	for i, u := range r.Access.Users {
		if !loginRE.MatchString(u) {
			problems.add("access.users[%d]: %q is not a GitHub login (write it without @)", i, u)
		}
	}
	if len(r.Machines) == 0 {
		problems.add("machines: define at least one machine")
	}
	if r.Default == "" && len(r.Machines) > 1 {
		problems.add("default: name the machine that plain `/launch` takes")
	}
	if _, ok := r.Machines[r.Default]; r.Default != "" && !ok {
		problems.add("default: no machine named %q", r.Default)
	}
	for _, name := range sortedKeys(r.Machines) {
		s.checkMachine(name, r.Machines[name], project, &problems)
	}
	if err := problems.err(); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Server) checkMachine(name string, m Machine, project *Project, problems *Problems) {
	at := "machines." + name
	if !machineNameRE.MatchString(name) || commands.IsReserved(name) {
		problems.add("%s: a machine name is lower-case letters, digits, '.', '_' or '-' and not a command word", at)
	}
	if !ValidImage(m.Image) {
		problems.add("%s.image: %q is neither an AMI id (ami-…) nor an Image Builder compose UUID", at, m.Image)
	}
	if m.SSHUser != "" && !sshUserRE.MatchString(m.SSHUser) {
		problems.add("%s.ssh_user: %q is not a valid user name", at, m.SSHUser)
	}
	profileName, p, err := s.profileFor(m, project)
	if err != nil {
		problems.add("%s.profile: %v", at, err)
		return
	}
	if m.Region == "" {
		problems.add("%s.region: set one of %s (profile %s)", at, list(p.Regions), profileName)
	} else if !slices.Contains(p.Regions, m.Region) {
		problems.add("%s.region: %s is not allowed by profile %s (allowed: %s)", at, m.Region, profileName, list(p.Regions))
	}
	if m.InstanceType == "" {
		problems.add("%s.instance_type: set one of %s (profile %s)", at, list(p.InstanceTypes), profileName)
	} else if !slices.Contains(p.InstanceTypes, m.InstanceType) {
		problems.add("%s.instance_type: %s is not allowed by profile %s (allowed: %s)", at, m.InstanceType, profileName, list(p.InstanceTypes))
	}
	if m.Lifetime > p.MaxLifetime {
		problems.add("%s.lifetime: %s exceeds profile maximum %s", at, m.Lifetime, p.MaxLifetime)
	}
}

func (s *Server) profileFor(m Machine, project *Project) (string, Profile, error) {
	name := m.Profile
	if name == "" {
		name = project.Profiles[0]
	}
	if !slices.Contains(project.Profiles, name) {
		return "", Profile{}, fmt.Errorf("%q is not one of this project's profiles (%s)", name, list(project.Profiles))
	}
	p, ok := s.Profiles[name]
	if !ok {
		return "", Profile{}, fmt.Errorf("profile %q does not exist on this server", name)
	}
	return name, p, nil
}

func list(items []string) string { return strings.Join(items, ", ") }

// decodeProblems turns YAML decoder errors into words for people: no Go
// type names, and an empty file said as such.
func decodeProblems(err error) Problems {
	if errors.Is(err, io.EOF) {
		return Problems{"the file is empty: define `machines:` (see the example in the packit-launch README)"}
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Problems{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var out Problems
	for _, e := range te.Errors {
		out = append(out, yamlKindRE.ReplaceAllStringFunc(e, func(m string) string {
			sub := yamlKindRE.FindStringSubmatch(m)
			return fmt.Sprintf("%s is not allowed here", yamlKinds[sub[1]])
		}))
	}
	return out
}

var (
	yamlKindRE = regexp.MustCompile(`cannot unmarshal (!!\w+)(?: ` + "`[^`]*`" + `)? into \S+`)
	yamlKinds  = map[string]string{"!!seq": "a list", "!!map": "a mapping", "!!str": "text", "!!int": "a number", "!!bool": "true/false", "!!float": "a number", "!!null": "an empty value"}
)
