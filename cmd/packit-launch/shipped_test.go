//go:build demo

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The binary operators run links no embedded store: without REDIS_URL it
// says what to set and stops as for any bad setup, and config validate
// lists REDIS_URL among the settings not set.
func TestShippedBinaryNeedsRedisURL(t *testing.T) {
	bin := buildBinary(t)
	config, err := filepath.Abs("../../examples/packit-launch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_EC2_METADATA_DISABLED=true", "LISTEN_ADDR=127.0.0.1:0"}
	serve := exec.Command(bin, "serve", "--config", config)
	serve.Env, serve.Dir = env, t.TempDir()
	out, err := serve.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitUsage {
		t.Fatalf("serve without REDIS_URL: %v, want exit code %d\n%s", err, exitUsage, out)
	}
	for _, want := range []string{`"setting":"REDIS_URL"`, "REDIS_URL is not set: set it to your Redis"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("serve's output lacks %q:\n%s", want, out)
		}
	}
	validate := exec.Command(bin, "config", "validate", "--config", config)
	validate.Env, validate.Dir = env, t.TempDir()
	out, _ = validate.CombinedOutput()
	if !strings.Contains(string(out), "not set: REDIS_URL: your Redis") {
		t.Errorf("config validate does not list REDIS_URL:\n%s", out)
	}
}
