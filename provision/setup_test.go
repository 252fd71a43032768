package provision

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/provision/launchapi"
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

	if err := CheckSetup(ctx, e.client, same.ID, "LAUNCH_CLIENT_ID and LAUNCH_CLIENT_SECRET", cloud); err != nil {
		t.Errorf("matching accounts: %v", err)
	}
	var setup *SetupError
	err = CheckSetup(ctx, e.client, other.ID, "LAUNCH_CLIENT_ID and LAUNCH_CLIENT_SECRET", cloud)
	if !errors.As(err, &setup) || !strings.Contains(setup.Problem, "999999999999") || !strings.Contains(setup.Problem, account) {
		t.Errorf("another account: %v", err)
	}
	if err := CheckSetup(ctx, e.client, "424242", "LAUNCH_CLIENT_ID and LAUNCH_CLIENT_SECRET", cloud); !errors.As(err, &setup) || !strings.Contains(setup.Problem, "LAUNCH_SOURCE_ID 424242") {
		t.Errorf("unknown source: %v", err)
	}
	// Credentials the service rejects are named as such, not blamed on the source.
	bad, err := launchapi.New(launchapi.Config{BaseURL: e.api.URL, Identity: base64.StdEncoding.EncodeToString([]byte("not json")), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	err = CheckSetup(ctx, bad, same.ID, "LAUNCH_IDENTITY", cloud)
	if !errors.As(err, &setup) || !strings.Contains(setup.Problem, "refused the bot's credentials (LAUNCH_IDENTITY") || strings.Contains(setup.Problem, "source does not work") {
		t.Errorf("rejected identity: %v", err)
	}
	wrongSecret, err := launchapi.New(launchapi.Config{BaseURL: e.api.URL, TokenURL: e.api.TokenURL, ClientID: "bot", ClientSecret: "wrong", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	err = CheckSetup(ctx, wrongSecret, same.ID, "LAUNCH_CLIENT_ID and LAUNCH_CLIENT_SECRET", cloud)
	if !errors.As(err, &setup) || !strings.Contains(setup.Problem, "LAUNCH_CLIENT_ID and LAUNCH_CLIENT_SECRET") || strings.Contains(setup.Problem, "source does not work") {
		t.Errorf("rejected client secret: %v", err)
	}
	// The service's 500 may be an outage: reported, but not certain.
	if err := CheckSetup(ctx, e.client, broken.ID, "LAUNCH_CLIENT_ID and LAUNCH_CLIENT_SECRET", cloud); err == nil || errors.As(err, &setup) {
		t.Errorf("source status 500: %v", err)
	}
}
