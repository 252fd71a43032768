package provision

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	terminateDeniedTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "packit_launch_vms_terminate_denied_total",
		Help: "Attempts to terminate a VM past its time that AWS denied (the run-time policy, or a renamed VM without the bot's tags): each such VM runs until an operator ends it.",
	})
	adoptedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "packit_launch_records_rebuilt_total",
		Help: "Running VMs whose lost launch record the sweeper rebuilt from their tags (rebuilt), or could not (not_well_formed).",
	}, []string{"outcome"})
	launchesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "packit_launch_launches_total",
		Help: "Launches that reached an outcome: running, or failed.",
	}, []string{"outcome"})
	launchSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "packit_launch_launch_duration_seconds",
		Help:    "From an accepted /launch to a running VM.",
		Buckets: []float64{30, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 2400},
	})
	terminatedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "packit_launch_vms_terminated_total",
		Help: "VMs the bot terminated, by path: record (expiry, stop, PR close, uninstall), timer (an expiry timer whose record was gone), failed_launch (left by a failed reservation), sweeper (overdue by its tags).",
	}, []string{"by"})
	sweepsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "packit_launch_sweeps_total",
		Help: "Sweeps of AWS, by outcome (ok, or error: some region could not be listed or some VM not terminated).",
	}, []string{"outcome"})
	sweepLastSuccess = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "packit_launch_sweep_last_success_timestamp_seconds",
		Help: "When this replica last swept every region without an error (Unix time). Alert when it falls behind: VMs past their time may be running.",
	})
	managedVMs = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "packit_launch_managed_vms",
		Help: "Managed VMs left running after this replica's last complete sweep (what the operator is paying for).",
	})
	hostKeyMismatchTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "packit_launch_host_key_mismatch_total",
		Help: "VMs that presented the bot a host key their console did not list: the PR is warned; look for someone between the bot and the VM.",
	})
	sshAnswerSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "packit_launch_ssh_answer_seconds",
		Help:    "From a VM running to its sshd answering the bot's probe (what the ready comment waits for).",
		Buckets: []float64{1, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600},
	})
)

// dailyCounter keeps the fleet page's per-day totals (*store.Store).
type dailyCounter interface {
	CountOutcome(ctx context.Context, at time.Time, outcome string) error
}

// countOutcome counts a launch's outcome (running, failed) in the metrics
// and in the day's totals, when rec keeps them (best effort: a lost count
// costs a chart a unit, not a launch).
func countOutcome(ctx context.Context, rec any, at time.Time, outcome string, log *slog.Logger) {
	launchesTotal.WithLabelValues(outcome).Inc()
	if c, ok := rec.(dailyCounter); ok {
		if err := c.CountOutcome(ctx, at, outcome); err != nil {
			log.Warn("count the launch's outcome for the day", "outcome", outcome, "err", err)
		}
	}
}
