package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"
	"go.yaml.in/yaml/v3"

	"github.com/packit/packit-launch/commands"
)

// compileRepoSchema compiles RepoSchema with a real validator, which also
// checks it against the draft 2020-12 meta-schema.
func compileRepoSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := RepoSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(RepoSchemaURL, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(RepoSchemaURL)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// schemaCheck validates YAML as an editor's YAML language server does: the
// document as JSON, YAML 1.2 scalars, keys as text.
func schemaCheck(s *jsonschema.Schema, data string) error {
	var v any
	if err := yaml.Unmarshal([]byte(data), &v); err != nil {
		return fmt.Errorf("not YAML: %w", err)
	}
	b, err := json.Marshal(textKeys(v))
	if err != nil {
		return fmt.Errorf("to JSON: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("to JSON: %w", err)
	}
	return s.Validate(doc)
}

func textKeys(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = textKeys(e)
		}
	case map[any]any:
		m := map[string]any{}
		for k, e := range v {
			m[fmt.Sprint(k)] = textKeys(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = textKeys(e)
		}
	}
	return v
}

const schemaBase = `
default: fedora
machines:
  fedora:
    image: ami-0123456789abcdef0
    region: us-east-1
    instance_type: t3.small
`

// machineWith is one machine of the example's small profile, with fields.
func machineWith(fields string) string {
	return "machines:\n  fedora:\n    region: us-east-1\n    instance_type: t3.small\n" + fields
}

// The schema and ParseRepo agree on the structure of .packit-launch.yaml:
// each of these breaks it in one place, and both reject it (ParseRepo for
// that very reason, not for the server's policy).
func TestRepoSchemaRejectsWhatParseRepoRejects(t *testing.T) {
	s := exampleServer(t, nil)
	p, _ := s.ProjectFor("packit/ogr")
	sch := compileRepoSchema(t)
	tests := []struct {
		name, data, parser string
	}{
		{"empty file", "", "the file is empty"},
		{"a list, not a mapping", "- fedora\n", "a list is not allowed here"},
		{"text, not a mapping", "fedora\n", "text is not allowed here"},
		{"unknown key", "defualt: fedora\n" + schemaBase[len("\ndefault: fedora\n"):], "unknown key `defualt`"},
		{"unknown machine key", machineWith("    image: ami-0123456789abcdef0\n    imag: ami-0123456789abcdef0\n"), "unknown key `imag`"},
		{"unknown access key", "access: {admin_only: true}\n" + schemaBase, "unknown key `admin_only`"},
		{"machines: a list", "machines: [fedora]\n", "a list is not allowed here"},
		{"machines: null", "machines:\n", "define at least one machine"},
		{"machines: none", "machines: {}\n", "define at least one machine"},
		{"no machines", "default: fedora\n", "define at least one machine"},
		{"a machine: null", "machines: {fedora: ~}\n", "`machines.fedora.image`"},
		{"a bool: a list", "keep_on_close: [true]\n" + schemaBase, "a list is not allowed here"},
		{"a bool: text", "allow_image_override: maybe\n" + schemaBase, "text is not allowed here"},
		{"a bool: a number", "keep_on_close: 1\n" + schemaBase, "a number is not allowed here"},
		{"users: text", "access: {users: alice}\n" + schemaBase, "text is not allowed here"},
		{"users: a mapping", "access: {users: {alice: true}}\n" + schemaBase, "a mapping is not allowed here"},
		{"access: a list", "access: [admins_only]\n" + schemaBase, "a list is not allowed here"},
		{"a login with @", "access: {users: ['@alice']}\n" + schemaBase, "is not a GitHub login"},
		{"region: a mapping", "machines: {fedora: {image: ami-0123456789abcdef0, region: {name: us-east-1}, instance_type: t3.small}}\n", "a mapping is not allowed here"},
		{"profile: a list", machineWith("    image: ami-0123456789abcdef0\n    profile: [small]\n"), "a list is not allowed here"},
		{"lifetime: a list", machineWith("    image: ami-0123456789abcdef0\n    lifetime: [2h]\n"), "is not a duration"},
		{"lifetime: a number", machineWith("    image: ami-0123456789abcdef0\n    lifetime: 90\n"), "is not a duration"},
		{"lifetime: words", machineWith("    image: ami-0123456789abcdef0\n    lifetime: 2 hours\n"), "is not a duration"},
		{"lifetime: negative", machineWith("    image: ami-0123456789abcdef0\n    lifetime: -2h\n"), "is not a duration"},
		{"no image", machineWith(""), "`machines.fedora.image`: `\"\"` is neither"},
		{"no region", "machines: {fedora: {image: ami-0123456789abcdef0, instance_type: t3.small}}\n", "`machines.fedora.region`: set one of"},
		{"empty region", "machines: {fedora: {image: ami-0123456789abcdef0, region: '', instance_type: t3.small}}\n", "`machines.fedora.region`: set one of"},
		{"no instance type", "machines: {fedora: {image: ami-0123456789abcdef0, region: us-east-1}}\n", "`machines.fedora.instance_type`: set one of"},
		{"null instance type", "machines: {fedora: {image: ami-0123456789abcdef0, region: us-east-1, instance_type: ~}}\n", "`machines.fedora.instance_type`: set one of"},
		{"no default of two", schemaBase[len("\ndefault: fedora\n"):] + "  rhel:\n    image: ami-0123456789abcdef0\n    region: us-east-1\n    instance_type: t3.small\n", "`default`: name the machine"},
		{"empty default of two", "default: ''\n" + schemaBase[len("\ndefault: fedora\n"):] + "  rhel:\n    image: ami-0123456789abcdef0\n    region: us-east-1\n    instance_type: t3.small\n", "`default`: name the machine"},
		{"machine name: upper case", "machines: {Fedora: {image: ami-0123456789abcdef0, region: us-east-1, instance_type: t3.small}}\n", "`machines.Fedora`: a machine name"},
		{"machine name: too long", "machines: {" + strings.Repeat("f", 41) + ": {image: ami-0123456789abcdef0, region: us-east-1, instance_type: t3.small}}\n", "a machine name"},
		{"machine name: a command word", "machines: {status: {image: ami-0123456789abcdef0, region: us-east-1, instance_type: t3.small}}\n", "`machines.status`: a machine name"},
		{"ssh_user: not a user name", machineWith("    image: ami-0123456789abcdef0\n    ssh_user: Bad User\n"), "is not a valid user name"},
		{"image: a name", machineWith("    image: fedora-latest\n"), "`fedora-latest` is neither"},
		{"image: a short AMI id", machineWith("    image: ami-0123\n"), "`ami-0123` is neither"},
		{"image: a list", machineWith("    image: [ami-0123456789abcdef0]\n"), "a list is not allowed here"},
		{"image: from koji", machineWith("    image: {from: koji, target: fedora-39-x86_64}\n"), "only `packit` is supported"},
		{"image: from a list", machineWith("    image: {from: [packit], target: fedora-39-x86_64}\n"), "only `packit` is supported"},
		{"image: no from", machineWith("    image: {target: fedora-39-x86_64}\n"), "set `from: packit`"},
		{"image: no target", machineWith("    image: {from: packit}\n"), "name the `vm-image-build` target"},
		{"image: empty target", machineWith("    image: {from: packit, target: ''}\n"), "name the `vm-image-build` target"},
		{"image: target a mapping", machineWith("    image: {from: packit, target: {name: x}}\n"), "a mapping is not allowed here"},
		{"image: target not a target", machineWith("    image: {from: packit, target: Fedora 39}\n"), "is not a vm-image-build target"},
		{"image: unknown key", machineWith("    image: {from: packit, target: fedora-39-x86_64, region: us-east-1}\n"), "unknown key `region`"},
		{"image: an id in a mapping", machineWith("    image: {id: ami-0123456789abcdef0}\n"), "unknown key `id`"},
	}
	base, err := s.ParseRepo([]byte(schemaBase), p)
	if err != nil || base == nil {
		t.Fatalf("the base config: %v", err)
	}
	if err := schemaCheck(sch, schemaBase); err != nil {
		t.Fatalf("the base config: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := schemaCheck(sch, tt.data); err == nil {
				t.Errorf("the schema accepts:\n%s", tt.data)
			}
			if _, err := s.ParseRepo([]byte(tt.data), p); err == nil || !strings.Contains(err.Error(), tt.parser) {
				t.Errorf("ParseRepo = %v, want a problem with %q, for:\n%s", err, tt.parser, tt.data)
			}
		})
	}
}

// What the README and examples/ show, and what the parser reads as "not
// set", both accept.
func TestRepoSchemaAcceptsWhatParseRepoAccepts(t *testing.T) {
	s := exampleServer(t, nil)
	p, _ := s.ProjectFor("packit/ogr")
	sch := compileRepoSchema(t)
	example, err := os.ReadFile("../examples/.packit-launch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{
		"examples/.packit-launch.yaml": string(example),
		"one machine, no default":      schemaBase[len("\ndefault: fedora\n"):],
		"one machine, empty default":   "default: ''\n" + schemaBase[len("\ndefault: fedora\n"):],
		"nulls are not set":            "default:\nallow_image_override:\nkeep_on_close: ~\naccess:\n" + machineWith("    image: ami-0123456789abcdef0\n    lifetime:\n    ssh_user: ~\n    profile:\n"),
		"empty access":                 "access: {admins_only: ~, users: []}\n" + schemaBase,
		"a compose id, all fields": machineWith("    image: 1A2B3C4D-0000-4000-8000-00000000ABCD\n    lifetime: 1h30m\n    ssh_user: cloud-user\n    profile: small\n") +
			"default: fedora\nallow_image_override: false\nkeep_on_close: true\naccess: {admins_only: true, users: [alice, Bob-2]}\n",
		"an 8-digit AMI id, a day": "machines: {a.b_c-1: {image: ami-01234567, region: us-east-1, instance_type: t3.large, lifetime: 1d, profile: large}}\n",
		"from packit, block form":  machineWith("    image:\n      from: packit\n      target: centos-stream-9.x86_64\n"),
		"anchors and aliases":      "machines:\n  a: &m {image: ami-01234567, region: us-east-1, instance_type: t3.small}\n  b: *m\ndefault: a\n",
		"launch names a machine":   "machines: {launch: {image: ami-01234567, region: us-east-1, instance_type: t3.small}}\n",
	}
	for i, block := range readmeRepoConfigs(t) {
		docs[fmt.Sprintf("README block %d", i+1)] = block
	}
	for name, data := range docs {
		if err := schemaCheck(sch, data); err != nil {
			t.Errorf("%s: the schema rejects it: %v\n%s", name, err, data)
		}
		if _, err := s.ParseRepo([]byte(data), p); err != nil {
			t.Errorf("%s: ParseRepo rejects it: %v\n%s", name, err, data)
		}
	}
}

// readmeRepoConfigs returns the README's YAML blocks that are a
// .packit-launch.yaml: those with machines.
func readmeRepoConfigs(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	doc := goldmark.New().Parser().Parse(text.NewReader(src))
	err = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		b, ok := n.(*ast.FencedCodeBlock)
		if !ok || !entering || string(b.Language(src)) != "yaml" {
			return ast.WalkContinue, nil
		}
		var block strings.Builder
		for i := range b.Lines().Len() {
			seg := b.Lines().At(i)
			block.Write(seg.Value(src))
		}
		if regexp.MustCompile(`(?m)^machines:`).MatchString(block.String()) {
			blocks = append(blocks, block.String())
		}
		return ast.WalkContinue, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) < 3 {
		t.Fatalf("found %d repo configs in the README, want the 3 it shows at least", len(blocks))
	}
	return blocks
}

// Where they differ: YAML 1.1 leftovers the decoder turns into text or
// true/false, and an empty user name it reads as not set. The schema flags
// them as an editor reads YAML 1.2; the bot accepts them. A case the parser
// comes to reject belongs in the table above.
func TestRepoSchemaIsStricterOnlyOnScalars(t *testing.T) {
	s := exampleServer(t, nil)
	p, _ := s.ProjectFor("packit/ogr")
	sch := compileRepoSchema(t)
	for _, data := range []string{
		"keep_on_close: yes\n" + schemaBase,
		"allow_image_override: 'on'\n" + schemaBase,
		"access: {users: [1234]}\n" + schemaBase,
		machineWith("    image: {from: packit, target: 39}\n"),
		machineWith("    image: ami-01234567\n    ssh_user: ''\n"),
	} {
		if err := schemaCheck(sch, data); err == nil {
			t.Errorf("the schema accepts it; move it to the table of what both accept:\n%s", data)
		}
		if _, err := s.ParseRepo([]byte(data), p); err != nil {
			t.Errorf("ParseRepo rejects it; move it to the table of what both reject: %v\n%s", err, data)
		}
	}
}

// The lifetime pattern is looser than ParseLifetime, never stricter.
func TestLifetimePatternAdmitsWhatParseLifetimeAccepts(t *testing.T) {
	pattern := regexp.MustCompile(Duration(0).jsonSchema().Pattern)
	for _, s := range []string{"90m", "2h", "1d", "1h30m", "1.5h", ".5h", "1.h", "+2h", "+1d", "01d", "500ms", "1us", "1µs", "1μs", "3600s", "1h1m1s1ms1us1ns",
		"0", "0h", "0d", "", "h", "2", "2 hours", "2x", "-1h", "-1d", "1D", "2H", "1w", " 2h", "2h "} {
		_, err := commands.ParseLifetime(s)
		if err == nil && !pattern.MatchString(s) {
			t.Errorf("%q: ParseLifetime accepts it, the pattern does not", s)
		}
	}
	for _, s := range []string{"2 hours", "2x", "-1h", "1D", "1w", "90"} {
		if pattern.MatchString(s) {
			t.Errorf("%q: the pattern admits it", s)
		}
	}
}

// The machine names the schema refuses are the command words /launch help lists.
func TestSchemaReservedNamesAreTheCommandWords(t *testing.T) {
	var words []string
	for line := range strings.Lines(commands.Help()) {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == commands.Prefix && commands.IsReserved(f[1]) {
			words = append(words, f[1])
		}
	}
	if got := reservedNames(); len(words) == 0 || !slices.Equal(got, words) {
		t.Errorf("reserved names %q, /launch help lists %q", got, words)
	}
}

// Every key in the schema says what it is for, as an editor shows it.
func TestRepoSchemaDescribesEveryKey(t *testing.T) {
	b, err := RepoSchema()
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(at string, s map[string]any)
	walk = func(at string, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for name, p := range props {
			p := p.(map[string]any)
			if d, _ := p["description"].(string); d == "" {
				t.Errorf("%s: no description", join(at, name))
			}
			walk(join(at, name), p)
		}
		if more, ok := s["additionalProperties"].(map[string]any); ok {
			walk(at+".*", more)
		}
		branches, _ := s["oneOf"].([]any)
		for _, b := range branches {
			walk(at, b.(map[string]any))
		}
	}
	walk("", root)
}

// Types the reflector must refuse rather than guess at, one reason each.
type (
	undocumented struct {
		A string `yaml:"a"`
	}
	untagged     struct{ A string }
	docOfNoField struct {
		A string `yaml:"a"`
	}
	selfReader struct {
		V reads `yaml:"v"`
	}
	reads       string
	structuring struct {
		A string `yaml:"a"`
	}
)

func (untagged) schemaDoc() *jsonSchema { return &jsonSchema{} }
func (docOfNoField) schemaDoc() *jsonSchema {
	return &jsonSchema{Properties: map[string]*jsonSchema{"b": {Description: "b"}}}
}
func (selfReader) schemaDoc() *jsonSchema       { return &jsonSchema{} }
func (*reads) UnmarshalYAML(n *yaml.Node) error { return nil }
func (structuring) schemaDoc() *jsonSchema {
	return &jsonSchema{Properties: map[string]*jsonSchema{"a": {Type: "integer"}}}
}
func TestReflectSchemaRefusesWhatItCannotSee(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[undocumented](), reflect.TypeFor[untagged](), reflect.TypeFor[docOfNoField](),
		reflect.TypeFor[selfReader](), reflect.TypeFor[structuring](), reflect.TypeFor[map[int]string](), reflect.TypeFor[float64](),
	} {
		if s, err := reflectSchema(typ, ""); err == nil {
			t.Errorf("%s: reflected as %+v", typ, s)
		}
	}
}
