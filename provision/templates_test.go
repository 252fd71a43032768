package provision

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

// Two VMs from one per-launch template, one with the bot's tags, one whose
// tags were lost: the listing sees only the first. When the sweeper ends it,
// the template must stay, so that the next sweep lists (and ends) the other
// instead of it running unseen for good.
func TestTemplateOfAnUnlistedVMIsKept(t *testing.T) {
	ctx := context.Background()
	const region = "us-east-1"
	moto := ec2test.StartMoto(t)
	cloud, err := ec2.New(ctx, ec2test.Config(moto, region))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenWith(ctx, storetest.StartRedis(t), store.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	base, err := cloud.Bootstrap(ctx, region, ec2.BootstrapInput{Profile: "default"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	l, _, err := st.CreateLaunch(ctx, &store.Launch{Owner: "alice", Repo: "packit/ogr", PR: 7, CommandCommentID: 1, Region: region,
		State: store.StateAccepted, CreatedAt: now, ExpiresAt: now.Add(-time.Minute), HardExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	template, err := cloud.CreateLaunchTemplate(ctx, region, ec2.TemplateInput{LaunchID: l.ID, BaseTemplateID: base.LaunchTemplateID, Tags: BirthTags(l)})
	if err != nil {
		t.Fatal(err)
	}
	raw, ami := ec2test.Client(moto, region), ec2test.AMI(t, moto, region)
	run := func(tags map[string]string) string {
		spec := types.TagSpecification{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("vm")}}}
		for k, v := range tags {
			spec.Tags = append(spec.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		out, err := raw.RunInstances(ctx, &awsec2.RunInstancesInput{ImageId: aws.String(ami), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			LaunchTemplate:    &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(template), Version: aws.String("$Default")},
			TagSpecifications: []types.TagSpecification{spec}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Instances[0].InstanceId)
	}
	tagged := run(BirthTags(l))
	hidden := run(nil)
	// Its birth tags overridden (as the Launch service may): none of the bot's are left.
	var drop []types.Tag
	for k := range BirthTags(l) {
		drop = append(drop, types.Tag{Key: aws.String(k)})
	}
	if _, err := raw.DeleteTags(ctx, &awsec2.DeleteTagsInput{Resources: []string{hidden}, Tags: drop}); err != nil {
		t.Fatal(err)
	}

	prov := New(nil, st, "", Options{Cloud: cloud}, quiet)
	pol := Policy{MaxLifetime: func(string) time.Duration { return 8 * time.Hour }, Grace: time.Hour}
	res, err := prov.Sweep(ctx, []string{region}, pol, now)
	if err != nil || len(res.Swept) != 1 || res.Swept[0].InstanceID != tagged {
		t.Fatalf("sweep: %+v %v, want only the tagged, expired VM ended", res.Swept, err)
	}
	if err := prov.MarkEnded(ctx, l, "expired"); err != nil {
		t.Fatal(err)
	}
	if _, err := prov.CleanTemplates(ctx, st, nil, res, now); err != nil {
		t.Fatal(err)
	}
	if templates, err := cloud.ListManagedTemplates(ctx, region); err != nil || !hasTemplate(templates, template) {
		t.Fatalf("the template of a live VM was deleted (%v)", err)
	}
	// Its sibling gone, the next listing finds it by its template.
	listed, err := cloud.ListManaged(ctx, region)
	if err != nil || len(listed) != 1 || listed[0].ID != hidden {
		t.Fatalf("listed %+v %v, want the VM without tags", listed, err)
	}
}

func hasTemplate(ts []ec2.Template, id string) bool {
	for _, t := range ts {
		if t.ID == id {
			return true
		}
	}
	return false
}
