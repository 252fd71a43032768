package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/packit/packit-launch/config"
)

// authorize decides whether user may do action to a VM owned by owner (""
// for a new launch) in repo, through config.Permit: the person's permission
// as GitHub reports it now, and the access rules of the repository's
// default branch. Every state-changing path, comment or button, calls it.
func authorize(ctx context.Context, gh *github.Client, cfg *config.Server, repo, user string, action config.Action, owner string) error {
	perm, err := permissionOf(ctx, gh, repo, user)
	if err != nil {
		return err
	}
	// Stopping never depends on the access rules (Permit ignores them), so
	// a broken config on the default branch cannot keep a VM running.
	var access *config.Access
	if action != config.ActionStop {
		if access, err = readAccess(ctx, gh, cfg, repo); err != nil {
			return err
		}
	}
	if r := config.Permit(access, action, user, perm, owner); r != nil {
		return r
	}
	return nil
}

// permissionOf is user's permission on repo as GitHub reports it now.
func permissionOf(ctx context.Context, gh *github.Client, repo, user string) (string, error) {
	owner, name, _ := strings.Cut(repo, "/")
	perm, _, err := gh.Repositories.GetPermissionLevel(ctx, owner, name, user)
	if err != nil {
		return "", fmt.Errorf("get permission: %w", err)
	}
	return perm.GetPermission(), nil
}

// readAccess reads the access rules from the repository's default branch
// (nil when it has no config there). Never from the PR's base branch: any
// writer could push a branch with looser rules and open a PR against it.
func readAccess(ctx context.Context, gh *github.Client, cfg *config.Server, repo string) (*config.Access, error) {
	owner, name, _ := strings.Cut(repo, "/")
	// No ref: GitHub reads the default branch.
	content, sha, err := contentsAt(ctx, gh, owner, name, config.RepoConfigPath, "")
	var large *fileTooLarge
	if errors.As(err, &large) {
		return nil, refuse("`%s` on the default branch cannot be read: %s, so I cannot tell who may use `/launch`. A maintainer needs to make it smaller there.", config.RepoConfigPath, large)
	}
	if err != nil || sha == "" {
		return nil, err
	}
	access, err := cfg.ParseAccess(content)
	var problems config.Problems
	if errors.As(err, &problems) {
		return nil, refuse("The `access` rules in `%s` on the default branch have problems, so I cannot tell who may use `/launch`; a maintainer needs to fix them there:\n\n- %s",
			config.RepoConfigPath, strings.Join(problems, "\n- "))
	}
	return access, err
}
