//go:build demo

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
)

// config validate --online asks the real peers (here the demo's world)
// whether the settings work, and says what to fix when they do not.
func TestConfigValidateOnline(t *testing.T) {
	dir := inDir(t)
	world, stop, err := startDemoWorld(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	file := filepath.Join(dir, "packit-launch.yaml")
	if err := os.WriteFile(file, world.serverYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range world.env {
		t.Setenv(k, v)
	}
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": world.moto, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"} {
		t.Setenv(k, v)
	}

	code, out, errs := runCmd("config", "validate", "--config", file, "--online")
	if code != 0 || strings.Count(out, "✓ ") != 5 || strings.Contains(out, "✗") {
		t.Fatalf("a working setup: code %d\n%s%s", code, out, errs)
	}
	// moto does not enforce IAM: its answers are those of an all-powerful
	// credential, which holds the bootstrap permissions too.
	for _, want := range []string{`GitHub App "packit-launch"`, "AWS us-east-1", "Launch source " + world.source.ID,
		"✓ AWS us-east-1: the bot may create its per-launch templates",
		"✓ AWS us-east-1: profile demo's ids exist",
		"⚠ AWS us-east-1: bootstrap permissions present (ec2:AuthorizeSecurityGroupIngress, ec2:CreateSecurityGroup, ec2:DeleteLaunchTemplate on a base template): the bot should not run with these"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// An App created without the checks permission and the check_run event,
	// and a source in another AWS account.
	world.gh.SetAppSettings(map[string]string{"issues": "write", "pull_requests": "write", "contents": "read", "metadata": "read"}, "issue_comment", "pull_request")
	other := world.launch.AddSource("org-demo", launchapitest.Source{Name: "elsewhere", AccountID: "999999999999"})
	t.Setenv("LAUNCH_SOURCE_ID", other.ID)
	code, out, _ = runCmd("config", "validate", "--config", file, "--online")
	if code != exitUsage {
		t.Errorf("a broken setup: code %d, want %d", code, exitUsage)
	}
	for _, want := range []string{"✗ GitHub App", `permission checks is "", needs "write"`, "check_run event", "✗ Launch source", "999999999999"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "demo-secret") || strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("output shows a secret:\n%s", out)
	}

	// A Launch service that cannot be reached is not one that refused.
	t.Setenv("LAUNCH_API_URL", "http://127.0.0.1:1/api/provisioning/v1")
	code, out, _ = runCmd("config", "validate", "--config", file, "--online")
	if code != exitUsage || !strings.Contains(out, "✗ Launch source") || !strings.Contains(out, "could not reach 127.0.0.1:1, so LAUNCH_SOURCE_ID "+other.ID+" is not checked (a network problem, not a refusal") ||
		strings.Contains(out, "does not work") {
		t.Errorf("an unreachable Launch service: code %d\n%s", code, out)
	}
}
