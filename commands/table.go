package commands

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/packit/packit-launch/mdsafe"
)

// flagSpec is one flag of a command.
type flagSpec struct {
	name  string
	value string // placeholder in usage; empty for a boolean flag
	help  string
	// boolean flags take no value: set gets "true", or what follows "=".
	boolean bool
	set     func(*Command, string) error
}

// usage is how the flag is written in usage and help.
func (f flagSpec) usage() string {
	if f.boolean {
		return "--" + f.name
	}
	return "--" + f.name + " " + f.value
}

// spec is one row of the table that drives parsing, usage and help.
type spec struct {
	kind    Kind
	args    string // positional arguments, as shown in usage
	maxArgs int
	summary string
	who     string
	flags   []flagSpec
	setArgs func(*Command, []string) error
}

var table = []spec{
	{
		kind:    KindLaunch,
		args:    "[MACHINE]",
		maxArgs: 1,
		summary: "Launch a VM for this pull request: the repo's default machine, or MACHINE from `.packit-launch.yaml`.",
		who:     "people with write access to the repository (a repo config may narrow this to admins or named people)",
		flags: []flagSpec{
			{name: "lifetime", value: "D", help: "how long the VM lives, e.g. 90m or 2h (within the machine's maximum)",
				set: func(c *Command, v string) error {
					d, err := ParseLifetime(v)
					c.Lifetime = d
					return err
				}},
			{name: "type", value: "T", help: "instance type, one the machine's profile allows",
				set: func(c *Command, v string) error { c.InstanceType = v; return nil }},
			{name: "key", value: "FINGERPRINT", help: "which of your GitHub SSH keys to install",
				set: func(c *Command, v string) error { c.Key = v; return nil }},
			{name: "image", value: "AMI|COMPOSE|packit[:TARGET]", help: "another image: an AMI id, an Image Builder compose id, or the image Packit built for this PR (`packit` or `packit:TARGET`), where the repo allows it",
				set: func(c *Command, v string) error { c.Image = v; return nil }},
			{name: "any-commit", boolean: true, help: "launch Packit's newest successful build even if it was built from an older commit of this PR",
				set: func(c *Command, v string) error {
					b, err := strconv.ParseBool(v)
					if err != nil {
						return errors.New(mdsafe.Code(v) + " is not a value for `--any-commit`: write just `--any-commit`")
					}
					c.AnyCommit = b
					return nil
				}},
		},
		setArgs: func(c *Command, args []string) error {
			if len(args) == 1 {
				c.Machine = args[0]
			}
			return nil
		},
	},
	{
		kind:    KindStatus,
		summary: "List this pull request's VMs: owner, address, time left.",
		who:     "anyone who can comment",
		setArgs: noArgs,
	},
	{
		kind:    KindExtend,
		args:    "[D]",
		maxArgs: 1,
		summary: "Extend your VMs on this pull request by D (default: the profile's step), never past their hard expiry.",
		who:     "the VM's owner",
		setArgs: func(c *Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			d, err := ParseLifetime(args[0])
			c.Lifetime = d
			return err
		},
	},
	{
		kind:    KindStop,
		args:    "[ID|all]",
		maxArgs: 1,
		summary: "Terminate your VMs on this pull request, one launch by ID, or all of them.",
		who:     "the VM's owner; a repository admin for anyone's",
		setArgs: func(c *Command, args []string) error {
			if len(args) == 1 {
				c.Target = args[0]
			}
			return nil
		},
	},
	{
		kind:    KindHelp,
		summary: "Show this help.",
		who:     "anyone who can comment",
		setArgs: noArgs,
	},
}

func noArgs(*Command, []string) error { return nil }

func specFor(k Kind) spec {
	for _, s := range table {
		if s.kind == k {
			return s
		}
	}
	panic("commands: no spec for " + string(k))
}

// subcommand reports whether word names a command other than launch itself.
func subcommand(word string) (spec, bool) {
	for _, s := range table {
		if s.kind != KindLaunch && string(s.kind) == word {
			return s, true
		}
	}
	return spec{}, false
}

// IsReserved reports whether name is a command word, and so cannot name a machine.
func IsReserved(name string) bool {
	_, ok := subcommand(name)
	return ok
}

func writeUsage(b *strings.Builder, s spec) {
	b.WriteString("```\n")
	b.WriteString(Prefix)
	if s.kind != KindLaunch {
		b.WriteString(" " + string(s.kind))
	}
	if s.args != "" {
		b.WriteString(" " + s.args)
	}
	for _, f := range s.flags {
		fmt.Fprintf(b, " [%s]", f.usage())
	}
	b.WriteString("\n```\n")
	for _, f := range s.flags {
		fmt.Fprintf(b, "- `%s`: %s\n", f.usage(), f.help)
	}
}

// Help is the markdown for `/launch help`.
func Help() string {
	var b strings.Builder
	b.WriteString("**packit-launch commands** — comment one of these on a pull request:\n\n")
	for _, s := range table {
		writeUsage(&b, s)
		fmt.Fprintf(&b, "%s\n*Who:* %s.\n\n", s.summary, s.who)
	}
	b.WriteString("A command must be the first word of a line; lines in code blocks or quotes are ignored.\n")
	return b.String()
}
