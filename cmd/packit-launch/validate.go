package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/packit/packit-launch/app"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/store"
)

// validate checks a server config and, optionally, a repo config as the
// bot would judge it for a given repository; with --online it also asks
// GitHub, the Launch service and AWS whether the settings work.
func validate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("config validate", flag.ContinueOnError)
	repoFile := fs.String("repo", "", "a .packit-launch.yaml to check")
	repoName := fs.String("for", "", "the OWNER/NAME the repo config belongs to")
	online := fs.Bool("online", false, "also check the settings against GitHub, the Launch service and AWS")
	cfg, file, err := loadSettings(fs, args)
	if cfg != nil && len(cfg.Projects) == 0 {
		// First: the one problem that makes every other moot.
		if err != nil {
			return &badSetup{fmt.Errorf("%s\n%w", config.NothingTrusted, err)}
		}
		return &badSetup{errors.New(config.NothingTrusted)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "server config %s: ok (%d projects, %d profiles)\n", orNone(file), len(cfg.Projects), len(cfg.Profiles))
	for _, m := range missingSettings(cfg) {
		fmt.Fprintf(stdout, "  not set: %s\n", m)
	}
	switch {
	case *repoFile != "" && *repoName == "":
		return &badSetup{errors.New("--repo needs --for OWNER/NAME: the repository the file belongs to, whose project decides the profiles it may use")}
	case *repoFile == "" && *repoName != "":
		return &badSetup{errors.New("--for needs --repo FILE: the .packit-launch.yaml to check for that repository")}
	case *repoFile != "":
		project, ok := cfg.ProjectFor(*repoName)
		if !ok {
			return &badSetup{fmt.Errorf("--for %s: no project of this config trusts that repository (see projects[].repos)", *repoName)}
		}
		data, err := os.ReadFile(*repoFile)
		if err != nil {
			return &badSetup{fmt.Errorf("--repo: %w", err)}
		}
		if _, err := cfg.ParseRepo(data, project); err != nil {
			return &badSetup{fmt.Errorf("%s: %w", *repoFile, err)}
		}
		fmt.Fprintf(stdout, "repo config %s for %s: ok\n", *repoFile, *repoName)
	}
	if !*online {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if failed := checkOnline(ctx, cfg, stdout); failed > 0 {
		return &badSetup{fmt.Errorf("%d online check(s) failed", failed)}
	}
	return nil
}

// checkOnline prints one line per check, ✓ or ✗ with what to do, and
// returns how many failed. Checks whose settings are missing are skipped
// (the list above names them).
func checkOnline(ctx context.Context, cfg *config.Server, out io.Writer) (failed int) {
	report := func(what string, err error) {
		if err != nil {
			failed++
			fmt.Fprintf(out, "✗ %s: %v\n", what, err)
			return
		}
		fmt.Fprintf(out, "✓ %s\n", what)
	}
	if cfg.GitHub.AppID != 0 && (cfg.GitHub.PrivateKey != "" || cfg.GitHub.PrivateKeyPath != "") {
		report(checkGitHubApp(ctx, cfg))
	}
	if cfg.RedisURL != "" || len(cfg.RedisSentinel.Addrs) > 0 {
		report(checkRedis(ctx, cfg))
	}
	if len(cfg.Regions()) == 0 {
		return failed
	}
	cloud, err := newCloud(ctx, bot{cfg: cfg})
	if err != nil {
		report("AWS access", err)
		return failed
	}
	for _, region := range cfg.Regions() {
		groups, templates := profileResources(cfg, region)
		vms, err := cloud.ListManaged(ctx, region)
		report(fmt.Sprintf("AWS %s: the bot can list its VMs (%d running)", region, len(vms)), awsProblem(region, err))
		if err != nil {
			continue // the region's other checks would fail the same way
		}
		perms, err := cloud.CheckPermissions(ctx, region, groups, templates)
		if err == nil && !perms.CreatePerLaunchTemplate {
			err = errors.New("it may not create its per-launch launch templates: attach deploy/iam-policy.json")
		}
		report(fmt.Sprintf("AWS %s: the bot may create its per-launch templates", region), err)
		if extra := perms.BootstrapOnly(); err == nil && len(extra) > 0 {
			// A warning, not a failure: it works, with more than it needs.
			fmt.Fprintf(out, "⚠ AWS %s: bootstrap permissions present (%s): the bot should not run with these. "+
				"Give it deploy/iam-policy.json and keep deploy/iam-bootstrap-policy.json for `packit-launch aws bootstrap`\n", region, strings.Join(extra, ", "))
		} else if err == nil {
			fmt.Fprintf(out, "✓ AWS %s: no bootstrap permissions (the run-time policy)%s\n", region, uncheckedNote(perms.Unchecked))
		}
		for _, name := range profilesIn(cfg, region) {
			ids := cfg.Profiles[name].In(region)
			if ids.LaunchTemplateID == "" && len(ids.SecurityGroupIDs) == 0 && ids.SubnetID == "" {
				continue
			}
			found, err := cloud.CheckIDs(ctx, region, ids.LaunchTemplateID, ids.SecurityGroupIDs, ids.SubnetID)
			if err == nil && len(found.Missing) > 0 {
				err = fmt.Errorf("not in %s: %s (ids are regional: run `packit-launch aws bootstrap --profile %s` and use the ids it prints for %s)", region, strings.Join(found.Missing, ", "), name, region)
			}
			report(fmt.Sprintf("AWS %s: profile %s's ids exist%s", region, name, uncheckedNote(found.Unchecked)), err)
		}
	}
	if !launchSettings(cfg) {
		return failed
	}
	l := cfg.Launch
	api, err := newLaunchAPI(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		report("Launch service settings", err)
		return failed
	}
	report(fmt.Sprintf("Launch source %s works and launches into the AWS account the bot can reach", l.SourceID), provision.CheckSetup(ctx, api, l.SourceID, l.CredentialsSetting(), cloud))
	return failed
}

// profileResources are the profiles' security groups and base templates in
// region, which the permission check tries its dry runs on.
func profileResources(cfg *config.Server, region string) (groups, templates []string) {
	for _, name := range profilesIn(cfg, region) {
		ids := cfg.Profiles[name].In(region)
		groups = append(groups, ids.SecurityGroupIDs...)
		if ids.LaunchTemplateID != "" {
			templates = append(templates, ids.LaunchTemplateID)
		}
	}
	return groups, templates
}

// profilesIn names the profiles that allow region, sorted.
func profilesIn(cfg *config.Server, region string) []string {
	var names []string
	for name, p := range cfg.Profiles {
		if slices.Contains(p.Regions, region) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// awsProblem words a failed AWS call for the operator: a region AWS does
// not have cannot be reached at all, which is not a refusal.
func awsProblem(region string, err error) error {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return fmt.Errorf("could not reach EC2 in %s: its endpoint does not resolve; is %s an AWS region your account has enabled?", region, region)
	}
	return err
}

func uncheckedNote(unchecked []string) string {
	if len(unchecked) == 0 {
		return ""
	}
	return " (not checked: " + strings.Join(unchecked, "; ") + ")"
}

// checkRedis connects as serve does (REDIS_URL, or the Sentinels) and
// checks that the primary has the replicas redis_confirm asks for.
func checkRedis(ctx context.Context, cfg *config.Server) (string, error) {
	what := "Redis (REDIS_URL)"
	if s := cfg.RedisSentinel; len(s.Addrs) > 0 {
		what = fmt.Sprintf("Redis primary %q through Sentinels %s", s.Master, strings.Join(s.Addrs, ","))
	}
	st, err := store.OpenWith(ctx, cfg.RedisURL.Reveal(), storeOptions(cfg), slog.New(slog.DiscardHandler))
	if err != nil {
		return what, err
	}
	defer st.Close()
	role, replicas, err := st.Replication(ctx)
	if err != nil {
		return what, err
	}
	what = fmt.Sprintf("%s: %s with %d replica(s)", what, role, replicas)
	if role != "master" {
		return what, errors.New("the bot would write to a replica: point REDIS_URL at the primary, or use Sentinel")
	}
	if want := cfg.RedisConfirm.N(); replicas < want {
		return what, fmt.Errorf("redis_confirm.replicas is %d: every confirmation would wait %s and fail; lower it or add replicas", want, cfg.RedisConfirm.Timeout)
	}
	return what, nil
}

func checkGitHubApp(ctx context.Context, cfg *config.Server) (string, error) {
	key, err := privateKey(cfg)
	if err != nil {
		return "GitHub App", err
	}
	inst, err := app.NewInstallations(cfg.GitHub.AppID, key, cfg.GitHub.APIURL)
	if err != nil {
		return "GitHub App", err
	}
	a, n, err := inst.App(ctx)
	if err != nil {
		return "GitHub App", err
	}
	what := fmt.Sprintf("GitHub App %q (id %d), installed %d time(s)", a.GetSlug(), a.GetID(), n)
	if problems := app.AppProblems(a); len(problems) > 0 {
		return what, fmt.Errorf("fix in the App's settings on GitHub (see app.yml): %s", strings.Join(problems, "; "))
	}
	if n == 0 {
		return what, errors.New("install the App on the repositories it should serve")
	}
	return what, nil
}
