package mdsafe_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/mdsafe/mdsafetest"
)

// contexts put a value where the bot's comments put user text.
var contexts = []struct {
	name   string
	render func(string) string
}{
	{"Code in a sentence", func(s string) string { return "There is no machine named " + mdsafe.Code(s) + " here." }},
	{"Code quoted", func(s string) string { return "> " + mdsafe.Code(s) + "\n\n@alice see above." }},
	{"Code in a list", func(s string) string { return "- " + mdsafe.Code(s) + ": not allowed\n- " + mdsafe.Code(s) }},
	{"Cell", func(s string) string { return "| name | value |\n| --- | --- |\n| x | " + mdsafe.Cell(s) + " |\n" }},
	{"Block", func(s string) string { return "The service said:\n\n" + mdsafe.Block(s, 4000) + "\n\nTry again." }},
	{"Text", func(s string) string { return "The service said: " + mdsafe.Text(s) + " — try again." }},
	{"Text at a line start", func(s string) string { return mdsafe.Text(s) }},
	{"Login", func(s string) string { return "@alice, this VM is " + mdsafe.Login(s) + "'s." }},
}

func TestHostileTextRendersInert(t *testing.T) {
	for _, c := range contexts {
		for _, s := range mdsafetest.Hostile {
			mdsafetest.Assert(t, c.render(s), "alice")
		}
	}
}

// A | that escaped its cell would split the row: the row must keep two cells.
func TestCellKeepsTheRow(t *testing.T) {
	for _, s := range mdsafetest.Hostile {
		html := mdsafetest.Render("| name | value |\n| --- | --- |\n| x | " + mdsafe.Cell(s) + " |\n")
		if n := strings.Count(html, "<td>"); n != 2 {
			t.Errorf("Cell(%q) made %d cells:\n%s", s, n, html)
		}
	}
}

// GitHub's table scanner (cmark-gfm) reads a backslash followed by any
// punctuation as a pair, so every | of a cell must follow exactly one
// backslash; goldmark only looks one byte back and would not notice.
func TestCellPipesFollowOneBackslash(t *testing.T) {
	for _, s := range []string{"|", `\|`, `\\|`, `\\\|`, "a|b", "`|`"} {
		c := mdsafe.Cell(s)
		for i := 0; i < len(c); i++ {
			if c[i] != '|' {
				continue
			}
			n := 0
			for j := i - 1; j >= 0 && c[j] == '\\'; j-- {
				n++
			}
			if n != 1 {
				t.Errorf("Cell(%q) = %q: a | follows %d backslashes", s, c, n)
			}
		}
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		s    string
		max  int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello", 10, "hello"},
		{"hello!", 5, "he…"},
		{"hello", 3, "…"},
		{"hello", 2, "he"},
		{"hello", 0, ""},
		{"héllo", 5, "h…"},   // é is 2 bytes: "hé…" would be 6
		{"héllo!", 6, "hé…"}, // exactly 6
		{"日本語テキスト", 9, "日本…"},
		{"日本語テキスト", 8, "日…"},
		{"日本語", 2, ""}, // no room for a whole character
		{"", 3, ""},
	}
	for _, tt := range tests {
		got := mdsafe.Cut(tt.s, tt.max)
		if got != tt.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", tt.s, tt.max, got, tt.want)
		}
		if len(got) > max(tt.max, 0) || !utf8.ValidString(got) {
			t.Errorf("Cut(%q, %d) = %q: %d bytes or invalid UTF-8", tt.s, tt.max, got, len(got))
		}
	}
	long := strings.Repeat("é", 300)
	for n := 0; n <= 20; n++ {
		if got := mdsafe.Cut(long, n); !utf8.ValidString(got) || len(got) > n {
			t.Errorf("Cut(é×300, %d) = %q", n, got)
		}
	}
}

func TestCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"fedora", "`fedora`"},
		{"", "`\"\"`"},
		{"a`b", "``a`b``"},
		{"a`b``c", "```a`b``c```"},
		{"`", "`` ` ``"},
		{"```", "```` ``` ````"},
		{"x`", "`` x` ``"},
		{" a ", "`  a  `"},
		{" ", "` `"},
		{"line1\n@carol", "`line1 @carol`"},
		{"a\tb\r\nc", "`a b  c`"},
		{"\u202Eevil", "`\\u202Eevil`"},
		{"a\u200Bb", "`a\\u200Bb`"},
		{"tag\U000E0041", "`tag\\U000E0041`"},
		{"\xffx", "`\uFFFDx`"},
		{strings.Repeat("a", 300), "`" + strings.Repeat("a", mdsafe.MaxCode-3) + "…`"},
	}
	for _, tt := range tests {
		if got := mdsafe.Code(tt.in); got != tt.want {
			t.Errorf("Code(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBlockFence(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "```\n```"},
		{"error", "```\nerror\n```"},
		{"a\r\nb\n", "```\na\nb\n```"},
		{"has ``` inside", "````\nhas ``` inside\n````"},
		{"`````\n", "``````\n`````\n``````"},
		{"x\u202Ey\tz", "```\nx\\u202Ey\tz\n```"},
	}
	for _, tt := range tests {
		if got := mdsafe.Block(tt.in, 100); got != tt.want {
			t.Errorf("Block(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := mdsafe.Block(strings.Repeat("é", 300), 11); got != "```\néééé…\n```" {
		t.Errorf("Block cut = %q", got)
	}
}

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"disk full", "disk full"},
		{"@carol", "@&#8203;carol"},
		{"*x* [y](z)", `\*x\* \[y\]\(z\)`},
		{"https://e.example", `https\:&#8203;//e\.example`},
		{"www.e.example", `www&#8203;\.e\.example`},
		{"#12", `\#&#8203;12`},
		{"gh-12", `gh\-&#8203;12`},
		{"a\nb", "a b"},
		{"\u202E", `\\u202E`},
		{"5, 6; ok? \"yes\" 50% a/b", "5, 6; ok? \"yes\" 50% a/b"},
	}
	for _, tt := range tests {
		if got := mdsafe.Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := mdsafe.Text(strings.Repeat("a", 1000)); len(got) != mdsafe.MaxText {
		t.Errorf("Text of 1000 bytes has %d bytes, want %d", len(got), mdsafe.MaxText)
	}
}

func TestMentionAndLogin(t *testing.T) {
	tests := []struct{ login, mention, shown string }{
		{"alice", "@alice", "`alice`"},
		{"a-b-1", "@a-b-1", "`a-b-1`"},
		{"org/team", "`org/team`", "`org/team`"},
		{"-bad", "`-bad`", "`-bad`"},
		{"x@y", "`x@y`", "`x@y`"},
		{strings.Repeat("a", 40), "`" + strings.Repeat("a", 40) + "`", "`" + strings.Repeat("a", 40) + "`"},
		{"", "`\"\"`", "`\"\"`"},
	}
	for _, tt := range tests {
		if got := mdsafe.Mention(tt.login); got != tt.mention {
			t.Errorf("Mention(%q) = %q, want %q", tt.login, got, tt.mention)
		}
		if got := mdsafe.Login(tt.login); got != tt.shown {
			t.Errorf("Login(%q) = %q, want %q", tt.login, got, tt.shown)
		}
	}
}
