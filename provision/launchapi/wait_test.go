package launchapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
)

// recordingLauncher remembers what the fake asked EC2 for.
type recordingLauncher struct {
	mu     sync.Mutex
	inputs []launchapitest.LaunchInput
	err    error
	inner  launchapitest.InventedLauncher
}

func (l *recordingLauncher) Launch(ctx context.Context, in launchapitest.LaunchInput) ([]launchapitest.Instance, error) {
	l.mu.Lock()
	l.inputs = append(l.inputs, in)
	l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	return l.inner.Launch(ctx, in)
}

func TestWaitReservationSuccess(t *testing.T) {
	launcher := &recordingLauncher{}
	e := newEnv(t, &launchapitest.Options{Launcher: launcher}, nil)
	ctx := context.Background()
	res, err := e.client.CreateAWSReservation(ctx, e.awsRequest("launch-1"))
	if err != nil {
		t.Fatal(err)
	}
	slow := 0
	done, err := e.client.WaitReservation(ctx, res.ReservationID, WaitOptions{OnSlow: func() { slow++ }})
	if err != nil {
		t.Fatal(err)
	}
	if slow != 0 {
		t.Error("OnSlow fired for a quick reservation")
	}
	if len(done.Instances) != 1 || done.AWSReservationID == "" {
		t.Fatalf("result %+v, want one instance", done)
	}
	in := done.Instances[0]
	if !strings.HasPrefix(in.ID, "i-") || in.PublicIPv4 == "" || in.PublicDNS == "" || in.PrivateIPv4 == "" {
		t.Fatalf("instance %+v, want id and all addresses", in)
	}
	if done.Reservation.Status != "Instance(s) description fetched" || done.Reservation.Step != 3 || done.Reservation.FinishedAt == nil {
		t.Fatalf("reservation %+v", done.Reservation)
	}
	// Polls: 1 s growing by half to 5 s; the fake finishes after 3 steps of 2 s.
	sleeps := e.sleeps.recorded()
	want := []time.Duration{time.Second, 1500 * time.Millisecond, 2250 * time.Millisecond, 3375 * time.Millisecond}
	if fmt.Sprint(sleeps) != fmt.Sprint(want) {
		t.Fatalf("poll intervals %v, want %v", sleeps, want)
	}
	if len(launcher.inputs) != 1 {
		t.Fatalf("launcher called %d times", len(launcher.inputs))
	}
	li := launcher.inputs[0]
	wantTags := map[string]string{"Name": "launch-1", "rh-rid": fmt.Sprintf("r-%d", res.ReservationID), "rh-org": testOrg}
	if fmt.Sprint(li.Tags) != fmt.Sprint(wantTags) || li.KeyName != e.pubkey.Name || li.PubkeyBody != edKey ||
		li.ImageID != "ami-0abcdef1234567890" || li.Region != "us-east-1" || li.LaunchTemplateID != "lt-0123456789abcdef0" {
		t.Fatalf("launch input %+v", li)
	}
}

func TestWaitReservationNoPublicAddress(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.srv.PlanNextReservation(launchapitest.ReservationPlan{NoPublicAddress: true})
	res, err := e.client.CreateAWSReservation(context.Background(), e.awsRequest("private"))
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.client.WaitReservation(context.Background(), res.ReservationID, WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := done.Instances[0]
	if in.ID == "" || in.PrivateIPv4 == "" || in.PublicIPv4 != "" || in.PublicDNS != "" {
		t.Fatalf("instance %+v, want only id and private address", in)
	}
}

func TestWaitReservationFailures(t *testing.T) {
	tests := []struct {
		name      string
		plan      launchapitest.ReservationPlan
		launchErr error
		step      int
		title     string
		status    string
		msg       string
	}{
		{"step 1", launchapitest.ReservationPlan{FailAtStep: 1}, nil, 1, "Ensure public key", "Created", "InvalidKey.Format"},
		{"step 2", launchapitest.ReservationPlan{FailAtStep: 2}, nil, 2, "Launch instance(s)", "Uploaded public key",
			"cannot launch ec2 instance: VPCIdNotSpecified: No default VPC for this user"},
		{"step 3", launchapitest.ReservationPlan{FailAtStep: 3}, nil, 3, "Fetch instance(s) description", "Launched instance(s)", "DescribeInstances"},
		{"own message", launchapitest.ReservationPlan{FailAtStep: 2, Error: "cannot launch ec2 instance: InsufficientInstanceCapacity"}, nil,
			2, "Launch instance(s)", "Uploaded public key", "InsufficientInstanceCapacity"},
		{"launcher error", launchapitest.ReservationPlan{}, errors.New("InvalidAMIID.NotFound: The image id does not exist"),
			2, "Launch instance(s)", "Uploaded public key", "cannot launch ec2 instance: InvalidAMIID.NotFound"},
		{"service timeout", launchapitest.ReservationPlan{StepDuration: 20 * time.Minute}, nil,
			2, "Launch instance(s)", "Timeout", launchapitest.TimeoutError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			launcher := &recordingLauncher{err: tt.launchErr}
			e := newEnv(t, &launchapitest.Options{Launcher: launcher}, nil)
			e.srv.PlanNextReservation(tt.plan)
			res, err := e.client.CreateAWSReservation(context.Background(), e.awsRequest("failing"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.client.WaitReservation(context.Background(), res.ReservationID, WaitOptions{})
			var rf *ReservationFailedError
			if !errors.As(err, &rf) {
				t.Fatalf("err = %v, want *ReservationFailedError", err)
			}
			if rf.ReservationID != res.ReservationID || rf.Step != tt.step || rf.StepTitle != tt.title ||
				rf.Status != tt.status || !strings.Contains(rf.Message, tt.msg) {
				t.Fatalf("failure %+v, want step %d %q status %q message ~%q", rf, tt.step, tt.title, tt.status, tt.msg)
			}
			if strings.Contains(tt.name, "step 3") {
				d, err := e.client.GetAWSReservation(context.Background(), res.ReservationID)
				if err != nil || len(d.Instances) != 1 || d.Instances[0].PublicIPv4 != "" || d.Instances[0].PrivateIPv4 != "" {
					t.Fatalf("after a failed describe: %+v, %v; want an instance without details", d, err)
				}
			}
		})
	}
}

func TestWaitReservationTimeoutAndSlow(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.srv.PlanNextReservation(launchapitest.ReservationPlan{StepDuration: 8 * time.Minute})
	res, err := e.client.CreateAWSReservation(context.Background(), e.awsRequest("slow"))
	if err != nil {
		t.Fatal(err)
	}
	slow := 0
	start := e.clock.Now()
	_, err = e.client.WaitReservation(context.Background(), res.ReservationID, WaitOptions{Timeout: 10 * time.Minute, OnSlow: func() {
		slow++
		if el := e.clock.Now().Sub(start); el < 5*time.Minute || el > 5*time.Minute+5*time.Second {
			t.Errorf("OnSlow fired after %s, want about 5m", el)
		}
	}})
	var te *WaitTimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want *WaitTimeoutError", err)
	}
	if te.ReservationID != res.ReservationID || te.LastStatus != "Uploaded public key" || te.LastStep != 1 || te.Waited != 10*time.Minute {
		t.Fatalf("timeout %+v", te)
	}
	if slow != 1 {
		t.Fatalf("OnSlow fired %d times, want 1", slow)
	}
	for _, d := range e.sleeps.recorded() {
		if d > 5*time.Second {
			t.Fatalf("poll interval %s above 5s", d)
		}
	}
}

func TestWaitReservationKeepsPollingThroughOutages(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.MaxRetries = -1 })
	res, err := e.client.CreateAWSReservation(context.Background(), e.awsRequest("flaky"))
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/reservations/%d", res.ReservationID)
	e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: path, Status: 502, Body: `{"msg":"bad gateway"}`, Times: 2})
	e.srv.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: path, Reset: true})
	if _, err := e.client.WaitReservation(context.Background(), res.ReservationID, WaitOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.WaitReservation(context.Background(), 99999, WaitOptions{})
	if !IsNotFound(err) {
		t.Fatalf("unknown reservation: %v, want 404 at once", err)
	}
}

func TestWaitReservationCancelled(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.srv.PlanNextReservation(launchapitest.ReservationPlan{StepDuration: time.Hour})
	res, err := e.client.CreateAWSReservation(context.Background(), e.awsRequest("c"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	polls := 0
	_, err = e.client.WaitReservation(ctx, res.ReservationID, WaitOptions{SlowAfter: time.Second, OnSlow: func() { polls++; cancel() }})
	if !errors.Is(err, context.Canceled) || polls != 1 {
		t.Fatalf("err = %v after %d OnSlow, want context.Canceled", err, polls)
	}
}

func TestNoopReservation(t *testing.T) {
	e := newEnv(t, nil, nil)
	id, err := e.client.CreateNoopReservation(context.Background())
	if err != nil || id == 0 {
		t.Fatalf("CreateNoopReservation = %d, %v", id, err)
	}
	done, err := e.client.WaitReservation(context.Background(), id, WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if done.Reservation.Provider != ProviderNoop || len(done.Instances) != 0 || len(e.sleeps.recorded()) != 0 {
		t.Fatalf("noop result %+v", done)
	}
	if _, err := e.client.GetAWSReservation(context.Background(), id); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("AWS view of a noop: %v, want 400", err)
	}
}
