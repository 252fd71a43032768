// Package storetest starts a real redis-server for tests.
package storetest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// InstallHint is the command that provides redis-server on Debian.
const InstallHint = "apt-get update && apt-get install -y redis-server"

// StartRedis starts a private redis-server on a unix socket for the test and
// returns its URL. A missing redis-server fails the test loudly.
func StartRedis(t testing.TB) string {
	t.Helper()
	url, stop, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return url
}

// Start starts a private redis-server on a unix socket and returns its URL
// and how to stop it, for fixtures that outlive one test (benchmarks).
func Start() (url string, stop func(), err error) {
	s, err := newServer()
	if err != nil {
		return "", nil, err
	}
	return s.URL, s.stop, nil
}

// Server is a private redis-server that a test can kill and start again.
type Server struct {
	URL            string
	bin, dir, sock string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// NewServer starts a private redis-server for the test, stopped at its end.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s, err := newServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

func newServer() (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not installed; `make test` installs it, or run: %s", InstallHint)
	}
	dir, err := os.MkdirTemp("", "redis")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "redis.sock")
	s := &Server{URL: "unix://" + sock, bin: bin, dir: dir, sock: sock}
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Restart kills the server with SIGKILL and starts an empty one at the
// same address, as a Redis without persistence that crashed and came back:
// clients see their connections drop, then everything is gone.
func (s *Server) Restart() error {
	s.kill()
	return s.start()
}

// Kill stops the server with SIGKILL and leaves it down: Redis gone.
func (s *Server) Kill() { s.kill() }

func (s *Server) start() error {
	cmd := exec.Command(s.bin, "--port", "0", "--unixsocket", s.sock, "--save", "", "--appendonly", "no", "--dir", s.dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	go func() { // drain its log so it never blocks
		sc := bufio.NewScanner(out)
		for sc.Scan() {
		}
	}()
	opts, _ := redis.ParseURL(s.URL)
	c := redis.NewClient(opts)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("redis-server did not answer on %s: %w", s.sock, err)
		}
		time.Sleep(20 * time.Millisecond) // waiting for a process to come up, not synchronising test logic
	}
}

func (s *Server) kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

func (s *Server) stop() {
	s.kill()
	_ = os.RemoveAll(s.dir)
}

// Flush empties the Redis at url, e.g. to simulate lost state.
func Flush(t testing.TB, url string) {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(fmt.Errorf("flush: %w", err))
	}
}
