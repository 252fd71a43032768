package deploy_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	promql "github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

const (
	promPkg       = "github.com/prometheus/client_golang/prometheus"
	promautoPkg   = "github.com/prometheus/client_golang/prometheus/promauto"
	promhttpPkg   = "github.com/prometheus/client_golang/prometheus/promhttp"
	collectorsPkg = "github.com/prometheus/client_golang/prometheus/collectors"
)

// series is one name the bot's /metrics serves.
type series struct {
	family string          // the metric as defined (a histogram's name without _bucket)
	labels map[string]bool // its own labels (plus le for a _bucket)
}

// exported is what the bot's /metrics serves: the metrics defined in the Go
// source of the packages the binary links (read with go/ast: no bot code
// runs), expanded as the exposition format does (a histogram's _bucket, _sum
// and _count; a summary's _sum and _count; a counter's name, and name_total
// when it lacks the suffix, as OpenMetrics scrapes store it), plus the Go
// runtime's and the process's metrics of the default registry the bot serves.
type exported struct {
	series   map[string]series
	families map[string]string // name → file:line of its definition (the bot's own)
	literals map[string]bool   // every string literal of those packages: label values
}

var (
	exportedOnce sync.Once
	exportedVal  exported
	exportedErr  string
)

// Labels the scrape adds (Prometheus, the Prometheus Operator, Kubernetes SD).
var targetLabels = map[string]bool{"job": true, "instance": true, "namespace": true, "pod": true, "container": true, "service": true, "endpoint": true}

func botMetrics(t *testing.T) exported {
	t.Helper()
	exportedOnce.Do(func() {
		pkgs, err := binaryPackages()
		if err != nil {
			exportedErr = err.Error()
			return
		}
		defer func() {
			if r := recover(); r != nil {
				f, ok := r.(fatal)
				if !ok {
					panic(r)
				}
				exportedErr = string(f)
			}
		}()
		exportedVal = readBotMetrics(pkgs)
	})
	if exportedErr != "" {
		t.Fatal(exportedErr)
	}
	return exportedVal
}

// fatal is what failf panics with while the bot's source is read (once, for
// every test that needs it); botMetrics turns it into t.Fatal.
type fatal string

func failf(format string, args ...any) { panic(fatal(fmt.Sprintf(format, args...))) }

func readBotMetrics(pkgs []goPackage) exported {
	ex := exported{series: map[string]series{}, families: map[string]string{}, literals: map[string]bool{}}
	fset := token.NewFileSet()
	servesDefault := false
	registers := map[string]bool{} // packages that call prometheus.(Must)Register
	type pending struct {
		name, kind, pkg, at string
		labels              []string
	}
	var defs []pending
	for _, p := range pkgs {
		for _, f := range p.GoFiles {
			path := filepath.Join(p.Dir, f)
			file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				failf("%v", err)
			}
			imports := map[string]string{}
			for _, imp := range file.Imports {
				ip, _ := strconv.Unquote(imp.Path.Value)
				name := filepath.Base(ip)
				if imp.Name != nil {
					name = imp.Name.Name
				}
				imports[name] = ip
			}
			pkgOf := func(e ast.Expr) (string, string) { // pkg.Name → import path, Name
				sel, ok := e.(*ast.SelectorExpr)
				if !ok {
					return "", ""
				}
				id, ok := sel.X.(*ast.Ident)
				if !ok {
					return "", ""
				}
				return imports[id.Name], sel.Sel.Name
			}
			handled := map[*ast.CompositeLit]bool{}
			var opts []*ast.CompositeLit
			ast.Inspect(file, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BasicLit:
					if n.Kind == token.STRING {
						if s, err := strconv.Unquote(n.Value); err == nil {
							ex.literals[s] = true
						}
					}
				case *ast.CompositeLit:
					if ip, name := pkgOf(n.Type); ip == promPkg && strings.HasSuffix(name, "Opts") && name != "ProcessCollectorOpts" {
						opts = append(opts, n)
					}
				case *ast.CallExpr:
					ip, fn := pkgOf(n.Fun)
					if ip == "" {
						// promauto.With(reg).NewCounter(...)
						if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
							if call, ok := sel.X.(*ast.CallExpr); ok {
								if wip, w := pkgOf(call.Fun); wip == promautoPkg && w == "With" {
									ip, fn = promautoPkg, sel.Sel.Name
								}
							}
						}
					}
					at := fset.Position(n.Pos()).String()
					switch {
					case ip == promhttpPkg && fn == "Handler":
						servesDefault = true
					case ip == promhttpPkg && (fn == "HandlerFor" || fn == "InstrumentMetricHandler"):
						failf("%s: promhttp.%s: the bot no longer serves only the default registry; teach deploy/metrics_test.go which registry /metrics serves", at, fn)
					case ip == promPkg && (fn == "NewRegistry" || fn == "NewPedanticRegistry" || fn == "NewGoCollector" || fn == "NewProcessCollector"),
						ip == collectorsPkg,
						ip == promPkg && fn == "Unregister" && !isIdent(n.Args):
						// Unregister(x) of a collector it registered itself is fine;
						// anything that changes the default registry's own is not.
						failf("%s: %s.%s: teach deploy/metrics_test.go what /metrics serves now", at, filepath.Base(ip), fn)
					case ip == promPkg && (fn == "Register" || fn == "MustRegister"):
						registers[p.ImportPath] = true
					case ip == promPkg && fn == "NewDesc":
						defs = append(defs, pending{name: stringArg(fset, n, 0), kind: "desc", pkg: p.ImportPath, at: at, labels: stringsArg(fset, n, 2)})
					case (ip == promPkg || ip == promautoPkg) && strings.HasPrefix(fn, "New") && len(n.Args) > 0:
						lit, ok := n.Args[0].(*ast.CompositeLit)
						if !ok {
							return true
						}
						if oip, _ := pkgOf(lit.Type); oip != promPkg {
							return true
						}
						handled[lit] = true
						kind := strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(fn, "New"), "Func"), "Vec"))
						var labels []string
						if strings.HasSuffix(fn, "Vec") {
							labels = stringsArg(fset, n, 1)
						}
						name := fqName(fset, lit)
						if ip == promautoPkg {
							registers[p.ImportPath+" "+name] = true
						}
						defs = append(defs, pending{name: name, kind: kind, pkg: p.ImportPath, at: at, labels: labels})
					}
				}
				return true
			})
			for _, o := range opts {
				if !handled[o] {
					failf("%s: metric options not passed straight to a prometheus/promauto New… call: teach deploy/metrics_test.go to read them", fset.Position(o.Pos()))
				}
			}
		}
	}
	if !servesDefault {
		failf("no package the binary links calls promhttp.Handler(): teach deploy/metrics_test.go what /metrics serves")
	}
	imports := map[string][]string{}
	for _, p := range pkgs {
		imports[p.ImportPath] = p.Imports
	}
	for _, d := range defs {
		// Registered by promauto, or by its package or one importing it.
		registered := registers[d.pkg] || registers[d.pkg+" "+d.name]
		for by := range registers {
			registered = registered || slices.Contains(imports[by], d.pkg)
		}
		if !registered {
			failf("%s: %s is made with prometheus.New… but no package that can reach it registers a collector", d.at, d.name)
		}
		if prev, ok := ex.families[d.name]; ok {
			failf("%s: %s is defined twice (also at %s)", d.at, d.name, prev)
		}
		ex.families[d.name] = d.at
		labels := map[string]bool{}
		for _, l := range d.labels {
			labels[l] = true
		}
		add := func(name string, extra ...string) {
			l := maps(labels)
			for _, e := range extra {
				l[e] = true
			}
			ex.series[name] = series{family: d.name, labels: l}
		}
		switch d.kind {
		case "counter":
			add(d.name)
			if !strings.HasSuffix(d.name, "_total") {
				add(d.name + "_total")
			}
		case "gauge", "untyped", "desc":
			add(d.name)
		case "histogram":
			add(d.name+"_bucket", "le")
			add(d.name + "_sum")
			add(d.name + "_count")
		case "summary":
			add(d.name, "quantile")
			add(d.name + "_sum")
			add(d.name + "_count")
		default:
			failf("%s: a metric of kind %q: teach deploy/metrics_test.go", d.at, d.kind)
		}
	}
	// The default registry's own collectors (Go runtime, process), as the
	// client_golang the binary links registers them: gathered here, in a
	// process that registered nothing else.
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		failf("%v", err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			continue
		}
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		s := series{family: name, labels: labels}
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			b := series{family: name, labels: maps(labels)}
			b.labels["le"] = true
			ex.series[name+"_bucket"], ex.series[name+"_sum"], ex.series[name+"_count"] = b, s, s
		case dto.MetricType_SUMMARY:
			q := series{family: name, labels: maps(labels)}
			q.labels["quantile"] = true
			ex.series[name], ex.series[name+"_sum"], ex.series[name+"_count"] = q, s, s
		default:
			ex.series[name] = s
		}
	}
	if _, ok := ex.series["process_resident_memory_bytes"]; !ok {
		failf("the default registry has no process_resident_memory_bytes (not Linux?)")
	}
	return ex
}

func isIdent(args []ast.Expr) bool {
	if len(args) != 1 {
		return false
	}
	_, ok := args[0].(*ast.Ident)
	return ok
}

func maps(m map[string]bool) map[string]bool {
	c := make(map[string]bool, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// fqName is the metric name an Opts literal gives (Namespace_Subsystem_Name).
func fqName(fset *token.FileSet, lit *ast.CompositeLit) string {
	var ns, sub, name string
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			failf("%s: metric options without field names", fset.Position(lit.Pos()))
		}
		key := kv.Key.(*ast.Ident).Name
		switch key {
		case "Namespace", "Subsystem", "Name":
			s, ok := literal(kv.Value)
			if !ok {
				failf("%s: %s is not a string literal: teach deploy/metrics_test.go to read it", fset.Position(kv.Pos()), key)
			}
			switch key {
			case "Namespace":
				ns = s
			case "Subsystem":
				sub = s
			default:
				name = s
			}
		case "ConstLabels":
			failf("%s: ConstLabels: teach deploy/metrics_test.go to read them", fset.Position(kv.Pos()))
		}
	}
	if name == "" {
		failf("%s: a metric without a name", fset.Position(lit.Pos()))
	}
	return prometheus.BuildFQName(ns, sub, name)
}

func literal(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

func stringArg(fset *token.FileSet, call *ast.CallExpr, i int) string {
	if len(call.Args) <= i {
		failf("%s: too few arguments", fset.Position(call.Pos()))
	}
	s, ok := literal(call.Args[i])
	if !ok {
		failf("%s: argument %d is not a string literal: teach deploy/metrics_test.go to read it", fset.Position(call.Pos()), i+1)
	}
	return s
}

// stringsArg reads a []string{"a", "b"} argument (nil is no labels).
func stringsArg(fset *token.FileSet, call *ast.CallExpr, i int) []string {
	if len(call.Args) <= i {
		failf("%s: too few arguments", fset.Position(call.Pos()))
	}
	if id, ok := call.Args[i].(*ast.Ident); ok && id.Name == "nil" {
		return nil
	}
	lit, ok := call.Args[i].(*ast.CompositeLit)
	if !ok {
		failf("%s: the label names are not a []string literal: teach deploy/metrics_test.go to read them", fset.Position(call.Pos()))
	}
	var out []string
	for _, e := range lit.Elts {
		s, ok := literal(e)
		if !ok {
			failf("%s: a label name that is not a string literal", fset.Position(e.Pos()))
		}
		out = append(out, s)
	}
	return out
}

var promParser = promql.NewParser(promql.Options{})

// checkExpr parses a PromQL expression and checks that every metric it
// selects is one the bot serves, with labels it has (or the scrape adds), and
// that every label value it matches exactly is one the bot's source holds.
// It returns the selectors' metric names.
func checkExpr(t *testing.T, ex exported, where, expr string) []string {
	t.Helper()
	e, err := promParser.ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %q: %v", where, expr, err)
	}
	var names []string
	usable := maps(targetLabels)
	var grouping []string
	promql.Inspect(e, func(n promql.Node, _ []promql.Node) error {
		switch n := n.(type) {
		case *promql.VectorSelector:
			name := n.Name
			for _, m := range n.LabelMatchers {
				if m.Name == model.MetricNameLabel && name == "" {
					name = m.Value
				}
			}
			s, ok := ex.series[name]
			if !ok {
				t.Fatalf("%s: %q selects %q, which the bot does not export", where, expr, name)
			}
			names = append(names, name)
			for l := range s.labels {
				usable[l] = true
			}
			for _, m := range n.LabelMatchers {
				if m.Name == model.MetricNameLabel || targetLabels[m.Name] {
					continue
				}
				if !s.labels[m.Name] {
					t.Fatalf("%s: %q matches label %q, which %s lacks", where, expr, m.Name, name)
				}
				if m.Type.String() == "=" && m.Name != "le" && !ex.literals[m.Value] && strings.HasPrefix(name, "packit_launch_") {
					t.Fatalf("%s: %q matches %s=%q, a value nowhere in the bot's source", where, expr, m.Name, m.Value)
				}
			}
		case *promql.AggregateExpr:
			grouping = append(grouping, n.Grouping...)
		case *promql.BinaryExpr:
			if n.VectorMatching != nil {
				grouping = append(grouping, n.VectorMatching.MatchingLabels...)
			}
		}
		return nil
	})
	for _, l := range grouping {
		if !usable[l] {
			t.Fatalf("%s: %q groups or matches by %q, a label none of its metrics has", where, expr, l)
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s: %q selects no metric", where, expr)
	}
	return names
}

// TestAlertingRules: the PrometheusRule's groups pass Prometheus's own rule
// file validation (expressions, durations, annotation templates), every rule
// is an alert with a severity, a summary and a runbook, the alerts README
// lists are there, and every metric they name is one the bot exports.
func TestAlertingRules(t *testing.T) {
	c := load(t)
	ex := botMetrics(t)
	groups, err := yaml.Marshal(c.rules.Spec)
	if err != nil {
		t.Fatal(err)
	}
	rgs, errs := rulefmt.Parse(groups, false, model.LegacyValidation, promParser, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", rulesManifest, errs)
	}
	type sel struct {
		metric string
		labels map[string]string
	}
	var selected []sel
	seen := map[string]bool{}
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			where := rulesManifest + ": " + r.Alert
			if r.Alert == "" {
				t.Fatalf("%s: record rule %q: only alerts here", rulesManifest, r.Record)
			}
			if seen[r.Alert] {
				t.Fatalf("%s: twice", where)
			}
			seen[r.Alert] = true
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Fatalf("%s: severity %q", where, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Fatalf("%s: no %s annotation", where, a)
				}
			}
			if n := len(r.Annotations["runbook"]); n > 500 {
				t.Fatalf("%s: a runbook of %d characters: keep it short (what it means, what to do)", where, n)
			}
			checkExpr(t, ex, where, r.Expr)
			e, _ := promParser.ParseExpr(r.Expr)
			promql.Inspect(e, func(n promql.Node, _ []promql.Node) error {
				if vs, ok := n.(*promql.VectorSelector); ok {
					s := sel{metric: vs.Name, labels: map[string]string{}}
					for _, m := range vs.LabelMatchers {
						if m.Type.String() == "=" && m.Name != model.MetricNameLabel {
							s.labels[m.Name] = m.Value
						}
					}
					selected = append(selected, s)
				}
				return nil
			})
		}
	}
	// README, Monitoring: "Alerts worth having", and the one it says to alert on.
	for _, want := range []sel{
		{"packit_launch_sweep_last_success_timestamp_seconds", nil},
		{"packit_launch_vms_terminated_total", map[string]string{"by": "sweeper"}},
		{"packit_launch_commands_total", map[string]string{"outcome": "failed"}},
		{"packit_launch_jobs_total", map[string]string{"outcome": "failed"}},
		{"packit_launch_commands_total", map[string]string{"outcome": "unanswered"}},
		{"packit_launch_github_rate_limited_total", map[string]string{"outcome": "not_held"}},
		{"packit_launch_missed_deliveries_total", map[string]string{"outcome": "given_up"}},
		{"packit_launch_queue_jobs", map[string]string{"queue": "commands", "state": "pending"}},
		{"packit_launch_vms_terminate_denied_total", nil},
	} {
		if !slices.ContainsFunc(selected, func(s sel) bool {
			if s.metric != want.metric {
				return false
			}
			for k, v := range want.labels {
				if s.labels[k] != v {
					return false
				}
			}
			return true
		}) {
			t.Fatalf("%s: no alert selects %s%v (README, Monitoring, lists it)", rulesManifest, want.metric, want.labels)
		}
	}
}

// dashboard is the part of a Grafana dashboard the file uses, decoded
// strictly: a field Grafana's model lacks, or a typo, fails.
type dashboard struct {
	Title         string   `json:"title"`
	UID           string   `json:"uid"`
	Description   string   `json:"description"`
	Tags          []string `json:"tags"`
	Editable      bool     `json:"editable"`
	SchemaVersion int      `json:"schemaVersion"`
	Version       int      `json:"version"`
	Refresh       string   `json:"refresh"`
	Time          struct{ From, To string }
	Timezone      string          `json:"timezone"`
	Annotations   json.RawMessage `json:"annotations"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Label      string          `json:"label"`
			Type       string          `json:"type"`
			Datasource *datasource     `json:"datasource"`
			Query      string          `json:"query"`
			Definition string          `json:"definition"`
			Refresh    int             `json:"refresh"`
			IncludeAll bool            `json:"includeAll"`
			Multi      bool            `json:"multi"`
			AllValue   string          `json:"allValue"`
			Current    json.RawMessage `json:"current"`
			Hide       int             `json:"hide"`
			Sort       int             `json:"sort"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID          int         `json:"id"`
		Type        string      `json:"type"`
		Title       string      `json:"title"`
		Description string      `json:"description"`
		Datasource  *datasource `json:"datasource"`
		GridPos     struct {
			X int `json:"x"`
			Y int `json:"y"`
			W int `json:"w"`
			H int `json:"h"`
		} `json:"gridPos"`
		Targets []struct {
			RefID        string      `json:"refId"`
			Datasource   *datasource `json:"datasource"`
			Expr         string      `json:"expr"`
			LegendFormat string      `json:"legendFormat"`
			Instant      bool        `json:"instant"`
		} `json:"targets"`
		FieldConfig json.RawMessage `json:"fieldConfig"`
		Options     json.RawMessage `json:"options"`
	} `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// grafanaVars are Grafana's variables, as values PromQL parses.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "${namespace}", "ns", "$namespace", "ns")

// TestDashboard: the Grafana dashboard decodes strictly, its panels are laid
// out without overlaps, every query parses and names only metrics the bot
// exports, and every metric of the bot's own has a panel.
func TestDashboard(t *testing.T) {
	ex := botMetrics(t)
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: title, uid and panels", dashboardFile)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type == "query" {
			m := regexp.MustCompile(`^label_values\((\w+), *(\w+)\)$`).FindStringSubmatch(v.Query)
			if m == nil {
				t.Fatalf("%s: variable %s: query %q", dashboardFile, v.Name, v.Query)
			}
			if _, ok := ex.series[m[1]]; !ok {
				t.Fatalf("%s: variable %s: %s is not exported", dashboardFile, v.Name, m[1])
			}
		}
	}
	if !vars["datasource"] || !vars["namespace"] {
		t.Fatalf("%s: variables datasource and namespace", dashboardFile)
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	type rect struct{ x, y, w, h int }
	var rects []rect
	for _, p := range d.Panels {
		where := dashboardFile + ": panel " + strconv.Quote(p.Title)
		if ids[p.ID] || p.ID == 0 {
			t.Fatalf("%s: id %d", where, p.ID)
		}
		ids[p.ID] = true
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Fatalf("%s: the datasource must be ${datasource}", where)
		}
		g := p.GridPos
		r := rect{g.X, g.Y, g.W, g.H}
		if r.w <= 0 || r.h <= 0 || r.x < 0 || r.x+r.w > 24 {
			t.Fatalf("%s: gridPos %+v outside Grafana's 24 columns", where, g)
		}
		for _, o := range rects {
			if r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h {
				t.Fatalf("%s: overlaps another panel", where)
			}
		}
		rects = append(rects, r)
		if len(p.Targets) == 0 {
			t.Fatalf("%s: no query", where)
		}
		for _, q := range p.Targets {
			if strings.Contains(q.Expr, "packit_launch_") && !strings.Contains(q.Expr, `namespace=~"$namespace"`) {
				t.Fatalf("%s: %q ignores the namespace variable", where, q.Expr)
			}
			expr := grafanaVars.Replace(q.Expr)
			if strings.Contains(expr, "$") {
				t.Fatalf("%s: %q: a variable the test does not know", where, q.Expr)
			}
			for _, n := range checkExpr(t, ex, where, expr) {
				used[ex.series[n].family] = true
			}
		}
	}
	for name := range ex.families {
		if !used[name] {
			t.Fatalf("%s: no panel shows %s (defined at %s)", dashboardFile, name, ex.families[name])
		}
	}
}

// TestReadmeMonitoring: README's Monitoring section names every metric of the
// bot's own, and names no metric the bot does not export.
func TestReadmeMonitoring(t *testing.T) {
	ex := botMetrics(t)
	sec := readmeSection(t, "## Monitoring")
	for name := range ex.families {
		if !strings.Contains(sec, "`"+name) {
			t.Fatalf("README, Monitoring, does not list %s (defined at %s)", name, ex.families[name])
		}
	}
	for _, m := range regexp.MustCompile(`packit_launch_\w+`).FindAllString(sec, -1) {
		if _, ok := ex.series[m]; !ok && ex.families[m] == "" {
			t.Fatalf("README, Monitoring, names %s, which the bot does not export", m)
		}
	}
}

func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	s = s[i+len(heading)+2:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}
