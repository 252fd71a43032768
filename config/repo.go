package config

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"go.yaml.in/yaml/v3"

	"github.com/packit/packit-launch/commands"
	"github.com/packit/packit-launch/mdsafe"
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
	// Image is a fixed AMI id or Image Builder compose UUID, or the image
	// Packit built for the PR's head.
	Image        Image    `yaml:"image"`
	Region       string   `yaml:"region"`
	InstanceType string   `yaml:"instance_type"`
	Lifetime     Duration `yaml:"lifetime,omitempty"` // zero: the profile's default
	SSHUser      string   `yaml:"ssh_user"`
	// Profile names the server profile it must fit; empty means the project's first.
	Profile string `yaml:"profile"`
}

// schemaDoc describes the fields of Repo for RepoSchema, and what
// ParseRepo requires of them beyond their types.
func (Repo) schemaDoc() *jsonSchema {
	return &jsonSchema{
		Description: "A repository's packit-launch config: the machines `/launch` starts for its pull requests. " +
			"Machines are read from the PR's base branch; access and keep_on_close from the default branch. " +
			"Each machine must also fit its profile on the packit-launch server (regions, instance types, lifetimes), which this schema does not know.",
		Required: []string{"machines"},
		// ParseRepo asks which machine plain `/launch` takes when there are several.
		If:   &jsonSchema{Required: []string{"machines"}, Properties: map[string]*jsonSchema{"machines": {MinProperties: 2}}},
		Then: &jsonSchema{Required: []string{"default"}, Properties: map[string]*jsonSchema{"default": {Type: "string", MinLength: 1}}},
		Properties: map[string]*jsonSchema{
			"default":              {Description: "The machine plain `/launch` takes; required when there is more than one."},
			"allow_image_override": {Description: "Let `/launch --image ami-…|COMPOSE-UUID|packit[:TARGET]` replace a machine's image."},
			"access":               {Description: "Who may launch, stricter than the default (write permission). Read from the default branch."},
			"keep_on_close":        {Description: "Keep VMs running until their expiry when their pull request closes. Read from the default branch."},
			"machines": {
				Description: fmt.Sprintf("The machines `/launch NAME` starts, by name: lower-case letters, digits, `.`, `_` or `-`, "+
					"up to 40, and not a command word (%s).", strings.Join(reservedNames(), ", ")),
				MinProperties: 1,
				PropertyNames: &jsonSchema{Pattern: machineNameRE.String(), Not: &jsonSchema{Enum: reservedNames()}},
			},
		},
	}
}

// reservedNames are the command words a machine may not be named: commands
// has no list of them, so its kinds are asked one by one.
func reservedNames() []string {
	var names []string
	for _, k := range []commands.Kind{commands.KindLaunch, commands.KindStatus, commands.KindExtend, commands.KindStop, commands.KindHelp} {
		if commands.IsReserved(string(k)) {
			names = append(names, string(k))
		}
	}
	return names
}

func (Access) schemaDoc() *jsonSchema {
	return &jsonSchema{
		Properties: map[string]*jsonSchema{
			"admins_only": {Description: "Only repository admins may launch."},
			"users": {
				Description: "Only these GitHub logins may launch (written without @); they still need write permission.",
				Items:       &jsonSchema{Pattern: loginRE.String()},
			},
		},
	}
}

func (Machine) schemaDoc() *jsonSchema {
	return &jsonSchema{
		Description: "A VM that `/launch NAME` starts.",
		Required:    []string{"image", "region", "instance_type"},
		Properties: map[string]*jsonSchema{
			"image": {Description: "A fixed AMI id or Image Builder compose UUID, or `{from: packit, target: TARGET}` " +
				"for the image Packit built for the PR's head."},
			"region":        {Description: "The AWS region to launch in, one the machine's profile allows. An AMI exists only in its region.", MinLength: 1},
			"instance_type": {Description: "The EC2 instance type, one the machine's profile allows.", MinLength: 1},
			"lifetime":      {Description: "How long the VM lives, like 90m, 2h or 1d, up to the profile's max_lifetime. Default: the profile's default_lifetime."},
			"ssh_user":      {Description: "The user to ssh in as, which the image decides (ec2-user, fedora, cloud-user…). Default: ec2-user.", Pattern: sshUserRE.String()},
			"profile":       {Description: "The server profile the machine must fit, one the project may use. Default: the project's first."},
		},
	}
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
// its project; every problem is reported with its path. Problems are
// markdown for the PR: the repository's words in them (names, values, the
// paths that hold names) are rendered with mdsafe.
func (s *Server) ParseRepo(data []byte, project *Project) (*Repo, error) {
	r, problems, _ := s.checkRepo(data, project)
	if err := problems.err(); err != nil {
		return nil, err
	}
	return r, nil
}

// CheckRepo judges a repo config as ParseRepo does, and returns at most
// max of its problems, each with the line of the file it is about (0: the
// file as a whole), and how many more there were. The file is parsed once,
// whatever the number of problems: anyone who opens a PR chooses it.
func (s *Server) CheckRepo(data []byte, project *Project, max int) (problems Problems, lines []int, more int) {
	_, problems, doc := s.checkRepo(data, project)
	if len(problems) > max {
		more = len(problems) - max
		problems = problems[:max]
	}
	lines = make([]int, len(problems))
	for i, p := range problems {
		lines[i] = problemLine(doc, p)
	}
	return problems, lines, more
}

// parses counts the repo configs parsed, for tests of what a file costs.
var parses atomic.Int64

// checkRepo parses a repo config once and checks it; doc is the parsed
// document (nil when it is not YAML), which problems' lines are found in.
func (s *Server) checkRepo(data []byte, project *Project) (*Repo, Problems, *yaml.Node) {
	parses.Add(1)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, decodeProblems(err), nil
	}
	if len(doc.Content) == 0 {
		return nil, decodeProblems(io.EOF), nil
	}
	var problems Problems
	unknownKeys(&doc, reflect.TypeFor[Repo](), "", func(_ string, key *yaml.Node, nearest string) {
		problems.add("line %d: unknown key %s%s", key.Line, mdsafe.Code(key.Value), didYouMeanKey(nearest, "`%s`"))
	})
	r := &Repo{}
	if err := doc.Decode(r); err != nil {
		problems = append(problems, decodeProblems(err)...)
	}
	checkAccess(r.Access, &problems)
	if len(r.Machines) == 0 {
		problems.add("`machines`: define at least one machine")
	}
	if r.Default == "" && len(r.Machines) > 1 {
		problems.add("`default`: name the machine that plain `/launch` takes")
	}
	if _, ok := r.Machines[r.Default]; r.Default != "" && !ok {
		problems.add("`default`: no machine named %s", mdsafe.Code(r.Default))
	}
	for _, name := range sortedKeys(r.Machines) {
		s.checkMachine(name, r.Machines[name], project, &problems)
	}
	return r, problems, &doc
}

// checkAccess checks the access section, wherever it was read from.
func checkAccess(a Access, problems *Problems) {
	for i, u := range a.Users {
		if !loginRE.MatchString(u) {
			problems.add("%s: %s is not a GitHub login (write it without @)", mdsafe.Code(fmt.Sprintf("access.users[%d]", i)), mdsafe.Code(u))
		}
	}
}

func (s *Server) checkMachine(name string, m Machine, project *Project, problems *Problems) {
	// The machine name is the repository's text, so each path is one code span.
	at := func(field string) string { return mdsafe.Code("machines." + name + field) }
	if !machineNameRE.MatchString(name) || commands.IsReserved(name) {
		problems.add("%s: a machine name is lower-case letters, digits, `.`, `_` or `-` and not a command word", at(""))
	}
	checkImage(m.Image, at, problems)
	if m.SSHUser != "" && !sshUserRE.MatchString(m.SSHUser) {
		problems.add("%s: %s is not a valid user name", at(".ssh_user"), mdsafe.Code(m.SSHUser))
	}
	profileName, p, err := s.profileFor(m, project)
	if err != nil {
		problems.add("%s: %v", at(".profile"), err)
		return
	}
	profile := mdsafe.Code(profileName)
	if m.Region == "" {
		problems.add("%s: set one of %s (profile %s)", at(".region"), codeList(p.Regions), profile)
	} else if !slices.Contains(p.Regions, m.Region) {
		problems.add("%s: %s is not allowed by profile %s (allowed: %s)", at(".region"), mdsafe.Code(m.Region), profile, codeList(p.Regions))
	}
	if m.InstanceType == "" {
		problems.add("%s: set one of %s (profile %s)", at(".instance_type"), codeList(p.InstanceTypes), profile)
	} else if !slices.Contains(p.InstanceTypes, m.InstanceType) {
		problems.add("%s: %s is not allowed by profile %s (allowed: %s)", at(".instance_type"), mdsafe.Code(m.InstanceType), profile, codeList(p.InstanceTypes))
	}
	if m.Lifetime > p.MaxLifetime {
		problems.add("%s: %s exceeds profile maximum %s", at(".lifetime"), m.Lifetime, p.MaxLifetime)
	}
}

// profileFor finds the server profile a machine names. Its errors are
// markdown: the name may be the repository's text.
func (s *Server) profileFor(m Machine, project *Project) (string, Profile, error) {
	name := m.Profile
	if name == "" {
		name = project.Profiles[0]
	}
	if !slices.Contains(project.Profiles, name) {
		return "", Profile{}, fmt.Errorf("%s is not one of this project's profiles (%s)", mdsafe.Code(name), codeList(project.Profiles))
	}
	p, ok := s.Profiles[name]
	if !ok {
		return "", Profile{}, fmt.Errorf("profile %s does not exist on this server", mdsafe.Code(name))
	}
	return name, p, nil
}

// decodeProblems turns YAML decoder errors into markdown for people: no Go
// type names, an empty file said as such, and the file's own words (keys,
// values) only through mdsafe, since the decoder quotes them.
func decodeProblems(err error) Problems {
	if errors.Is(err, io.EOF) {
		return Problems{"the file is empty: define `machines:` (see the example in the packit-launch README)"}
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Problems{"the file is not valid YAML: " + mdsafe.Code(strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	var out Problems
	for _, e := range te.Errors {
		out = append(out, typeProblem(e))
	}
	return out
}

// typeProblem rewrites one of the decoder's "line N: ..." messages.
func typeProblem(e string) string {
	if own, ok := strings.CutPrefix(e, ownMark); ok {
		return own
	}
	if m := yamlKindRE.FindStringSubmatch(e); m != nil {
		return fmt.Sprintf("line %s: %s is not allowed here", m[1], yamlKinds[m[2]])
	}
	if m := yamlFieldRE.FindStringSubmatch(e); m != nil {
		if m[3] == "not found" {
			return fmt.Sprintf("line %s: unknown key %s", m[1], mdsafe.Code(m[2]))
		}
		return fmt.Sprintf("line %s: key %s is set twice", m[1], mdsafe.Code(m[2]))
	}
	if m := yamlDupRE.FindStringSubmatch(e); m != nil {
		key, err := strconv.Unquote(m[2])
		if err != nil {
			key = m[2]
		}
		return fmt.Sprintf("line %s: key %s is already set at line %s", m[1], mdsafe.Code(key), m[3])
	}
	return mdsafe.Code(e)
}

var (
	yamlKindRE  = regexp.MustCompile(`^line (\d+): cannot unmarshal (!!\w+)`)
	yamlFieldRE = regexp.MustCompile(`^line (\d+): field (.*) (not found|already set) in type \S+$`)
	yamlDupRE   = regexp.MustCompile(`^line (\d+): mapping key (".*") already defined at line (\d+)$`)
	yamlKinds   = map[string]string{"!!seq": "a list", "!!map": "a mapping", "!!str": "text", "!!int": "a number", "!!bool": "true/false", "!!float": "a number", "!!null": "an empty value"}
)
