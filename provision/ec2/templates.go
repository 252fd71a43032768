package ec2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unique"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TemplateInput describes one per-launch launch template.
type TemplateInput struct {
	LaunchID         string            // used as ClientToken (idempotent) and in the template name "packit-launch-<launch id>"
	BaseTemplateID   string            // optional: derive from this template's default version
	SecurityGroupIDs []string          // optional: the profile's SSH-only security group(s)
	SubnetID         string            // optional
	Tags             map[string]string // birth tags: go on the template AND in LaunchTemplateData.TagSpecifications for instance + volume
}

// Template is a launch template the bot manages. LaunchID is empty for a
// profile's base template made by Bootstrap, which must not be cleaned up.
type Template struct {
	ID, Name, LaunchID string
	CreatedAt          time.Time
}

// templateName is the per-launch template's name; EC2 allows [a-zA-Z0-9().-/_].
func templateName(launchID string) string { return "packit-launch-" + launchID }

// CreateLaunchTemplate creates the per-launch template, derived from
// BaseTemplateID's default version when set, else from safe defaults, and
// always with the guardrails (see guardrails). TagManaged=true and
// TagLaunch=LaunchID are always added to the tags. Calling it again with the
// same LaunchID returns the same template.
func (c *Cloud) CreateLaunchTemplate(ctx context.Context, region string, in TemplateInput) (string, error) {
	id, _, err := c.EnsureLaunchTemplate(ctx, region, in)
	return id, err
}

// EnsureLaunchTemplate is CreateLaunchTemplate that also says when the
// template was created: before the launch's record was, it tells that the
// launch was started before, under a record Redis has since lost.
func (c *Cloud) EnsureLaunchTemplate(ctx context.Context, region string, in TemplateInput) (string, time.Time, error) {
	if in.LaunchID == "" {
		return "", time.Time{}, errors.New("ec2: create launch template: empty launch id")
	}
	cl, err := c.client(region)
	if err != nil {
		return "", time.Time{}, err
	}
	var base *types.ResponseLaunchTemplateData
	if in.BaseTemplateID != "" {
		base, err = defaultVersionData(ctx, cl, in.BaseTemplateID)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("ec2: launch %s in %s: read base template %s: %w", in.LaunchID, region, in.BaseTemplateID, err)
		}
	}
	tags := maps.Clone(in.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[TagManaged] = "true"
	tags[TagLaunch] = in.LaunchID

	data := templateData(base, in.SecurityGroupIDs, in.SubnetID, tags)
	id, created, err := createTemplate(ctx, cl, templateName(in.LaunchID), clientToken(in.LaunchID), data, tags)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("ec2: launch %s in %s: %w", in.LaunchID, region, err)
	}
	return id, created, nil
}

// clientToken fits the launch id into EC2's 64-ASCII-character ClientToken.
func clientToken(launchID string) string {
	if len(launchID) <= 64 {
		return launchID
	}
	sum := sha256.Sum256([]byte(launchID))
	return hex.EncodeToString(sum[:])
}

// createTemplate creates a template by name, or returns the existing one of
// that name (a retry after a lost response, a concurrent caller, an earlier
// run of the same launch), with when it was created.
func createTemplate(ctx context.Context, cl *ec2.Client, name, token string, data *types.RequestLaunchTemplateData, tags map[string]string) (string, time.Time, error) {
	callCtx, cancel := withTimeout(ctx)
	defer cancel()
	in := &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: data,
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeLaunchTemplate, Tags: toTags(tags)},
		},
	}
	if token != "" {
		in.ClientToken = aws.String(token)
	}
	out, err := cl.CreateLaunchTemplate(callCtx, in)
	if err == nil {
		return aws.ToString(out.LaunchTemplate.LaunchTemplateId), aws.ToTime(out.LaunchTemplate.CreateTime), nil
	}
	if errorCode(err) != "InvalidLaunchTemplateName.AlreadyExistsException" {
		return "", time.Time{}, fmt.Errorf("create launch template %s: %w", name, err)
	}
	lookupCtx, cancel := withTimeout(ctx)
	defer cancel()
	found, lerr := cl.DescribeLaunchTemplates(lookupCtx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{name}})
	if lerr != nil {
		return "", time.Time{}, fmt.Errorf("create launch template %s: already exists, but looking it up failed: %w", name, lerr)
	}
	if len(found.LaunchTemplates) != 1 {
		return "", time.Time{}, fmt.Errorf("create launch template %s: already exists, but lookup found %d templates: %w", name, len(found.LaunchTemplates), err)
	}
	return aws.ToString(found.LaunchTemplates[0].LaunchTemplateId), aws.ToTime(found.LaunchTemplates[0].CreateTime), nil
}

func defaultVersionData(ctx context.Context, cl *ec2.Client, templateID string) (*types.ResponseLaunchTemplateData, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	out, err := cl.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateId: aws.String(templateID),
		Versions:         []string{"$Default"},
	})
	if err != nil {
		return nil, err
	}
	if len(out.LaunchTemplateVersions) != 1 || out.LaunchTemplateVersions[0].LaunchTemplateData == nil {
		return nil, fmt.Errorf("template %s: expected one default version, got %d", templateID, len(out.LaunchTemplateVersions))
	}
	return out.LaunchTemplateVersions[0].LaunchTemplateData, nil
}

// templateData builds launch template data from base (nil = safe defaults)
// and enforces the guardrails. Only fields copied here survive from base: a
// base template cannot smuggle in anything the bot has not thought about
// (instance profiles, spot, capacity reservations, existing ENIs...).
func templateData(base *types.ResponseLaunchTemplateData, securityGroupIDs []string, subnetID string, tags map[string]string) *types.RequestLaunchTemplateData {
	d := &types.RequestLaunchTemplateData{}
	var baseGroups []string
	if base != nil {
		// Launch overrides image, type, key and user data when it has them;
		// the base's values are the fallback.
		d.ImageId = base.ImageId
		d.InstanceType = base.InstanceType
		d.KeyName = base.KeyName
		d.UserData = base.UserData
		d.EbsOptimized = base.EbsOptimized
		if base.Monitoring != nil {
			d.Monitoring = &types.LaunchTemplatesMonitoringRequest{Enabled: base.Monitoring.Enabled}
		}
		if base.CreditSpecification != nil {
			d.CreditSpecification = &types.CreditSpecificationRequest{CpuCredits: base.CreditSpecification.CpuCredits}
		}
		if p := base.Placement; p != nil {
			d.Placement = &types.LaunchTemplatePlacementRequest{AvailabilityZone: p.AvailabilityZone, GroupName: p.GroupName, Tenancy: p.Tenancy}
		}
		for _, b := range base.BlockDeviceMappings {
			m := types.LaunchTemplateBlockDeviceMappingRequest{DeviceName: b.DeviceName, NoDevice: b.NoDevice, VirtualName: b.VirtualName}
			if b.Ebs != nil {
				ebs := types.LaunchTemplateEbsBlockDeviceRequest(*b.Ebs)
				ebs.DeleteOnTermination = aws.Bool(true) // guardrail: no orphaned volumes
				m.Ebs = &ebs
			}
			d.BlockDeviceMappings = append(d.BlockDeviceMappings, m)
		}
		for _, n := range base.NetworkInterfaces {
			if n.NetworkInterfaceId != nil {
				continue // an existing ENI: deleting it on termination would hurt, sharing it cannot work
			}
			d.NetworkInterfaces = append(d.NetworkInterfaces, types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{
				AssociatePublicIpAddress:       n.AssociatePublicIpAddress,
				Description:                    n.Description,
				DeviceIndex:                    n.DeviceIndex,
				Groups:                         n.Groups,
				InterfaceType:                  n.InterfaceType,
				Ipv6AddressCount:               n.Ipv6AddressCount,
				NetworkCardIndex:               n.NetworkCardIndex,
				PrivateIpAddress:               n.PrivateIpAddress,
				SecondaryPrivateIpAddressCount: n.SecondaryPrivateIpAddressCount,
				SubnetId:                       n.SubnetId,
			})
		}
		baseGroups = base.SecurityGroupIds
		d.TagSpecifications = baseTagSpecs(base.TagSpecifications)
		d.MetadataOptions = &types.LaunchTemplateInstanceMetadataOptionsRequest{}
		if m := base.MetadataOptions; m != nil {
			d.MetadataOptions.HttpProtocolIpv6 = m.HttpProtocolIpv6
			d.MetadataOptions.InstanceMetadataTags = m.InstanceMetadataTags
		}
	}
	guardrails(d, baseGroups, securityGroupIDs, subnetID)

	// Birth tags: the instance and its volumes carry their launch id and
	// expiry before the bot ever learns the instance id.
	for _, rt := range []types.ResourceType{types.ResourceTypeInstance, types.ResourceTypeVolume} {
		merged := map[string]string{}
		for i, s := range d.TagSpecifications {
			if s.ResourceType == rt {
				merged = fromTags(s.Tags)
				d.TagSpecifications = slices.Delete(d.TagSpecifications, i, i+1)
				break
			}
		}
		maps.Copy(merged, tags)
		d.TagSpecifications = append(d.TagSpecifications, types.LaunchTemplateTagSpecificationRequest{ResourceType: rt, Tags: toTags(merged)})
	}
	return d
}

// guardrails enforces what every launched instance must have, whatever the
// base template says: IMDSv2 only with hop limit 1, terminate on shutdown,
// no termination protection, no instance profile, volumes and interfaces
// deleted with the instance, and a public IP on the primary interface.
func guardrails(d *types.RequestLaunchTemplateData, baseGroups, securityGroupIDs []string, subnetID string) {
	if d.MetadataOptions == nil {
		d.MetadataOptions = &types.LaunchTemplateInstanceMetadataOptionsRequest{}
	}
	d.MetadataOptions.HttpTokens = types.LaunchTemplateHttpTokensStateRequired
	d.MetadataOptions.HttpPutResponseHopLimit = aws.Int32(1)
	d.MetadataOptions.HttpEndpoint = types.LaunchTemplateInstanceMetadataEndpointStateEnabled
	d.InstanceInitiatedShutdownBehavior = types.ShutdownBehaviorTerminate
	d.DisableApiTermination = aws.Bool(false)
	d.IamInstanceProfile = nil

	// Security groups live on the primary interface: EC2 refuses
	// instance-level groups together with interface specifications.
	primary := -1
	for i, n := range d.NetworkInterfaces {
		if aws.ToInt32(n.DeviceIndex) == 0 {
			primary = i
			break
		}
	}
	if primary < 0 {
		d.NetworkInterfaces = append([]types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{{DeviceIndex: aws.Int32(0)}}, d.NetworkInterfaces...)
		primary = 0
	}
	for i := range d.NetworkInterfaces {
		d.NetworkInterfaces[i].DeleteOnTermination = aws.Bool(true)
	}
	p := &d.NetworkInterfaces[primary]
	if p.AssociatePublicIpAddress == nil {
		p.AssociatePublicIpAddress = aws.Bool(true)
	}
	switch {
	case len(securityGroupIDs) > 0:
		p.Groups = slices.Clone(securityGroupIDs)
	case len(p.Groups) == 0:
		p.Groups = baseGroups
	}
	if subnetID != "" {
		p.SubnetId = aws.String(subnetID)
	}
	d.SecurityGroupIds = nil
	d.SecurityGroups = nil
}

// baseTagSpecs copies the base template's tag specifications.
func baseTagSpecs(specs []types.LaunchTemplateTagSpecification) []types.LaunchTemplateTagSpecificationRequest {
	var out []types.LaunchTemplateTagSpecificationRequest
	for _, s := range specs {
		out = append(out, types.LaunchTemplateTagSpecificationRequest{ResourceType: s.ResourceType, Tags: s.Tags})
	}
	return out
}

// DeleteLaunchTemplate deletes a template; one that does not exist is not an error.
func (c *Cloud) DeleteLaunchTemplate(ctx context.Context, region, templateID string) error {
	cl, err := c.client(region)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err = cl.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(templateID)})
	if err == nil {
		return nil
	}
	switch errorCode(err) {
	case "InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFoundException":
		return nil
	}
	return fmt.Errorf("ec2: delete launch template %s in %s: %w", templateID, region, err)
}

// ListManagedTemplates lists the region's templates tagged TagManaged=true.
func (c *Cloud) ListManagedTemplates(ctx context.Context, region string) ([]Template, error) {
	cl, err := c.client(region)
	if err != nil {
		return nil, err
	}
	pages := ec2.NewDescribeLaunchTemplatesPaginator(cl, &ec2.DescribeLaunchTemplatesInput{
		Filters: []types.Filter{{Name: aws.String("tag:" + TagManaged), Values: []string{"true"}}},
		// Without it moto returns only 15 and no token.
		MaxResults: aws.Int32(c.templatePageSize),
	})
	var out []Template
	for pages.HasMorePages() {
		pageCtx, cancel := withTimeout(ctx)
		page, err := pages.NextPage(pageCtx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("ec2: list managed launch templates in %s: %w", region, err)
		}
		for _, t := range page.LaunchTemplates {
			out = append(out, Template{
				ID:        aws.ToString(t.LaunchTemplateId),
				Name:      aws.ToString(t.LaunchTemplateName),
				LaunchID:  fromTags(t.Tags)[TagLaunch],
				CreatedAt: aws.ToTime(t.CreateTime),
			})
		}
	}
	return out, nil
}

// TemplateTags reads a launch template's tags: a per-launch template's are
// its launch's birth tags, for a VM that lost its own (or never got them).
func (c *Cloud) TemplateTags(ctx context.Context, region, templateID string) (map[string]string, error) {
	cl, err := c.client(region)
	if err != nil {
		return nil, err
	}
	callCtx, cancel := withTimeout(ctx)
	defer cancel()
	out, err := cl.DescribeLaunchTemplates(callCtx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{templateID}})
	if err != nil {
		return nil, fmt.Errorf("ec2: read launch template %s in %s: %w", templateID, region, err)
	}
	if len(out.LaunchTemplates) != 1 {
		return nil, fmt.Errorf("ec2: launch template %s in %s: %d found", templateID, region, len(out.LaunchTemplates))
	}
	return fromTags(out.LaunchTemplates[0].Tags), nil
}

// toTags turns a map into EC2 tags, sorted by key so that a retried request
// is byte-for-byte the same (ClientToken idempotency compares parameters).
func toTags(m map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func fromTags(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		// Keys interned: a listing of 10,000 templates keeps one copy
		// of each key, not one per template.
		m[unique.Make(aws.ToString(t.Key)).Value()] = aws.ToString(t.Value)
	}
	return m
}
