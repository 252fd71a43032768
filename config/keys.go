package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// unknownKeys calls found for every key of the document that t has no
// field for, with its path and the nearest known key (or ""). The
// decoder's own check stops at the first and names Go types; this one lets
// every other check run too.
func unknownKeys(n *yaml.Node, t reflect.Type, at string, found func(path string, key *yaml.Node, nearest string)) {
	unknownKeysDepth(n, t, at, found, 0)
}

// serverKey words an unknown key of the server config.
func serverKey(problems *Problems) func(string, *yaml.Node, string) {
	return func(path string, key *yaml.Node, nearest string) {
		problems.add("%s (line %d): unknown setting%s", path, key.Line, didYouMeanKey(nearest, "%s"))
	}
}

func didYouMeanKey(nearest, format string) string {
	if nearest == "" {
		return ""
	}
	return "; did you mean " + fmt.Sprintf(format, nearest) + "?"
}

func unknownKeysDepth(n *yaml.Node, t reflect.Type, at string, found func(string, *yaml.Node, string), depth int) {
	if n == nil || depth > 32 {
		return
	}
	// An alias is not followed: its anchor's keys are reported where the
	// anchor is, and following aliases of aliases costs exponential time
	// in a file anyone who opens a PR writes.
	if n.Kind == yaml.AliasNode {
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[Profile]() && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		fields["regions"] = reflect.TypeFor[map[string]RegionIDs]()
		mappingKeys(n, fields, at, found, depth)
	case reflect.PointerTo(t).Implements(unmarshalerType):
		// It reads its own keys (Image), or none (Duration).
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		mappingKeys(n, yamlFields(t), at, found, depth)
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			unknownKeysDepth(n.Content[i+1], t.Elem(), join(at, n.Content[i].Value), found, depth+1)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			unknownKeysDepth(item, t.Elem(), fmt.Sprintf("%s[%d]", at, i), found, depth+1)
		}
	}
}

func mappingKeys(n *yaml.Node, fields map[string]reflect.Type, at string, found func(string, *yaml.Node, string), depth int) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i]
		ft, ok := fields[key.Value]
		if !ok {
			found(join(at, key.Value), key, nearest(key.Value, sortedKeys(fields)))
			continue
		}
		unknownKeysDepth(n.Content[i+1], ft, join(at, key.Value), found, depth+1)
	}
}

// yamlFields maps a struct's YAML keys to their types, inline structs included.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
		case opts == "inline":
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
		case f.IsExported():
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = f.Type
		}
	}
	return fields
}
