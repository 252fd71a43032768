package provision

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/packit/packit-launch/config"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/provision/launchapi"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

// deniedCloud is real EC2 (moto) whose IAM policy denies tagging, and
// terminating too when denyTerminate is set: moto evaluates no IAM.
type deniedCloud struct {
	*ec2.Cloud
	denyTerminate bool
}

var denied = &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."}

func (deniedCloud) TagInstance(context.Context, string, string, map[string]string) error {
	return denied
}

func (c deniedCloud) Terminate(ctx context.Context, region string, ids ...string) error {
	if c.denyTerminate {
		return denied
	}
	return c.Cloud.Terminate(ctx, region, ids...)
}

// A VM AWS will not tag would run with nothing to end it: it is ended at
// once, and the PR is told so only once AWS agreed.
func TestLaunchWhoseTagsAreDeniedIsEnded(t *testing.T) {
	ctx := context.Background()
	moto := ec2test.StartMoto(t)
	cloud, err := ec2.New(ctx, ec2test.Config(moto, "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	api := launchapitest.NewServer(launchapitest.Options{StepDuration: time.Millisecond, Launcher: &ec2test.Launcher{Endpoint: moto, OverrideTemplateTags: true}})
	t.Cleanup(api.Close)
	api.AddServiceAccount("bot", "secret", "org-1")
	src := api.AddSource("org-1", launchapitest.Source{})
	client, err := launchapi.New(launchapi.Config{BaseURL: api.URL, TokenURL: api.TokenURL, ClientID: "bot", ClientSecret: "secret", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenWith(ctx, storetest.StartRedis(t), store.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ami := ec2test.AMI(t, moto, "us-east-1")
	launch := func(c deniedCloud, comment int64) (*store.Launch, error) {
		l, _, err := st.CreateLaunch(ctx, &store.Launch{Owner: "alice", Repo: "packit/ogr", PR: 7, CommandCommentID: comment, Machine: "fedora",
			Image: ami, Region: "us-east-1", InstanceType: "t3.small", KeyBody: key, State: store.StateAccepted, Lifetime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		prov := New(client, st, src.ID, Options{Cloud: c, LookFor: time.Minute, Wait: launchapi.WaitOptions{PollInterval: 5 * time.Millisecond, MaxPollInterval: 20 * time.Millisecond}}, quiet)
		return l, prov.Launch(ctx, l, nil)
	}

	l, err := launch(deniedCloud{Cloud: cloud}, 1)
	var f *Failure
	if !errors.As(err, &f) || !strings.Contains(f.Message, "so it was terminated") || l.State != store.StateFailed || l.InstanceID == "" {
		t.Fatalf("tagging denied: %v, state %s, instance %q", err, l.State, l.InstanceID)
	}
	if in, err := cloud.Describe(ctx, "us-east-1", l.InstanceID); err != nil || (in.State != "shutting-down" && in.State != "terminated") {
		t.Errorf("the VM still runs: %+v %v", in, err)
	}

	// Terminating denied too: never claim it ended; the record keeps the
	// instance and the launch is retried.
	l2, err := launch(deniedCloud{Cloud: cloud, denyTerminate: true}, 2)
	if err == nil || errors.As(err, &f) || l2.State.Ended() {
		t.Fatalf("tagging and terminating denied: %v, state %s", err, l2.State)
	}
	saved, _ := st.GetLaunch(ctx, l2.ID)
	if saved.InstanceID == "" || saved.State.Ended() {
		t.Errorf("record after a failed terminate: %+v", saved)
	}
}

// deniedReporter records the PRs told that AWS refused to end their VM.
type deniedReporter struct {
	nopReporter
	mu     sync.Mutex
	denied []EndedVM
}

func (r *deniedReporter) Denied(_ context.Context, vm EndedVM) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.denied = append(r.denied, vm)
}

// A VM past its time that AWS refuses to terminate (a renamed VM under a
// policy that goes by its name, a policy gone wrong) is not left silently:
// each sweep tries and logs it, and its PR is told once.
func TestSweeperReportsATerminationAWSDenies(t *testing.T) {
	ctx := context.Background()
	moto := ec2test.StartMoto(t)
	real, err := ec2.New(ctx, ec2test.Config(moto, "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tags := []types.Tag{}
	for k, v := range map[string]string{ec2.TagManaged: "true", ec2.TagLaunch: "k3x9p2ab", ec2.TagRepo: "packit/ogr", ec2.TagPR: "7", ec2.TagOwner: "alice",
		ec2.TagExpiresAt: past, ec2.TagHardExpiresAt: past, "Name": "renamed by someone"} {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	run, err := ec2test.Client(moto, "us-east-1").RunInstances(ctx, &awsec2.RunInstancesInput{
		ImageId: aws.String(ec2test.AMI(t, moto, "us-east-1")), InstanceType: types.InstanceTypeT3Small, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	st, err := store.OpenWith(ctx, storetest.StartRedis(t), store.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := &config.Server{Profiles: map[string]config.Profile{"small": {Regions: []string{"us-east-1"}, MaxLifetime: config.Duration(8 * time.Hour)}}}
	rep := &deniedReporter{}
	lc := NewLifecycle(cfg, st, New(nil, st, "", Options{Cloud: deniedCloud{Cloud: real, denyTerminate: true}}, quiet), rep, quiet)
	if _, err := st.TryLock(ctx, "pubkey-cleanup", time.Hour); err != nil { // the daily clean-up needs the Launch service: not this test's
		t.Fatal(err)
	}
	before := testutil.ToFloat64(terminateDeniedTotal)
	lc.Sweep(ctx)
	lc.Sweep(ctx)
	if got := testutil.ToFloat64(terminateDeniedTotal) - before; got != 2 {
		t.Errorf("%v denied terminations counted over two sweeps, want 2", got)
	}
	if len(rep.denied) != 1 || rep.denied[0].LaunchID != "k3x9p2ab" || rep.denied[0].InstanceID != id || rep.denied[0].PR != 7 {
		t.Errorf("PRs told: %+v, want launch k3x9p2ab's once", rep.denied)
	}
	if in, err := real.Describe(ctx, "us-east-1", id); err != nil || in.State != "running" {
		t.Errorf("the VM: %+v %v", in, err)
	}
}
