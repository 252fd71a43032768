// Package embedded is the in-process Redis (miniredis) that `make run`
// uses when no REDIS_URL is set: nothing in it survives the process. Only
// builds made to try the bot link it (-tags embedded, and the demo's); the
// production binary has no store that loses a launch's record on restart,
// and is 2 MB smaller for it.
package embedded

import "github.com/alicebob/miniredis/v2"

// Start runs an embedded Redis on a free loopback port.
func Start() (*miniredis.Miniredis, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return mr, nil
}
