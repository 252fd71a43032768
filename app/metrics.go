package app

import (
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/packit/packit-launch/commands"
)

var (
	deliveriesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "packit_launch_webhook_deliveries_total",
		Help: "Webhook deliveries by HTTP answer: 202 queued, 204 nothing to do, 200 ping or duplicate, 401 unsigned or bad signature, 413 too large, 400 malformed, 503 state store or queue down, or the webhook memory budget in use during a flood (GitHub does not resend these).",
	}, []string{"code"})
	commandsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "packit_launch_commands_total",
		Help: "Commands handled, by command and outcome (answered; refused, with a comment saying why; failed: every retry failed and the PR got an apology; unanswered: not even the apology got through; over_budget: not answered, its author was over limits.commands_per_minute and had been told).",
	}, []string{"command", "outcome"})
	prUpdatesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "packit_launch_pr_told_without_record_total",
		Help: "PRs told that a VM ended whose launch record was gone (sweeper, timer, vms terminate), by outcome (told; failed: the app was uninstalled, the repository is gone, or GitHub kept failing).",
	}, []string{"outcome"})
	rateLimitedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "packit_launch_github_rate_limited_total",
		Help: "Jobs that hit GitHub's rate limit, by what became of them (held: queued again for the reset; not_held: the reset was over an hour away, retried as usual).",
	}, []string{"outcome"})
	missedDeliveriesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "packit_launch_missed_deliveries_total",
		Help: "Webhook deliveries GitHub failed to hand over, of events the bot acts on, found in the App's delivery log, by outcome (found: once per delivery; redelivered: each redelivery GitHub accepted; given_up: once per delivery still failing after 3 redeliveries).",
	}, []string{"outcome"})
)

// countDeliveries counts each webhook answer by status code. Not
// promhttp.InstrumentHandlerCounter: its label map and writer cost a
// non-command delivery ~0.3 µs and 5 allocations, on the path the public can
// flood.
func countDeliveries(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		deliveryCounter(sw.code).Inc()
	})
}

// deliveryCounters are deliveriesTotal's counters by code, resolved once.
var deliveryCounters sync.Map // int → prometheus.Counter

func deliveryCounter(code int) prometheus.Counter {
	if code == 0 {
		code = http.StatusOK // net/http's answer to a handler that wrote nothing
	}
	if c, ok := deliveryCounters.Load(code); ok {
		return c.(prometheus.Counter)
	}
	c := deliveriesTotal.WithLabelValues(strconv.Itoa(code))
	deliveryCounters.Store(code, c)
	return c
}

// statusWriter remembers the status an http.Handler answered.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (read deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// commandName is the command a line holds, for metrics: one of the
// grammar's kinds or "invalid".
func commandName(line string) string {
	cmd, err := commands.Parse(line)
	var usage *commands.UsageError
	switch {
	case errors.As(err, &usage) && usage.Kind != "":
		return string(usage.Kind)
	case err != nil:
		return "invalid"
	}
	return string(cmd.Kind)
}
