// Command loadref serves what scripts/load-intake.sh measures the bot
// against: two reference webhook servers that bound what intake could cost,
// and a fake GitHub for the bot's worker to talk to during a load.
//
//	loadref -mode hmac   -addr A -secret S   checks the HMAC, answers 204
//	loadref -mode decode -addr A -secret S   go-github's ValidatePayload and
//	                                         ParseWebHook (the whole event), 204
//	loadref -mode github -addr A -key F -ids G   the fake GitHub (app/githubtest),
//	                                         seeded for the load's pull request;
//	                                         writes the App's key to F, and the
//	                                         App id and /launch comment id to G
//
// Not part of the bot: a tool for the load test only.
package main

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
	"golang.org/x/crypto/ssh"

	"github.com/packit/packit-launch/app/githubtest"
	"github.com/packit/packit-launch/config"
)

// The load's pull request, as scripts/load-intake.sh writes its deliveries.
const (
	loadRepo         = "packit/ogr"
	loadUser         = "alice"
	loadPR           = 7
	loadInstallation = 55
	maxBody          = 25 << 20 // GitHub's cap on a delivery
)

func main() {
	mode := flag.String("mode", "", "hmac, decode or github")
	addr := flag.String("addr", "127.0.0.1:3918", "listen address")
	secret := flag.String("secret", "", "webhook secret (hmac, decode)")
	keyFile := flag.String("key", "", "where to write the fake App's private key (github)")
	idsFile := flag.String("ids", "", "where to write the fake App's id and the load's /launch comment id (github)")
	flag.Parse()

	var h http.Handler
	switch *mode {
	case "hmac":
		h = hmacOnly([]byte(*secret))
	case "decode":
		h = verifyAndDecode([]byte(*secret))
	case "github":
		gh, err := fakeGitHub(*keyFile, *idsFile)
		if err != nil {
			log.Fatal(err)
		}
		h = gh
	default:
		log.Fatalf("-mode must be hmac, decode or github, not %q", *mode)
	}
	// serve's timeouts: a server facing the public needs them, and each
	// costs a deadline call per request.
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 30 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// hmacOnly is the least a webhook server can do: read the body and check
// its signature.
func hmacOnly(secret []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mac := hmac.New(sha256.New, secret)
		if _, err := io.Copy(mac, io.LimitReader(r.Body, maxBody)); err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		got, err := hex.DecodeString(strings.TrimPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256="))
		if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// verifyAndDecode is what a go-github webhook handler usually does: verify,
// then decode the whole event into its type.
func verifyAndDecode(secret []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		payload, err := github.ValidatePayload(r, secret)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if _, err := github.ParseWebHook(github.WebHookType(r), payload); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// fakeGitHub answers the bot's worker at once: a write user on a trusted
// repository with a config, an SSH key and the load's pull request.
func fakeGitHub(keyFile, idsFile string) (http.Handler, error) {
	if keyFile == "" || idsFile == "" {
		return nil, fmt.Errorf("-mode github needs -key and -ids")
	}
	gh := githubtest.New()
	gh.SetInstallation(loadInstallation, loadRepo)
	gh.SetPermission(loadRepo, loadUser, "write")
	gh.SetPull(loadRepo, githubtest.PullRequest{Number: loadPR, State: "open", Title: "Make it faster", User: loadUser,
		HeadSHA: strings.Repeat("ab", 20), HeadRef: "faster", BaseRef: githubtest.DefaultBranch})
	gh.SetFile(loadRepo, githubtest.DefaultBranch, config.RepoConfigPath,
		"default: fedora\nmachines:\n  fedora:\n    image: ami-0123456789abcdef0\n    region: us-east-1\n    instance_type: t3.small\n    ssh_user: fedora\n")
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	sshKey, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	gh.SetKeys(loadUser, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshKey)))+" alice@laptop")
	c := gh.AddComment(loadRepo, loadPR, loadUser, "/launch")
	if err := os.WriteFile(keyFile, gh.PrivateKeyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(idsFile, fmt.Appendf(nil, "%d %d\n", gh.AppID, c.ID), 0o600); err != nil {
		return nil, err
	}
	return gh.Handler(), nil
}
