package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
)

// TestOperatorAWSCommands runs `aws bootstrap`, `vms list` and `vms
// terminate` against moto_server, configured the way an operator would:
// through the AWS SDK's own environment.
func TestOperatorAWSCommands(t *testing.T) {
	moto := ec2test.StartMoto(t)
	dir := inDir(t)
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": moto, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "AWS_ROLE_ARN": "", "REDIS_URL": ""} {
		t.Setenv(k, v)
	}
	cfgFile := filepath.Join(dir, "packit-launch.yaml")
	os.WriteFile(cfgFile, []byte("profiles:\n  small:\n    instance_types: [t3.small]\n    regions: [us-east-1]\n    max_lifetime: 8h\n"), 0o600)

	code, out, errs := runCmd("aws", "bootstrap", "--profile", "small", "--ssh-cidr", "192.0.2.0/24")
	if code != 0 || !strings.Contains(out, "security group sg-") || !strings.Contains(out, "launch_template_id: lt-") {
		t.Fatalf("bootstrap: %d\n%s\n%s", code, out, errs)
	}

	cl := ec2test.Client(moto, "us-east-1")
	run, err := cl.RunInstances(context.Background(), &awsec2.RunInstancesInput{
		ImageId: aws.String(ec2test.AMI(t, moto, "us-east-1")), InstanceType: types.InstanceTypeT3Small, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
			{Key: aws.String(ec2.TagManaged), Value: aws.String("true")}, {Key: aws.String(ec2.TagLaunch), Value: aws.String("k3x9p2ab")},
			{Key: aws.String(ec2.TagRepo), Value: aws.String("packit/ogr")}, {Key: aws.String(ec2.TagPR), Value: aws.String("7")},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)

	code, out, errs = runCmd("vms", "list")
	if code != 0 || !strings.Contains(out, "k3x9p2ab") || !strings.Contains(out, id) || !strings.Contains(out, "packit/ogr") {
		t.Fatalf("vms list: %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs = runCmd("vms", "terminate", "nope"); code == 0 || !strings.Contains(errs, "no live VM") {
		t.Errorf("terminating an unknown id: %d %s", code, errs)
	}
	code, out, errs = runCmd("vms", "terminate", "k3x9p2ab")
	if code != 0 || !strings.Contains(out, "terminated "+id) {
		t.Fatalf("vms terminate: %d\n%s\n%s", code, out, errs)
	}
	desc, err := cl.DescribeInstances(context.Background(), &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.Reservations[0].Instances[0].State.Name; st != types.InstanceStateNameShuttingDown && st != types.InstanceStateNameTerminated {
		t.Errorf("state %s after vms terminate", st)
	}
}
