package ec2

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"time"
	"unique"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Instance is what the bot needs to know about one EC2 instance.
type Instance struct {
	ID, Region, State                  string // State: pending|running|stopping|stopped|shutting-down|terminated
	LaunchTime                         time.Time
	Tags                               Tags
	PublicIPv4, PublicDNS, PrivateIPv4 string
	LaunchTemplateID                   string // from the aws:ec2launchtemplate:id tag, if any
}

// Tags are an instance's tags. A listing keeps them as pairs, not a map: a
// VM of the bot's has about 17, which a map holds in 1.1 KB and pairs in
// 0.5 KB, 6.5 MB less at 10,000 VMs (BENCHMARKS.md, "10,000 launches").
type Tags []Tag

// Tag is one tag.
type Tag struct{ Key, Value string }

// Get is the value of the tag key ("" if there is none).
func (t Tags) Get(key string) string {
	for _, tag := range t {
		if tag.Key == key {
			return tag.Value
		}
	}
	return ""
}

func toInstance(region string, i types.Instance) Instance {
	tags := make(Tags, 0, len(i.Tags))
	for _, t := range i.Tags {
		// Keys interned: a listing of 10,000 VMs keeps one copy of each
		// key, not one per VM.
		tags = append(tags, Tag{unique.Make(aws.ToString(t.Key)).Value(), aws.ToString(t.Value)})
	}
	out := Instance{
		ID:               aws.ToString(i.InstanceId),
		Region:           region,
		LaunchTime:       aws.ToTime(i.LaunchTime),
		Tags:             tags,
		PublicIPv4:       aws.ToString(i.PublicIpAddress),
		PublicDNS:        aws.ToString(i.PublicDnsName),
		PrivateIPv4:      aws.ToString(i.PrivateIpAddress),
		LaunchTemplateID: tags.Get(TagTemplateOf),
	}
	if i.State != nil {
		out.State = string(i.State.Name)
	}
	return out
}

// isNotFound says whether err means EC2 does not know the instance.
func isNotFound(err error) bool { return errorCode(err) == "InvalidInstanceID.NotFound" }

// TagInstance sets tags on an instance (overwriting keys it already has).
func (c *Cloud) TagInstance(ctx context.Context, region, instanceID string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	cl, err := c.client(region)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err = cl.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{instanceID}, Tags: toTags(tags)})
	if isNotFound(err) {
		return &NotFoundError{Region: region, ID: instanceID, err: err}
	}
	if err != nil {
		return fmt.Errorf("ec2: tag instance %s in %s: %w", instanceID, region, err)
	}
	return nil
}

// Describe returns one instance (any state); a *NotFoundError when EC2 does not know it.
func (c *Cloud) Describe(ctx context.Context, region, instanceID string) (*Instance, error) {
	cl, err := c.client(region)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	out, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	if isNotFound(err) {
		return nil, &NotFoundError{Region: region, ID: instanceID, err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("ec2: describe instance %s in %s: %w", instanceID, region, err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if aws.ToString(i.InstanceId) == instanceID {
				inst := toInstance(region, i)
				return &inst, nil
			}
		}
	}
	return nil, &NotFoundError{Region: region, ID: instanceID}
}

// PublicAddress asks EC2 for an instance's public IPv4 and DNS name (either may be empty).
func (c *Cloud) PublicAddress(ctx context.Context, region, instanceID string) (ipv4, dns string, err error) {
	inst, err := c.Describe(ctx, region, instanceID)
	if err != nil {
		return "", "", err
	}
	return inst.PublicIPv4, inst.PublicDNS, nil
}

// maxConsoleBytes bounds the console output kept: EC2 returns at most its
// last 64 KB, base64-encoded.
const maxConsoleBytes = 64 << 10

// ConsoleOutput is an instance's console output as EC2 buffers it (updated
// shortly after boot milestones, so it may lag minutes); "" while it has
// none. The run-time policy allows it only on the bot's VMs.
func (c *Cloud) ConsoleOutput(ctx context.Context, region, instanceID string) (string, error) {
	cl, err := c.client(region)
	if err != nil {
		return "", err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	out, err := cl.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(instanceID)})
	if isNotFound(err) {
		return "", &NotFoundError{Region: region, ID: instanceID, err: err}
	}
	if err != nil {
		return "", fmt.Errorf("ec2: console output of %s in %s: %w", instanceID, region, err)
	}
	enc := aws.ToString(out.Output)
	if len(enc) > base64.StdEncoding.EncodedLen(maxConsoleBytes) {
		enc = enc[len(enc)-base64.StdEncoding.EncodedLen(maxConsoleBytes):]
	}
	text, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("ec2: console output of %s in %s: %w", instanceID, region, err)
	}
	return string(text), nil
}

// maxFilterValues keeps each filter's value list well inside EC2's limits.
const maxFilterValues = 200

// ListManaged lists live (pending, running, stopping, stopped) instances that
// carry TagManaged=true or were launched from one of this region's per-launch
// templates. The second way catches an instance whose birth tags were
// overridden or lost: the aws:ec2launchtemplate:id tag cannot be removed.
// A profile's base template does not count: people may launch from it
// themselves (the console lists the account's templates).
//
// It asks for the tagged instances first, then only for the instances of
// the per-launch templates that no tagged instance was launched from: a
// launch runs one instance from its own template, so once that instance is
// found by its tags, asking for its template's instances would fetch it
// again and nothing else. A template counts as found only through an
// instance's aws:ec2launchtemplate:id tag, which EC2 sets and nobody can
// change, never through TagLaunch, which can be overwritten: a VM whose
// TagLaunch names another launch must not hide that launch's VM.
//
// What this gives up: a second live instance from the same per-launch
// template that lacks TagManaged=true (say a duplicate reservation whose
// tags the Launch service overrode) is not listed while a sibling is found
// by its tags. Once the sibling is gone it is listed again, as long as its
// template is there: so nothing deletes a per-launch template without
// asking LiveFromTemplates first (provision's CleanTemplates does).
func (c *Cloud) ListManaged(ctx context.Context, region string) ([]Instance, error) {
	templates, err := c.ListManagedTemplates(ctx, region)
	if err != nil {
		return nil, err
	}
	l, err := c.lister(region)
	if err != nil {
		return nil, err
	}
	if err := l.list(ctx, types.Filter{Name: aws.String("tag:" + TagManaged), Values: []string{"true"}}); err != nil {
		return nil, err
	}
	found := map[string]bool{} // template ids the tagged instances were launched from
	for _, inst := range l.out {
		if inst.LaunchTemplateID != "" {
			found[inst.LaunchTemplateID] = true
		}
	}
	var rest []string
	for _, t := range templates {
		if t.LaunchID != "" && !found[t.ID] {
			rest = append(rest, t.ID)
		}
	}
	if err := l.fromTemplates(ctx, rest); err != nil {
		return nil, err
	}
	return l.out, nil
}

// LiveFromTemplates lists the live instances launched from the given
// templates, whatever their tags: before a template is deleted, nothing
// launched from it may be left to run unseen.
func (c *Cloud) LiveFromTemplates(ctx context.Context, region string, templateIDs []string) ([]Instance, error) {
	l, err := c.lister(region)
	if err != nil {
		return nil, err
	}
	if err := l.fromTemplates(ctx, templateIDs); err != nil {
		return nil, err
	}
	return l.out, nil
}

// instanceLister collects live instances over several queries, each once.
type instanceLister struct {
	cl       *ec2.Client
	region   string
	pageSize int32
	seen     map[string]bool
	out      []Instance
}

func (c *Cloud) lister(region string) (*instanceLister, error) {
	cl, err := c.client(region)
	if err != nil {
		return nil, err
	}
	return &instanceLister{cl: cl, region: region, pageSize: c.pageSize, seen: map[string]bool{}}, nil
}

// fromTemplates lists the live instances launched from templateIDs, in
// chunks within EC2's filter limits.
func (l *instanceLister) fromTemplates(ctx context.Context, templateIDs []string) error {
	for ids := range slices.Chunk(templateIDs, maxFilterValues) {
		if err := l.list(ctx, types.Filter{Name: aws.String("tag:" + TagTemplateOf), Values: ids}); err != nil {
			return err
		}
	}
	return nil
}

// list adds the live instances filter matches, page by page.
func (l *instanceLister) list(ctx context.Context, filter types.Filter) error {
	filters := []types.Filter{filter, {Name: aws.String("instance-state-name"), Values: liveStates}}
	pages := ec2.NewDescribeInstancesPaginator(l.cl, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(l.pageSize)})
	for pages.HasMorePages() {
		pageCtx, cancel := withTimeout(ctx)
		page, err := pages.NextPage(pageCtx)
		cancel()
		if err != nil {
			return fmt.Errorf("ec2: list managed instances in %s: %w", l.region, err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				inst := toInstance(l.region, i)
				if !l.seen[inst.ID] {
					l.seen[inst.ID] = true
					l.out = append(l.out, inst)
				}
			}
		}
	}
	return nil
}

// Terminate terminates each id in its own call, because a batch with one
// unknown id fails whole. Unknown ids and instances already shutting down or
// terminated count as done. It tries every id and returns the first real error.
func (c *Cloud) Terminate(ctx context.Context, region string, instanceIDs ...string) error {
	cl, err := c.client(region)
	if err != nil {
		return err
	}
	var first error
	for _, id := range instanceIDs {
		if err := terminateOne(ctx, cl, id); err != nil && first == nil {
			first = fmt.Errorf("ec2: terminate instance %s in %s: %w", id, region, err)
		}
	}
	return first
}

func terminateOne(ctx context.Context, cl *ec2.Client, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	// TerminateInstances on a shutting-down or terminated instance succeeds.
	_, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if isNotFound(err) {
		return nil
	}
	return err
}
