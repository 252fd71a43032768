package main

import (
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/embedded"
)

// The tests that run serve in this process run it as make run builds it,
// on the embedded store, with or without -tags demo. The binary that ships
// has none: TestShippedBinaryNeedsRedisURL.
func init() {
	if store.StartEmbedded == nil {
		store.StartEmbedded = func() (store.Embedded, error) { return embedded.Start() }
	}
}
