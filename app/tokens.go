package app

import (
	"net/http"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/golang-jwt/jwt/v4"
)

// While GitHub is unreachable, every queued job asks for its installation's
// token, fails, and is retried: without care each attempt signs a fresh App
// JWT (an RSA signature, about 1 ms) and sends a token request, a CPU storm
// that starves intake. ghinstallation already keeps one token request in
// flight per installation; these two keep the rest cheap.

// cachedSigner signs an App JWT once and hands it out until shortly before
// it expires, instead of signing one per request.
type cachedSigner struct {
	inner ghinstallation.Signer
	mu    sync.Mutex
	token string
	until time.Time
}

// jwtMargin is how long before its expiry a JWT is no longer handed out.
const jwtMargin = 30 * time.Second

func (s *cachedSigner) Sign(claims jwt.Claims) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && time.Now().Before(s.until) {
		return s.token, nil
	}
	token, err := s.inner.Sign(claims)
	if err != nil {
		return "", err
	}
	rc, ok := claims.(*jwt.RegisteredClaims)
	if !ok || rc.ExpiresAt == nil {
		return token, nil // cannot tell its lifetime: not reused
	}
	s.token, s.until = token, rc.ExpiresAt.Add(-jwtMargin)
	return token, nil
}

// failMemory is how long an installation's failed request is answered
// from memory.
const failMemory = 2 * time.Second

// failFast guards an installation's requests while they fail: until one
// gets through, they go one at a time, and for failMemory after a
// transport failure (GitHub unreachable, the token refresh failing) the
// others get that failure at once, without asking GitHub or signing
// anything. Once a request gets through, they go concurrently again.
type failFast struct {
	next  http.RoundTripper
	now   func() time.Time // the clock failMemory is measured on
	probe chan struct{}    // one slot: the request trying while they fail
	mu    sync.Mutex
	ok    bool // the last request got through
	err   error
	at    time.Time
}

func newFailFast(next http.RoundTripper, now func() time.Time) *failFast {
	return &failFast{next: next, now: now, probe: make(chan struct{}, 1)}
}

func (f *failFast) RoundTrip(req *http.Request) (*http.Response, error) {
	if ok, _ := f.state(); ok {
		return f.pass(req)
	}
	select {
	case f.probe <- struct{}{}:
	case <-req.Context().Done():
		closeBody(req)
		return nil, req.Context().Err()
	}
	defer func() { <-f.probe }()
	if _, err := f.state(); err != nil {
		closeBody(req) // a RoundTripper closes the body, even on error
		return nil, err
	}
	return f.pass(req)
}

// state is whether requests get through, or the failure to answer with.
func (f *failFast) state() (ok bool, remembered error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ok && f.err != nil && f.now().Sub(f.at) < failMemory {
		return false, f.err
	}
	return f.ok, nil
}

func (f *failFast) pass(req *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(req)
	if err != nil && req.Context().Err() != nil {
		return resp, err // this request was given up, which says nothing of GitHub
	}
	f.mu.Lock()
	f.ok = err == nil
	if err != nil {
		f.err, f.at = err, f.now()
	}
	f.mu.Unlock()
	return resp, err
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
