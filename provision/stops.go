package provision

import (
	"strings"
	"time"

	"github.com/packit/packit-launch/commands"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/mdsafe"
	"github.com/packit/packit-launch/store"
)

// StoppedBy is the end reason of a VM someone stopped: shown on the PR to
// its owner, so it names the person without mentioning them.
func StoppedBy(user string) string { return mdsafe.Login(user) + " stopped it" }

// PickStops is what a /launch stop by user applies to among a PR's
// launches: target "" their own, commands.StopAll every one, else the
// launch of that id. A retried or held command (received at receivedAt)
// answers for what its first attempt stopped. Nothing to stop is a
// refusal that says so.
func PickStops(launches []*store.Launch, user, target string, receivedAt time.Time) ([]*store.Launch, error) {
	var picked []*store.Launch
	for _, l := range launches {
		mine := strings.EqualFold(l.Owner, user)
		stoppedByThis := l.State == store.StateEnded && l.EndReason == StoppedBy(user) && !receivedAt.IsZero() && !l.EndedAt.Before(receivedAt)
		if (!l.State.Ended() || stoppedByThis) && (target == "" && mine || target == commands.StopAll || strings.EqualFold(target, l.ID)) {
			picked = append(picked, l)
		}
	}
	if len(picked) == 0 {
		if target != "" && target != commands.StopAll {
			return nil, refuse("There is no running VM %s on this pull request. `/launch status` lists its VMs.", mdsafe.Code(target))
		}
		return nil, refuse("There is no running VM of yours on this pull request. `/launch status` lists its VMs.")
	}
	return picked, nil
}

// PermitStops keeps the picked launches user may stop with their
// repository permission perm (config.Permit: others' need an admin). For
// "all" from someone who is not an admin, that is all of their own.
func PermitStops(picked []*store.Launch, user, target, perm string) ([]*store.Launch, error) {
	var allowed []*store.Launch
	for _, l := range picked {
		if r := config.Permit(nil, config.ActionStop, user, perm, l.Owner); r != nil {
			if target != commands.StopAll {
				return nil, r
			}
			continue
		}
		allowed = append(allowed, l)
	}
	if len(allowed) == 0 {
		return nil, refuse("There is no running VM of yours on this pull request. `/launch status` lists its VMs.")
	}
	return allowed, nil
}
