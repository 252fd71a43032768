//go:build demo

package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
	"github.com/packit/packit-launch/provision/launchapi/launchapitest"
	"github.com/packit/packit-launch/provision/sshd/sshdtest"
)

// The demo's world: one repository, one pull request, one reviewer.
const (
	demoRepo   = "demo/hello"
	demoPR     = 1
	demoUser   = "alice"
	demoSecret = "demo-webhook-secret"
	demoRegion = "us-east-1"
)

const demoServerConfig = `
profiles:
  demo:
    launch_template_id: %s
    security_group_ids: [%s]
    instance_types: [t3.small, t3.medium]
    regions: [%s]
    default_lifetime: 2h
    max_lifetime: 8h
projects:
  - repos: ["demo/*"]
    profiles: [demo]
    limits: {per_owner: 2, per_repo: 5}
`

const demoRepoConfig = `# .packit-launch.yaml on the base branch of demo/hello
default: fedora
machines:
  fedora:
    image: {from: packit, target: fedora-39-x86_64}   # the image Packit builds for the PR
    region: %s
    instance_type: t3.small
    ssh_user: fedora
`

// demoPackitCheck is Packit's check run for the demo's image build.
const demoPackitCheck = "vm-image-build:fedora-39-x86_64"

// demoWorld is everything the bot talks to in the demo, on 127.0.0.1:
// moto_server for EC2, a fake GitHub with one open pull request and a
// reviewer with an SSH key, and the fake Launch service launching into moto.
type demoWorld struct {
	moto       string
	cloud      *ec2.Cloud
	gh         *githubtest.Server
	launch     *launchapitest.Fake
	source     launchapitest.Source
	serverYAML []byte
	env        map[string]string // the settings that point the bot at this world
	ami        string            // the image "Packit" builds
	packitRun  int64             // Packit's check run on the PR's head, building
	// sshd stands for every VM's sshd, and ec2 for EC2: moto behind a
	// fake that serves each VM's console with cloud-init's host keys.
	sshd *sshdtest.Server
	ec2  string
}

// startDemoWorld starts the world; stop ends all of it.
func startDemoWorld(ctx context.Context) (w *demoWorld, stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	moto, stopMoto, err := ec2test.RunMoto()
	if err != nil {
		cancel()
		return nil, nil, &badSetup{fmt.Errorf("the demo needs moto_server: %w", err)}
	}
	stop = func() { cancel(); stopMoto() }
	defer func() {
		if err != nil {
			stop()
		}
	}()
	cloud, err := ec2.New(ctx, ec2test.Config(moto, demoRegion))
	if err != nil {
		return nil, nil, err
	}
	base, err := cloud.Bootstrap(ctx, demoRegion, ec2.BootstrapInput{Profile: "demo"})
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap the demo profile: %w", err)
	}
	ami, err := ec2test.FirstAMI(ctx, moto, demoRegion)
	if err != nil {
		return nil, nil, err
	}

	vmSSHD, err := sshdtest.New()
	if err != nil {
		return nil, nil, err
	}
	stopAll := stop
	stop = func() { stopAll(); vmSSHD.Close() }
	motoURL, err := url.Parse(moto)
	if err != nil {
		return nil, nil, err
	}
	console := ec2test.NewConsoleFake(httputil.NewSingleHostReverseProxy(motoURL))
	front, err := serveLocal(ctx, console)
	if err != nil {
		return nil, nil, err
	}
	seed := func(_, id string) { console.SetConsoleOutput(id, sshdtest.ConsoleOutput(vmSSHD.HostKey())) }
	launch := launchapitest.New(launchapitest.Options{Launcher: &ec2test.Launcher{Endpoint: moto, OverrideTemplateTags: true, Launched: seed}, StepDuration: 300 * time.Millisecond})
	launch.AddServiceAccount("demo-bot", "demo-secret", "org-demo")
	source := launch.AddSource("org-demo", launchapitest.Source{Name: "aws"})
	launchURL, err := serveLocal(ctx, launch)
	if err != nil {
		return nil, nil, err
	}

	gh := githubtest.New()
	ghURL, err := serveLocal(ctx, gh.Handler())
	if err != nil {
		return nil, nil, err
	}
	gh.SetInstallation(githubtest.DefaultInstallationID, demoRepo)
	gh.SetPermission(demoRepo, demoUser, "write")
	head := strings.Repeat("c0ffee", 6) + "c0ff"
	gh.SetPull(demoRepo, githubtest.PullRequest{Number: demoPR, State: "open", Title: "Make hello friendlier", User: demoUser,
		HeadSHA: head, HeadRef: "friendlier", BaseRef: "main"})
	gh.SetFile(demoRepo, "main", config.RepoConfigPath, fmt.Sprintf(demoRepoConfig, demoRegion))
	// Someone commented /packit vm-image-build: Packit is building the head.
	packitRun := gh.AddCheckRun(demoRepo, githubtest.CheckRun{AppSlug: "packit-as-a-service", HeadSHA: head, Name: demoPackitCheck,
		Status: "in_progress", Title: "VM Image build is in progress", Summary: "Building the image in Image Builder."})
	key, err := demoKey()
	if err != nil {
		return nil, nil, err
	}
	gh.SetKeys(demoUser, key+" "+demoUser+"@laptop")

	return &demoWorld{
		moto: moto, cloud: cloud, gh: gh, launch: launch, source: source, ami: ami, packitRun: packitRun.ID, sshd: vmSSHD, ec2: front,
		serverYAML: fmt.Appendf(nil, demoServerConfig, base.LaunchTemplateID, base.SecurityGroupID, demoRegion),
		env: map[string]string{
			"GITHUB_APP_ID":         fmt.Sprint(gh.AppID),
			"GITHUB_PRIVATE_KEY":    string(gh.PrivateKeyPEM),
			"GITHUB_WEBHOOK_SECRET": demoSecret,
			"GITHUB_API_URL":        ghURL + "/",
			"LAUNCH_API_URL":        launchURL + launchapitest.APIPrefix,
			"LAUNCH_TOKEN_URL":      launchURL + launchapitest.TokenPath,
			"LAUNCH_CLIENT_ID":      "demo-bot",
			"LAUNCH_CLIENT_SECRET":  "demo-secret",
			"LAUNCH_SOURCE_ID":      source.ID,
			"AWS_REGION":            demoRegion,
			"LISTEN_ADDR":           "127.0.0.1:0",
		},
	}, stop, nil
}

// playDemo runs the real bot (the same wiring as serve) against the demo world
// and plays one pull request conversation, printing what a reviewer would
// see on the PR. Nothing leaves this machine and no account is needed.
func init() { demo = playDemo }

func playDemo(ctx context.Context, stdout io.Writer, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	say := func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) }

	say("Starting moto_server (EC2), a fake GitHub and a fake Launch service on 127.0.0.1 …")
	world, stopWorld, err := startDemoWorld(ctx)
	if err != nil {
		return err
	}
	defer stopWorld()
	gh, cloud := world.gh, world.cloud
	cfg, err := config.ParseServer(world.serverYAML, world.env)
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	addr := make(chan string, 1)
	botCtx, stopBot := context.WithCancel(ctx)
	botDone := make(chan error, 1)
	go func() {
		botDone <- runBot(botCtx, bot{cfg: cfg, awsEndpoint: world.ec2, awsCreds: ec2test.Credentials(), listening: func(a string) { addr <- a },
			packitPollEvery: 500 * time.Millisecond, sshDialer: world.sshd.Dialer()}, log, true)
	}()
	defer func() { stopBot(); <-botDone }()
	var webhook string
	select {
	case a := <-addr:
		webhook = "http://" + a + cfg.GitHub.WebhookPath
	case err := <-botDone:
		botDone <- err // for the deferred wait
		return fmt.Errorf("the bot did not start: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	say("The bot listens on %s. Pull request %s#%d by @%s is open, and Packit is building its VM image (check run %s).\n",
		webhook, demoRepo, demoPR, demoUser, demoPackitCheck)

	p := &demoPlay{gh: gh, webhook: webhook, out: stdout}
	if err := p.command(ctx, "/launch", "when Packit's build"); err != nil {
		return err
	}
	say("Packit finishes its build and reports the image %s …\n", world.ami)
	before := gh.Comments(demoRepo, demoPR)
	gh.UpdateCheckRunAs(demoRepo, world.packitRun, func(c *githubtest.CheckRun) {
		c.Status, c.Conclusion, c.Title = "completed", "success", "VM Image build is complete"
		c.Summary = "Congratulations! Your image was successfully built.\n\n" +
			fmt.Sprintf("https://console.aws.amazon.com/ec2/v2/home?region=%s#LaunchInstanceWizard:ami=%s\n", demoRegion, world.ami)
	})
	if err := p.await(ctx, before, 0, "/launch", "your VM is ready"); err != nil {
		return err
	}
	if err := p.command(ctx, "/launch status", ""); err != nil {
		return err
	}
	if err := p.command(ctx, "/launch stop", "terminated"); err != nil {
		return err
	}
	runs := gh.CheckRuns(demoRepo)
	for _, r := range runs {
		say("Check run %q: %s %s — %s", r.Name, r.Status, r.Conclusion, r.Title)
	}
	live, err := cloud.ListManaged(ctx, demoRegion)
	if err != nil {
		return err
	}
	say("\nManaged VMs still running in (moto's) EC2: %d. The demo is over; everything it started is stopped.", len(live))
	if len(live) != 0 || len(runs) == 0 {
		return errors.New("the demo did not end as it should: see the log above")
	}
	return nil
}

// demoPlay comments on the demo PR and shows the bot's answers.
type demoPlay struct {
	gh      *githubtest.Server
	webhook string
	out     io.Writer
	seq     int
}

// command comments line as the reviewer, delivers the webhook as GitHub
// would, and waits for the bot's answer: a new comment, or an edit of one,
// containing until (or saying the launch failed, which ends the demo).
func (p *demoPlay) command(ctx context.Context, line, until string) error {
	before := p.gh.Comments(demoRepo, demoPR)
	c := p.gh.AddComment(demoRepo, demoPR, demoUser, line)
	fmt.Fprintf(p.out, "──── @%s commented:\n  %s\n", demoUser, line)
	p.seq++
	if err := p.deliver(ctx, c, fmt.Sprintf("demo-%d", p.seq)); err != nil {
		return err
	}
	return p.await(ctx, before, c.ID, line, until)
}

// await waits for the bot's answer to command (comment id, or 0 for none)
// since before, and shows it.
func (p *demoPlay) await(ctx context.Context, before []githubtest.Comment, command int64, line, until string) error {
	for {
		now := p.gh.Comments(demoRepo, demoPR)
		answers := newAnswers(before, now, command)
		last := ""
		if len(answers) > 0 {
			last = answers[len(answers)-1].Body
		}
		if failed := strings.Contains(last, "failed"); len(answers) > 0 && (until == "" || strings.Contains(last, until) || failed) {
			for _, a := range answers {
				fmt.Fprintf(p.out, "──── @%s answered:\n%s\n", a.User, indent(a.Body))
			}
			if command != 0 {
				fmt.Fprintf(p.out, "  (reactions on the command: %s)\n", strings.Join(p.gh.Reactions(demoRepo, command), " "))
			}
			fmt.Fprintln(p.out)
			if failed && until != "" {
				return fmt.Errorf("%q failed: see the answer above", line)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer to %q: %w", line, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// newAnswers are the bot's comments that are new or changed since before.
func newAnswers(before, now []githubtest.Comment, command int64) []githubtest.Comment {
	seen := map[int64]string{}
	for _, c := range before {
		seen[c.ID] = c.Body
	}
	var out []githubtest.Comment
	for _, c := range now {
		if body, ok := seen[c.ID]; c.ID != command && (!ok || body != c.Body) {
			out = append(out, c)
		}
	}
	return out
}

// deliver posts an issue_comment webhook for c, signed as GitHub signs it.
func (p *demoPlay) deliver(ctx context.Context, c githubtest.Comment, delivery string) error {
	return p.deliverTo(ctx, c, delivery, demoPR)
}

// commentDelivery is GitHub's issue_comment delivery of c on pull request
// pr, signed with the demo's secret.
func commentDelivery(ctx context.Context, webhook string, c githubtest.Comment, delivery string, pr int) (*http.Request, error) {
	owner, name, _ := strings.Cut(demoRepo, "/")
	user := map[string]any{"login": c.User, "type": "User"}
	body, err := json.Marshal(map[string]any{
		"action": "created",
		"issue":  map[string]any{"number": pr, "pull_request": map[string]any{"url": fmt.Sprintf("https://api.github.com/repos/%s/pulls/%d", demoRepo, pr)}},
		"comment": map[string]any{"id": c.ID, "body": c.Body, "user": user,
			"created_at": c.CreatedAt.UTC().Format(time.RFC3339)},
		"repository":   map[string]any{"full_name": demoRepo, "name": name, "owner": map[string]any{"login": owner}},
		"sender":       user,
		"installation": map[string]any{"id": githubtest.DefaultInstallationID},
	})
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, []byte(demoSecret))
	mac.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "issue_comment")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	return req, nil
}

// deliverTo is deliver for a comment on pull request pr.
func (p *demoPlay) deliverTo(ctx context.Context, c githubtest.Comment, delivery string, pr int) error {
	return p.deliverWant(ctx, c, delivery, pr, http.StatusAccepted)
}

// deliverWant delivers c and expects the webhook to answer want.
func (p *demoPlay) deliverWant(ctx context.Context, c githubtest.Comment, delivery string, pr, want int) error {
	req, err := commentDelivery(ctx, p.webhook, c, delivery, pr)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("deliver webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("webhook answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// serveLocal serves h on a free 127.0.0.1 port until ctx ends.
func serveLocal(ctx context.Context, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = serveHTTP(ctx, ln, h) }()
	return "http://" + ln.Addr().String(), nil
}

// demoKey is a fresh ed25519 public key in authorized_keys form.
func demoKey() (string, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	sk, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk))), nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n  ")
}
