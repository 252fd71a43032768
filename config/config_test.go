package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/packit/packit-launch/commands"
	"github.com/packit/packit-launch/mdsafe/mdsafetest"
)

func exampleServer(t *testing.T, env map[string]string) *Server {
	t.Helper()
	data, err := os.ReadFile("../examples/packit-launch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseServer(data, env)
	if err != nil {
		t.Fatalf("example server config: %v", err)
	}
	return s
}

func exampleRepo(t *testing.T, s *Server, p *Project) *Repo {
	t.Helper()
	data, err := os.ReadFile("../examples/.packit-launch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.ParseRepo(data, p)
	if err != nil {
		t.Fatalf("example repo config: %v", err)
	}
	return r
}

func TestExampleServerConfigDefaultsAndEnv(t *testing.T) {
	s := exampleServer(t, map[string]string{
		"GITHUB_APP_ID":         "42",
		"GITHUB_WEBHOOK_SECRET": "hush",
		"GITHUB_API_URL":        "http://127.0.0.1:9999",
		"LISTEN_ADDR":           "127.0.0.1:4000",
		"AWS_REGION":            "eu-west-1",
	})
	if s.GitHub.AppID != 42 || s.GitHub.WebhookSecret.Reveal() != "hush" {
		t.Errorf("env not applied: %+v", s.GitHub)
	}
	if s.GitHub.APIURL != "http://127.0.0.1:9999/" {
		t.Errorf("API URL should gain a trailing slash, got %q", s.GitHub.APIURL)
	}
	if s.ListenAddr != "127.0.0.1:4000" || s.AWS.Region != "eu-west-1" {
		t.Errorf("env must win over the file: %q %q", s.ListenAddr, s.AWS.Region)
	}
	if s.Launch.APIURL != "" || s.GitHub.WebhookPath != DefaultWebhookPath { // the Launch URLs default in launchapi
		t.Errorf("defaults not applied: %q %q", s.Launch.APIURL, s.GitHub.WebhookPath)
	}
	if got := s.Profiles["large"].ExtendStep.D(); got != time.Hour {
		t.Errorf("default extend step = %s", got)
	}
	if p := s.Profiles["large"]; p.SSHWait.D() != DefaultSSHWait || !p.Probes() {
		t.Errorf("default ssh wait %s, probe %v; want %s and on", p.SSHWait, p.Probes(), DefaultSSHWait)
	}
}

func TestServerConfigSSHProbeOff(t *testing.T) {
	s, err := ParseServer([]byte("profiles: {p: {instance_types: [t3.small], regions: [us-east-1], max_lifetime: 8h, ssh_probe: false, ssh_wait: 90s}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Profiles["p"]; p.Probes() || p.SSHWait.D() != 90*time.Second {
		t.Errorf("ssh_probe: false, ssh_wait: 90s gave probe %v, wait %s", p.Probes(), p.SSHWait)
	}
	if n := s.Limits.CommandsPerMinute; n != DefaultCommandsPerMinute {
		t.Errorf("limits.commands_per_minute unset gave %d, want the default %d", n, DefaultCommandsPerMinute)
	}
}

func TestServerConfigProblemsAllAtOnce(t *testing.T) {
	data := []byte(`
github: {webhook_path: hooks}
retention: {ended_launches: 30s, deliveries: 5s}
limits: {commands_per_minute: -1}
profiles:
  p:
    default_lifetime: 9h
    max_lifetime: 8h
    launch_template_id: template-1
    extend_step: 10h
    ssh_wait: 2h
projects:
  - repos: [justaname]
    profiles: [p, nope]
`)
	_, err := ParseServer(data, map[string]string{"GITHUB_APP_ID": "abc"})
	var problems Problems
	if !errors.As(err, &problems) {
		t.Fatalf("want Problems, got %v", err)
	}
	for _, want := range []string{
		"GITHUB_APP_ID",
		"github.webhook_path",
		"profiles.p.instance_types",
		"profiles.p.regions",
		"profiles.p.default_lifetime: 9h exceeds max_lifetime 8h",
		"profiles.p.launch_template_id",
		"profiles.p.extend_step: 10h exceeds max_lifetime 8h",
		"profiles.p.ssh_wait: 2h; give the longest the ready comment waits for sshd, up to 30m",
		`pattern "justaname"`,
		`unknown profile "nope"`,
		"retention.ended_launches: 30s is too short",
		"retention.deliveries: 5s is too short",
		"limits.commands_per_minute: -1 is not between 1 and 100000",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
}

func TestServerConfigRejectsUnknownKeysAndBadYAML(t *testing.T) {
	for _, data := range []string{"githb: {}", "profiles: [", "profiles: {p: {max_lifetime: forever}}"} {
		if _, err := ParseServer([]byte(data), nil); err == nil {
			t.Errorf("ParseServer(%q) accepted it", data)
		}
	}
}

func TestMissingSettingsNameHowToObtain(t *testing.T) {
	s, err := ParseServer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range s.Missing() {
		if m.How == "" {
			t.Errorf("%s has no how-to", m.Name)
		}
		names = append(names, m.Name)
	}
	joined := strings.Join(names, "|")
	for _, want := range []string{"GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_WEBHOOK_SECRET", "LAUNCH_CLIENT_ID", "LAUNCH_SOURCE_ID", "projects"} {
		if !strings.Contains(joined, want) {
			t.Errorf("Missing() lacks %s: %v", want, names)
		}
	}
	full := exampleServer(t, map[string]string{
		"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": "pem", "GITHUB_WEBHOOK_SECRET": "s",
		"LAUNCH_IDENTITY": "id", "LAUNCH_SOURCE_ID": "1",
	})
	if m := full.Missing(); len(m) != 0 {
		t.Errorf("nothing should be missing, got %v", m)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	s := exampleServer(t, map[string]string{"GITHUB_WEBHOOK_SECRET": "sup3r-secret", "LAUNCH_CLIENT_SECRET": "sup3r-secret", "REDIS_URL": "redis://:sup3r-secret@h/0"})
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "github", s.GitHub.WebhookSecret, "launch", s.Launch.ClientSecret)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", s, s, s), b.String()} {
		if strings.Contains(out, "sup3r-secret") {
			t.Errorf("secret printed: %s", out)
		}
	}
}

func TestProjectFor(t *testing.T) {
	s := exampleServer(t, nil)
	tests := []struct {
		repo    string
		trusted bool
		first   string
	}{
		{"packit/ogr", true, "small"},
		{"Packit/OGR", true, "small"},
		{"packit/private-stuff", false, ""},
		{"fedora-infra/ansible", true, "small"},
		{"someone/else", false, ""},
		{"packit/ogr/extra", false, ""},
	}
	for _, tt := range tests {
		p, ok := s.ProjectFor(tt.repo)
		if ok != tt.trusted || (ok && p.Profiles[0] != tt.first) {
			t.Errorf("ProjectFor(%q) = %v, %v", tt.repo, p, ok)
		}
	}
}

func TestRepoConfigProblemsHavePaths(t *testing.T) {
	s := exampleServer(t, nil)
	p, _ := s.ProjectFor("fedora-infra/x") // profile small only
	data := []byte(`
default: missing
machines:
  fedora:
    image: fedora-latest
    region: eu-west-1
    instance_type: m6i.xlarge
    lifetime: 30h
    ssh_user: "Bad User"
  big:
    image: ami-0123456789abcdef0
    region: us-east-1
    instance_type: t3.small
    profile: large
  status:
    image: ami-01234567
    region: us-east-1
    instance_type: t3.small
`)
	_, err := s.ParseRepo(data, p)
	for _, want := range []string{
		"`default`: no machine named `missing`",
		"`machines.fedora.image`: `fedora-latest` is neither",
		"`machines.fedora.region`: `eu-west-1` is not allowed by profile `small` (allowed: `us-east-1`)",
		"`machines.fedora.instance_type`: `m6i.xlarge` is not allowed by profile `small`",
		"`machines.fedora.lifetime`: 30h exceeds profile maximum 8h",
		"`machines.fedora.ssh_user`: `Bad User`",
		"`machines.big.profile`: `large` is not one of this project's profiles (`small`)",
		"`machines.status`: a machine name",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	if _, err := s.ParseRepo([]byte("machines: {a: {imag: x}}"), p); err == nil || !strings.Contains(err.Error(), "line 1: unknown key `imag`") {
		t.Errorf("unknown key should be named, got %v", err)
	}
	for data, want := range map[string]string{
		"":                               "the file is empty",
		"# just a comment\n":             "the file is empty",
		"machines: [a, b]":               "line 1: a list is not allowed here",
		"machines: {a: {lifetime: [1]}}": "is not a duration",
		"machines: {a: {lifetime: 2x}}":  "line 1: `2x` is not a duration",
		"machines: {a: {}, a: {}}":       "line 1: key `a` is already set at line 1",
		"machines: [":                    "the file is not valid YAML: `line 1: did not find expected node content`",
		"access: {users: ['@alice']}\nmachines: {a: {image: ami-01234567, region: us-east-1, instance_type: t3.small}}": "`access.users[0]`: `@alice` is not a GitHub login",
	} {
		_, err := s.ParseRepo([]byte(data), p)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "config.") {
			t.Errorf("ParseRepo(%q) = %v, want %q and no Go type names", data, err, want)
		}
	}
}

func TestResolve(t *testing.T) {
	s := exampleServer(t, nil)
	p, _ := s.ProjectFor("packit/ogr")
	r := exampleRepo(t, s, p)
	parse := func(line string) commands.Command {
		c, err := commands.Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	spec, err := s.Resolve(p, r, parse("/launch"))
	if err != nil {
		t.Fatal(err)
	}
	want := LaunchSpec{Machine: "fedora", Image: "ami-0123456789abcdef0", Region: "us-east-1", InstanceType: "t3.small", SSHUser: "fedora",
		Profile: "small", Lifetime: 2 * time.Hour, MaxLifetime: 8 * time.Hour, ExtendStep: time.Hour}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("Resolve(/launch) = %+v, want %+v", spec, want)
	}
	spec, err = s.Resolve(p, r, parse("/launch rhel-big --lifetime 20h --type m6i.xlarge --image ami-0fedcba9876543210 --key SHA256:x"))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Lifetime != 20*time.Hour || spec.MaxLifetime != 24*time.Hour || spec.InstanceType != "m6i.xlarge" || spec.Image != "ami-0fedcba9876543210" || spec.Key != "SHA256:x" {
		t.Errorf("flags not applied: %+v", spec)
	}

	refusals := []struct{ line, reason string }{
		{"/launch centos", "no machine named `centos`"},
		{"/launch --lifetime 9h", "longer than the 8h this"},
		{"/launch stauts", "Did you mean `/launch status`?"},
		{"/launch x`@team", "no machine named ``x`@team``"},
		{"/launch --type m6i.xlarge", "Allowed types: `t3.micro`, `t3.small`, `t3.medium`"},
		{"/launch --image nope", "neither an AMI id"},
	}
	for _, tt := range refusals {
		_, err := s.Resolve(p, r, parse(tt.line))
		var ref *Refusal
		if !errors.As(err, &ref) || !strings.Contains(ref.Reason, tt.reason) {
			t.Errorf("Resolve(%s) = %v, want refusal with %q", tt.line, err, tt.reason)
		}
	}
	r.AllowImageOverride = false
	_, err = s.Resolve(p, r, parse("/launch --image ami-0fedcba9876543210"))
	if err == nil || !strings.Contains(err.Error(), "allow_image_override") {
		t.Errorf("--image without permission: %v", err)
	}
}

// A repository's config is written by anyone who can push to it (or fork
// and propose): every problem must render inert on the PR.
func TestRepoConfigProblemsAreSafeMarkdown(t *testing.T) {
	s := exampleServer(t, nil)
	p, _ := s.ProjectFor("packit/ogr")
	for _, h := range mdsafetest.Hostile {
		values := map[string]any{"image": h, "region": h, "instance_type": h, "ssh_user": h}
		// JSON is YAML, and unlike the YAML encoder it round-trips every string.
		data, err := json.Marshal(map[string]any{
			"default": h,
			"access":  map[string]any{"users": []string{h}},
			"machines": map[string]any{
				h:    map[string]any{"image": h, "region": h, "instance_type": h, "ssh_user": h, "profile": h},
				"ok": values,
				"p1": map[string]any{"image": map[string]any{"from": h, "target": h}, "region": "us-east-1", "instance_type": "t3.small"},
				"p2": map[string]any{"image": map[string]any{"from": "packit", "target": h, h: 1}, "region": "us-east-1", "instance_type": "t3.small"},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		// The whole config must get as far as the machine checks, unless YAML
		// itself refuses the text (control characters, keys over 1024 bytes).
		yamlOK := len(h) < 1024 && !strings.ContainsFunc(h, unicode.IsControl)
		if _, err := s.ParseRepo(data, p); yamlOK && (err == nil || !strings.Contains(err.Error(), "`machines.ok.")) {
			t.Errorf("ParseRepo(%.200q) = %.200v, want machine problems", data, err)
		}
		for _, doc := range []string{string(data), h, "machines:\n  " + strconv.Quote(h) + ": {" + strconv.Quote(h) + ": 1}", "machines: {a: {lifetime: " + strconv.Quote(h) + "}}"} {
			_, err := s.ParseRepo([]byte(doc), p)
			var problems Problems
			if !errors.As(err, &problems) {
				if err != nil {
					t.Errorf("ParseRepo(%q) = %v, want Problems", doc, err)
				}
				continue
			}
			for _, line := range problems {
				mdsafetest.Assert(t, line, "")
			}
			// app/ lists them in one comment, each as a list item.
			mdsafetest.Assert(t, "- "+strings.Join(problems, "\n- "), "")
		}
	}
}

func TestResolveRefusalsAreSafeMarkdown(t *testing.T) {
	s := exampleServer(t, nil)
	p, _ := s.ProjectFor("packit/ogr")
	r := exampleRepo(t, s, p)
	r.Machines["bad"] = Machine{Image: Image{ID: "ami-01234567"}, Profile: "@carol"}
	for _, h := range mdsafetest.Hostile {
		for _, cmd := range []commands.Command{
			{Kind: commands.KindLaunch, Machine: h},
			{Kind: commands.KindLaunch, InstanceType: h},
			{Kind: commands.KindLaunch, Image: h},
			{Kind: commands.KindLaunch, Image: "packit:" + h},
			{Kind: commands.KindLaunch, Machine: h, Image: "packit"},
			{Kind: commands.KindLaunch, Machine: h, AnyCommit: true},
			{Kind: commands.KindLaunch, Machine: "bad", InstanceType: h},
		} {
			_, err := s.Resolve(p, r, cmd)
			var ref *Refusal
			if errors.As(err, &ref) {
				mdsafetest.Assert(t, ref.Reason, "")
			}
		}
	}
}

func TestPackitAppSlugs(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string
		problem    string
	}{
		{"absent means Packit's apps", "", DefaultPackitAppSlugs, ""},
		{"empty means Packit's apps", "packit: {app_slugs: []}", DefaultPackitAppSlugs, ""},
		{"the operator's own", "packit: {app_slugs: [my-packit]}", []string{"my-packit"}, ""},
		{"not a slug", "packit: {app_slugs: [packit-as-a-service, 'Packit Service']}", nil, `packit.app_slugs[1]: "Packit Service" is not a GitHub App slug`},
		{"unknown key", "packit: {apps: [x]}", nil, "packit.apps (line 1): unknown setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseServer([]byte(tt.data), nil)
			if tt.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("ParseServer(%q) = %v, want a problem with %q", tt.data, err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Packit.AppSlugs, tt.want) {
				t.Errorf("app slugs = %q, want %q", s.Packit.AppSlugs, tt.want)
			}
		})
	}
	s, _ := ParseServer(nil, nil)
	s.Packit.AppSlugs[0] = "changed"
	if DefaultPackitAppSlugs[0] != "packit-as-a-service" {
		t.Error("the default is shared with a server config")
	}
	if got := exampleServer(t, nil).Packit.AppSlugs; !reflect.DeepEqual(got, DefaultPackitAppSlugs) {
		t.Errorf("example server config: app slugs = %q", got)
	}
}

func TestImageYAML(t *testing.T) {
	s := exampleServer(t, nil)
	p, _ := s.ProjectFor("packit/ogr")
	machine := func(image string) string {
		return "machines:\n  fedora:\n    image: " + image + "\n    region: us-east-1\n    instance_type: t3.small\n"
	}
	tests := []struct {
		image    string
		want     Image
		problems []string
	}{
		{"ami-0123456789abcdef0", Image{ID: "ami-0123456789abcdef0"}, nil},
		{"1a2b3c4d-0000-4000-8000-00000000abcd", Image{ID: "1a2b3c4d-0000-4000-8000-00000000abcd"}, nil},
		{"{from: packit, target: fedora-39-x86_64}", Image{Packit: "fedora-39-x86_64"}, nil},
		{"\n      from: packit\n      target: centos-stream-9.x86_64", Image{Packit: "centos-stream-9.x86_64"}, nil},
		{"fedora-latest", Image{}, []string{"`machines.fedora.image`: `fedora-latest` is neither an AMI id (`ami-…`) nor an Image Builder compose UUID; for the image Packit builds write `{from: packit, target: fedora-39-x86_64}`"}},
		{"", Image{}, []string{"`machines.fedora.image`: `\"\"` is neither"}},
		{"[ami-0123456789abcdef0]", Image{}, []string{"`machines.fedora.image`: line 3: a list is not allowed here"}},
		{"{from: koji, target: fedora-39-x86_64}", Image{}, []string{"`machines.fedora.image.from`: only `packit` is supported"}},
		{"{from: [packit], target: fedora-39-x86_64}", Image{}, []string{"`machines.fedora.image.from`: only `packit` is supported"}},
		{"{target: fedora-39-x86_64}", Image{}, []string{"`machines.fedora.image.from`: set `from: packit`"}},
		{"{from: packit}", Image{}, []string{"`machines.fedora.image.target`: name the `vm-image-build` target"}},
		{"{from: packit, target: ''}", Image{}, []string{"`machines.fedora.image.target`: name the `vm-image-build` target"}},
		{"{from: packit, target: {a: b}}", Image{}, []string{"`machines.fedora.image.target`: a mapping is not allowed here"}},
		{"{from: packit, target: Fedora 39}", Image{}, []string{"`machines.fedora.image.target`: `Fedora 39` is not a vm-image-build target (like `fedora-39-x86_64`)"}},
		{"{from: packit, target: vm-image-build:fedora-39-x86_64}", Image{}, []string{"`machines.fedora.image.target`: `vm-image-build:fedora-39-x86_64` is not a vm-image-build target"}},
		{"{from: packit, target: fedora-39-x86_64, region: us-east-1, id: x}", Image{}, []string{"`machines.fedora.image`: line 3: unknown key `region`, `id` (an image from Packit takes `from` and `target`)"}},
		{"{from: koji, tagret: x}", Image{}, []string{"`machines.fedora.image`: line 3: unknown key `tagret`", "`machines.fedora.image.from`: only `packit`", "`machines.fedora.image.target`: name the"}},
	}
	for _, tt := range tests {
		r, err := s.ParseRepo([]byte(machine(tt.image)), p)
		if tt.problems == nil {
			if err != nil {
				t.Errorf("image: %s: %v", tt.image, err)
				continue
			}
			if got := r.Machines["fedora"].Image; got != tt.want {
				t.Errorf("image: %s = %+v, want %+v", tt.image, got, tt.want)
			}
			continue
		}
		var problems Problems
		if !errors.As(err, &problems) {
			t.Errorf("image: %s: %v, want Problems", tt.image, err)
			continue
		}
		if len(problems) != len(tt.problems) {
			t.Errorf("image: %s: %d problems, want %d:\n%v", tt.image, len(problems), len(tt.problems), err)
		}
		for _, want := range tt.problems {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("image: %s: problems lack %q:\n%v", tt.image, want, err)
			}
		}
	}
}

func TestImageFromPackit(t *testing.T) {
	for _, tt := range []struct {
		image      Image
		fromPackit bool
		str        string
	}{
		{Image{ID: "ami-0123456789abcdef0"}, false, "ami-0123456789abcdef0"},
		{Image{Packit: "fedora-39-x86_64"}, true, "packit:fedora-39-x86_64"},
	} {
		if tt.image.FromPackit() != tt.fromPackit || tt.image.String() != tt.str {
			t.Errorf("%+v: FromPackit %v, String %q", tt.image, tt.image.FromPackit(), tt.image.String())
		}
		out, err := yaml.Marshal(tt.image)
		if err != nil {
			t.Fatal(err)
		}
		var back Image
		if err := yaml.Unmarshal(out, &back); err != nil || back != tt.image {
			t.Errorf("round trip of %+v through %q = %+v, %v", tt.image, out, back, err)
		}
	}
}

func TestResolvePackit(t *testing.T) {
	s := exampleServer(t, nil)
	p, _ := s.ProjectFor("packit/ogr")
	r := exampleRepo(t, s, p)
	tests := []struct {
		line         string
		image        string
		packitTarget string
		anyCommit    bool
		refusal      string
	}{
		{line: "/launch fedora-packit", packitTarget: "fedora-39-x86_64"},
		{line: "/launch fedora-packit --any-commit", packitTarget: "fedora-39-x86_64", anyCommit: true},
		{line: "/launch fedora-packit --image packit", packitTarget: "fedora-39-x86_64"},
		{line: "/launch fedora-packit --image packit:centos-stream-9-x86_64", packitTarget: "centos-stream-9-x86_64"},
		{line: "/launch fedora-packit --image ami-0fedcba9876543210", image: "ami-0fedcba9876543210"},
		{line: "/launch --image packit:fedora-40-x86_64 --any-commit", packitTarget: "fedora-40-x86_64", anyCommit: true},
		{line: "/launch --image packit", refusal: "Machine `fedora` has a fixed image, so `--image packit` does not say which Packit build to launch. Name the `vm-image-build` target: `--image packit:TARGET`"},
		{line: "/launch --image packit:", refusal: "`--image packit:`: `\"\"` is not a `vm-image-build` target"},
		{line: "/launch --image packit:Fedora", refusal: "`--image packit:Fedora`: `Fedora` is not a `vm-image-build` target (like `fedora-39-x86_64`)"},
		{line: "/launch --image Packit", refusal: "nor `packit` or `packit:TARGET`"},
		{line: "/launch --any-commit", refusal: "`--any-commit` only applies to an image from Packit: machine `fedora` has a fixed image"},
		{line: "/launch fedora-packit --image ami-0fedcba9876543210 --any-commit", refusal: "`--any-commit` only applies to an image from Packit"},
	}
	for _, tt := range tests {
		cmd, err := commands.Parse(tt.line)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := s.Resolve(p, r, cmd)
		if tt.refusal != "" {
			var ref *Refusal
			if !errors.As(err, &ref) || !strings.Contains(ref.Reason, tt.refusal) {
				t.Errorf("Resolve(%s) = %v, want refusal with %q", tt.line, err, tt.refusal)
			}
			continue
		}
		if err != nil {
			t.Errorf("Resolve(%s): %v", tt.line, err)
			continue
		}
		if spec.Image != tt.image || spec.PackitTarget != tt.packitTarget || spec.AnyCommit != tt.anyCommit {
			t.Errorf("Resolve(%s) = image %q, Packit target %q, any commit %v; want %q, %q, %v",
				tt.line, spec.Image, spec.PackitTarget, spec.AnyCommit, tt.image, tt.packitTarget, tt.anyCommit)
		}
	}
	r.AllowImageOverride = false
	for _, line := range []string{"/launch --image packit", "/launch fedora-packit --image packit:fedora-40-x86_64"} {
		cmd, _ := commands.Parse(line)
		if _, err := s.Resolve(p, r, cmd); err == nil || !strings.Contains(err.Error(), "allow_image_override") {
			t.Errorf("Resolve(%s) without allow_image_override: %v", line, err)
		}
	}
}
