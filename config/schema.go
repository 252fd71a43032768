package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RepoSchemaURL is where the committed schema is served, for editors.
const RepoSchemaURL = "https://raw.githubusercontent.com/packit/packit-launch/main/schema/packit-launch.schema.json"

// RepoSchema returns the JSON Schema (draft 2020-12) of .packit-launch.yaml,
// indented, as schema/packit-launch.schema.json holds it.
//
// Its structure (keys, their types, no unknown keys) is reflected from the
// types ParseRepo decodes into, so the two cannot drift; what the parser
// checks beyond that (required fields, name patterns) and the descriptions
// come from each type's schemaDoc. Policy (profiles, regions, instance
// types, lifetimes) is the server's and not in the schema.
func RepoSchema() ([]byte, error) {
	s, err := reflectSchema(reflect.TypeFor[Repo](), "")
	if err != nil {
		return nil, fmt.Errorf("repo config schema: %w", err)
	}
	s.Schema = "https://json-schema.org/draft/2020-12/schema"
	s.ID = RepoSchemaURL
	s.Title = RepoConfigPath
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep <target> in descriptions readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("repo config schema: %w", err)
	}
	return b.Bytes(), nil
}

// jsonSchema is the part of JSON Schema the repo config needs.
type jsonSchema struct {
	Schema      string `json:"$schema,omitempty"`
	ID          string `json:"$id,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Type is a type name, or names when the value may also be null.
	Type                 any                    `json:"type,omitempty"`
	Const                string                 `json:"const,omitempty"`
	Enum                 []string               `json:"enum,omitempty"`
	Pattern              string                 `json:"pattern,omitempty"`
	MinLength            int                    `json:"minLength,omitempty"`
	Items                *jsonSchema            `json:"items,omitempty"`
	Properties           map[string]*jsonSchema `json:"properties,omitempty"`
	Required             []string               `json:"required,omitempty"`
	PropertyNames        *jsonSchema            `json:"propertyNames,omitempty"`
	MinProperties        int                    `json:"minProperties,omitempty"`
	AdditionalProperties any                    `json:"additionalProperties,omitempty"` // false, or every value's schema
	OneOf                []*jsonSchema          `json:"oneOf,omitempty"`
	Not                  *jsonSchema            `json:"not,omitempty"`
	If                   *jsonSchema            `json:"if,omitempty"`
	Then                 *jsonSchema            `json:"then,omitempty"`
	Examples             []string               `json:"examples,omitempty"`
}

// selfSchema is implemented by the types that read themselves from YAML
// (an UnmarshalYAML): reflection cannot see their written form.
type selfSchema interface{ jsonSchema() *jsonSchema }

// documented is implemented by the config's structs: descriptions, and what
// the parser checks beyond the types, laid over the reflected schema. Its
// Properties may only name fields the struct has.
type documented interface{ schemaDoc() *jsonSchema }

var (
	selfSchemaType  = reflect.TypeFor[selfSchema]()
	documentedType  = reflect.TypeFor[documented]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// reflectSchema describes what the YAML decoder accepts for a value of type
// t; at is its path, for errors.
func reflectSchema(t reflect.Type, at string) (*jsonSchema, error) {
	if t.Implements(selfSchemaType) {
		return reflect.Zero(t).Interface().(selfSchema).jsonSchema(), nil
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil, fmt.Errorf("%s: %s reads itself from YAML: describe it with a jsonSchema method", at, t)
	}
	switch t.Kind() {
	case reflect.String:
		return &jsonSchema{Type: "string"}, nil
	case reflect.Bool:
		return &jsonSchema{Type: "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &jsonSchema{Type: "integer"}, nil
	case reflect.Slice:
		items, err := reflectSchema(t.Elem(), at+"[]")
		if err != nil {
			return nil, err
		}
		return &jsonSchema{Type: "array", Items: items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: %s: map keys must be strings", at, t)
		}
		values, err := reflectSchema(t.Elem(), at+".*")
		if err != nil {
			return nil, err
		}
		return &jsonSchema{Type: "object", AdditionalProperties: values}, nil
	case reflect.Struct:
		return reflectStruct(t, at)
	}
	return nil, fmt.Errorf("%s: %s: no JSON Schema for a %s", at, t, t.Kind())
}

// reflectStruct describes a struct as the decoder reads it: its fields by
// their yaml names and no other keys, since ParseRepo decodes with
// KnownFields. A field the doc does not require may also be null, which
// the decoder reads as the zero value.
func reflectStruct(t reflect.Type, at string) (*jsonSchema, error) {
	s := &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{}, AdditionalProperties: false}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" || strings.Contains(opts, "inline") {
			return nil, fmt.Errorf("%s: %s.%s: give it a yaml name", at, t, f.Name)
		}
		p, err := reflectSchema(f.Type, join(at, name))
		if err != nil {
			return nil, err
		}
		s.Properties[name] = p
	}
	if !t.Implements(documentedType) {
		return nil, fmt.Errorf("%s: %s has no schemaDoc", at, t)
	}
	if err := overlay(s, reflect.Zero(t).Interface().(documented).schemaDoc(), at); err != nil {
		return nil, err
	}
	for name, p := range s.Properties {
		if slices.Contains(s.Required, name) {
			continue
		}
		typ, ok := p.Type.(string)
		if !ok {
			return nil, fmt.Errorf("%s: an optional field needs one type, to add null to", join(at, name))
		}
		p.Type = []string{typ, "null"}
	}
	return s, nil
}

// overlay lays doc over the reflected schema s: doc adds descriptions and
// checks, but the structure (types, properties, items, additional
// properties) is the reflection's.
func overlay(s, doc *jsonSchema, at string) error {
	for name, d := range doc.Properties {
		p, ok := s.Properties[name]
		if !ok {
			return fmt.Errorf("%s: the doc describes %q, which is not a field", at, name)
		}
		if err := overlay(p, d, join(at, name)); err != nil {
			return err
		}
	}
	if doc.Items != nil {
		if s.Items == nil {
			return fmt.Errorf("%s: the doc describes items of what is not a list", at)
		}
		if err := overlay(s.Items, doc.Items, at+"[]"); err != nil {
			return err
		}
	}
	for _, name := range doc.Required {
		if _, ok := s.Properties[name]; !ok {
			return fmt.Errorf("%s: the doc requires %q, which is not a field", at, name)
		}
	}
	sv, dv := reflect.ValueOf(s).Elem(), reflect.ValueOf(doc).Elem()
	for i := range dv.NumField() {
		field := dv.Type().Field(i).Name
		switch {
		case field == "Properties" || field == "Items" || dv.Field(i).IsZero():
		case field == "Type" || field == "AdditionalProperties" || field == "OneOf":
			return fmt.Errorf("%s: the doc sets %s, which reflection decides", at, field)
		case !sv.Field(i).IsZero():
			return fmt.Errorf("%s: the doc sets %s, which the type's own schema sets", at, field)
		default:
			sv.Field(i).Set(dv.Field(i))
		}
	}
	return nil
}

func join(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}
