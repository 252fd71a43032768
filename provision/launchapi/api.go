package launchapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Provider numbers in reservations.
const (
	ProviderNoop = 1
	ProviderAWS  = 2
)

const (
	pageSize = 100
	maxPages = 1000 // a guard against a service that never stops paging
)

// Source is a cloud account registered with console.redhat.com.
type Source struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Provider string `json:"provider"`
	Status   string `json:"status"`
	UID      string `json:"uid"`
}

// LaunchTemplate is an AWS launch template of a source.
type LaunchTemplate struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// UploadInfo tells which cloud account a source is.
type UploadInfo struct {
	Provider     string
	AWSAccountID string // empty for non-AWS sources
}

// InstanceType is an instance type the service knows in a region.
type InstanceType struct {
	Name         string `json:"name"`
	VCPUs        int    `json:"vcpus"`
	Cores        int    `json:"cores"`
	MemoryMiB    int64  `json:"memory_mib"`
	StorageGB    int64  `json:"storage_gb"`
	Supported    bool   `json:"supported"`
	Architecture string `json:"architecture"`
}

// Pubkey is a public SSH key stored for the org.
type Pubkey struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	Body              string `json:"body"`
	Type              string `json:"type"`
	Fingerprint       string `json:"fingerprint"` // unreliable (see launch-api.md); compare bodies
	FingerprintLegacy string `json:"fingerprint_legacy"`
}

// AWSReservationRequest asks for instances on AWS. There is deliberately no
// poweroff field: the client always sends poweroff=false.
type AWSReservationRequest struct {
	SourceID         string
	ImageID          string // ami-… or an Image Builder compose UUID
	Amount           int    // default 1
	InstanceType     string
	PubkeyID         int64
	Region           string
	LaunchTemplateID string
	// Name tags the instances and identifies the reservation when a
	// create's outcome is unknown, so it should be unique per launch.
	Name string
}

// Instance is a launched instance. Any address may be empty: the service
// reads them once, right after launch.
type Instance struct {
	ID          string
	PublicIPv4  string
	PublicDNS   string
	PrivateIPv4 string
}

// AWSReservation is the AWS-specific view of a reservation.
type AWSReservation struct {
	ReservationID    int64
	AWSReservationID string // empty until launched
	SourceID         string
	ImageID          string
	Amount           int
	InstanceType     string
	PubkeyID         int64
	Region           string
	LaunchTemplateID string
	Name             string
	Instances        []Instance // empty until launched
}

// Reservation is the generic view of a reservation: the service's job.
type Reservation struct {
	ID         int64      `json:"id"`
	Provider   int        `json:"provider"`
	CreatedAt  time.Time  `json:"created_at"`
	Steps      int        `json:"steps"`
	StepTitles []string   `json:"step_titles"`
	Step       int        `json:"step"`
	Status     string     `json:"status"`
	Error      string     `json:"error"`
	FinishedAt *time.Time `json:"finished_at"`
	Success    *bool      `json:"success"` // nil while pending
}

// Pending reports whether the service has not finished the reservation.
func (r *Reservation) Pending() bool { return r.Success == nil }

// StepTitle returns the title of the current step, or "".
func (r *Reservation) StepTitle() string {
	if r.Step >= 1 && r.Step <= len(r.StepTitles) {
		return r.StepTitles[r.Step-1]
	}
	return ""
}

type listMeta struct {
	Total int `json:"total"`
	Links struct {
		Next     string `json:"next"`
		Previous string `json:"previous"`
	} `json:"links"`
}

type list[T any] struct {
	Data     []T      `json:"data"`
	Metadata listMeta `json:"metadata"`
}

// listAll collects an offset/limit paged list.
func listAll[T any](ctx context.Context, c *Client, path string, query url.Values) ([]T, error) {
	var all []T
	for range maxPages {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("limit", strconv.Itoa(pageSize))
		q.Set("offset", strconv.Itoa(len(all)))
		var page list[T]
		if err := c.do(ctx, http.MethodGet, path, q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if len(page.Data) < pageSize || (page.Metadata.Total > 0 && len(all) >= page.Metadata.Total) {
			return all, nil
		}
	}
	return nil, fmt.Errorf("launchapi: GET %s: more than %d pages", path, maxPages)
}

// ListSources returns all sources, of one provider ("aws") or all ("").
func (c *Client) ListSources(ctx context.Context, provider string) ([]Source, error) {
	q := url.Values{}
	if provider != "" {
		q.Set("provider", provider)
	}
	return listAll[Source](ctx, c, "/sources", q)
}

// ListLaunchTemplates returns all launch templates of an AWS source in region.
func (c *Client) ListLaunchTemplates(ctx context.Context, sourceID, region string) ([]LaunchTemplate, error) {
	path := "/sources/" + url.PathEscape(sourceID) + "/launch_templates"
	var all []LaunchTemplate
	q := url.Values{"region": {region}}
	seen := map[string]bool{}
	for range maxPages {
		var page list[LaunchTemplate]
		if err := c.do(ctx, http.MethodGet, path, q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if page.Metadata.Links.Next == "" {
			return all, nil
		}
		// The next link carries the service's own prefix; take its token
		// and ask our base URL.
		next, err := url.Parse(page.Metadata.Links.Next)
		token := ""
		if err == nil {
			token = next.Query().Get("token")
		}
		if token == "" || seen[token] {
			return nil, &DecodeError{Method: http.MethodGet, Path: path, StatusCode: http.StatusOK,
				Err: fmt.Errorf("unusable next link %q", page.Metadata.Links.Next)}
		}
		seen[token] = true
		q = url.Values{"region": {region}, "token": {token}}
		if l := next.Query().Get("limit"); l != "" {
			q.Set("limit", l)
		}
	}
	return nil, fmt.Errorf("launchapi: GET %s: more than %d pages", path, maxPages)
}

// GetUploadInfo returns which cloud account a source is.
func (c *Client) GetUploadInfo(ctx context.Context, sourceID string) (*UploadInfo, error) {
	var out struct {
		Provider string `json:"provider"`
		AWS      *struct {
			AccountID string `json:"account_id"`
		} `json:"aws"`
	}
	if err := c.do(ctx, http.MethodGet, "/sources/"+url.PathEscape(sourceID)+"/upload_info", nil, nil, &out); err != nil {
		return nil, err
	}
	info := &UploadInfo{Provider: out.Provider}
	if out.AWS != nil {
		info.AWSAccountID = out.AWS.AccountID
	}
	return info, nil
}

// CheckSourceStatus is a pre-flight check: nil when the service can use the
// source's credentials, an *APIError (usually 500) when it cannot.
func (c *Client) CheckSourceStatus(ctx context.Context, sourceID string) error {
	return c.do(ctx, http.MethodGet, "/sources/"+url.PathEscape(sourceID)+"/status", nil, nil, nil)
}

// ListInstanceTypes returns the AWS instance types of region.
func (c *Client) ListInstanceTypes(ctx context.Context, region string) ([]InstanceType, error) {
	var out struct {
		Data []InstanceType `json:"data"`
	}
	if err := c.do(ctx, http.MethodGet, "/instance_types/aws", url.Values{"region": {region}}, nil, &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// ListPubkeys returns all public keys of the org.
func (c *Client) ListPubkeys(ctx context.Context) ([]Pubkey, error) {
	return listAll[Pubkey](ctx, c, "/pubkeys", nil)
}

// DeletePubkey deletes a public key (the service also removes it from every
// cloud account it was uploaded to). A key already gone counts as deleted.
func (c *Client) DeletePubkey(ctx context.Context, id int64) error {
	err := c.do(ctx, http.MethodDelete, "/pubkeys/"+strconv.FormatInt(id, 10), nil, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// keyIdentity is what makes two key bodies the same key: type and blob,
// not the comment.
func keyIdentity(body string) (string, bool) {
	f := strings.Fields(body)
	if len(f) < 2 {
		return "", false
	}
	return f[0] + " " + f[1], true
}

// EnsurePubkey returns the org's stored key with the same body (type and
// blob; the comment does not matter), uploading it under name if there is
// none. name must not collide between people, e.g. gh-<login>-<short hash>.
// If the name is taken by another key the error is a *PubkeyConflictError.
func (c *Client) EnsurePubkey(ctx context.Context, name, body string) (*Pubkey, error) {
	want, ok := keyIdentity(body)
	if !ok {
		return nil, fmt.Errorf("launchapi: pubkey %q: not an OpenSSH public key", name)
	}
	find := func() (*Pubkey, error) {
		keys, err := c.ListPubkeys(ctx)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if id, ok := keyIdentity(k.Body); ok && id == want {
				return &k, nil
			}
		}
		return nil, nil
	}
	if k, err := find(); err != nil || k != nil {
		return k, err
	}
	var created Pubkey
	err := c.do(ctx, http.MethodPost, "/pubkeys", nil, map[string]string{"name": name, "body": body}, &created)
	if err == nil {
		return &created, nil
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnprocessableEntity {
		return nil, err
	}
	// Someone stored the same key between our list and our create: use it.
	k, ferr := find()
	if ferr != nil {
		return nil, fmt.Errorf("launchapi: pubkey %q: list after conflict: %w", name, ferr)
	}
	if k != nil {
		c.log.InfoContext(ctx, "pubkey was created concurrently, reusing it", "pubkey_id", k.ID)
		return k, nil
	}
	return nil, &PubkeyConflictError{Name: name, Err: ae}
}

type awsReservationWire struct {
	SourceID         string `json:"source_id"`
	ImageID          string `json:"image_id"`
	Amount           int    `json:"amount"`
	InstanceType     string `json:"instance_type,omitempty"`
	PubkeyID         int64  `json:"pubkey_id"`
	Region           string `json:"region"`
	LaunchTemplateID string `json:"launch_template_id,omitempty"`
	Name             string `json:"name"`
	Poweroff         bool   `json:"poweroff"`
}

type awsReservationResponse struct {
	ReservationID    int64  `json:"reservation_id"`
	AWSReservationID string `json:"aws_reservation_id"`
	SourceID         string `json:"source_id"`
	ImageID          string `json:"image_id"`
	Amount           int    `json:"amount"`
	InstanceType     string `json:"instance_type"`
	PubkeyID         *int64 `json:"pubkey_id"`
	Region           string `json:"region"`
	LaunchTemplateID string `json:"launch_template_id"`
	Name             string `json:"name"`
	Instances        []struct {
		InstanceID string `json:"instance_id"`
		Detail     struct {
			PublicIPv4  string `json:"public_ipv4"`
			PublicDNS   string `json:"public_dns"`
			PrivateIPv4 string `json:"private_ipv4"`
		} `json:"detail"`
	} `json:"instances"`
}

func (w *awsReservationResponse) toAWSReservation() *AWSReservation {
	r := &AWSReservation{
		ReservationID: w.ReservationID, AWSReservationID: w.AWSReservationID, SourceID: w.SourceID,
		ImageID: w.ImageID, Amount: w.Amount, InstanceType: w.InstanceType, Region: w.Region,
		LaunchTemplateID: w.LaunchTemplateID, Name: w.Name,
	}
	if w.PubkeyID != nil {
		r.PubkeyID = *w.PubkeyID
	}
	for _, in := range w.Instances {
		r.Instances = append(r.Instances, Instance{ID: in.InstanceID, PublicIPv4: in.Detail.PublicIPv4,
			PublicDNS: in.Detail.PublicDNS, PrivateIPv4: in.Detail.PrivateIPv4})
	}
	return r
}

// CreateAWSReservation asks the service to launch instances. It is never
// retried blindly: when the outcome is unknown (a timeout, a 5xx, a dropped
// connection, an unreadable answer), the org's newest reservations are
// searched for one with req.Name, and a match is adopted. Only when none
// exists is the failure returned.
func (c *Client) CreateAWSReservation(ctx context.Context, req AWSReservationRequest) (*AWSReservation, error) {
	wire := awsReservationWire{
		SourceID: req.SourceID, ImageID: req.ImageID, Amount: max(req.Amount, 1), InstanceType: req.InstanceType,
		PubkeyID: req.PubkeyID, Region: req.Region, LaunchTemplateID: req.LaunchTemplateID, Name: req.Name,
		Poweroff: false, // true would power the VM off a minute after boot
	}
	var out awsReservationResponse
	err := c.do(ctx, http.MethodPost, "/reservations/aws", nil, wire, &out)
	if err == nil {
		return out.toAWSReservation(), nil
	}
	if !outcomeUnknown(ctx, err) {
		return nil, err
	}
	if req.Name == "" {
		return nil, fmt.Errorf("launchapi: create reservation: %w and no name to look it up by: %w", ErrOutcomeUnknown, err)
	}
	c.log.WarnContext(ctx, "reservation create outcome unknown, looking for it", "name", req.Name, "error", err)
	found, ferr := c.FindAWSReservation(ctx, req.Name)
	switch {
	case ferr != nil:
		return nil, fmt.Errorf("launchapi: create reservation %q: %w, lookup failed (%v): %w", req.Name, ErrOutcomeUnknown, ferr, err)
	case found == nil:
		return nil, fmt.Errorf("launchapi: create reservation %q: not created: %w", req.Name, err)
	}
	c.log.InfoContext(ctx, "adopted reservation created by an unanswered request", "name", req.Name, "reservation", found.ReservationID)
	return found, nil
}

// ErrOutcomeUnknown is a create that may have happened although it failed,
// and could not be resolved: a caller must not take it as final.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// outcomeUnknown reports whether a failed create may have happened anyway.
func outcomeUnknown(ctx context.Context, err error) bool {
	var ns *notSentError
	var ae *APIError
	switch {
	case ctx.Err() != nil, errors.As(err, &ns):
		return false
	case errors.As(err, &ae):
		return ae.StatusCode >= 500
	}
	return true // network errors, timeouts, and 2xx answers we could not read
}

// FindAWSReservation searches the org's newest reservations (the list is in
// ascending id order) for an AWS one named name; nil, nil when there is none.
// A caller resuming a launch uses it to find a reservation it may have created.
func (c *Client) FindAWSReservation(ctx context.Context, name string) (*AWSReservation, error) {
	var head list[Reservation]
	if err := c.do(ctx, http.MethodGet, "/reservations", url.Values{"limit": {"1"}, "offset": {"0"}}, nil, &head); err != nil {
		return nil, err
	}
	if head.Metadata.Total == 0 {
		return nil, nil
	}
	q := url.Values{
		"limit":  {strconv.Itoa(c.adoptWindow)},
		"offset": {strconv.Itoa(max(head.Metadata.Total-c.adoptWindow, 0))},
	}
	var tail list[Reservation]
	if err := c.do(ctx, http.MethodGet, "/reservations", q, nil, &tail); err != nil {
		return nil, err
	}
	slices.SortFunc(tail.Data, func(a, b Reservation) int { return cmp.Compare(b.ID, a.ID) })
	for _, r := range tail.Data {
		if r.Provider != ProviderAWS {
			continue
		}
		d, err := c.GetAWSReservation(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		// A deployment of the service may prefix the name (APP_INSTANCE_PREFIX).
		if strings.HasSuffix(d.Name, name) {
			return d, nil
		}
	}
	return nil, nil
}

// GetReservation returns the generic view of a reservation.
func (c *Client) GetReservation(ctx context.Context, id int64) (*Reservation, error) {
	var out Reservation
	if err := c.do(ctx, http.MethodGet, "/reservations/"+strconv.FormatInt(id, 10), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetAWSReservation returns the AWS view of a reservation, with instances
// once launched. A non-AWS reservation is a 400.
func (c *Client) GetAWSReservation(ctx context.Context, id int64) (*AWSReservation, error) {
	var out awsReservationResponse
	if err := c.do(ctx, http.MethodGet, "/reservations/aws/"+strconv.FormatInt(id, 10), nil, nil, &out); err != nil {
		return nil, err
	}
	return out.toAWSReservation(), nil
}

// CreateNoopReservation creates a reservation that does nothing and succeeds
// at once: a smoke test of credentials and the job queue.
func (c *Client) CreateNoopReservation(ctx context.Context) (int64, error) {
	var out struct {
		ReservationID int64 `json:"reservation_id"`
	}
	if err := c.do(ctx, http.MethodPost, "/reservations/noop", nil, nil, &out); err != nil {
		return 0, err
	}
	return out.ReservationID, nil
}
