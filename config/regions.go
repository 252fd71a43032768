package config

import (
	"errors"
	"regexp"
	"slices"
	"strings"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.yaml.in/yaml/v3"
)

// RegionIDs are a profile's AWS resources in one region: AWS ids are
// regional, so a profile with several regions gives them per region.
// Empty means the bot's defaults (its own guardrails, the region's default
// VPC and subnet).
type RegionIDs struct {
	// LaunchTemplateID is the base launch template.
	LaunchTemplateID string `yaml:"launch_template_id"`
	// SecurityGroupIDs is the SSH-only security group(s), put on every VM.
	SecurityGroupIDs []string `yaml:"security_group_ids"`
	// SubnetID empty means the region's default subnet.
	SubnetID string `yaml:"subnet_id"`
}

func (r RegionIDs) empty() bool {
	return r.LaunchTemplateID == "" && len(r.SecurityGroupIDs) == 0 && r.SubnetID == ""
}

// In returns the profile's ids in region (zero: the bot's defaults).
func (p Profile) In(region string) RegionIDs { return p.IDs[region] }

// UnmarshalYAML reads regions either as a list of names, with the ids (if
// any) beside them, which suits one region; or as a mapping from each
// region to its own ids. What is wrong is kept for validate: an error here
// would drop the whole profile, and with it every other check of it.
func (p *Profile) UnmarshalYAML(n *yaml.Node) error {
	type plain Profile // without this method
	var raw struct {
		plain   `yaml:",inline"`
		Regions yaml.Node `yaml:"regions"`
	}
	err := n.Decode(&raw)
	*p = Profile(raw.plain)
	p.decodeErrs = append(typeErrors(err), typeErrors(p.readRegions(&raw.Regions))...)
	return nil
}

// typeErrors are the decoder's messages in err.
func typeErrors(err error) []string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return te.Errors
	}
	if err != nil {
		return []string{err.Error()}
	}
	return nil
}

func (p *Profile) readRegions(n *yaml.Node) error {
	switch n.Kind {
	case 0:
		return nil
	case yaml.SequenceNode:
		return n.Decode(&p.Regions)
	case yaml.MappingNode:
		p.perRegion = true
		p.IDs = map[string]RegionIDs{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			name := n.Content[i].Value
			var ids RegionIDs
			if v := n.Content[i+1]; v.Tag != "!!null" {
				if err := v.Decode(&ids); err != nil {
					return err
				}
			}
			p.Regions = append(p.Regions, name)
			p.IDs[name] = ids
		}
		return nil
	}
	return ownTypeError(n.Line, errors.New("regions: give a list of regions, or a mapping from each region to its ids"))
}

// settleRegions puts the one-region form's ids under its region, so that
// both forms read the same (In).
func (p *Profile) settleRegions() {
	if p.perRegion || p.RegionIDs.empty() || len(p.Regions) != 1 {
		return
	}
	p.IDs = map[string]RegionIDs{p.Regions[0]: p.RegionIDs}
}

var (
	// regionRE is an AWS region's form: us-east-1, eu-central-2, us-gov-west-1, ap-southeast-4.
	regionRE   = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$`)
	templateRE = regexp.MustCompile(`^lt-[0-9a-f]{8}([0-9a-f]{9})?$`)
	groupRE    = regexp.MustCompile(`^sg-[0-9a-f]{8}([0-9a-f]{9})?$`)
	subnetRE   = regexp.MustCompile(`^subnet-[0-9a-f]{8}([0-9a-f]{9})?$`)
)

// instanceTypes are the instance types the AWS SDK knows, offline.
var instanceTypes = ec2types.InstanceType("").Values()

// checkRegions checks a profile's regions and their ids.
func checkRegions(at string, p Profile, problems *Problems) {
	for _, r := range p.Regions {
		if !regionRE.MatchString(r) {
			problems.add("%s.regions: %q is not an AWS region (like us-east-1 or eu-west-1)", at, r)
		}
	}
	if !p.RegionIDs.empty() {
		switch {
		case p.perRegion:
			problems.add("%s: launch_template_id, security_group_ids and subnet_id go under each region when regions is a mapping, not beside it", at)
		case len(p.Regions) > 1:
			problems.add("%s: launch_template_id, security_group_ids and subnet_id are regional and this profile has %d regions: give each region its own, as in "+
				"`regions: {%s: {launch_template_id: lt-…, security_group_ids: [sg-…]}, …}` (`packit-launch aws bootstrap --profile %s` prints the block)",
				at, len(p.Regions), p.Regions[0], strings.TrimPrefix(at, "profiles."))
		}
		checkIDs(at, p.RegionIDs, problems)
	}
	if !p.perRegion {
		return
	}
	for _, r := range p.Regions {
		checkIDs(at+".regions."+r, p.IDs[r], problems)
	}
	// A profile that gives ids gives them for each of its regions: one
	// region on the bot's defaults beside others on the operator's template
	// is a mistake more often than a wish.
	for _, field := range []struct {
		name string
		set  func(RegionIDs) bool
	}{
		{"launch_template_id", func(r RegionIDs) bool { return r.LaunchTemplateID != "" }},
		{"security_group_ids", func(r RegionIDs) bool { return len(r.SecurityGroupIDs) > 0 }},
	} {
		i := slices.IndexFunc(p.Regions, func(r string) bool { return field.set(p.IDs[r]) })
		if i < 0 {
			continue
		}
		for _, r := range p.Regions {
			if !field.set(p.IDs[r]) {
				problems.add("%s.regions.%s.%s: not set, while %s has one: give it for each of the profile's regions", at, r, field.name, p.Regions[i])
			}
		}
	}
}

func checkIDs(at string, ids RegionIDs, problems *Problems) {
	if ids.LaunchTemplateID != "" && !templateRE.MatchString(ids.LaunchTemplateID) {
		problems.add("%s.launch_template_id: %q is not a launch template id (lt- and 8 or 17 hex digits)", at, ids.LaunchTemplateID)
	}
	for _, sg := range ids.SecurityGroupIDs {
		if !groupRE.MatchString(sg) {
			problems.add("%s.security_group_ids: %q is not a security group id (sg- and 8 or 17 hex digits)", at, sg)
		}
	}
	if ids.SubnetID != "" && !subnetRE.MatchString(ids.SubnetID) {
		problems.add("%s.subnet_id: %q is not a subnet id (subnet- and 8 or 17 hex digits; empty means the region's default subnet)", at, ids.SubnetID)
	}
}

// checkInstanceTypes checks a profile's instance types against the AWS
// SDK's list, naming the nearest known type.
func checkInstanceTypes(at string, types []string, problems *Problems) {
	for _, t := range types {
		if slices.Contains(instanceTypes, ec2types.InstanceType(t)) {
			continue
		}
		known := make([]string, len(instanceTypes))
		for i, k := range instanceTypes {
			known[i] = string(k)
		}
		problems.add("%s.instance_types: %q is not an EC2 instance type%s", at, t, didYouMeanKey(nearest(t, known), "%s"))
	}
}

// nearest is the one of known nearest to word, when it is near enough to
// be a typo; else "".
func nearest(word string, known []string) string {
	if len(word) > 64 {
		return "" // no typo of a known word, and each comparison costs its square
	}
	best, dist := "", 3
	for _, k := range known {
		if d := editDistance(word, k); d < dist {
			best, dist = k, d
		}
	}
	return best
}
