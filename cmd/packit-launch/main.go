// Command packit-launch is the packit-launch GitHub App.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

const usage = `packit-launch: launch short-lived VMs from pull request comments.

Usage:
  packit-launch serve [--config FILE]            webhook server and worker
  packit-launch worker [--config FILE]           worker only (scale out beside serve)
  packit-launch config validate [--config FILE] [--repo FILE --for OWNER/NAME] [--online]
                                                 check a server config, and a repo's .packit-launch.yaml;
                                                 --online: also ask GitHub, the Launch service and AWS
                                                 whether the settings work (App permissions, account, IAM)
  packit-launch config schema                    the JSON Schema of .packit-launch.yaml, for editors
  packit-launch vms list [--config FILE]         the bot's VMs in AWS, with their launch, PR and expiry
  packit-launch vms terminate ID...|--all        terminate VMs by launch or instance id, or all of them
  packit-launch aws bootstrap --profile NAME [--ssh-cidr CIDRS] [--vpc VPC]
                                                 create a profile's SSH-only security group and base template
  packit-launch demo                             the whole bot on this machine against fakes (needs moto_server):
                                                 a /launch conversation on a pretend PR, as a reviewer sees it
                                                 (only in the binary that make demo builds, with -tags demo)
  packit-launch help

Settings come from the config file (--config, PACKIT_LAUNCH_CONFIG, or ./packit-launch.yaml),
a .env file, and the environment, which wins. See README.md.
`

// gcPercent is the GC's target unless GOGC says. 50 rather than Go's 100
// keeps a replica with 10,000 launches within 64 MB while it lists their
// VMs (65-73 MB at 75), and one under a flood of /launch within 27 MB, for
// about 3-7 % of intake's rate (BENCHMARKS.md, "Resident memory").
const gcPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// demo is set only in a binary built with -tags demo: the production binary
// must not link the fakes it plays against (nor the testing package).
var demo func(ctx context.Context, stdout io.Writer, log *slog.Logger) error

// exitUsage is returned for bad invocations and invalid config.
const exitUsage = 2

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	env, _ := environment() // a broken .env is reported where the settings are read
	log, err := newLogger(stderr, env["LOG_FORMAT"], env["LOG_LEVEL"])
	if err != nil {
		fmt.Fprintf(stderr, "packit-launch: %v\n", err)
		return exitUsage
	}
	// The standard log (net/http's server errors, any library using it)
	// writes through the bot's log too, in its format.
	slog.SetDefault(log)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if len(args) >= 2 && isHelp(args[len(args)-1]) && !flagged(args) {
		// `vms --help`, `aws --help`: commands whose flags come after a word.
		fmt.Fprint(stdout, commandUsage(strings.Join(args[:len(args)-1], " "), nil))
		return 0
	}
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], log, true)
	case "worker":
		err = serve(ctx, args[1:], log, false)
	case "config":
		switch {
		case len(args) >= 2 && args[1] == "validate":
			err = validate(ctx, args[2:], stdout)
		case len(args) >= 2 && args[1] == "schema":
			err = printSchema(args[2:], stdout)
		default:
			fmt.Fprint(stderr, usage)
			return exitUsage
		}
	case "vms":
		err = vms(ctx, args[1:], stdout)
	case "aws":
		if len(args) < 2 || args[1] != "bootstrap" {
			fmt.Fprint(stderr, usage)
			return exitUsage
		}
		err = awsBootstrap(ctx, args[2:], stdout)
	case "demo":
		if demo == nil {
			fmt.Fprintln(stderr, "packit-launch: this binary is built without the demo (it would ship the test fakes); run `make demo`, which builds with -tags demo")
			return exitUsage
		}
		// The conversation is the output; the bot's log only when it errs.
		err = demo(ctx, stdout, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	var bad *badSetup
	var help *helpShown
	switch {
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.text)
		return 0
	case errors.As(err, &bad):
		fmt.Fprintf(stderr, "packit-launch: %v\n", err)
		return exitUsage
	case err != nil && (args[0] == "serve" || args[0] == "worker" || args[0] == "demo"):
		log.Error("packit-launch stopped", "err", err)
		return 1
	case err != nil:
		// An operator's command answers in sentences, not log lines.
		fmt.Fprintf(stderr, "packit-launch: %v\n", err)
		return 1
	}
	return 0
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "-help" }

// flagged says whether args reach a command that parses its own flags
// (and so answers --help itself).
func flagged(args []string) bool {
	switch args[0] {
	case "serve", "worker":
		return true
	case "config", "aws":
		return len(args) > 2
	case "vms":
		return len(args) > 2
	}
	return false
}

// helpShown is --help: the command's usage, on stdout, exit 0.
type helpShown struct{ text string }

func (h *helpShown) Error() string { return h.text }

// commandUsage is the part of usage about one command (e.g. "vms" or
// "config validate"), and its flags when fs is given.
func commandUsage(command string, fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("Usage:\n")
	in := false
	for _, line := range strings.Split(usage, "\n") {
		switch {
		case strings.HasPrefix(line, "  packit-launch "+command):
			in = true
		case !strings.HasPrefix(line, "     "):
			in = false
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	if fs != nil {
		b.WriteString("\nFlags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
	}
	return b.String()
}

// badSetup is a problem the operator must fix before the bot can start.
type badSetup struct{ err error }

func (b *badSetup) Error() string { return b.err.Error() }
func (b *badSetup) Unwrap() error { return b.err }
