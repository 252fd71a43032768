package ec2test_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
	"github.com/packit/packit-launch/store"
)

// birthTags are the tags the bot gives a launch's template and VM.
func birthTags(launchID string) map[string]string {
	return provision.BirthTags(&store.Launch{
		ID: launchID, Repo: "packit/packit-launch", PR: 42, Owner: "someone", Profile: "small", Report: store.Report{CheckRunID: 7},
		ExpiresAt:     time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		HardExpiresAt: time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC),
	})
}

// The bot's own listing finds the VMs AddManagedVM seeds, over more than
// one page of instances and of templates, and nothing else.
func TestFakeEC2AddManagedVM(t *testing.T) {
	const region, n = "us-east-1", 1205 // 2 pages of instances, 7 of templates
	fake := ec2test.NewFakeEC2()
	// A round trip's delay means fewer SDK retries (aws/aws-sdk-go-v2#2737).
	fake.SetLatency(time.Millisecond)
	want := map[string]string{} // instance id -> template id
	for i := range n {
		launchID := fmt.Sprintf("l-%04d", i)
		id, tmpl := fake.AddManagedVM(launchID, birthTags(launchID))
		want[id] = tmpl
	}
	// Not the bot's: someone else's VM, and a VM from a profile's base template.
	fake.AddInstance("", map[string]string{"Name": "other"}, "running")
	base := fake.AddTemplate("base", map[string]string{ec2.TagManaged: "true"})
	fake.AddInstance(base, nil, "running")

	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cloud, err := ec2.New(t.Context(), ec2test.Config(srv.URL, region))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cloud.ListManaged(t.Context(), region)
	if err != nil {
		t.Fatalf("ListManaged: %v", err)
	}
	if len(got) != n {
		t.Fatalf("ListManaged returned %d instances, want %d", len(got), n)
	}
	for _, in := range got {
		tmpl, ok := want[in.ID]
		if !ok || in.LaunchTemplateID != tmpl || in.State != "running" || in.PublicIPv4 == "" ||
			in.Tags.Get(ec2.TagManaged) != "true" || in.Tags.Get(ec2.TagLaunch) == "" || in.Tags.Get(ec2.TagExpiresAt) != "2030-01-01T00:00:00Z" {
			t.Fatalf("ListManaged returned %+v, not a seeded VM as seeded (template %q)", in, tmpl)
		}
	}
	templates, err := cloud.ListManagedTemplates(t.Context(), region)
	if err != nil {
		t.Fatalf("ListManagedTemplates: %v", err)
	}
	if len(templates) != n+1 {
		t.Fatalf("ListManagedTemplates returned %d templates, want %d", len(templates), n+1)
	}
	if i := slices.IndexFunc(templates, func(tm ec2.Template) bool { return tm.ID == want[got[0].ID] }); i < 0 ||
		templates[i].LaunchID != got[0].Tags.Get(ec2.TagLaunch) || templates[i].Name != "packit-launch-"+templates[i].LaunchID {
		t.Errorf("template of %s: %+v", got[0].ID, templates)
	}
}

// An action the fake does not answer reaches Fallback with its body as
// sent; the fake's own actions do not.
func TestFakeEC2Fallback(t *testing.T) {
	const region = "us-east-1"
	var (
		mu   sync.Mutex
		seen []url.Values
	)
	fake := ec2test.NewFakeEC2()
	fake.Fallback = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || int64(len(body)) != r.ContentLength {
			t.Errorf("fallback read %d bytes (%v), ContentLength %d", len(body), err, r.ContentLength)
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Errorf("fallback body %q: %v", body, err)
		}
		mu.Lock()
		seen = append(seen, form)
		mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `<Response><Errors><Error><Code>FromFallback</Code><Message>here</Message></Error></Errors><RequestID>x</RequestID></Response>`)
	})
	take := func() []url.Values {
		mu.Lock()
		defer mu.Unlock()
		got := seen
		seen = nil
		return got
	}
	id, _ := fake.AddManagedVM("l-1", nil)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	raw := ec2test.Client(srv.URL, region)

	_, err := raw.TerminateInstances(t.Context(), &awsec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if ec2.ErrorCode(err) != "FromFallback" {
		t.Fatalf("TerminateInstances: %v, want the fallback's answer", err)
	}
	// The SDK may retry (aws/aws-sdk-go-v2#2737): every attempt is whole.
	if got := take(); len(got) == 0 || got[0].Get("Action") != "TerminateInstances" || got[0].Get("InstanceId.1") != id {
		t.Fatalf("fallback saw %v, want TerminateInstances of %s", got, id)
	}

	out, err := raw.DescribeInstances(t.Context(), &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
	if got := take(); err != nil || len(out.Reservations) != 1 || len(got) != 0 {
		t.Fatalf("DescribeInstances: %+v, %v; fallback saw %v; want the fake's one VM", out, err, got)
	}
}

// With moto behind it, the bot's other calls work while the listings are
// the fake's: the setup for running a real bot against a big fleet.
func TestFakeEC2FallbackToMoto(t *testing.T) {
	const region = "us-east-1"
	moto, err := url.Parse(ec2test.StartMoto(t))
	if err != nil {
		t.Fatal(err)
	}
	fake := ec2test.NewFakeEC2()
	fake.Fallback = httputil.NewSingleHostReverseProxy(moto)
	seeded, _ := fake.AddManagedVM("l-seeded", birthTags("l-seeded"))
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cloud, err := ec2.New(t.Context(), ec2test.Config(srv.URL, region))
	if err != nil {
		t.Fatal(err)
	}

	if account, err := cloud.AccountID(t.Context()); err != nil || account == "" {
		t.Fatalf("AccountID (STS, through moto): %q, %v", account, err)
	}
	if _, err := cloud.CreateLaunchTemplate(t.Context(), region, ec2.TemplateInput{LaunchID: "l-moto", Tags: birthTags("l-moto")}); err != nil {
		t.Fatalf("CreateLaunchTemplate (through moto): %v", err)
	}
	got, err := cloud.ListManaged(t.Context(), region)
	if err != nil || len(got) != 1 || got[0].ID != seeded {
		t.Fatalf("ListManaged = %+v, %v; want just the seeded %s", got, err, seeded)
	}
	// moto's template is not in the fake's listing: its fleet is as seeded.
	templates, err := cloud.ListManagedTemplates(t.Context(), region)
	if err != nil || len(templates) != 1 || templates[0].LaunchID != "l-seeded" {
		t.Fatalf("ListManagedTemplates = %+v, %v; want just l-seeded's", templates, err)
	}
}

// In front of moto, the console fake answers each VM's seeded boot log
// (none before it is seeded) and passes everything else on: the VM is
// moto's, its listing moto's.
func TestConsoleFakeServesSeededHostKeyOutput(t *testing.T) {
	const region = "us-east-1"
	moto := ec2test.StartMoto(t)
	target, err := url.Parse(moto)
	if err != nil {
		t.Fatal(err)
	}
	fake := ec2test.NewConsoleFake(httputil.NewSingleHostReverseProxy(target))
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cloud, err := ec2.New(t.Context(), ec2test.Config(srv.URL, region))
	if err != nil {
		t.Fatal(err)
	}
	var launched []string
	l := &ec2test.Launcher{Endpoint: moto, Launched: func(_, id string) { launched = append(launched, id) }}
	out, err := l.Launch(t.Context(), launchapitest.LaunchInput{Region: region, ImageID: ec2test.AMI(t, moto, region), InstanceType: "t3.small", Name: "packit-launch l1"})
	if err != nil || len(out) != 1 || !slices.Equal(launched, []string{out[0].ID}) {
		t.Fatalf("launch: %+v, %v; Launched told of %v", out, err, launched)
	}
	id := out[0].ID
	if in, err := cloud.Describe(t.Context(), region, id); err != nil || in.ID != id {
		t.Fatalf("Describe through the fake (moto's VM): %+v, %v", in, err)
	}
	if text, err := cloud.ConsoleOutput(t.Context(), region, id); err != nil || text != "" {
		t.Fatalf("console before it is seeded: %q, %v; want none", text, err)
	}
	fake.SetConsoleOutput(id, "boot\n-----BEGIN SSH HOST KEY KEYS-----\n")
	if text, err := cloud.ConsoleOutput(t.Context(), region, id); err != nil || text != "boot\n-----BEGIN SSH HOST KEY KEYS-----\n" {
		t.Fatalf("seeded console: %q, %v", text, err)
	}
}
