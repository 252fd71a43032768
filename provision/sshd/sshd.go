// Package sshd looks at a VM's SSH server for the lifecycle: whether port 22
// answers with an SSH banner, and which host key the server presents in a
// handshake that stops before authentication. It also reads the host keys
// cloud-init prints on the VM's console, which the bot fetches through the
// EC2 API: a channel an attacker on the reviewer's network cannot touch.
// Comparing the two is provision's job (HostKeys).
package sshd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Dialer opens the TCP connection to a VM; *net.Dialer in production, a
// dialer that routes to a test server in tests.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Prober looks at port 22 of a VM.
type Prober struct {
	// Dialer defaults to a *net.Dialer.
	Dialer Dialer
	// Timeout bounds one probe, connection and handshake (default 10 s).
	Timeout time.Duration
}

// Answer is what one probe saw.
type Answer struct {
	// Banner is the server's SSH version line; "" when port 22 did not
	// answer with SSH.
	Banner string
	// HostKey is the key the server presented, in authorized_keys form
	// ("type base64"); "" when the handshake did not get that far.
	HostKey string
}

// Answered reports whether sshd answered.
func (a Answer) Answered() bool { return a.Banner != "" }

// errGotKey ends the handshake once the host key is known: the bot has no
// business authenticating.
var errGotKey = errors.New("host key received")

// maxBannerBytes is how much of the server's first bytes are kept to find
// its version line (RFC 4253 lets other lines come before it).
const maxBannerBytes = 8 << 10

// Probe dials host's port 22 and takes the server's version line and host
// key. An error says why sshd did not answer (for the log); Answer holds
// what was seen before it.
func (p Prober) Probe(ctx context.Context, host string) (Answer, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d Dialer = &net.Dialer{}
	if p.Dialer != nil {
		d = p.Dialer
	}
	addr := net.JoinHostPort(host, "22")
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Answer{}, fmt.Errorf("sshd: dial %s: %w", addr, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	rec := &recorder{Conn: conn}
	var key ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: "packit-launch",
		// Plain keys only: a host certificate's key is not what the
		// console prints, and would read as a mismatch.
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errGotKey
		},
	}
	c, _, _, err := ssh.NewClientConn(rec, addr, cfg)
	if c != nil {
		c.Close()
	}
	a := Answer{Banner: rec.banner()}
	if key != nil {
		a.HostKey = AuthorizedKey(key)
		if a.Banner == "" {
			a.Banner = "SSH-2.0-?" // kex got as far as the key: the version line was read
		}
		return a, nil
	}
	if err == nil {
		err = errors.New("no host key presented")
	}
	return a, fmt.Errorf("sshd: handshake with %s: %w", addr, err)
}

// recorder keeps the first bytes a connection reads.
type recorder struct {
	net.Conn
	mu   sync.Mutex
	head []byte
}

func (r *recorder) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	r.mu.Lock()
	if room := maxBannerBytes - len(r.head); room > 0 {
		r.head = append(r.head, b[:min(n, room)]...)
	}
	r.mu.Unlock()
	return n, err
}

// banner is the server's version line, if it sent one.
func (r *recorder) banner() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for line := range bytes.Lines(r.head) {
		if bytes.HasPrefix(line, []byte("SSH-")) && bytes.HasSuffix(line, []byte("\n")) {
			return strings.TrimRight(string(line), "\r\n")
		}
	}
	return ""
}

// AuthorizedKey is k as "type base64", without a comment.
func AuthorizedKey(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}
