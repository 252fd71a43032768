package ec2

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// IDsCheck is which of a profile's ids exist in a region.
type IDsCheck struct {
	// Missing are the ids AWS does not know in the region.
	Missing []string
	// Unchecked names lookups the access may not make (the run-time
	// policy reads launch templates but not security groups or subnets).
	Unchecked []string
}

// CheckIDs looks up a profile's base template, security groups and subnet
// in region, one id per call (an unknown id fails a call for all): ids are
// regional, and one copied from another region fails every launch.
func (c *Cloud) CheckIDs(ctx context.Context, region, template string, groups []string, subnet string) (IDsCheck, error) {
	cl, err := c.client(region)
	if err != nil {
		return IDsCheck{}, err
	}
	type lookup struct {
		action   string
		id       string
		notFound []string
		call     func(context.Context, string) (int, error)
	}
	var lookups []lookup
	if template != "" {
		lookups = append(lookups, lookup{"DescribeLaunchTemplates", template, []string{"InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateId.Malformed", "InvalidLaunchTemplateName.NotFoundException"},
			func(ctx context.Context, id string) (int, error) {
				res, err := cl.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{id}})
				if err != nil {
					return 0, err
				}
				return len(res.LaunchTemplates), nil
			}})
	}
	for _, g := range groups {
		lookups = append(lookups, lookup{"DescribeSecurityGroups", g, []string{"InvalidGroup.NotFound", "InvalidGroupId.Malformed"},
			func(ctx context.Context, id string) (int, error) {
				res, err := cl.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
				if err != nil {
					return 0, err
				}
				return len(res.SecurityGroups), nil
			}})
	}
	if subnet != "" {
		lookups = append(lookups, lookup{"DescribeSubnets", subnet, []string{"InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"},
			func(ctx context.Context, id string) (int, error) {
				res, err := cl.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{id}})
				if err != nil {
					return 0, err
				}
				return len(res.Subnets), nil
			}})
	}
	var out IDsCheck
	for _, l := range lookups {
		callCtx, cancel := withTimeout(ctx)
		n, err := l.call(callCtx, l.id)
		cancel()
		code := errorCode(err)
		switch {
		case code == "UnauthorizedOperation":
			if u := fmt.Sprintf("%s (ec2:%s is not allowed)", l.id, l.action); !slices.Contains(out.Unchecked, u) {
				out.Unchecked = append(out.Unchecked, u)
			}
		case slices.Contains(l.notFound, code) || (err == nil && n == 0):
			out.Missing = append(out.Missing, l.id)
		case err != nil:
			return out, fmt.Errorf("ec2: %s %s in %s: %w", l.action, l.id, region, err)
		}
	}
	return out, nil
}
