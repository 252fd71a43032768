// Package launchapitest is a faithful in-process fake of the console.redhat.com
// Launch (provisioning) API v1 and of the Red Hat SSO token endpoint, for
// tests and the demo.
//
// It keeps state per org, answers with the service's status codes and error
// bodies, moves reservations through the service's exact step and status
// sequence on an injectable Clock, and records every request. Faults (an
// error answer, a reset connection, a hang, "created but answered 500") can
// be injected per method and path.
//
//	clock := launchapitest.NewManualClock(time.Time{})
//	srv := launchapitest.NewServer(launchapitest.Options{Clock: clock})
//	defer srv.Close()
//	srv.AddServiceAccount("client", "secret", "org1")
//	src := srv.AddSource("org1", launchapitest.Source{Name: "aws"})
//	// point launchapi.Config{BaseURL: srv.URL, TokenURL: srv.TokenURL, ...} at it
package launchapitest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// APIPrefix is where the fake serves the API, as the public gateway does.
	APIPrefix = "/api/provisioning/v1"
	// TokenPath is where the fake serves the SSO token endpoint.
	TokenPath = "/auth/realms/redhat-external/protocol/openid-connect/token"
	// OfflineClientID is the client id SSO expects with an offline token.
	OfflineClientID = "cloud-services"
	// JobTimeout is the service's limit for a reservation's background jobs.
	JobTimeout = 30 * time.Minute
	// FaultHeader marks answers made up by an injected fault, so a contract
	// check can tell them from the fake's own.
	FaultHeader = "X-Launchapitest-Fault"
	// DefaultStepDuration is how long each of a reservation's three steps takes.
	DefaultStepDuration = 2 * time.Second
)

// Options configure a Fake. The zero value is usable.
type Options struct {
	// Clock drives reservations and the 429 burst window; default real time.
	Clock Clock
	// StepDuration is how long each reservation step takes; default 2 s.
	StepDuration time.Duration
	// Launcher starts instances; default an *InventedLauncher.
	Launcher InstanceLauncher
	// BackendOnly makes the fake behave like the backend without the
	// gateway: only X-Rh-Identity is read, a missing one is a 400.
	BackendOnly bool
	// Logger receives one line per request; default discards.
	Logger *slog.Logger
}

// Source is a cloud account registered in the sources service.
type Source struct {
	ID        string // assigned when empty
	Name      string
	Provider  string // "aws" when empty
	AccountID string // the AWS account id upload_info reports
}

// LaunchTemplate is an AWS launch template of a source in a region.
type LaunchTemplate struct {
	ID   string
	Name string
}

// InstanceType is one entry of GET /instance_types/aws.
type InstanceType struct {
	Name         string `json:"name"`
	VCPUs        int    `json:"vcpus"`
	Cores        int    `json:"cores"`
	MemoryMiB    int64  `json:"memory_mib"`
	StorageGB    int64  `json:"storage_gb"`
	Supported    bool   `json:"supported"`
	Architecture string `json:"architecture"`
}

// Image is an AMI or an Image Builder compose the fake knows about. Unknown
// AMIs are accepted as x86_64; unknown compose UUIDs are a 500.
type Image struct {
	ID           string // ami-… or a compose UUID
	Architecture string // x86_64 or arm64
	AMI          string // for a compose: the AMI it resolves to
	Building     bool   // for a compose: still building → 500
}

// Pubkey is a stored public key.
type Pubkey struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	Body              string `json:"body"`
	Type              string `json:"type"`
	Fingerprint       string `json:"fingerprint"`
	FingerprintLegacy string `json:"fingerprint_legacy"`
}

// Request is one recorded request. Authorization and X-Rh-Identity are left
// out of Header; Org is who the request was authenticated as ("" if not).
type Request struct {
	Method   string
	Path     string // without APIPrefix for API calls
	RawQuery string
	Header   http.Header
	Body     []byte
	Org      string
}

// Fake is the fake service. It is an http.Handler serving both the API under
// APIPrefix and the token endpoint at TokenPath.
type Fake struct {
	clock    Clock
	stepDur  time.Duration
	launcher InstanceLauncher
	backend  bool
	log      *slog.Logger
	mux      *http.ServeMux
	closed   chan struct{}
	once     sync.Once

	mu            sync.Mutex
	accounts      map[string]serviceAccount // client id →
	offline       map[string]string         // offline token → org
	tokens        map[string]string         // access token → org
	orgs          map[string]*orgState
	instanceTypes map[string][]InstanceType // region →
	images        map[string]Image
	plans         []ReservationPlan
	faults        []*faultState
	requests      []Request
	lastID        int64 // one sequence for every id, like a fresh database
}

type serviceAccount struct{ secret, org string }

type orgState struct {
	sources      []*sourceState
	pubkeys      []*Pubkey
	reservations []*reservation
}

type sourceState struct {
	Source
	templates map[string][]LaunchTemplate // region →
	statusErr string
}

// New returns a fake with default instance types in the usual AWS regions.
func New(opts Options) *Fake {
	f := &Fake{
		clock:         opts.Clock,
		stepDur:       opts.StepDuration,
		launcher:      opts.Launcher,
		backend:       opts.BackendOnly,
		log:           opts.Logger,
		closed:        make(chan struct{}),
		accounts:      map[string]serviceAccount{},
		offline:       map[string]string{},
		tokens:        map[string]string{},
		orgs:          map[string]*orgState{},
		instanceTypes: map[string][]InstanceType{},
		images:        map[string]Image{},
	}
	if f.clock == nil {
		f.clock = realClock{}
	}
	if f.stepDur <= 0 {
		f.stepDur = DefaultStepDuration
	}
	if f.launcher == nil {
		f.launcher = &InventedLauncher{}
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	for _, r := range []string{"us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"} {
		f.instanceTypes[r] = slices.Clone(defaultInstanceTypes)
	}
	f.routes()
	return f
}

var defaultInstanceTypes = []InstanceType{
	{Name: "t3.micro", VCPUs: 2, Cores: 1, MemoryMiB: 1024, Supported: false, Architecture: "x86_64"},
	{Name: "t3.small", VCPUs: 2, Cores: 1, MemoryMiB: 2048, Supported: true, Architecture: "x86_64"},
	{Name: "t3.medium", VCPUs: 2, Cores: 1, MemoryMiB: 4096, Supported: true, Architecture: "x86_64"},
	{Name: "m5.large", VCPUs: 2, Cores: 1, MemoryMiB: 8192, Supported: true, Architecture: "x86_64"},
	{Name: "t4g.small", VCPUs: 2, Cores: 2, MemoryMiB: 2048, Supported: true, Architecture: "arm64"},
	{Name: "c5a.8xlarge", VCPUs: 32, Cores: 16, MemoryMiB: 65536, Supported: true, Architecture: "x86_64"},
}

// Close makes hanging requests return. It does not stop any listener.
func (f *Fake) Close() { f.once.Do(func() { close(f.closed) }) }

// Clock returns the fake's clock.
func (f *Fake) Clock() Clock { return f.clock }

func (f *Fake) org(id string) *orgState {
	o := f.orgs[id]
	if o == nil {
		o = &orgState{}
		f.orgs[id] = o
	}
	return o
}

func (f *Fake) nextID() int64 {
	f.lastID++
	return f.lastID
}

// AddServiceAccount lets clientID/secret obtain tokens for org
// (grant_type=client_credentials).
func (f *Fake) AddServiceAccount(clientID, secret, org string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts[clientID] = serviceAccount{secret: secret, org: org}
	f.org(org)
}

// AddOfflineToken lets token obtain access tokens for org
// (grant_type=refresh_token, client_id=cloud-services).
func (f *Fake) AddOfflineToken(token, org string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offline[token] = org
	f.org(org)
}

// IssueToken returns a fresh access token for org, skipping the token endpoint.
func (f *Fake) IssueToken(org string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issueTokenLocked(org)
}

func (f *Fake) issueTokenLocked(org string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "fake-" + hex.EncodeToString(b)
	f.tokens[tok] = org
	f.org(org)
	return tok
}

// IdentityHeader returns an X-Rh-Identity value for a user of org.
func IdentityHeader(org string) string {
	b, _ := json.Marshal(map[string]any{"identity": map[string]any{
		"org_id": org, "account_number": "", "type": "User",
		"internal": map[string]any{"org_id": org},
		"user":     map[string]any{"username": "user-" + org},
	}})
	return base64.StdEncoding.EncodeToString(b)
}

// AddSource registers a source of org and returns it with its id.
func (f *Fake) AddSource(org string, s Source) Source {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.Provider == "" {
		s.Provider = "aws"
	}
	if s.ID == "" {
		s.ID = itoa(f.nextID())
	}
	if s.AccountID == "" && s.Provider == "aws" {
		s.AccountID = "123456789012"
	}
	o := f.org(org)
	o.sources = append(o.sources, &sourceState{Source: s, templates: map[string][]LaunchTemplate{}})
	return s
}

// AddLaunchTemplate adds a launch template to a source in region.
func (f *Fake) AddLaunchTemplate(org, sourceID, region string, lt LaunchTemplate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.findSourceLocked(org, sourceID)
	if s == nil {
		panic("launchapitest: AddLaunchTemplate: unknown source " + sourceID)
	}
	s.templates[region] = append(s.templates[region], lt)
}

// SetSourceStatusError makes GET /sources/{id}/status answer 500 with msg
// (as when the source's credentials do not work); "" makes it healthy again.
func (f *Fake) SetSourceStatusError(org, sourceID, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.findSourceLocked(org, sourceID); s != nil {
		s.statusErr = msg
	}
}

// SetInstanceTypes replaces the instance types of region (and makes the
// region supported).
func (f *Fake) SetInstanceTypes(region string, types []InstanceType) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instanceTypes[region] = slices.Clone(types)
}

// AddImage registers an AMI or a compose.
func (f *Fake) AddImage(img Image) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[img.ID] = img
}

// AddPubkey stores a public key for org as POST /pubkeys would, without
// validation, and returns it (useful to set up a key "uploaded elsewhere").
func (f *Fake) AddPubkey(org, name, body string) Pubkey {
	f.mu.Lock()
	defer f.mu.Unlock()
	pk := newPubkey(name, body)
	pk.ID = f.nextID()
	o := f.org(org)
	o.pubkeys = append(o.pubkeys, &pk)
	return pk
}

// Pubkeys returns org's stored public keys in id order.
func (f *Fake) Pubkeys(org string) []Pubkey {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Pubkey
	for _, p := range f.org(org).pubkeys {
		out = append(out, *p)
	}
	return out
}

// Requests returns every request received so far, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// RequestsTo returns the recorded requests with this method and API path
// (without APIPrefix, e.g. "/reservations/aws").
func (f *Fake) RequestsTo(method, path string) []Request {
	var out []Request
	for _, r := range f.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// ServeHTTP records the request, applies injected faults, authenticates it
// and serves it.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "Bad Request: cannot read body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	path := r.URL.Path
	isAPI := strings.HasPrefix(path, APIPrefix+"/")
	if isAPI {
		path = strings.TrimPrefix(path, APIPrefix)
	}
	org := ""
	authStatus, authMsg := 0, ""
	if isAPI {
		org, authStatus, authMsg = f.authenticate(r)
	}
	hdr := r.Header.Clone()
	hdr.Del("Authorization")
	hdr.Del("X-Rh-Identity")
	f.mu.Lock()
	f.requests = append(f.requests, Request{Method: r.Method, Path: path, RawQuery: r.URL.RawQuery, Header: hdr, Body: body, Org: org})
	ft := f.takeFaultLocked(r.Method, path)
	f.mu.Unlock()
	f.log.Debug("launchapitest request", "method", r.Method, "path", path, "org", org)

	serve := func(w http.ResponseWriter) {
		switch {
		case path == TokenPath:
			f.serveToken(w, r)
		case !isAPI:
			http.NotFound(w, r)
		case authStatus == http.StatusBadRequest:
			// The identity middleware answers in plain text.
			http.Error(w, authMsg, http.StatusBadRequest)
		case authStatus != 0:
			writeError(w, authStatus, authMsg, "")
		default:
			f.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), orgKey{}, org)))
		}
	}
	if ft == nil {
		serve(w)
		return
	}
	if ft.Hook != nil {
		ft.Hook()
	}
	if ft.AfterHandling {
		serve(httptest.NewRecorder())
	} else if !ft.Reset && !ft.Hang && ft.Status == 0 {
		serve(w)
		return
	}
	if ft.Hang {
		select {
		case <-r.Context().Done():
		case <-f.closed:
		}
		return
	}
	if ft.Reset {
		resetConn(w)
		return
	}
	if ft.Status == 0 {
		ft.Status = http.StatusInternalServerError
	}
	maps.Copy(w.Header(), ft.Header)
	w.Header().Set(FaultHeader, "injected")
	ct := ft.ContentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(ft.Status)
	_, _ = io.WriteString(w, ft.Body)
}

type orgKey struct{}

func orgOf(r *http.Request) string { s, _ := r.Context().Value(orgKey{}).(string); return s }

// authenticate returns the caller's org, or the status and message to refuse with.
func (f *Fake) authenticate(r *http.Request) (org string, status int, msg string) {
	if !f.backend {
		if auth := r.Header.Get("Authorization"); auth != "" {
			tok, ok := strings.CutPrefix(auth, "Bearer ")
			f.mu.Lock()
			org, known := f.tokens[tok]
			f.mu.Unlock()
			if !ok || !known {
				return "", http.StatusUnauthorized, "unauthorized: invalid bearer token"
			}
			return org, 0, ""
		}
		if r.Header.Get("X-Rh-Identity") == "" {
			return "", http.StatusUnauthorized, "unauthorized: missing bearer token"
		}
	}
	return parseIdentity(r.Header.Get("X-Rh-Identity"))
}

func parseIdentity(h string) (org string, status int, msg string) {
	if h == "" {
		return "", http.StatusBadRequest, "Bad Request: missing x-rh-identity header"
	}
	raw, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return "", http.StatusBadRequest, "Bad Request: unable to b64 decode x-rh-identity header"
	}
	var id struct {
		Identity struct {
			OrgID    string `json:"org_id"`
			Type     string `json:"type"`
			Internal struct {
				OrgID string `json:"org_id"`
			} `json:"internal"`
		} `json:"identity"`
	}
	if err := json.Unmarshal(raw, &id); err != nil {
		return "", http.StatusBadRequest, "Bad Request: x-rh-identity header has an invalid or malformed json"
	}
	org = id.Identity.OrgID
	if org == "" {
		org = id.Identity.Internal.OrgID
	}
	if org == "" {
		return "", http.StatusBadRequest, "Bad Request: x-rh-identity header has an invalid or missing org_id"
	}
	if id.Identity.Type == "" {
		return "", http.StatusBadRequest, "Bad Request: x-rh-identity header is missing type"
	}
	return org, 0, ""
}

// serveToken is the SSO token endpoint: client_credentials and refresh_token
// grants, credentials in the form or as HTTP basic auth.
func (f *Fake) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "HTTP method not allowed"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "cannot parse form"})
		return
	}
	clientID, secret, hasBasic := r.BasicAuth()
	if !hasBasic {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	org := ""
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		acct, ok := f.accounts[clientID]
		if !ok || acct.secret != secret {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"})
			return
		}
		org = acct.org
	case "refresh_token":
		if clientID != OfflineClientID {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"})
			return
		}
		o, ok := f.offline[r.PostForm.Get("refresh_token")]
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "Invalid refresh token"})
			return
		}
		org = o
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": f.issueTokenLocked(org), "token_type": "Bearer", "expires_in": 300,
		"refresh_expires_in": 0, "not-before-policy": 0, "scope": "openid api.iam.service_accounts",
	})
}

func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("launchapitest: cannot reset a connection that does not support hijacking")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	type linger interface{ SetLinger(int) error }
	if l, ok := conn.(linger); ok {
		_ = l.SetLinger(0) // a RST, not a polite FIN
	}
	_ = conn.Close()
}

// errorBody is the service's error document.
type errorBody struct {
	Msg       string `json:"msg"`
	Error     string `json:"error"`
	Version   string `json:"version"`
	BuildTime string `json:"build_time"`
	TraceID   string `json:"trace_id,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg, detail string) {
	if detail == "" {
		detail = msg
	}
	writeJSON(w, status, errorBody{Msg: msg, Error: detail, Version: "fake", BuildTime: "2025-07-19_00:00:00"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
