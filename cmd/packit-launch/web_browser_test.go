//go:build demo

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/packit/packit-launch/internal/syncbuf"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

// The web view in a real browser, on `serve`'s own wiring against the
// demo's world: GitHub login through the fake GitHub's user authorization,
// the launches a viewer can access and none they cannot, a launch's story,
// Extend and Terminate from the page (refused where a comment would be),
// the fleet for operators only, nothing logged out, and a cross-site post
// refused. SCREENSHOTS=dir saves the pages as PNGs (README's pictures).
func TestWebViewInABrowser(t *testing.T) {
	browser := chromium(t)
	inDir(t)
	ctx := context.Background()
	world := amiWorld(t)
	gh := world.gh
	addr := freeAddr(t)
	public := "http://" + addr
	gh.SetCallbackURL(public + "/login/callback")
	gh.SetPermission(demoRepo, "bob", "read")
	gh.SetPermission(demoRepo, "ops", "admin")
	gh.SetPermission("other/secret", "mallory", "admin") // a repository alice cannot access

	redisURL := storetest.StartRedis(t)
	st, err := store.OpenWith(ctx, redisURL, store.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	secret, _, err := st.CreateLaunch(ctx, &store.Launch{Repo: "other/secret", PR: 3, Owner: "mallory", Machine: "hidden", CommandCommentID: 1, State: store.StateRunning,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), HardExpiresAt: now.Add(2 * time.Hour), Events: []store.Event{{At: now, Name: "accept", State: store.StateAccepted}}})
	if err != nil {
		t.Fatal(err)
	}

	for k, v := range world.env {
		t.Setenv(k, v)
	}
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": world.moto, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
		"LISTEN_ADDR": addr, "PUBLIC_URL": public, "SESSION_KEY": strings.Repeat("s3cret-", 6), "REDIS_URL": redisURL,
		"GITHUB_CLIENT_ID": gh.ClientID, "GITHUB_CLIENT_SECRET": gh.ClientSecret, "GITHUB_WEB_URL": world.env["GITHUB_API_URL"]} {
		t.Setenv(k, v)
	}
	cfgFile := writeServerConfig(t, world, 0, 0, "operators: [ops]\n")
	logs := &syncbuf.Buffer{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() { done <- run(runCtx, []string{"serve", "--config", cfgFile}, io.Discard, logs) }()
	defer func() { stop(); <-done }()
	waitServing(t, public+"/healthz", logs)

	// alice's /launch, as the demo plays it.
	play := &demoPlay{gh: gh, webhook: public + "/api/github/webhooks", out: io.Discard}
	if err := play.command(ctx, "/launch", "your VM is ready"); err != nil {
		t.Fatalf("launch: %v\n%s", err, logs.String())
	}
	launches, err := st.LaunchesByPR(ctx, demoRepo, demoPR)
	if err != nil || len(launches) != 1 {
		t.Fatalf("launches %+v, %v", launches, err)
	}
	l := launches[0]
	// The check run and the ready comment link the launch's page.
	page := public + "/launches/" + l.ID
	linked := 0
	for _, cr := range gh.CheckRuns(demoRepo) {
		if cr.ExternalID == l.ID && cr.DetailsURL == page {
			linked++
		}
	}
	if linked != 1 {
		t.Errorf("%d check runs link %s: %+v", linked, page, gh.CheckRuns(demoRepo))
	}
	if c, ok := gh.Comment(demoRepo, l.CommentID); !ok || !strings.Contains(c.Body, "Its page, with its story: "+page) {
		t.Errorf("the ready comment does not link the page: %+v", c)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.Flag("host-resolver-rules", "MAP attacker.test 127.0.0.1"))
	actx, stopAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer stopAlloc()
	bctx, stopBrowser := chromedp.NewContext(actx)
	defer stopBrowser()
	bctx, stopTimeout := context.WithTimeout(bctx, 90*time.Second)
	defer stopTimeout()
	fail := func(err error) {
		t.Helper()
		body, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("browser: %v\npage: %s\nbot log:\n%s", err, body, logs.String())
	}
	browse := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			fail(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			fail(err)
		}
		return s
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
		if err != nil {
			fail(err)
		}
		return n
	}
	shot := func(name string) {
		t.Helper()
		dir := os.Getenv("SCREENSHOTS")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			fail(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logIn := func(login string) {
		t.Helper()
		gh.LogInAs(login)
		browse(chromedp.Navigate(public+"/launches"), chromedp.WaitVisible(chromedp.CSS("a.login")), chromedp.Click(chromedp.CSS("a.login")),
			chromedp.WaitVisible(chromedp.CSS("#viewer")))
		if got := text("#viewer"); got != login {
			t.Fatalf("logged in as %q, want %q", got, login)
		}
	}
	revoked := func() int {
		n := 0
		for _, c := range gh.Calls() {
			if c.Method == http.MethodDelete && c.Path == "/applications/"+gh.ClientID+"/token" && c.Status == http.StatusNoContent {
				n++
			}
		}
		return n
	}
	logOut := func() {
		t.Helper()
		before := revoked()
		browse(chromedp.Click(chromedp.CSS(`header button`)), chromedp.WaitVisible(chromedp.CSS("a.login")))
		if revoked() != before+1 {
			t.Errorf("logging out did not revoke the user token on GitHub")
		}
	}

	// Logged out: nothing but the way in.
	browse(chromedp.Navigate(public+"/launches"), chromedp.WaitVisible(chromedp.CSS("a.login")))
	if count("table") != 0 || strings.Contains(text("body"), l.ID) {
		t.Fatalf("a logged-out visitor sees launches: %s", text("body"))
	}
	browse(chromedp.Navigate(public+"/launches/"+l.ID), chromedp.WaitVisible(chromedp.CSS("a.login")))
	if strings.Contains(text("body"), "fedora") {
		t.Fatalf("a logged-out visitor sees a launch: %s", text("body"))
	}

	// alice: her launch, not the other repository's.
	logIn("alice")
	if count(`#live tr[data-launch="`+l.ID+`"]`) != 1 || count(`tr[data-launch="`+secret.ID+`"]`) != 0 || strings.Contains(text("body"), "other/secret") {
		t.Fatalf("alice's launches page:\n%s", text("body"))
	}
	before := gh.UserRequests("alice")
	shot("web-launches.png")

	// A hostile page posting Terminate cross-site is refused.
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form id="f" method="post" action="%s/launches/%s/terminate"><input name="csrf" value="guess"></form><script>document.getElementById("f").submit()</script>`, public, l.ID)
	}))
	defer attacker.Close()
	_, attackerPort, _ := net.SplitHostPort(attacker.Listener.Addr().String())
	browse(chromedp.Navigate("http://attacker.test:"+attackerPort+"/"), chromedp.WaitVisible(chromedp.Search(`//*[contains(., "Cross-site form posts are refused")]`)))
	if got, _ := st.GetLaunch(ctx, l.ID); got.State != store.StateRunning {
		t.Fatalf("a cross-site post changed the launch: %s", got.State)
	}

	// Its story, and Extend from the page.
	browse(chromedp.Navigate(public+"/launches"), chromedp.WaitVisible(chromedp.CSS("#live")),
		chromedp.Click(chromedp.CSS(`#live a[href="/launches/`+l.ID+`"]`)), chromedp.WaitVisible(chromedp.CSS("#timeline")))
	for _, e := range []string{"accept", "reserve", "run"} {
		if count(`#timeline li[data-event="`+e+`"]`) != 1 {
			t.Errorf("the timeline lacks %q: %s", e, text("#timeline"))
		}
	}
	if !strings.Contains(text("#timeline"), "ssh fedora@") {
		t.Errorf("the timeline lacks the ssh command: %s", text("#timeline"))
	}
	browse(chromedp.Click(chromedp.Search(`//button[contains(., "Extend 1h")]`)), chromedp.WaitVisible(chromedp.CSS(".done")))
	if got, _ := st.GetLaunch(ctx, l.ID); !got.ExpiresAt.After(l.ExpiresAt.Add(59*time.Minute)) || !strings.Contains(text(".done"), "now terminates at") {
		t.Fatalf("extend: expires %s (was %s); page says %q", got.ExpiresAt, l.ExpiresAt, text(".done"))
	}
	if count(`#timeline li[data-event="extend"]`) != 1 || !strings.Contains(text(`#timeline li[data-event="extend"]`), "Extended by alice") {
		t.Errorf("the timeline lacks the extension: %s", text("#timeline"))
	}
	shot("web-launch.png")
	// Cached for 5 minutes: the page views after the first cost GitHub nothing.
	if n := gh.UserRequests("alice") - before; n != 0 {
		t.Errorf("%d GitHub requests for alice's later page views, want 0 (cached)", n)
	}
	if n := gh.UserRequests("alice"); n > 3 {
		t.Errorf("alice's session cost %d GitHub requests as her; want at most 3 (who, installations, repositories)", n)
	}
	logOut()

	// bob may read the repository: he sees the launch, but may not end
	// alice's VM (as a comment would be refused), nor see the fleet.
	logIn("bob")
	browse(chromedp.Navigate(public+"/launches/"+l.ID), chromedp.WaitVisible(chromedp.CSS("#timeline")),
		chromedp.Click(chromedp.Search(`//button[contains(., "Terminate")]`)), chromedp.WaitVisible(chromedp.CSS(".problem")))
	if !strings.Contains(text(".problem"), "only its owner or a repository admin can stop it") {
		t.Errorf("bob's Terminate: %q", text(".problem"))
	}
	if got, _ := st.GetLaunch(ctx, l.ID); got.State != store.StateRunning {
		t.Fatalf("bob ended alice's VM: %s", got.State)
	}
	browse(chromedp.Navigate(public+"/fleet"), chromedp.WaitVisible(chromedp.CSS(".problem")))
	if !strings.Contains(text(".problem"), "Only this instance's operators") {
		t.Errorf("bob's fleet page: %q", text("body"))
	}
	logOut()

	// The operator's fleet: the month's charts and what runs now.
	logIn("ops")
	browse(chromedp.Navigate(public+"/fleet"), chromedp.WaitVisible(chromedp.CSS("#regions")))
	if n := count("svg"); n < 3 {
		t.Errorf("%d charts on the fleet page", n)
	}
	if count(`#launches-chart rect[fill="#1a7f37"]`) < 1 || !strings.Contains(text("#regions"), "us-east-1") {
		t.Errorf("fleet page: launches chart bars %d; regions %q", count(`#launches-chart rect[fill="#1a7f37"]`), text("#regions"))
	}
	shot("web-fleet.png")
	logOut()

	// alice ends her VM from the page.
	logIn("alice")
	browse(chromedp.Navigate(public+"/launches/"+l.ID), chromedp.WaitVisible(chromedp.CSS("#timeline")),
		chromedp.Click(chromedp.Search(`//button[contains(., "Terminate")]`)), chromedp.WaitVisible(chromedp.CSS(".done")))
	if !strings.Contains(text(".done"), "is terminated") {
		t.Errorf("alice's Terminate: %q", text(".done"))
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if got, _ := st.GetLaunch(ctx, l.ID); got.State == store.StateEnded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the VM did not end\n%s", logs.String())
		}
	}
	if strings.Contains(logs.String(), gh.ClientSecret) || strings.Contains(logs.String(), "ghu_") || strings.Contains(logs.String(), "s3cret-") {
		t.Error("the log shows a secret or a user token")
	}
}
