package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

// TestOperatorAWSCommands runs `aws bootstrap`, `vms list` and `vms
// terminate` against moto_server, configured the way an operator would:
// through the AWS SDK's own environment. Its PR (on a fake GitHub) is told
// from its tags, and its record in the bot's Redis ends with it.
func TestOperatorAWSCommands(t *testing.T) {
	moto := ec2test.StartMoto(t)
	dir := inDir(t)
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": moto, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "AWS_ROLE_ARN": "", "REDIS_URL": "",
		"GITHUB_APP_ID": fmt.Sprint(gh.AppID), "GITHUB_PRIVATE_KEY": string(gh.PrivateKeyPEM), "GITHUB_API_URL": gh.URL + "/"} {
		t.Setenv(k, v)
	}
	// The PR as the bot left it: a check run with buttons and the sticky comment.
	gh.SetPull("packit/ogr", githubtest.PullRequest{Number: 7, State: "open", HeadSHA: strings.Repeat("a", 40), HeadRef: "feature", BaseRef: "main"})
	bot, err := gh.Client(githubtest.DefaultInstallationID)
	if err != nil {
		t.Fatal(err)
	}
	cr, _, err := bot.Checks.CreateCheckRun(context.Background(), "packit", "ogr", github.CreateCheckRunOptions{Name: "packit-launch (fedora)", HeadSHA: strings.Repeat("a", 40),
		ExternalID: github.String("k3x9p2ab"), Status: github.String("completed"), Conclusion: github.String("success"),
		Actions: []*github.CheckRunAction{{Label: "Terminate", Description: "Terminate the VM now", Identifier: "terminate"}},
		Output:  &github.CheckRunOutput{Title: github.String("fedora is running"), Summary: github.String("ssh fedora@192.0.2.1")}})
	if err != nil {
		t.Fatal(err)
	}
	sticky, _, err := bot.Issues.CreateComment(context.Background(), "packit", "ogr", 7, &github.IssueComment{Body: github.String("@alice your VM is ready\n\n[packit-launch]: #launch-k3x9p2ab")})
	if err != nil {
		t.Fatal(err)
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
			{Key: aws.String(ec2.TagOwner), Value: aws.String("alice")}, {Key: aws.String(ec2.TagCheckRun), Value: aws.String(fmt.Sprint(cr.GetID()))},
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
	// The bot's Redis still has the launch's record, running.
	redisURL := storetest.StartRedis(t)
	t.Setenv("REDIS_URL", redisURL)
	st, err := store.OpenWith(context.Background(), redisURL, store.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.RestoreLaunch(context.Background(), &store.Launch{ID: "k3x9p2ab", Repo: "packit/ogr", PR: 7, Owner: "alice", Region: "us-east-1",
		InstanceID: id, State: store.StateRunning}); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd("vms", "terminate", "k3x9p2ab")
	if code != 0 || !strings.Contains(out, "terminated "+id) || !strings.Contains(out, "told packit/ogr#7") || !strings.Contains(out, "ended launch k3x9p2ab's record") {
		t.Fatalf("vms terminate: %d\n%s\n%s", code, out, errs)
	}
	if rec, err := st.GetLaunch(context.Background(), "k3x9p2ab"); err != nil || rec.State != store.StateEnded || rec.EndReason != "an operator terminated it" {
		t.Errorf("the record after vms terminate: %+v %v", rec, err)
	}
	if c, _ := gh.Comment("packit/ogr", sticky.GetID()); !strings.Contains(c.Body, "was terminated") || !strings.Contains(c.Body, "an operator terminated it") {
		t.Errorf("sticky comment after vms terminate:\n%s", c.Body)
	}
	for _, run := range gh.CheckRuns("packit/ogr") {
		if run.ID == cr.GetID() && (run.Conclusion != "neutral" || len(run.Actions) != 0 || run.Name != "packit-launch (fedora)") {
			t.Errorf("check run after vms terminate: %+v", run)
		}
	}
	desc, err := cl.DescribeInstances(context.Background(), &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.Reservations[0].Instances[0].State.Name; st != types.InstanceStateNameShuttingDown && st != types.InstanceStateNameTerminated {
		t.Errorf("state %s after vms terminate", st)
	}
}

// aws bootstrap on a two-region profile prints one block with each
// region's own ids, which config validate --online finds in their regions;
// one region's ids under the other are refused.
func TestBootstrapTwoRegionsPrintsABlockValidateAccepts(t *testing.T) {
	moto := ec2test.StartMoto(t)
	dir := inDir(t)
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": moto, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "AWS_ROLE_ARN": "", "REDIS_URL": "",
		"GITHUB_APP_ID": "", "GITHUB_PRIVATE_KEY": "", "LAUNCH_CLIENT_ID": "", "LAUNCH_IDENTITY": "", "LAUNCH_OFFLINE_TOKEN": ""} {
		t.Setenv(k, v)
	}
	const rest = "    instance_types: [t3.large]\n    max_lifetime: 8h\nprojects:\n  - repos: [\"o/*\"]\n    profiles: [large]\n"
	cfgFile := filepath.Join(dir, "packit-launch.yaml")
	os.WriteFile(cfgFile, []byte("profiles:\n  large:\n    regions: [us-east-1, eu-west-1]\n"+rest), 0o600)
	code, out, errs := runCmd("aws", "bootstrap", "--profile", "large")
	if code != 0 {
		t.Fatalf("bootstrap: %d\n%s\n%s", code, out, errs)
	}
	_, block, ok := strings.Cut(out, "its other settings stay):\n\n")
	if !ok || strings.Count(block, "launch_template_id: lt-") != 2 || !strings.HasPrefix(block, "profiles:\n  large:\n    regions:\n      us-east-1: {") {
		t.Fatalf("bootstrap printed no block of both regions:\n%s", out)
	}
	os.WriteFile(cfgFile, []byte(block+rest), 0o600)
	code, out, errs = runCmd("config", "validate", "--online")
	if code != 0 || strings.Count(out, "profile large's ids exist") != 2 || strings.Contains(out, "✗") {
		t.Fatalf("validate --online of the printed block: %d\n%s\n%s", code, out, errs)
	}
	// us-east-1's ids written under eu-west-1 too, as a copy-paste would.
	east := strings.Split(block, "\n")[3]
	swapped := strings.Replace(block, strings.Split(block, "\n")[4], strings.Replace(east, "us-east-1", "eu-west-1", 1), 1)
	os.WriteFile(cfgFile, []byte(swapped+rest), 0o600)
	code, out, _ = runCmd("config", "validate", "--online")
	if code == 0 || !strings.Contains(out, "✗ AWS eu-west-1: profile large's ids exist: not in eu-west-1: lt-") {
		t.Errorf("ids of another region: code %d\n%s", code, out)
	}
}
