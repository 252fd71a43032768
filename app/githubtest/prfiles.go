package githubtest

import (
	"fmt"
	"net/http"
)

// PullFile is a file a pull request changes, as GET .../pulls/{n}/files lists it.
type PullFile struct {
	Filename         string
	Status           string // added, removed, modified, renamed, copied, changed, unchanged
	PreviousFilename string // for renamed
}

// maxPullFiles is how many files GitHub lists for a pull request at most.
const maxPullFiles = 3000

// SetPullFiles sets the files pull request number changes.
func (s *Server) SetPullFiles(repo string, number int, files ...PullFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.repo(repo)
	if _, ok := rs.pulls[number]; !ok {
		panic(fmt.Sprintf("githubtest: SetPullFiles: %s has no pull request #%d", repo, number))
	}
	if rs.pullFiles == nil {
		rs.pullFiles = map[int][]PullFile{}
	}
	rs.pullFiles[number] = append([]PullFile(nil), files...)
}

func (s *Server) listPullFiles(w http.ResponseWriter, r *http.Request) {
	rs, n, _, ok := s.lockPull(w, r)
	if !ok {
		return
	}
	files := rs.pullFiles[n]
	files = files[:min(len(files), maxPullFiles)]
	out := make([]map[string]any, 0, len(files))
	for _, f := range files {
		m := map[string]any{"sha": fmt.Sprintf("%040x", len(out)+1), "filename": f.Filename, "status": f.Status,
			"additions": 1, "deletions": 0, "changes": 1,
			"blob_url": fmt.Sprintf("https://github.com/%s/blob/HEAD/%s", rs.fullName, f.Filename)}
		if f.PreviousFilename != "" {
			m["previous_filename"] = f.PreviousFilename
		}
		out = append(out, m)
	}
	s.mu.Unlock()
	lo, hi := paginate(w, r, len(out))
	writeJSON(w, http.StatusOK, out[lo:hi])
}
