package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	packitlaunch "github.com/packit/packit-launch"
	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/setup"
)

// setupSettings say whether serve shows the setup page (SETUP_PAGE: auto,
// on, off), where GitHub's web UI is (GITHUB_WEB_URL) and the bot's public
// address (PUBLIC_URL).
type setupSettings struct {
	mode      string
	webURL    string
	publicURL string
}

func readSetupSettings(env map[string]string) (setupSettings, error) {
	s := setupSettings{mode: strings.ToLower(env["SETUP_PAGE"]), webURL: env["GITHUB_WEB_URL"], publicURL: strings.TrimRight(env["PUBLIC_URL"], "/")}
	if s.publicURL != "" {
		if u, err := url.Parse(s.publicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return s, fmt.Errorf("PUBLIC_URL %q: give the bot's public address, such as https://packit-launch.example.org", env["PUBLIC_URL"])
		}
	}
	if s.mode == "" {
		s.mode = "auto"
	}
	if s.mode != "auto" && s.mode != "on" && s.mode != "off" {
		return s, fmt.Errorf("SETUP_PAGE %q: use auto, on or off", env["SETUP_PAGE"])
	}
	if s.webURL == "" {
		s.webURL = "https://github.com/"
	}
	if !strings.HasSuffix(s.webURL, "/") {
		s.webURL += "/"
	}
	return s, nil
}

// errSettingsWritten ends one run of the bot so that serve starts it again
// with the settings the setup page wrote.
var errSettingsWritten = errors.New("the setup page wrote new settings")

// setupPage is the page while the GitHub App settings are missing (only on
// a loopback address, unless SETUP_PAGE=on), or nil. addr is the address
// the server listens on; done is called once the settings are written.
func setupPage(cfg *config.Server, s setupSettings, addr string, done func(), log *slog.Logger) http.Handler {
	if s.mode == "off" || cfg.GitHub.AppID != 0 || cfg.GitHub.PrivateKey != "" || cfg.GitHub.PrivateKeyPath != "" {
		return nil
	}
	if s.mode == "auto" && !loopback(cfg.ListenAddr) {
		log.Info("setup page off: LISTEN_ADDR is not a loopback address (SETUP_PAGE=on shows it anyway)")
		return nil
	}
	log.Info("setup page on: open the bot's address in a browser to register its GitHub App", "addr", cfg.ListenAddr)
	var trusted []string
	for _, p := range cfg.Projects {
		trusted = append(trusted, p.Repos...)
	}
	page := &setup.Page{Manifest: packitlaunch.AppManifest, WebURL: s.webURL, APIURL: cfg.GitHub.APIURL, WebhookPath: cfg.GitHub.WebhookPath,
		ListenAddr: addr, PublicURL: s.publicURL, EnvFile: ".env", Missing: missingSettings(cfg), Trusted: trusted, Done: done, Log: log}
	return page.Handler()
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// withSetup serves the setup page's routes beside the bot's own.
func withSetup(routes, page http.Handler) http.Handler {
	if page == nil {
		return routes
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", page)
	mux.Handle("/setup/", page)
	mux.Handle("/", routes)
	return mux
}
