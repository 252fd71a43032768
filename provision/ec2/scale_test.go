package ec2_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
)

// fleetSpec is a region's worth of VMs for the scale tests. The managed
// live ones are what ListManaged must return; the rest it must not.
type fleetSpec struct {
	// Managed and live, each from its own per-launch template:
	Birth      int // with the bot's birth tags (so both of ListManaged's filters find it)
	Stopped    int // of Birth, how many are stopped (still live)
	Overridden int // its tags replaced by the Launch service's (found by template only)
	// Birth tags, but TagLaunch names the launch of one of the Overridden
	// VMs (at most Overridden): found by tag, it must not hide that VM.
	Forged int
	// Managed and live, birth tags but no template (found by tag only).
	TagOnly int

	// Not to be listed:
	Others       int // someone else's instances
	FromBase     int // launched by a person from a profile's base template (managed, but no launch's)
	ManagedFalse int // TagManaged=false
	Terminated   int // birth-tagged from a per-launch template that is still there, but terminated
}

func (s fleetSpec) managed() int { return s.Birth + s.Overridden + s.Forged + s.TagOnly }

// fleetVM is one instance to seed.
type fleetVM struct {
	template int // index into fleet.templates; -1: none
	tags     map[string]string
	state    string // running | stopped | terminated
	managed  bool   // ListManaged must return it
}

// fleet is a fleetSpec made concrete, in a fixed shuffled order, so that
// moto and the fake are seeded alike.
type fleet struct {
	templates []map[string]string // each template's tags, in creation order
	vms       []fleetVM
}

// vmTags are the tags provision.BirthTags puts on a launch's template and
// instance (TagProfile is provision's, so spelled out), plus the Launch
// service's own.
func vmTags(launchID string) map[string]string {
	return map[string]string{
		ec2.TagManaged:          "true",
		ec2.TagLaunch:           launchID,
		ec2.TagRepo:             "packit/packit-launch",
		ec2.TagPR:               "42",
		ec2.TagOwner:            "someone",
		ec2.TagExpiresAt:        "2030-01-01T00:00:00Z",
		ec2.TagHardExpiresAt:    "2030-01-02T00:00:00Z",
		ec2.TagCheckRun:         "1234567890",
		"packit-launch:profile": "small",
		"Name":                  "packit-launch " + launchID,
		"rh-org":                "12345",
	}
}

func (s fleetSpec) build() fleet {
	var f fleet
	newTemplate := func(tags map[string]string) int {
		f.templates = append(f.templates, tags)
		return len(f.templates) - 1
	}
	base := newTemplate(map[string]string{ec2.TagManaged: "true"}) // Bootstrap's: no launch id
	launch := 0
	perLaunch := func() (string, int) {
		launch++
		id := fmt.Sprintf("l-%06d", launch)
		return id, newTemplate(map[string]string{ec2.TagManaged: "true", ec2.TagLaunch: id})
	}
	add := func(n int, vm func(i int) fleetVM) {
		for i := range n {
			f.vms = append(f.vms, vm(i))
		}
	}
	add(s.Birth, func(i int) fleetVM {
		id, t := perLaunch()
		state := "running"
		if i < s.Stopped {
			state = "stopped"
		}
		return fleetVM{template: t, tags: vmTags(id), state: state, managed: true}
	})
	var overridden []string // their launch ids
	add(s.Overridden, func(int) fleetVM {
		id, t := perLaunch()
		overridden = append(overridden, id)
		return fleetVM{template: t, tags: map[string]string{"Name": "packit-launch " + id, "rh-rid": "rid", "rh-org": "12345"}, state: "running", managed: true}
	})
	add(s.Forged, func(i int) fleetVM {
		id, t := perLaunch()
		tags := vmTags(id)
		tags[ec2.TagLaunch] = overridden[i]
		return fleetVM{template: t, tags: tags, state: "running", managed: true}
	})
	add(s.TagOnly, func(int) fleetVM {
		launch++
		return fleetVM{template: -1, tags: vmTags(fmt.Sprintf("l-%06d", launch)), state: "running", managed: true}
	})
	add(s.Others, func(i int) fleetVM {
		return fleetVM{template: -1, tags: map[string]string{"Name": fmt.Sprint("someone-else-", i)}, state: "running"}
	})
	add(s.FromBase, func(i int) fleetVM {
		return fleetVM{template: base, tags: map[string]string{"Name": fmt.Sprint("by-hand-", i)}, state: "running"}
	})
	add(s.ManagedFalse, func(int) fleetVM {
		return fleetVM{template: -1, tags: map[string]string{ec2.TagManaged: "false"}, state: "running"}
	})
	add(s.Terminated, func(int) fleetVM {
		id, t := perLaunch()
		return fleetVM{template: t, tags: vmTags(id), state: "terminated"}
	})
	// A real account's instances and templates come in no particular order.
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(f.vms), func(i, j int) { f.vms[i], f.vms[j] = f.vms[j], f.vms[i] })
	return f
}

// seeder puts templates and instances into an EC2.
type seeder interface {
	template(tb testing.TB, name string, tags map[string]string) string
	instance(tb testing.TB, templateID string, tags map[string]string, state string) string
}

// seeded is a fleet in an EC2, with the ids it got there.
type seeded struct {
	fleet
	templateIDs []string
	vmIDs       []string
}

func (f fleet) seed(tb testing.TB, s seeder) seeded {
	tb.Helper()
	out := seeded{fleet: f}
	for i, tags := range f.templates {
		out.templateIDs = append(out.templateIDs, s.template(tb, fmt.Sprintf("packit-launch-t%06d", i), tags))
	}
	for _, vm := range f.vms {
		tmpl := ""
		if vm.template >= 0 {
			tmpl = out.templateIDs[vm.template]
		}
		out.vmIDs = append(out.vmIDs, s.instance(tb, tmpl, vm.tags, vm.state))
	}
	return out
}

// wantManaged are the ids ListManaged must return, sorted.
func (s seeded) wantManaged() []string {
	var ids []string
	for i, vm := range s.vms {
		if vm.managed {
			ids = append(ids, s.vmIDs[i])
		}
	}
	slices.Sort(ids)
	return ids
}

// pages is how many calls a paginator makes for n items: at least one.
func pages(n, size int) int { return max(1, (n+size-1)/size) }

// wantCalls predicts ListManaged's calls from what the fleet holds and the
// page sizes, the way EC2 pages (MaxResults counts matching items):
// DescribeLaunchTemplates pages over the managed templates; DescribeInstances
// pages over the live TagManaged=true instances, then, for each chunk of
// MaxFilterValues per-launch templates that no such instance was launched
// from (in the order EC2 listed them, which is creation order in both moto
// and the fake), over the live instances launched from that chunk. No
// instance is fetched twice unless a template has both a tagged and an
// untagged live instance, which no fleet here has.
func (s seeded) wantCalls(pageSize, templatePageSize int) map[string]int {
	tagged := 0
	liveFrom := map[int]int{} // template index -> live instances from it
	taggedFrom := map[int]bool{}
	for _, vm := range s.vms {
		if vm.state == "terminated" {
			continue
		}
		if vm.tags[ec2.TagManaged] == "true" {
			tagged++
			taggedFrom[vm.template] = true
		}
		if vm.template >= 0 {
			liveFrom[vm.template]++
		}
	}
	var perLaunch []int // template indexes left to ask about
	for i, tags := range s.templates {
		if tags[ec2.TagLaunch] != "" && !taggedFrom[i] {
			perLaunch = append(perLaunch, i)
		}
	}
	di := pages(tagged, pageSize)
	for chunk := range slices.Chunk(perLaunch, ec2.MaxFilterValues) {
		n := 0
		for _, t := range chunk {
			n += liveFrom[t]
		}
		di += pages(n, pageSize)
	}
	return map[string]int{
		"DescribeLaunchTemplates": pages(len(s.templates), templatePageSize),
		"DescribeInstances":       di,
	}
}

// fakeSeeder seeds the fake directly.
type fakeSeeder struct{ f *ec2test.FakeEC2 }

func (s fakeSeeder) template(_ testing.TB, name string, tags map[string]string) string {
	return s.f.AddTemplate(name, tags)
}

func (s fakeSeeder) instance(_ testing.TB, templateID string, tags map[string]string, state string) string {
	return s.f.AddInstance(templateID, tags, state)
}

// motoSeeder seeds moto through its API, one instance per RunInstances
// call: moto's MaxResults counts reservations, EC2's instances, so only
// one-instance reservations page alike.
type motoSeeder struct {
	raw *awsec2.Client
	ami string
}

func (s motoSeeder) template(tb testing.TB, name string, tags map[string]string) string {
	tb.Helper()
	out, err := s.raw.CreateLaunchTemplate(tb.Context(), &awsec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &types.RequestLaunchTemplateData{InstanceType: types.InstanceTypeT3Micro},
		TagSpecifications:  []types.TagSpecification{{ResourceType: types.ResourceTypeLaunchTemplate, Tags: tagList(tags)}},
	})
	if err != nil {
		tb.Fatalf("CreateLaunchTemplate: %v", err)
	}
	return aws.ToString(out.LaunchTemplate.LaunchTemplateId)
}

func (s motoSeeder) instance(tb testing.TB, templateID string, tags map[string]string, state string) string {
	tb.Helper()
	ctx := tb.Context()
	in := &awsec2.RunInstancesInput{
		ImageId: aws.String(s.ami), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tagList(tags)}},
	}
	if templateID != "" {
		in.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(templateID), Version: aws.String("$Default")}
	}
	out, err := s.raw.RunInstances(ctx, in)
	if err != nil {
		tb.Fatalf("RunInstances: %v", err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	switch state {
	case "stopped":
		_, err = s.raw.StopInstances(ctx, &awsec2.StopInstancesInput{InstanceIds: []string{id}})
	case "terminated":
		_, err = s.raw.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: []string{id}})
	}
	if err != nil {
		tb.Fatalf("%s %s: %v", state, id, err)
	}
	return id
}

func tagList(m map[string]string) []types.Tag {
	var out []types.Tag
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// checkListed asserts that got is exactly the fleet's managed live VMs.
func checkListed(tb testing.TB, s seeded, got []ec2.Instance) {
	tb.Helper()
	ids := make([]string, 0, len(got))
	for _, in := range got {
		ids = append(ids, in.ID)
	}
	slices.Sort(ids)
	if want := s.wantManaged(); !slices.Equal(ids, want) {
		extra, missing := setDiff(ids, want), setDiff(want, ids)
		tb.Fatalf("ListManaged returned %d instances, want the %d managed live ones; %d extra (e.g. %v), %d missing (e.g. %v)",
			len(ids), len(want), len(extra), extra[:min(len(extra), 3)], len(missing), missing[:min(len(missing), 3)])
	}
}

// setDiff is the ids of a (sorted) not in b (sorted).
func setDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, found := slices.BinarySearch(b, x); !found {
			out = append(out, x)
		}
	}
	return out
}

// smallFleet has pages to turn at page size 5 in every one of ListManaged's
// listings, and something of each kind it must leave out.
var smallFleet = fleetSpec{Birth: 20, Stopped: 1, Overridden: 3, Forged: 2, TagOnly: 2, Others: 2, FromBase: 1, ManagedFalse: 1, Terminated: 2}

// TestListManagedCallsArePages proves the call-count formula the 10k
// benchmark relies on, on a fleet small enough for moto: ListManaged's AWS
// calls are pages, not instances. The same fleet in the fake must cost the
// same calls, which is what lets the benchmark trust the fake.
//
// moto does not page DescribeLaunchTemplates (it cuts the answer at
// MaxResults and sends no token), so against moto the templates fit one
// page; the fake pages them as EC2 does, in pages of 5 here.
func TestListManagedCallsArePages(t *testing.T) {
	const pageSize = 5
	f := smallFleet.build()
	// By hand: 28 managed templates (1 base, 27 per-launch, the 2
	// terminated VMs' among them): one page of 200, or 6 of 5. Live
	// TagManaged instances: 20 birth + 2 forged + 2 tag-only = 24, 5
	// pages. They were launched from 22 of the per-launch templates (the
	// forged ones' TagLaunch does not count); the other 5 (3 overridden, 2
	// terminated) make one chunk, whose 3 live instances fit one page.
	handCount := func(templatePageSize int) map[string]int {
		return map[string]int{"DescribeLaunchTemplates": map[int]int{200: 1, 5: 6}[templatePageSize], "DescribeInstances": 6}
	}

	// served, when not nil, counts the instance records EC2 answered with.
	run := func(t *testing.T, s seeded, endpoint string, counter *callCounter, templatePageSize int, served func() int) {
		want := handCount(templatePageSize)
		if got := s.wantCalls(pageSize, templatePageSize); !maps.Equal(got, want) {
			t.Fatalf("wantCalls = %v, counted by hand %v", got, want)
		}
		cloud, err := ec2.New(t.Context(), ec2test.Config(endpoint, region))
		if err != nil {
			t.Fatal(err)
		}
		ec2.SetPageSize(cloud, pageSize)
		ec2.SetTemplatePageSize(cloud, int32(templatePageSize))
		counter.take()
		if served != nil {
			served()
		}
		got, err := cloud.ListManaged(t.Context(), region)
		if err != nil {
			t.Fatalf("ListManaged: %v", err)
		}
		checkListed(t, s, got)
		calls, retries := counter.take()
		if !maps.Equal(calls, want) {
			t.Errorf("ListManaged made %v, want %v", calls, want)
		}
		if served != nil {
			checkServed(t, served(), len(got), retries, pageSize)
		}
		t.Logf("calls %v, SDK retries %d", calls, retries)
	}

	t.Run("moto", func(t *testing.T) {
		t.Parallel()
		moto := ec2test.StartMoto(t)
		s := f.seed(t, motoSeeder{raw: ec2test.Client(moto, region), ami: ec2test.AMI(t, moto, region)})
		target, err := url.Parse(moto)
		if err != nil {
			t.Fatal(err)
		}
		counter := &callCounter{next: httputil.NewSingleHostReverseProxy(target)}
		srv := httptest.NewServer(counter)
		t.Cleanup(srv.Close)
		run(t, s, srv.URL, counter, ec2.DefaultTemplatePageSize, nil)
	})
	t.Run("fake", func(t *testing.T) {
		t.Parallel()
		fake := ec2test.NewFakeEC2()
		fake.SetLatency(benchLatency) // fewer SDK retries (see callCounter), so served is exact more often
		s := f.seed(t, fakeSeeder{fake})
		counter := &callCounter{next: fake}
		srv := httptest.NewServer(counter)
		t.Cleanup(srv.Close)
		run(t, s, srv.URL, counter, 5, fake.TakeServed)
	})
}

// checkServed asserts that EC2 answered with each listed instance once:
// served records for listed instances, give or take the pages the SDK's
// retries fetched again (at most pageSize records each).
func checkServed(tb testing.TB, served, listed, retries, pageSize int) {
	tb.Helper()
	if served < listed || served > listed+retries*pageSize {
		tb.Fatalf("EC2 answered with %d instance records for %d instances (%d SDK retries of up to %d each): some were fetched twice",
			served, listed, retries, pageSize)
	}
}

// The fake refuses what EC2 refuses, so a test cannot pass on a request EC2
// would turn down.
func TestFakeEC2RefusesWhatEC2Refuses(t *testing.T) {
	srv := httptest.NewServer(ec2test.NewFakeEC2())
	t.Cleanup(srv.Close)
	raw := ec2test.Client(srv.URL, region)
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"MaxResults below 5": func() error {
			_, err := raw.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(4)})
			return err
		},
		"MaxResults above 1000": func() error {
			_, err := raw.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(1001)})
			return err
		},
		"templates above 200": func() error {
			_, err := raw.DescribeLaunchTemplates(ctx, &awsec2.DescribeLaunchTemplatesInput{MaxResults: aws.Int32(201)})
			return err
		},
		"a token of other filters": func() error {
			_, err := raw.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(5), NextToken: aws.String("5.x")})
			return err
		},
		"an unknown filter": func() error {
			_, err := raw.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{"v"}}}})
			return err
		},
		"instance ids (unsupported)": func() error {
			_, err := raw.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{unknownID}})
			return err
		},
		"another action": func() error {
			_, err := raw.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: []string{unknownID}})
			return err
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		} else if ec2.IsSetupError(err) || ec2.ErrorCode(err) == "" {
			t.Errorf("%s: %v, want an EC2 error answer", name, err)
		}
	}
}
