package main

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/internal/syncbuf"
)

// flakyCreds fails like an unreachable STS a number of times, then works.
type flakyCreds struct{ fails atomic.Int32 }

func (f *flakyCreds) Retrieve(context.Context) (aws.Credentials, error) {
	if f.fails.Add(-1) >= 0 {
		return aws.Credentials{}, &url.Error{Op: "Post", URL: "https://sts.us-east-1.amazonaws.com/", Err: errors.New("connection refused")}
	}
	return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "example", Source: "test"}, nil
}

// STS unreachable at start is told as such (not as missing credentials),
// and the bot's AWS access switches on once it answers, without a restart.
func TestAWSBlipAtStartNeedsNoRestart(t *testing.T) {
	cfg := &config.Server{Profiles: map[string]config.Profile{"small": {Regions: []string{"us-east-1"}}}}
	creds := &flakyCreds{}
	creds.fails.Store(1)
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cloud, ok, err := awsAccess(t.Context(), bot{cfg: cfg, awsCreds: creds}, log)
	if err != nil || cloud == nil || ok {
		t.Fatalf("awsAccess with STS down: %v %v %v", cloud, ok, err)
	}
	if !strings.Contains(logs.String(), "could not be reached") || strings.Contains(logs.String(), "no AWS credentials found") {
		t.Errorf("the log does not tell an unreachable STS from missing credentials:\n%s", logs.String())
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if !waitForAWS(ctx, cloud, log) {
		t.Fatalf("the AWS access never switched on:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "the bot's AWS access works now") {
		t.Errorf("log:\n%s", logs.String())
	}
}
