package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/store"
)

// pendingLaunches is how many reservations BenchmarkCommandsWhileReservationsPending
// keeps pending.
const pendingLaunches = 200

// BenchmarkCommandsWhileReservationsPending: 200 launches whose
// reservations the fake Launch service holds pending (each of a
// reservation's steps takes a day of the real clock: nothing is
// compressed), while commands on other PRs are answered. The bot is wired
// as serve wires it (newOverheadEnv). Each iteration is one command, in
// turn: /launch status on a PR without launches (from the signed delivery
// to the bot's answer, and to its 👀), and /launch stop on a PR whose
// launch is pending (to its answer):
//
//	go test -run '^$' -bench BenchmarkCommandsWhileReservationsPending -benchtime 60x ./app/
//
// ns/op means nothing here; the figures are the p50 and p99 of each answer
// time, and the test process's goroutines and RSS at that load (the bot,
// and the fake GitHub and Launch service it talks to).
func BenchmarkCommandsWhileReservationsPending(b *testing.B) {
	e := newOverheadEnvWith(b, 24*time.Hour, 0)
	start := time.Now()
	for i := range pendingLaunches {
		e.comment(b, 1000+i, "/launch", fmt.Sprintf("pending-%d", i))
	}
	// The fake refuses more than 5 new pending reservations a second (429):
	// the launch jobs' retries spread them out.
	pending := func() int {
		n := 0
		for i := range pendingLaunches {
			ls, err := e.st.LaunchesByPR(context.Background(), "packit/ogr", 1000+i)
			if err != nil {
				b.Fatal(err)
			}
			for _, l := range ls {
				if l.State == store.StateLaunching && l.ReservationID != 0 && !l.ReservationPollAt.IsZero() {
					n++
				}
			}
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Minute); pending() < pendingLaunches; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d launches are pending on their reservations after 10 minutes", pending(), pendingLaunches)
		}
	}
	b.Logf("%d reservations pending after %s", pendingLaunches, time.Since(start).Round(time.Second))

	var status, eyes, stop []time.Duration
	n := 0
	for b.Loop() {
		n++
		if n%2 == 1 {
			pr := 5000 + n
			id := e.comment(b, pr, "/launch status", fmt.Sprintf("status-%d", n))
			posted := time.Now()
			var answered, seen time.Duration
			for deadline := posted.Add(60 * time.Second); answered == 0; time.Sleep(2 * time.Millisecond) {
				if seen == 0 && len(e.gh.Reactions("packit/ogr", id)) > 0 {
					seen = time.Since(posted)
				}
				if len(botComments(e.gh, "packit/ogr", pr)) > 0 {
					answered = time.Since(posted)
				}
				if time.Now().After(deadline) {
					b.Fatalf("/launch status on #%d not answered within 60 s", pr)
				}
			}
			if seen == 0 {
				seen = answered // the 👀 came with the answer
			}
			status, eyes = append(status, answered), append(eyes, seen)
			continue
		}
		pr := 1000 + (n/2)%pendingLaunches
		before := len(botComments(e.gh, "packit/ogr", pr))
		e.comment(b, pr, "/launch stop", fmt.Sprintf("stop-%d", n))
		posted := time.Now()
		for deadline := posted.Add(60 * time.Second); len(botComments(e.gh, "packit/ogr", pr)) == before; time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("/launch stop on #%d not answered within 60 s", pr)
			}
		}
		stop = append(stop, time.Since(posted))
	}
	b.StopTimer()
	if got := pending(); got != pendingLaunches-len(stop) && got != pendingLaunches {
		b.Logf("%d launches still pending", got) // a stopped one stays launching until its VM is up
	}
	if got := len(e.api.Reservations("org-1")); got != pendingLaunches {
		b.Fatalf("the Launch service holds %d reservations for %d launches", got, pendingLaunches)
	}
	b.ReportMetric(0, "ns/op")
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"status", status}, {"eyes", eyes}, {"stop", stop}} {
		if len(m.ds) > 0 {
			b.ReportMetric(ms(percentile(m.ds, 50)), m.name+"-p50-ms")
			b.ReportMetric(ms(percentile(m.ds, 99)), m.name+"-p99-ms")
		}
	}
	rss := rssMB()
	b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
	b.ReportMetric(rss, "rss-MB")
	b.Logf("%d pending reservations: /launch status answered p50 %.0f ms, p99 %.0f ms; 👀 p99 %.0f ms; /launch stop p99 %.0f ms; %d goroutines, RSS %.0f MB",
		pendingLaunches, ms(percentile(status, 50)), ms(percentile(status, 99)), ms(percentile(eyes, 99)), ms(percentile(stop, 99)), runtime.NumGoroutine(), rss)
}

// comment posts body as a new comment on PR pr (created open if new) under
// delivery id, and returns the comment's id.
func (e *overheadEnv) comment(b *testing.B, pr int, body, delivery string) int64 {
	b.Helper()
	e.gh.SetPull("packit/ogr", githubtest.PullRequest{Number: pr, State: "open", HeadSHA: fmt.Sprintf("%040x", pr), HeadRef: fmt.Sprintf("feature-%d", pr), BaseRef: "main"})
	c := defaultComment(body)
	c.Number = pr
	e.deliver(b, c.postTo(e.gh), delivery)
	return c.ID
}

// deliver posts a signed issue_comment delivery to the bot's intake and
// checks that it was queued (202).
func (e *overheadEnv) deliver(b *testing.B, payload []byte, delivery string) {
	b.Helper()
	req, err := http.NewRequest(http.MethodPost, e.web.URL+"/api/github/webhooks", bytes.NewReader(payload))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "issue_comment")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", sign(testSecret, payload))
	resp, err := e.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("the intake answered %d to delivery %s", resp.StatusCode, delivery)
	}
}

// rssMB is the process's resident set size.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
