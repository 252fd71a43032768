package config

import (
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	problemLineRE = regexp.MustCompile(`^line (\d+):`)
	problemPathRE = regexp.MustCompile("^`([^`]+)`")
)

// problemLine is the line of a repo config that a problem (one checkRepo
// reported) is about, or 0 when it is about the file as a whole: the line
// the decoder named, or where the problem's path (`machines.NAME.field`,
// `access.users[2]`) is in the parsed document (nil: only the line the
// problem names, if any).
func problemLine(doc *yaml.Node, problem string) int {
	if m := problemLineRE.FindStringSubmatch(problem); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	m := problemPathRE.FindStringSubmatch(problem)
	if m == nil || doc == nil || len(doc.Content) == 0 {
		return 0
	}
	return lineOf(doc.Content[0], m[1], 0)
}

// lineOf walks path from node, whose key is on line at: a key may itself
// hold dots (machine names may), so the longest key that prefixes the path
// is taken; a part not found points at its parent's key.
func lineOf(node *yaml.Node, path string, at int) int {
	if path == "" {
		return node.Line
	}
	if strings.HasPrefix(path, "[") && node.Kind == yaml.SequenceNode {
		end := strings.Index(path, "]")
		i, err := strconv.Atoi(path[1:max(end, 1)])
		if end < 0 || err != nil || i < 0 || i >= len(node.Content) {
			return max(at, node.Line)
		}
		return lineOf(node.Content[i], strings.TrimPrefix(path[end+1:], "."), node.Content[i].Line)
	}
	if node.Kind != yaml.MappingNode {
		return max(at, node.Line)
	}
	best := -1
	for i := 0; i+1 < len(node.Content); i += 2 {
		key := node.Content[i].Value
		rest, ok := strings.CutPrefix(path, key)
		if ok && (rest == "" || rest[0] == '.' || rest[0] == '[') && (best < 0 || len(key) > len(node.Content[best].Value)) {
			best = i
		}
	}
	if best < 0 {
		return max(at, 1)
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(path, node.Content[best].Value), ".")
	if rest == "" {
		return node.Content[best].Line
	}
	return lineOf(node.Content[best+1], rest, node.Content[best].Line)
}
