package provision

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

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
	st, err := store.Open(ctx, storetest.StartRedis(t), quiet)
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
