package commands

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/mdsafe/mdsafetest"
)

func TestFind(t *testing.T) {
	tests := []struct {
		name, body, want string
		ok               bool
	}{
		{"plain", "/launch", "/launch", true},
		{"with machine", "/launch fedora --lifetime 2h", "/launch fedora --lifetime 2h", true},
		{"later line wins over prose", "thanks!\n/launch status\n/launch help", "/launch status", true},
		{"leading spaces allowed", "  /launch", "/launch", true},
		{"crlf", "hi\r\n/launch stop all\r\n", "/launch stop all", true},
		{"not the first word", "please /launch", "", false},
		{"prefix of a longer word", "/launchpad now", "", false},
		{"fenced code", "```\n/launch\n```", "", false},
		{"tilde fence", "~~~sh\n/launch\n~~~\n", "", false},
		{"after a fence", "```\n/launch x\n```\n/launch y", "/launch y", true},
		{"quoted", "> /launch\nI agree", "", false},
		{"indented code", "    /launch", "", false},
		{"empty", "", "", false},
		{"other bot", "/packit build", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Find(tt.body)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Find(%q) = %q, %v; want %q, %v", tt.body, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		line string
		want Command
	}{
		{"/launch", Command{Kind: KindLaunch}},
		{"/launch fedora", Command{Kind: KindLaunch, Machine: "fedora"}},
		{"/launch fedora --lifetime 90m --type t3.large", Command{Kind: KindLaunch, Machine: "fedora", Lifetime: 90 * time.Minute, InstanceType: "t3.large"}},
		{"/launch --lifetime=1d fedora", Command{Kind: KindLaunch, Machine: "fedora", Lifetime: 24 * time.Hour}},
		{"/launch --key SHA256:abc --image ami-0123456789abcdef0", Command{Kind: KindLaunch, Key: "SHA256:abc", Image: "ami-0123456789abcdef0"}},
		{"/launch --image packit", Command{Kind: KindLaunch, Image: "packit"}},
		{"/launch --image packit:fedora-39-x86_64 --any-commit", Command{Kind: KindLaunch, Image: "packit:fedora-39-x86_64", AnyCommit: true}},
		{"/launch --any-commit fedora", Command{Kind: KindLaunch, Machine: "fedora", AnyCommit: true}},
		{"/launch fedora --any-commit=true", Command{Kind: KindLaunch, Machine: "fedora", AnyCommit: true}},
		{"/launch fedora --any-commit=false", Command{Kind: KindLaunch, Machine: "fedora"}},
		{"/launch status", Command{Kind: KindStatus}},
		{"/launch extend", Command{Kind: KindExtend}},
		{"/launch extend 2h", Command{Kind: KindExtend, Lifetime: 2 * time.Hour}},
		{"/launch stop", Command{Kind: KindStop}},
		{"/launch stop all", Command{Kind: KindStop, Target: StopAll}},
		{"/launch stop k3x9p2", Command{Kind: KindStop, Target: "k3x9p2"}},
		{"/launch help", Command{Kind: KindHelp}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.line)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.line, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestParseUsageErrors(t *testing.T) {
	tests := []struct {
		line, problem string
		kind          Kind
	}{
		{"/launch --bogus", "unknown flag `--bogus`", KindLaunch},
		{"/launch --lifetime", "flag `--lifetime` needs a value", KindLaunch},
		{"/launch --lifetime forever", "`forever` is not a duration", KindLaunch},
		{"/launch --lifetime -5m", "`-5m` is not a duration", KindLaunch},
		{"/launch fedora centos", "unexpected `centos`", KindLaunch},
		{"/launch status now", "unexpected `now`", KindStatus},
		{"/launch extend soon", "`soon` is not a duration", KindExtend},
		{"/launch stop a b c", "unexpected `b c`", KindStop},
		{"/launch status --type x", "unknown flag `--type`", KindStatus},
		{"/launch --x`@carol", "unknown flag ``--x`@carol``", KindLaunch},
		{"/launch ---=@carol", "bad flag syntax: `---=@carol`", KindLaunch},
		{"/launch --help", "use `/launch help` for help", KindLaunch},
		{"/launch --any-commit=maybe", "`maybe` is not a value for `--any-commit`: write just `--any-commit`", KindLaunch},
		{"/launch --any-commit=@carol", "`@carol` is not a value for `--any-commit`", KindLaunch},
		{"/launch fedora --any-commit centos", "unexpected `centos`", KindLaunch},
		{"/launch status --any-commit", "unknown flag `--any-commit`", KindStatus},
		{"/launchpad", "a command starts with `/launch`", ""},
	}
	for _, tt := range tests {
		_, err := Parse(tt.line)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("Parse(%q) error = %v, want *UsageError", tt.line, err)
			continue
		}
		if ue.Kind != tt.kind || !strings.Contains(ue.Problem, tt.problem) {
			t.Errorf("Parse(%q) = %+v, want kind %q and problem containing %q", tt.line, ue, tt.kind, tt.problem)
		}
		md := ue.Markdown()
		if !strings.Contains(md, tt.problem) || !strings.Contains(md, "```\n/launch") {
			t.Errorf("Markdown for %q lacks the problem or the usage:\n%s", tt.line, md)
		}
	}
}

func TestHelpComesFromTheTable(t *testing.T) {
	h := Help()
	for _, s := range table {
		if !strings.Contains(h, s.summary) || !strings.Contains(h, "*Who:* "+s.who) {
			t.Errorf("help lacks %s's summary or who", s.kind)
		}
		for _, f := range s.flags {
			if !strings.Contains(h, "--"+f.name) {
				t.Errorf("help lacks flag --%s", f.name)
			}
		}
	}
}

// A boolean flag is written without a placeholder, in usage and help alike.
func TestBooleanFlagUsage(t *testing.T) {
	h := Help()
	for _, want := range []string{"[--any-commit]", "- `--any-commit`: launch Packit's newest successful build", "[--image AMI|COMPOSE|packit[:TARGET]]"} {
		if !strings.Contains(h, want) {
			t.Errorf("help lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "--any-commit ]") || strings.Contains(h, "--any-commit `") {
		t.Errorf("boolean flag shown with a placeholder:\n%s", h)
	}
}

func TestMayContain(t *testing.T) {
	if !MayContain([]byte(`{"body":"/launch"}`)) || !MayContain([]byte(`{"body":"\/launch"}`)) {
		t.Error("MayContain missed a command")
	}
	if MayContain([]byte(`{"body":"/packit build"}`)) {
		t.Error("MayContain matched a body without /launch")
	}
}

func TestIsReserved(t *testing.T) {
	for _, w := range []string{"status", "extend", "stop", "help"} {
		if !IsReserved(w) {
			t.Errorf("%q should be reserved", w)
		}
	}
	if IsReserved("fedora") || IsReserved("launch") {
		t.Error("machine names reserved by mistake")
	}
}

// FuzzParse checks that any comment either yields no command, a command, or a
// usage error with safe markdown — never a panic or an untyped error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/launch", "/launch fedora --lifetime 2h", "/launch stop all", "```\n/launch\n```", "/launch --x=", "/launch extend 1d",
		"/launch --@carol", "/launch stop a ![x](https://example.invalid/p.png)", "/launch --lifetime=`@org/team`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		line, ok := Find(body)
		if !ok {
			return
		}
		if !strings.HasPrefix(line, Prefix) {
			t.Fatalf("Find returned %q", line)
		}
		cmd, err := Parse(line)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) || ue.Markdown() == "" {
				t.Fatalf("Parse(%q): untyped error %v", line, err)
			}
			mdsafetest.Assert(t, ue.Markdown(), "")
			return
		}
		if cmd.Kind == "" {
			t.Fatalf("Parse(%q) gave no kind", line)
		}
	})
}

func TestFindSkipsHTMLComments(t *testing.T) {
	for body, want := range map[string]string{
		"<!--\n/launch\n-->":                       "",
		"<!-- hidden -->\n/launch":                 "/launch",
		"<!-- template\n/launch x\n-->\n/launch y": "/launch y",
	} {
		got, _ := Find(body)
		if got != want {
			t.Errorf("Find(%q) = %q, want %q", body, got, want)
		}
	}
}

func TestSubcommandsIgnoreCase(t *testing.T) {
	if c, err := Parse("/launch STATUS"); err != nil || c.Kind != KindStatus {
		t.Errorf("STATUS: %+v %v", c, err)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{8 * time.Hour: "8h", 90 * time.Minute: "1h30m", 30 * time.Minute: "30m", 48 * time.Hour: "2d", 45 * time.Second: "45s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

// Every echo of the user's words in a usage error must render inert, for
// each command and each place a word can go.
func TestUsageErrorsAreSafeMarkdown(t *testing.T) {
	for _, h := range mdsafetest.Hostile {
		for _, kind := range []string{"", " status", " extend", " stop", " help"} {
			for _, line := range []string{
				Prefix + kind + " a b " + h,
				Prefix + kind + " --" + h,
				Prefix + kind + " --" + h + "=x",
				Prefix + kind + " -" + h,
				Prefix + kind + " --lifetime " + h,
				Prefix + kind + " --lifetime=" + h,
				Prefix + kind + " --type",
				Prefix + kind + " " + h,
				Prefix + kind + " x --image " + h + " y",
				Prefix + kind + " x --image packit:" + h,
				Prefix + kind + " --any-commit=" + h,
				Prefix + kind + " --any-commit " + h,
				Prefix + kind + " --any-commit --" + h,
			} {
				_, err := Parse(line)
				var ue *UsageError
				if errors.As(err, &ue) {
					mdsafetest.Assert(t, ue.Markdown(), "")
				}
			}
		}
	}
}
