// Package commands is the comment grammar of packit-launch: finding a command
// in a comment, parsing it, and the help and usage texts generated from the
// same table that drives parsing. It is pure: no I/O.
package commands

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/packit/packit-launch/mdsafe"
)

// Prefix is the word that starts every command.
const Prefix = "/launch"

// Kind says which command a comment holds.
type Kind string

const (
	KindLaunch Kind = "launch"
	KindStatus Kind = "status"
	KindExtend Kind = "extend"
	KindStop   Kind = "stop"
	KindHelp   Kind = "help"
)

// StopAll is the Target of `/launch stop all`.
const StopAll = "all"

// Command is one parsed command.
type Command struct {
	Kind Kind
	// Machine is the repo config's machine name; empty means its default.
	Machine string
	// Lifetime is --lifetime for launch and the optional step for extend; zero means the default.
	Lifetime     time.Duration
	InstanceType string
	// Key is a fingerprint picking one of the commenter's GitHub keys.
	Key string
	// Image overrides the machine's image: an AMI id, an Image Builder
	// compose UUID, "packit" (the machine's own Packit target) or
	// "packit:TARGET". The config package checks which.
	Image string
	// AnyCommit accepts Packit's newest successful build even if it was
	// built from an older commit of the PR.
	AnyCommit bool
	// Target is what stop acts on: a launch id, StopAll, or empty for the commenter's own.
	Target string
}

// UsageError is a command that does not parse. Its Markdown goes on the PR.
type UsageError struct {
	Kind Kind // the command it was meant to be, or "" when unknown
	// Problem is markdown: any user word in it went through mdsafe.
	Problem string
}

func (e *UsageError) Error() string { return "usage: " + e.Problem }

// Markdown renders the problem and the relevant usage for a PR comment.
func (e *UsageError) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "I could not understand that command: %s\n\n", e.Problem)
	if e.Kind != "" {
		s := specFor(e.Kind)
		b.WriteString("Usage:\n\n")
		writeUsage(&b, s)
		fmt.Fprintf(&b, "*Who:* %s.\n\nSee `/launch help` for all commands.", s.who)
		return b.String()
	}
	b.WriteString(Help())
	return b.String()
}

// MayContain is the cheap test intake runs on a raw webhook body before
// decoding anything: false means the body cannot hold a command.
func MayContain(body []byte) bool {
	// JSON encoders may escape "/" as "\/"; GitHub does not, but be safe.
	return bytes.Contains(body, []byte(Prefix)) || bytes.Contains(body, []byte(`\/launch`))
}

// Find returns the first line of a comment whose first word is exactly
// Prefix, ignoring fenced code blocks, indented code and quoted lines.
func Find(body string) (string, bool) {
	fence := ""
	inHTMLComment := false
	for _, raw := range strings.Split(body, "\n") {
		line := strings.TrimRight(raw, "\r")
		trimmed := strings.TrimLeft(line, " \t")
		if inHTMLComment {
			inHTMLComment = !strings.Contains(line, "-->")
			continue
		}
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if i := strings.Index(trimmed, "<!--"); i >= 0 && !strings.Contains(trimmed[i:], "-->") {
			inHTMLComment = true
			trimmed = trimmed[:i] // the text before the comment still counts
		}
		if f := fenceOf(trimmed); f != "" {
			fence = f
			continue
		}
		if strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t") {
			continue // indented code block
		}
		if strings.HasPrefix(trimmed, ">") {
			continue
		}
		fields := strings.Fields(trimmed)
		if len(fields) > 0 && fields[0] == Prefix {
			return strings.TrimSpace(trimmed), true
		}
	}
	return "", false
}

func fenceOf(line string) string {
	for _, f := range []string{"```", "~~~"} {
		if strings.HasPrefix(line, f) {
			return f
		}
	}
	return ""
}

// Parse parses one command line as returned by Find.
func Parse(line string) (Command, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 || fields[0] != Prefix {
		return Command{}, &UsageError{Problem: fmt.Sprintf("a command starts with `%s`", Prefix)}
	}
	args := fields[1:]
	kind := KindLaunch
	if len(args) > 0 {
		if s, ok := subcommand(strings.ToLower(args[0])); ok {
			kind = s.kind
			args = args[1:]
		}
	}
	s := specFor(kind)
	cmd := Command{Kind: kind}
	positional, err := s.parseFlags(&cmd, args)
	if err != nil {
		return Command{}, &UsageError{Kind: kind, Problem: err.Error()}
	}
	if len(positional) > s.maxArgs {
		extra := positional[s.maxArgs:]
		return Command{}, &UsageError{Kind: kind, Problem: "unexpected " + mdsafe.Code(strings.Join(extra, " "))}
	}
	if err := s.setArgs(&cmd, positional); err != nil {
		return Command{}, &UsageError{Kind: kind, Problem: err.Error()}
	}
	return cmd, nil
}

// FormatDuration writes d the way people type it: 8h, 90m, 1h30m, 2d.
func FormatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.Round(time.Second).String()
	s = strings.Replace(s, "m0s", "m", 1)
	s = strings.Replace(s, "h0m", "h", 1)
	return s
}

// ParseLifetime parses a duration such as 90m, 2h, 1h30m or 1d.
func ParseLifetime(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, errors.New(mdsafe.Code(s) + " is not a duration like `90m`, `2h` or `1d`")
	}
	return d, nil
}

// parseFlags parses flags anywhere among args and returns the positional
// arguments. Go's flag package stops at the first positional, so it is
// called again on what follows it.
func (s spec) parseFlags(cmd *Command, args []string) ([]string, error) {
	fs := flag.NewFlagSet(string(s.kind), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range s.flags {
		if f.boolean {
			fs.BoolFunc(f.name, f.help, func(v string) error { return f.set(cmd, v) })
			continue
		}
		fs.Func(f.name, f.help, func(v string) error { return f.set(cmd, v) })
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, flagError(err)
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// flagError rewrites the flag package's errors as markdown. They hold the
// user's words (flag names, values), so each goes through mdsafe.
func flagError(err error) error {
	msg := err.Error()
	if errors.Is(err, flag.ErrHelp) {
		return errors.New("use `/launch help` for help")
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return errors.New("unknown flag " + mdsafe.Code("--"+strings.TrimLeft(name, "-")))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return errors.New("flag " + mdsafe.Code("--"+strings.TrimLeft(name, "-")) + " needs a value")
	}
	if arg, ok := strings.CutPrefix(msg, "bad flag syntax: "); ok {
		return errors.New("bad flag syntax: " + mdsafe.Code(arg))
	}
	// "invalid value "x" for flag -lifetime: ..." (or "invalid boolean
	// value ...") — the tail is our own message from a flag's set function,
	// already markdown. Values hold no spaces (Parse splits on them), so the
	// first ": " ends the flag's part.
	if i := strings.Index(msg, ": "); i >= 0 && (strings.HasPrefix(msg, "invalid value") || strings.HasPrefix(msg, "invalid boolean value")) {
		return errors.New(msg[i+2:])
	}
	return errors.New("could not read the flags: " + mdsafe.Code(msg))
}
