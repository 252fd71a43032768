package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/net/netutil"
	"golang.org/x/sync/errgroup"

	"github.com/packit/packit-launch/app"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/launchapi"
	"github.com/packit/packit-launch/provision/sshd"
	"github.com/packit/packit-launch/store"
	webview "github.com/packit/packit-launch/web"
)

// serve runs the bot: with web=true the webhook server and a worker, else a worker only.
// When the setup page writes the GitHub App's settings, it starts again
// with them, without a restart.
func serve(ctx context.Context, args []string, log *slog.Logger, web bool) error {
	name := "serve"
	if !web {
		name = "worker"
	}
	for {
		cfg, file, err := loadSettings(flag.NewFlagSet(name, flag.ContinueOnError), args)
		if err != nil {
			return err
		}
		env, _ := environment() // loadSettings has read it already
		setup, err := readSetupSettings(env)
		if err != nil {
			return &badSetup{err}
		}
		log.Info("config loaded", "file", orNone(file), "projects", len(cfg.Projects), "profiles", len(cfg.Profiles), "paused", cfg.Paused)
		err = runBot(ctx, bot{cfg: cfg, setup: setup}, log, web)
		if !errors.Is(err, errSettingsWritten) {
			return err
		}
		log.Info("starting again with the settings the setup page wrote")
	}
}

// bot is what runBot needs beyond the settings; the zero values are
// production's. The demo points AWS at moto and learns the address.
type bot struct {
	cfg         *config.Server
	awsEndpoint string
	awsCreds    aws.CredentialsProvider
	listening   func(addr string)
	// packitPollEvery, when set, replaces how often a launch waiting for
	// Packit's build looks (the demo does not wait a minute).
	packitPollEvery time.Duration
	setup           setupSettings // zero: no setup page
	// sshDialer, when set, reaches the VMs' port 22 (the demo's sshd).
	sshDialer sshd.Dialer
}

// runBot runs the bot until ctx ends, or until one of its parts fails:
// they run as a group, so a dead worker also stops intake (commands accepted
// with nothing to run them would wait unseen).
func runBot(ctx context.Context, b bot, log *slog.Logger, web bool) error {
	cfg := b.cfg
	missing := missingSettings(cfg)
	for _, m := range missing {
		log.Error("setting missing", "setting", m.Name, "how", m.How)
	}
	if len(cfg.Projects) == 0 {
		log.Warn(config.NothingTrusted)
	}
	if len(missing) > 0 {
		log.Error(fmt.Sprintf("%d setting(s) missing: the bot cannot act on commands until they are set (see README.md, Configuration)", len(missing)))
	}

	st, err := store.OpenWith(ctx, cfg.RedisURL.Reveal(), storeOptions(cfg), log)
	if errors.Is(err, store.ErrNoRedisURL) {
		return &badSetup{err}
	}
	if err != nil {
		return err
	}
	defer st.Close()
	if !web && st.Embedded() {
		return &badSetup{errors.New("REDIS_URL: a separate worker must share the server's Redis; set REDIS_URL to it")}
	}
	queueDepth := st.QueueCollector()
	if err := prometheus.Register(queueDepth); err == nil {
		defer prometheus.Unregister(queueDepth)
	}

	g, gctx := errgroup.WithContext(ctx)
	h := &health{}
	worker, launches, err := startWorker(gctx, g, b, st, h, web, log)
	if err != nil {
		return err
	}
	var pages []func(*mux.Router)
	if web {
		if pages, err = webPages(cfg, st, launches, log); err != nil {
			return &badSetup{err}
		}
	}
	var intake http.Handler
	if web {
		intake = newIntake(cfg, st, worker, h, log)
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	switch {
	case err != nil && web:
		return &badSetup{fmt.Errorf("LISTEN_ADDR %s: %w", cfg.ListenAddr, err)}
	case err != nil:
		// Probes and metrics only: the work matters more than them.
		log.Error("health and metrics endpoints not served", "err", fmt.Errorf("LISTEN_ADDR %s: %w", cfg.ListenAddr, err))
	default:
		log.Info("listening", "addr", ln.Addr().String(), "webhook", cfg.GitHub.WebhookPath, "webhook_served", intake != nil)
		b.announce(ln)
		routes := app.Routes(cfg.GitHub.WebhookPath, intake, h.ready(st, web), log, pages...)
		if web && b.setup.mode != "" {
			written := make(chan struct{})
			var once sync.Once
			routes = withSetup(routes, setupPage(cfg, b.setup, ln.Addr().String(), func() { once.Do(func() { close(written) }) }, log))
			g.Go(func() error {
				select {
				case <-written:
					return errSettingsWritten
				case <-gctx.Done():
					return nil
				}
			})
		}
		g.Go(func() error { return serveHTTP(gctx, ln, routes) })
	}
	return g.Wait()
}

// startWorker starts, in g, the worker (when the GitHub App settings are
// there), the lifecycle with its sweeper and setup check (when the Launch
// service settings are too), or an AWS-only sweeper. It returns nil when no
// worker runs here.
func startWorker(ctx context.Context, g *errgroup.Group, b bot, st *store.Store, h *health, web bool, log *slog.Logger) (*app.Worker, *app.Launches, error) {
	cfg := b.cfg
	cloud, awsOK, err := awsAccess(ctx, b, log)
	if err != nil {
		return nil, nil, &badSetup{err}
	}
	var awsReady <-chan struct{} // nil: AWS works already
	parts, err := newWorker(ctx, b, st, cloud, log)
	worker, launches, check := parts.worker, parts.launches, parts.check
	switch {
	case err != nil:
		return nil, nil, &badSetup{err}
	case worker == nil && !web:
		return nil, nil, &badSetup{errors.New("GITHUB_APP_ID and GITHUB_PRIVATE_KEY(_PATH) are needed to run a worker")}
	case worker == nil:
		h.down("worker", "the worker is not running: the GitHub App settings are missing", nil)
		log.Error("worker not started: GitHub App credentials are missing")
	}
	if cloud != nil && !awsOK {
		// Launching and the sweeper wait for the bot's AWS access; intake,
		// commands and running VMs' timers go on meanwhile.
		ready := make(chan struct{})
		if launches != nil {
			launches.Lifecycle().Block(awsBlocked)
		}
		g.Go(func() error {
			if waitForAWS(ctx, cloud, log) {
				close(ready)
				if launches != nil {
					launches.Lifecycle().Unblock()
					checkSetup(ctx, launches, check, log)
				}
			}
			return nil
		})
		awsReady = ready
	}
	if launches != nil {
		g.Go(func() error {
			if afterAWS(ctx, awsReady) {
				launches.Lifecycle().RunSweeper(ctx, cfg.SweepInterval.D())
			}
			return nil
		})
		g.Go(func() error { watchSetup(ctx, launches, check, cfg.SweepInterval.D(), log); return nil })
	} else if cloud != nil {
		// Launching is off here, but VMs launched before must still end.
		g.Go(func() error {
			if afterAWS(ctx, awsReady) {
				sweepAWSOnly(ctx, cfg, cloud, log)
			}
			return nil
		})
	}
	if worker == nil {
		return nil, nil, nil
	}
	// Commands and lifecycle work get a worker each: no amount of
	// lifecycle work (launches, looks at reservations, timers) delays a
	// command's 👀 and answer.
	cw := st.NewWorker(commandWorkers, log, store.QueueCommands)
	worker.Register(cw)
	runQueueWorker(ctx, g, h, "commands", cw)
	if launches != nil {
		lw := st.NewWorker(lifecycleWorkers, log, store.QueueLifecycle)
		launches.Register(lw)
		runQueueWorker(ctx, g, h, "lifecycle", lw)
	}
	g.Go(func() error { recoverDeliveries(ctx, app.NewRedeliverer(parts.inst, st, log, nil), log); return nil })
	log.Info("worker started", "launching", launches != nil)
	return worker, launches, nil
}

// webPages are the web view's pages, once it is set up and launching
// works (its forms act through the launches).
func webPages(cfg *config.Server, st *store.Store, launches *app.Launches, log *slog.Logger) ([]func(*mux.Router), error) {
	switch {
	case !cfg.WebOn():
		if cfg.Web.PublicURL != "" || cfg.Web.SessionKey != "" {
			log.Warn("web view not served: it needs PUBLIC_URL, GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET and SESSION_KEY")
		}
		return nil, nil
	case launches == nil:
		log.Warn("web view not served: launching is not set up here")
		return nil, nil
	}
	pages, err := webview.New(cfg, st, launches, log)
	if err != nil {
		return nil, err
	}
	log.Info("web view served", "url", cfg.Web.PublicURL+"/launches", "operators", len(cfg.Operators))
	return []func(*mux.Router){pages.Register}, nil
}

// How many jobs of each queue a process runs at once. Lifecycle jobs are
// short (no job waits on another service), so a few go far.
const (
	commandWorkers   = 10
	lifecycleWorkers = 10
)

// runQueueWorker runs qw in g; the process stops when it does.
func runQueueWorker(ctx context.Context, g *errgroup.Group, h *health, name string, qw *store.Worker) {
	g.Go(func() error {
		err := qw.Run(ctx)
		h.down("worker", "the "+name+" worker stopped", err)
		if err == nil && ctx.Err() == nil {
			err = errors.New("the " + name + " worker stopped")
		}
		return err
	})
}

// redeliverEvery is how often the App's failed deliveries are looked for:
// a command recovered within its first 30 minutes still runs.
const redeliverEvery = 5 * time.Minute

// recoverDeliveries asks GitHub to redeliver what it failed to deliver
// (the bot was down, a deploy, a 503): at once, then every redeliverEvery.
func recoverDeliveries(ctx context.Context, r *app.Redeliverer, log *slog.Logger) {
	pass := func(ctx context.Context) {
		if err := r.Run(ctx); err != nil {
			log.Warn("recover missed deliveries", "err", err)
		}
	}
	pass(ctx)
	provision.Every(ctx, redeliverEvery, pass)
}

// storeOptions are the store's settings from the server config: its
// retentions, Sentinel and how replicas confirm writes.
func storeOptions(cfg *config.Server) store.Options {
	c := cfg.RedisConfirm
	return store.Options{
		EndedRetention: cfg.Retention.EndedLaunches.D(), DeliveryTTL: cfg.Retention.Deliveries.D(),
		Sentinel: store.Sentinel{Addrs: cfg.RedisSentinel.Addrs, Master: cfg.RedisSentinel.Master, Password: cfg.RedisSentinel.Password.Reveal()},
		Confirm:  store.Confirm{Replicas: c.N(), Timeout: c.Timeout.D(), Required: c.Required},
	}
}

// newIntake is the webhook handler, or nil (and /readyz says why) when the
// webhook cannot be served: accepting commands nobody will run would lose
// them, and with an embedded store only this process's worker can run them.
func newIntake(cfg *config.Server, st *store.Store, worker *app.Worker, h *health, log *slog.Logger) http.Handler {
	switch secret := cfg.GitHub.WebhookSecret.Reveal(); {
	case secret == "":
		h.down("webhook", "the webhook endpoint is not served: GITHUB_WEBHOOK_SECRET is not set", nil)
		log.Error("webhook endpoint not served: GITHUB_WEBHOOK_SECRET is not set")
	case worker == nil && st.Embedded():
		h.down("webhook", "the webhook endpoint is not served: no worker can run commands", nil)
		log.Error("webhook endpoint not served: no worker can run commands (set the GitHub App credentials, or REDIS_URL for separate workers)")
	default:
		if strings.Contains(secret, ",") && cfg.GitHub.WebhookSecretPrevious == "" {
			log.Warn(commaSecret)
		}
		return app.NewIntake(secret, cfg.GitHub.WebhookSecretPrevious.Reveal(), st, st.Queue(), log).ConfirmWith(st.Confirm)
	}
	return nil
}

// commaSecret explains a webhook secret with a comma, which is used whole:
// before, OLD,NEW meant two secrets, and each half verified on its own.
const commaSecret = "GITHUB_WEBHOOK_SECRET contains a comma; it is used whole, as one secret. " +
	"If it is OLD,NEW from a rotation (the form before GITHUB_WEBHOOK_SECRET_PREVIOUS), " +
	"set GITHUB_WEBHOOK_SECRET=NEW and GITHUB_WEBHOOK_SECRET_PREVIOUS=OLD: until then deliveries signed with either are refused"

// health is what /readyz reports: the store answers and no part this
// process runs is down.
type health struct {
	mu    sync.Mutex
	parts map[string]*app.NotReady
}

func (h *health) down(part, why string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.parts == nil {
		h.parts = map[string]*app.NotReady{}
	}
	h.parts[part] = &app.NotReady{Part: why, Err: err}
}

func (h *health) ready(st *store.Store, web bool) func(context.Context) error {
	return func(ctx context.Context) error {
		// Ready means able to take webhooks: AWS and the Launch service are
		// not asked (their outages must not take intake out of service);
		// the log and /metrics tell of them. Every part not ready is named.
		var why []string
		var errs []error
		if err := st.Ping(ctx); err != nil {
			why, errs = append(why, "the state store (Redis) does not answer"), append(errs, err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, part := range []string{"webhook", "worker"} {
			if nr := h.parts[part]; nr != nil {
				why, errs = append(why, nr.Part), append(errs, nr.Err)
			}
		}
		if len(why) == 0 {
			return nil
		}
		return &app.NotReady{Part: strings.Join(why, "; "), Err: errors.Join(errs...)}
	}
}

// maxConnections bounds open connections, so that memory stays bounded
// whatever anyone sends (see BENCHMARKS.md): past it, new connections wait in
// the kernel's backlog until one ends. GitHub opens a few at a time.
const maxConnections = 512

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully.
// Timeouts are short: GitHub sends a delivery whole at once.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
	ln = netutil.LimitListener(ln, maxConnections)
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	// Startup's garbage (the config and its schema, the SDK's tables) goes
	// back to the OS now rather than over the scavenger's minutes: about
	// 1 MB of an idle replica's RSS (BENCHMARKS.md, "Resident memory").
	debug.FreeOSMemory()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (b bot) announce(ln net.Listener) {
	if b.listening != nil {
		b.listening(ln.Addr().String())
	}
}

// setupCheck asks the Launch service and AWS whether the setup works.
type setupCheck func(context.Context) error

// workerParts are what acts on GitHub's events in this process.
type workerParts struct {
	inst     *app.Installations
	worker   *app.Worker
	launches *app.Launches // nil while the Launch service settings are missing
	check    setupCheck
}

// newWorker returns no worker when the GitHub App credentials are missing,
// and no launches when the Launch service settings are.
func newWorker(ctx context.Context, b bot, st *store.Store, cloud *ec2.Cloud, log *slog.Logger) (workerParts, error) {
	cfg := b.cfg
	if cfg.GitHub.AppID == 0 || (cfg.GitHub.PrivateKey == "" && cfg.GitHub.PrivateKeyPath == "") {
		return workerParts{}, nil
	}
	key, err := privateKey(cfg)
	if err != nil {
		return workerParts{}, err
	}
	inst, err := app.NewInstallations(cfg.GitHub.AppID, key, cfg.GitHub.APIURL)
	if err != nil {
		return workerParts{}, err
	}
	launches, check, err := newLaunches(ctx, b, st, cloud, inst, log)
	if err != nil {
		return workerParts{}, err
	}
	var launcher app.Launcher // stays a nil interface without launches
	if launches != nil {
		launcher = launches
	}
	return workerParts{inst: inst, worker: app.NewWorker(cfg, inst, st, launcher, log), launches: launches, check: check}, nil
}

// newLaunches returns nil when the Launch service settings are missing; the
// worker then says so on the PR. Launching needs the bot's own AWS access
// too (cloud): without it nothing could end the VMs.
func newLaunches(ctx context.Context, b bot, st *store.Store, cloud *ec2.Cloud, inst *app.Installations, log *slog.Logger) (*app.Launches, setupCheck, error) {
	cfg, l := b.cfg, b.cfg.Launch
	switch {
	case !launchSettings(cfg):
		log.Error("launching disabled: Launch service settings are missing")
		return nil, nil, nil
	case len(cfg.Regions()) == 0:
		log.Error("launching disabled: no profile allows any region")
		return nil, nil, nil
	case cloud == nil:
		log.Error("launching disabled: the bot has no AWS access of its own, and nothing could end the VMs")
		return nil, nil, nil
	}
	api, err := newLaunchAPI(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	prov := provision.New(api, st, l.SourceID, provision.Options{Cloud: cloud, SSH: &sshd.Prober{Dialer: b.sshDialer}}, log)
	launches := app.NewLaunches(cfg, st, prov, inst, log)
	if b.packitPollEvery > 0 {
		launches.Lifecycle().PackitPollEvery = b.packitPollEvery
	}
	check := func(ctx context.Context) error {
		return provision.CheckSetup(ctx, api, l.SourceID, l.CredentialsSetting(), cloud)
	}
	checkSetup(ctx, launches, check, log) // before the first command is taken
	return launches, check, nil
}

// watchSetup checks the setup again until ctx ends: every interval while
// it passes, and with a growing pause from 10 s while it does not (a blip
// of the Launch service or STS at start must not keep launching off long).
func watchSetup(ctx context.Context, launches *app.Launches, check setupCheck, every time.Duration, log *slog.Logger) {
	pause := min(10*time.Second, every)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		if checkSetup(ctx, launches, check, log) {
			pause = every
		} else {
			pause = min(2*pause, every)
		}
	}
}

// checkSetup blocks new launches while the Launch source or the AWS account
// is certainly wrong (the lifecycle of running VMs goes on), and lets them
// through again once fixed; an uncertain failure changes nothing. It
// reports whether the check passed.
func checkSetup(ctx context.Context, launches *app.Launches, check setupCheck, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var setup *provision.SetupError
	switch err := check(ctx); {
	case errors.As(err, &setup):
		if launches.Lifecycle().Block(setup.Problem) {
			log.Error("new launches refused until the setup is fixed (checked again with a growing pause, then every sweep interval): " + setup.Problem)
		}
	case err != nil:
		log.Warn("could not finish checking the Launch source and AWS account", "err", err)
	default:
		if launches.Lifecycle().Unblock() {
			log.Info("setup check passes again; launching")
		}
		return true
	}
	return false
}

// launchSettings reports whether the Launch service settings are there.
func launchSettings(cfg *config.Server) bool {
	l := cfg.Launch
	return l.SourceID != "" && (l.ClientID != "" || l.OfflineToken != "" || l.Identity != "")
}

// newLaunchAPI is the Launch service client the settings describe.
func newLaunchAPI(cfg *config.Server, log *slog.Logger) (*launchapi.Client, error) {
	l := cfg.Launch
	api, err := launchapi.New(launchapi.Config{
		BaseURL: l.APIURL, TokenURL: l.TokenURL,
		ClientID: l.ClientID, ClientSecret: l.ClientSecret.Reveal(), OfflineToken: l.OfflineToken.Reveal(), Identity: l.Identity.Reveal(),
		Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("launch service settings: %w", err)
	}
	return api, nil
}

// newCloud is the bot's own AWS access in every region a profile allows.
func newCloud(ctx context.Context, b bot) (*ec2.Cloud, error) {
	cfg := b.cfg
	cloud, err := ec2.New(ctx, ec2.Config{Regions: cfg.Regions(), RoleARN: cfg.AWS.RoleARN, ExternalID: cfg.AWS.ExternalID.Reveal(),
		Endpoint: b.awsEndpoint, Credentials: b.awsCreds})
	if err != nil {
		return nil, fmt.Errorf("AWS settings: %w", err)
	}
	return cloud, nil
}

// sweeperRunning says whether this replica sweeps AWS: 0 when it has no
// AWS access (see the log and /readyz).
var sweeperRunning = promauto.NewGauge(prometheus.GaugeOpts{
	Name: "packit_launch_sweeper_running",
	Help: "1 while this replica sweeps AWS for VMs past their time; 0 when it cannot (no AWS credentials, or no region configured).",
})

// awsAccess is the bot's own AWS access (nil when no profile names a
// region) and whether its credentials work now. When they do not, that is
// said once (the log, sweeperRunning) rather than an SDK error every sweep,
// and waitForAWS checks again.
func awsAccess(ctx context.Context, b bot, log *slog.Logger) (*ec2.Cloud, bool, error) {
	if len(b.cfg.Regions()) == 0 {
		return nil, false, nil
	}
	cloud, err := newCloud(ctx, b)
	if err != nil {
		return nil, false, err
	}
	if err := cloud.CheckCredentials(ctx); err != nil {
		log.Error("the sweeper and launching wait for the bot's AWS access (checked again with a growing pause, up to every 5 minutes): " + err.Error())
		return cloud, false, nil
	}
	sweeperRunning.Set(1)
	return cloud, true, nil
}

// awsBlocked is why new launches wait while the bot's AWS access does not work.
const awsBlocked = "the bot's own AWS access does not work yet (see the log): nothing could end the VMs"

// waitForAWS checks the bot's AWS credentials with a growing pause until
// they work (true) or ctx ends (false): a blip of STS at start, or
// credentials that appear later (a pod's role), need no restart.
func waitForAWS(ctx context.Context, cloud *ec2.Cloud, log *slog.Logger) bool {
	pause := 5 * time.Second
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
		err := cloud.CheckCredentials(ctx)
		if err == nil {
			log.Info("the bot's AWS access works now: the sweeper and launching start")
			sweeperRunning.Set(1)
			return true
		}
		log.Debug("the bot's AWS access still does not work", "err", err)
		pause = min(2*pause, 5*time.Minute)
	}
}

// afterAWS waits until ready is closed (nil: at once); false when ctx ends first.
func afterAWS(ctx context.Context, ready <-chan struct{}) bool {
	if ready == nil {
		return true
	}
	select {
	case <-ready:
		return true
	case <-ctx.Done():
		return false
	}
}

// sweepAWSOnly ends overdue VMs from their tags alone, for a replica that
// cannot launch (no Launch service or GitHub settings).
func sweepAWSOnly(ctx context.Context, cfg *config.Server, cloud *ec2.Cloud, log *slog.Logger) {
	prov := provision.New(nil, nil, "", provision.Options{Cloud: cloud}, log)
	pol := provision.PolicyFor(cfg)
	sweep := func(ctx context.Context) {
		if _, err := prov.Sweep(ctx, cfg.Regions(), pol, time.Now()); err != nil {
			log.Error("sweep", "err", err)
		}
	}
	sweep(ctx)
	provision.Every(ctx, cfg.SweepInterval.D(), sweep)
}
