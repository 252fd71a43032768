package config

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/packit/packit-launch/mdsafe"
)

// Image is a machine's image: a fixed AMI id or Image Builder compose id, or
// the image Packit built for the PR's head.
//
// In YAML it is either a plain string (the ID) or a mapping
// `{from: packit, target: fedora-39-x86_64}`.
type Image struct {
	ID     string // AMI id or compose UUID, when fixed
	Packit string // a vm-image-build target (e.g. fedora-39-x86_64), when from Packit

	// problems is what UnmarshalYAML found wrong with the written form;
	// ParseRepo reports it with the machine's path. Zero for a well-formed
	// image, so parsed images compare equal to ones built in code.
	problems imageProblems
}

// imageProblems holds at most one markdown problem per place in an image
// mapping; each is the text after the path.
type imageProblems struct {
	image, from, target string
}

// FromPackit reports whether the image is the one Packit built for the PR.
func (i Image) FromPackit() bool { return i.Packit != "" }

// String is how logs show an image: the ID, or packit:TARGET.
func (i Image) String() string {
	if i.FromPackit() {
		return PackitImagePrefix + i.Packit
	}
	return i.ID
}

// PackitImage is the `--image` value that takes the machine's own Packit
// target; PackitImagePrefix followed by a target names another one.
const (
	PackitImage       = "packit"
	PackitImagePrefix = "packit:"
)

var packitTargetRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidPackitTarget reports whether s looks like a vm-image-build target
// (e.g. fedora-39-x86_64), as Packit names its check runs
// `vm-image-build:<target>`.
func ValidPackitTarget(s string) bool { return packitTargetRE.MatchString(s) }

// UnmarshalYAML reads a plain string as a fixed ID, or a mapping with `from`
// and `target`. What is wrong is kept for ParseRepo, which knows the path.
func (i *Image) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	*i = Image{}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!null" {
			i.ID = n.Value
		}
		return nil
	case yaml.MappingNode:
	default:
		i.problems.image = fmt.Sprintf("line %d: %s is not allowed here; write an AMI id, a compose id or `{from: packit, target: fedora-39-x86_64}`", n.Line, yamlKinds[n.ShortTag()])
		return nil
	}
	var from, target *yaml.Node
	var unknown []string
	for k := 0; k+1 < len(n.Content); k += 2 {
		key, value := n.Content[k], n.Content[k+1]
		if value.Kind == yaml.AliasNode && value.Alias != nil {
			value = value.Alias
		}
		switch key.Value {
		case "from":
			from = value
		case "target":
			target = value
		default:
			unknown = append(unknown, mdsafe.Code(key.Value))
		}
	}
	if len(unknown) > 0 {
		i.problems.image = fmt.Sprintf("line %d: unknown key %s (an image from Packit takes `from` and `target`)", n.Line, strings.Join(unknown, ", "))
	}
	switch {
	case from == nil:
		i.problems.from = "set `from: packit` (or write the image's AMI id or compose id as plain text)"
	case from.Kind != yaml.ScalarNode || from.Value != "packit":
		i.problems.from = "only `packit` is supported"
	}
	switch {
	case target == nil || (target.Kind == yaml.ScalarNode && target.Value == ""):
		i.problems.target = "name the `vm-image-build` target Packit builds, like `fedora-39-x86_64`"
	case target.Kind != yaml.ScalarNode:
		i.problems.target = fmt.Sprintf("%s is not allowed here; write a `vm-image-build` target like `fedora-39-x86_64`", yamlKinds[target.ShortTag()])
	default:
		i.Packit = target.Value // checkImage validates it
	}
	return nil
}

// MarshalYAML writes the image the way UnmarshalYAML reads it.
func (i Image) MarshalYAML() (any, error) {
	if i.FromPackit() {
		return map[string]string{"from": "packit", "target": i.Packit}, nil
	}
	return i.ID, nil
}

// jsonSchema is the image's two written forms, as UnmarshalYAML reads them
// and checkImage checks them.
func (Image) jsonSchema() *jsonSchema {
	return &jsonSchema{OneOf: []*jsonSchema{
		{
			Description: "A fixed image: an AMI id (ami-…) in the machine's region, or an Image Builder compose UUID.",
			Type:        "string",
			Pattern:     amiRE.String() + "|" + uuidRE.String(), // both anchored: ValidImage's either-or
		},
		{
			Description: "The image Packit built for the PR's head with `/packit vm-image-build`.",
			Type:        "object",
			Properties: map[string]*jsonSchema{
				"from":   {Description: "Where the image comes from: only packit.", Type: "string", Const: "packit"},
				"target": {Description: "The vm-image-build target Packit builds, as in its check run vm-image-build:<target>, like fedora-39-x86_64.", Type: "string", Pattern: packitTargetRE.String()},
			},
			Required:             []string{"from", "target"},
			AdditionalProperties: false,
		},
	}}
}

// checkImage reports a machine's image problems; at renders a path below
// the machine.
func checkImage(i Image, at func(string) string, problems *Problems) {
	for _, p := range []struct{ field, msg string }{
		{".image", i.problems.image}, {".image.from", i.problems.from}, {".image.target", i.problems.target},
	} {
		if p.msg != "" {
			problems.add("%s: %s", at(p.field), p.msg)
		}
	}
	switch {
	case i.problems != imageProblems{}:
		// Said above; the rest would repeat it.
	case i.FromPackit():
		if !ValidPackitTarget(i.Packit) {
			problems.add("%s: %s is not a vm-image-build target (like `fedora-39-x86_64`)", at(".image.target"), mdsafe.Code(i.Packit))
		}
	case !ValidImage(i.ID):
		problems.add("%s: %s is neither an AMI id (`ami-…`) nor an Image Builder compose UUID; "+
			"for the image Packit builds write `{from: packit, target: fedora-39-x86_64}`", at(".image"), mdsafe.Code(i.ID))
	}
}
