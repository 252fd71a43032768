package web

import (
	"fmt"
	"html"
	"strings"
)

// The pages are HTML written here, every value through html.EscapeString
// (h.f escapes each argument; h.raw takes only this package's own markup).
// html/template escapes the same way, but its reflection keeps every
// exported method of every type in the binary: 30 MB became 84 MB
// (measured with go build on 2026-12-06), and the memory with it.

// doc builds one page.
type doc struct{ b strings.Builder }

// f writes format (this package's markup) with every argument escaped;
// numbers are left for the format's verbs.
func (d *doc) f(format string, args ...any) {
	for i, a := range args {
		switch a.(type) {
		case int, int64, float64:
		default:
			args[i] = html.EscapeString(fmt.Sprint(a))
		}
	}
	fmt.Fprintf(&d.b, format, args...)
}

// raw writes this package's own markup (never a value from outside).
func (d *doc) raw(s string) { d.b.WriteString(s) }

func (d *doc) String() string { return d.b.String() }

const css = `body{font-family:system-ui,sans-serif;margin:0;color:#1f2328;line-height:1.45}
header{background:#24292f;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}header .who{margin-left:auto;font-weight:400}
header form{margin:0}header button{background:none;border:1px solid #8c959f;color:#fff;border-radius:6px;padding:.2rem .6rem;cursor:pointer}
main{max-width:72rem;margin:1.5rem auto;padding:0 1.2rem}h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.93rem}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}
th{background:#f6f8fa}code{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px;font-size:.88rem}
.state{font-weight:600}.running{color:#1a7f37}.failed{color:#cf222e}.ended{color:#59636e}.waiting,.accepted,.launching{color:#9a6700}
.actions form{display:inline}.actions button{margin:0 .2rem .2rem 0;padding:.25rem .6rem;border-radius:6px;border:1px solid #d0d7de;background:#f6f8fa;cursor:pointer}
.actions button.danger{color:#cf222e}.note{color:#59636e}.problem{background:#fff1f0;border:1px solid #ffa39e;padding:.6rem;border-radius:6px}
.done{background:#dafbe1;border:1px solid #4ac26b;padding:.6rem;border-radius:6px}
ol.timeline{list-style:none;padding:0;border-left:3px solid #d0d7de;margin-left:.5rem}ol.timeline li{padding:.3rem 0 .6rem 1rem}
ol.timeline time{color:#59636e;font-size:.88rem;display:block}pre{background:#f6f8fa;padding:.6rem;overflow-x:auto}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(30rem,1fr));gap:1.2rem}figure{margin:0}figcaption{font-weight:600;margin-bottom:.3rem}
a.login{display:inline-block;margin-top:1rem;padding:.6rem 1.2rem;background:#1f883d;color:#fff;border-radius:6px;text-decoration:none}
`

// layout wraps a page's body: its header names the viewer, if any.
func layout(title string, sess *session, operator bool, body string) string {
	var d doc
	d.f(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>%s · packit-launch</title><link rel="stylesheet" href="/web.css"></head><body>
<header><a href="/launches">packit-launch</a>`, title)
	if sess != nil {
		d.raw(`<a href="/launches">Launches</a>`)
		if operator {
			d.raw(`<a href="/fleet">Fleet</a>`)
		}
		d.f(`<span class="who" id="viewer">%s</span><form method="post" action="/logout"><input type="hidden" name="csrf" value="%s"><button type="submit">Log out</button></form>`,
			sess.Login, sess.CSRF)
	}
	d.raw("</header>\n<main>\n")
	d.raw(body)
	d.raw("\n</main></body></html>\n")
	return d.String()
}
