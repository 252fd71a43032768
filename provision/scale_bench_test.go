package provision

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

// The lifecycle at scale: 10,000 running launches (each with its VM in the
// fake AWS below) and 10,000 ended ones within the retention, on a real
// redis-server. Run with:
//
//	go test -run '^$' -bench 'Scale' -benchtime 20x ./provision/
const (
	scaleLive  = 10_000
	scaleEnded = 10_000
	scaleRepos = 200 // packit/repo-N, 500 owners
)

// fleetCloud is AWS answering at once from a fixed fleet, counting calls:
// the benchmarks measure the bot's side, not EC2's.
type fleetCloud struct {
	cloud
	vms       []ec2.Instance
	templates []ec2.Template
	calls     atomic.Int64
}

func (f *fleetCloud) ListManaged(context.Context, string) ([]ec2.Instance, error) {
	f.calls.Add(1)
	return f.vms, nil
}

func (f *fleetCloud) ListManagedTemplates(context.Context, string) ([]ec2.Template, error) {
	f.calls.Add(1)
	return f.templates, nil
}

func (f *fleetCloud) LiveFromTemplates(context.Context, string, []string) ([]ec2.Instance, error) {
	f.calls.Add(1)
	return nil, nil
}

// nopReporter stands for the GitHub side.
type nopReporter struct{}

func (nopReporter) Outcome(context.Context, *store.Launch) error           { return nil }
func (nopReporter) Refresh(context.Context, *store.Launch) error           { return nil }
func (nopReporter) Slow(context.Context, *store.Launch, string, time.Time) {}
func (nopReporter) Warn(context.Context, *store.Launch) error              { return nil }
func (nopReporter) Ended(context.Context, EndedVM)                         {}
func (nopReporter) Denied(context.Context, EndedVM)                        {}
func (nopReporter) WaitingForSSH(context.Context, *store.Launch)           {}

var scale struct {
	once  sync.Once
	stop  func()
	st    *store.Store
	lc    *Lifecycle
	cloud *fleetCloud
	rt    storetest.RoundTrips
	cfg   *config.Server
	err   error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if scale.st != nil {
		scale.st.Close()
	}
	if scale.stop != nil {
		scale.stop()
	}
	os.Exit(code)
}

const scaleServerConfig = `
profiles:
  default:
    launch_template_id: lt-0123456789abcdef0
    security_group_ids: [sg-0123456789abcdef0]
    instance_types: [t3.small]
    regions: [us-east-1]
    default_lifetime: 4h
    max_lifetime: 8h
projects:
  - repos: ["packit/*"]
    profiles: [default]
    limits: {per_owner: 50, per_repo: 100, daily_instance_hours: 1000000}
limits: {total_vms: 20000}
`

func scaleLifecycle(b *testing.B) *Lifecycle {
	b.Helper()
	scale.once.Do(func() {
		start := time.Now()
		scale.err = seedScale()
		b.Logf("fixture: %d running + %d ended launches, seeded in %s", scaleLive, scaleEnded, time.Since(start).Round(time.Millisecond))
	})
	if scale.err != nil {
		b.Fatal(scale.err)
	}
	return scale.lc
}

func seedScale() error {
	ctx := context.Background()
	url, stop, err := storetest.Start()
	if err != nil {
		return err
	}
	scale.stop = stop
	if scale.st, err = store.OpenWith(ctx, url, store.Options{}, quiet); err != nil {
		return err
	}
	if scale.cfg, err = config.ParseServer([]byte(scaleServerConfig), nil); err != nil {
		return err
	}
	now := time.Now().UTC()
	scale.cloud = &fleetCloud{}
	for i := range scaleLive + scaleEnded {
		l, _, err := scale.st.CreateLaunch(ctx, &store.Launch{Owner: "user" + strconv.Itoa(i%500), Repo: fmt.Sprintf("packit/repo-%d", i%scaleRepos), PR: i % 10,
			CommandCommentID: int64(i + 1), InstallationID: 1, Machine: "fedora", Image: "ami-1", Region: "us-east-1", InstanceType: "t3.small",
			Profile: "default", Project: "packit/*", KeyBody: "ssh-ed25519 AAAA", State: store.StateRunning,
			InstanceID: fmt.Sprintf("i-%017d", i), TemplateID: fmt.Sprintf("lt-%017d", i), PublicIPv4: "198.51.100.7",
			CreatedAt: now, LaunchedAt: now, ExpiresAt: now.Add(4 * time.Hour), HardExpiresAt: now.Add(8 * time.Hour), Lifetime: 4 * time.Hour})
		if err != nil {
			return err
		}
		if i >= scaleLive {
			if _, err := scale.st.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
				x.State, x.EndedAt, x.EndReason = store.StateEnded, now, "its lifetime ended"
				return nil
			}); err != nil {
				return err
			}
			continue
		}
		tags := BirthTags(l)
		tags["aws:ec2launchtemplate:id"] = l.TemplateID
		scale.cloud.vms = append(scale.cloud.vms, ec2.Instance{ID: l.InstanceID, Region: l.Region, State: "running", LaunchTemplateID: l.TemplateID, LaunchTime: now, Tags: ec2test.Tags(tags)})
		scale.cloud.templates = append(scale.cloud.templates, ec2.Template{ID: l.TemplateID, LaunchID: l.ID, CreatedAt: now})
	}
	// The daily pubkey cleanup (the Launch service's) is not what is measured.
	if _, err := scale.st.TryLock(ctx, "pubkey-cleanup", 24*time.Hour); err != nil {
		return err
	}
	prov := New(nil, scale.st, "", Options{Cloud: scale.cloud}, quiet)
	scale.lc = NewLifecycle(scale.cfg, scale.st, prov, nopReporter{}, quiet)
	scale.st.Redis().AddHook(&scale.rt)
	return nil
}

// report puts the per-op round trips and AWS calls beside the time.
func reportScale(b *testing.B, before int64) {
	b.ReportMetric(float64(scale.rt.N())/float64(b.N), "roundtrips/op")
	b.ReportMetric(float64(scale.cloud.calls.Load()-before)/float64(b.N), "aws-calls/op")
}

// One /launch's quota check, with AWS listed afresh each time (the cached
// listing dropped): every limit and the daily instance-hours.
func BenchmarkScaleQuotaCheck(b *testing.B) {
	lc := scaleLifecycle(b)
	project, _ := lc.cfg.ProjectFor("packit/repo-1")
	ctx := context.Background()
	calls := scale.cloud.calls.Load()
	scale.rt.Reset()
	for b.Loop() {
		lc.prov.fleet.forget()
		if err := lc.checkQuotas(ctx, project, "user-new", "packit/repo-new", time.Hour, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	reportScale(b, calls)
}

// An installation event (the App uninstalled from an installation with no
// launch left): what finding its launches costs among 10,000.
func BenchmarkScaleInstallationEvent(b *testing.B) {
	lc := scaleLifecycle(b)
	ctx := context.Background()
	calls := scale.cloud.calls.Load()
	scale.rt.Reset()
	for b.Loop() {
		if err := lc.EndInstallation(ctx, 999, nil); err != nil {
			b.Fatal(err)
		}
	}
	reportScale(b, calls)
}

// A sweep over 10,000 live VMs, each with its record, none due.
func BenchmarkScaleSweep(b *testing.B) {
	lc := scaleLifecycle(b)
	ctx := context.Background()
	calls := scale.cloud.calls.Load()
	scale.rt.Reset()
	for b.Loop() {
		lc.Sweep(ctx)
	}
	reportScale(b, calls)
}
