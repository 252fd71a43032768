package mdsafetest

import (
	"strings"
	"testing"
)

// A checker that cannot fail proves nothing: each of these must fail.
func TestCheckFindsUnsafeMarkdown(t *testing.T) {
	tests := []struct{ name, markdown, want string }{
		{"mention", "hello @carol", "mention"},
		{"mention at start", "@carol hello", "mention"},
		{"team mention", "ping @org/team", "mention"},
		{"addressee's org as a team", "ping @alice/team", "mention"},
		{"mention in emphasis", "*@carol*", "mention"},
		{"mention through an entity", "&#64;carol", "mention"},
		{"image", "![x](https://example.invalid/pixel.png)", "image"},
		{"link", "[click](https://evil.example)", "link"},
		{"autolink", "<https://evil.example>", "link"},
		{"bare URL", "see https://evil.example now", "link"},
		{"www", "see www.evil.example now", "link"},
		{"email", "mail evil@example.com", "link"},
		{"raw img", "<img src=x onerror=alert(1)>", "image"},
		{"raw details", "<details><summary>open</summary>x</details>", "raw HTML element"},
		{"html comment", "a <!-- hidden --> b", "raw HTML"},
		{"issue reference", "fixes #12", "may link"},
		{"cross-repo reference", "see owner/repo#1", "may link"},
		{"rtl override", "file\u202Etxt.exe", "invisible"},
		{"rtl override through an entity", "file&#8238;txt.exe", "invisible"},
		{"zero-width joiner", "a\u200Db", "invisible"},
		{"zero-width space mid-word", "a\u200Bb", "invisible"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.markdown, "alice")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check(%q) = %v, want an error about %q", tt.markdown, err, tt.want)
			}
		})
	}
}

func TestCheckAcceptsSafeMarkdown(t *testing.T) {
	for _, md := range []string{
		"@alice your VM is ready.",
		"@Alice: done",
		"VM `k3x9` belongs to `@carol`.",
		"```\n@carol https://evil.example <img src=x>\n```",
		"**Usage:** *who:* anyone\n\n- one\n- two\n\n> quoted `code`",
		"| a | b |\n| --- | --- |\n| `x` | y |",
		"email@&#8203;example\\.com and \\#&#8203;12 and https\\:&#8203;//x and www&#8203;\\.x",
		"",
	} {
		if err := Check(md, "alice"); err != nil {
			t.Errorf("Check(%q): %v", md, err)
		}
	}
}

func TestAssertReports(t *testing.T) {
	ft := &fakeTB{TB: t}
	Assert(ft, "@carol", "")
	if !ft.failed {
		t.Error("Assert did not fail on a mention")
	}
}

type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Errorf(string, ...any) { f.failed = true }
