package ec2_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/packit/packit-launch/provision/ec2"
)

const unknownID = "i-0123456789abcdef0"

func TestTagInstanceAndDescribe(t *testing.T) {
	e := newEnv(t)
	id := e.run(t, withTags(map[string]string{ec2.TagManaged: "true", ec2.TagExpiresAt: "2030-01-01T00:00:00Z"}))

	if err := e.cloud.TagInstance(t.Context(), region, id, map[string]string{ec2.TagExpiresAt: "2031-01-01T00:00:00Z", ec2.TagOwner: "bob"}); err != nil {
		t.Fatalf("TagInstance: %v", err)
	}
	inst, err := e.cloud.Describe(t.Context(), region, id)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if inst.ID != id || inst.Region != region || inst.State != "running" || inst.LaunchTime.IsZero() || inst.PrivateIPv4 == "" {
		t.Errorf("Describe = %+v, want running %s in %s with a launch time and private IP", inst, id, region)
	}
	for k, v := range map[string]string{ec2.TagManaged: "true", ec2.TagExpiresAt: "2031-01-01T00:00:00Z", ec2.TagOwner: "bob"} {
		if inst.Tags.Get(k) != v {
			t.Errorf("tag %s = %q, want %q", k, inst.Tags.Get(k), v)
		}
	}
	if inst.LaunchTemplateID != "" {
		t.Errorf("LaunchTemplateID = %q, want none", inst.LaunchTemplateID)
	}

	// Terminated instances are still described.
	if err := e.cloud.Terminate(t.Context(), region, id); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	if inst, err = e.cloud.Describe(t.Context(), region, id); err != nil || inst.State != "terminated" {
		t.Errorf("Describe after terminate = %+v, %v; want state terminated", inst, err)
	}
}

// TagInstance maps InvalidInstanceID.NotFound the same way, but moto tags
// unknown ids without complaint, so it is not covered here.
func TestNotFound(t *testing.T) {
	e := newEnv(t)
	calls := map[string]func() error{
		"Describe":      func() error { _, err := e.cloud.Describe(t.Context(), region, unknownID); return err },
		"PublicAddress": func() error { _, _, err := e.cloud.PublicAddress(t.Context(), region, unknownID); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			var nf *ec2.NotFoundError
			if !errors.As(err, &nf) || nf.ID != unknownID || nf.Region != region {
				t.Fatalf("err = %v, want *NotFoundError for %s in %s", err, unknownID, region)
			}
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidInstanceID.NotFound" {
				t.Errorf("err = %v, want the AWS error inside", err)
			}
		})
	}
}

func TestListManaged(t *testing.T) {
	e := newEnv(t)
	ec2.SetPageSize(e.cloud, 5) // more tagged instances than one page

	var want []string
	for i := range 7 {
		want = append(want, e.run(t, withTags(map[string]string{ec2.TagManaged: "true", ec2.TagLaunch: fmt.Sprint("l-", i)})))
	}
	// Launched from a per-launch template, but its own tags lack TagManaged:
	// found through aws:ec2launchtemplate:id.
	managedTemplate := func(name string, tags map[string]string) string { return e.template(t, name, tags) }
	tmplID := managedTemplate("packit-launch-l-untagged", map[string]string{ec2.TagManaged: "true", ec2.TagLaunch: "l-untagged"})
	byTemplate := e.run(t, fromTemplate(tmplID), withTags(map[string]string{"Name": "no-managed-tag"}))
	want = append(want, byTemplate)
	// A stopped one is still alive.
	stopped := e.run(t, withTags(map[string]string{ec2.TagManaged: "true"}))
	if _, err := e.raw.StopInstances(t.Context(), &awsec2.StopInstancesInput{InstanceIds: []string{stopped}}); err != nil {
		t.Fatalf("StopInstances: %v", err)
	}
	want = append(want, stopped)

	// Not ours, not managed, or not alive; launched by someone from a
	// profile's base template (managed, but no launch's).
	e.run(t, withTags(map[string]string{"Name": "someone-else"}))
	e.run(t, fromTemplate(managedTemplate("packit-launch-base-small", map[string]string{ec2.TagManaged: "true"})))
	e.run(t, withTags(map[string]string{ec2.TagManaged: "false"}))
	other, err := e.raw.CreateLaunchTemplate(t.Context(), &awsec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("someone-elses"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{InstanceType: types.InstanceTypeT3Micro},
	})
	if err != nil {
		t.Fatalf("CreateLaunchTemplate: %v", err)
	}
	e.run(t, fromTemplate(aws.ToString(other.LaunchTemplate.LaunchTemplateId)))
	gone := e.run(t, withTags(map[string]string{ec2.TagManaged: "true"}))
	if err := e.cloud.Terminate(t.Context(), region, gone); err != nil {
		t.Fatalf("Terminate: %v", err)
	}

	got, err := e.cloud.ListManaged(t.Context(), region)
	if err != nil {
		t.Fatalf("ListManaged: %v", err)
	}
	var ids []string
	for _, inst := range got {
		ids = append(ids, inst.ID)
		if inst.ID == byTemplate && inst.LaunchTemplateID != tmplID {
			t.Errorf("instance %s: LaunchTemplateID = %q, want %q", inst.ID, inst.LaunchTemplateID, tmplID)
		}
		if inst.ID == stopped && inst.State != "stopped" {
			t.Errorf("instance %s: State = %q, want stopped", inst.ID, inst.State)
		}
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("ListManaged = %v, want %v", ids, want)
	}
}

// A VM found by its tags must not stand in for another launch's VM: here
// one VM's TagLaunch names a second launch, whose own VM lost its tags to
// the Launch service's, and a third launch's VM is tagged as it should be.
// Only the template a tagged VM was launched from (its
// aws:ec2launchtemplate:id) may be left out of the template query.
func TestListManagedTagsOverriddenWhileAnotherLaunchIsTagged(t *testing.T) {
	e := newEnv(t)
	perLaunch := func(launchID string) string {
		return e.template(t, "packit-launch-"+launchID, map[string]string{ec2.TagManaged: "true", ec2.TagLaunch: launchID})
	}
	birth := func(launchID string) map[string]string {
		return map[string]string{ec2.TagManaged: "true", ec2.TagLaunch: launchID, ec2.TagExpiresAt: "2030-01-01T00:00:00Z"}
	}
	overridden := func(launchID string) map[string]string {
		return map[string]string{"Name": "packit-launch " + launchID, "rh-rid": "rid", "rh-org": "12345"}
	}
	ta, tb, tc, td := perLaunch("l-a"), perLaunch("l-b"), perLaunch("l-c"), perLaunch("l-d")
	forged := e.run(t, fromTemplate(ta), withTags(birth("l-b"))) // launch l-a's VM, claiming to be l-b's
	hidden := e.run(t, fromTemplate(tb), withTags(overridden("l-b")))
	tagged := e.run(t, fromTemplate(tc), withTags(birth("l-c")))
	alone := e.run(t, fromTemplate(td), withTags(overridden("l-d")))
	want := map[string]string{forged: ta, hidden: tb, tagged: tc, alone: td}

	got, err := e.cloud.ListManaged(t.Context(), region)
	if err != nil {
		t.Fatalf("ListManaged: %v", err)
	}
	listed := map[string]bool{}
	for _, inst := range got {
		if listed[inst.ID] {
			t.Errorf("instance %s listed twice", inst.ID)
		}
		listed[inst.ID] = true
		if tmpl, ok := want[inst.ID]; !ok {
			t.Errorf("instance %s listed, want only %v", inst.ID, slices.Sorted(maps.Keys(want)))
		} else if inst.LaunchTemplateID != tmpl {
			t.Errorf("instance %s: LaunchTemplateID = %q, want %q", inst.ID, inst.LaunchTemplateID, tmpl)
		}
	}
	for id := range want {
		if !listed[id] {
			t.Errorf("instance %s not listed (forged %s, overridden %s, tagged %s, overridden alone %s)", id, forged, hidden, tagged, alone)
		}
	}
}

func TestTerminate(t *testing.T) {
	e := newEnv(t)
	a, b, c := e.run(t), e.run(t), e.run(t)
	// Termination protection makes EC2 refuse: a real per-id error.
	protected := e.run(t)
	if _, err := e.raw.ModifyInstanceAttribute(t.Context(), &awsec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(protected), DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(true)},
	}); err != nil {
		t.Fatalf("ModifyInstanceAttribute: %v", err)
	}

	tests := []struct {
		name    string
		ids     []string
		wantErr string // substring; "" = no error
		gone    []string
	}{
		{name: "unknown id among good ones", ids: []string{a, unknownID, b}, gone: []string{a, b}},
		{name: "again: already terminated", ids: []string{a, b}, gone: []string{a, b}},
		{name: "nothing", ids: nil},
		{name: "a real error does not stop the others", ids: []string{protected, c}, wantErr: protected, gone: []string{c}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.cloud.Terminate(t.Context(), region, tc.ids...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Terminate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Terminate = %v, want an error naming %s", err, tc.wantErr)
			}
			for _, id := range tc.gone {
				inst, err := e.cloud.Describe(t.Context(), region, id)
				if err != nil || (inst.State != "terminated" && inst.State != "shutting-down") {
					t.Errorf("instance %s after Terminate: %+v, %v; want terminated", id, inst, err)
				}
			}
		})
	}
	if inst, err := e.cloud.Describe(t.Context(), region, protected); err != nil || inst.State != "running" {
		t.Errorf("protected instance: %+v, %v; want still running", inst, err)
	}
}

func TestPublicAddress(t *testing.T) {
	e := newEnv(t)
	id := e.run(t)
	ipv4, dns, err := e.cloud.PublicAddress(t.Context(), region, id)
	if err != nil {
		t.Fatalf("PublicAddress: %v", err)
	}
	out, err := e.raw.DescribeInstances(t.Context(), &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeInstances: %v", err)
	}
	raw := out.Reservations[0].Instances[0]
	if ipv4 == "" || ipv4 != aws.ToString(raw.PublicIpAddress) || dns != aws.ToString(raw.PublicDnsName) {
		t.Errorf("PublicAddress = %q, %q; EC2 says %q, %q", ipv4, dns, aws.ToString(raw.PublicIpAddress), aws.ToString(raw.PublicDnsName))
	}
}
