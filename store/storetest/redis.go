// Package storetest starts a real redis-server for tests.
package storetest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server is not installed; `make test` installs it, or run: %s", InstallHint)
	}
	dir, err := os.MkdirTemp("", "redis")
	if err != nil {
		return "", nil, err
	}
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}
	go func() { // drain its log so it never blocks
		sc := bufio.NewScanner(out)
		for sc.Scan() {
		}
	}()
	url = "unix://" + sock
	opts, _ := redis.ParseURL(url)
	c := redis.NewClient(opts)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return url, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server did not answer on %s: %w", sock, err)
		}
		time.Sleep(20 * time.Millisecond) // waiting for a process to come up, not synchronising test logic
	}
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
