package provision

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
)

// tagValueRE is what a rebuilt record takes from a tag the bot wrote:
// nothing a person could not have typed in a config or a key list.
var tagValueRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,199}$`)

// RecordFromTags rebuilds the record of a running VM whose record was lost,
// from its birth tags; ok is false when they do not describe a launch on a
// PR completely (an older bot's VM, tags edited by hand).
func RecordFromTags(in ec2.Instance, now time.Time) (*store.Launch, bool) {
	vm, ok := EndedVMFromTags(in.ID, in.Tags, now, "")
	if !ok {
		return nil, false
	}
	installation, err := strconv.ParseInt(in.Tags.Get(TagInstallation), 10, 64)
	if err != nil || installation <= 0 {
		return nil, false
	}
	expires, err1 := time.Parse(time.RFC3339, in.Tags.Get(ec2.TagExpiresAt))
	hard, err2 := time.Parse(time.RFC3339, in.Tags.Get(ec2.TagHardExpiresAt))
	if err1 != nil || err2 != nil {
		return nil, false
	}
	for _, key := range []string{TagSSHUser, TagMachine, TagImage, TagProfile} {
		if !tagValueRE.MatchString(in.Tags.Get(key)) {
			return nil, false
		}
	}
	comment, _ := strconv.ParseInt(in.Tags.Get(TagComment), 10, 64)
	key := in.Tags.Get(TagKey)
	if key != "" && !tagValueRE.MatchString(key) {
		key = ""
	}
	launched := in.LaunchTime.UTC()
	if launched.IsZero() {
		launched = now.UTC()
	}
	l := &store.Launch{
		ID: vm.LaunchID, InstallationID: installation, Owner: vm.Owner, Repo: vm.Repo, PR: vm.PR, Command: "/launch", CommandCommentID: max(comment, 0),
		Machine: in.Tags.Get(TagMachine), Image: in.Tags.Get(TagImage), Region: in.Region, SSHUser: in.Tags.Get(TagSSHUser), Profile: in.Tags.Get(TagProfile),
		KeyFingerprint: key, InstanceID: in.ID, PublicIPv4: in.PublicIPv4, PublicDNS: in.PublicDNS, PrivateIPv4: in.PrivateIPv4,
		CreatedAt: launched, LaunchedAt: launched, ExpiresAt: expires, HardExpiresAt: hard, Lifetime: expires.Sub(launched),
		State:  store.StateRunning,
		Events: []store.Event{{At: now.UTC(), Name: "rebuild", State: store.StateRunning}},
		Report: store.Report{CheckRunID: vm.CheckRunID},
	}
	return l, true
}

// maxTemplateLookups bounds the templates one sweep reads for VMs without
// tags (normally none: a launch tags its VM within seconds).
const maxTemplateLookups = 20

// withBirthTags is tags completed with the bot's own tags from birth.
func withBirthTags(tags ec2.Tags, birth map[string]string) ec2.Tags {
	out := slices.Clone(tags)
	for _, k := range slices.Sorted(maps.Keys(birth)) {
		if !slices.ContainsFunc(tags, func(t ec2.Tag) bool { return t.Key == k }) && strings.HasPrefix(k, "packit-launch:") {
			out = append(out, ec2.Tag{Key: k, Value: birth[k]})
		}
	}
	return out
}

// adoptOrphans rebuilds the records of running VMs that have none (Redis
// lost them): the record from the VM's tags, its timers, and its report —
// the ready comment and the completed check run — so that /launch stop and
// the buttons work on it again. VMs already in the live index are skipped
// without a read.
func (lc *Lifecycle) adoptOrphans(ctx context.Context, active []store.Active, live []ec2.Instance, now time.Time) {
	known := make(map[string]bool, len(active))
	for _, a := range active {
		known[a.ID] = true
	}
	lookups := 0
	for _, in := range live {
		if in.Tags.Get(ec2.TagLaunch) == "" && in.LaunchTemplateID != "" && in.State == "running" && lookups < maxTemplateLookups && lc.prov.cloud != nil {
			// Launched from a per-launch template, but without the bot's
			// tags (the Launch service's replaced the template's, and the
			// bot lost the launch before tagging it): its template has them.
			lookups++
			tags, err := lc.prov.cloud.TemplateTags(ctx, in.Region, in.LaunchTemplateID)
			if err != nil {
				lc.log.Warn("sweep: read the template of an untagged VM", "instance", in.ID, "err", err)
				continue
			}
			in.Tags = withBirthTags(in.Tags, tags)
		}
		id := in.Tags.Get(ec2.TagLaunch)
		if id == "" || known[id] || in.State != "running" {
			continue
		}
		if _, err := lc.records.GetLaunch(ctx, id); !errors.Is(err, store.ErrNotFound) {
			continue // it has a record (or Redis did not answer): settle and reconcile judge it
		}
		l, ok := RecordFromTags(in, now)
		if !ok {
			adoptedTotal.WithLabelValues("not_well_formed").Inc()
			lc.log.Warn("sweep: a running VM has no launch record, and its tags cannot rebuild one; it ends at its expiry tag", "launch", id, "instance", in.ID)
			continue
		}
		restored, err := lc.records.RestoreLaunch(ctx, l)
		if err != nil || !restored {
			if err != nil {
				lc.log.Warn("sweep: rebuild a lost record", "launch", id, "err", err)
			}
			continue
		}
		adoptedTotal.WithLabelValues("rebuilt").Inc()
		lc.log.With(l.LogAttrs()...).Warn("sweep: rebuilt the lost record of a running VM from its tags", "instance", in.ID)
		if lc.prov.cloud != nil { // its tags may have come from its template: put them on the VM itself
			if err := lc.prov.cloud.TagInstance(ctx, l.Region, l.InstanceID, BirthTags(l)); err != nil {
				lc.log.With(l.LogAttrs()...).Warn("sweep: tag a rebuilt launch's VM", "err", err)
			}
		}
		if err := lc.schedule(ctx, l); err != nil {
			lc.log.With(l.LogAttrs()...).Warn("sweep: timers of a rebuilt record", "err", err)
		}
		if err := lc.report.Outcome(ctx, l); err != nil {
			lc.log.With(l.LogAttrs()...).Warn("sweep: report a rebuilt record (the next sweep's settle does not retry it; the check run shows it on the next change)", "err", err)
		}
	}
}
