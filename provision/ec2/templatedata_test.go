package ec2

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Base templates with their own interfaces: moto tests cover the common
// shapes; this covers interface handling without a server.
func TestTemplateDataInterfaces(t *testing.T) {
	base := &types.ResponseLaunchTemplateData{
		IamInstanceProfile: &types.LaunchTemplateIamInstanceProfileSpecification{Name: aws.String("admin")},
		NetworkInterfaces: []types.LaunchTemplateInstanceNetworkInterfaceSpecification{
			{DeviceIndex: aws.Int32(1), NetworkInterfaceId: aws.String("eni-shared")},
			{DeviceIndex: aws.Int32(0), Groups: []string{"sg-base"}, AssociatePublicIpAddress: aws.Bool(false), DeleteOnTermination: aws.Bool(false)},
			{DeviceIndex: aws.Int32(2), SubnetId: aws.String("subnet-2")},
		},
	}
	tests := []struct {
		name       string
		groups     []string
		subnet     string
		wantGroups []string
		wantSubnet string
	}{
		{name: "base groups kept", wantGroups: []string{"sg-base"}},
		{name: "profile groups win", groups: []string{"sg-ssh"}, subnet: "subnet-1", wantGroups: []string{"sg-ssh"}, wantSubnet: "subnet-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := templateData(base, tc.groups, tc.subnet, map[string]string{TagManaged: "true"})
			if d.IamInstanceProfile != nil {
				t.Error("instance profile copied from base")
			}
			if len(d.NetworkInterfaces) != 2 {
				t.Fatalf("interfaces = %+v, want the base's two without the existing ENI", d.NetworkInterfaces)
			}
			for _, n := range d.NetworkInterfaces {
				if n.NetworkInterfaceId != nil || !aws.ToBool(n.DeleteOnTermination) {
					t.Errorf("interface %d = %+v, want a new one deleted on termination", aws.ToInt32(n.DeviceIndex), n)
				}
			}
			p := d.NetworkInterfaces[0]
			if aws.ToInt32(p.DeviceIndex) != 0 || !slices.Equal(p.Groups, tc.wantGroups) || aws.ToString(p.SubnetId) != tc.wantSubnet {
				t.Errorf("primary = %+v, want groups %v subnet %q", p, tc.wantGroups, tc.wantSubnet)
			}
			// The operator explicitly chose no public IP; that is kept.
			if aws.ToBool(p.AssociatePublicIpAddress) {
				t.Error("primary: AssociatePublicIpAddress overridden to true")
			}
			if got := aws.ToString(d.NetworkInterfaces[1].SubnetId); got != "subnet-2" {
				t.Errorf("secondary subnet = %q, want the base's subnet-2", got)
			}
		})
	}
	if base.NetworkInterfaces[1].DeleteOnTermination == nil || *base.NetworkInterfaces[1].DeleteOnTermination {
		t.Error("templateData modified the base template's data")
	}
}
