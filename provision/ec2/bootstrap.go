package ec2

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// BootstrapInput names what Bootstrap sets up for one profile.
type BootstrapInput struct {
	Profile  string
	VPCID    string   // "" = the region's default VPC
	SSHCIDRs []string // default 0.0.0.0/0
}

// BootstrapResult holds the ids to put into the profile's configuration.
type BootstrapResult struct{ SecurityGroupID, LaunchTemplateID string }

// Bootstrap creates, idempotently and by name "packit-launch-<profile>", a
// security group allowing inbound TCP 22 from SSHCIDRs only (all egress) and a
// base launch template with the guardrails and that group, both tagged
// TagManaged. Existing ones are reused as they are: it adds missing SSH rules
// but never removes rules or re-creates the template.
func (c *Cloud) Bootstrap(ctx context.Context, region string, in BootstrapInput) (BootstrapResult, error) {
	if in.Profile == "" {
		return BootstrapResult{}, errors.New("ec2: bootstrap: empty profile name")
	}
	cl, err := c.client(region)
	if err != nil {
		return BootstrapResult{}, err
	}
	name := "packit-launch-" + in.Profile
	cidrs := in.SSHCIDRs
	if len(cidrs) == 0 {
		cidrs = []string{"0.0.0.0/0"}
	}
	fail := func(err error) (BootstrapResult, error) {
		return BootstrapResult{}, fmt.Errorf("ec2: bootstrap profile %s in %s: %w", in.Profile, region, err)
	}

	vpcID := in.VPCID
	if vpcID == "" {
		if vpcID, err = defaultVPC(ctx, cl); err != nil {
			return fail(err)
		}
	}
	sgID, err := ensureSecurityGroup(ctx, cl, name, vpcID, in.Profile)
	if err != nil {
		return fail(err)
	}
	for _, cidr := range cidrs {
		if err := allowSSH(ctx, cl, sgID, cidr); err != nil {
			return fail(err)
		}
	}
	tags := map[string]string{TagManaged: "true"}
	templateID, _, err := createTemplate(ctx, cl, name, "", templateData(nil, []string{sgID}, "", tags), tags)
	if err != nil {
		return fail(err)
	}
	return BootstrapResult{SecurityGroupID: sgID, LaunchTemplateID: templateID}, nil
}

func defaultVPC(ctx context.Context, cl *ec2.Client) (string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	out, err := cl.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{
		Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}},
	})
	if err != nil {
		return "", fmt.Errorf("find default VPC: %w", err)
	}
	if len(out.Vpcs) == 0 {
		return "", errors.New("no default VPC: name one explicitly")
	}
	return aws.ToString(out.Vpcs[0].VpcId), nil
}

// ensureSecurityGroup finds the group by name in the VPC or creates it.
func ensureSecurityGroup(ctx context.Context, cl *ec2.Client, name, vpcID, profile string) (string, error) {
	id, err := findSecurityGroup(ctx, cl, name, vpcID)
	if err != nil || id != "" {
		return id, err
	}
	callCtx, cancel := withTimeout(ctx)
	defer cancel()
	out, err := cl.CreateSecurityGroup(callCtx, &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(name),
		Description: aws.String("packit-launch profile " + profile + ": inbound SSH only"),
		VpcId:       aws.String(vpcID),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeSecurityGroup,
			Tags:         toTags(map[string]string{TagManaged: "true"}),
		}},
	})
	if errorCode(err) == "InvalidGroup.Duplicate" {
		// Someone else created it between our lookup and our create.
		return findSecurityGroup(ctx, cl, name, vpcID)
	}
	if err != nil {
		return "", fmt.Errorf("create security group %s in %s: %w", name, vpcID, err)
	}
	return aws.ToString(out.GroupId), nil
}

func findSecurityGroup(ctx context.Context, cl *ec2.Client, name, vpcID string) (string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	out, err := cl.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
		Filters: []types.Filter{
			{Name: aws.String("group-name"), Values: []string{name}},
			{Name: aws.String("vpc-id"), Values: []string{vpcID}},
		},
	})
	if err != nil {
		return "", fmt.Errorf("look up security group %s in %s: %w", name, vpcID, err)
	}
	if len(out.SecurityGroups) == 0 {
		return "", nil
	}
	return aws.ToString(out.SecurityGroups[0].GroupId), nil
}

// allowSSH adds one inbound TCP 22 rule; an existing identical rule is fine.
func allowSSH(ctx context.Context, cl *ec2.Client, groupID, cidr string) error {
	perm := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22)}
	if strings.Contains(cidr, ":") {
		perm.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: aws.String(cidr), Description: aws.String("packit-launch SSH")}}
	} else {
		perm.IpRanges = []types.IpRange{{CidrIp: aws.String(cidr), Description: aws.String("packit-launch SSH")}}
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := cl.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:       aws.String(groupID),
		IpPermissions: []types.IpPermission{perm},
	})
	if err != nil && errorCode(err) != "InvalidPermission.Duplicate" {
		return fmt.Errorf("allow SSH from %s into %s: %w", cidr, groupID, err)
	}
	return nil
}
