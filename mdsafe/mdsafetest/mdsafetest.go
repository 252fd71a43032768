// Package mdsafetest checks, for tests, that markdown the bot writes cannot
// mention, link, show images or inject HTML. It renders with goldmark and its
// GFM extensions (tables, strikethrough, autolinks) and raw HTML passed
// through, then inspects the HTML the way GitHub's filters see it.
//
// Import it from _test.go files only: the bot's binary must not link it.
//
// goldmark is not GitHub's renderer (cmark-gfm). Where they differ in a way
// that matters, the check is stricter than goldmark: text outside code that
// still looks like a URL, www. address, email, issue reference or mention
// fails even when goldmark did not turn it into a link.
package mdsafetest

import (
	"bytes"
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	gmhtml "github.com/yuin/goldmark/renderer/html"
)

var renderer = goldmark.New(
	goldmark.WithExtensions(extension.GFM),
	// Pass raw HTML through so that it shows up, instead of being dropped.
	goldmark.WithRendererOptions(gmhtml.WithUnsafe()),
)

// Render returns the HTML goldmark makes of markdown.
func Render(markdown string) string {
	var b bytes.Buffer
	if err := renderer.Convert([]byte(markdown), &b); err != nil {
		// Convert only fails when writing to the buffer fails.
		panic(err)
	}
	return b.String()
}

// allowed are the elements the bot's own markdown produces.
var allowed = map[string]bool{
	"p": true, "code": true, "pre": true, "em": true, "strong": true, "del": true,
	"ul": true, "ol": true, "li": true, "blockquote": true, "br": true, "hr": true,
	"table": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
}

var (
	tagRE = regexp.MustCompile(`^<(/?)([A-Za-z][A-Za-z0-9-]*)`)
	// GitHub's mention rule: @ at the start of a text node or after a
	// non-word character, then a letter or digit; /team makes it a team.
	mentionRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9_])@([A-Za-z0-9][A-Za-z0-9-]*)(/[A-Za-z0-9])?`)
	// Text GitHub may turn into a link even where goldmark does not.
	linkishRE = regexp.MustCompile(`(?i)://|www\.|[A-Za-z0-9._+-]@[A-Za-z0-9-]|#[0-9]|\bGH-[0-9]`)
)

// Check renders markdown and reports every link, image, unexpected HTML
// element, mention of anyone but addressee ("" for nobody), and invisible or
// direction-changing character in the result.
func Check(markdown, addressee string) error {
	out := Render(markdown)
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	inCode := 0
	rest := out
	for rest != "" {
		i := strings.IndexByte(rest, '<')
		text := rest
		if i >= 0 {
			text = rest[:i]
		}
		if inCode == 0 {
			checkText(html.UnescapeString(text), addressee, add)
		}
		if i < 0 {
			break
		}
		rest = rest[i:]
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			end = len(rest) - 1
		}
		tag := rest[:end+1]
		rest = rest[end+1:]
		m := tagRE.FindStringSubmatch(tag)
		if m == nil {
			add("raw HTML %q", tag) // comments, declarations, processing instructions
			continue
		}
		name := strings.ToLower(m[2])
		switch {
		case name == "a":
			add("a link: %s", tag)
		case name == "img":
			add("an image: %s", tag)
		case !allowed[name]:
			add("raw HTML element: %s", tag)
		}
		if name == "code" || name == "pre" {
			if m[1] == "/" {
				inCode = max(0, inCode-1)
			} else {
				inCode++
			}
		}
	}
	checkInvisible(html.UnescapeString(out), add)
	if len(problems) > 0 {
		return fmt.Errorf("unsafe markdown: %s\nHTML:\n%s", strings.Join(problems, "; "), out)
	}
	return nil
}

// checkText looks at one text node outside code.
func checkText(text, addressee string, add func(string, ...any)) {
	for _, m := range mentionRE.FindAllStringSubmatch(text, -1) {
		if m[2] == "" && addressee != "" && strings.EqualFold(m[1], addressee) {
			continue
		}
		add("a mention: %q", strings.TrimLeftFunc(m[0], func(r rune) bool { return r != '@' }))
	}
	if m := linkishRE.FindString(text); m != "" {
		add("text GitHub may link: %q in %q", m, text)
	}
}

// checkInvisible reports characters that hide text or reorder it. A
// zero-width space right after @, #, : or - or right before . is allowed: it
// is how mdsafe.Text breaks mentions, references and autolinks.
func checkInvisible(s string, add func(string, ...any)) {
	for i, r := range s {
		if !invisible(r) {
			continue
		}
		if r == '\u200B' && (i > 0 && strings.ContainsRune("@#:-", rune(s[i-1])) ||
			strings.HasPrefix(s[i+len("\u200B"):], ".")) {
			continue
		}
		add("invisible character %U", r)
	}
}

func invisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2060 && r <= 0x2064,
		r >= 0x2066 && r <= 0x2069, r == 0xFEFF, r == 0x2028, r == 0x2029, r == 0x00AD, r == 0x180E,
		r == 0x061C, r == 0x034F, r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0:
		return true
	}
	return unicode.Is(unicode.Cf, r)
}

// Assert fails t when Check finds a problem in markdown.
func Assert(t testing.TB, markdown, addressee string) {
	t.Helper()
	if err := Check(markdown, addressee); err != nil {
		t.Errorf("%v\nmarkdown:\n%s", err, markdown)
	}
}

// Hostile is what a commenter on a public repository can type: mentions,
// images, links, HTML, backticks, table breakers, invisible and bidi
// characters, and sizes that need cutting. Tests feed it to every place that
// echoes user words.
var Hostile = []string{
	"@carol",
	"@everyone",
	"@org/team",
	"hi @carol and @org/team",
	"![x](https://example.invalid/pixel.png)",
	"[click](https://evil.example)",
	"<https://evil.example>",
	"<img src=x onerror=alert(1)>",
	"<details><summary>open me</summary>",
	"`",
	"```",
	"a`b``c",
	"`@carol`",
	"line1\n@carol",
	"\r\n# heading",
	"https://evil.example",
	"www.evil.example",
	"WWW.evil.example",
	"evil@example.com",
	"mailto:evil@example.com",
	"\u202Eevil",
	"a\u200Bb",
	"a\u2066b\u2069c\uFEFF\u00AD\u2028\u2029\u180E\u2060",
	strings.Repeat("@carol ", 1500), // 10 KB
	strings.Repeat("é", 300),
	"|",
	"a|b",
	"|@carol",
	`\|@carol`,
	`\\|![x](https://example.invalid/p.png)`,
	"<!-- hidden -->",
	"<!--",
	`\`,
	`\@carol`,
	"*bold* _em_ ~~del~~",
	"&#64;carol &#8238;",
	"fixes #12, owner/repo#1, GH-7",
	"$\\href{https://evil.example}{x}$",
	"    indented\n- item\n> quote",
	"x\x00y\x1bz\x7f",
	"\xff\xfe@carol",
	"",
	" ",
	"` `",
}
