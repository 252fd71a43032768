package ec2

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Permissions is what the bot's AWS access may do in a region, as EC2's
// DryRun reports it: AWS evaluates the IAM policy, conditions included, and
// changes nothing. The bot needs the run-time ones (deploy/iam-policy.json);
// the bootstrap ones (deploy/iam-bootstrap-policy.json) let a stolen
// credential open the VMs' security group to the world, so a long-running
// bot should not have them.
type Permissions struct {
	// CreatePerLaunchTemplate: create a template carrying a launch id (run time).
	CreatePerLaunchTemplate bool
	// Bootstrap only.
	CreateSecurityGroup           bool
	AuthorizeSecurityGroupIngress bool // on a managed group
	DeleteBaseTemplate            bool // a profile's base template
	// Unchecked names checks that had nothing to try them on.
	Unchecked []string
}

// BootstrapOnly names the bootstrap permissions the access has.
func (p Permissions) BootstrapOnly() []string {
	var out []string
	for name, has := range map[string]bool{
		"ec2:CreateSecurityGroup":                     p.CreateSecurityGroup,
		"ec2:AuthorizeSecurityGroupIngress":           p.AuthorizeSecurityGroupIngress,
		"ec2:DeleteLaunchTemplate on a base template": p.DeleteBaseTemplate,
	} {
		if has {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// permissionCheckName names what the dry runs would create; nothing is.
const permissionCheckName = "packit-launch-permission-check"

// CheckPermissions dry-runs, in region, the calls that tell the run-time
// policy from the bootstrap one. groupIDs and baseTemplateIDs are the
// profiles' (from the server config): the first that exists is tried.
func (c *Cloud) CheckPermissions(ctx context.Context, region string, groupIDs, baseTemplateIDs []string) (Permissions, error) {
	cl, err := c.client(region)
	if err != nil {
		return Permissions{}, err
	}
	var p Permissions
	managed := map[string]string{TagManaged: "true"}
	perLaunch := map[string]string{TagManaged: "true", TagLaunch: permissionCheckName}

	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err = cl.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		DryRun: aws.Bool(true), LaunchTemplateName: aws.String(permissionCheckName), LaunchTemplateData: &types.RequestLaunchTemplateData{},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeLaunchTemplate, Tags: toTags(perLaunch)}},
	})
	if p.CreatePerLaunchTemplate, err = allowed(err); err != nil {
		return p, fmt.Errorf("ec2: dry-run CreateLaunchTemplate in %s: %w", region, err)
	}
	_, err = cl.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		DryRun: aws.Bool(true), GroupName: aws.String(permissionCheckName), Description: aws.String(permissionCheckName),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: toTags(managed)}},
	})
	if p.CreateSecurityGroup, err = allowed(err); err != nil {
		return p, fmt.Errorf("ec2: dry-run CreateSecurityGroup in %s: %w", region, err)
	}
	tried := false
	for _, id := range groupIDs {
		_, err = cl.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
			DryRun: aws.Bool(true), GroupId: aws.String(id),
			IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("192.0.2.0/24")}}}},
		})
		if errorCode(err) == "InvalidGroup.NotFound" {
			continue
		}
		if p.AuthorizeSecurityGroupIngress, err = allowed(err); err != nil {
			return p, fmt.Errorf("ec2: dry-run AuthorizeSecurityGroupIngress on %s in %s: %w", id, region, err)
		}
		tried = true
		break
	}
	if !tried {
		p.Unchecked = append(p.Unchecked, "ec2:AuthorizeSecurityGroupIngress (no profile's security group in this region)")
	}
	tried = false
	for _, id := range baseTemplateIDs {
		_, err = cl.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{DryRun: aws.Bool(true), LaunchTemplateId: aws.String(id)})
		if code := errorCode(err); code == "InvalidLaunchTemplateId.NotFound" || code == "InvalidLaunchTemplateId.Malformed" {
			continue
		}
		if p.DeleteBaseTemplate, err = allowed(err); err != nil {
			return p, fmt.Errorf("ec2: dry-run DeleteLaunchTemplate on %s in %s: %w", id, region, err)
		}
		tried = true
		break
	}
	if !tried {
		p.Unchecked = append(p.Unchecked, "ec2:DeleteLaunchTemplate on a base template (no profile's template in this region)")
	}
	return p, nil
}

// allowed reads a dry run's answer: DryRunOperation means the call would
// have succeeded, UnauthorizedOperation that IAM denies it.
func allowed(err error) (bool, error) {
	switch errorCode(err) {
	case "DryRunOperation":
		return true, nil
	case "UnauthorizedOperation":
		return false, nil
	}
	if err == nil {
		return false, errors.New("the EC2 endpoint ignored DryRun (the call was made)")
	}
	return false, err
}
