// Package sshdtest is a VM's sshd for tests and the demo: a real SSH server
// (golang.org/x/crypto/ssh) on 127.0.0.1 that presents its host key and
// lets nobody in, a dialer that routes a VM's port 22 to it, and the boot
// log cloud-init prints on a VM's console.
package sshdtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// Server is one VM's sshd.
type Server struct {
	ln        net.Listener
	cfg       *ssh.ServerConfig
	key       ssh.PublicKey
	answering atomic.Bool
	dials     atomic.Int64
	wg        sync.WaitGroup
}

// New starts a server with a fresh ed25519 host key, answering.
func New() (*Server, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{
		ServerVersion:     "SSH-2.0-OpenSSH_9.6",
		PasswordCallback:  func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) { return nil, errors.New("no") },
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, errors.New("no") },
	}
	cfg.AddHostKey(signer)
	s := &Server{ln: ln, cfg: cfg, key: signer.PublicKey()}
	s.answering.Store(true)
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			// The handshake ends when the client stops after the host key
			// or fails to authenticate: nobody gets in.
			if sc, chans, reqs, err := ssh.NewServerConn(c, s.cfg); err == nil {
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					_ = ch.Reject(ssh.Prohibited, "no")
				}
				sc.Close()
			}
		}()
	}
}

// HostKey is the key the server presents.
func (s *Server) HostKey() ssh.PublicKey { return s.key }

// SetAnswering makes port 22 refuse connections (false), as before the
// VM's sshd starts, or accept them (true).
func (s *Server) SetAnswering(on bool) { s.answering.Store(on) }

// Dials counts the connections asked of the dialer.
func (s *Server) Dials() int { return int(s.dials.Load()) }

// Addr is where the server listens.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// Dialer routes a dial of any host's port 22 to the server; other ports
// are refused.
func (s *Server) Dialer() *Dialer { return &Dialer{s: s} }

// Dialer is Server's dialer.
type Dialer struct{ s *Server }

// DialContext connects to the server in place of addr's port 22.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.s.dials.Add(1)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if port != "22" || !d.s.answering.Load() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", d.s.Addr())
}

// ConsoleOutput is a Fedora cloud image's boot log as EC2 returns it, with
// cloud-init's host key sections for keys (its fingerprints and its keys).
func ConsoleOutput(keys ...ssh.PublicKey) string {
	var b strings.Builder
	b.WriteString("[    0.000000] Linux version 6.11.4-301.fc41.x86_64\n[    2.113027] systemd[1]: Detected virtualization amazon.\n")
	b.WriteString("[   11.912310] cloud-init[803]: Cloud-init v. 24.1.4 running 'modules:config'\n")
	b.WriteString("<14>Dec  6 09:00:01 ec2: \n<14>Dec  6 09:00:01 ec2: #############################################################\n")
	b.WriteString("<14>Dec  6 09:00:01 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "<14>Dec  6 09:00:01 ec2: 256 %s root@ip-172-31-20-7 (%s)\n", ssh.FingerprintSHA256(k), strings.ToUpper(strings.TrimPrefix(k.Type(), "ssh-")))
	}
	b.WriteString("<14>Dec  6 09:00:01 ec2: -----END SSH HOST KEY FINGERPRINTS-----\n<14>Dec  6 09:00:01 ec2: #############################################################\n")
	b.WriteString("-----BEGIN SSH HOST KEY KEYS-----\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s root@ip-172-31-20-7\n", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))))
	}
	b.WriteString("-----END SSH HOST KEY KEYS-----\n[   12.402211] cloud-init[1020]: Cloud-init v. 24.1.4 finished.\n")
	return b.String()
}
