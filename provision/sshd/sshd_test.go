package sshd_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/packit/packit-launch/provision/sshd"
	"github.com/packit/packit-launch/provision/sshd/sshdtest"
)

func startServer(t *testing.T) *sshdtest.Server {
	t.Helper()
	s, err := sshdtest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestSSHProbeTakesBannerAndHostKey(t *testing.T) {
	s := startServer(t)
	p := sshd.Prober{Dialer: s.Dialer(), Timeout: 5 * time.Second}

	s.SetAnswering(false)
	a, err := p.Probe(t.Context(), "198.51.100.7")
	if err == nil || a.Answered() || a.HostKey != "" {
		t.Fatalf("a refused port 22 answered: %+v, %v", a, err)
	}

	s.SetAnswering(true)
	a, err = p.Probe(t.Context(), "198.51.100.7")
	if err != nil || a.Banner != "SSH-2.0-OpenSSH_9.6" {
		t.Fatalf("probe: %+v, %v", a, err)
	}
	if a.HostKey != sshd.AuthorizedKey(s.HostKey()) {
		t.Fatalf("presented %q, the server's is %q", a.HostKey, sshd.AuthorizedKey(s.HostKey()))
	}
}

// A port that accepts but speaks something else, or nothing, is not sshd;
// a silent one costs the probe its timeout, no more.
func TestSSHProbeOfWhatIsNotSSH(t *testing.T) {
	for name, serve := range map[string]func(net.Conn){
		"http":   func(c net.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")); c.Close() },
		"silent": func(c net.Conn) { time.Sleep(3 * time.Second); c.Close() },
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go serve(c)
				}
			}()
			p := sshd.Prober{Dialer: routeTo(ln.Addr().String()), Timeout: 500 * time.Millisecond}
			start := time.Now()
			a, err := p.Probe(t.Context(), "198.51.100.7")
			if err == nil || a.Answered() {
				t.Fatalf("not sshd, yet: %+v, %v", a, err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("the probe outlived its timeout: %s", took)
			}
		})
	}
}

type routeTo string

func (r routeTo) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, string(r))
}

func newKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHostKeyFromConsole(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	c := sshd.ParseConsole(sshdtest.ConsoleOutput(k1, k2))
	if !slices.Equal(c.Keys, []string{sshd.AuthorizedKey(k1), sshd.AuthorizedKey(k2)}) {
		t.Fatalf("keys %q", c.Keys)
	}
	if !slices.Equal(c.Fingerprints, []string{ssh.FingerprintSHA256(k1), ssh.FingerprintSHA256(k2)}) {
		t.Fatalf("fingerprints %q", c.Fingerprints)
	}

	// Fingerprints alone (an image that prints no keys) still count.
	only := strings.Split(sshdtest.ConsoleOutput(k1), "-----BEGIN SSH HOST KEY KEYS-----")[0]
	if c := sshd.ParseConsole(only); len(c.Keys) != 0 || !slices.Equal(c.Fingerprints, []string{ssh.FingerprintSHA256(k1)}) {
		t.Fatalf("fingerprints only: %+v", c)
	}
	// A boot log without cloud-init's sections (moto's) holds no key, and
	// keys outside the sections are not taken.
	stray := "ssh-ed25519 " + strings.Fields(sshd.AuthorizedKey(k1))[1] + "\nLinux version 6.11\n"
	if c := sshd.ParseConsole(stray); len(c.Keys)+len(c.Fingerprints) != 0 {
		t.Fatalf("keys outside cloud-init's sections: %+v", c)
	}
	// Junk and a flood are bounded.
	flood := "-----BEGIN SSH HOST KEY KEYS-----\n" + strings.Repeat("ssh-ed25519 AAAA!!\n", 1000)
	for range 20 {
		flood += sshd.AuthorizedKey(newKey(t)) + "\n"
	}
	if c := sshd.ParseConsole(flood); len(c.Keys) != 8 {
		t.Fatalf("a flood of keys kept %d", len(c.Keys))
	}
}
