package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEveryCommandAnswersHelp(t *testing.T) {
	inDir(t)
	for _, args := range [][]string{
		{"serve"}, {"worker"}, {"config"}, {"config", "validate"}, {"config", "schema"},
		{"vms"}, {"vms", "list"}, {"vms", "terminate"}, {"aws"}, {"aws", "bootstrap"}, {"demo"},
	} {
		for _, help := range []string{"--help", "-h"} {
			code, out, errs := runCmd(append(args, help)...)
			name := strings.Join(args, " ")
			if code != 0 || !strings.HasPrefix(out, "Usage:\n  packit-launch "+name) || errs != "" {
				t.Errorf("%s %s: code %d\n%s%s", name, help, code, out, errs)
			}
		}
	}
	_, out, _ := runCmd("config", "validate", "--help")
	for _, flag := range []string{"-repo", "-for", "-online", "-config"} {
		if !strings.Contains(out, flag) {
			t.Errorf("config validate --help does not list %s:\n%s", flag, out)
		}
	}
	if code, _, errs := runCmd("config", "validate", "--frobnicate"); code != exitUsage || !strings.Contains(errs, "see packit-launch config validate --help") {
		t.Errorf("an unknown flag: code %d\n%s", code, errs)
	}
}

func TestValidateSaysNothingTrustedFirst(t *testing.T) {
	dir := inDir(t)
	for name, data := range map[string]string{
		"empty":         "",
		"with problems": "pasued: true\nprofiles: {p: {instance_types: [t3.smal], regions: [us-east-1], max_lifetime: 8h}}\n",
	} {
		file := filepath.Join(dir, "c.yaml")
		os.WriteFile(file, []byte(data), 0o600)
		code, out, errs := runCmd("config", "validate", "--config", file)
		if code != exitUsage || !strings.HasPrefix(errs, "packit-launch: nothing trusted:") || strings.Contains(out, "ok") {
			t.Errorf("%s: code %d\n%s%s", name, code, out, errs)
		}
		if name == "with problems" && (!strings.Contains(errs, "pasued (line 1): unknown setting; did you mean paused?") || !strings.Contains(errs, `"t3.smal" is not an EC2 instance type`)) {
			t.Errorf("the other problems are not listed after it:\n%s", errs)
		}
	}
}

func TestValidateRepoNeedsFor(t *testing.T) {
	examples, _ := filepath.Abs("../../examples")
	inDir(t)
	cfg := filepath.Join(examples, "packit-launch.yaml")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--repo", filepath.Join(examples, ".packit-launch.yaml")}, "--repo needs --for OWNER/NAME"},
		{[]string{"--for", "packit/ogr"}, "--for needs --repo FILE"},
		{[]string{"--repo", filepath.Join(examples, ".packit-launch.yaml"), "--for", "someone/else"}, "--for someone/else: no project of this config trusts that repository"},
	} {
		code, _, errs := runCmd(append([]string{"config", "validate", "--config", cfg}, tt.args...)...)
		if code != exitUsage || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: code %d, want %q in\n%s", tt.args, code, tt.want, errs)
		}
	}
}

// vms and aws bootstrap word a missing credential as serve does, as a
// sentence on stderr, not as the SDK's error in a log line.
func TestOperatorCommandsWithoutCredentials(t *testing.T) {
	examples, _ := filepath.Abs("../../examples")
	inDir(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
	cfg := filepath.Join(examples, "packit-launch.yaml")
	for _, args := range [][]string{{"vms", "list"}, {"vms", "terminate", "--all"}, {"aws", "bootstrap", "--profile", "small"}} {
		code, out, errs := runCmd(append(args, "--config", cfg)...)
		if code != exitUsage || !strings.HasPrefix(errs, "packit-launch: no AWS credentials found: set AWS_ACCESS_KEY_ID") || strings.Contains(errs, "level=") || out != "" {
			t.Errorf("%v: code %d\n%s%s", args, code, out, errs)
		}
	}
	if code, _, errs := runCmd("aws", "bootstrap", "--profile", "huge", "--config", cfg); code != exitUsage || !strings.Contains(errs, `--profile "huge": no such profile in the config (profiles: large, small)`) {
		t.Errorf("an unknown profile: code %d\n%s", code, errs)
	}
}
