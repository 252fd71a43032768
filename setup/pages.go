package setup

import "html/template"

const style = `<style>
body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; color: #1f2328; }
h1 { font-size: 1.6rem; } label { display: block; margin-top: 1rem; font-weight: 600; }
input[type=url], input[type=text] { width: 100%; padding: .4rem; font-size: 1rem; box-sizing: border-box; }
button { margin-top: 1.5rem; padding: .6rem 1.2rem; font-size: 1rem; background: #1f883d; color: #fff; border: 0; border-radius: 6px; cursor: pointer; }
.problem { background: #fff1f0; border: 1px solid #ffa39e; padding: .6rem; border-radius: 6px; }
.note { color: #59636e; font-size: .95rem; } code { background: #f6f8fa; padding: .1rem .3rem; border-radius: 4px; }
</style>`

var formPage = template.Must(template.New("form").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Set up packit-launch</title>` + style + `</head><body>
<h1>Set up packit-launch</h1>
<p>This bot is not registered with GitHub yet. This page creates its GitHub App from <code>app.yml</code>
(name, events and permissions) in one step, and writes the App's credentials to <code>.env</code>.</p>
{{with .Problem}}<p class="problem" role="alert">{{.}}</p>{{end}}
<form method="post" action="/setup/app">
<label for="url">The bot's public URL</label>
<input type="url" id="url" name="url" required placeholder="https://packit-launch.example.org" value="{{.URL}}">
<p class="note">GitHub delivers webhooks to this URL + <code>{{.WebhookPath}}</code>, so it cannot be
<code>127.0.0.1</code> or <code>localhost</code>. To try the bot on this machine, forward a public URL to it
with a tunnel (smee.io, <code>gh webhook forward</code>, ngrok or cloudflared) and give that URL.</p>
<label>The App belongs to</label>
<label style="font-weight:normal"><input type="radio" name="owner" value="personal" checked> my personal account</label>
<label style="font-weight:normal"><input type="radio" name="owner" value="org" {{if .Org}}checked{{end}}> the organization
<input type="text" name="org" aria-label="organization" placeholder="my-org" value="{{.Org}}" style="width:12rem"></label>
<button type="submit">Continue</button>
</form>
</body></html>`))

var confirmPage = template.Must(template.New("confirm").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Create the GitHub App</title>` + style + `</head><body>
<h1>Create the GitHub App on GitHub</h1>
<p>GitHub will show the App{{if .Org}} for the organization <code>{{.Org}}</code>{{end}} with its webhook at
<code>{{.Webhook}}</code>, ask you to confirm, and bring you back here.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="manifest" value="{{.Manifest}}">
<button type="submit">Create the GitHub App</button>
</form>
</body></html>`))

var donePage = template.Must(template.New("done").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>packit-launch is registered</title>` + style + `</head><body>
<h1>The GitHub App {{.Name}} is created</h1>
<p>Its id, private key and webhook secret are in <code>{{.File}}</code> (readable by you only), and the bot
has started with them.</p>
{{with .Kept}}<p class="problem">{{range .}}<code>{{.}}</code> {{end}}was already set in the file and was kept: if it
is not the new App's, replace it with the App's (its settings page shows the id; generate a new private key or
webhook secret there).</p>{{end}}
<p><a href="{{.Install}}">Install the App on your repositories</a>, then comment <code>/launch</code> on a pull request.</p>
</body></html>`))

var failPage = template.Must(template.New("fail").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Setup did not finish</title>` + style + `</head><body>
<h1>Setup did not finish</h1>
<p class="problem" role="alert">{{.Problem}}</p>
<p><a href="/">Back to the setup page</a></p>
</body></html>`))
