// Package config holds the server config (operator policy and settings), the
// repo config (.packit-launch.yaml) and the pure decision that turns a
// command into a launch spec or a refusal. It does no I/O beyond parsing
// bytes it is given.
package config

import (
	"fmt"
	"log/slog"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/packit/packit-launch/commands"
)

// Duration is a time.Duration written as 90m, 2h or 1d in YAML.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := commands.ParseLifetime(n.Value)
	if err != nil {
		return ownTypeError(n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// jsonSchema admits what ParseLifetime may accept: a whole number of days,
// or a Go duration, with no minus sign. It is looser than ParseLifetime (0h
// passes), never stricter: a test holds it to that.
func (Duration) jsonSchema() *jsonSchema {
	return &jsonSchema{
		Type:     "string",
		Pattern:  `^\+?([0-9]+d|([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+)$`,
		Examples: []string{"90m", "2h", "1d"},
	}
}

// ownMark starts the decoder errors the config's own types return, whose
// text is already what people read (ParseLifetime renders the value with
// mdsafe): decodeProblems passes them on as they are.
const ownMark = "\uE000"

// ownTypeError refuses a value as the decoder's own errors do, so that it
// goes on to report the rest of the file.
func ownTypeError(line int, err error) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("%sline %d: %v", ownMark, line, err)}}
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String writes the duration as people type it (8h, 90m).
func (d Duration) String() string { return commands.FormatDuration(time.Duration(d)) }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Secret is a setting that must never be printed: fmt, slog and YAML all see
// a placeholder. Reveal returns the value.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}
func (s Secret) GoString() string          { return s.String() }
func (s Secret) LogValue() slog.Value      { return slog.StringValue(s.String()) }
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }
func (s Secret) Reveal() string            { return string(s) }
