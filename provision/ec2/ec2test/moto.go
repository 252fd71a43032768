// Package ec2test runs a private moto_server (a real EC2 API peer) for tests
// and launches instances into it the way the Launch service would.
// FakeEC2 answers the bot's listings for fleets too big for moto.
//
// Credentials: nothing global is set. Tests pass Config(endpoint, regions...)
// to ec2.New; it carries static "testing" credentials in Config.Credentials.
package ec2test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/packit/packit-launch/internal/syncbuf"
	pec2 "github.com/packit/packit-launch/provision/ec2"
)

// Credentials are the static credentials moto accepts.
func Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider("testing", "testing", "")
}

// Config is an ec2.Config for a moto endpoint with test credentials.
// Without regions it uses us-east-1.
func Config(endpoint string, regions ...string) pec2.Config {
	if len(regions) == 0 {
		regions = []string{"us-east-1"}
	}
	return pec2.Config{Regions: regions, Endpoint: endpoint, Credentials: Credentials()}
}

// Client is a raw EC2 client for a moto endpoint, for tests that set up or
// inspect state the bot's API does not cover.
func Client(endpoint, region string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  Credentials(),
	})
}

// StartMoto gives the test a private moto_server on 127.0.0.1 and returns
// its endpoint URL. A missing moto_server fails the test. When the test
// ends, the server is reset (POST /moto-api/reset) and kept for the next
// test of this process: starting one costs about 3 s of Python, a reset
// milliseconds. Tests running at once each get their own.
func StartMoto(t testing.TB) string {
	t.Helper()
	m, ok := idleMoto()
	if !ok {
		endpoint, stop, err := RunMoto()
		if err != nil {
			t.Fatal(err)
		}
		m = motoServer{endpoint, stop}
	}
	t.Cleanup(func() { m.release() })
	return m.endpoint
}

// motoServer is a started moto_server.
type motoServer struct {
	endpoint string
	stop     func()
}

// motoPool holds the servers finished tests left, reset. They die with
// the process (Pdeathsig): nothing outlives the test binary.
var motoPool struct {
	mu   sync.Mutex
	idle []motoServer
}

func idleMoto() (motoServer, bool) {
	motoPool.mu.Lock()
	defer motoPool.mu.Unlock()
	n := len(motoPool.idle)
	if n == 0 {
		return motoServer{}, false
	}
	m := motoPool.idle[n-1]
	motoPool.idle = motoPool.idle[:n-1]
	return m, true
}

// release resets the server for the next test, or stops it when the reset
// fails or enough are idle already.
func (m motoServer) release() {
	resp, err := http.Post(m.endpoint+"/moto-api/reset", "", nil)
	if err == nil {
		resp.Body.Close()
	}
	motoPool.mu.Lock()
	defer motoPool.mu.Unlock()
	if err != nil || resp.StatusCode != http.StatusOK || len(motoPool.idle) >= 4 {
		m.stop()
		return
	}
	motoPool.idle = append(motoPool.idle, m)
}

// RunMoto starts a private moto_server on a free 127.0.0.1 port and returns
// its endpoint and a function that kills it (for the demo; tests use
// StartMoto).
func RunMoto() (endpoint string, stop func(), err error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return "", nil, fmt.Errorf("moto_server not found in PATH (install: pipx install 'moto[server]'): %w", err)
	}
	// The free port may be taken between finding it and moto binding it
	// (tests start servers in parallel): try another.
	for range 5 {
		endpoint, stop, err = runMoto(bin)
		if err == nil || !errors.Is(err, errPortTaken) {
			break
		}
	}
	return endpoint, stop, err
}

// errPortTaken is moto_server finding its port taken.
var errPortTaken = errors.New("port already in use")

func runMoto(bin string) (endpoint string, stop func(), err error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	endpoint = "http://127.0.0.1:" + strconv.Itoa(port)

	var output syncbuf.Buffer
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout = &output
	cmd.Stderr = &output
	// Its own process group, so that killing it also kills what the pyenv
	// shim may have started.
	// Pdeathsig: it dies with this process, even one killed before it
	// could stop the server (a test binary's timeout, a kept idle server).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start moto_server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop = func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}

	// Poll until it answers: starting moto takes a second or two.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(endpoint + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return endpoint, stop, nil
			}
		}
		select {
		case <-exited:
			if strings.Contains(output.String(), "Address already in use") {
				return "", nil, fmt.Errorf("moto_server on %s: %w", endpoint, errPortTaken)
			}
			return "", nil, fmt.Errorf("moto_server exited before answering on %s:\n%s", endpoint, output.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("moto_server did not answer on %s within 30s:\n%s", endpoint, output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Reset resets moto's state (POST /moto-api/reset).
func Reset(t testing.TB, endpoint string) {
	t.Helper()
	resp, err := http.Post(endpoint+"/moto-api/reset", "", nil)
	if err != nil {
		t.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset moto: %s", resp.Status)
	}
}

// AMI returns an image id moto knows in region.
func AMI(t testing.TB, endpoint, region string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := FirstAMI(ctx, endpoint, region)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// FirstAMI returns an image id moto knows in region.
func FirstAMI(ctx context.Context, endpoint, region string) (string, error) {
	out, err := Client(endpoint, region).DescribeImages(ctx, &ec2.DescribeImagesInput{})
	if err != nil {
		return "", fmt.Errorf("describe images in %s: %w", region, err)
	}
	for _, img := range out.Images {
		if id := aws.ToString(img.ImageId); id != "" {
			return id, nil
		}
	}
	return "", fmt.Errorf("moto has no images in %s", region)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
