package launchapitest

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Provider numbers as the service reports them in reservations.
const (
	ProviderNoop = 1
	ProviderAWS  = 2
)

// The service's texts for an AWS reservation.
var (
	stepTitles = []string{"Ensure public key", "Launch instance(s)", "Fetch instance(s) description"}
	// statusTexts[i] is reached after i half-steps; stepOf[i] is its step.
	statusTexts = []string{"Created", "Uploading public key", "Uploaded public key", "Launching instance(s)",
		"Launched instance(s)", "Fetching instance(s) description", "Instance(s) description fetched"}
	stepOf = []int{0, 1, 1, 2, 2, 3, 3}
	// defaultFailures are realistic error texts for a failure at step 1..3.
	defaultFailures = []string{
		"cannot upload aws pubkey: operation error EC2: ImportKeyPair, https response error StatusCode: 400, api error InvalidKey.Format: Key is not in valid OpenSSH public key format",
		"cannot launch ec2 instance: VPCIdNotSpecified: No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC",
		"cannot fetch instance description: operation error EC2: DescribeInstances, https response error StatusCode: 403, api error UnauthorizedOperation: You are not authorized to perform this operation.",
	}
	// TimeoutError is the error text of a reservation past JobTimeout.
	TimeoutError = "reservation job timed out after 30m0s"
)

// ReservationPlan decides how one AWS reservation plays out.
type ReservationPlan struct {
	// FailAtStep fails the reservation when step 1, 2 or 3 would finish; 0 succeeds.
	FailAtStep int
	// Error is the failure's text; a realistic one per step when empty.
	Error string
	// NoPublicAddress makes a successful reservation report no public
	// address or DNS name, only the private address.
	NoPublicAddress bool
	// StepDuration overrides the fake's step duration (slow reservations).
	// A reservation that cannot finish within JobTimeout ends as "Timeout".
	StepDuration time.Duration
}

// PlanNextReservation queues a plan for the next AWS reservation created;
// reservations without a queued plan succeed.
func (f *Fake) PlanNextReservation(p ReservationPlan) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans = append(f.plans, p)
}

// AWSRequest is the body of a POST /reservations/aws as the fake read it.
type AWSRequest struct {
	SourceID         string `json:"source_id"`
	ImageID          string `json:"image_id"`
	Amount           int    `json:"amount"`
	InstanceType     string `json:"instance_type"`
	PubkeyID         int64  `json:"pubkey_id"`
	Region           string `json:"region"`
	LaunchTemplateID string `json:"launch_template_id"`
	Name             string `json:"name"`
	Poweroff         bool   `json:"poweroff"`
}

// Reservation is a snapshot of a reservation as the fake sees it now.
type Reservation struct {
	ID         int64
	Org        string
	Provider   int
	CreatedAt  time.Time
	Request    AWSRequest // zero for a noop reservation
	Plan       ReservationPlan
	Step       int
	Status     string
	Success    *bool
	Error      string
	FinishedAt *time.Time
	Instances  []Instance // launched instances; addresses only once described
}

type reservation struct {
	id        int64
	org       string
	provider  int
	createdAt time.Time
	req       AWSRequest
	plan      ReservationPlan
	stepDur   time.Duration
	pubkey    Pubkey
	amiID     string

	launchOnce sync.Once
	launched   bool // guarded by Fake.mu, like the two below
	instances  []Instance
	launchErr  error
}

// state is what a reservation looks like at a moment.
type state struct {
	step       int
	status     string
	success    *bool
	errText    string
	finishedAt *time.Time
	instances  []Instance // nil before launch
	described  bool       // addresses known
}

func (r *reservation) launchAt() time.Duration { return 2 * r.stepDur }

// ensureLaunched calls the launcher once the reservation reaches its launch
// moment. It must be called without f.mu held.
func (f *Fake) ensureLaunched(ctx context.Context, r *reservation) {
	if r.provider != ProviderAWS || r.plan.FailAtStep == 1 || r.plan.FailAtStep == 2 ||
		r.launchAt() >= JobTimeout || f.clock.Now().Sub(r.createdAt) < r.launchAt() {
		return
	}
	r.launchOnce.Do(func() {
		in := LaunchInput{
			Org: r.org, Region: r.req.Region, ImageID: r.amiID, InstanceType: r.req.InstanceType,
			LaunchTemplateID: r.req.LaunchTemplateID, KeyName: r.pubkey.Name, PubkeyBody: r.pubkey.Body,
			Amount: max(r.req.Amount, 1), Name: r.req.Name,
			Tags: map[string]string{"Name": r.req.Name, "rh-rid": fmt.Sprintf("r-%d", r.id), "rh-org": r.org},
		}
		inst, err := f.launcher.Launch(context.WithoutCancel(ctx), in)
		f.mu.Lock()
		defer f.mu.Unlock()
		r.launched, r.instances, r.launchErr = true, inst, err
	})
}

func (f *Fake) stateLocked(r *reservation, now time.Time) state {
	el := now.Sub(r.createdAt)
	if r.provider == ProviderNoop {
		ok := true
		fin := r.createdAt
		return state{step: 1, status: "Finished", success: &ok, finishedAt: &fin}
	}
	d := r.stepDur
	failStep, failText := r.plan.FailAtStep, r.plan.Error
	if r.launched && r.launchErr != nil {
		failStep, failText = 2, "cannot launch ec2 instance: "+r.launchErr.Error()
	}
	if failStep > 0 && failText == "" {
		failText = defaultFailures[failStep-1]
	}
	end := 3 * d
	if failStep > 0 {
		end = time.Duration(failStep) * d
	}

	var s state
	idx := min(int(el/max(d/2, 1)), len(statusTexts)-1)
	if failStep > 0 && idx >= 2*failStep-1 {
		// A failing step never reports itself as started (as the real one:
		// after a failed launch the status still says "Uploaded public key").
		s.step, s.status = failStep, statusTexts[2*failStep-2]
	} else {
		s.step, s.status = stepOf[idx], statusTexts[idx]
	}
	if r.launched && r.launchErr == nil && el >= r.launchAt() {
		s.instances = r.instances
	}
	switch {
	case end < JobTimeout && el >= end:
		fin := r.createdAt.Add(end)
		ok := failStep == 0
		s.success, s.finishedAt = &ok, &fin
		if !ok {
			s.errText = failText
		}
		s.described = ok
	case el >= JobTimeout:
		fin := r.createdAt.Add(JobTimeout)
		ok := false
		s.status, s.success, s.errText, s.finishedAt = "Timeout", &ok, TimeoutError, &fin
	}
	return s
}

func (f *Fake) snapshotLocked(r *reservation, now time.Time) Reservation {
	s := f.stateLocked(r, now)
	out := Reservation{
		ID: r.id, Org: r.org, Provider: r.provider, CreatedAt: r.createdAt, Request: r.req, Plan: r.plan,
		Step: s.step, Status: s.status, Success: s.success, Error: s.errText, FinishedAt: s.finishedAt,
	}
	for _, in := range s.instances {
		if !s.described {
			in = Instance{ID: in.ID}
		} else if r.plan.NoPublicAddress {
			in.PublicIPv4, in.PublicDNS = "", ""
		}
		out.Instances = append(out.Instances, in)
	}
	return out
}

// Reservations returns snapshots of org's reservations in id order.
func (f *Fake) Reservations(org string) []Reservation {
	f.mu.Lock()
	rs := append([]*reservation(nil), f.org(org).reservations...)
	f.mu.Unlock()
	var out []Reservation
	for _, r := range rs {
		f.ensureLaunched(context.Background(), r)
		f.mu.Lock()
		out = append(out, f.snapshotLocked(r, f.clock.Now()))
		f.mu.Unlock()
	}
	return out
}

// reservationJSON renders GET /reservations/{id}.
func reservationJSON(s Reservation) map[string]any {
	titles, steps := stepTitles, 3
	if s.Provider == ProviderNoop {
		titles, steps = []string{"No operation"}, 1
	}
	var fin any
	if s.FinishedAt != nil {
		fin = s.FinishedAt.UTC().Format(time.RFC3339)
	}
	var success any
	if s.Success != nil {
		success = *s.Success
	}
	return map[string]any{
		"id": s.ID, "provider": s.Provider, "created_at": s.CreatedAt.UTC().Format(time.RFC3339),
		"steps": steps, "step_titles": titles, "step": s.Step, "status": s.Status,
		"error": s.Error, "finished_at": fin, "success": success,
	}
}

// awsReservationJSON renders GET /reservations/aws/{id} and the create answer.
func awsReservationJSON(s Reservation) map[string]any {
	m := map[string]any{
		"reservation_id": s.ID, "source_id": s.Request.SourceID, "image_id": s.Request.ImageID,
		"amount": s.Request.Amount, "instance_type": s.Request.InstanceType, "pubkey_id": s.Request.PubkeyID,
		"region": s.Request.Region, "launch_template_id": s.Request.LaunchTemplateID, "name": s.Request.Name,
		"poweroff": s.Request.Poweroff,
	}
	if len(s.Instances) > 0 {
		m["aws_reservation_id"] = fmt.Sprintf("r-%017x", 0xa0000000+s.ID)
		var list []map[string]any
		for _, in := range s.Instances {
			detail := map[string]any{}
			for k, v := range map[string]string{"public_ipv4": in.PublicIPv4, "public_dns": in.PublicDNS, "private_ipv4": in.PrivateIPv4} {
				if v != "" {
					detail[k] = v
				}
			}
			list = append(list, map[string]any{"instance_id": in.ID, "detail": detail})
		}
		m["instances"] = list
	}
	return m
}
