package setup

import (
	"html"
	"strings"

	"github.com/packit/packit-launch/config"
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
label.choice { font-weight: normal; margin-top: .4rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
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

func checked(on bool) string {
	if on {
		return " checked"
	}
	return ""
}

func formPage(data map[string]any) string {
	return head("Set up packit-launch") + `<h1>Set up packit-launch</h1>
<p>This bot is not registered with GitHub yet. This page creates its GitHub App from <code>app.yml</code>
(events and permissions) in one step, and writes the App's credentials to <code>.env</code>.</p>
` + problem(data) + `<form method="post" action="/setup/app">
<input type="hidden" name="token" value="` + esc(data, "Token") + `">
<label for="url">The webhook URL, as GitHub will call it</label>
<input type="url" id="url" name="url" required placeholder="https://packit-launch.example.org" value="` + esc(data, "URL") + `">
<p class="note">A URL with a path is used as it is; for a plain host, such as <code>https://packit-launch.example.org</code>,
GitHub delivers to <code>` + esc(data, "WebhookPath") + `</code> on it. GitHub cannot reach <code>127.0.0.1</code> or
<code>localhost</code>: to try the bot on this machine, use a tunnel that works for a GitHub App's webhook:</p>
<ul class="note">
<li><b>smee.io</b>: open <a href="https://smee.io/new">smee.io/new</a>, give the channel's URL here as it is, and run
<code>npx smee-client --url CHANNEL-URL --target ` + esc(data, "Local") + `</code>;</li>
<li><b>ngrok</b> (<code>ngrok http ` + esc(data, "Port") + `</code>) or <b>cloudflared</b> (<code>cloudflared tunnel --url http://127.0.0.1:` + esc(data, "Port") + `</code>):
give the public host it prints.</li>
</ul>
<label for="name">The App's name</label>
<input type="text" id="name" name="name" required maxlength="34" value="` + esc(data, "Name") + `">
<p class="note">App names are unique across all of GitHub: if someone already runs an App of this name, pick
another, such as <code>packit-launch-yourteam</code>.</p>
<label>The App belongs to</label>
<label class="choice"><input type="radio" name="owner" value="personal"` + checked(esc(data, "Owner") != "org") + `> my personal account</label>
<label class="choice"><input type="radio" name="owner" value="org"` + checked(esc(data, "Owner") == "org") + `> the organization
<input type="text" name="org" aria-label="organization" placeholder="my-org" value="` + esc(data, "Org") + `" style="width:12rem"></label>
<label>Who may install it</label>
<label class="choice"><input type="radio" name="installs" value="only"` + checked(esc(data, "Installs") != "any") + `> only the account it belongs to
<span class="note">— for the repositories of that one user or organization</span></label>
<label class="choice"><input type="radio" name="installs" value="any"` + checked(esc(data, "Installs") == "any") + `> any account
<span class="note">— other people can install it on their repositories; the bot still acts only on repositories
your server config trusts, and answers others that they are not trusted</span></label>
<button type="submit">Continue</button>
</form>` + foot
}

func confirmPage(data map[string]any) string {
	forOrg := ""
	if org := esc(data, "Org"); org != "" {
		forOrg = " for the organization <code>" + org + "</code>"
	}
	who := "only the account it belongs to can install it"
	if public, _ := data["Public"].(bool); public {
		who = "any account can install it"
	}
	smee := ""
	if cmd := esc(data, "Smee"); cmd != "" {
		smee = "<p>Keep the smee client running so deliveries reach this machine:<br><code>" + cmd + "</code></p>\n"
	}
	return head("Create the GitHub App") + `<h1>Create the GitHub App on GitHub</h1>
<p>GitHub will show the App <code>` + esc(data, "Name") + `</code>` + forOrg + ` (` + who + `) with its webhook at
<code>` + esc(data, "Webhook") + `</code>, ask you to confirm, and bring you back here.</p>
` + smee + `<form method="post" action="` + esc(data, "Action") + `">
<input type="hidden" name="manifest" value="` + esc(data, "Manifest") + `">
<button type="submit">Create the GitHub App</button>
</form>
<p class="note"><a href="/">Change something</a></p>` + foot
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
	missing := ""
	if left, _ := data["Missing"].([]config.Setting); len(left) > 0 {
		var items []string
		for _, m := range left {
			items = append(items, "<li><code>"+html.EscapeString(m.Name)+"</code>: "+html.EscapeString(m.How)+"</li>")
		}
		missing = `<h2>Still missing</h2>
<p>Until these are set, the bot cannot launch VMs. Put them in <code>` + esc(data, "File") + `</code>
(or the environment, or the server config) and start the bot again:</p>
<ul>` + strings.Join(items, "\n") + `</ul>
`
	}
	trusted := "Your server config trusts no repository yet: list yours under <code>projects</code>."
	if repos, _ := data["Trusted"].([]string); len(repos) > 0 {
		var codes []string
		for _, r := range repos {
			codes = append(codes, "<code>"+html.EscapeString(r)+"</code>")
		}
		trusted = "Your server config trusts " + strings.Join(codes, ", ") + `: if your repository is not among them, add it
under <code>projects</code>.`
	}
	smee := ""
	if cmd := esc(data, "Smee"); cmd != "" {
		smee = "<li>Keep the smee client running: <code>" + cmd + "</code></li>\n"
	}
	return head("packit-launch is registered") + `<h1>The GitHub App ` + esc(data, "Name") + ` is created</h1>
<p>Its id, private key, webhook secret and login client are in <code>` + esc(data, "File") + `</code> (readable by you only),
and the bot has started with them.</p>
` + kept + missing + `<h2>Next</h2>
<ol>
` + smee + `<li>` + trusted + `</li>
<li><a href="` + esc(data, "Install") + `">Install the App on that repository</a>.</li>
<li>Comment <code>/launch help</code> on one of its pull requests: the bot answers with what it can launch there.</li>
</ol>` + foot
}
func failPage(data map[string]any) string {
	return head("Setup did not finish") + `<h1>Setup did not finish</h1>
` + problem(data) + `<p><a href="/">Back to the setup page</a></p>` + foot
}
