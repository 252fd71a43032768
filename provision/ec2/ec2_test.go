package ec2_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
)

func TestNew(t *testing.T) {
	if _, err := ec2.New(t.Context(), ec2.Config{}); err == nil {
		t.Error("New without regions: no error")
	}
	c, err := ec2.New(t.Context(), ec2test.Config("http://127.0.0.1:1", "us-east-1", "eu-west-1"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got := c.Regions(); !slices.Equal(got, []string{"us-east-1", "eu-west-1"}) {
		t.Errorf("Regions = %v", got)
	}
	if _, err := c.ListManaged(t.Context(), "mars-1"); err == nil || !strings.Contains(err.Error(), "mars-1") {
		t.Errorf("ListManaged in a region that does not exist = %v, want an error naming it", err)
	}
}

// TestNewAssumeRole checks that New assumes the role with the external id
// through STS and signs EC2 calls with the assumed credentials.
func TestNewAssumeRole(t *testing.T) {
	endpoint := ec2test.StartMoto(t)
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	// A recording proxy in front of moto shows what the SDK sent.
	var (
		mu       sync.Mutex
		requests []string
	)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		requests = append(requests, string(body))
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	const role = "arn:aws:iam::123456789012:role/packit-launch-bot"
	cfg := ec2test.Config(srv.URL, "us-east-1")
	cfg.RoleARN, cfg.ExternalID = role, "s3cret-external"
	c, err := ec2.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := c.ListManaged(t.Context(), "us-east-1"); err != nil {
		t.Fatalf("ListManaged with assumed role: %v", err)
	}

	mu.Lock()
	var assume string
	for _, body := range requests {
		if strings.Contains(body, "Action=AssumeRole") {
			assume = body
		}
	}
	mu.Unlock()
	form, _ := url.ParseQuery(assume)
	if form.Get("RoleArn") != role || form.Get("ExternalId") != "s3cret-external" {
		t.Fatalf("AssumeRole request = %q, want RoleArn %s and ExternalId s3cret-external", assume, role)
	}

	creds, err := ec2.CredentialsOf(c, "us-east-1").Retrieve(t.Context())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if creds.AccessKeyID == "testing" || creds.SessionToken == "" {
		t.Errorf("credentials = %s (session token %t), want assumed-role credentials", creds.AccessKeyID, creds.SessionToken != "")
	}
	// moto knows whose keys these are.
	who, err := sts.New(sts.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: aws.NewCredentialsCache(ec2.CredentialsOf(c, "us-east-1")),
	}).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if arn := aws.ToString(who.Arn); !strings.Contains(arn, "assumed-role/packit-launch-bot/packit-launch") {
		t.Errorf("caller = %s, want the assumed role", arn)
	}
}

// With no credentials anywhere, the bot says what to set instead of the
// SDK's credential-chain error; with credentials it is quiet.
func TestCheckCredentials(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	none, err := ec2.New(t.Context(), ec2.Config{Regions: []string{"us-east-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := none.CheckCredentials(t.Context()); !errors.Is(err, ec2.ErrNoCredentials) {
		t.Errorf("no credentials: %v, want ErrNoCredentials", err)
	}
	some, err := ec2.New(t.Context(), ec2test.Config("http://127.0.0.1:1", "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := some.CheckCredentials(t.Context()); err != nil {
		t.Errorf("static credentials: %v", err)
	}
}
