package storetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the name the test Sentinels monitor.
const SentinelMaster = "packit-launch"

// Sentinel is a highly available Redis on loopback, as operators run it: a
// primary, a replica, and three redis-server --sentinel that promote the
// replica about a second after the primary stops answering.
type Sentinel struct {
	// Addrs are the Sentinels' host:port.
	Addrs []string
	t     testing.TB
	dir   string
	bin   string
	mu    sync.Mutex
	nodes map[string]*exec.Cmd // data nodes by host:port
}

// StartSentinel starts the set for the test, stopped at its end.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed; `make test` installs it, or run: %s", InstallHint)
	}
	s := &Sentinel{t: t, dir: t.TempDir(), bin: bin, nodes: map[string]*exec.Cmd{}}
	t.Cleanup(s.stopAll)
	primary, replica := freeTCP(t), freeTCP(t)
	s.startNode(primary, "")
	s.startNode(replica, primary)
	var sentinels []*exec.Cmd
	for i := range 3 {
		addr := freeTCP(t)
		_, port, _ := net.SplitHostPort(addr)
		_, pport, _ := net.SplitHostPort(primary)
		conf := filepath.Join(s.dir, fmt.Sprintf("sentinel-%d.conf", i))
		body := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel resolve-hostnames no\n"+
			"sentinel monitor %s 127.0.0.1 %s 2\nsentinel down-after-milliseconds %s 1000\n"+
			"sentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n", port, s.dir, SentinelMaster, pport, SentinelMaster, SentinelMaster, SentinelMaster)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, conf, "--sentinel")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server --sentinel: %v", err)
		}
		sentinels = append(sentinels, cmd)
		s.Addrs = append(s.Addrs, addr)
	}
	t.Cleanup(func() {
		for _, c := range sentinels {
			c.Process.Kill()
			c.Wait()
		}
	})
	s.waitPrimary(primary, 20*time.Second)
	s.waitAcquainted(30 * time.Second)
	return s
}

// waitAcquainted waits until each Sentinel knows the replica and the
// other Sentinels: they learn both only from the primary (its INFO, every
// 10 s, and its hello channel), so a primary killed sooner is never
// failed over.
func (s *Sentinel) waitAcquainted(within time.Duration) {
	s.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	for _, a := range s.Addrs {
		c := redis.NewSentinelClient(&redis.Options{Addr: a})
		for {
			replicas, err1 := c.Replicas(ctx, SentinelMaster).Result()
			others, err2 := c.Sentinels(ctx, SentinelMaster).Result()
			if err1 == nil && err2 == nil && len(replicas) == 1 && len(others) == len(s.Addrs)-1 {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				s.t.Fatalf("Sentinel %s did not learn the replica and the other Sentinels within %s (%d replicas, %d Sentinels; %v %v)", a, within, len(replicas), len(others), err1, err2)
			}
			time.Sleep(100 * time.Millisecond) // waiting for Sentinel's discovery
		}
		c.Close()
	}
}

// Primary is the data node the Sentinels name as primary now.
func (s *Sentinel) Primary(ctx context.Context) (string, error) {
	for _, a := range s.Addrs {
		c := redis.NewSentinelClient(&redis.Options{Addr: a})
		addr, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		c.Close()
		if err == nil {
			return net.JoinHostPort(addr[0], addr[1]), nil
		}
	}
	return "", fmt.Errorf("no Sentinel names a primary for %s", SentinelMaster)
}

// KillPrimary SIGKILLs the primary and returns its address; the Sentinels
// promote the replica (WaitFailover).
func (s *Sentinel) KillPrimary() string {
	s.t.Helper()
	p, err := s.Primary(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	cmd := s.nodes[p]
	delete(s.nodes, p)
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("the primary %s is not one of the test's nodes", p)
	}
	cmd.Process.Kill()
	cmd.Wait()
	return p
}

// Rejoin starts the data node at addr again, empty, as a replica of the
// primary now (a replaced pod), and waits until it is in sync.
func (s *Sentinel) Rejoin(addr string, within time.Duration) {
	s.t.Helper()
	p, err := s.Primary(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	s.startNode(addr, p)
	deadline := time.Now().Add(within)
	for !hasReplica(p) {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s did not sync as %s's replica within %s", addr, p, within)
		}
		time.Sleep(100 * time.Millisecond) // waiting for the initial sync
	}
}

// WaitFailover waits until the Sentinels name a primary other than old
// that answers as one, and returns it.
func (s *Sentinel) WaitFailover(old string, within time.Duration) string {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, err := s.Primary(context.Background())
		if err == nil && p != old && isPrimary(p) {
			return p
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no failover from %s within %s (primary now %q, %v)", old, within, p, err)
		}
		time.Sleep(100 * time.Millisecond) // waiting for Sentinel's election
	}
}

func (s *Sentinel) waitPrimary(addr string, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, err := s.Primary(context.Background())
		if err == nil && p == addr && isPrimary(addr) && hasReplica(addr) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the Sentinels did not name %s primary within %s (%q, %v)", addr, within, p, err)
		}
		time.Sleep(50 * time.Millisecond) // waiting for processes to come up
	}
}

// hasReplica says whether addr's replica is connected and in sync.
func hasReplica(addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "replication").Result()
	return err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
}

func isPrimary(addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "replication").Result()
	return err == nil && strings.Contains(info, "role:master")
}

func (s *Sentinel) startNode(addr, primaryOf string) {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	dir := filepath.Join(s.dir, "node-"+port)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	args := []string{"--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"}
	if primaryOf != "" {
		host, pport, _ := net.SplitHostPort(primaryOf)
		args = append(args, "--replicaof", host, pport)
	}
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.mu.Lock()
	s.nodes[addr] = cmd
	s.mu.Unlock()
}

func (s *Sentinel) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.nodes {
		c.Process.Kill()
		c.Wait()
	}
}

func freeTCP(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
