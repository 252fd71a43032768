// Package packitlaunch holds what belongs to the repository as a whole: the
// GitHub App manifest (app.yml, Probot's convention), which the setup page
// registers the App from.
package packitlaunch

import _ "embed"

// AppManifest is app.yml.
//
//go:embed app.yml
var AppManifest []byte
