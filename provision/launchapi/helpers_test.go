package launchapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/packit/packit-launch/internal/syncbuf"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
)

const (
	testOrg      = "org-1"
	testClientID = "svc-packit-launch"
	testSecret   = "s3cret-CLIENT-value-9f8e"
	testOffline  = "offline-REFRESH-token-7d6c"
	edKey        = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEhnn80ZywmjeBFFOGm+cm+5HUwm62qTVnjKlOdYFLHN alice@laptop"
	edKeyOther   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bob@host"
)

// sleepLog is a Clock that records the client's waits and advances the
// shared manual clock by them.
type sleepLog struct {
	*launchapitest.ManualClock
	mu     sync.Mutex
	sleeps []time.Duration
}

func (s *sleepLog) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.sleeps = append(s.sleeps, d)
	s.mu.Unlock()
	return s.ManualClock.Sleep(ctx, d)
}

func (s *sleepLog) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.sleeps...)
}

type env struct {
	t        *testing.T
	srv      *launchapitest.Server
	clock    *launchapitest.ManualClock
	sleeps   *sleepLog
	contract *contractTransport
	httpc    *http.Client // validated, for calling the fake directly
	logs     *syncbuf.Buffer
	client   *Client
	source   launchapitest.Source
	pubkey   launchapitest.Pubkey
}

// newEnv starts a fake with one AWS source and a stored key, and a client
// authenticated as a service account of testOrg. edit may change the
// fake's options (before start) and the client's config.
func newEnv(t *testing.T, fakeOpts *launchapitest.Options, edit func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clock: launchapitest.NewManualClock(time.Time{}), logs: &syncbuf.Buffer{}}
	e.sleeps = &sleepLog{ManualClock: e.clock}
	opts := launchapitest.Options{}
	if fakeOpts != nil {
		opts = *fakeOpts
	}
	opts.Clock = e.clock
	e.srv = launchapitest.NewServer(opts)
	t.Cleanup(e.srv.Close)
	e.srv.AddServiceAccount(testClientID, testSecret, testOrg)
	e.srv.AddOfflineToken(testOffline, testOrg)
	e.source = e.srv.AddSource(testOrg, launchapitest.Source{Name: "packit aws", AccountID: "210987654321"})
	e.srv.AddLaunchTemplate(testOrg, e.source.ID, "us-east-1", launchapitest.LaunchTemplate{ID: "lt-0123456789abcdef0", Name: "packit-launch-base"})
	e.pubkey = e.srv.AddPubkey(testOrg, "gh-alice-ab12cd34", edKey)

	sp, _, err := loadSpec()
	if err != nil {
		t.Fatalf("load spec: %v", err)
	}
	e.contract = &contractTransport{t: t, base: http.DefaultTransport, spec: sp}
	e.httpc = &http.Client{Transport: e.contract}
	cfg := Config{
		BaseURL: e.srv.URL, TokenURL: e.srv.TokenURL,
		ClientID: testClientID, ClientSecret: testSecret,
		HTTPClient:     e.httpc,
		RequestTimeout: 5 * time.Second,
		Clock:          e.sleeps,
		Logger:         slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	e.client, err = New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func (e *env) awsRequest(name string) AWSReservationRequest {
	return AWSReservationRequest{
		SourceID: e.source.ID, ImageID: "ami-0abcdef1234567890", InstanceType: "t3.small",
		PubkeyID: e.pubkey.ID, Region: "us-east-1", LaunchTemplateID: "lt-0123456789abcdef0", Name: name,
	}
}

// count returns how many requests the fake got for method and API path.
func (e *env) count(method, path string) int { return len(e.srv.RequestsTo(method, path)) }
