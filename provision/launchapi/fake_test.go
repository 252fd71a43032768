package launchapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
)

// call sends a raw request to the fake through the contract check.
func (e *env) call(method, path string, hdr map[string]string, body string) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.httpc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func mustJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return m
}

// TestContract drives every route of the fake, including its error answers,
// and checks that each one was validated against the spec.
func TestContract(t *testing.T) {
	sp, path, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if sp == nil {
		t.Skipf("contract: spec %s is missing", path)
	}
	e := newEnv(t, nil, nil)
	tok := e.srv.IssueToken(testOrg)
	auth := bearer(tok)
	src := e.source.ID
	resBody := func(pubkey int64, name string) string {
		return fmt.Sprintf(`{"source_id":%q,"image_id":"ami-0abcdef1234567890","amount":1,"instance_type":"t3.small","pubkey_id":%d,"region":"us-east-1","name":%q,"poweroff":false}`, src, pubkey, name)
	}
	steps := []struct {
		method, path string
		hdr          map[string]string
		body         string
		status       int
	}{
		{"GET", "/sources?provider=aws", auth, "", 200},
		{"GET", "/sources/" + src + "/launch_templates?region=us-east-1", auth, "", 200},
		{"GET", "/sources/" + src + "/launch_templates?region=us-east-1&limit=x", auth, "", 400}, // invalid on purpose
		{"GET", "/sources/" + src + "/upload_info", auth, "", 200},
		{"GET", "/sources/999/upload_info", auth, "", 404},
		{"GET", "/sources/" + src + "/status", auth, "", 200},
		{"GET", "/instance_types/aws?region=us-east-1", auth, "", 200},
		{"GET", "/instance_types/aws?region=mars-1", auth, "", 400},
		{"GET", "/pubkeys", auth, "", 200},
		{"POST", "/pubkeys", auth, `{"name":"k2","body":"` + edKeyOther + `"}`, 200},
		{"POST", "/pubkeys", auth, `{"name":"k3","body":"` + edKeyOther + `"}`, 422},
		{"POST", "/pubkeys", auth, `{"name":"k4","body":"ssh-dss AAAAB3NzaC1kc3M= x"}`, 400},
		{"GET", fmt.Sprintf("/pubkeys/%d", e.pubkey.ID), auth, "", 200},
		{"GET", "/pubkeys/424242", auth, "", 404},
		{"DELETE", "/pubkeys/424242", auth, "", 404},
		{"POST", "/reservations/aws", auth, resBody(e.pubkey.ID, "c1"), 200},
		{"POST", "/reservations/aws", auth, resBody(424242, "c2"), 404},
		{"POST", "/reservations/aws", auth, `{"source_id":1}`, 400}, // invalid on purpose
		{"POST", "/reservations/noop", auth, "", 200},
		{"GET", "/reservations", auth, "", 200},
		{"GET", "/reservations/1000", auth, "", 404},
		{"GET", "/reservations/aws/1000", auth, "", 404},
		{"GET", "/sources", nil, "", 401},
		{"GET", "/sources", bearer("fake-unknown"), "", 401},
		{"GET", "/sources", map[string]string{"X-Rh-Identity": "%%%"}, "", 400},
	}
	for _, s := range steps {
		// Requests the spec forbids are sent on purpose; their answers are still checked.
		e.contract.skipRequests.Store(strings.Contains(s.path, "limit=x") || strings.Contains(s.body, `"source_id":1}`))
		if got, _, body := e.call(s.method, s.path, s.hdr, s.body); got != s.status {
			t.Errorf("%s %s = %d %s, want %d", s.method, s.path, got, body, s.status)
		}
	}
	// Routes that depend on ids made above.
	res := e.srv.Reservations(testOrg)
	aws, noop := res[0].ID, res[1].ID
	for _, s := range []struct {
		method, path string
		status       int
	}{
		{"GET", fmt.Sprintf("/reservations/%d", aws), 200},
		{"GET", fmt.Sprintf("/reservations/aws/%d", aws), 200},
		{"GET", fmt.Sprintf("/reservations/aws/%d", noop), 400},
		{"DELETE", fmt.Sprintf("/reservations/%d", aws), 405},
		{"DELETE", fmt.Sprintf("/pubkeys/%d", e.pubkey.ID), 204},
	} {
		e.contract.skipRequests.Store(s.status == 405) // not in the spec, but the service answers it
		if got, _, body := e.call(s.method, s.path, auth, ""); got != s.status {
			t.Errorf("%s %s = %d %s, want %d", s.method, s.path, got, body, s.status)
		}
	}
	e.srv.SetSourceStatusError(testOrg, src, "AccessDenied")
	if got, _, _ := e.call("GET", "/sources/"+src+"/status", auth, ""); got != 500 {
		t.Errorf("broken source status = %d", got)
	}
	e.clock.Advance(time.Second) // out of the burst window of the creates above
	for i := range 6 {
		got, _, _ := e.call("POST", "/reservations/aws", auth, resBody(e.srv.Pubkeys(testOrg)[0].ID, fmt.Sprint("burst", i)))
		if want := map[bool]int{true: 429, false: 200}[i == 5]; got != want {
			t.Errorf("burst create %d = %d, want %d", i, got, want)
		}
	}
	// A run of the client's flow adds what it sends.
	done, err := e.client.WaitReservation(context.Background(), aws, WaitOptions{})
	if err != nil || len(done.Instances) != 1 {
		t.Fatalf("WaitReservation = %+v, %v", done, err)
	}

	covered := e.contract.covered()
	for _, want := range []string{
		"GET /sources 200", "GET /sources 401", "GET /sources 400", "GET /sources/{id}/launch_templates 200",
		"GET /sources/{id}/launch_templates 400", "GET /sources/{id}/upload_info 200", "GET /sources/{id}/upload_info 404",
		"GET /sources/{id}/status 200", "GET /sources/{id}/status 500", "GET /instance_types/aws 200",
		"GET /instance_types/aws 400", "GET /pubkeys 200", "POST /pubkeys 200", "POST /pubkeys 422", "POST /pubkeys 400",
		"GET /pubkeys/{id} 200", "GET /pubkeys/{id} 404", "DELETE /pubkeys/{id} 204", "DELETE /pubkeys/{id} 404",
		"POST /reservations/aws 200", "POST /reservations/aws 400", "POST /reservations/aws 404", "POST /reservations/aws 429",
		"POST /reservations/noop 200", "GET /reservations 200", "GET /reservations/{id} 200", "GET /reservations/{id} 404",
		"DELETE /reservations/{id} 405", "GET /reservations/aws/{id} 200", "GET /reservations/aws/{id} 400",
		"GET /reservations/aws/{id} 404",
	} {
		if covered[want] == 0 {
			t.Errorf("contract: %s was never checked", want)
		}
	}
}

// errorRecorder is a testing.TB that keeps Errorf calls to itself.
type errorRecorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *errorRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestContractCheckCatchesViolations makes sure the contract check is not
// vacuous: a wrong body, a wrong error body and an unknown route all fail.
func TestContractCheckCatchesViolations(t *testing.T) {
	sp, path, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if sp == nil {
		t.Skipf("contract: spec %s is missing", path)
	}
	bad := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/sources"):
			io.WriteString(w, `{"data":"not a list"}`)
		case strings.HasSuffix(r.URL.Path, "/pubkeys"):
			w.WriteHeader(422)
			io.WriteString(w, `{"msg":42}`)
		default:
			io.WriteString(w, `{}`)
		}
	})
	srv := launchapitest.NewServer(launchapitest.Options{})
	defer srv.Close()
	srv.HTTP.Config.Handler = bad
	rec := &errorRecorder{TB: t}
	hc := &http.Client{Transport: &contractTransport{t: rec, base: http.DefaultTransport, spec: sp}}
	for _, p := range []string{"/sources", "/pubkeys", "/no/such/route"} {
		resp, err := hc.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	all := strings.Join(rec.errs, "\n")
	for _, want := range []string{"/sources 200: response body doesn't match", "/pubkeys 422: not a v1.ResponseError", "/no/such/route is not in the spec"} {
		if !strings.Contains(all, want) {
			t.Errorf("contract check missed %q; reported:\n%s", want, all)
		}
	}
}

func TestFakeReservationSequence(t *testing.T) {
	e := newEnv(t, nil, nil)
	auth := bearer(e.srv.IssueToken(testOrg))
	res, err := e.client.CreateAWSReservation(context.Background(), e.awsRequest("seq"))
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		step         int
		status       string
		success      any
		finished     bool
		instances    bool
		hasAddresses bool
	}
	want := []view{
		{0, "Created", nil, false, false, false},
		{1, "Uploading public key", nil, false, false, false},
		{1, "Uploaded public key", nil, false, false, false},
		{2, "Launching instance(s)", nil, false, false, false},
		{2, "Launched instance(s)", nil, false, true, false},
		{3, "Fetching instance(s) description", nil, false, true, false},
		{3, "Instance(s) description fetched", true, true, true, true},
	}
	for i, w := range want {
		_, _, b := e.call("GET", fmt.Sprintf("/reservations/%d", res.ReservationID), auth, "")
		g := mustJSON(t, b)
		_, _, b = e.call("GET", fmt.Sprintf("/reservations/aws/%d", res.ReservationID), auth, "")
		a := mustJSON(t, b)
		got := view{int(g["step"].(float64)), g["status"].(string), g["success"], g["finished_at"] != nil, a["instances"] != nil, false}
		if list, ok := a["instances"].([]any); ok {
			detail := list[0].(map[string]any)["detail"].(map[string]any)
			got.hasAddresses = detail["public_ipv4"] != nil && detail["private_ipv4"] != nil && detail["public_dns"] != nil
		}
		if got != w {
			t.Fatalf("after %d half steps: %+v, want %+v", i, got, w)
		}
		if g["steps"].(float64) != 3 || fmt.Sprint(g["step_titles"]) != "[Ensure public key Launch instance(s) Fetch instance(s) description]" {
			t.Fatalf("steps/titles %v %v", g["steps"], g["step_titles"])
		}
		e.clock.Advance(launchapitest.DefaultStepDuration / 2)
	}
}

func TestFakeServiceTimeout(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.srv.PlanNextReservation(launchapitest.ReservationPlan{StepDuration: 20 * time.Minute})
	res, err := e.client.CreateAWSReservation(context.Background(), e.awsRequest("t"))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(launchapitest.JobTimeout - time.Second)
	r, err := e.client.GetReservation(context.Background(), res.ReservationID)
	if err != nil || !r.Pending() || r.Status != "Uploaded public key" {
		t.Fatalf("at 29m59s: %+v, %v", r, err)
	}
	e.clock.Advance(time.Second)
	r, err = e.client.GetReservation(context.Background(), res.ReservationID)
	if err != nil || r.Pending() || *r.Success || r.Status != "Timeout" || r.Error == "" || r.FinishedAt == nil {
		t.Fatalf("at 30m: %+v, %v", r, err)
	}
}

func TestFakeOrgsAreSeparate(t *testing.T) {
	e := newEnv(t, nil, nil)
	res, err := e.client.CreateAWSReservation(context.Background(), e.awsRequest("mine"))
	if err != nil {
		t.Fatal(err)
	}
	other := bearer(e.srv.IssueToken("org-2"))
	if got, _, _ := e.call("GET", fmt.Sprintf("/reservations/%d", res.ReservationID), other, ""); got != 404 {
		t.Errorf("another org's reservation = %d, want 404", got)
	}
	_, _, b := e.call("GET", "/sources", other, "")
	if m := mustJSON(t, b); len(m["data"].([]any)) != 0 {
		t.Errorf("another org sees sources: %s", b)
	}
	// The same key may be stored by another org under the same name.
	body, _ := json.Marshal(map[string]string{"name": e.pubkey.Name, "body": edKey})
	if got, _, b := e.call("POST", "/pubkeys", other, string(body)); got != 200 {
		t.Errorf("other org's upload = %d %s", got, b)
	}
}

func TestFakePubkeyRules(t *testing.T) {
	e := newEnv(t, nil, nil)
	auth := bearer(e.srv.IssueToken(testOrg))
	if strings.HasPrefix(e.pubkey.Fingerprint, "SHA256:") || e.pubkey.Type != "ssh-ed25519" || strings.Count(e.pubkey.FingerprintLegacy, ":") != 15 {
		t.Errorf("stored key %+v", e.pubkey)
	}
	for _, tt := range []struct{ name, body, constraint string }{
		{"new-name", strings.Replace(edKey, "alice@laptop", "", 1), "pubkeys_account_id_fingerprint_key"},
		{e.pubkey.Name, edKeyOther, "pubkeys_account_id_name_key"},
	} {
		b, _ := json.Marshal(map[string]string{"name": tt.name, "body": tt.body})
		got, _, resp := e.call("POST", "/pubkeys", auth, string(b))
		m := mustJSON(t, resp)
		if got != 422 || m["msg"] != "pubkey with such name or fingerprint already exists for this account" ||
			!strings.Contains(m["error"].(string), tt.constraint) {
			t.Errorf("duplicate %s: %d %s", tt.name, got, resp)
		}
	}
}

func TestFakeAuth(t *testing.T) {
	t.Run("token endpoint", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		post := func(form url.Values, basic ...string) (int, map[string]any) {
			req, _ := http.NewRequest("POST", e.srv.TokenURL, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if len(basic) == 2 {
				req.SetBasicAuth(basic[0], basic[1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, mustJSON(t, b)
		}
		tests := []struct {
			name   string
			form   url.Values
			basic  []string
			status int
		}{
			{"client credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {testSecret}}, nil, 200},
			{"client credentials, basic auth", url.Values{"grant_type": {"client_credentials"}}, []string{testClientID, testSecret}, 200},
			{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {"x"}}, nil, 401},
			{"offline token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"cloud-services"}, "refresh_token": {testOffline}}, nil, 200},
			{"offline token, wrong client", url.Values{"grant_type": {"refresh_token"}, "client_id": {"other"}, "refresh_token": {testOffline}}, nil, 401},
			{"unknown offline token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"cloud-services"}, "refresh_token": {"nope"}}, nil, 400},
			{"unknown grant", url.Values{"grant_type": {"password"}}, nil, 400},
		}
		for _, tt := range tests {
			got, body := post(tt.form, tt.basic...)
			if got != tt.status {
				t.Errorf("%s: %d %v, want %d", tt.name, got, body, tt.status)
				continue
			}
			if got == 200 {
				tok, _ := body["access_token"].(string)
				if tok == "" || body["token_type"] != "Bearer" || body["expires_in"] != float64(300) {
					t.Errorf("%s: token answer %v", tt.name, body)
				}
				if code, _, _ := e.call("GET", "/sources", bearer(tok), ""); code != 200 {
					t.Errorf("%s: issued token refused: %d", tt.name, code)
				}
			} else if body["error"] == "" {
				t.Errorf("%s: error answer without error: %v", tt.name, body)
			}
		}
	})
	t.Run("backend only", func(t *testing.T) {
		e := newEnv(t, &launchapitest.Options{BackendOnly: true}, nil)
		internalOnly := "eyJpZGVudGl0eSI6IHsidHlwZSI6ICJVc2VyIiwgImFjY291bnRfbnVtYmVyIjoiMTMiLCAiaW50ZXJuYWwiOnsib3JnX2lkIjoiMDAwMDEzIn19fQo="
		tests := []struct {
			name   string
			hdr    map[string]string
			status int
			text   string
		}{
			{"missing", nil, 400, "Bad Request: missing x-rh-identity header"},
			{"bearer is not enough", bearer(e.srv.IssueToken(testOrg)), 400, "Bad Request: missing x-rh-identity header"},
			{"not base64", map[string]string{"X-Rh-Identity": "!!"}, 400, "Bad Request: unable to b64 decode x-rh-identity header"},
			{"no org", map[string]string{"X-Rh-Identity": "eyJpZGVudGl0eSI6e319"}, 400, "Bad Request: x-rh-identity header has an invalid or missing org_id"},
			{"internal org id", map[string]string{"X-Rh-Identity": internalOnly}, 200, ""},
			{"org id", map[string]string{"X-Rh-Identity": launchapitest.IdentityHeader(testOrg)}, 200, ""},
		}
		for _, tt := range tests {
			got, h, b := e.call("GET", "/pubkeys", tt.hdr, "")
			if got != tt.status || (tt.text != "" && (strings.TrimSpace(string(b)) != tt.text || !strings.HasPrefix(h.Get("Content-Type"), "text/plain"))) {
				t.Errorf("%s: %d %q (%s), want %d %q", tt.name, got, b, h.Get("Content-Type"), tt.status, tt.text)
			}
		}
		for _, r := range e.srv.Requests() {
			if r.Header.Get("Authorization") != "" || r.Header.Get("X-Rh-Identity") != "" {
				t.Fatalf("recorded request keeps credentials: %v", r.Header)
			}
		}
	})
}

func TestFakeListsPage(t *testing.T) {
	e := newEnv(t, nil, nil)
	auth := bearer(e.srv.IssueToken(testOrg))
	for i := range 4 {
		e.srv.AddPubkey(testOrg, fmt.Sprint("k", i), fmt.Sprintf("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ%03d x", i))
	}
	_, _, b := e.call("GET", "/pubkeys?limit=2&offset=2", auth, "")
	m := mustJSON(t, b)
	meta := m["metadata"].(map[string]any)
	links := meta["links"].(map[string]any)
	if len(m["data"].([]any)) != 2 || meta["total"] != float64(5) || links["next"] == "" || links["previous"] == "" {
		t.Fatalf("page %s", b)
	}
	_, _, b = e.call("GET", "/reservations", auth, "")
	if meta := mustJSON(t, b)["metadata"].(map[string]any); meta["total"] != nil {
		t.Fatalf("total must be omitted when 0: %s", b)
	}
	_, h, _ := e.call("GET", "/instance_types/aws?region=us-east-1", auth, "")
	etag := h.Get("ETag")
	if got, _, _ := e.call("GET", "/instance_types/aws?region=us-east-1", map[string]string{"Authorization": auth["Authorization"], "If-None-Match": etag}, ""); etag == "" || got != 304 {
		t.Fatalf("ETag %q, conditional GET = %d, want 304", etag, got)
	}
}

func TestFakeServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := launchapitest.New(launchapitest.Options{})
	f.AddServiceAccount(testClientID, testSecret, testOrg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- launchapitest.Serve(ctx, ln, f) }()
	base := "http://" + ln.Addr().String()
	c, err := New(Config{BaseURL: base + launchapitest.APIPrefix, TokenURL: base + launchapitest.TokenPath,
		ClientID: testClientID, ClientSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateNoopReservation(context.Background())
	if err != nil || id == 0 {
		t.Fatalf("noop over a real listener: %d, %v", id, err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Serve returned %v after cancel", err)
	}
}
