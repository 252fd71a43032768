// Package syncbuf is a bytes.Buffer that goroutines may share: tests and
// the fakes collect logs and server output in it.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes from any goroutine.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
