package ec2test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
)

// Launcher launches real instances into moto as the Launch service would.
// Plug it into the fake Launch service as its InstanceLauncher.
type Launcher struct {
	Endpoint string
	// OverrideTemplateTags makes the service's own instance tags replace the
	// template's, as the Launch service documents (moto merges them): the
	// instance then carries only Name, rh-rid, rh-org and EC2's aws:* tags.
	// Volumes keep the template's tags.
	OverrideTemplateTags bool
	// Launched, when set, is told of each instance launched (say to seed
	// its console output in a NewConsoleFake).
	Launched func(region, instanceID string)
}

var _ launchapitest.InstanceLauncher = (*Launcher)(nil)

// Launch imports the public key if needed, then runs in.Amount (at least 1)
// instances from the launch template's default version with the given image,
// type and key, tagged as the service tags them.
func (l *Launcher) Launch(ctx context.Context, in launchapitest.LaunchInput) ([]launchapitest.Instance, error) {
	region := in.Region
	if region == "" {
		region = "us-east-1"
	}
	cl := Client(l.Endpoint, region)
	keyName, err := ensureKeyPair(ctx, cl, in.KeyName, in.PubkeyBody)
	if err != nil {
		return nil, err
	}

	tags := maps.Clone(in.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	if _, ok := tags["Name"]; !ok && in.Name != "" {
		tags["Name"] = in.Name
	}
	if _, ok := tags["rh-org"]; !ok && in.Org != "" {
		tags["rh-org"] = in.Org
	}
	var ec2Tags []types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ec2Tags = append(ec2Tags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}

	count := int32(max(in.Amount, 1))
	run := &ec2.RunInstancesInput{
		ImageId:      aws.String(in.ImageID),
		InstanceType: types.InstanceType(in.InstanceType),
		MinCount:     aws.Int32(count),
		MaxCount:     aws.Int32(count),
	}
	if keyName != "" {
		run.KeyName = aws.String(keyName)
	}
	if in.LaunchTemplateID != "" {
		run.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(in.LaunchTemplateID), Version: aws.String("$Default")}
	}
	if len(ec2Tags) > 0 {
		run.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: ec2Tags}}
	}
	out, err := cl.RunInstances(ctx, run)
	if err != nil {
		return nil, fmt.Errorf("run instances in %s: %w", region, err)
	}
	if l.OverrideTemplateTags {
		if err := dropTemplateTags(ctx, cl, out.Instances, tags); err != nil {
			return nil, err
		}
	}
	var result []launchapitest.Instance
	for _, i := range out.Instances {
		if l.Launched != nil {
			l.Launched(region, aws.ToString(i.InstanceId))
		}
		result = append(result, launchapitest.Instance{
			ID:          aws.ToString(i.InstanceId),
			PublicIPv4:  aws.ToString(i.PublicIpAddress),
			PublicDNS:   aws.ToString(i.PublicDnsName),
			PrivateIPv4: aws.ToString(i.PrivateIpAddress),
		})
	}
	return result, nil
}

// dropTemplateTags removes from the instances every tag the service did not
// set itself, except EC2's own aws:* tags (which cannot be removed).
func dropTemplateTags(ctx context.Context, cl *ec2.Client, instances []types.Instance, service map[string]string) error {
	for _, i := range instances {
		var drop []types.Tag
		for _, t := range i.Tags {
			k := aws.ToString(t.Key)
			if _, ok := service[k]; !ok && !strings.HasPrefix(k, "aws:") {
				drop = append(drop, types.Tag{Key: t.Key, Value: t.Value})
			}
		}
		if len(drop) == 0 {
			continue
		}
		if _, err := cl.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{aws.ToString(i.InstanceId)}, Tags: drop}); err != nil {
			return fmt.Errorf("override template tags on %s: %w", aws.ToString(i.InstanceId), err)
		}
	}
	return nil
}

// ensureKeyPair imports body under name (or a name derived from the key) unless
// a key pair of that name exists. An empty body means no key.
func ensureKeyPair(ctx context.Context, cl *ec2.Client, name, body string) (string, error) {
	if body == "" {
		return name, nil
	}
	if name == "" {
		sum := sha256.Sum256([]byte(body))
		name = "packit-launch-" + hex.EncodeToString(sum[:8])
	}
	_, err := cl.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{name}})
	if err == nil {
		return name, nil
	}
	if apiCode(err) != "InvalidKeyPair.NotFound" {
		return "", fmt.Errorf("look up key pair %s: %w", name, err)
	}
	_, err = cl.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String(name), PublicKeyMaterial: []byte(body)})
	if err != nil && apiCode(err) != "InvalidKeyPair.Duplicate" {
		return "", fmt.Errorf("import key pair %s: %w", name, err)
	}
	return name, nil
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
