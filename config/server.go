package config

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults from DESIGN.md's operator interface.
const (
	DefaultGitHubAPIURL = "https://api.github.com/"
	DefaultWebhookPath  = "/api/github/webhooks"
	DefaultListenAddr   = "127.0.0.1:3000"
	DefaultUntrusted    = "This repository is not among the projects this packit-launch instance trusts, so `/launch` does nothing here. " +
		"Ask the operators of this instance to add it to their configuration."
)

// The shortest intervals a server config may set: shorter ones would load
// AWS or Redis for nothing. Tests that need time to pass faster set the
// parts' own options instead.
const (
	MinSweepInterval = 10 * time.Second
	MinSweepGrace    = 5 * time.Minute
	MinRetention     = time.Minute
)

// NothingTrusted says that a config lists no projects.
const NothingTrusted = "nothing trusted: the config lists no projects, so every /launch gets the untrusted answer; " +
	"list the repositories this instance serves under projects (see examples/packit-launch.yaml)"

// Server is the operator's configuration: settings and policy.
type Server struct {
	ListenAddr string `yaml:"listen_addr"`
	// RedisURL empty means an embedded, non-durable store (unless
	// RedisSentinel names Sentinels: then it gives the data nodes'
	// password, db and TLS only).
	RedisURL Secret `yaml:"redis_url"`
	// RedisSentinel finds the Redis primary through Redis Sentinel.
	RedisSentinel RedisSentinel `yaml:"redis_sentinel"`
	// RedisConfirm is how the bot asks replicas to confirm a write before it
	// acts outside Redis on it.
	RedisConfirm RedisConfirm `yaml:"redis_confirm"`
	// Paused answers every new /launch with PausedMessage.
	Paused        bool   `yaml:"paused"`
	PausedMessage string `yaml:"paused_message"`
	// UntrustedMessage is the one comment an untrusted project's PR gets.
	UntrustedMessage string `yaml:"untrusted_message"`

	GitHub GitHub       `yaml:"github"`
	Launch Launch       `yaml:"launch"`
	AWS    AWS          `yaml:"aws"`
	Packit PackitConfig `yaml:"packit"`

	Limits   Limits             `yaml:"limits"`
	Profiles map[string]Profile `yaml:"profiles"`
	Projects []Project          `yaml:"projects"`

	// SweepInterval is how often every replica checks AWS for VMs past their expiry.
	SweepInterval Duration `yaml:"sweep_interval"`
	// SweepGrace is how long a managed VM without a readable expiry may live.
	SweepGrace Duration `yaml:"sweep_grace"`

	Retention Retention `yaml:"retention"`

	// Operators are the GitHub logins who see the web view's fleet page.
	Operators []string `yaml:"operators"`
	// Web is the web view: the launches pages, behind GitHub login.
	Web Web `yaml:"web"`
}

// Web is the web view's settings; it is served once PublicURL, the App's
// client id and secret and SessionKey are all set.
type Web struct {
	// PublicURL is the bot's public address (PUBLIC_URL): GitHub sends
	// people back to PublicURL/login/callback.
	PublicURL string `yaml:"public_url"`
	// SessionKey signs and seals session cookies (SESSION_KEY, at least
	// 32 bytes; `openssl rand -hex 32`).
	SessionKey Secret `yaml:"session_key"`
}

// MinSessionKey is the shortest SESSION_KEY taken.
const MinSessionKey = 32

// WebOn reports whether the web view is set up.
func (s *Server) WebOn() bool {
	return s.Web.PublicURL != "" && s.Web.SessionKey != "" && s.GitHub.ClientID != "" && s.GitHub.ClientSecret != ""
}

// IsOperator reports whether login is one of the operators.
func (s *Server) IsOperator(login string) bool {
	return slices.ContainsFunc(s.Operators, func(o string) bool { return strings.EqualFold(o, login) })
}

// RedisSentinel is a Redis primary found through Sentinel.
type RedisSentinel struct {
	// Addrs are the Sentinels' host:port; empty means no Sentinel.
	Addrs    []string `yaml:"addrs"`
	Master   string   `yaml:"master"`
	Password Secret   `yaml:"password"`
}

// RedisConfirm asks Redis replicas (WAIT) to confirm the bot's last writes
// before it acts on them outside Redis: the 202 for a queued command, a
// reservation for a saved launch, a comment for a state change.
type RedisConfirm struct {
	// Replicas is how many replicas must confirm; default 1 with Sentinel,
	// 0 (no WAIT) without.
	Replicas *int `yaml:"replicas"`
	// Timeout bounds each WAIT (default 500ms).
	Timeout Duration `yaml:"timeout"`
	// Required: when too few replicas confirm in time, refuse to act (the
	// 202 becomes a 503 that the redeliverer recovers, a launch waits for
	// its retry) instead of acting and counting it. Default false.
	Required bool `yaml:"required"`
}

// N is how many replicas must confirm (0 when unset).
func (c RedisConfirm) N() int {
	if c.Replicas == nil {
		return 0
	}
	return *c.Replicas
}

// Retention is how long the store keeps what is done; zero is the store's
// default (30 days for ended launches, 72 h for delivery ids).
type Retention struct {
	// EndedLaunches is how long records of ended launches are kept.
	EndedLaunches Duration `yaml:"ended_launches"`
	// Deliveries is how long a delivery id is remembered: a redelivery of
	// an older one is acted on again (GitHub redelivers for 3 days).
	Deliveries Duration `yaml:"deliveries"`
}

type GitHub struct {
	AppID          int64  `yaml:"app_id"`
	PrivateKey     Secret `yaml:"private_key"`
	PrivateKeyPath string `yaml:"private_key_path"`
	WebhookSecret  Secret `yaml:"webhook_secret"`
	// WebhookSecretPrevious is also accepted while the secret is changed.
	WebhookSecretPrevious Secret `yaml:"webhook_secret_previous"`
	APIURL                string `yaml:"api_url"`
	WebhookPath           string `yaml:"webhook_path"`
	// WebURL is GitHub's web UI, where people log in ("": github.com).
	WebURL string `yaml:"web_url"`
	// ClientID and ClientSecret are the App's, for its user login.
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
}

type Launch struct {
	APIURL       string `yaml:"api_url"`   // "": launchapi.DefaultBaseURL
	TokenURL     string `yaml:"token_url"` // "": launchapi.DefaultTokenURL
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	OfflineToken Secret `yaml:"offline_token"`
	Identity     Secret `yaml:"identity"`
	SourceID     string `yaml:"source_id"`
}

// CredentialsSetting names the setting that holds the Launch service
// credentials in use (exactly one kind is set).
func (l Launch) CredentialsSetting() string {
	switch {
	case l.Identity != "":
		return "LAUNCH_IDENTITY"
	case l.OfflineToken != "":
		return "LAUNCH_OFFLINE_TOKEN"
	}
	return "LAUNCH_CLIENT_ID and LAUNCH_CLIENT_SECRET"
}

type AWS struct {
	Region     string `yaml:"region"`
	RoleARN    string `yaml:"role_arn"`
	ExternalID Secret `yaml:"external_id"`
}

// PackitConfig says whose vm-image-build check runs are Packit's.
type PackitConfig struct {
	// AppSlugs are the GitHub Apps whose check runs are trusted to carry
	// Packit's image; a look-alike from any other app is ignored. Empty
	// means DefaultPackitAppSlugs.
	AppSlugs []string `yaml:"app_slugs"`
}

// DefaultPackitAppSlugs are Packit's production and staging GitHub Apps.
var DefaultPackitAppSlugs = []string{"packit-as-a-service", "packit-as-a-service-stg"}

var appSlugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// Limits are instance-wide.
type Limits struct {
	// TotalVMs caps concurrent VMs across all projects; 0 means no cap.
	TotalVMs int `yaml:"total_vms"`
	// CommandsPerMinute is how many commands one person gets answered in a
	// minute, across the instance (0: DefaultCommandsPerMinute). Each
	// answer is content GitHub limits per App (80 a minute), so a flood
	// from one person must not spend it for everyone.
	CommandsPerMinute int `yaml:"commands_per_minute"`
}

// DefaultCommandsPerMinute is limits.commands_per_minute when unset;
// MaxCommandsPerMinute is the most it may be.
const (
	DefaultCommandsPerMinute = 10
	MaxCommandsPerMinute     = 100000
)

// Profile is an operator-defined envelope a machine must fit.
type Profile struct {
	// RegionIDs are the ids of a one-region profile, written beside its
	// regions; a profile with several regions writes them per region.
	RegionIDs `yaml:",inline"`
	// Regions are where its VMs may run, in the config's order; in the YAML
	// a list, or a mapping from each region to its RegionIDs.
	Regions []string `yaml:"-"`
	// IDs are the ids per region, from either form (see In).
	IDs           map[string]RegionIDs `yaml:"-"`
	perRegion     bool
	decodeErrs    []string
	InstanceTypes []string `yaml:"instance_types"`
	// DefaultLifetime is how long a VM lives unless its machine or command says.
	DefaultLifetime Duration `yaml:"default_lifetime"`
	// MaxLifetime makes the hard expiry: launch time + MaxLifetime.
	MaxLifetime Duration `yaml:"max_lifetime"`
	ExtendStep  Duration `yaml:"extend_step"`
	// SSHWait bounds how long the ready comment waits for the VM's sshd to
	// answer (default DefaultSSHWait); after it the comment is posted anyway.
	SSHWait Duration `yaml:"ssh_wait"`
	// SSHProbe: the bot probes port 22 for sshd (default true). Off where
	// the security group admits only some addresses, not the bot's: the
	// ready comment then comes at once, the host keys from the console.
	SSHProbe *bool `yaml:"ssh_probe"`
}

// DefaultSSHWait is how long a ready comment waits for sshd unless the
// profile says; MaxSSHWait the longest a profile may say.
const (
	DefaultSSHWait = 5 * time.Minute
	MaxSSHWait     = 30 * time.Minute
)

// Probes reports whether the bot probes the profile's VMs for sshd.
func (p Profile) Probes() bool { return p.SSHProbe == nil || *p.SSHProbe }

// Project is a set of trusted repositories and what they get.
type Project struct {
	Repos    []string      `yaml:"repos"`
	Exclude  []string      `yaml:"exclude"`
	Profiles []string      `yaml:"profiles"`
	Limits   ProjectLimits `yaml:"limits"`
}

// ProjectLimits; 0 means no cap.
type ProjectLimits struct {
	PerOwner           int     `yaml:"per_owner"`
	PerRepo            int     `yaml:"per_repo"`
	DailyInstanceHours float64 `yaml:"daily_instance_hours"`
}

// Problems is every problem found in a config, each naming its setting.
type Problems []string

func (p Problems) Error() string {
	return fmt.Sprintf("%d problem(s):\n  - %s", len(p), strings.Join(p, "\n  - "))
}

func (p *Problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p Problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

// ParseServer reads a server config file's bytes, applies env (which wins
// over the file) and defaults, and validates the policy, reporting every
// problem at once. With problems it returns them and what it could read.
// Missing credentials are not errors here: see Missing.
func ParseServer(data []byte, env map[string]string) (*Server, error) {
	s := &Server{}
	var problems Problems
	if len(bytes.TrimSpace(data)) > 0 {
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, Problems{"server config is not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		unknownKeys(&doc, reflect.TypeFor[Server](), "", serverKey(&problems))
		// A value of the wrong kind is one problem among the others: the
		// decoder goes on past it.
		for _, e := range typeErrors(doc.Decode(s)) {
			problems.add("%s", serverProblem(e))
		}
	}
	s.applyEnv(env, &problems)
	s.applyDefaults()
	s.validate(&problems)
	if err := problems.err(); err != nil {
		return s, err
	}
	return s, nil
}

func (s *Server) applyEnv(env map[string]string, problems *Problems) {
	str := func(name string, dst *string) {
		if v, ok := env[name]; ok && v != "" {
			*dst = v
		}
	}
	secret := func(name string, dst *Secret) {
		if v, ok := env[name]; ok && v != "" {
			*dst = Secret(v)
		}
	}
	if v := env["GITHUB_APP_ID"]; v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			problems.add("GITHUB_APP_ID: %q is not a number; use the App ID from your GitHub App's settings page", v)
		}
		s.GitHub.AppID = id
	}
	secret("GITHUB_PRIVATE_KEY", &s.GitHub.PrivateKey)
	str("GITHUB_PRIVATE_KEY_PATH", &s.GitHub.PrivateKeyPath)
	secret("GITHUB_WEBHOOK_SECRET", &s.GitHub.WebhookSecret)
	secret("GITHUB_WEBHOOK_SECRET_PREVIOUS", &s.GitHub.WebhookSecretPrevious)
	str("GITHUB_API_URL", &s.GitHub.APIURL)
	str("GITHUB_WEB_URL", &s.GitHub.WebURL)
	str("GITHUB_CLIENT_ID", &s.GitHub.ClientID)
	secret("GITHUB_CLIENT_SECRET", &s.GitHub.ClientSecret)
	str("PUBLIC_URL", &s.Web.PublicURL)
	secret("SESSION_KEY", &s.Web.SessionKey)
	str("LAUNCH_API_URL", &s.Launch.APIURL)
	str("LAUNCH_TOKEN_URL", &s.Launch.TokenURL)
	str("LAUNCH_CLIENT_ID", &s.Launch.ClientID)
	secret("LAUNCH_CLIENT_SECRET", &s.Launch.ClientSecret)
	secret("LAUNCH_OFFLINE_TOKEN", &s.Launch.OfflineToken)
	secret("LAUNCH_IDENTITY", &s.Launch.Identity)
	str("LAUNCH_SOURCE_ID", &s.Launch.SourceID)
	str("AWS_REGION", &s.AWS.Region)
	str("AWS_ROLE_ARN", &s.AWS.RoleARN)
	secret("AWS_EXTERNAL_ID", &s.AWS.ExternalID)
	secret("REDIS_URL", &s.RedisURL)
	if v := env["REDIS_SENTINEL_ADDRS"]; v != "" {
		s.RedisSentinel.Addrs = nil
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				s.RedisSentinel.Addrs = append(s.RedisSentinel.Addrs, a)
			}
		}
	}
	str("REDIS_SENTINEL_MASTER", &s.RedisSentinel.Master)
	secret("REDIS_SENTINEL_PASSWORD", &s.RedisSentinel.Password)
	str("LISTEN_ADDR", &s.ListenAddr)
}

func (s *Server) applyDefaults() {
	def := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	def(&s.GitHub.APIURL, DefaultGitHubAPIURL)
	if !strings.HasSuffix(s.GitHub.APIURL, "/") {
		s.GitHub.APIURL += "/" // go-github requires it
	}
	def(&s.GitHub.WebhookPath, DefaultWebhookPath)
	def(&s.ListenAddr, DefaultListenAddr)
	def(&s.UntrustedMessage, DefaultUntrusted)
	if s.SweepInterval == 0 {
		s.SweepInterval = Duration(5 * time.Minute)
	}
	if s.RedisConfirm.Replicas == nil {
		n := 0
		if len(s.RedisSentinel.Addrs) > 0 {
			n = 1
		}
		s.RedisConfirm.Replicas = &n
	}
	if s.RedisConfirm.Timeout == 0 {
		s.RedisConfirm.Timeout = Duration(500 * time.Millisecond)
	}
	if s.SweepGrace == 0 {
		s.SweepGrace = Duration(30 * time.Minute)
	}
	if s.Limits.CommandsPerMinute == 0 {
		s.Limits.CommandsPerMinute = DefaultCommandsPerMinute
	}
	if len(s.Packit.AppSlugs) == 0 {
		s.Packit.AppSlugs = slices.Clone(DefaultPackitAppSlugs)
	}
	def(&s.PausedMessage, "`/launch` is paused by the operator of this packit-launch instance; please try again later.")
	for name, p := range s.Profiles {
		if p.ExtendStep == 0 {
			p.ExtendStep = Duration(time.Hour)
		}
		if p.DefaultLifetime == 0 && p.MaxLifetime != 0 {
			p.DefaultLifetime = min(Duration(2*time.Hour), p.MaxLifetime)
		}
		if p.SSHWait == 0 {
			p.SSHWait = Duration(DefaultSSHWait)
		}
		p.settleRegions()
		s.Profiles[name] = p
	}
}

func (s *Server) validate(problems *Problems) {
	if !strings.HasPrefix(s.GitHub.WebhookPath, "/") {
		problems.add("github.webhook_path: %q must start with /", s.GitHub.WebhookPath)
	}
	for _, name := range sortedKeys(s.Profiles) {
		p := s.Profiles[name]
		at := "profiles." + name
		for _, e := range p.decodeErrs {
			problems.add("%s: %s", at, serverProblem(e))
		}
		if len(p.InstanceTypes) == 0 {
			problems.add("%s.instance_types: list at least one allowed instance type", at)
		}
		checkInstanceTypes(at, p.InstanceTypes, problems)
		if len(p.Regions) == 0 {
			problems.add("%s.regions: list at least one allowed region", at)
		}
		checkRegions(at, p, problems)
		if p.MaxLifetime == 0 {
			problems.add("%s.max_lifetime: set the longest a VM may live (e.g. 8h)", at)
		} else if p.DefaultLifetime > p.MaxLifetime {
			problems.add("%s.default_lifetime: %s exceeds max_lifetime %s", at, p.DefaultLifetime, p.MaxLifetime)
		}
		if p.MaxLifetime != 0 && p.ExtendStep > p.MaxLifetime {
			problems.add("%s.extend_step: %s exceeds max_lifetime %s", at, p.ExtendStep, p.MaxLifetime)
		}
		if p.SSHWait < 0 || p.SSHWait.D() > MaxSSHWait {
			problems.add("%s.ssh_wait: %s; give the longest the ready comment waits for sshd, up to %s (default %s)", at, p.SSHWait, Duration(MaxSSHWait), Duration(DefaultSSHWait))
		}
	}
	for i, pr := range s.Projects {
		at := fmt.Sprintf("projects[%d]", i)
		if len(pr.Repos) == 0 {
			problems.add("%s.repos: list at least one owner/name pattern", at)
		}
		for _, pat := range append(append([]string{}, pr.Repos...), pr.Exclude...) {
			if _, err := path.Match(pat, ""); err != nil || !strings.Contains(pat, "/") {
				problems.add("%s: pattern %q must look like owner/name and may use * and ?", at, pat)
			}
		}
		if len(pr.Profiles) == 0 {
			problems.add("%s.profiles: name at least one profile", at)
		}
		for _, name := range pr.Profiles {
			if _, ok := s.Profiles[name]; !ok {
				problems.add("%s.profiles: unknown profile %q", at, name)
			}
		}
		if pr.Limits.PerOwner < 0 || pr.Limits.PerRepo < 0 || pr.Limits.DailyInstanceHours < 0 {
			problems.add("%s.limits: limits cannot be negative", at)
		}
	}
	for i, login := range s.Operators {
		if !loginRE.MatchString(login) {
			problems.add("operators[%d]: %q is not a GitHub login", i, login)
		}
	}
	if s.Web.SessionKey != "" && len(s.Web.SessionKey) < MinSessionKey {
		problems.add("SESSION_KEY: %d bytes; give at least %d random bytes (openssl rand -hex 32)", len(s.Web.SessionKey), MinSessionKey)
	}
	if u, err := url.Parse(s.Web.PublicURL); s.Web.PublicURL != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "") {
		problems.add("PUBLIC_URL: %q; give the bot's public address, such as https://packit-launch.example.org", s.Web.PublicURL)
	}
	for i, slug := range s.Packit.AppSlugs {
		if !appSlugRE.MatchString(slug) {
			problems.add("packit.app_slugs[%d]: %q is not a GitHub App slug (lower-case letters, digits and -, as in https://github.com/apps/packit-as-a-service)", i, slug)
		}
	}
	if d := s.Retention.EndedLaunches.D(); d != 0 && d < MinRetention {
		problems.add("retention.ended_launches: %s is too short (at least %s)", s.Retention.EndedLaunches, Duration(MinRetention))
	}
	if d := s.Retention.Deliveries.D(); d != 0 && d < MinRetention {
		problems.add("retention.deliveries: %s is too short (at least %s)", s.Retention.Deliveries, Duration(MinRetention))
	}
	if s.SweepInterval.D() < MinSweepInterval {
		problems.add("sweep_interval: %s is too short (at least %s)", s.SweepInterval, Duration(MinSweepInterval))
	}
	if s.SweepGrace.D() < MinSweepGrace {
		problems.add("sweep_grace: %s is too short (at least %s: a VM's tags may take that long to appear)", s.SweepGrace, Duration(MinSweepGrace))
	}
	if r := s.RedisSentinel; len(r.Addrs) > 0 {
		if r.Master == "" {
			problems.add("REDIS_SENTINEL_MASTER: name the primary the Sentinels monitor (the name in their `sentinel monitor NAME …` line)")
		}
		for _, a := range r.Addrs {
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
				problems.add("REDIS_SENTINEL_ADDRS: %q is not host:port (Sentinel's port is usually 26379)", a)
			}
		}
	} else if s.RedisSentinel.Master != "" {
		problems.add("REDIS_SENTINEL_ADDRS: REDIS_SENTINEL_MASTER is set, so list the Sentinels too (host:port,…)")
	}
	if n := *s.RedisConfirm.Replicas; n < 0 || n > 16 {
		problems.add("redis_confirm.replicas: %d is not between 0 and 16", n)
	}
	if d := s.RedisConfirm.Timeout.D(); d < 10*time.Millisecond || d > 10*time.Second {
		problems.add("redis_confirm.timeout: %s is not between 10ms and 10s", s.RedisConfirm.Timeout.D())
	}
	if s.Limits.TotalVMs < 0 {
		problems.add("limits.total_vms: cannot be negative")
	}
	if n := s.Limits.CommandsPerMinute; n < 0 || n > MaxCommandsPerMinute {
		problems.add("limits.commands_per_minute: %d is not between 1 and %d", n, MaxCommandsPerMinute)
	}
}

// serverProblem words a decoder error for the operator's terminal: as for
// a repo config, without markdown.
func serverProblem(e string) string { return strings.ReplaceAll(typeProblem(e), "`", "") }

// Setting is a required setting that is not set, and how to obtain it.
type Setting struct {
	Name, How string
}

func (m Setting) String() string { return m.Name + ": " + m.How }

// Missing lists the settings without which the bot cannot do its job.
func (s *Server) Missing() []Setting {
	var m []Setting
	if s.GitHub.AppID == 0 {
		m = append(m, Setting{"GITHUB_APP_ID", "the App ID on your GitHub App's settings page (Settings → Developer settings → GitHub Apps)"})
	}
	if s.GitHub.PrivateKey == "" && s.GitHub.PrivateKeyPath == "" {
		m = append(m, Setting{"GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH", "generate a private key on your GitHub App's settings page and pass the PEM or its path"})
	}
	if s.GitHub.WebhookSecret == "" {
		m = append(m, Setting{"GITHUB_WEBHOOK_SECRET", "the webhook secret you set on your GitHub App's settings page (without it the webhook endpoint is not served)"})
	}
	if s.Launch.ClientID == "" && s.Launch.OfflineToken == "" && s.Launch.Identity == "" {
		m = append(m, Setting{"LAUNCH_CLIENT_ID + LAUNCH_CLIENT_SECRET (or LAUNCH_OFFLINE_TOKEN, or LAUNCH_IDENTITY for a backend without the gateway)", "create a service account at console.redhat.com → Settings → Service Accounts, and grant it the Launch role"})
	} else if s.Launch.ClientID != "" && s.Launch.ClientSecret == "" && s.Launch.OfflineToken == "" {
		m = append(m, Setting{"LAUNCH_CLIENT_SECRET", "the secret shown when the service account was created at console.redhat.com"})
	}
	if s.Launch.SourceID == "" {
		m = append(m, Setting{"LAUNCH_SOURCE_ID", "the id of your AWS source at console.redhat.com → Settings → Integrations (GET /sources?provider=aws)"})
	}
	if len(s.Projects) == 0 {
		m = append(m, Setting{"projects (server config)", "list the repositories this instance trusts; see examples/packit-launch.yaml in the packit-launch repository"})
	}
	return m
}

// ProjectFor returns the project trusting repo ("owner/name"), matching
// case-insensitively as GitHub names do; the first matching project wins.
func (s *Server) ProjectFor(repo string) (*Project, bool) {
	repo = strings.ToLower(repo)
	for i := range s.Projects {
		p := &s.Projects[i]
		if matchAny(p.Repos, repo) && !matchAny(p.Exclude, repo) {
			return p, true
		}
	}
	return nil, false
}

func matchAny(patterns []string, repo string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(strings.ToLower(pat), repo); ok {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Regions lists every region a profile allows, sorted: where the bot's VMs can be.
func (s *Server) Regions() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range s.Profiles {
		for _, r := range p.Regions {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	sort.Strings(out)
	return out
}

// MaxLifetime is the longest any profile allows: the ceiling for a VM whose
// profile is unknown.
func (s *Server) MaxLifetime() time.Duration {
	var m time.Duration
	for _, p := range s.Profiles {
		m = max(m, p.MaxLifetime.D())
	}
	return m
}

// ProjectName names a project for people and counters: its first pattern.
func (p *Project) Name() string { return p.Repos[0] }
