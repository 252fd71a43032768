package launchapitest

import (
	"net/http"
	"strings"
)

// Fault changes how the fake answers matching requests. With only Hook set
// the request is served normally after the hook runs.
type Fault struct {
	Method string // "" matches any method
	Path   string // API path without APIPrefix, e.g. "/reservations/aws"; "" matches any; a trailing * matches a prefix
	Times  int    // how many matching requests it applies to; 0 means 1, negative means all

	Status      int    // answer with this status (500 when only Body or AfterHandling is set)
	Body        string // and this body
	ContentType string // default application/json
	Header      http.Header

	// AfterHandling serves the request first (a create really happens) and
	// then answers with Status/Body or resets the connection instead.
	AfterHandling bool
	// Reset closes the connection without an answer.
	Reset bool
	// Hang never answers (after serving, with AfterHandling); the request
	// ends when the client gives up or the fake is closed.
	Hang bool
	// Hook runs before the request is served, e.g. to create a competing
	// pubkey for a race.
	Hook func()
}

type faultState struct {
	Fault
	left int // negative: unlimited
}

// InjectFault adds a fault. Faults match in the order they were added.
func (f *Fake) InjectFault(ft Fault) {
	left := ft.Times
	if left == 0 {
		left = 1
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &faultState{Fault: ft, left: left})
}

// ClearFaults removes all injected faults.
func (f *Fake) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

func (f *Fake) takeFaultLocked(method, path string) *Fault {
	for i, ft := range f.faults {
		if (ft.Method != "" && ft.Method != method) || !pathMatches(ft.Path, path) {
			continue
		}
		if ft.left > 0 {
			ft.left--
			if ft.left == 0 {
				f.faults = append(f.faults[:i:i], f.faults[i+1:]...)
			}
		}
		out := ft.Fault
		return &out
	}
	return nil
}

func pathMatches(pattern, path string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	return pattern == "" || pattern == path
}
