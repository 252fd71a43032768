package web

import (
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/packit/packit-launch/store"
)

// maxProjectCharts bounds the instance-hours charts on the fleet page.
const maxProjectCharts = 12

func (s *Server) fleetPage(w http.ResponseWriter, r *http.Request) {
	sess := s.viewer(w, r)
	if sess == nil {
		return
	}
	if !s.cfg.IsOperator(sess.Login) {
		s.problem(w, sess, http.StatusForbidden, "Only this instance's operators (the server config's operators) see the fleet.")
		return
	}
	ctx := r.Context()
	projects := s.cfg.Projects
	if len(projects) > maxProjectCharts {
		projects = projects[:maxProjectCharts]
	}
	var names []string
	for i := range projects {
		names = append(names, projects[i].Name())
	}
	days, err := s.records.Days(ctx, s.now(), store.DaysKept, names)
	if err == nil {
		var active []store.Active
		if active, err = s.records.ActiveIndex(ctx); err == nil {
			s.page(w, http.StatusOK, sess, "Fleet", s.fleet(days, names, active))
			return
		}
	}
	s.log.Error("web: fleet figures", "err", err)
	s.problem(w, sess, http.StatusServiceUnavailable, "The fleet's figures cannot be read right now; reload in a moment.")
}

// fleet draws the month's figures and what runs now.
func (s *Server) fleet(days []store.DayTotals, projects []string, active []store.Active) string {
	labels := make([]string, len(days))
	running, failed := make([]float64, len(days)), make([]float64, len(days))
	p50, p90 := make([]float64, len(days)), make([]float64, len(days))
	for i, d := range days {
		labels[i] = d.Day.Format("01-02")
		running[i], failed[i] = float64(d.Launches["running"]), float64(d.Launches["failed"])
		p50[i], p90[i] = readyQuantile(d.Ready, 0.5)/60, readyQuantile(d.Ready, 0.9)/60
	}
	var d doc
	d.raw(`<h1>Fleet</h1><div class="charts">`)
	d.raw(`<figure id="launches-chart"><figcaption>Launches per day, by outcome</figcaption>`)
	d.raw(barChart("Launches per day", labels, []series{{"running", "#1a7f37", running}, {"failed", "#cf222e", failed}}, 0))
	d.raw(`</figure><figure id="ready-chart"><figcaption>From comment to ready, minutes (p50, p90)</figcaption>`)
	d.raw(lineChart("Minutes from comment to ready", labels, []series{{"p50", "#0969da", p50}, {"p90", "#8250df", p90}}))
	d.raw("</figure>")
	for i, name := range projects {
		hours := make([]float64, len(days))
		for j, day := range days {
			hours[j] = day.Hours[name]
		}
		budget := s.cfg.Projects[i].Limits.DailyInstanceHours
		d.f(`<figure class="hours-chart" data-project="%s"><figcaption>Instance-hours per day: %s`, name, name)
		if budget > 0 {
			d.f(` (budget %s a day)`, num(budget))
		}
		d.raw("</figcaption>")
		d.raw(barChart("Instance-hours of "+name, labels, []series{{"instance-hours", "#0969da", hours}}, budget))
		d.raw("</figure>")
	}
	d.raw(`</div><h2>Running now, by region</h2><table id="regions"><thead><tr><th>region</th><th>VMs running</th></tr></thead><tbody>`)
	byRegion := map[string]int{}
	for _, a := range active {
		if a.State == store.StateRunning {
			byRegion[a.Region]++
		}
	}
	regions := make([]string, 0, len(byRegion))
	for r := range byRegion {
		regions = append(regions, r)
	}
	slices.SortFunc(regions, strings.Compare)
	for _, r := range regions {
		name := r
		if name == "" {
			name = "(not known yet)"
		}
		d.f(`<tr><td>%s</td><td>%d</td></tr>`, name, byRegion[r])
	}
	if len(regions) == 0 {
		d.raw(`<tr><td colspan="2" class="note">None.</td></tr>`)
	}
	d.raw("</tbody></table>")
	return d.String()
}

// readyQuantile is the q-quantile of a day's comment → ready histogram, in
// seconds: the upper bound of its bucket (NaN for a day without launches).
func readyQuantile(counts []int64, q float64) float64 {
	var total int64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return math.NaN()
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			if i < len(store.ReadyBuckets) {
				return store.ReadyBuckets[i]
			}
			break
		}
	}
	return 2 * store.ReadyBuckets[len(store.ReadyBuckets)-1]
}
