package launchapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
)

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"service account", Config{ClientID: "id", ClientSecret: "s"}, ""},
		{"offline token", Config{OfflineToken: "t"}, ""},
		{"identity", Config{Identity: "eyJ9"}, ""},
		{"no auth", Config{}, "exactly one"},
		{"client id alone", Config{ClientID: "id"}, "exactly one"},
		{"two modes", Config{ClientID: "id", ClientSecret: "s", OfflineToken: "t"}, "exactly one"},
		{"identity and token", Config{Identity: "x", OfflineToken: "t"}, "exactly one"},
		{"secret without id", Config{ClientSecret: "s"}, "needs a client id"},
		{"identity with client id", Config{Identity: "x", ClientID: "id"}, "client id"},
		{"relative base URL", Config{OfflineToken: "t", BaseURL: "/api"}, "base URL"},
		{"bad token URL", Config{OfflineToken: "t", TokenURL: "ftp://x/y"}, "token URL"},
		{"credentials in URL", Config{OfflineToken: "t", BaseURL: "https://u:p@example.com/api"}, "credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("New: %v", err)
				}
				if c.baseURL != DefaultBaseURL {
					t.Errorf("base URL %q, want the default", c.baseURL)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestAuthModes(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*Config)
		grant string // expected grant_type at the token endpoint, "" for none
	}{
		{"client credentials", func(*Config) {}, "client_credentials"},
		{"offline token", func(c *Config) {
			c.ClientID, c.ClientSecret, c.OfflineToken = "", "", testOffline
		}, "refresh_token"},
		{"identity", func(c *Config) {
			c.ClientID, c.ClientSecret, c.Identity = "", "", launchapitest.IdentityHeader(testOrg)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, tt.cfg)
			for range 2 { // the token is fetched once and reused
				sources, err := e.client.ListSources(context.Background(), "aws")
				if err != nil {
					t.Fatalf("ListSources: %v", err)
				}
				if len(sources) != 1 || sources[0].ID != e.source.ID {
					t.Fatalf("sources = %+v, want the org's one source", sources)
				}
			}
			tokenCalls := e.srv.RequestsTo(http.MethodPost, launchapitest.TokenPath)
			if tt.grant == "" {
				if len(tokenCalls) != 0 {
					t.Fatalf("identity mode called the token endpoint %d times", len(tokenCalls))
				}
			} else {
				if len(tokenCalls) != 1 {
					t.Fatalf("token endpoint called %d times, want 1", len(tokenCalls))
				}
				if body := string(tokenCalls[0].Body); !strings.Contains(body, "grant_type="+tt.grant) {
					t.Errorf("token request %q, want grant_type=%s", body, tt.grant)
				}
				if tt.grant == "refresh_token" && !strings.Contains(string(tokenCalls[0].Body), "client_id=cloud-services") {
					t.Errorf("refresh grant without client_id=cloud-services: %q", tokenCalls[0].Body)
				}
			}
			for _, r := range e.srv.RequestsTo(http.MethodGet, "/sources") {
				if r.Org != testOrg {
					t.Errorf("request authenticated as org %q, want %q", r.Org, testOrg)
				}
			}
		})
	}
}

func TestAuthFailuresDoNotLeakSecrets(t *testing.T) {
	badIdentity := "bm90LWpzb24tSURFTlRJVFktc2VjcmV0" // base64 of "not-json-IDENTITY-secret"
	tests := []struct {
		name   string
		cfg    func(*Config)
		secret string
		check  func(t *testing.T, err error)
	}{
		{"wrong client secret", func(c *Config) { c.ClientSecret = "WRONG-secret-1234" }, "WRONG-secret-1234",
			func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "access token") {
					t.Errorf("error %q does not say the token failed", err)
				}
			}},
		{"unknown offline token", func(c *Config) {
			c.ClientID, c.ClientSecret, c.OfflineToken = "", "", "UNKNOWN-offline-5678"
		}, "UNKNOWN-offline-5678", func(t *testing.T, err error) {
			if !strings.Contains(err.Error(), "access token") {
				t.Errorf("error %q does not say the token failed", err)
			}
		}},
		{"invalid identity", func(c *Config) {
			c.ClientID, c.ClientSecret, c.Identity = "", "", badIdentity
		}, badIdentity, func(t *testing.T, err error) {
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || !strings.HasPrefix(ae.Msg, "Bad Request: ") {
				t.Errorf("error = %#v, want a 400 APIError with the plain-text message", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, tt.cfg)
			_, err := e.client.ListSources(context.Background(), "")
			if err == nil {
				t.Fatal("ListSources succeeded with bad credentials")
			}
			tt.check(t, err)
			for _, s := range []string{tt.secret, testSecret, testOffline} {
				if strings.Contains(err.Error(), s) || strings.Contains(e.logs.String(), s) {
					t.Errorf("secret %q appears in the error %q or logs", s, err)
				}
			}
			if e.count(http.MethodGet, "/sources") > 1 {
				t.Errorf("auth failures must not be retried")
			}
		})
	}
}

func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	identity := launchapitest.IdentityHeader(testOrg)
	for _, mode := range []string{"secret", "identity"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, nil, func(c *Config) {
				if mode == "identity" {
					c.ClientID, c.ClientSecret, c.Identity = "", "", identity
				}
			})
			// Errors of every kind: 404, 5xx after retries, a timeout, a decode error.
			e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/pubkeys", Status: 503, Body: `{"msg":"down"}`, Times: -1})
			e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/instance_types/aws", Status: 200, Body: "<html>"})
			ctx := context.Background()
			var errs []error
			_, err := e.client.GetReservation(ctx, 9999)
			errs = append(errs, err)
			_, err = e.client.ListPubkeys(ctx)
			errs = append(errs, err)
			_, err = e.client.ListInstanceTypes(ctx, "us-east-1")
			errs = append(errs, err)
			_, err = e.client.CreateAWSReservation(ctx, AWSReservationRequest{Name: "x", Region: "mars-1"})
			errs = append(errs, err)
			logs := e.logs.String()
			if !strings.Contains(logs, "retrying") {
				t.Fatalf("expected retry logs, got %q", logs)
			}
			for i, err := range errs {
				if err == nil {
					t.Fatalf("call %d: want an error", i)
				}
				for _, s := range []string{testSecret, identity, "Bearer", "fake-"} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q contains %q", err, s)
					}
				}
			}
			for _, s := range []string{testSecret, identity, "Bearer", "fake-"} {
				if strings.Contains(logs, s) {
					t.Errorf("logs contain %q", s)
				}
			}
		})
	}
}

func TestListSourcesPaging(t *testing.T) {
	e := newEnv(t, nil, nil)
	want := []string{e.source.ID}
	for i := range 230 {
		want = append(want, e.srv.AddSource(testOrg, launchapitest.Source{Name: fmt.Sprintf("aws %d", i)}).ID)
		if i%50 == 0 {
			e.srv.AddSource(testOrg, launchapitest.Source{Name: "azure", Provider: "azure"})
		}
	}
	got, err := e.client.ListSources(context.Background(), "aws")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d sources, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i] || got[i].Provider != "aws" {
			t.Fatalf("source %d = %+v, want id %s", i, got[i], want[i])
		}
	}
	reqs := e.srv.RequestsTo(http.MethodGet, "/sources")
	if len(reqs) != 3 || !strings.Contains(reqs[2].RawQuery, "offset=200") {
		t.Fatalf("requests = %d (last %q), want 3 pages ending at offset=200", len(reqs), reqs[len(reqs)-1].RawQuery)
	}
	e.contract.skipRequests.Store(true) // the spec's enum forbids it; the service answers 400
	if _, err := e.client.ListSources(context.Background(), "openstack"); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("unknown provider: err = %v, want a 400", err)
	}
}

func TestListLaunchTemplatesTokenPaging(t *testing.T) {
	e := newEnv(t, nil, nil)
	for i := range 249 {
		e.srv.AddLaunchTemplate(testOrg, e.source.ID, "us-east-1", launchapitest.LaunchTemplate{ID: fmt.Sprintf("lt-%017d", i), Name: fmt.Sprint("t", i)})
	}
	e.srv.AddLaunchTemplate(testOrg, e.source.ID, "eu-west-1", launchapitest.LaunchTemplate{ID: "lt-eu", Name: "eu"})
	got, err := e.client.ListLaunchTemplates(context.Background(), e.source.ID, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 || got[0].ID != "lt-0123456789abcdef0" || got[249].ID != fmt.Sprintf("lt-%017d", 248) {
		t.Fatalf("got %d templates (%v … %v), want 250 in order", len(got), got[0], got[len(got)-1])
	}
	reqs := e.srv.RequestsTo(http.MethodGet, "/sources/"+e.source.ID+"/launch_templates")
	if len(reqs) != 3 || strings.Contains(reqs[0].RawQuery, "token") || !strings.Contains(reqs[1].RawQuery, "token=") {
		t.Fatalf("requests %d, want 3 with a token from the second on", len(reqs))
	}
	if _, err := e.client.ListLaunchTemplates(context.Background(), "404404", "us-east-1"); !IsNotFound(err) {
		t.Fatalf("unknown source: err = %v, want a 404", err)
	}
}

func TestSourceCalls(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	info, err := e.client.GetUploadInfo(ctx, e.source.ID)
	if err != nil || info.Provider != "aws" || info.AWSAccountID != "210987654321" {
		t.Fatalf("GetUploadInfo = %+v, %v", info, err)
	}
	if err := e.client.CheckSourceStatus(ctx, e.source.ID); err != nil {
		t.Fatalf("CheckSourceStatus healthy: %v", err)
	}
	e.srv.SetSourceStatusError(testOrg, e.source.ID, "AccessDenied: not authorized to perform sts:AssumeRole")
	err = e.client.CheckSourceStatus(ctx, e.source.ID)
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 500 || !strings.Contains(ae.Detail, "AssumeRole") {
		t.Fatalf("CheckSourceStatus broken = %v, want a 500 naming the cause", err)
	}
	if _, err := e.client.GetUploadInfo(ctx, "777"); !IsNotFound(err) {
		t.Fatalf("unknown source: %v, want 404", err)
	}
	types, err := e.client.ListInstanceTypes(ctx, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range types {
		if it.Name == "t4g.small" && it.Architecture == "arm64" && it.VCPUs == 2 && it.MemoryMiB == 2048 {
			found = true
		}
	}
	if !found {
		t.Fatalf("instance types %+v lack t4g.small arm64", types)
	}
	if _, err := e.client.ListInstanceTypes(ctx, "mars-1"); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("unknown region: %v, want 400", err)
	}
}

func TestEnsurePubkey(t *testing.T) {
	ctx := context.Background()

	t.Run("uploads a new key", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		k, err := e.client.EnsurePubkey(ctx, "gh-bob-0011aabb", edKeyOther)
		if err != nil {
			t.Fatal(err)
		}
		if k.Name != "gh-bob-0011aabb" || k.Type != "ssh-ed25519" || k.ID == 0 {
			t.Fatalf("key = %+v", k)
		}
		posts := e.srv.RequestsTo(http.MethodPost, "/pubkeys")
		if len(posts) != 1 || !strings.Contains(string(posts[0].Body), `"name":"gh-bob-0011aabb"`) {
			t.Fatalf("POSTs = %v", posts)
		}
		if keys := e.srv.Pubkeys(testOrg); len(keys) != 2 {
			t.Fatalf("fake holds %d keys, want 2", len(keys))
		}
	})

	t.Run("reuses the same key with another comment, found on a later page", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		for i := range 150 {
			e.srv.AddPubkey(testOrg, fmt.Sprint("filler-", i), fmt.Sprintf("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ%03d alice", i))
		}
		e.srv.AddPubkey(testOrg, "someone-else-named-it", strings.Replace(edKeyOther, "bob@host", "other comment", 1))
		k, err := e.client.EnsurePubkey(ctx, "gh-bob-0011aabb", edKeyOther)
		if err != nil {
			t.Fatal(err)
		}
		if k.Name != "someone-else-named-it" {
			t.Fatalf("key = %+v, want the stored one", k)
		}
		if n := e.count(http.MethodPost, "/pubkeys"); n != 0 {
			t.Fatalf("%d POSTs, want none", n)
		}
		if n := e.count(http.MethodGet, "/pubkeys"); n != 2 {
			t.Fatalf("%d list pages, want 2", n)
		}
	})

	t.Run("422 race: created concurrently, reused", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.srv.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/pubkeys", Hook: func() {
			e.srv.AddPubkey(testOrg, "gh-bob-0011aabb", edKeyOther)
		}})
		k, err := e.client.EnsurePubkey(ctx, "gh-bob-0011aabb", edKeyOther)
		if err != nil {
			t.Fatal(err)
		}
		if k.Name != "gh-bob-0011aabb" {
			t.Fatalf("key = %+v", k)
		}
		if n := e.count(http.MethodGet, "/pubkeys"); n != 2 {
			t.Fatalf("%d lists, want 2 (before and after the 422)", n)
		}
		if len(e.srv.Pubkeys(testOrg)) != 2 {
			t.Fatalf("want exactly the competing key stored")
		}
	})

	t.Run("name taken by a different key", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		_, err := e.client.EnsurePubkey(ctx, e.pubkey.Name, edKeyOther)
		var pc *PubkeyConflictError
		if !errors.As(err, &pc) || pc.Name != e.pubkey.Name || statusOf(err) != http.StatusUnprocessableEntity {
			t.Fatalf("err = %v, want *PubkeyConflictError", err)
		}
		if !strings.Contains(pc.Err.Detail, "pubkeys_account_id_name_key") {
			t.Errorf("detail %q should name the constraint", pc.Err.Detail)
		}
	})

	t.Run("unsupported key type", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		_, err := e.client.EnsurePubkey(ctx, "gh-x-1", "ssh-dss AAAAB3NzaC1kc3MAAACBAP1 x")
		if statusOf(err) != http.StatusBadRequest {
			t.Fatalf("err = %v, want 400", err)
		}
		if _, err := e.client.EnsurePubkey(ctx, "gh-x-2", "garbage"); err == nil || statusOf(err) == http.StatusBadRequest {
			t.Fatalf("err = %v, want a local error before any request", err)
		}
	})
}

func TestCreateAWSReservationSendsPoweroffFalse(t *testing.T) {
	e := newEnv(t, nil, nil)
	res, err := e.client.CreateAWSReservation(context.Background(), e.awsRequest("launch-42"))
	if err != nil {
		t.Fatal(err)
	}
	if res.ReservationID == 0 || res.Name != "launch-42" || len(res.Instances) != 0 {
		t.Fatalf("reservation = %+v", res)
	}
	posts := e.srv.RequestsTo(http.MethodPost, "/reservations/aws")
	if len(posts) != 1 || !strings.Contains(string(posts[0].Body), `"poweroff":false`) {
		t.Fatalf("request body %s, want poweroff false", posts[0].Body)
	}
	got := e.srv.Reservations(testOrg)
	if len(got) != 1 || got[0].Request.Poweroff || got[0].Request.Amount != 1 || got[0].Request.PubkeyID != e.pubkey.ID ||
		got[0].Request.LaunchTemplateID != "lt-0123456789abcdef0" || got[0].Request.SourceID != e.source.ID {
		t.Fatalf("fake recorded %+v", got)
	}
}

func TestCreateAWSReservationValidation(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*AWSReservationRequest)
		status int
	}{
		{"unsupported region", func(r *AWSReservationRequest) { r.Region = "mars-1" }, 400},
		{"no type and no template", func(r *AWSReservationRequest) { r.InstanceType, r.LaunchTemplateID = "", "" }, 400},
		{"unknown type", func(r *AWSReservationRequest) { r.InstanceType = "x9.huge" }, 400},
		{"arch mismatch", func(r *AWSReservationRequest) { r.ImageID = "ami-0aaaaaaaaaaaaaaa1" }, 400},
		{"unknown pubkey", func(r *AWSReservationRequest) { r.PubkeyID = 4242 }, 404},
		{"unknown source", func(r *AWSReservationRequest) { r.SourceID = "4242" }, 404},
		{"bad image", func(r *AWSReservationRequest) { r.ImageID = "fedora-41" }, 400},
		{"compose still building", func(r *AWSReservationRequest) { r.ImageID = "0a1b2c3d-0000-4000-8000-000000000001" }, 500},
		// The first failing check decides: region before pubkey before source.
		{"order", func(r *AWSReservationRequest) { r.Region, r.PubkeyID, r.SourceID = "mars-1", 4242, "4242" }, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			e.srv.AddImage(launchapitest.Image{ID: "ami-0aaaaaaaaaaaaaaa1", Architecture: "arm64"})
			e.srv.AddImage(launchapitest.Image{ID: "0a1b2c3d-0000-4000-8000-000000000001", Building: true})
			req := e.awsRequest("v")
			tt.edit(&req)
			_, err := e.client.CreateAWSReservation(context.Background(), req)
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != tt.status || ae.Msg == "" {
				t.Fatalf("err = %v, want status %d with a message", err, tt.status)
			}
			if len(e.srv.Reservations(testOrg)) != 0 {
				t.Fatal("a refused request created a reservation")
			}
			if tt.status >= 500 && e.count(http.MethodGet, "/reservations") == 0 {
				t.Error("a 5xx create should be resolved by looking for the reservation")
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	ctx := context.Background()
	t.Run("429 burst then success", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		for i := range 5 {
			if _, err := e.client.CreateAWSReservation(ctx, e.awsRequest(fmt.Sprint("burst-", i))); err != nil {
				t.Fatal(err)
			}
		}
		res, err := e.client.CreateAWSReservation(ctx, e.awsRequest("burst-5"))
		if err != nil {
			t.Fatalf("sixth create: %v", err)
		}
		if res.Name != "burst-5" {
			t.Fatalf("res = %+v", res)
		}
		// 500 ms then 1 s of backoff on the shared clock get past the 1 s window.
		if got := e.sleeps.recorded(); len(got) != 2 || got[0] != 500*time.Millisecond || got[1] != time.Second {
			t.Fatalf("backoffs %v, want [500ms 1s]", got)
		}
		if n := e.count(http.MethodPost, "/reservations/aws"); n != 8 {
			t.Fatalf("%d creates sent, want 8 (5 + 429 + 429 + 1)", n)
		}
		if len(e.srv.Reservations(testOrg)) != 6 {
			t.Fatal("want 6 reservations")
		}
	})
	t.Run("Retry-After respected and capped", func(t *testing.T) {
		e := newEnv(t, nil, func(c *Config) { c.MaxBackoff = 4 * time.Second })
		e.srv.InjectFault(launchapitest.Fault{Path: "/sources", Status: 429, Body: `{"msg":"too many requests"}`, Header: http.Header{"Retry-After": {"3"}}})
		e.srv.InjectFault(launchapitest.Fault{Path: "/sources", Status: 429, Body: `{"msg":"too many requests"}`, Header: http.Header{"Retry-After": {"60"}}})
		if _, err := e.client.ListSources(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if got := e.sleeps.recorded(); len(got) != 2 || got[0] != 3*time.Second || got[1] != 4*time.Second {
			t.Fatalf("waits %v, want [3s 4s]", got)
		}
	})
	t.Run("gives up at the ceiling", func(t *testing.T) {
		e := newEnv(t, nil, func(c *Config) { c.MaxRateLimitRetries = 2 })
		e.srv.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/reservations/noop", Status: 429, Times: -1,
			Body: `{"msg":"too many reservations, wait and retry","error":"rate limit"}`})
		_, err := e.client.CreateNoopReservation(ctx)
		if statusOf(err) != http.StatusTooManyRequests {
			t.Fatalf("err = %v, want 429", err)
		}
		if n := e.count(http.MethodPost, "/reservations/noop"); n != 3 {
			t.Fatalf("%d attempts, want 3", n)
		}
	})
}

func TestServerErrorsRetriedForGETsOnly(t *testing.T) {
	ctx := context.Background()
	t.Run("GET recovers", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/sources", Status: 503, Times: 2, Body: `{"msg":"unavailable"}`})
		e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/sources", Reset: true})
		if _, err := e.client.ListSources(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if n := e.count(http.MethodGet, "/sources"); n != 4 {
			t.Fatalf("%d attempts, want 4", n)
		}
	})
	t.Run("GET gives up", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/sources", Status: 500, Times: -1, Body: `{"msg":"DAO error"}`})
		_, err := e.client.ListSources(ctx, "")
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != 500 || ae.Msg != "DAO error" || ae.Method != "GET" || ae.Path != "/sources" {
			t.Fatalf("err = %#v", err)
		}
		if n := e.count(http.MethodGet, "/sources"); n != 4 {
			t.Fatalf("%d attempts, want 1 + 3 retries", n)
		}
	})
	t.Run("POST not retried", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.srv.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/pubkeys", Status: 500, Body: `{"msg":"AWS error"}`})
		e.srv.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/reservations/noop", Status: 500, Body: `{"msg":"x"}`})
		if _, err := e.client.CreateNoopReservation(ctx); statusOf(err) < 500 {
			t.Fatalf("noop err = %v", err)
		}
		if _, err := e.client.EnsurePubkey(ctx, "gh-bob-1", edKeyOther); statusOf(err) < 500 {
			t.Fatalf("pubkey err = %v", err)
		}
		if a, b := e.count(http.MethodPost, "/reservations/noop"), e.count(http.MethodPost, "/pubkeys"); a != 1 || b != 1 {
			t.Fatalf("POST attempts %d, %d, want 1 each", a, b)
		}
	})
}

func TestCreateOutcomeUnknown(t *testing.T) {
	tests := []struct {
		name    string
		fault   launchapitest.Fault
		timeout time.Duration
		adopted bool
	}{
		{"created, answered 500", launchapitest.Fault{AfterHandling: true, Status: 500, Body: `{"msg":"render error"}`}, 0, true},
		{"created, connection reset", launchapitest.Fault{AfterHandling: true, Reset: true}, 0, true},
		{"created, garbage 200", launchapitest.Fault{AfterHandling: true, Status: 200, Body: `{"reservation_id": "oops`}, 0, true},
		{"created, no answer before the timeout", launchapitest.Fault{AfterHandling: true, Hang: true}, 200 * time.Millisecond, true},
		{"not created, 503", launchapitest.Fault{Status: 503, Body: `{"msg":"unavailable"}`}, 0, false},
		{"not created, connection reset", launchapitest.Fault{Reset: true}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, func(c *Config) {
				if tt.timeout > 0 {
					c.RequestTimeout = tt.timeout
				}
				c.AdoptWindow = 3
			})
			ctx := context.Background()
			// Older reservations, some beyond the search window, and a noop on top.
			for i := range 4 {
				if _, err := e.client.CreateAWSReservation(ctx, e.awsRequest(fmt.Sprint("other-", i))); err != nil {
					t.Fatal(err)
				}
				e.clock.Advance(time.Second)
			}
			ft := tt.fault
			ft.Method, ft.Path = http.MethodPost, "/reservations/aws"
			e.srv.InjectFault(ft)
			res, err := e.client.CreateAWSReservation(ctx, e.awsRequest("launch-77"))
			if _, err2 := e.client.CreateNoopReservation(ctx); err2 != nil {
				t.Fatal(err2)
			}
			all := e.srv.Reservations(testOrg)
			if n := e.count(http.MethodPost, "/reservations/aws"); n != 5 {
				t.Fatalf("%d creates sent, want 5: a create is never repeated", n)
			}
			if !tt.adopted {
				if err == nil || len(all) != 5 {
					t.Fatalf("res %+v, err %v, %d reservations; want an error and nothing created", res, err, len(all))
				}
				if e.count(http.MethodGet, "/reservations") == 0 {
					t.Fatal("the client did not look for the reservation")
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateAWSReservation: %v", err)
			}
			want := all[4]
			if want.Request.Name != "launch-77" || res.ReservationID != want.ID || res.Name != "launch-77" {
				t.Fatalf("adopted %+v, want reservation %d", res, want.ID)
			}
		})
	}
}

func TestDecodeAndErrorBodies(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, nil)
	e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/sources", Status: 200, Body: "<html>gateway</html>", ContentType: "text/html"})
	_, err := e.client.ListSources(ctx, "")
	var de *DecodeError
	if !errors.As(err, &de) || de.StatusCode != 200 || !strings.Contains(err.Error(), "cannot decode") {
		t.Fatalf("err = %v, want a DecodeError", err)
	}
	e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/pubkeys", Status: 400,
		Body: `{"msg":"invalid request: first","error":"a"}{"msg":"second","error":"b"}`})
	_, err = e.client.ListPubkeys(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Msg != "invalid request: first" || ae.Detail != "a" {
		t.Fatalf("err = %#v, want the first document's msg", err)
	}
	e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/pubkeys", Status: 400, Body: "{{{"})
	_, err = e.client.ListPubkeys(ctx)
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Msg != "" {
		t.Fatalf("err = %#v, want a bare 400", err)
	}
	if !strings.Contains(err.Error(), "Bad Request") {
		t.Errorf("error %q should fall back to the status text", err)
	}
}

func TestTimeoutsAndCancellation(t *testing.T) {
	t.Run("per-request timeout, GET retried then given up", func(t *testing.T) {
		e := newEnv(t, nil, func(c *Config) { c.RequestTimeout = 50 * time.Millisecond; c.MaxRetries = 1 })
		e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/pubkeys", Hang: true, Times: -1})
		_, err := e.client.ListPubkeys(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a deadline error", err)
		}
		if n := e.count(http.MethodGet, "/pubkeys"); n != 2 {
			t.Fatalf("%d attempts, want 2", n)
		}
	})
	t.Run("caller cancels", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/sources", Hang: true, Hook: cancel})
		_, err := e.client.ListSources(ctx, "")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n := e.count(http.MethodGet, "/sources"); n != 1 {
			t.Fatalf("%d attempts after cancel, want 1", n)
		}
	})
	t.Run("cancelled create is not resolved", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e.srv.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/reservations/aws", AfterHandling: true, Hang: true, Hook: cancel})
		_, err := e.client.CreateAWSReservation(ctx, e.awsRequest("c"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if e.count(http.MethodGet, "/reservations") != 0 {
			t.Fatal("looked up after the caller cancelled")
		}
	})
}
