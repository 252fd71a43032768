package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/packit/packit-launch/mdsafe"
)

// Action is a state-changing request.
type Action string

const (
	ActionLaunch Action = "launch"
	ActionExtend Action = "extend" // comment or Extend button
	ActionStop   Action = "stop"   // comment or Terminate button
)

// Permit decides whether user, holding permission (GitHub's raw value:
// admin, maintain, write, triage, read, none) on the repository, may do
// action on a VM owned by owner ("" for a new launch), under the
// repository's access rules. nil means allowed; a Refusal's Reason addresses
// the user (the caller mentions them), says why and what to do, and
// mentions nobody.
//
// access must come from the repository's DEFAULT branch (nil when it has no
// config there): a writer could otherwise push a looser base branch and
// open a pull request against it.
//
// The rules: launching takes write (or admin) and the access rules. Extending
// costs money, so it takes the same as launching, for the VM's owner, or an
// admin for anyone's VM. Stopping never costs money or exposes anything, so
// the owner may always stop their own VM, and an admin anyone's.
func Permit(access *Access, action Action, user, permission, owner string) *Refusal {
	permission = NormalizePermission(permission)
	isOwner := owner != "" && strings.EqualFold(user, owner)
	switch action {
	case ActionLaunch:
		return mayLaunch(access, user, permission, "`/launch`")
	case ActionExtend:
		if permission == "admin" {
			return nil
		}
		if !isOwner {
			return refuse("%s; only its owner or a repository admin can extend it.", notYours(owner))
		}
		return mayLaunch(access, user, permission, "Extending a VM")
	case ActionStop:
		if permission == "admin" || isOwner {
			return nil
		}
		return refuse("%s; only its owner or a repository admin can stop it.", notYours(owner))
	}
	return refuse("%s is not something I can check access for; please report this to the operators of this packit-launch instance.", mdsafe.Code(string(action)))
}

// notYours says whose VM it is, without notifying them.
func notYours(owner string) string {
	if owner == "" {
		return "This VM is not yours"
	}
	return "This VM is " + mdsafe.Login(owner) + "'s"
}

// mayLaunch applies the rules for starting or prolonging a VM: write access,
// narrowed by the repository's access rules. what names the action in the
// reason.
func mayLaunch(access *Access, user, permission, what string) *Refusal {
	if permission != "admin" && permission != "write" {
		have := permission + " access"
		if permission == "none" {
			have = "no access"
		}
		return refuse("%s needs write access to this repository, and you have %s. "+
			"Ask a maintainer to do it for you, or to grant you write access.", what, have)
	}
	if access == nil {
		return nil
	}
	if access.AdminsOnly && permission != "admin" {
		return refuse("This repository lets only its admins use `/launch` (`access.admins_only` in `%s` on its default branch).", RepoConfigPath)
	}
	if len(access.Users) > 0 && !slices.ContainsFunc(access.Users, func(u string) bool { return strings.EqualFold(u, user) }) {
		return refuse("This repository lets only the people listed under `access.users` in `%s` use `/launch`. "+
			"Ask a maintainer to add you there (on the repository's default branch).", RepoConfigPath)
	}
	return nil
}

// ParseAccess reads only the access section of a repo config, as found on
// the repository's default branch. Other keys are not checked here (ParseRepo
// does that on the base branch); unknown keys inside access are, since a
// misspelt rule would silently allow more than meant. An empty file or one
// without an access section gives nil, nil.
func (s *Server) ParseAccess(data []byte) (*Access, error) {
	var doc struct {
		Access yaml.Node `yaml:"access"`
	}
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, decodeProblems(err)
	}
	n := &doc.Access
	if n.Kind == 0 || n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, Problems{fmt.Sprintf("`access`: line %d: write a mapping with `admins_only` and/or `users`", n.Line)}
	}
	a := &Access{}
	var problems Problems
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		var err error
		switch key.Value {
		case "admins_only":
			err = value.Decode(&a.AdminsOnly)
		case "users":
			err = value.Decode(&a.Users)
		default:
			problems.add("%s: line %d: unknown key", mdsafe.Code("access."+key.Value), key.Line)
			continue
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				problems.add("%s: %s", mdsafe.Code("access."+key.Value), typeProblem(e))
			}
		} else if err != nil {
			problems.add("%s: %s", mdsafe.Code("access."+key.Value), mdsafe.Code(err.Error()))
		}
	}
	checkAccess(*a, &problems)
	if err := problems.err(); err != nil {
		return nil, err
	}
	return a, nil
}
