package app

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

type redeliverEnv struct {
	t  *testing.T
	gh *githubtest.Server
	st *store.Store
	r  *Redeliverer
}

// newRedeliverEnv runs a Redeliverer against the fake GitHub and a real
// redis-server, with the production App client.
func newRedeliverEnv(t *testing.T) *redeliverEnv {
	t.Helper()
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	st, err := store.OpenWith(context.Background(), storetest.StartRedis(t), store.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &redeliverEnv{t: t, gh: gh, st: st, r: newTestRedeliverer(t, gh, st)}
}

func newTestRedeliverer(t *testing.T, gh *githubtest.Server, st *store.Store) *Redeliverer {
	t.Helper()
	inst, err := NewInstallations(gh.AppID, gh.PrivateKeyPEM, gh.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	return NewRedeliverer(inst, st, quiet, nil)
}

func (e *redeliverEnv) run() {
	e.t.Helper()
	if err := e.r.Run(context.Background()); err != nil {
		e.t.Fatalf("run: %v", err)
	}
}

// failed adds a failed delivery of event/action.
func (e *redeliverEnv) failed(guid, event, action string, at time.Time) githubtest.Delivery {
	return e.gh.AddDelivery(githubtest.Delivery{GUID: guid, Event: event, Action: action, StatusCode: http.StatusServiceUnavailable, DeliveredAt: at, InstallationID: 55})
}

// received records guid as intake does when it takes a delivery.
func (e *redeliverEnv) received(guids ...string) {
	e.t.Helper()
	ctx := context.Background()
	for _, g := range guids {
		if _, err := e.st.FirstDelivery(ctx, g); err != nil {
			e.t.Fatal(err)
		}
		if err := e.st.ConfirmDelivery(ctx, g); err != nil {
			e.t.Fatal(err)
		}
	}
}

// redeliveries counts the redeliveries the bot asked for, by GUID.
func redeliveries(gh *githubtest.Server) map[string]int {
	out := map[string]int{}
	for _, d := range gh.Deliveries() {
		if d.Redelivery {
			out[d.GUID]++
		}
	}
	return out
}

func missedCount(outcome string) float64 {
	return testutil.ToFloat64(missedDeliveriesTotal.WithLabelValues(outcome))
}

func TestRedeliverableCoversWantedEvents(t *testing.T) {
	if got, want := slices.Sorted(maps.Keys(redeliverable)), slices.Sorted(maps.Keys(wantedEvents)); !slices.Equal(got, want) {
		t.Errorf("redeliverable events %v, intake's %v", got, want)
	}
}

func TestRedeliverFailedDeliveriesOfSubscribedEventsOnly(t *testing.T) {
	e := newRedeliverEnv(t)
	now := time.Now().UTC().Truncate(time.Second)
	at := now.Add(-10 * time.Minute)
	want := map[string]int{}
	// The log lists newest first: older deliveries came first.
	e.failed("too-old", "issue_comment", "created", now.Add(-25*time.Hour))
	for i, ev := range []struct{ event, action string }{
		{"issue_comment", "created"}, {"check_run", "requested_action"}, {"pull_request", "closed"},
		{"installation", "deleted"}, {"installation_repositories", "removed"},
	} {
		guid := fmt.Sprintf("missed-%d", i)
		e.failed(guid, ev.event, ev.action, at)
		want[guid] = 1
	}
	e.gh.AddDelivery(githubtest.Delivery{GUID: "ok", Event: "issue_comment", Action: "created", DeliveredAt: at})
	e.gh.AddDelivery(githubtest.Delivery{GUID: "no-content", Event: "issue_comment", Action: "created", StatusCode: http.StatusNoContent, DeliveredAt: at})
	e.failed("push", "push", "", at)
	e.failed("synchronize", "pull_request", "synchronize", at)
	e.failed("edited", "issue_comment", "edited", at)
	e.failed("seen", "issue_comment", "created", at)
	e.received("seen")
	e.failed("redelivered-ok", "issue_comment", "created", at)
	e.gh.AddDelivery(githubtest.Delivery{GUID: "redelivered-ok", Event: "issue_comment", Action: "created", Redelivery: true, DeliveredAt: at.Add(time.Minute)})

	found, asked := missedCount("found"), missedCount("redelivered")
	e.gh.ResetCalls()
	e.run()
	got := map[string]int{}
	for _, d := range e.gh.Deliveries() {
		if d.Redelivery && d.GUID != "redelivered-ok" {
			got[d.GUID]++
		}
	}
	if n := e.gh.CallCount(http.MethodPost, "/app/hook/deliveries/"); n != len(want) {
		t.Errorf("%d asks, want %d", n, len(want))
	}
	if !maps.Equal(got, want) {
		t.Errorf("redelivered %v, want %v", got, want)
	}
	if d := missedCount("found") - found; d != float64(len(want)) {
		t.Errorf("found went up by %v, want %d", d, len(want))
	}
	if d := missedCount("redelivered") - asked; d != float64(len(want)) {
		t.Errorf("redelivered went up by %v, want %d", d, len(want))
	}
	rec, err := e.st.Redelivery(context.Background(), "missed-0")
	if err != nil || rec.Attempts != 1 || !rec.FailedAt.Equal(at) || rec.LastAsked == 0 {
		t.Errorf("record %+v, %v; want 1 attempt, failed at %s", rec, err, at)
	}

	// GitHub hands them over this time: nothing more to ask for.
	e.received(slices.Collect(maps.Keys(want))...)
	e.gh.ResetCalls()
	e.run()
	if n := e.gh.CallCount(http.MethodPost, "/app/hook/deliveries/"); n != 0 {
		t.Errorf("%d redeliveries asked for deliveries the bot has", n)
	}
}

// GitHub's redelivery fails again (the bot is still down): the bot asks
// again on later passes, 3 times in all, then gives up once.
func TestRedeliverCapsAttempts(t *testing.T) {
	e := newRedeliverEnv(t)
	e.failed("down", "issue_comment", "created", time.Now().Add(-time.Minute))
	givenUp := missedCount("given_up")

	// GitHub refuses the first ask: it counts as an attempt, and is asked again.
	e.gh.FailNext(http.MethodPost, "/app/hook/deliveries/", http.StatusBadGateway, 1)
	if err := e.r.Run(context.Background()); err == nil {
		t.Fatal("a refused redelivery is not reported")
	}
	for range 4 {
		e.run()
	}
	if n := redeliveries(e.gh)["down"]; n != 2 {
		t.Errorf("%d redeliveries, want 2 (and one refused ask)", n)
	}
	if n := e.gh.CallCount(http.MethodPost, "/app/hook/deliveries/"); n != maxRedeliveryAttempts {
		t.Errorf("%d asks, want %d", n, maxRedeliveryAttempts)
	}
	rec, _ := e.st.Redelivery(context.Background(), "down")
	if rec.Attempts != maxRedeliveryAttempts || !rec.GivenUp {
		t.Errorf("record %+v", rec)
	}
	if d := missedCount("given_up") - givenUp; d != 1 {
		t.Errorf("given_up went up by %v, want 1", d)
	}
}

func TestRedeliverAtMostCapPerRun(t *testing.T) {
	e := newRedeliverEnv(t)
	start := time.Now().Add(-10 * time.Minute)
	for i := range maxRedeliveriesPerRun + 10 {
		e.failed(fmt.Sprintf("g-%02d", i), "issue_comment", "created", start.Add(time.Duration(i)*time.Second))
	}
	e.run()
	first := redeliveries(e.gh)
	if len(first) != maxRedeliveriesPerRun {
		t.Fatalf("first pass asked for %d, want %d", len(first), maxRedeliveriesPerRun)
	}
	// The oldest go first; the newest wait for the next pass.
	if first[fmt.Sprintf("g-%02d", maxRedeliveriesPerRun)] != 0 {
		t.Errorf("a newer delivery went before an older one: %v", first)
	}
	e.received(slices.Collect(maps.Keys(first))...)
	e.run()
	if got := redeliveries(e.gh); len(got) != maxRedeliveriesPerRun+10 {
		t.Errorf("after two passes %d of %d asked for", len(got), maxRedeliveriesPerRun+10)
	}
}

// The log is read across pages down to the lookback; then the mark makes
// the next pass read only what is new.
func TestRedeliverPagesThenReadsOnlyWhatIsNew(t *testing.T) {
	e := newRedeliverEnv(t)
	start := time.Now().UTC().Add(-300 * time.Minute).Truncate(time.Second)
	failedAt := map[int]bool{5: true, 150: true, 240: true}
	for i := range 250 {
		d := githubtest.Delivery{GUID: fmt.Sprintf("p-%03d", i), Event: "issue_comment", Action: "created", DeliveredAt: start.Add(time.Duration(i) * time.Minute)}
		if failedAt[i] {
			d.StatusCode = http.StatusBadGateway
		}
		e.gh.AddDelivery(d)
	}
	e.run()
	if got, want := redeliveries(e.gh), map[string]int{"p-005": 1, "p-150": 1, "p-240": 1}; !maps.Equal(got, want) {
		t.Errorf("redelivered %v, want %v", got, want)
	}
	if n := e.gh.CallCount(http.MethodGet, "/app/hook/deliveries"); n != 3 {
		t.Errorf("%d pages read, want 3", n)
	}
	for _, c := range e.gh.Calls() {
		if c.Method == http.MethodGet && c.Query.Get("per_page") != "100" {
			t.Errorf("listed with per_page %q", c.Query.Get("per_page"))
		}
	}
	e.received("p-005", "p-150", "p-240")

	e.gh.ResetCalls()
	e.failed("new", "issue_comment", "created", time.Now())
	e.run()
	if n := e.gh.CallCount(http.MethodGet, "/app/hook/deliveries"); n != 1 {
		t.Errorf("second pass read %d pages, want 1", n)
	}
	if n := redeliveries(e.gh)["new"]; n != 1 {
		t.Errorf("new missed delivery asked for %d times", n)
	}
	e.received("new")

	e.gh.ResetCalls()
	e.run()
	if n := len(e.gh.Calls()); n != 1 {
		t.Errorf("a pass with nothing new made %d calls, want 1", n)
	}
}

func TestRedeliverConcurrentRunsAskOnce(t *testing.T) {
	e := newRedeliverEnv(t)
	e.failed("once", "issue_comment", "created", time.Now().Add(-time.Minute))
	e.gh.SetLatency(200 * time.Millisecond) // the first pass holds the lock while the other tries
	other := newTestRedeliverer(t, e.gh, e.st)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range []*Redeliverer{e.r, other} {
		wg.Go(func() { errs[i] = r.Run(context.Background()) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("runs: %v", errs)
	}
	if n := e.gh.CallCount(http.MethodPost, "/app/hook/deliveries/"); n != 1 {
		t.Errorf("%d redeliveries asked for, want 1", n)
	}
	if n := e.gh.CallCount(http.MethodGet, "/app/hook/deliveries"); n != 1 {
		t.Errorf("the log was read %d times, want 1", n)
	}
}

// deliver posts body through intake under guid, as GitHub's redelivery does.
func (h *harness) deliver(event, guid string, body []byte) int {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.web.URL+"/api/github/webhooks", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", guid)
	req.Header.Set("X-Hub-Signature-256", sign(testSecret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A /launch GitHub failed to deliver two hours ago is recovered and
// answered, never run; one that failed minutes ago runs.
func TestEndToEndRedeliveredCommand(t *testing.T) {
	h := newHarness(t, e2eServerConfig)
	r := newTestRedeliverer(t, h.gh, h.st)

	old := defaultComment("/launch")
	old.CreatedAt = time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	oldBody := old.postTo(h.gh)
	h.gh.AddDelivery(githubtest.Delivery{GUID: "late", Event: "issue_comment", Action: "created", StatusCode: http.StatusServiceUnavailable, DeliveredAt: old.CreatedAt, InstallationID: 55})
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := redeliveries(h.gh)["late"]; n != 1 {
		t.Fatalf("asked for %d redeliveries, want 1", n)
	}
	// The fake does not post it: deliver it as GitHub would, same GUID.
	if status := h.deliver("issue_comment", "late", oldBody); status != http.StatusAccepted {
		t.Fatalf("redelivery answered %d", status)
	}
	h.waitHandled()
	got := botComments(h.gh, "packit/ogr", 7)
	wantText := fmt.Sprintf("@alice This command reached me late: GitHub failed to deliver it at %s UTC, and it was delivered again at my request. Comment it again if you still want it.",
		old.CreatedAt.Format("2006-01-02 15:04"))
	if len(got) != 1 || !strings.Contains(got[0].Body, wantText) {
		t.Fatalf("answers: %+v\nwant one with %q", got, wantText)
	}
	if r := h.gh.Reactions("packit/ogr", old.ID); !equal(r, []string{"eyes", "confused"}) {
		t.Errorf("reactions %v", r)
	}
	if n := len(h.launcher.requests()); n != 0 {
		t.Fatalf("a late command launched %d VMs", n)
	}

	young := defaultComment("/launch")
	young.CreatedAt = time.Now().UTC().Add(-5 * time.Minute).Truncate(time.Second)
	youngBody := young.postTo(h.gh)
	h.gh.AddDelivery(githubtest.Delivery{GUID: "recent", Event: "issue_comment", Action: "created", StatusCode: http.StatusServiceUnavailable, DeliveredAt: young.CreatedAt, InstallationID: 55})
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status := h.deliver("issue_comment", "recent", youngBody); status != http.StatusAccepted {
		t.Fatalf("redelivery answered %d", status)
	}
	h.waitHandled()
	if got := botComments(h.gh, "packit/ogr", 7); len(got) != 1 {
		t.Errorf("a recent recovered command was answered: %+v", got[1:])
	}
	if n := len(h.launcher.requests()); n != 1 {
		t.Fatalf("a recent recovered command launched %d VMs, want 1", n)
	}

	// Both are the bot's now: a later pass asks for nothing more.
	h.gh.ResetCalls()
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := h.gh.CallCount(http.MethodPost, "/app/hook/deliveries/"); n != 0 {
		t.Errorf("%d redeliveries asked for commands the bot has", n)
	}
}
