// Package provision is the launch lifecycle: it turns an accepted launch
// record into a running VM through the Launch service, step by step, so
// that a launch interrupted at any point resumes from its record without
// ever creating a second reservation.
package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/launchapi"
	"github.com/packit/packit-launch/store"
)

// launchAPI is what provisioning needs of the Launch service.
type launchAPI interface {
	EnsurePubkey(ctx context.Context, name, body string) (*launchapi.Pubkey, error)
	CreateAWSReservation(ctx context.Context, req launchapi.AWSReservationRequest) (*launchapi.AWSReservation, error)
	FindAWSReservation(ctx context.Context, name string) (*launchapi.AWSReservation, error)
	WaitReservation(ctx context.Context, id int64, opts launchapi.WaitOptions) (*launchapi.WaitResult, error)
	CheckReservation(ctx context.Context, id int64) (*launchapi.WaitResult, *launchapi.Reservation, error)
	GetAWSReservation(ctx context.Context, id int64) (*launchapi.AWSReservation, error)
	pubkeyAPI
}

// records persists launch records and when pubkeys were used (*store.Store).
type records interface {
	UpdateLaunch(ctx context.Context, id string, fn func(*store.Launch) error) (*store.Launch, error)
	TouchPubkey(ctx context.Context, id int64, now time.Time) error
}

// confirmer is a store whose replicas can confirm its writes
// (store.Store.Confirm, a no-op unless replicas are asked for).
type confirmer interface {
	Confirm(ctx context.Context) error
}

// confirmWrites asks rec's replicas to confirm the writes so far before
// the caller acts on them outside Redis, when rec can.
func confirmWrites(ctx context.Context, rec any) error {
	if c, ok := rec.(confirmer); ok {
		return c.Confirm(ctx)
	}
	return nil
}

// Failure is a launch that cannot succeed, in words for the PR. Step is the
// Launch service's step title, Message its own error text.
type Failure struct {
	Step    string
	Message string
	Advice  string
}

func (f *Failure) Error() string {
	if f.Step != "" {
		return fmt.Sprintf("launch failed at %q: %s", f.Step, f.Message)
	}
	return "launch failed: " + f.Message
}

// Provisioner launches VMs through the Launch service.
type Provisioner struct {
	api      launchAPI
	records  records
	sourceID string
	cloud    cloud
	wait     launchapi.WaitOptions
	lookFor  time.Duration
	fleet    fleetCache
	ssh      SSHProber
	now      func() time.Time
	log      *slog.Logger
}

// Options tune a Provisioner; zero values take defaults.
type Options struct {
	// Wait bounds and paces waiting for a reservation (OnSlow is set per launch).
	Wait launchapi.WaitOptions
	// LookFor is how long one look at a pending reservation may keep
	// polling before handing the wait back to the queue. Zero (production;
	// serve never sets it): one request a look, so no job waits on the
	// Launch service. Only tests whose fake Launch service runs on a manual
	// clock set it, because only a polling client moves that clock.
	LookFor time.Duration
	// Cloud is the bot's own AWS access (*ec2.Cloud): per-launch templates,
	// tags, addresses the service lacks, termination. Nil only in tests of
	// the Launch service part: every call that acts on a VM then fails
	// (errNoAWS); serve refuses to launch without it.
	Cloud cloud
	// SSH probes a running VM's sshd (*sshd.Prober): the ready comment
	// waits for it and pins the host keys from the VM's console. Nil only
	// in tests of other parts: the ready comment then comes at once,
	// without host keys.
	SSH SSHProber
	Now func() time.Time
}

// New returns a provisioner launching from the Launch source sourceID.
func New(api launchAPI, recs records, sourceID string, opts Options, log *slog.Logger) *Provisioner {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Provisioner{api: api, records: recs, sourceID: sourceID, cloud: opts.Cloud, ssh: opts.SSH, wait: opts.Wait, lookFor: opts.LookFor, now: now, log: log}
}

// PubkeyName names a person's key in the Launch service; names are unique
// per org, so the login and the key's hash keep them from colliding.
func PubkeyName(login, body string) string {
	sum := sha256.Sum256([]byte(body))
	return fmt.Sprintf("gh-%s-%s", strings.ToLower(login), hex.EncodeToString(sum[:])[:12])
}

// ErrPending means the launch's reservation is still being worked on: look
// again later (NextLook says when). Nothing waits for it meanwhile.
var ErrPending = errors.New("reservation still pending")

// Launch drives l towards running, saving every step: it makes the
// reservation once, then looks at it. It returns ErrPending while the
// Launch service works, a *Failure when the launch cannot succeed (l is
// then saved as failed), or another error when trying again may help.
// onSlow is called when the service is slower than usual.
func (p *Provisioner) Launch(ctx context.Context, l *store.Launch, onSlow func()) error {
	if l.State != store.StateAccepted && l.State != store.StateLaunching {
		return nil
	}
	log := p.log.With("launch", l.ID, "repo", l.Repo, "pr", l.PR)
	if l.ReservationID == 0 {
		for _, step := range []func(context.Context, *store.Launch, *slog.Logger) error{p.ensurePubkey, p.ensureTemplate, p.reserve} {
			if err := step(ctx, l, log); err != nil {
				return err
			}
		}
	}
	if err := p.look(ctx, l, onSlow, log); err != nil {
		return err
	}
	// The lifetime counts from when the VM runs, not from when it was asked for.
	if running := p.now().UTC().Add(l.Lifetime); running.After(l.ExpiresAt) {
		l.ExpiresAt = earliest(running, l.HardExpiresAt)
	}
	if err := p.tagAndAddress(ctx, l, log); err != nil {
		return err
	}
	l.State = store.StateRunning
	l.LaunchedAt = p.now().UTC()
	log.Info("launch running", "instance", l.InstanceID, "reservation", l.ReservationID, "address", l.PublicIPv4)
	if err := p.save(ctx, l); err != nil {
		return err
	}
	countOutcome(ctx, p.records, l.LaunchedAt, "running", log)
	launchSeconds.Observe(l.LaunchedAt.Sub(l.CreatedAt).Seconds())
	return nil
}

// waitBounds are the reservation wait's limit and when it counts as slow.
func (p *Provisioner) waitBounds() (timeout, slowAfter time.Duration) {
	return cmpOr(p.wait.Timeout, 35*time.Minute), cmpOr(p.wait.SlowAfter, 5*time.Minute)
}

// reservedAt is when l's reservation wait started.
func reservedAt(l *store.Launch) time.Time {
	if l.ReservedAt.IsZero() {
		return l.CreatedAt // a record from before ReservedAt
	}
	return l.ReservedAt
}

// NextLook is when a pending reservation is looked at again: often at
// first, when most finish, then every MaxPollInterval (default 5 s).
func (p *Provisioner) NextLook(l *store.Launch) time.Time {
	now := p.now()
	every := cmpOr(p.wait.PollInterval, time.Second)
	return now.Add(min(max(now.Sub(reservedAt(l))/4, every), max(cmpOr(p.wait.MaxPollInterval, 5*time.Second), every)))
}

// look looks at the reservation and takes its instance; ErrPending while
// it is still being worked on or the service cannot be reached, until the
// wait's limit (35 min), when the launch fails.
func (p *Provisioner) look(ctx context.Context, l *store.Launch, onSlow func(), log *slog.Logger) error {
	timeout, slowAfter := p.waitBounds()
	elapsed := p.now().Sub(reservedAt(l))
	var res *launchapi.WaitResult
	var err error
	pending := false
	if p.lookFor > 0 {
		opts := p.wait
		opts.OnSlow, opts.Timeout = onSlow, max(min(p.lookFor, timeout-elapsed), time.Millisecond)
		res, err = p.api.WaitReservation(ctx, l.ReservationID, opts)
		pending = errors.As(err, new(*launchapi.WaitTimeoutError))
	} else {
		var r *launchapi.Reservation
		res, r, err = p.api.CheckReservation(ctx, l.ReservationID)
		switch {
		case err == nil:
			pending = r != nil
		case ctx.Err() == nil && launchapi.Transient(err):
			log.Warn("looking at the reservation failed; will look again", "reservation", l.ReservationID, "err", err)
			pending = true
		}
	}
	var failed *launchapi.ReservationFailedError
	switch {
	case pending && p.now().Sub(reservedAt(l)) >= timeout:
		p.CleanUpFailed(ctx, l)
		return p.failed(ctx, l, &Failure{Message: fmt.Sprintf("the reservation did not finish within %s", timeout.Round(time.Minute)),
			Advice: "The Launch service may be overloaded; try again later."})
	case pending:
		if onSlow != nil && p.now().Sub(reservedAt(l)) >= slowAfter {
			onSlow()
		}
		return ErrPending
	case errors.As(err, &failed):
		p.CleanUpFailed(ctx, l)
		return p.failed(ctx, l, &Failure{Step: failed.StepTitle, Message: failed.Message, Advice: adviceFor(failed.Message)})
	case err != nil:
		return fmt.Errorf("look at reservation %d: %w", l.ReservationID, err)
	}
	if len(res.Instances) == 0 || res.Instances[0].ID == "" {
		return p.failed(ctx, l, &Failure{Message: "the reservation finished without reporting an instance"})
	}
	in := res.Instances[0]
	l.InstanceID, l.PublicIPv4, l.PublicDNS, l.PrivateIPv4 = in.ID, in.PublicIPv4, in.PublicDNS, in.PrivateIPv4
	return nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ensurePubkey registers the person's key with the Launch service, once.
func (p *Provisioner) ensurePubkey(ctx context.Context, l *store.Launch, log *slog.Logger) error {
	if l.PubkeyID == 0 {
		pk, err := p.api.EnsurePubkey(ctx, PubkeyName(l.Owner, l.KeyBody), l.KeyBody)
		if err != nil {
			return p.fail(ctx, l, "", err, "The Launch service did not accept your SSH key. Try another key with `--key FINGERPRINT`.")
		}
		l.PubkeyID = pk.ID
		if err := p.save(ctx, l); err != nil {
			return err
		}
	}
	if err := p.records.TouchPubkey(ctx, l.PubkeyID, p.now()); err != nil {
		log.Warn("remember pubkey use", "err", err)
	}
	return nil
}

// ensureTemplate creates the launch's own template, once: it carries the
// birth tags and the profile's guardrails. A template older than the record
// means the launch ran before under a record Redis lost (its id comes from
// its command): it resumes as launching, so its reservation is looked for
// by name before one is made — AWS is the tie-breaker, one launch one VM.
// (The margin keeps a bot clock slightly ahead of AWS's from sending every
// launch looking; a replay needs Redis lost and a new delivery in between.)
func (p *Provisioner) ensureTemplate(ctx context.Context, l *store.Launch, log *slog.Logger) error {
	if p.cloud == nil || l.TemplateID != "" {
		return nil
	}
	id, created, err := p.cloud.EnsureLaunchTemplate(ctx, l.Region, ec2.TemplateInput{
		LaunchID: l.ID, BaseTemplateID: l.LaunchTemplateID, SecurityGroupIDs: l.SecurityGroupIDs, SubnetID: l.SubnetID, Tags: BirthTags(l),
	})
	if ec2.IsSetupError(err) {
		log.Error("create launch template: AWS refused the operator's setup", "err", err)
		return p.failed(ctx, l, &Failure{Message: fmt.Sprintf("AWS refused to create the VM's launch template (%s)", ec2.ErrorCode(err)), Advice: operatorsAdvice})
	}
	if err != nil {
		return fmt.Errorf("create launch template: %w", err)
	}
	l.TemplateID = id
	if !created.IsZero() && created.Before(l.CreatedAt.Add(-clockMargin)) && l.State == store.StateAccepted {
		log.Warn("the launch's template predates its record: resuming it, looking for its reservation first", "template", id, "template_created", created)
		l.State, l.ReservedAt = store.StateLaunching, p.now().UTC()
	}
	return p.save(ctx, l)
}

// tagAndAddress puts the birth tags on the instance itself and looks up an
// address the service did not report.
func (p *Provisioner) tagAndAddress(ctx context.Context, l *store.Launch, log *slog.Logger) error {
	if p.cloud == nil {
		return nil
	}
	// Real EC2 may not keep template tags when the service passes its own:
	// without its tags a VM would be ended early by the sweeper's grace rule.
	if err := p.cloud.TagInstance(ctx, l.Region, l.InstanceID, BirthTags(l)); err != nil {
		if serr := p.save(ctx, l); serr != nil {
			log.Warn("save launch", "err", serr)
		}
		if !ec2.IsSetupError(err) {
			return fmt.Errorf("tag instance %s: %w", l.InstanceID, err)
		}
		// Without its tags nothing would know when to end it: end it now,
		// and say it ended only once AWS has agreed.
		log.Error("tag instance: AWS refused the operator's setup; ending the VM", "instance", l.InstanceID, "err", err)
		if terr := p.cloud.Terminate(ctx, l.Region, l.InstanceID); terr != nil {
			return fmt.Errorf("tag instance %s refused (%v), and terminating it failed: %w", l.InstanceID, err, terr)
		}
		p.terminated("failed_launch")
		return p.failed(ctx, l, &Failure{Message: fmt.Sprintf("AWS refused to tag the VM with its expiry (%s), so it was terminated", ec2.ErrorCode(err)), Advice: operatorsAdvice})
	}
	if l.PublicIPv4 == "" && l.PublicDNS == "" {
		ip, dns, err := p.cloud.PublicAddress(ctx, l.Region, l.InstanceID)
		if err != nil {
			log.Warn("no public address from the Launch service, and looking it up failed", "instance", l.InstanceID, "err", err)
		}
		l.PublicIPv4, l.PublicDNS = ip, dns
	}
	return nil
}

// reserve creates the reservation, or adopts the one an interrupted earlier
// attempt created: the launch is marked launching before the create is sent,
// so a launching record without a reservation id may have one.
func (p *Provisioner) reserve(ctx context.Context, l *store.Launch, log *slog.Logger) error {
	if l.ReservationID != 0 {
		return nil
	}
	if l.State == store.StateLaunching {
		found, err := p.api.FindAWSReservation(ctx, l.ReservationName())
		if err != nil {
			return fmt.Errorf("look for an earlier reservation: %w", err)
		}
		if found != nil {
			log.Info("resumed: adopting the reservation an earlier attempt created", "reservation", found.ReservationID)
			l.ReservationID = found.ReservationID
			return p.save(ctx, l)
		}
	}
	l.State, l.ReservedAt = store.StateLaunching, p.now().UTC()
	if err := p.save(ctx, l); err != nil {
		return err
	}
	// A record that a failover loses would make the next attempt create a
	// second reservation without looking for this one first.
	if err := confirmWrites(ctx, p.records); err != nil {
		return err
	}
	template := l.TemplateID
	if template == "" {
		template = l.LaunchTemplateID
	}
	res, err := p.api.CreateAWSReservation(ctx, launchapi.AWSReservationRequest{
		SourceID:         p.sourceID,
		ImageID:          l.Image,
		Amount:           1,
		InstanceType:     l.InstanceType,
		PubkeyID:         l.PubkeyID,
		Region:           l.Region,
		LaunchTemplateID: template,
		Name:             l.ReservationName(),
	})
	if err != nil {
		return p.fail(ctx, l, "", err, adviceForCreate(err))
	}
	l.ReservationID = res.ReservationID
	log.Info("reservation created", "reservation", res.ReservationID)
	return p.save(ctx, l)
}

// clockMargin is how far the bot's clock may run ahead of AWS's.
const clockMargin = 2 * time.Second

// operatorsAdvice is for failures only the operators can fix.
const operatorsAdvice = "This is a problem with the bot's setup, not with your pull request; please tell the operators (the details are in the bot's logs)."

// fail decides whether a Launch API error is final (a 4xx answer, refused
// credentials, or a server error the service means) or worth another
// attempt (other server errors, rate limits, network).
func (p *Provisioner) fail(ctx context.Context, l *store.Launch, step string, err error, advice string) error {
	var apiErr *launchapi.APIError
	if !errors.As(err, &apiErr) || errors.Is(err, launchapi.ErrOutcomeUnknown) {
		return err // a reservation may exist: the retry adopts it
	}
	msg := apiErr.Msg
	if msg == "" {
		msg = fmt.Sprintf("the Launch service answered %d", apiErr.StatusCode)
	}
	switch code := apiErr.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		p.log.With(l.LogAttrs()...).Error("the Launch service refused the bot's credentials", "err", err)
		return p.failed(ctx, l, &Failure{Step: step, Message: fmt.Sprintf("the Launch service refused the bot's credentials (HTTP %d)", code), Advice: operatorsAdvice})
	case code >= 400 && code < 500 && code != http.StatusTooManyRequests:
		return p.failed(ctx, l, &Failure{Step: step, Message: msg, Advice: advice})
	case code >= 500:
		if final := adviceFor500(apiErr.Msg); final != "" {
			return p.failed(ctx, l, &Failure{Step: step, Message: msg, Advice: final})
		}
	}
	return err
}

// adviceFor500 recognises the server errors the Launch service documents as
// real answers rather than outages (launch-api.md); "" for the others,
// which are retried.
func adviceFor500(msg string) string {
	if strings.Contains(strings.ToLower(msg), "image still building") {
		return "The image is still being built by Image Builder; comment `/launch` again once its build has finished."
	}
	return ""
}

// failed records a final failure and returns it (f), or the error that
// kept it from being saved; never nil.
func (p *Provisioner) failed(ctx context.Context, l *store.Launch, f *Failure) error {
	l.State = store.StateFailed
	l.Failure = f.Message
	l.FailedStep = f.Step
	l.FailureAdvice = f.Advice
	l.EndedAt = p.now().UTC()
	if err := p.save(ctx, l); err != nil {
		return err
	}
	countOutcome(ctx, p.records, l.EndedAt, "failed", p.log.With(l.LogAttrs()...))
	return f
}

// Cause says in a few words which service failed and how, for the PR: the
// details (URLs, request ids, bodies) stay in the log.
func Cause(err error) string {
	var apiErr *launchapi.APIError
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("the Launch service answered HTTP %d", apiErr.StatusCode)
	}
	if code := ec2.ErrorCode(err); code != "" {
		return "AWS answered " + code
	}
	if errors.Is(err, launchapi.ErrOutcomeUnknown) {
		return "the Launch service's answer was lost on the way"
	}
	return "the Launch service or AWS could not be reached"
}

// GiveUp records a launch as failed after its last attempt hit errors that
// might have passed (e.g. the Launch service was down), so the PR is told.
func (p *Provisioner) GiveUp(ctx context.Context, l *store.Launch, cause error) *Failure {
	f := &Failure{Message: "the Launch service or AWS kept failing for hours; the last attempt: " + Cause(cause), Advice: "Try `/launch` again later; if it keeps failing, tell the operators."}
	p.log.With(l.LogAttrs()...).Error("launch given up", "err", cause)
	if err := p.failed(ctx, l, f); !errors.As(err, new(*Failure)) { // f itself, unless the save failed
		p.log.With(l.LogAttrs()...).Error("save failed launch", "err", err)
	}
	return f
}

func adviceForCreate(err error) string {
	var apiErr *launchapi.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == 404 {
		return "The operator's Launch source or your key is unknown to the Launch service; please tell the operators."
	}
	return "Check the machine's image, region and instance type in `.packit-launch.yaml`; if they look right, tell the operators."
}

// adviceFor turns well-known Launch service errors into a next step.
func adviceFor(msg string) string {
	switch {
	case strings.Contains(msg, "VPCIdNotSpecified"), strings.Contains(msg, "UnauthorizedOperation"),
		strings.Contains(msg, "launch template"):
		return "This is a problem with the operator's AWS setup, not with your pull request; please tell the operators."
	case strings.Contains(msg, "InvalidAMIID"), strings.Contains(msg, "image"):
		return "The image may not exist in this region or may not be shared with the operator's account; check the machine's `image` and `region`."
	case strings.Contains(msg, "InsufficientInstanceCapacity"):
		return "AWS has no capacity for this instance type right now; try again later or with another `--type`."
	}
	return "Try again; if it fails the same way, tell the operators."
}

// CleanPubkeys deletes the bot's pubkeys unused for PubkeyRetention.
func (p *Provisioner) CleanPubkeys(ctx context.Context, use PubkeyUse) (int, error) {
	return CleanPubkeys(ctx, p.api, use, p.now())
}

// ErrEndedElsewhere means another handler ended the launch meanwhile (a
// stop, an expiry, the reconciler): the in-memory copy must not undo it.
var ErrEndedElsewhere = errors.New("launch ended meanwhile")

// save writes the launch's progress, unless the stored record has already
// ended: then l becomes the stored record and ErrEndedElsewhere is returned.
// The report fields are the GitHub side's: they stay as stored, and l gets
// them.
func (p *Provisioner) save(ctx context.Context, l *store.Launch) error {
	saved, err := update(ctx, p.records, l.ID, p.now(), func(x *store.Launch) error {
		if x.State.Ended() && !l.State.Ended() {
			return ErrEndedElsewhere
		}
		report := x.Report
		*x = *l
		x.Report = report
		return nil
	})
	if saved != nil && (err == nil || errors.Is(err, ErrEndedElsewhere)) {
		if err == nil {
			l.Report = saved.Report
		} else {
			*l = *saved
		}
	}
	return err
}
