package app

import (
	"os/exec"
	"strings"
	"testing"
)

// app speaks GitHub; the lifecycle, the Launch service and AWS are
// provision's: app reaches them only through provision's API.
func TestAppImportsNeitherLaunchAPINorEC2(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.HasPrefix(imp, "github.com/packit/packit-launch/provision/") {
			t.Errorf("app imports %s", imp)
		}
	}
}
