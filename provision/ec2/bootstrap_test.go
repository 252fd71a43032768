package ec2_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/packit/packit-launch/provision/ec2"
)

func TestBootstrap(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		in        ec2.BootstrapInput
		wantCIDRs []string
	}{
		{in: ec2.BootstrapInput{Profile: "fedora", SSHCIDRs: []string{"198.51.100.0/24"}}, wantCIDRs: []string{"198.51.100.0/24"}},
		{in: ec2.BootstrapInput{Profile: "anywhere"}, wantCIDRs: []string{"0.0.0.0/0"}},
	}
	for _, tc := range tests {
		t.Run(tc.in.Profile, func(t *testing.T) {
			first, err := e.cloud.Bootstrap(t.Context(), region, tc.in)
			if err != nil {
				t.Fatalf("Bootstrap: %v", err)
			}
			second, err := e.cloud.Bootstrap(t.Context(), region, tc.in)
			if err != nil {
				t.Fatalf("second Bootstrap: %v", err)
			}
			if first != second || first.SecurityGroupID == "" || first.LaunchTemplateID == "" {
				t.Errorf("Bootstrap twice = %+v then %+v, want the same ids", first, second)
			}

			out, err := e.raw.DescribeSecurityGroups(t.Context(), &awsec2.DescribeSecurityGroupsInput{GroupIds: []string{first.SecurityGroupID}})
			if err != nil || len(out.SecurityGroups) != 1 {
				t.Fatalf("DescribeSecurityGroups: %v", err)
			}
			sg := out.SecurityGroups[0]
			if name := aws.ToString(sg.GroupName); name != "packit-launch-"+tc.in.Profile {
				t.Errorf("group name = %q", name)
			}
			if tagMap(sg.Tags)[ec2.TagManaged] != "true" {
				t.Errorf("group tags = %v, want %s=true", tagMap(sg.Tags), ec2.TagManaged)
			}
			if len(sg.IpPermissions) != 1 {
				t.Fatalf("ingress = %+v, want exactly one rule", sg.IpPermissions)
			}
			rule := sg.IpPermissions[0]
			var cidrs []string
			for _, r := range rule.IpRanges {
				cidrs = append(cidrs, aws.ToString(r.CidrIp))
			}
			if aws.ToString(rule.IpProtocol) != "tcp" || aws.ToInt32(rule.FromPort) != 22 || aws.ToInt32(rule.ToPort) != 22 ||
				!slices.Equal(cidrs, tc.wantCIDRs) || len(rule.Ipv6Ranges) > 0 || len(rule.UserIdGroupPairs) > 0 {
				t.Errorf("ingress rule = %+v (cidrs %v), want TCP 22 from %v only", rule, cidrs, tc.wantCIDRs)
			}
			allEgress := false
			for _, r := range sg.IpPermissionsEgress {
				for _, rng := range r.IpRanges {
					allEgress = allEgress || (aws.ToString(r.IpProtocol) == "-1" && aws.ToString(rng.CidrIp) == "0.0.0.0/0")
				}
			}
			if !allEgress {
				t.Errorf("egress = %+v, want all traffic allowed", sg.IpPermissionsEgress)
			}

			checkGuardrails(t, e.defaultVersion(t, first.LaunchTemplateID), []string{first.SecurityGroupID}, "")
			if tags := e.templateTags(t, first.LaunchTemplateID); tags[ec2.TagManaged] != "true" || tags[ec2.TagLaunch] != "" {
				t.Errorf("template tags = %v, want %s=true and no launch id", tags, ec2.TagManaged)
			}
		})
	}

	templates, err := e.cloud.ListManagedTemplates(t.Context(), region)
	if err != nil {
		t.Fatalf("ListManagedTemplates: %v", err)
	}
	if len(templates) != 2 || templates[0].LaunchID != "" || templates[1].LaunchID != "" {
		t.Errorf("managed templates = %+v, want the two base templates without launch ids", templates)
	}
}
