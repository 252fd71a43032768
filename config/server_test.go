package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/commands"
)

func serverProblems(t *testing.T, data string) Problems {
	t.Helper()
	_, err := ParseServer([]byte(data), nil)
	var problems Problems
	if !errors.As(err, &problems) {
		t.Fatalf("want Problems, got %v", err)
	}
	return problems
}

func TestServerConfigSixMistakesSixProblems(t *testing.T) {
	problems := serverProblems(t, `
pasued: true
profiles:
  small:
    instance_type: t3.small
    instance_types: [t3.smal]
    regions: [mars-1]
    max_lifetime: 8h
    launch_template_id: lt-bad
    security_group_ids: [sg-xyz]
projects:
  - repos: ["o/*"]
    profiles: [small]
`)
	want := []string{
		`pasued (line 2): unknown setting; did you mean paused?`,
		`profiles.small.instance_type (line 5): unknown setting; did you mean instance_types?`,
		`profiles.small.instance_types: "t3.smal" is not an EC2 instance type; did you mean t3.small?`,
		`profiles.small.regions: "mars-1" is not an AWS region`,
		`profiles.small.launch_template_id: "lt-bad" is not a launch template id`,
		`profiles.small.security_group_ids: "sg-xyz" is not a security group id`,
	}
	if len(problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(problems), len(want), problems)
	}
	for _, w := range want {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("no problem starts with %q:\n%v", w, problems)
		}
	}
	for _, p := range problems {
		if strings.Contains(p, "config.") || strings.Contains(p, "unmarshal") {
			t.Errorf("a Go type or the decoder's words reached the operator: %q", p)
		}
	}
}

func TestServerConfigNamesEveryFormMistake(t *testing.T) {
	problems := serverProblems(t, `
sweep_grace: 1m
profiles:
  p:
    instance_types: ["big one", t3.small]
    regions: [us-east1, us-east-1]
    max_lifetime: forever
    subnet_id: sub-1
  q: {instance_types: [t3.small], regions: {eu-west-1: {lt: x}}, max_lifetime: 1h}
`)
	for _, w := range []string{
		`profiles.p.instance_types: "big one" is not an EC2 instance type`,
		`profiles.p.regions: "us-east1" is not an AWS region`,
		`profiles.p: line 7: forever is not a duration`,
		`profiles.p.subnet_id: "sub-1" is not a subnet id`,
		`profiles.q.regions.eu-west-1.lt (line 9): unknown setting`,
		`sweep_grace: 1m is too short (at least 5m`,
	} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("no problem starts with %q:\n%v", w, problems)
		}
	}
	if slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, `"t3.small"`) }) {
		t.Errorf("a known instance type was refused:\n%v", problems)
	}
}

const twoRegions = `
profiles:
  large:
    instance_types: [t3.large]
    regions:
      us-east-1: {launch_template_id: lt-0123456789abcdef0, security_group_ids: [sg-0123456789abcdef0]}
      eu-west-1:
        launch_template_id: lt-0fedcba9876543210
        security_group_ids: [sg-0fedcba9876543210]
        subnet_id: subnet-0a1b2c3d4e5f60718
    max_lifetime: 8h
projects:
  - repos: ["o/*"]
    profiles: [large]
`

func TestProfileRegionsCarryTheirOwnIDs(t *testing.T) {
	s, err := ParseServer([]byte(twoRegions), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Profiles["large"]
	if !slices.Equal(p.Regions, []string{"us-east-1", "eu-west-1"}) {
		t.Fatalf("regions = %v, want the config's order", p.Regions)
	}
	if got := p.In("eu-west-1"); got.LaunchTemplateID != "lt-0fedcba9876543210" || got.SubnetID != "subnet-0a1b2c3d4e5f60718" {
		t.Errorf("eu-west-1 ids = %+v", got)
	}
	if got := p.In("us-east-1"); got.SecurityGroupIDs[0] != "sg-0123456789abcdef0" || got.SubnetID != "" {
		t.Errorf("us-east-1 ids = %+v", got)
	}
	project, _ := s.ProjectFor("o/r")
	repo, err := s.ParseRepo([]byte("machines:\n  m: {image: ami-0123456789abcdef0, region: eu-west-1, instance_type: t3.large}\n"), project)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := s.Resolve(project, repo, commands.Command{Kind: commands.KindLaunch})
	if err != nil {
		t.Fatal(err)
	}
	if spec.LaunchTemplateID != "lt-0fedcba9876543210" || spec.SecurityGroupIDs[0] != "sg-0fedcba9876543210" || spec.SubnetID != "subnet-0a1b2c3d4e5f60718" {
		t.Errorf("a launch in eu-west-1 got %+v, not eu-west-1's ids", spec)
	}
}

func TestOneRegionProfileKeepsItsIDsBesideRegions(t *testing.T) {
	s, err := ParseServer([]byte(`
profiles:
  small:
    launch_template_id: lt-0123456789abcdef0
    security_group_ids: [sg-0123456789abcdef0]
    instance_types: [t3.small]
    regions: [us-east-1]
    max_lifetime: 8h
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Profiles["small"].In("us-east-1"); got.LaunchTemplateID != "lt-0123456789abcdef0" || len(got.SecurityGroupIDs) != 1 {
		t.Errorf("ids = %+v", got)
	}
}

func TestRegionalIDsMustBeGivenPerRegion(t *testing.T) {
	for name, tt := range map[string]struct{ yaml, want string }{
		"beside two regions": {`
profiles:
  large:
    launch_template_id: lt-0123456789abcdef0
    instance_types: [t3.large]
    regions: [us-east-1, eu-west-1]
    max_lifetime: 8h
`, "profiles.large: launch_template_id, security_group_ids and subnet_id are regional and this profile has 2 regions"},
		"one region without": {`
profiles:
  large:
    instance_types: [t3.large]
    regions:
      us-east-1: {launch_template_id: lt-0123456789abcdef0}
      eu-west-1: {}
    max_lifetime: 8h
`, "profiles.large.regions.eu-west-1.launch_template_id: not set, while us-east-1 has one"},
		"both forms": {`
profiles:
  large:
    security_group_ids: [sg-0123456789abcdef0]
    instance_types: [t3.large]
    regions: {us-east-1: {}}
    max_lifetime: 8h
`, "profiles.large: launch_template_id, security_group_ids and subnet_id go under each region"},
		"neither list nor mapping": {`
profiles:
  large: {instance_types: [t3.large], regions: us-east-1, max_lifetime: 8h}
`, "profiles.large: line 3: regions: give a list of regions, or a mapping"},
	} {
		t.Run(name, func(t *testing.T) {
			problems := serverProblems(t, tt.yaml)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, tt.want) }) {
				t.Errorf("no problem starts with %q:\n%v", tt.want, problems)
			}
		})
	}
}

// CheckRepo parses the file once however many problems it has: the
// annotations' lines come from the same parsed document.
func TestCheckRepoParsesOnce(t *testing.T) {
	s := exampleServer(t, nil)
	project, _ := s.ProjectFor("packit/ogr")
	var b strings.Builder
	b.WriteString("machines:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  m%04d: {region: mars-1, instance_type: t3.small, image: ami-0123456789abcdef0}\n", i)
	}
	b.WriteString("pasued: true\n")
	before := Parses()
	problems, lines, more := s.CheckRepo([]byte(b.String()), project, 100)
	if got := Parses() - before; got != 1 {
		t.Errorf("%d parses, want 1", got)
	}
	if len(problems) != 100 || len(lines) != 100 || more != 902 {
		t.Fatalf("%d problems, %d lines, %d more", len(problems), len(lines), more)
	}
	if problems[0] != "line 1002: unknown key `pasued`" {
		t.Errorf("first problem %q", problems[0])
	}
	for i, p := range problems {
		if lines[i] < 1 {
			t.Errorf("%q has no line", p)
		}
	}
	if lines[2] != 2 || !strings.Contains(problems[2], "machines.m0000.region") {
		t.Errorf("third problem %q on line %d, want the first machine's line 2", problems[2], lines[2])
	}
}

func TestRedisSentinelSettings(t *testing.T) {
	s, err := ParseServer(nil, map[string]string{"REDIS_SENTINEL_ADDRS": "10.0.0.1:26379, 10.0.0.2:26379", "REDIS_SENTINEL_MASTER": "mymaster", "REDIS_SENTINEL_PASSWORD": "hush"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.RedisSentinel.Addrs, []string{"10.0.0.1:26379", "10.0.0.2:26379"}) || s.RedisSentinel.Master != "mymaster" || s.RedisSentinel.Password.Reveal() != "hush" {
		t.Errorf("sentinel settings %+v", s.RedisSentinel)
	}
	if s.RedisConfirm.N() != 1 || s.RedisConfirm.Timeout.D() != 500*time.Millisecond {
		t.Errorf("with Sentinel, confirm defaults to 1 replica in 500ms: %d %s", s.RedisConfirm.N(), s.RedisConfirm.Timeout)
	}
	if s, _ := ParseServer(nil, nil); s.RedisConfirm.N() != 0 {
		t.Errorf("without Sentinel, no WAIT by default: %d", s.RedisConfirm.N())
	}
	problems := serverProblems(t, "redis_confirm: {replicas: 40, timeout: 1ms}\n")
	for _, want := range []string{"redis_confirm.replicas: 40 is not between 0 and 16", "redis_confirm.timeout: 1ms is not between 10ms and 10s"} {
		if !slices.Contains(problems, want) {
			t.Errorf("no problem %q:\n%v", want, problems)
		}
	}
	for env, want := range map[string]string{
		"10.0.0.1":       `REDIS_SENTINEL_ADDRS: "10.0.0.1" is not host:port`,
		"10.0.0.1:26379": "REDIS_SENTINEL_MASTER: name the primary",
	} {
		_, err := ParseServer(nil, map[string]string{"REDIS_SENTINEL_ADDRS": env})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("REDIS_SENTINEL_ADDRS=%s: %v, want %q", env, err, want)
		}
	}
}

// Aliases of aliases (a "billion laughs") are refused by the decoder, and
// the unknown-key walk does not follow aliases at all.
func TestRepoConfigAliasBombIsCheap(t *testing.T) {
	s := exampleServer(t, nil)
	project, _ := s.ProjectFor("packit/ogr")
	var b strings.Builder
	b.WriteString("a0: &a0 {x: 1}\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("machines: *a12\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if problems, _, _ := s.CheckRepo([]byte(b.String()), project, 10); len(problems) == 0 {
			t.Error("an alias bomb was accepted")
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("checking an alias bomb did not finish in 30 s: it expands 10^12 nodes")
	}
}
