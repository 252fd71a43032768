package ec2_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
)

func birthTags(launchID string) map[string]string {
	return map[string]string{
		ec2.TagRepo:          "packit/demo",
		ec2.TagPR:            "7",
		ec2.TagOwner:         "alice",
		ec2.TagExpiresAt:     "2030-01-01T00:00:00Z",
		ec2.TagHardExpiresAt: "2030-01-02T00:00:00Z",
		ec2.TagLaunch:        launchID,
	}
}

func (e *env) securityGroup(t *testing.T, name string) string {
	t.Helper()
	out, err := e.raw.CreateSecurityGroup(t.Context(), &awsec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateSecurityGroup: %v", err)
	}
	return aws.ToString(out.GroupId)
}

func (e *env) defaultSubnet(t *testing.T) string {
	t.Helper()
	out, err := e.raw.DescribeSubnets(t.Context(), &awsec2.DescribeSubnetsInput{})
	if err != nil || len(out.Subnets) == 0 {
		t.Fatalf("DescribeSubnets: %v (%d found)", err, len(out.Subnets))
	}
	return aws.ToString(out.Subnets[0].SubnetId)
}

// baseTemplate is an operator's template that breaks every guardrail.
func (e *env) baseTemplate(t *testing.T, sg string) string {
	t.Helper()
	out, err := e.raw.CreateLaunchTemplate(t.Context(), &awsec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("operator-base"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{
			InstanceType: types.InstanceTypeT3Small,
			BlockDeviceMappings: []types.LaunchTemplateBlockDeviceMappingRequest{{
				DeviceName: aws.String("/dev/sda1"),
				Ebs: &types.LaunchTemplateEbsBlockDeviceRequest{
					VolumeSize: aws.Int32(20), VolumeType: types.VolumeTypeGp3, Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(false),
				},
			}},
			IamInstanceProfile:                &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: aws.String("admin")},
			DisableApiTermination:             aws.Bool(true),
			InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorStop,
			MetadataOptions: &types.LaunchTemplateInstanceMetadataOptionsRequest{
				HttpTokens: types.LaunchTemplateHttpTokensStateOptional, HttpPutResponseHopLimit: aws.Int32(3),
				InstanceMetadataTags: types.LaunchTemplateInstanceMetadataTagsStateEnabled,
			},
			SecurityGroupIds: []string{sg},
			TagSpecifications: []types.LaunchTemplateTagSpecificationRequest{{
				ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{
					{Key: aws.String("team"), Value: aws.String("packit")},
					{Key: aws.String(ec2.TagExpiresAt), Value: aws.String("1999-01-01T00:00:00Z")},
				},
			}},
		},
	})
	if err != nil {
		t.Fatalf("CreateLaunchTemplate base: %v", err)
	}
	return aws.ToString(out.LaunchTemplate.LaunchTemplateId)
}

func TestCreateLaunchTemplate(t *testing.T) {
	e := newEnv(t)
	profileSG := e.securityGroup(t, "profile-ssh")
	baseSG := e.securityGroup(t, "base-sg")
	subnet := e.defaultSubnet(t)
	base := e.baseTemplate(t, baseSG)

	tests := []struct {
		name       string
		in         ec2.TemplateInput
		wantGroups []string
		wantSubnet string
		wantTags   map[string]string // beyond the birth tags, on the instance
		check      func(t *testing.T, d *types.ResponseLaunchTemplateData)
	}{
		{
			name: "defaults",
			in:   ec2.TemplateInput{LaunchID: "l-defaults"},
		},
		{
			name:       "defaults with group and subnet",
			in:         ec2.TemplateInput{LaunchID: "l-group", SecurityGroupIDs: []string{profileSG}, SubnetID: subnet},
			wantGroups: []string{profileSG},
			wantSubnet: subnet,
		},
		{
			name:       "from base keeps its group",
			in:         ec2.TemplateInput{LaunchID: "l-base", BaseTemplateID: base},
			wantGroups: []string{baseSG},
			wantTags:   map[string]string{"team": "packit"},
			check: func(t *testing.T, d *types.ResponseLaunchTemplateData) {
				if d.InstanceType != types.InstanceTypeT3Small {
					t.Errorf("InstanceType = %q, want the base's t3.small", d.InstanceType)
				}
				if len(d.BlockDeviceMappings) != 1 {
					t.Fatalf("BlockDeviceMappings = %+v, want the base's one", d.BlockDeviceMappings)
				}
				ebs := d.BlockDeviceMappings[0].Ebs
				if aws.ToString(d.BlockDeviceMappings[0].DeviceName) != "/dev/sda1" || ebs == nil ||
					aws.ToInt32(ebs.VolumeSize) != 20 || !aws.ToBool(ebs.Encrypted) || ebs.VolumeType != types.VolumeTypeGp3 {
					t.Errorf("root device = %+v / %+v, want the base's 20 GB encrypted gp3 /dev/sda1", d.BlockDeviceMappings[0], ebs)
				}
				if d.MetadataOptions.InstanceMetadataTags != types.LaunchTemplateInstanceMetadataTagsStateEnabled {
					t.Errorf("InstanceMetadataTags = %q, want the base's enabled", d.MetadataOptions.InstanceMetadataTags)
				}
			},
		},
		{
			name:       "from base with the profile's group",
			in:         ec2.TemplateInput{LaunchID: "l-base-group", BaseTemplateID: base, SecurityGroupIDs: []string{profileSG}, SubnetID: subnet},
			wantGroups: []string{profileSG},
			wantSubnet: subnet,
			wantTags:   map[string]string{"team": "packit"},
		},
	}
	launcher := &ec2test.Launcher{Endpoint: e.endpoint}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Tags = birthTags(tc.in.LaunchID)
			id, err := e.cloud.CreateLaunchTemplate(t.Context(), region, tc.in)
			if err != nil {
				t.Fatalf("CreateLaunchTemplate: %v", err)
			}
			want := birthTags(tc.in.LaunchID)
			want[ec2.TagManaged] = "true"
			if got := e.templateTags(t, id); !maps.Equal(got, want) {
				t.Errorf("template tags = %v, want %v", got, want)
			}

			d := e.defaultVersion(t, id)
			checkGuardrails(t, d, tc.wantGroups, tc.wantSubnet)
			if tc.check != nil {
				tc.check(t, d)
			}
			specs := map[types.ResourceType]map[string]string{}
			for _, s := range d.TagSpecifications {
				specs[s.ResourceType] = tagMap(s.Tags)
			}
			for _, rt := range []types.ResourceType{types.ResourceTypeInstance, types.ResourceTypeVolume} {
				for k, v := range want {
					if specs[rt][k] != v {
						t.Errorf("%s tag spec: %s = %q, want %q", rt, k, specs[rt][k], v)
					}
				}
			}

			// An instance launched from it as the Launch service would carries
			// the birth tags (moto merges template tags) and the template id.
			instances, err := launcher.Launch(t.Context(), launchapitest.LaunchInput{
				Region: region, ImageID: e.ami, InstanceType: "t3.micro", LaunchTemplateID: id, Amount: 1,
				Tags: map[string]string{"Name": "vm", "rh-rid": "r-1", "rh-org": "42"},
			})
			if err != nil || len(instances) != 1 {
				t.Fatalf("Launch: %v (%d instances)", err, len(instances))
			}
			inst, err := e.cloud.Describe(t.Context(), region, instances[0].ID)
			if err != nil {
				t.Fatalf("Describe: %v", err)
			}
			if inst.LaunchTemplateID != id {
				t.Errorf("LaunchTemplateID = %q, want %q", inst.LaunchTemplateID, id)
			}
			maps.Copy(want, tc.wantTags)
			want["Name"], want["rh-rid"], want["rh-org"] = "vm", "r-1", "42"
			for k, v := range want {
				if inst.Tags.Get(k) != v {
					t.Errorf("instance tag %s = %q, want %q", k, inst.Tags.Get(k), v)
				}
			}
		})
	}
}

func TestCreateLaunchTemplateIdempotent(t *testing.T) {
	e := newEnv(t)
	in := ec2.TemplateInput{LaunchID: "l-twice", Tags: birthTags("l-twice")}
	first, err := e.cloud.CreateLaunchTemplate(t.Context(), region, in)
	if err != nil {
		t.Fatalf("first CreateLaunchTemplate: %v", err)
	}
	second, err := e.cloud.CreateLaunchTemplate(t.Context(), region, in)
	if err != nil {
		t.Fatalf("second CreateLaunchTemplate: %v", err)
	}
	if first != second {
		t.Errorf("second create returned %q, want the first %q", second, first)
	}
	templates, err := e.cloud.ListManagedTemplates(t.Context(), region)
	if err != nil {
		t.Fatalf("ListManagedTemplates: %v", err)
	}
	if len(templates) != 1 || templates[0].ID != first || templates[0].Name != "packit-launch-l-twice" {
		t.Errorf("templates = %+v, want just %s named packit-launch-l-twice", templates, first)
	}
}

func TestCreateLaunchTemplateErrors(t *testing.T) {
	e := newEnv(t)
	if _, err := e.cloud.CreateLaunchTemplate(t.Context(), region, ec2.TemplateInput{}); err == nil {
		t.Error("empty launch id: no error")
	}
	if _, err := e.cloud.CreateLaunchTemplate(t.Context(), "not a region", ec2.TemplateInput{LaunchID: "l-1"}); err == nil {
		t.Error("bad region: no error")
	}
	// A region no profile names any more still works: its VMs must still be ended.
	if _, err := e.cloud.ListManaged(t.Context(), "eu-west-1"); err != nil {
		t.Errorf("ListManaged in a region outside the config: %v", err)
	}
	_, err := e.cloud.CreateLaunchTemplate(t.Context(), region, ec2.TemplateInput{LaunchID: "l-1", BaseTemplateID: "lt-0123456789abcdef0"})
	if err == nil {
		t.Fatal("missing base template: no error")
	}
	var apiErr interface{ ErrorCode() string }
	if !errors.As(err, &apiErr) {
		t.Errorf("missing base template: %v does not carry the AWS error", err)
	}
	// A profile naming a template that does not exist is the operator's to fix, not a retry's.
	if !ec2.IsSetupError(err) {
		t.Errorf("missing base template (%s) is not a setup error", ec2.ErrorCode(err))
	}
}

func TestListAndDeleteTemplates(t *testing.T) {
	e := newEnv(t)
	ids := map[string]string{}
	for _, launchID := range []string{"l-a", "l-b", "l-c"} {
		id, err := e.cloud.CreateLaunchTemplate(t.Context(), region, ec2.TemplateInput{LaunchID: launchID, Tags: birthTags(launchID)})
		if err != nil {
			t.Fatalf("CreateLaunchTemplate %s: %v", launchID, err)
		}
		ids[launchID] = id
	}
	// Someone else's template is never listed.
	if _, err := e.raw.CreateLaunchTemplate(t.Context(), &awsec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("not-ours"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{InstanceType: types.InstanceTypeT3Micro},
	}); err != nil {
		t.Fatalf("CreateLaunchTemplate not-ours: %v", err)
	}

	list := func() map[string]string {
		t.Helper()
		templates, err := e.cloud.ListManagedTemplates(t.Context(), region)
		if err != nil {
			t.Fatalf("ListManagedTemplates: %v", err)
		}
		got := map[string]string{}
		for _, tmpl := range templates {
			if tmpl.CreatedAt.IsZero() || tmpl.Name != "packit-launch-"+tmpl.LaunchID {
				t.Errorf("template %+v: want a creation time and the name packit-launch-<launch id>", tmpl)
			}
			got[tmpl.LaunchID] = tmpl.ID
		}
		return got
	}
	if got := list(); !maps.Equal(got, ids) {
		t.Errorf("managed templates = %v, want %v", got, ids)
	}

	if err := e.cloud.DeleteLaunchTemplate(t.Context(), region, ids["l-b"]); err != nil {
		t.Fatalf("DeleteLaunchTemplate: %v", err)
	}
	deleted := ids["l-b"]
	delete(ids, "l-b")
	if got := list(); !maps.Equal(got, ids) {
		t.Errorf("after delete: managed templates = %v, want %v", got, ids)
	}
	// Deleting what is already gone, or never existed, is done.
	for _, id := range []string{deleted, "lt-0123456789abcdef0"} {
		if err := e.cloud.DeleteLaunchTemplate(t.Context(), region, id); err != nil {
			t.Errorf("deleting missing template %s: %v, want nil", id, err)
		}
	}
}
