package app

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads the /metrics page as an operator's Prometheus would:
// series (name with labels, as printed) to value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics answered %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsFollowLaunchesRefusalsAndSweeps(t *testing.T) {
	e := newLaunchEnv(t)
	before := scrape(t, e.web.URL)

	l := e.launch(defaultComment("/launch"))
	bad := defaultComment("/launch --colour blue")
	if got := e.command(bad); len(got) != 1 {
		t.Fatalf("usage answer: %+v", got)
	}
	// Three hours on, the sweeper finds the VM past its expiry.
	e.launches.lc.SetClock(func() time.Time { return time.Now().Add(3 * time.Hour) })
	swept := time.Now().Unix()
	e.launches.lc.Sweep(context.Background())
	e.waitTerminated(l.InstanceID)

	after := scrape(t, e.web.URL)
	for series, want := range map[string]float64{
		`packit_launch_webhook_deliveries_total{code="202"}`:                2,
		`packit_launch_commands_total{command="launch",outcome="answered"}`: 1,
		`packit_launch_commands_total{command="launch",outcome="refused"}`:  1,
		`packit_launch_launches_total{outcome="running"}`:                   1,
		`packit_launch_launch_duration_seconds_count`:                       1,
		`packit_launch_vms_terminated_total{by="sweeper"}`:                  1,
		`packit_launch_sweeps_total{outcome="ok"}`:                          1,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s went up by %v, want %v", series, got, want)
		}
	}
	if after["packit_launch_managed_vms"] != 0 {
		t.Errorf("managed VMs after the sweep: %v, want 0", after["packit_launch_managed_vms"])
	}
	if after["packit_launch_sweep_last_success_timestamp_seconds"] < float64(swept) {
		t.Errorf("last successful sweep at %v", after["packit_launch_sweep_last_success_timestamp_seconds"])
	}
}
