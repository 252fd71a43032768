package provision

import (
	"regexp"
	"strconv"
	"time"

	"github.com/packit/packit-launch/provision/ec2"
)

// A VM can end without its record: Redis was flushed or failed over, the
// embedded store restarted, retention passed. Its tags still say whose it
// was, so its PR is told all the same.

// EndedVM is what a VM's tags say of a launch whose record is gone.
type EndedVM struct {
	LaunchID   string    `json:"launch_id"`
	Repo       string    `json:"repo"`
	PR         int       `json:"pr"`
	Owner      string    `json:"owner"`
	InstanceID string    `json:"instance_id"`
	CheckRunID int64     `json:"check_run_id,omitempty"`
	EndedAt    time.Time `json:"ended_at"`
	Reason     string    `json:"reason"`
}

// Tag values are set by the bot, but anyone with access to the account can
// set tags too: only well-formed ones are believed.
var (
	launchIDRE = regexp.MustCompile(`^[23456789abcdefghjkmnpqrstuvwxyz]{8}$`)
	repoRE     = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)
	loginRE    = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
)

// EndedVMFromTags reads an ended VM's tags; ok is false when they do not
// name a launch on a PR (not the bot's, tags lost or not well-formed).
func EndedVMFromTags(instanceID string, tags ec2.Tags, at time.Time, reason string) (EndedVM, bool) {
	pr, err := strconv.Atoi(tags.Get(ec2.TagPR))
	vm := EndedVM{LaunchID: tags.Get(ec2.TagLaunch), Repo: tags.Get(ec2.TagRepo), PR: pr, Owner: tags.Get(ec2.TagOwner),
		InstanceID: instanceID, EndedAt: at.UTC(), Reason: reason}
	vm.CheckRunID, _ = strconv.ParseInt(tags.Get(ec2.TagCheckRun), 10, 64)
	return vm, err == nil && pr > 0 && launchIDRE.MatchString(vm.LaunchID) && repoRE.MatchString(vm.Repo) && loginRE.MatchString(vm.Owner)
}
