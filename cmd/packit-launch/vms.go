package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/packit/packit-launch/app"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/store"
)

// vms lists or terminates the bot's VMs in AWS: the operator's view, which
// needs neither GitHub nor Redis (with them, it also tells the PRs and ends
// the launches' records).
func vms(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "terminate") {
		return &badSetup{errors.New("vms takes list or terminate: packit-launch vms list | vms terminate LAUNCH-OR-INSTANCE-ID... | vms terminate --all")}
	}
	fs := flag.NewFlagSet("vms "+args[0], flag.ContinueOnError)
	var all *bool
	if args[0] == "terminate" {
		all = fs.Bool("all", false, "terminate every VM the bot manages")
	}
	cfg, _, err := loadSettings(fs, args[1:])
	if err != nil {
		return err
	}
	if len(cfg.Regions()) == 0 {
		return &badSetup{errors.New("the config has no profile with regions: nothing to look at")}
	}
	cloud, err := operatorCloud(ctx, cfg)
	if err != nil {
		return err
	}
	var live []ec2.Instance
	for _, region := range cloud.Regions() {
		in, err := cloud.ListManaged(ctx, region)
		if err != nil {
			return fmt.Errorf("could not list the bot's VMs in %s: %w", region, awsProblem(region, err))
		}
		live = append(live, in...)
	}
	if args[0] == "list" {
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "LAUNCH\tINSTANCE\tREGION\tSTATE\tREPO\tPR\tOWNER\tEXPIRES")
		for _, in := range live {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(in.Tags.Get(ec2.TagLaunch)), in.ID, in.Region, in.State,
				orDash(in.Tags.Get(ec2.TagRepo)), orDash(in.Tags.Get(ec2.TagPR)), orDash(in.Tags.Get(ec2.TagOwner)), orDash(in.Tags.Get(ec2.TagExpiresAt)))
		}
		return w.Flush()
	}
	ids := fs.Args()
	if len(ids) > 0 && args[0] == "list" {
		return &badSetup{fmt.Errorf("vms list takes no ids (%s): it lists every VM of the bot", strings.Join(ids, " "))}
	}
	if *all == (len(ids) > 0) {
		return &badSetup{errors.New("vms terminate: give launch or instance ids, or --all")}
	}
	var errs []error
	var ended []ec2.Instance
	for _, id := range ids {
		if !terminateMatching(ctx, cloud, live, id, stdout, &errs, &ended) {
			errs = append(errs, fmt.Errorf("%s: no live VM of the bot has this launch or instance id", id))
		}
	}
	if *all {
		for _, in := range live {
			terminateMatching(ctx, cloud, []ec2.Instance{in}, in.ID, stdout, &errs, &ended)
		}
	}
	// Every VM first; then their records and their PRs, within a bound.
	tellCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	endRecords(tellCtx, cfg, ended, stdout)
	tell := prTeller(tellCtx, cfg, stdout)
	for _, in := range ended {
		tell(in)
	}
	return errors.Join(errs...)
}

func terminateMatching(ctx context.Context, cloud *ec2.Cloud, live []ec2.Instance, id string, stdout io.Writer, errs *[]error, ended *[]ec2.Instance) bool {
	found := false
	for _, in := range live {
		if in.ID != id && !strings.EqualFold(in.Tags.Get(ec2.TagLaunch), id) {
			continue
		}
		found = true
		if err := cloud.Terminate(ctx, in.Region, in.ID); err != nil {
			*errs = append(*errs, err)
			continue
		}
		fmt.Fprintf(stdout, "terminated %s (launch %s) in %s\n", in.ID, orDash(in.Tags.Get(ec2.TagLaunch)), in.Region)
		*ended = append(*ended, in)
	}
	return found
}

// operatorEnded is the end reason of a VM an operator terminated.
const operatorEnded = "an operator terminated it"

// endRecords ends the launch records of the VMs an operator terminated,
// when the bot's Redis is named (REDIS_URL): their quotas are free at once
// and /launch status tells the truth. Without it the sweeper settles them
// within a sweep interval.
func endRecords(ctx context.Context, cfg *config.Server, ended []ec2.Instance, stdout io.Writer) {
	if len(ended) == 0 {
		return
	}
	url := cfg.RedisURL.Reveal()
	if url == "" && len(cfg.RedisSentinel.Addrs) == 0 {
		fmt.Fprintln(stdout, "(REDIS_URL is not set: the bot's sweeper ends these launches' records within a sweep interval)")
		return
	}
	st, err := store.OpenWith(ctx, url, storeOptions(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintf(stdout, "cannot end the launches' records (the sweeper will): %v\n", err)
		return
	}
	defer st.Close()
	for _, in := range ended {
		id := in.Tags.Get(ec2.TagLaunch)
		if id == "" {
			continue
		}
		if done, err := provision.EndRecord(ctx, st, id, in.ID, operatorEnded, time.Now()); err != nil {
			fmt.Fprintf(stdout, "cannot end launch %s's record (the sweeper will): %v\n", id, err)
		} else if done {
			fmt.Fprintf(stdout, "ended launch %s's record\n", id)
		}
	}
}

// prTeller tells a terminated VM's PR from its tags, when the GitHub App
// settings are there; the VM is ended either way, and a PR that cannot be
// told is only reported. (A VM with a record is settled by the sweeper too.)
func prTeller(ctx context.Context, cfg *config.Server, stdout io.Writer) func(ec2.Instance) {
	noop := func(ec2.Instance) {}
	if cfg.GitHub.AppID == 0 || (cfg.GitHub.PrivateKey == "" && cfg.GitHub.PrivateKeyPath == "") {
		fmt.Fprintln(stdout, "(the GitHub App settings are not set: the PRs of terminated VMs are told by the bot's sweeper only if it has their records)")
		return noop
	}
	key, err := privateKey(cfg)
	if err != nil {
		fmt.Fprintf(stdout, "cannot tell PRs: %v\n", err)
		return noop
	}
	inst, err := app.NewInstallations(cfg.GitHub.AppID, key, cfg.GitHub.APIURL)
	if err != nil {
		fmt.Fprintf(stdout, "cannot tell PRs: %v\n", err)
		return noop
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return func(in ec2.Instance) {
		vm, ok := provision.EndedVMFromTags(in.ID, in.Tags, time.Now(), operatorEnded)
		if !ok {
			return
		}
		gh, bot, err := inst.ForRepo(ctx, vm.Repo)
		if err == nil {
			err = app.TellEnded(ctx, gh, bot, vm, log)
		}
		if err != nil {
			fmt.Fprintf(stdout, "could not tell %s#%d: %v\n", vm.Repo, vm.PR, err)
			return
		}
		fmt.Fprintf(stdout, "told %s#%d\n", vm.Repo, vm.PR)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// awsBootstrap creates a profile's SSH-only security group and base launch
// template in each of its regions, and prints the config lines to use.
func awsBootstrap(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("aws bootstrap", flag.ContinueOnError)
	profile := fs.String("profile", "", "the profile to bootstrap (required)")
	cidrs := fs.String("ssh-cidr", "0.0.0.0/0", "comma-separated CIDRs allowed to reach SSH")
	vpc := fs.String("vpc", "", "VPC id (default: the region's default VPC)")
	cfg, _, err := loadSettings(fs, args)
	if err != nil {
		return err
	}
	p, ok := cfg.Profiles[*profile]
	if !ok {
		return &badSetup{fmt.Errorf("--profile %q: no such profile in the config (profiles: %s)", *profile, strings.Join(slices.Sorted(maps.Keys(cfg.Profiles)), ", "))}
	}
	if *vpc != "" && len(p.Regions) > 1 {
		return &badSetup{fmt.Errorf("--vpc: a VPC is regional and profile %s has %d regions; bootstrap it with each region's default VPC, or give the profile one region", *profile, len(p.Regions))}
	}
	cloud, err := operatorCloud(ctx, cfg)
	if err != nil {
		return err
	}
	var block strings.Builder
	for _, region := range p.Regions {
		res, err := cloud.Bootstrap(ctx, region, ec2.BootstrapInput{Profile: *profile, VPCID: *vpc, SSHCIDRs: strings.Split(*cidrs, ",")})
		if err != nil {
			return fmt.Errorf("could not bootstrap profile %s in %s: %w", *profile, region, awsProblem(region, err))
		}
		fmt.Fprintf(stdout, "%s: security group %s, base launch template %s\n", region, res.SecurityGroupID, res.LaunchTemplateID)
		fmt.Fprintf(&block, "      %s: {launch_template_id: %s, security_group_ids: [%s]}\n", region, res.LaunchTemplateID, res.SecurityGroupID)
	}
	fmt.Fprintf(stdout, "\nIn the server config, profile %s's regions with their ids (its other settings stay):\n\n", *profile)
	fmt.Fprintf(stdout, "profiles:\n  %s:\n    regions:\n%s", *profile, block.String())
	return nil
}

// operatorCloud is the AWS access of an operator's command, whose
// credentials are checked first: their problem is said as serve says it,
// not as the SDK's error on the first call.
func operatorCloud(ctx context.Context, cfg *config.Server) (*ec2.Cloud, error) {
	cloud, err := newCloud(ctx, bot{cfg: cfg})
	if err != nil {
		return nil, &badSetup{err}
	}
	if err := cloud.CheckCredentials(ctx); errors.Is(err, ec2.ErrAWSUnreachable) {
		return nil, err
	} else if err != nil {
		return nil, &badSetup{err}
	}
	return cloud, nil
}
