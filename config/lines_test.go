package config

import "testing"

func TestProblemLine(t *testing.T) {
	data := []byte("default: fedora\naccess:\n  users: [alice, \"@bob\"]\nmachines:\n  fedora.39:\n    image: ami-1\n    region: mars-1\n")
	for problem, want := range map[string]int{
		"line 5: something": 5,
		"`machines.fedora.39.region`: mars-1 is not allowed": 7,
		"`machines.fedora.39`: a machine name is …":          5,
		"`access.users[1]`: not a login":                     3,
		"`default`: no machine named x":                      1,
		"`machines.nope.region`: …":                          4,
		"the file is empty":                                  0,
	} {
		if got := ProblemLine(data, problem); got != want {
			t.Errorf("%q: line %d, want %d", problem, got, want)
		}
	}
}
