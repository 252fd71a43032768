package ec2_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
)

// policy is an IAM policy document as deploy/ holds them.
type policy struct {
	Statement []struct {
		Sid       string
		Effect    string
		Action    stringList
		Resource  stringList
		Condition map[string]map[string]stringList
	}
}

// stringList is IAM's "one string or a list of them".
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*l = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(l))
}

func readPolicy(t *testing.T, name string) policy {
	t.Helper()
	b, err := os.ReadFile("../../deploy/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var p policy
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// allows reports whether any Allow statement names action (no wildcards are used).
func (p policy) allows(action string) bool {
	for _, s := range p.Statement {
		if s.Effect == "Allow" && slices.Contains(s.Action, action) {
			return true
		}
	}
	return false
}

// The run-time policy cannot touch security groups or base templates: a
// stolen credential of the long-running bot cannot expose every VM.
func TestRunTimePolicyIsLeastPrivilege(t *testing.T) {
	run := readPolicy(t, "iam-policy.json")
	for _, s := range run.Statement {
		if s.Effect != "Allow" {
			t.Errorf("%s: only Allow statements are expected", s.Sid)
		}
		for _, a := range s.Action {
			if strings.Contains(a, "*") {
				t.Errorf("%s: wildcard action %s", s.Sid, a)
			}
			if strings.Contains(a, "SecurityGroup") {
				t.Errorf("%s: the run-time policy may not %s", s.Sid, a)
			}
		}
	}
	for _, want := range []string{"ec2:DescribeInstances", "ec2:TerminateInstances", "ec2:CreateTags", "ec2:CreateLaunchTemplate", "ec2:DeleteLaunchTemplate", "ec2:GetConsoleOutput"} {
		if !run.allows(want) {
			t.Errorf("the run-time policy lacks %s", want)
		}
	}
	// Templates: created and deleted only with a launch id, which base templates lack.
	for _, s := range run.Statement {
		for _, a := range s.Action {
			key := map[string]string{"ec2:CreateLaunchTemplate": "aws:RequestTag/", "ec2:DeleteLaunchTemplate": "aws:ResourceTag/"}[a]
			if key == "" {
				continue
			}
			if got := s.Condition["Null"][key+ec2.TagLaunch]; !slices.Equal(got, []string{"false"}) {
				t.Errorf("%s: %s must require the %s tag (Null %s%s = false), has %v", s.Sid, a, ec2.TagLaunch, key, ec2.TagLaunch, s.Condition)
			}
			if got := s.Condition["StringEquals"][key+ec2.TagManaged]; !slices.Equal(got, []string{"true"}) {
				t.Errorf("%s: %s must require %s=true", s.Sid, a, ec2.TagManaged)
			}
		}
	}
	// Instances: by the name the Launch service gives them (the one tag a
	// VM surely has at birth), or by the bot's own launch tag, which stays
	// when someone renames the VM in the console.
	for _, action := range []string{"ec2:TerminateInstances", "ec2:CreateTags", "ec2:GetConsoleOutput"} {
		byName, byTag := false, false
		for _, s := range run.Statement {
			if !slices.Contains(s.Action, action) || !slices.Equal(s.Resource, stringList{"arn:aws:ec2:*:*:instance/*"}) {
				continue
			}
			byName = byName || slices.Equal(s.Condition["StringLike"]["aws:ResourceTag/Name"], stringList{"packit-launch *"})
			byTag = byTag || slices.Equal(s.Condition["Null"]["aws:ResourceTag/"+ec2.TagLaunch], stringList{"false"})
			if action == "ec2:CreateTags" && !slices.Equal(s.Condition["ForAllValues:StringLike"]["aws:TagKeys"], stringList{"packit-launch:*"}) {
				t.Errorf("%s: %s on instances must allow only the bot's tag keys", s.Sid, action)
			}
		}
		if !byName || !byTag {
			t.Errorf("%s on instances: allowed by Name %v, by the launch tag %v; want both", action, byName, byTag)
		}
	}
	boot := readPolicy(t, "iam-bootstrap-policy.json")
	for _, want := range []string{"ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "ec2:CreateLaunchTemplate"} {
		if !boot.allows(want) {
			t.Errorf("the bootstrap policy lacks %s", want)
		}
	}
	for _, never := range []string{"ec2:TerminateInstances", "ec2:DeleteLaunchTemplate", "ec2:DeleteSecurityGroup", "ec2:RevokeSecurityGroupIngress"} {
		if boot.allows(never) {
			t.Errorf("the bootstrap policy needs no %s", never)
		}
	}
}

// recorder is a reverse proxy in front of moto that notes each EC2 action.
type recorder struct {
	mu      sync.Mutex
	actions []string
}

func (r *recorder) start(t *testing.T, moto string) string {
	t.Helper()
	target, err := url.Parse(moto)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(strings.NewReader(string(body)))
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
			r.mu.Lock()
			r.actions = append(r.actions, form.Get("Action"))
			r.mu.Unlock()
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Compact(slices.Sorted(slices.Values(r.actions)))
}

// TestBootstrapAndRunTimeStayWithinTheirPolicies runs bootstrap with one
// identity and the bot's whole run-time life of a VM with another, and
// checks every EC2 action each made against its policy document. moto does
// not enforce IAM, so the policies' conditions are checked above, and here
// the code's actual calls are held to the policies' actions.
func TestBootstrapAndRunTimeStayWithinTheirPolicies(t *testing.T) {
	ctx := t.Context()
	moto := ec2test.StartMoto(t)
	var bootCalls, runCalls recorder
	bootCloud, err := ec2.New(ctx, ec2test.Config(bootCalls.start(t, moto), region))
	if err != nil {
		t.Fatal(err)
	}
	runCloud, err := ec2.New(ctx, ec2test.Config(runCalls.start(t, moto), region))
	if err != nil {
		t.Fatal(err)
	}
	base, err := bootCloud.Bootstrap(ctx, region, ec2.BootstrapInput{Profile: "small"})
	if err != nil {
		t.Fatal(err)
	}

	// A VM's life as the bot runs it: its template, the Launch service
	// launching from it (not the bot), tags, listing, termination, cleanup.
	tmpl, err := runCloud.CreateLaunchTemplate(ctx, region, ec2.TemplateInput{LaunchID: "l1", BaseTemplateID: base.LaunchTemplateID,
		SecurityGroupIDs: []string{base.SecurityGroupID}, Tags: map[string]string{ec2.TagExpiresAt: "2026-11-24T14:00:00Z"}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ec2test.Client(moto, region).RunInstances(ctx, &awsec2.RunInstancesInput{
		ImageId: aws.String(ec2test.AMI(t, moto, region)), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate:    &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(tmpl)},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("packit-launch l1")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	if err := runCloud.TagInstance(ctx, region, id, map[string]string{ec2.TagLaunch: "l1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := runCloud.Describe(ctx, region, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCloud.PublicAddress(ctx, region, id); err != nil {
		t.Fatal(err)
	}
	if _, err := runCloud.ConsoleOutput(ctx, region, id); err != nil { // the VM's host keys
		t.Fatal(err)
	}
	if _, err := runCloud.ListManaged(ctx, region); err != nil {
		t.Fatal(err)
	}
	if err := runCloud.Terminate(ctx, region, id); err != nil {
		t.Fatal(err)
	}
	if _, err := runCloud.ListManagedTemplates(ctx, region); err != nil {
		t.Fatal(err)
	}
	if err := runCloud.DeleteLaunchTemplate(ctx, region, tmpl); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		file  string
		calls []string
	}{{"iam-bootstrap-policy.json", bootCalls.calls()}, {"iam-policy.json", runCalls.calls()}} {
		p := readPolicy(t, tc.file)
		if len(tc.calls) == 0 {
			t.Fatalf("%s: no calls recorded", tc.file)
		}
		for _, action := range tc.calls {
			if !p.allows("ec2:" + action) {
				t.Errorf("the code calls ec2:%s, which %s does not allow", action, tc.file)
			}
		}
		t.Logf("%s covers %v", tc.file, tc.calls)
	}
}

// CheckPermissions tells the policies apart by dry runs; moto allows
// everything, so the access it reports is the bootstrap one.
func TestCheckPermissionsDryRunsTheTellingCalls(t *testing.T) {
	e := newEnv(t)
	base, err := e.cloud.Bootstrap(t.Context(), region, ec2.BootstrapInput{Profile: "small"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.cloud.CheckPermissions(t.Context(), region, []string{"sg-0000000000000000f", base.SecurityGroupID}, []string{base.LaunchTemplateID})
	if err != nil {
		t.Fatal(err)
	}
	if !p.CreatePerLaunchTemplate || len(p.BootstrapOnly()) != 3 || len(p.Unchecked) != 0 {
		t.Errorf("permissions %+v", p)
	}
	templates, err := e.cloud.ListManagedTemplates(t.Context(), region)
	if err != nil || len(templates) != 1 {
		t.Errorf("dry runs must create nothing: templates %+v, %v", templates, err)
	}
	none, err := e.cloud.CheckPermissions(t.Context(), region, nil, nil)
	if err != nil || len(none.Unchecked) != 2 {
		t.Errorf("without ids to try: %+v, %v", none, err)
	}
}
