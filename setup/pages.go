package setup

import (
	"html"
	"strings"
)

// The pages are built with html.EscapeString rather than html/template: a
// template's method lookup by name keeps every exported method of every
// type in the binary (the linker cannot drop them), which tripled its size.

const style = `<style>
body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; color: #1f2328; }
h1 { font-size: 1.6rem; } label { display: block; margin-top: 1rem; font-weight: 600; }
input[type=url], input[type=text] { width: 100%; padding: .4rem; font-size: 1rem; box-sizing: border-box; }
button { margin-top: 1.5rem; padding: .6rem 1.2rem; font-size: 1rem; background: #1f883d; color: #fff; border: 0; border-radius: 6px; cursor: pointer; }
.problem { background: #fff1f0; border: 1px solid #ffa39e; padding: .6rem; border-radius: 6px; }
.note { color: #59636e; font-size: .95rem; } code { background: #f6f8fa; padding: .1rem .3rem; border-radius: 4px; }
</style>`

// page is a setup page's HTML for its data; every value in data is text.
type page func(data map[string]any) string

func head(title string) string {
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>` + html.EscapeString(title) + `</title>` + style + `</head><body>
`
}

const foot = "\n</body></html>\n"

// esc is data[key] as escaped HTML text.
func esc(data map[string]any, key string) string {
	s, _ := data[key].(string)
	return html.EscapeString(s)
}

func problem(data map[string]any) string {
	if p := esc(data, "Problem"); p != "" {
		return `<p class="problem" role="alert">` + p + "</p>\n"
	}
	return ""
}

func formPage(data map[string]any) string {
	orgChecked := ""
	if esc(data, "Org") != "" {
		orgChecked = " checked"
	}
	return head("Set up packit-launch") + `<h1>Set up packit-launch</h1>
<p>This bot is not registered with GitHub yet. This page creates its GitHub App from <code>app.yml</code>
(name, events and permissions) in one step, and writes the App's credentials to <code>.env</code>.</p>
` + problem(data) + `<form method="post" action="/setup/app">
<label for="url">The bot's public URL</label>
<input type="url" id="url" name="url" required placeholder="https://packit-launch.example.org" value="` + esc(data, "URL") + `">
<p class="note">GitHub delivers webhooks to this URL + <code>` + esc(data, "WebhookPath") + `</code>, so it cannot be
<code>127.0.0.1</code> or <code>localhost</code>. To try the bot on this machine, forward a public URL to it
with a tunnel (smee.io, <code>gh webhook forward</code>, ngrok or cloudflared) and give that URL.</p>
<label>The App belongs to</label>
<label style="font-weight:normal"><input type="radio" name="owner" value="personal" checked> my personal account</label>
<label style="font-weight:normal"><input type="radio" name="owner" value="org"` + orgChecked + `> the organization
<input type="text" name="org" aria-label="organization" placeholder="my-org" value="` + esc(data, "Org") + `" style="width:12rem"></label>
<button type="submit">Continue</button>
</form>` + foot
}

func confirmPage(data map[string]any) string {
	forOrg := ""
	if org := esc(data, "Org"); org != "" {
		forOrg = " for the organization <code>" + org + "</code>"
	}
	return head("Create the GitHub App") + `<h1>Create the GitHub App on GitHub</h1>
<p>GitHub will show the App` + forOrg + ` with its webhook at <code>` + esc(data, "Webhook") + `</code>, ask you to
confirm, and bring you back here.</p>
<form method="post" action="` + esc(data, "Action") + `">
<input type="hidden" name="manifest" value="` + esc(data, "Manifest") + `">
<button type="submit">Create the GitHub App</button>
</form>` + foot
}

func donePage(data map[string]any) string {
	kept := ""
	if names, _ := data["Kept"].([]string); len(names) > 0 {
		var codes []string
		for _, n := range names {
			codes = append(codes, "<code>"+html.EscapeString(n)+"</code>")
		}
		kept = `<p class="problem">` + strings.Join(codes, " ") + ` was already set in the file and was kept: if it is not
the new App's, replace it with the App's (its settings page shows the id; generate a new private key or
webhook secret there).</p>
`
	}
	return head("packit-launch is registered") + `<h1>The GitHub App ` + esc(data, "Name") + ` is created</h1>
<p>Its id, private key and webhook secret are in <code>` + esc(data, "File") + `</code> (readable by you only), and the bot
has started with them.</p>
` + kept + `<p><a href="` + esc(data, "Install") + `">Install the App on your repositories</a>, then comment <code>/launch</code> on a pull request.</p>` + foot
}

func failPage(data map[string]any) string {
	return head("Setup did not finish") + `<h1>Setup did not finish</h1>
` + problem(data) + `<p><a href="/">Back to the setup page</a></p>` + foot
}
