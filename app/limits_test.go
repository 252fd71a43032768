package app

import (
	"fmt"
	"strings"
	"testing"

	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/mdsafe/mdsafetest"
)

// Cutting an over-long answer anywhere must not undo the escaping of what
// was cut: a half code span or an open fence would let the rest render.
func TestFitNeverUndoesEscaping(t *testing.T) {
	var oneLine, lines strings.Builder
	oneLine.WriteString("Machines here: ")
	for i := range 40 {
		hostile := mdsafetest.Hostile[i%len(mdsafetest.Hostile)]
		fmt.Fprintf(&oneLine, "%s, ", mdsafe.Code("@victim "+hostile))
		fmt.Fprintf(&lines, "- %s: %s\n", mdsafe.Code(fmt.Sprintf("machines.m%d", i)), mdsafe.Code("@carol`x"+hostile))
	}
	block := "Failure:\n\n" + mdsafe.Block(strings.Repeat("@carol ![x](https://evil.example/p.png)\n", 40), 4000) + "\nafter"
	for name, text := range map[string]string{"one line": oneLine.String(), "lines": lines.String(), "block": block} {
		for max := 200; max < len(text); max += 7 {
			got, cut := fit(text, max, cutNote)
			if !cut || len(got) > max {
				t.Fatalf("%s at %d: %d bytes, cut %v", name, max, len(got), cut)
			}
			if err := mdsafetest.Check(got, ""); err != nil {
				t.Fatalf("%s cut at %d: %v\n%s", name, max, err, got)
			}
		}
	}
	if got, cut := fit("short", 100, cutNote); cut || got != "short" {
		t.Errorf("fit of a short text: %q %v", got, cut)
	}
}
