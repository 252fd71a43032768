package ec2_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// callCounter counts the EC2 calls that pass through it to next (the fake,
// or a reverse proxy in front of moto), by action. The SDK's own retries of
// a call (Amz-Sdk-Request: attempt=2...) are counted apart, as retries.
//
// Retries happen here without any error answer. net/http, having sent a
// request body, copies what is left of it to io.Discard to check it is
// spent; smithy-go closes the body as soon as the response headers are in,
// and its body's WriteTo then returns io.EOF, which io.Copy passes on as an
// error. The transport then closes the connection under the response being
// read ("use of closed network connection"), and the SDK retries that
// (aws/aws-sdk-go-v2#2737). An endpoint that answers within microseconds,
// as a local one does, wins that race often.
type callCounter struct {
	next    http.Handler
	mu      sync.Mutex
	calls   map[string]int
	retries int
}

func (c *callCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	if form, err := url.ParseQuery(string(body)); err == nil {
		c.mu.Lock()
		if strings.HasPrefix(r.Header.Get("Amz-Sdk-Request"), "attempt=1;") {
			if c.calls == nil {
				c.calls = map[string]int{}
			}
			c.calls[form.Get("Action")]++
		} else {
			c.retries++
		}
		c.mu.Unlock()
	}
	c.next.ServeHTTP(w, r)
}

// take returns the calls and retries so far and starts again from zero.
func (c *callCounter) take() (calls map[string]int, retries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls, retries = c.calls, c.retries
	c.calls, c.retries = nil, 0
	if calls == nil {
		calls = map[string]int{}
	}
	return calls, retries
}
