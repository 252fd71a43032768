package launchapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
)

// specPath finds openapi.gen.json: $PACKIT_LAUNCH_SHARED, or ../shared next
// to the directory holding go.mod.
func specPath() (string, error) {
	shared := os.Getenv("PACKIT_LAUNCH_SHARED")
	if shared == "" {
		dir, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return "", fmt.Errorf("no go.mod above the test's directory")
			}
			dir = parent
		}
		shared = filepath.Join(dir, "..", "shared")
	}
	return filepath.Join(shared, "launch-api", "openapi.gen.json"), nil
}

type spec struct {
	doc       *openapi3.T
	router    routers.Router
	errSchema *openapi3.Schema
}

var (
	specOnce   sync.Once
	loadedSpec *spec
	specErr    error
)

// loadSpec loads the spec once. It returns (nil, path, nil) when the file is absent.
func loadSpec() (*spec, string, error) {
	path, err := specPath()
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil, path, nil
	}
	specOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromFile(path)
		if err != nil {
			specErr = err
			return
		}
		// The spec's server is http://0.0.0.0:{port}/api/{applicationName}.
		doc.Servers = openapi3.Servers{{URL: launchapitest.APIPrefix}}
		if err := doc.Validate(context.Background()); err != nil {
			specErr = fmt.Errorf("spec does not validate: %w", err)
			return
		}
		r, err := gorillamux.NewRouter(doc)
		if err != nil {
			specErr = err
			return
		}
		loadedSpec = &spec{doc: doc, router: r, errSchema: doc.Components.Schemas["v1.ResponseError"].Value}
	})
	return loadedSpec, path, specErr
}

// contractTransport checks every API request and response against the spec.
type contractTransport struct {
	t    testing.TB
	base http.RoundTripper
	spec *spec
	// skipRequests lets a test send a request the spec forbids on purpose;
	// responses are still checked.
	skipRequests atomic.Bool

	mu      sync.Mutex
	checked map[string]int // "METHOD /path status" → count
}

func (c *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rel, isAPI := strings.CutPrefix(req.URL.Path, launchapitest.APIPrefix+"/")
	if !isAPI || c.spec == nil {
		return c.base.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	// GET /sources/{id}/status is real but not in the spec.
	notInSpec := strings.HasPrefix(rel, "sources/") && strings.HasSuffix(rel, "/status")
	var in *openapi3filter.RequestValidationInput
	if !notInSpec {
		route, params, err := c.spec.router.FindRoute(req)
		if err != nil {
			if !c.skipRequests.Load() {
				c.t.Errorf("contract: request %s %s is not in the spec: %v", req.Method, req.URL.Path, err)
			}
		} else {
			vreq := req.Clone(req.Context())
			vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
			in = &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil && !c.skipRequests.Load() {
				c.t.Errorf("contract: request %s %s: %v", req.Method, req.URL.Path, err)
			}
		}
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil // the client sees the truncated body and reports it
	}
	c.checkResponse(req, in, notInSpec, resp, body)
	return resp, nil
}

func (c *contractTransport) checkResponse(req *http.Request, in *openapi3filter.RequestValidationInput, notInSpec bool, resp *http.Response, body []byte) {
	injected := resp.Header.Get(launchapitest.FaultHeader) != ""
	if injected && resp.StatusCode < 300 {
		return // made-up bodies (garbage on 200) are meant to break the contract
	}
	what := fmt.Sprintf("%s %s %d", req.Method, req.URL.Path, resp.StatusCode)
	c.mu.Lock()
	if c.checked == nil {
		c.checked = map[string]int{}
	}
	c.checked[fmt.Sprintf("%s %s %d", req.Method, routeName(req.URL.Path), resp.StatusCode)]++
	c.mu.Unlock()

	switch {
	case resp.StatusCode == http.StatusNotModified:
		return
	case notInSpec && resp.StatusCode == http.StatusOK:
		if len(body) != 0 {
			c.t.Errorf("contract: %s: want an empty body, got %q", what, body)
		}
		return
	case !notInSpec && in != nil && in.Route.Operation.Responses.Status(resp.StatusCode) != nil:
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
			Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{}}
		if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
			c.t.Errorf("contract: response %s: %v", what, err)
		}
		return
	case resp.StatusCode < 300:
		c.t.Errorf("contract: response %s: success status not declared by the spec", what)
		return
	}
	// Undeclared error statuses: the body must be a v1.ResponseError, except
	// the identity middleware's plain-text 400.
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		if resp.StatusCode != http.StatusBadRequest || !bytes.HasPrefix(body, []byte("Bad Request: ")) {
			c.t.Errorf("contract: response %s: unexpected text body %q", what, body)
		}
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		if injected {
			return // e.g. two JSON documents in a 400, injected on purpose
		}
		c.t.Errorf("contract: response %s: body is not one JSON document: %v", what, err)
		return
	}
	if err := c.spec.errSchema.VisitJSON(doc); err != nil {
		c.t.Errorf("contract: response %s: not a v1.ResponseError: %v", what, err)
	}
	if _, ok := doc["msg"].(string); !ok && !injected {
		c.t.Errorf("contract: response %s: error body without msg: %s", what, body)
	}
}

// routeName replaces ids in a path so coverage can be counted per route.
func routeName(p string) string {
	parts := strings.Split(strings.TrimPrefix(p, launchapitest.APIPrefix), "/")
	for i, s := range parts {
		if s != "" && strings.Trim(s, "0123456789") == "" {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

func (c *contractTransport) covered() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.checked {
		out[k] = v
	}
	return out
}
