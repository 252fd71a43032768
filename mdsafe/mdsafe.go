// Package mdsafe is the one way user-supplied words reach a pull request.
//
// The rule: arguments, flags, machine names, config values, logins and other
// services' error texts go into the bot's markdown only through this package,
// so that nobody can make the bot mention people, show images or links, or
// inject HTML. The bot mentions only the person it answers (Mention); every
// other login is shown with Login.
//
// It is pure and uses only the standard library, so commands and config can
// use it too. mdsafetest checks its output with a real GFM renderer.
package mdsafe

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxCode is how many bytes of a value Code and Cell show. A whole
	// command line with a --key fingerprint and an --image UUID fits.
	MaxCode = 200
	// MaxText is how many bytes of the input Text shows.
	MaxText = 300
	// ellipsis ends a cut text.
	ellipsis = "…"
	// zwsp is a zero-width space as an HTML entity. GitHub finds mentions,
	// autolinks and issue references in the rendered text, where a
	// backslash escape is already gone; a zero-width space is not.
	zwsp = "&#8203;"
)

// Cut returns s if it has at most max bytes, else its longest prefix that
// ends on a character boundary and, with "…" appended, fits in max bytes.
// When max is too small to hold "…", the prefix comes without it.
func Cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	if max <= 0 {
		return ""
	}
	n := max - len(ellipsis)
	tail := ellipsis
	if n < 0 {
		n, tail = max, ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + tail
}

// Code renders untrusted text as an inline code span it cannot leave: one
// line, invisible and direction-changing characters shown as \uXXXX, cut to
// MaxCode bytes, fenced with more backticks than it holds. Empty text shows
// as `""` so the reader sees that something was empty.
func Code(s string) string {
	s = Cut(oneLine(visible(s)), MaxCode)
	if s == "" {
		return "`\"\"`"
	}
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	// CommonMark strips one space from both ends when both are spaces, and
	// a backtick next to the fence would lengthen it: pad in both cases.
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") ||
		(strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ") && strings.Trim(s, " ") != "") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// Cell is Code for a GFM table cell, where a | splits the cell even inside a
// code span unless escaped as \| (GitHub shows it as |).
func Cell(s string) string {
	c := Code(s)
	var b strings.Builder
	for i := 0; i < len(c); i++ {
		if c[i] == '|' {
			// GitHub's table scanner reads \\ as an escaped backslash, which
			// would leave our | bare: keep a space between them.
			if i > 0 && c[i-1] == '\\' {
				b.WriteByte(' ')
			}
			b.WriteString(`\|`)
			continue
		}
		b.WriteByte(c[i])
	}
	return b.String()
}

// Block renders untrusted multi-line text, such as another service's error
// message, as a fenced code block: cut to limit bytes, CRs dropped, invisible
// and direction-changing characters shown as \uXXXX. It must start a line;
// the result has no trailing newline.
func Block(s string, limit int) string {
	s = Cut(strings.ReplaceAll(visible(s), "\r", ""), limit)
	s = strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	fence := strings.Repeat("`", max(3, longestRun(s, '`')+1))
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return fence + "\n" + s + fence
}

// Text renders untrusted text as one line of plain prose in which nothing
// renders: markdown punctuation is escaped, and mentions, autolinks and issue
// references are broken with a zero-width space. At most MaxText bytes of s
// are shown. Prefer Code; Text is for words that read as part of a sentence.
func Text(s string) string {
	s = Cut(oneLine(visible(s)), MaxText)
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '@': // mentions, team mentions, email autolinks
			b.WriteString("@" + zwsp)
		case r == '#': // issue references (#12, owner/repo#12)
			b.WriteString(`\#` + zwsp)
		case r == ':' && strings.HasPrefix(s[i+1:], "/"): // http://, ftp://
			b.WriteString(`\:` + zwsp)
		case r == '-' && i >= 2 && strings.EqualFold(s[i-2:i], "GH"): // GH-12 references
			b.WriteString(`\-` + zwsp)
		case r == '.' && i >= 3 && strings.EqualFold(s[i-3:i], "www"): // www. autolinks
			b.WriteString(zwsp + `\.`)
		case r < utf8.RuneSelf && strings.ContainsRune(textEscaped, r):
			b.WriteString(`\` + string(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// textEscaped is the ASCII punctuation that can start markup somewhere in
// GitHub's markdown ($ is math, : emoji, & entities); the rest (, ; ? " ' /
// % ^) is inert in prose.
const textEscaped = "\\`*_{}[]()#+-.!|<>~&=$:"

var loginRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)

// Mention writes @login to notify the person the bot is answering. Use it
// for that person only; a login that is not valid is shown as code.
func Mention(login string) string {
	if loginRE.MatchString(login) {
		return "@" + login
	}
	return Code(login)
}

// Login shows someone's login without notifying them.
func Login(login string) string { return Code(login) }

// oneLine turns line breaks, tabs and other control characters into spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// visible makes s valid UTF-8 and writes each invisible or
// direction-changing character as \uXXXX, so it can neither hide text nor
// reorder what the reader sees.
func visible(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexFunc(s, invisible) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !invisible(r):
			b.WriteRune(r)
		case r > 0xFFFF:
			fmt.Fprintf(&b, `\U%08X`, r)
		default:
			fmt.Fprintf(&b, `\u%04X`, r)
		}
	}
	return b.String()
}

// invisible reports characters that show nothing or change the direction
// of the text around them: format characters (bidi controls, zero-width
// spaces and joiners, soft hyphen, tags), line and paragraph separators, and
// the fillers and joiners that render blank.
func invisible(r rune) bool {
	switch r {
	case '\u034F', '\u115F', '\u1160', '\u3164', '\uFFA0', '\u2028', '\u2029':
		return true
	}
	return unicode.Is(unicode.Cf, r)
}

// longestRun is the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] != c {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	return longest
}
