// Package launchapi is a typed client for the console.redhat.com Launch
// (provisioning) API v1: sources, launch templates, public keys, instance
// types and AWS reservations. See docs/launch-api.md in the shared folder for
// how the service really behaves.
//
// # Using the client
//
//	c, err := launchapi.New(launchapi.Config{
//		ClientID: id, ClientSecret: secret, // or OfflineToken, or Identity
//	})
//	key, err := c.EnsurePubkey(ctx, "gh-alice-1a2b3c4d", body)
//	res, err := c.CreateAWSReservation(ctx, launchapi.AWSReservationRequest{
//		SourceID: src, ImageID: ami, InstanceType: "t3.small", PubkeyID: key.ID,
//		Region: "us-east-1", LaunchTemplateID: lt, Name: launchName,
//	})
//	done, err := c.WaitReservation(ctx, res.ReservationID, launchapi.WaitOptions{
//		OnSlow: func() { /* tell the PR it is still launching */ },
//	})
//
// Authentication is a Red Hat SSO service account (client credentials), an
// offline token (refresh grant as client "cloud-services"), or, for talking
// to a backend without the gateway, a fixed X-Rh-Identity value. Tokens,
// secrets and identities never appear in errors or logs.
//
// Errors are typed: *APIError for any non-2xx answer (branch with errors.As
// on its StatusCode, or IsNotFound), *DecodeError
// for a 2xx body that is not what the API promises, *PubkeyConflictError,
// *ReservationFailedError for a reservation the service failed (a failed
// launch is not an HTTP error), and *WaitTimeoutError.
//
// Every request has its own timeout and honours ctx. 429s are retried with
// backoff (any method; Retry-After respected up to MaxBackoff); 5xx answers
// and network errors are retried for GETs only. Creating a reservation is
// never retried: when its outcome is unknown the client looks for a
// reservation with the same name among the org's newest and adopts it.
//
// # Testing with the fake
//
// Package launchapitest is a faithful fake of the service and of the SSO
// token endpoint. Share one launchapitest.ManualClock between the fake and
// the client (Config.Clock): the client's waits then advance the fake's time
// instead of sleeping, so a 35-minute wait runs in milliseconds.
//
//	clock := launchapitest.NewManualClock(time.Time{})
//	srv := launchapitest.NewServer(launchapitest.Options{Clock: clock})
//	defer srv.Close()
//	srv.AddServiceAccount("id", "secret", "org1")
//	c, _ := launchapi.New(launchapi.Config{BaseURL: srv.URL, TokenURL: srv.TokenURL,
//		ClientID: "id", ClientSecret: "secret", Clock: clock})
//	srv.PlanNextReservation(launchapitest.ReservationPlan{FailAtStep: 2})
package launchapi
