package launchapitest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"time"
)

// Server is a Fake served by an httptest.Server.
type Server struct {
	*Fake
	HTTP     *httptest.Server
	URL      string // API base URL, ending in APIPrefix
	TokenURL string // the SSO token endpoint
}

// NewServer starts a fake on a local port. Close it when done.
func NewServer(opts Options) *Server {
	f := New(opts)
	hs := httptest.NewServer(f)
	return &Server{Fake: f, HTTP: hs, URL: hs.URL + APIPrefix, TokenURL: hs.URL + TokenPath}
}

// Close releases hanging requests and stops the server.
func (s *Server) Close() {
	s.Fake.Close()
	s.HTTP.Close()
}

// Serve serves f on ln until ctx is done, then shuts down and returns nil.
func Serve(ctx context.Context, ln net.Listener, f *Fake) error {
	hs := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		f.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-stopped
	return nil
}
