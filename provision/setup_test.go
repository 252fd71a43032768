package provision

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
)

func TestCheckSetup(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cloud, err := ec2.New(ctx, ec2test.Config(ec2test.StartMoto(t), "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	account, err := cloud.AccountID(ctx)
	if err != nil || account == "" {
		t.Fatalf("moto's account: %q %v", account, err)
	}
	same := e.api.AddSource("org-1", launchapitest.Source{AccountID: account})
	other := e.api.AddSource("org-1", launchapitest.Source{AccountID: "999999999999"})
	broken := e.api.AddSource("org-1", launchapitest.Source{AccountID: account})
	e.api.SetSourceStatusError("org-1", broken.ID, "role not found")

	if err := CheckSetup(ctx, e.client, same.ID, cloud); err != nil {
		t.Errorf("matching accounts: %v", err)
	}
	var setup *SetupError
	err = CheckSetup(ctx, e.client, other.ID, cloud)
	if !errors.As(err, &setup) || !strings.Contains(setup.Problem, "999999999999") || !strings.Contains(setup.Problem, account) {
		t.Errorf("another account: %v", err)
	}
	if err := CheckSetup(ctx, e.client, "424242", cloud); !errors.As(err, &setup) || !strings.Contains(setup.Problem, "LAUNCH_SOURCE_ID 424242") {
		t.Errorf("unknown source: %v", err)
	}
	// The service's 500 may be an outage: reported, but not certain.
	if err := CheckSetup(ctx, e.client, broken.ID, cloud); err == nil || errors.As(err, &setup) {
		t.Errorf("source status 500: %v", err)
	}
}
