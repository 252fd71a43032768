package config

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseRepo: whatever a repository commits as .packit-launch.yaml, the
// parser never panics, lists problems without raw user text breaking out,
// and never accepts what it would reject once written back and read again.
func FuzzParseRepo(f *testing.F) {
	example, err := os.ReadFile("../examples/.packit-launch.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{string(example), "", "machines: {}", "machines:\n  a:\n    image: {from: packit, target: x}\n",
		"default: x\nmachines:\n  x:\n    image: ami-0123456789abcdef0\n    region: us-east-1\n    instance_type: t3.small\n",
		"access:\n  users: ['@carol']\n", "machines:\n  \"`@x`\":\n    image: \"![i](https://e.example/p.png)\"\n", "- a\n- b\n", "machines: [1, 2]"} {
		f.Add([]byte(seed))
	}
	serverYAML, err := os.ReadFile("../examples/packit-launch.yaml")
	if err != nil {
		f.Fatal(err)
	}
	s, err := ParseServer(serverYAML, nil)
	if err != nil {
		f.Fatal(err)
	}
	project, ok := s.ProjectFor("packit/ogr")
	if !ok {
		f.Fatal("the example config does not trust packit/ogr")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		repo, err := s.ParseRepo(data, project)
		if err != nil {
			if problems, ok := err.(Problems); ok {
				for _, p := range problems {
					if strings.Contains(p, "\n") {
						t.Fatalf("a problem spans lines: %q", p)
					}
				}
			}
			return
		}
		// Accepted: written back and read again, it is accepted as the same.
		again, err := yaml.Marshal(repo)
		if err != nil {
			t.Fatalf("marshal an accepted config: %v", err)
		}
		repo2, err := s.ParseRepo(again, project)
		if err != nil {
			t.Fatalf("accepted %q, but rejected it written back as %q: %v", data, again, err)
		}
		if again2, err := yaml.Marshal(repo2); err != nil || string(again2) != string(again) {
			t.Fatalf("%q read back differently:\n%s\n%s", data, again, again2)
		}
	})
}
