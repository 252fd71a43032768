//go:build embedded || demo

package main

import (
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/embedded"
)

// Builds for trying the bot (make run, make demo) run on an embedded store
// when no REDIS_URL is set.
func init() {
	store.StartEmbedded = func() (store.Embedded, error) { return embedded.Start() }
}
