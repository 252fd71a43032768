package ec2_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
)

const region = "us-east-1"

// env is one private moto with a Cloud and a raw client for setup and checks.
type env struct {
	endpoint string
	cloud    *ec2.Cloud
	raw      *awsec2.Client
	ami      string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	endpoint := ec2test.StartMoto(t)
	cloud, err := ec2.New(t.Context(), ec2test.Config(endpoint, region))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &env{
		endpoint: endpoint,
		cloud:    cloud,
		raw:      ec2test.Client(endpoint, region),
		ami:      ec2test.AMI(t, endpoint, region),
	}
}

// run launches one instance with the raw client; opts adjust the request.
func (e *env) run(t *testing.T, opts ...func(*awsec2.RunInstancesInput)) string {
	t.Helper()
	in := &awsec2.RunInstancesInput{
		ImageId:      aws.String(e.ami),
		InstanceType: types.InstanceTypeT3Micro,
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
	}
	for _, o := range opts {
		o(in)
	}
	out, err := e.raw.RunInstances(t.Context(), in)
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

func withTags(tags map[string]string) func(*awsec2.RunInstancesInput) {
	return func(in *awsec2.RunInstancesInput) {
		spec := types.TagSpecification{ResourceType: types.ResourceTypeInstance}
		for k, v := range tags {
			spec.Tags = append(spec.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		in.TagSpecifications = append(in.TagSpecifications, spec)
	}
}

func fromTemplate(id string) func(*awsec2.RunInstancesInput) {
	return func(in *awsec2.RunInstancesInput) {
		in.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(id), Version: aws.String("$Default")}
	}
}

// template creates a launch template with the given tags on the template
// itself (not on what is launched from it).
func (e *env) template(t *testing.T, name string, tags map[string]string) string {
	t.Helper()
	tmpl, err := e.raw.CreateLaunchTemplate(t.Context(), &awsec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &types.RequestLaunchTemplateData{InstanceType: types.InstanceTypeT3Micro},
		TagSpecifications:  []types.TagSpecification{{ResourceType: types.ResourceTypeLaunchTemplate, Tags: tagList(tags)}},
	})
	if err != nil {
		t.Fatalf("CreateLaunchTemplate %s: %v", name, err)
	}
	return aws.ToString(tmpl.LaunchTemplate.LaunchTemplateId)
}

// defaultVersion reads a template's default version back from EC2.
func (e *env) defaultVersion(t *testing.T, templateID string) *types.ResponseLaunchTemplateData {
	t.Helper()
	out, err := e.raw.DescribeLaunchTemplateVersions(t.Context(), &awsec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateId: aws.String(templateID),
		Versions:         []string{"$Default"},
	})
	if err != nil {
		t.Fatalf("DescribeLaunchTemplateVersions %s: %v", templateID, err)
	}
	if len(out.LaunchTemplateVersions) != 1 {
		t.Fatalf("template %s: %d default versions", templateID, len(out.LaunchTemplateVersions))
	}
	return out.LaunchTemplateVersions[0].LaunchTemplateData
}

// templateTags reads a template's own tags.
func (e *env) templateTags(t *testing.T, templateID string) map[string]string {
	t.Helper()
	out, err := e.raw.DescribeLaunchTemplates(t.Context(), &awsec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{templateID}})
	if err != nil || len(out.LaunchTemplates) != 1 {
		t.Fatalf("DescribeLaunchTemplates %s: %v (%d found)", templateID, err, len(out.LaunchTemplates))
	}
	return tagMap(out.LaunchTemplates[0].Tags)
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// checkGuardrails asserts what every template the bot makes must say.
func checkGuardrails(t *testing.T, d *types.ResponseLaunchTemplateData, wantGroups []string, wantSubnet string) {
	t.Helper()
	m := d.MetadataOptions
	if m == nil || m.HttpTokens != types.LaunchTemplateHttpTokensStateRequired ||
		aws.ToInt32(m.HttpPutResponseHopLimit) != 1 || m.HttpEndpoint != types.LaunchTemplateInstanceMetadataEndpointStateEnabled {
		t.Errorf("MetadataOptions = %+v, want IMDSv2 required, hop limit 1, endpoint enabled", m)
	}
	if d.InstanceInitiatedShutdownBehavior != types.ShutdownBehaviorTerminate {
		t.Errorf("InstanceInitiatedShutdownBehavior = %q, want terminate", d.InstanceInitiatedShutdownBehavior)
	}
	if aws.ToBool(d.DisableApiTermination) {
		t.Error("DisableApiTermination = true, want false")
	}
	if d.IamInstanceProfile != nil {
		t.Errorf("IamInstanceProfile = %+v, want none", d.IamInstanceProfile)
	}
	if len(d.SecurityGroupIds) > 0 || len(d.SecurityGroups) > 0 {
		t.Errorf("instance-level security groups %v %v, want them on the interface", d.SecurityGroupIds, d.SecurityGroups)
	}
	for _, b := range d.BlockDeviceMappings {
		if b.Ebs != nil && !aws.ToBool(b.Ebs.DeleteOnTermination) {
			t.Errorf("block device %s: DeleteOnTermination false", aws.ToString(b.DeviceName))
		}
	}
	var primary *types.LaunchTemplateInstanceNetworkInterfaceSpecification
	for i, n := range d.NetworkInterfaces {
		if !aws.ToBool(n.DeleteOnTermination) {
			t.Errorf("network interface %d: DeleteOnTermination false", aws.ToInt32(n.DeviceIndex))
		}
		if aws.ToInt32(n.DeviceIndex) == 0 {
			primary = &d.NetworkInterfaces[i]
		}
	}
	if primary == nil {
		t.Fatalf("no primary network interface in %+v", d.NetworkInterfaces)
	}
	if !aws.ToBool(primary.AssociatePublicIpAddress) {
		t.Error("primary interface: AssociatePublicIpAddress false")
	}
	if !slices.Equal(primary.Groups, wantGroups) {
		t.Errorf("primary interface groups = %v, want %v", primary.Groups, wantGroups)
	}
	if got := aws.ToString(primary.SubnetId); got != wantSubnet {
		t.Errorf("primary interface subnet = %q, want %q", got, wantSubnet)
	}
}
