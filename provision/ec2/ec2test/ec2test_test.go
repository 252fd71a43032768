package ec2test_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
)

// authorizedKey returns a fresh ed25519 public key in authorized_keys form.
func authorizedKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var blob []byte
	for _, part := range [][]byte{[]byte("ssh-ed25519"), pub} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(part)))
		blob = append(blob, part...)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob) + " alice@example.com"
}

func TestLauncher(t *testing.T) {
	endpoint := ec2test.StartMoto(t)
	const region = "eu-west-1"
	cloud, err := ec2.New(t.Context(), ec2test.Config(endpoint, region))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	templateID, err := cloud.CreateLaunchTemplate(t.Context(), region, ec2.TemplateInput{
		LaunchID: "l-1", Tags: map[string]string{ec2.TagExpiresAt: "2030-01-01T00:00:00Z"},
	})
	if err != nil {
		t.Fatalf("CreateLaunchTemplate: %v", err)
	}
	var launcher launchapitest.InstanceLauncher = &ec2test.Launcher{Endpoint: endpoint}
	key := authorizedKey(t)
	in := launchapitest.LaunchInput{
		Org: "42", Region: region, ImageID: ec2test.AMI(t, endpoint, region), InstanceType: "t3.micro",
		LaunchTemplateID: templateID, KeyName: "alice-key", PubkeyBody: key, Amount: 1, Name: "packit-vm",
		Tags: map[string]string{"Name": "packit-vm", "rh-rid": "r-7", "rh-org": "42"},
	}
	// Twice: the second launch reuses the imported key.
	for range 2 {
		got, err := launcher.Launch(t.Context(), in)
		if err != nil {
			t.Fatalf("Launch: %v", err)
		}
		if len(got) != 1 || got[0].ID == "" || got[0].PrivateIPv4 == "" || got[0].PublicIPv4 == "" {
			t.Fatalf("Launch = %+v, want one instance with id and addresses", got)
		}
		inst, err := cloud.Describe(t.Context(), region, got[0].ID)
		if err != nil {
			t.Fatalf("Describe: %v", err)
		}
		for k, v := range map[string]string{
			"Name": "packit-vm", "rh-rid": "r-7", "rh-org": "42",
			ec2.TagManaged: "true", ec2.TagExpiresAt: "2030-01-01T00:00:00Z", ec2.TagTemplateOf: templateID,
		} {
			if inst.Tags.Get(k) != v {
				t.Errorf("tag %s = %q, want %q", k, inst.Tags.Get(k), v)
			}
		}
	}
	// As the Launch service documents it: its tags replace the template's.
	got, err := (&ec2test.Launcher{Endpoint: endpoint, OverrideTemplateTags: true}).Launch(t.Context(), in)
	if err != nil || len(got) != 1 {
		t.Fatalf("Launch overriding template tags: %+v %v", got, err)
	}
	inst, err := cloud.Describe(t.Context(), region, got[0].ID)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if inst.Tags.Get(ec2.TagManaged) != "" || inst.Tags.Get(ec2.TagExpiresAt) != "" || inst.Tags.Get("Name") != "packit-vm" || inst.Tags.Get(ec2.TagTemplateOf) != templateID {
		t.Errorf("tags with the template's overridden: %v", inst.Tags)
	}
	keys, err := ec2test.Client(endpoint, region).DescribeKeyPairs(t.Context(), &awsec2.DescribeKeyPairsInput{})
	if err != nil || len(keys.KeyPairs) != 1 || aws.ToString(keys.KeyPairs[0].KeyName) != "alice-key" {
		t.Errorf("key pairs = %+v, %v; want just alice-key", keys, err)
	}

	ec2test.Reset(t, endpoint)
	managed, err := cloud.ListManaged(t.Context(), region)
	if err != nil || len(managed) != 0 {
		t.Errorf("after Reset: ListManaged = %+v, %v; want nothing", managed, err)
	}
}
