//go:build demo

package main

import (
	"strings"
	"testing"
)

// The demo is the whole binary's wiring (serve's, with AWS pointed at moto)
// playing /launch, status and stop against the fakes.
func TestDemoPlaysAWholeConversation(t *testing.T) {
	inDir(t)
	code, out, errs := runCmd("demo")
	if code != 0 {
		t.Fatalf("demo exit code %d\n%s\n%s", code, out, errs)
	}
	// The first scene is Packit's: /launch waits for the build, then launches its image.
	for _, want := range []string{"when Packit's build `vm-image-build:fedora-39-x86_64`", "Packit finishes its build", "Packit's build `vm-image-build:fedora-39-x86_64` of `c0ffeec`",
		"your VM is ready", "-o StrictHostKeyChecking=yes fedora@", "the VM presented the same key to the bot", "| running |", "`alice` stopped it", "completed neutral", "still running in (moto's) EC2: 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"demo-secret", "PRIVATE KEY"} {
		if strings.Contains(out+errs, secret) {
			t.Errorf("demo output shows a secret (%q)", secret)
		}
	}
}
