package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recordingQueue wraps the real queue and remembers what went in.
type recordingQueue struct {
	next enqueuer
	fail error
	mu   sync.Mutex
	jobs []store.Job
}

func (q *recordingQueue) Enqueue(ctx context.Context, j store.Job) error {
	if q.fail != nil {
		return q.fail
	}
	if err := q.next.Enqueue(ctx, j); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(q.jobs, j)
	return nil
}

func (q *recordingQueue) Jobs() []store.Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]store.Job(nil), q.jobs...)
}

func newTestIntake(t *testing.T) (*Intake, *recordingQueue, *store.Store) {
	t.Helper()
	st, err := store.OpenWith(context.Background(), storetest.StartRedis(t), store.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	q := &recordingQueue{next: st.Queue()}
	return NewIntake(testSecret, "", st, q, quiet), q, st
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestSignatureTestVector(t *testing.T) {
	// From GitHub's documentation of X-Hub-Signature-256.
	// Sent as a ping, which a verified delivery is answered "pong" to.
	in := NewIntake(testSecret, "", nil, nil, quiet)
	want := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	ping := func(body string) *httptest.ResponseRecorder {
		r := webhookRequest("ping", "d1", []byte(body))
		r.Header.Set("X-Hub-Signature-256", want)
		return serve(in, r)
	}
	if w := ping("Hello, World!"); w.Code != http.StatusOK || w.Body.String() != "pong\n" {
		t.Fatalf("GitHub's test vector does not verify: %d %q", w.Code, w.Body)
	}
	if w := ping("Hello, World?"); w.Code != http.StatusUnauthorized {
		t.Fatalf("a changed body verified: %d", w.Code)
	}
}

func TestIntakeRejectsUnsignedBadAndOversized(t *testing.T) {
	in, q, _ := newTestIntake(t)
	body := defaultComment("/launch").JSON()

	unsigned := webhookRequest("issue_comment", "d1", body)
	unsigned.Header.Del("X-Hub-Signature-256")
	unsigned.Header.Set("X-Hub-Signature", "sha1=whatever") // the SHA-1 header is never enough
	if w := serve(in, unsigned); w.Code != http.StatusUnauthorized {
		t.Errorf("unsigned: %d", w.Code)
	}
	for _, sig := range []string{"sha256=00", "sha256=" + strings.Repeat("zz", 32), sign("wrong secret", body), "sha1=" + strings.Repeat("0", 40)} {
		r := webhookRequest("issue_comment", "d2", body)
		r.Header.Set("X-Hub-Signature-256", sig)
		if w := serve(in, r); w.Code != http.StatusUnauthorized {
			t.Errorf("signature %q: %d", sig, w.Code)
		}
	}
	big := make([]byte, MaxWebhookBytes+1)
	if w := serve(in, webhookRequest("issue_comment", "d3", big)); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized: %d", w.Code)
	}
	chunked := webhookRequest("issue_comment", "d3", big)
	chunked.ContentLength = -1 // no length announced: the cap still holds
	if w := serve(in, chunked); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized without Content-Length: %d", w.Code)
	}
	malformed := []byte(`{"action":"created","comment":{"body":"/launch"`)
	if w := serve(in, webhookRequest("issue_comment", "d4", malformed)); w.Code != http.StatusBadRequest {
		t.Errorf("malformed JSON: %d", w.Code)
	}
	if n := len(q.Jobs()); n != 0 {
		t.Errorf("%d jobs queued from bad requests", n)
	}
}

func TestIntakeFilters(t *testing.T) {
	in, q, _ := newTestIntake(t)
	bot := defaultComment("/launch")
	bot.UserType = "Bot"
	botSender := defaultComment("/launch")
	botSender.SenderType = "Bot"
	noInstallation := defaultComment("/launch")
	noInstallation.Installation = 0
	edited := defaultComment("/launch")
	edited.Action = "edited"
	tests := []struct {
		name   string
		event  string
		body   []byte
		status int
		queued bool
	}{
		{"ping", "ping", []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`), http.StatusOK, false},
		{"other event", "check_suite", []byte(`{"action":"requested"}`), http.StatusNoContent, false},
		{"no command", "issue_comment", defaultComment("LGTM, thanks").JSON(), http.StatusNoContent, false},
		{"launchpad is not a command", "issue_comment", defaultComment("/launchpad").JSON(), http.StatusNoContent, false},
		{"in a code block", "issue_comment", defaultComment("try:\n```\n/launch\n```").JSON(), http.StatusNoContent, false},
		{"quoted", "issue_comment", defaultComment("> /launch\nno").JSON(), http.StatusNoContent, false},
		{"edited", "issue_comment", edited.JSON(), http.StatusNoContent, false},
		{"bot", "issue_comment", bot.JSON(), http.StatusNoContent, false},
		{"bot sender", "issue_comment", botSender.JSON(), http.StatusNoContent, false},
		{"no installation", "issue_comment", noInstallation.JSON(), http.StatusOK, false},
		{"command", "issue_comment", defaultComment("please\n/launch fedora").JSON(), http.StatusAccepted, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(q.Jobs())
			w := serve(in, webhookRequest(tt.event, "filter-"+string(rune('a'+i)), tt.body))
			if w.Code != tt.status {
				t.Errorf("status %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if queued := len(q.Jobs()) > before; queued != tt.queued {
				t.Errorf("queued = %v, want %v", queued, tt.queued)
			}
		})
	}
	if w := serve(in, webhookRequest("ping", "p", []byte(`{}`))); !strings.Contains(w.Body.String(), "pong") {
		t.Errorf("ping answer %q", w.Body)
	}
}

func TestIntakeQueuesTheCommandOnceAndKeepsWhatItNeeds(t *testing.T) {
	in, q, _ := newTestIntake(t)
	fixed := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	in.now = func() time.Time { return fixed }
	c := defaultComment("thanks!\n/launch fedora --lifetime 2h")
	c.OnPR = false
	body := c.JSON()
	for i := 0; i < 3; i++ { // GitHub redelivers with the same id
		w := serve(in, webhookRequest("issue_comment", "same-delivery", body))
		if want := []int{http.StatusAccepted, http.StatusOK, http.StatusOK}[i]; w.Code != want {
			t.Fatalf("delivery %d: status %d, want %d", i, w.Code, want)
		}
	}
	jobs := q.Jobs()
	if len(jobs) != 1 || jobs[0].Kind != JobCommand {
		t.Fatalf("jobs = %+v", jobs)
	}
	var job CommandJob
	if err := json.Unmarshal(jobs[0].Payload, &job); err != nil {
		t.Fatal(err)
	}
	want := CommandJob{Delivery: "same-delivery", InstallationID: 55, Repo: "packit/ogr", Number: 7, OnPullRequest: false,
		CommentID: 1001, User: "alice", Line: "/launch fedora --lifetime 2h", CommentedAt: c.CreatedAt.Truncate(time.Second), ReceivedAt: fixed}
	if !job.CommentedAt.Equal(want.CommentedAt) {
		t.Errorf("commented at %s, want %s", job.CommentedAt, want.CommentedAt)
	}
	job.CommentedAt = want.CommentedAt
	if job != want {
		t.Errorf("job = %+v\nwant  %+v", job, want)
	}
}

func TestIntakeLosesNothingWhenTheQueueFails(t *testing.T) {
	in, q, st := newTestIntake(t)
	q.fail = errors.New("redis down")
	body := defaultComment("/launch").JSON()
	if w := serve(in, webhookRequest("issue_comment", "d-fail", body)); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", w.Code)
	}
	// The delivery is not marked as seen, so a redelivery is accepted.
	q.fail = nil
	if w := serve(in, webhookRequest("issue_comment", "d-fail", body)); w.Code != http.StatusAccepted {
		t.Fatalf("redelivery status %d, want 202", w.Code)
	}
	if first, _ := st.FirstDelivery(context.Background(), "d-fail"); first {
		t.Error("accepted delivery not recorded")
	}
}

// The primary dies between a delivery's claim and its job (the claim was
// replicated, the job not, and forgetting the claim failed too): GitHub's
// redelivery must be queued, not answered "duplicate" and lost. Queued
// twice, the job's id keeps it to one job.
func TestIntakeTakesTheRedeliveryOfAnUnconfirmedClaim(t *testing.T) {
	in, q, st := newTestIntake(t)
	if first, _, _, err := st.ClaimDelivery(context.Background(), "d-lost"); err != nil || !first {
		t.Fatalf("claim: %v, %v", first, err)
	}
	body := defaultComment("/launch").JSON()
	if w := serve(in, webhookRequest("issue_comment", "d-lost", body)); w.Code != http.StatusAccepted {
		t.Fatalf("the redelivery: status %d (%s), want 202", w.Code, w.Body.String())
	}
	if n := len(q.Jobs()); n != 1 {
		t.Fatalf("%d jobs queued, want 1", n)
	}
	// Once queued, a redelivery is a duplicate, and the job is not queued again.
	if w := serve(in, webhookRequest("issue_comment", "d-lost", body)); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "duplicate") {
		t.Fatalf("a later redelivery: status %d (%s), want 200 duplicate", w.Code, w.Body.String())
	}
	if n := len(q.Jobs()); n != 1 {
		t.Fatalf("%d jobs queued, want 1", n)
	}
}

func TestRoutes(t *testing.T) {
	in := NewIntake(testSecret, "", nil, nil, quiet)
	ready := func(context.Context) error { return nil }
	h := Routes("/hooks", in, ready, quiet)
	if w := serve(h, httptest.NewRequest(http.MethodGet, "/healthz", nil)); w.Code != http.StatusOK {
		t.Errorf("healthz %d", w.Code)
	}
	if w := serve(h, webhookRequest("ping", "x", []byte("{}"))); w.Code != http.StatusNotFound {
		t.Errorf("webhook on the wrong path: %d", w.Code)
	}
	r := webhookRequest("ping", "x", []byte("{}"))
	r.URL.Path = "/hooks"
	if w := serve(h, r); w.Code != http.StatusOK {
		t.Errorf("webhook path: %d", w.Code)
	}
	redisDown := &NotReady{Part: "the state store (Redis) does not answer", Err: errors.New("dial tcp 10.0.0.7:6379: connection refused")}
	noSecret := Routes("/hooks", nil, func(context.Context) error { return redisDown }, quiet)
	r = webhookRequest("ping", "x", []byte("{}"))
	r.URL.Path = "/hooks"
	if w := serve(noSecret, r); w.Code != http.StatusNotFound {
		t.Errorf("without a secret the webhook must not be served: %d", w.Code)
	}
	w := serve(noSecret, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz with redis down: %d", w.Code)
	}
	// A short cause for anyone; the address stays in the log.
	if body := w.Body.String(); strings.Contains(body, "10.0.0.7") || !strings.Contains(body, "Redis") {
		t.Errorf("readyz answer %q: want a short cause without the address", body)
	}
}

// TestIntakeUnderLoadDropsNoAcceptedDelivery sends many command and
// non-command deliveries at once: every command is accepted and queued.
func TestIntakeUnderLoadDropsNoAcceptedDelivery(t *testing.T) {
	in, q, _ := newTestIntake(t)
	srv := httptest.NewServer(Routes("/hooks", in, nil, quiet))
	defer srv.Close()
	const commandsSent, noise = 200, 400
	var wg sync.WaitGroup
	statuses := make(chan int, commandsSent+noise)
	for i := 0; i < commandsSent+noise; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := defaultComment("just a review comment").JSON()
			if i < commandsSent {
				body = defaultComment("/launch").JSON()
			}
			r := webhookRequest("issue_comment", "load-"+strconv.Itoa(i), body)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks", r.Body)
			req.Header = r.Header
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}(i)
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[http.StatusAccepted] != commandsSent || counts[http.StatusNoContent] != noise {
		t.Errorf("statuses %v, want %d×202 and %d×204", counts, commandsSent, noise)
	}
	if n := len(q.Jobs()); n != commandsSent {
		t.Errorf("%d jobs queued, want %d", n, commandsSent)
	}
}

// While the secret is being changed, GITHUB_WEBHOOK_SECRET_PREVIOUS holds
// the old one: a delivery signed with either is taken, any other refused.
// A secret is used whole, a comma like any other byte: its halves are not
// secrets.
func TestTwoSecretsDuringASwitch(t *testing.T) {
	for _, tt := range []struct {
		secret, previous string
		want             map[string]int
	}{
		{"new-secret", "old-secret", map[string]int{"old-secret": http.StatusOK, "new-secret": http.StatusOK, "other": http.StatusUnauthorized, "old-secret,new-secret": http.StatusUnauthorized}},
		{"a,b c", "", map[string]int{"a,b c": http.StatusOK, "a": http.StatusUnauthorized, "b c": http.StatusUnauthorized, "b": http.StatusUnauthorized, "a,b": http.StatusUnauthorized}},
		{" padded ", "x\x00,y", map[string]int{" padded ": http.StatusOK, "x\x00,y": http.StatusOK, "padded": http.StatusUnauthorized, "x": http.StatusUnauthorized, "y": http.StatusUnauthorized}},
	} {
		in := NewIntake(tt.secret, tt.previous, nil, nil, quiet)
		body := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
		for secret, want := range tt.want {
			r := webhookRequest("ping", "d-"+secret, body)
			r.Header.Set("X-Hub-Signature-256", sign(secret, body))
			if w := serve(in, r); w.Code != want {
				t.Errorf("secret %q, previous %q; signed with %q: %d, want %d", tt.secret, tt.previous, secret, w.Code, want)
			}
		}
	}
}

// The webhook is matched before the router, and only for POST: the router
// still answers the path's other methods and every other path, and each
// delivery is counted by its answer.
func TestRoutesServeTheWebhookFirstAndTheRestThroughTheRouter(t *testing.T) {
	h := Routes("/api/github/webhooks", NewIntake(testSecret, "", nil, nil, quiet), func(context.Context) error { return nil }, quiet)
	before := testutil.ToFloat64(deliveriesTotal.WithLabelValues("204"))
	for _, tt := range []struct {
		req  *http.Request
		want int
	}{
		{webhookRequest("issue_comment", "routes", nonCommand(t)), http.StatusNoContent},
		{httptest.NewRequest(http.MethodGet, "/api/github/webhooks", nil), http.StatusMethodNotAllowed},
		{httptest.NewRequest(http.MethodPost, "/api/github/webhooks/", nil), http.StatusNotFound},
		{httptest.NewRequest(http.MethodGet, "/healthz", nil), http.StatusOK},
		{httptest.NewRequest(http.MethodGet, "/readyz", nil), http.StatusOK},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, tt.req)
		if w.Code != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.req.Method, tt.req.URL.Path, w.Code, tt.want)
		}
	}
	if got := testutil.ToFloat64(deliveriesTotal.WithLabelValues("204")) - before; got != 1 {
		t.Errorf("%v deliveries counted as 204, want 1", got)
	}
}
