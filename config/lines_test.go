package config

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestProblemLine(t *testing.T) {
	data := []byte("default: fedora\naccess:\n  users: [alice, \"@bob\"]\nmachines:\n  fedora.39:\n    image: ami-1\n    region: mars-1\n")
	// The document as checkRepo parses it, which CheckRepo finds lines in.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for problem, want := range map[string]int{
		"line 5: something": 5,
		"`machines.fedora.39.region`: mars-1 is not allowed": 7,
		"`machines.fedora.39`: a machine name is …":          5,
		"`access.users[1]`: not a login":                     3,
		"`default`: no machine named x":                      1,
		"`machines.nope.region`: …":                          4,
		"the file is empty":                                  0,
	} {
		if got := problemLine(&doc, problem); got != want {
			t.Errorf("%q: line %d, want %d", problem, got, want)
		}
	}
	// A file that is not YAML has no document: only a line the decoder named.
	if got := problemLine(nil, "line 3: mapping values are not allowed"); got != 3 {
		t.Errorf("no document, decoder's line: %d, want 3", got)
	}
	if got := problemLine(nil, "`default`: no machine named x"); got != 0 {
		t.Errorf("no document, a path: %d, want 0", got)
	}
}
