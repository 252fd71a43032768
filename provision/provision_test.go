package provision

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/packit/packit-launch/provision/launchapi"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEhnn80ZywmjeBFFOGm+cm+5HUwm62qTVnjKlOdYFLHN"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	api    *launchapitest.Server
	client *launchapi.Client
	st     *store.Store
	clock  *launchapitest.ManualClock
	prov   *Provisioner
	source string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := launchapitest.NewManualClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	api := launchapitest.NewServer(launchapitest.Options{Clock: clock})
	t.Cleanup(api.Close)
	api.AddServiceAccount("bot", "secret", "org-1")
	src := api.AddSource("org-1", launchapitest.Source{})
	client, err := launchapi.New(launchapi.Config{BaseURL: api.URL, TokenURL: api.TokenURL, ClientID: "bot", ClientSecret: "secret", Clock: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenWith(context.Background(), storetest.StartRedis(t), store.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{clock: clock, api: api, client: client, st: st, source: src.ID, prov: New(client, st, src.ID, Options{Now: clock.Now, LookFor: time.Hour}, quiet)}
}

func (e *env) record(t *testing.T) *store.Launch { return e.recordFor(t, "Alice", 1) }

// record2 is a second launch, by someone else, on the same PR.
func (e *env) record2(t *testing.T) *store.Launch { return e.recordFor(t, "bob", 2) }

func (e *env) recordFor(t *testing.T, owner string, comment int64) *store.Launch {
	t.Helper()
	l, _, err := e.st.CreateLaunch(context.Background(), &store.Launch{
		Owner: owner, Repo: "packit/ogr", PR: 7, CommandCommentID: comment, Machine: "fedora",
		Image: "ami-0123456789abcdef0", Region: "us-east-1", InstanceType: "t3.small", KeyBody: key, State: store.StateAccepted,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLaunchRunsAndSavesEachStep(t *testing.T) {
	e := newEnv(t)
	l := e.record(t)
	if err := e.prov.Launch(context.Background(), l, nil); err != nil {
		t.Fatal(err)
	}
	saved, _ := e.st.GetLaunch(context.Background(), l.ID)
	if saved.State != store.StateRunning || saved.ReservationID == 0 || saved.PubkeyID == 0 || saved.InstanceID == "" || saved.LaunchedAt.IsZero() {
		t.Errorf("saved record: %+v", saved)
	}
	if got := e.api.Pubkeys("org-1"); len(got) != 1 || !strings.HasPrefix(got[0].Name, "gh-alice-") || got[0].Name != PubkeyName("Alice", key) {
		t.Errorf("pubkey names must be per login and key: %+v", got)
	}
	// Running again does nothing.
	if err := e.prov.Launch(context.Background(), saved, nil); err != nil || len(e.api.RequestsTo(http.MethodPost, "/reservations/aws")) != 1 {
		t.Errorf("a second run created more: %v", err)
	}
}

// A launch interrupted after its create was sent but before the reservation
// id was saved adopts that reservation instead of creating another.
func TestLaunchResumeAdoptsTheReservationItMayHaveCreated(t *testing.T) {
	e := newEnv(t)
	l := e.record(t)
	pk, err := e.client.EnsurePubkey(context.Background(), PubkeyName(l.Owner, key), key)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.client.CreateAWSReservation(context.Background(), launchapi.AWSReservationRequest{
		SourceID: e.source, ImageID: l.Image, InstanceType: l.InstanceType, PubkeyID: pk.ID, Region: l.Region, Name: l.ReservationName(),
	})
	if err != nil {
		t.Fatal(err)
	}
	l.State, l.PubkeyID, l.ReservedAt = store.StateLaunching, pk.ID, e.clock.Now() // as saved just before the crash
	if err := e.prov.Launch(context.Background(), l, nil); err != nil {
		t.Fatal(err)
	}
	if l.ReservationID != res.ReservationID || l.State != store.StateRunning {
		t.Errorf("adopted %d, want %d; state %s", l.ReservationID, res.ReservationID, l.State)
	}
	if n := len(e.api.RequestsTo(http.MethodPost, "/reservations/aws")); n != 1 {
		t.Errorf("%d creates, want the one before the crash", n)
	}
	// Launching but with nothing created: it creates one.
	l2 := e.record2(t)
	l2.State = store.StateLaunching
	if err := e.prov.Launch(context.Background(), l2, nil); err != nil || l2.ReservationID == 0 || l2.ReservationID == res.ReservationID {
		t.Errorf("resume without a reservation: %v, %d", err, l2.ReservationID)
	}
}

func TestLaunchFailures(t *testing.T) {
	e := newEnv(t)
	// A 4xx from the service is final, with its own words.
	l := e.record(t)
	l.InstanceType = "x9.huge"
	err := e.prov.Launch(context.Background(), l, nil)
	var f *Failure
	if !errors.As(err, &f) || l.State != store.StateFailed || f.Message == "" {
		t.Fatalf("unknown type: %v, state %s", err, l.State)
	}
	// A 5xx may pass: not final, the record stays resumable.
	e.api.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/reservations/aws", Status: http.StatusBadGateway})
	l2 := e.record2(t)
	err = e.prov.Launch(context.Background(), l2, nil)
	if err == nil || errors.As(err, &f) || l2.State.Ended() || l2.ReservationID != 0 {
		t.Fatalf("a 502 on create (and no reservation found) should be retryable: %v, state %s", err, l2.State)
	}
	gf := e.prov.GiveUp(context.Background(), l2, err)
	saved, _ := e.st.GetLaunch(context.Background(), l2.ID)
	if saved.State != store.StateFailed || saved.Failure != gf.Message || saved.EndedAt.IsZero() {
		t.Errorf("given up: %+v", saved)
	}
}

func TestAdvice(t *testing.T) {
	for msg, want := range map[string]string{
		"cannot launch ec2 instance: VPCIdNotSpecified: No default VPC": "operator's AWS setup",
		"InvalidAMIID.NotFound: The image id '[ami-1]' does not exist":  "image",
		"InsufficientInstanceCapacity":                                  "capacity",
		"something else":                                                "Try again",
	} {
		if got := adviceFor(msg); !strings.Contains(got, want) {
			t.Errorf("adviceFor(%q) = %q", msg, got)
		}
	}
}

func TestCleanPubkeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now()
	other := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	old, _ := e.client.EnsurePubkey(ctx, PubkeyName("bob", other), other)
	if err := e.st.TouchPubkey(ctx, old.ID, now); err != nil { // bob launched once, today
		t.Fatal(err)
	}
	// Keys people made themselves: never the bot's to delete, even when a
	// launch reused one (same body) or its name looks like the bot's.
	operators := e.api.AddPubkey("org-1", "operator-key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHs5ZdJzE8E8pRJ1m7V6ZQ3y0pBZ7Xl8aQ3zJ1v2pQ9k")
	lookalike := e.api.AddPubkey("org-1", "gh-carol-laptop", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEhnn80ZywmjeBFFOGm+cm+5HUwm62qTVnjKlOdYFLHX")
	for _, id := range []int64{operators.ID, lookalike.ID} {
		if err := e.st.TouchPubkey(ctx, id, now); err != nil {
			t.Fatal(err)
		}
	}
	daves := freshKey(t)
	unrecorded, err := e.client.EnsurePubkey(ctx, PubkeyName("dave", daves), daves) // no record of use
	if err != nil {
		t.Fatal(err)
	}
	l := e.record(t)
	if err := e.prov.Launch(ctx, l, nil); err != nil { // alice's key, in use by a running launch
		t.Fatal(err)
	}
	if n, err := CleanPubkeys(ctx, e.client, e.st, now); err != nil || n != 0 {
		t.Fatalf("first run: %d %v", n, err)
	}
	// Thirty-one days on, with alice's launch still running.
	later := now.Add(31 * 24 * time.Hour)
	n, err := CleanPubkeys(ctx, e.client, e.st, later)
	if err != nil || n != 1 {
		t.Fatalf("cleanup: %d %v", n, err)
	}
	left := map[int64]bool{}
	for _, k := range e.api.Pubkeys("org-1") {
		left[k.ID] = true
	}
	if left[old.ID] || !left[operators.ID] || !left[lookalike.ID] || !left[unrecorded.ID] || !left[l.PubkeyID] {
		t.Errorf("left %v: want only bob's unused key %d gone", left, old.ID)
	}
	// A key someone deleted in the Launch service leaves no record of use behind.
	if err := e.client.DeletePubkey(ctx, operators.ID); err != nil { // as someone in the console would
		t.Fatal(err)
	}
	if _, err := CleanPubkeys(ctx, e.client, e.st, later); err != nil {
		t.Fatal(err)
	}
	used, err := e.st.PubkeysLastUsed(ctx)
	if _, kept := used[operators.ID]; err != nil || kept || len(used) == 0 {
		t.Errorf("records of use %v (%v): want the deleted key's gone, the others kept", used, err)
	}
}

func freshKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk)))
}

// Answers no retry will change end the launch at once, saying who can act.
func TestLaunchFinalAnswersAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  launchapitest.Fault
		msg    string
		advice string
	}{
		{"credentials refused", launchapitest.Fault{Method: http.MethodPost, Path: "/reservations/aws", Status: http.StatusForbidden, Body: `{"msg":"forbidden"}`},
			"refused the bot's credentials (HTTP 403)", "tell the operators"},
		{"image still building", launchapitest.Fault{Method: http.MethodPost, Path: "/reservations/aws", Status: http.StatusInternalServerError, Body: `{"msg":"image still building","error":"compose 1 is building"}`},
			"image still building", "once its build has finished"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.api.InjectFault(tc.fault)
			l := e.record(t)
			err := e.prov.Launch(context.Background(), l, nil)
			var f *Failure
			if !errors.As(err, &f) || l.State != store.StateFailed {
				t.Fatalf("want a final failure, got %v (state %s)", err, l.State)
			}
			if !strings.Contains(f.Message, tc.msg) || !strings.Contains(f.Advice, tc.advice) {
				t.Errorf("failure %q / %q, want %q / %q", f.Message, f.Advice, tc.msg, tc.advice)
			}
		})
	}
	// Other server errors may pass (an outage of the sources service reads
	// much like an unknown source): retried.
	for _, msg := range []string{"internal error", "source not found"} {
		e := newEnv(t)
		e.api.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/reservations/aws", Status: http.StatusInternalServerError, Body: `{"msg":"` + msg + `"}`})
		l := e.record(t)
		var f *Failure
		if err := e.prov.Launch(context.Background(), l, nil); err == nil || errors.As(err, &f) || l.State.Ended() {
			t.Errorf("a 500 %q should be retryable: %v, state %s", msg, err, l.State)
		}
	}
	// A 500 whose outcome could not be resolved is never final, whatever it says.
	e := newEnv(t)
	e.api.InjectFault(launchapitest.Fault{Method: http.MethodPost, Path: "/reservations/aws", Status: http.StatusInternalServerError, Body: `{"msg":"image still building"}`})
	e.api.InjectFault(launchapitest.Fault{Method: http.MethodGet, Path: "/reservations", Status: http.StatusBadGateway, Times: -1})
	l := e.record(t)
	var f *Failure
	if err := e.prov.Launch(context.Background(), l, nil); err == nil || errors.As(err, &f) || l.State.Ended() || !errors.Is(err, launchapi.ErrOutcomeUnknown) {
		t.Errorf("unresolved create: %v, state %s", err, l.State)
	}
}

// Every state change goes through the one table: listed ones are written
// with an event, any other is refused and leaves the record as it was.
func TestTransitionsAreGuarded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	states := []store.State{store.StateWaiting, store.StateAccepted, store.StateLaunching, store.StateRunning, store.StateFailed, store.StateEnded}
	legal, comment := 0, int64(100)
	for _, from := range states {
		for _, to := range states {
			if from == to {
				continue
			}
			comment++
			l := e.recordFor(t, "alice", comment)
			if _, err := e.st.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error { x.State = from; return nil }); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
			saved, err := update(ctx, e.st, l.ID, now, func(x *store.Launch) error { x.State = to; return nil })
			name, ok := transitions[[2]store.State{from, to}]
			switch {
			case ok:
				legal++
				if err != nil || saved.State != to || len(saved.Events) == 0 || saved.Events[len(saved.Events)-1] != (store.Event{At: now, Name: name, State: to}) {
					t.Errorf("%s → %s (%s): %v, %+v", from, to, name, err, saved)
				}
			default:
				if !errors.Is(err, ErrIllegalTransition) {
					t.Errorf("%s → %s: %v, want ErrIllegalTransition", from, to, err)
				}
			}
			if !ok {
				if got, _ := e.st.GetLaunch(ctx, l.ID); got.State != from {
					t.Errorf("%s → %s refused, but the record is %s", from, to, got.State)
				}
			}
		}
	}
	if legal != len(transitions) {
		t.Errorf("%d legal changes tried, %d listed", legal, len(transitions))
	}
}

// The event log keeps the latest changes only.
func TestEventLogIsBounded(t *testing.T) {
	var events []store.Event
	for i := range 3 * maxEvents {
		events = appendEvent(events, store.Event{Name: fmt.Sprint(i)})
	}
	if len(events) != maxEvents || events[0].Name != fmt.Sprint(2*maxEvents) || events[maxEvents-1].Name != fmt.Sprint(3*maxEvents-1) {
		t.Errorf("events %+v", events)
	}
}
