// Package ec2 is the bot's own view of AWS: per-launch launch templates with
// guardrails, tags, listing what the bot manages, and termination. The Launch
// API can start instances but never stop them, so everything here exists to
// make sure nothing the bot launched outlives its expiry.
package ec2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// Tag keys; every resource the bot creates carries TagManaged=true.
const (
	TagManaged       = "packit-launch:managed" // value "true"
	TagLaunch        = "packit-launch:launch-id"
	TagRepo          = "packit-launch:repo"
	TagPR            = "packit-launch:pr"
	TagOwner         = "packit-launch:owner"
	TagExpiresAt     = "packit-launch:expires-at"      // RFC 3339 UTC
	TagHardExpiresAt = "packit-launch:hard-expires-at" // RFC 3339 UTC
	TagCheckRun      = "packit-launch:check-run-id"    // the launch's check run, so its PR can be told without Redis
	TagTemplateOf    = "aws:ec2launchtemplate:id"      // set by EC2 itself
)

// callTimeout bounds every single AWS call (one page of a paginated call).
const callTimeout = 30 * time.Second

// defaultPageSize is the MaxResults used for DescribeInstances (AWS allows 5–1000).
const defaultPageSize = 1000

// defaultTemplatePageSize is the MaxResults used for DescribeLaunchTemplates
// (AWS allows 1–200).
const defaultTemplatePageSize = 200

// liveStates are the instance states that still cost money or can come back.
var liveStates = []string{"pending", "running", "stopping", "stopped"}

// Config says how to reach AWS.
type Config struct {
	Regions    []string // every region a profile allows; a client per region
	RoleARN    string   // optional: assume this role (stscreds, with ExternalID) on top of the default chain
	ExternalID string
	Endpoint   string // optional base endpoint (tests: moto); otherwise the SDK's own resolution incl. AWS_ENDPOINT_URL

	// Credentials, when set, replace the SDK's default credential chain as
	// the base credentials (RoleARN is still assumed on top). Tests use it
	// with static "testing" credentials so that nothing global is set.
	Credentials aws.CredentialsProvider

	// Log receives the AWS SDK's own lines; nil: slog.Default().
	Log *slog.Logger
}

// sdkLog is the AWS SDK's logger writing to the bot's.
type sdkLog struct{ log *slog.Logger }

func (l sdkLog) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelWarn
	if c == logging.Debug {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, "aws sdk", "detail", fmt.Sprintf(format, v...))
}

// Cloud talks to EC2: the configured regions, and any other region it is
// asked about (a VM launched under an older config must still be ended).
type Cloud struct {
	regions []string
	awsCfg  aws.Config
	mu      sync.Mutex
	clients map[string]*ec2.Client
	// MaxResults of DescribeInstances and of DescribeLaunchTemplates
	pageSize, templatePageSize int32
}

// New builds one EC2 client per region. It does not call AWS: credentials are
// resolved (and the role assumed) on the first call.
func New(ctx context.Context, cfg Config) (*Cloud, error) {
	if len(cfg.Regions) == 0 {
		return nil, errors.New("ec2: no regions configured")
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	// The SDK's own warnings (a deprecated setting, a clock skew, a retry
	// mode) go to the bot's log, in its format.
	opts := []func(*config.LoadOptions) error{config.WithRegion(cfg.Regions[0]), config.WithLogger(sdkLog{log})}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	if cfg.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(cfg.Endpoint))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("ec2: load AWS config: %w", err)
	}
	if cfg.RoleARN != "" {
		// The bot's own role in the customer's account, assumed with an
		// external id; the cache refreshes it before it expires.
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), cfg.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "packit-launch"
			if cfg.ExternalID != "" {
				o.ExternalID = aws.String(cfg.ExternalID)
			}
		})
		awsCfg.Credentials = aws.NewCredentialsCache(provider)
	}

	c := &Cloud{
		regions:          slices.Clone(cfg.Regions),
		awsCfg:           awsCfg,
		clients:          make(map[string]*ec2.Client, len(cfg.Regions)),
		pageSize:         defaultPageSize,
		templatePageSize: defaultTemplatePageSize,
	}
	for _, region := range cfg.Regions {
		if region == "" {
			return nil, errors.New("ec2: empty region in config")
		}
		c.clients[region] = ec2.NewFromConfig(awsCfg, func(o *ec2.Options) { o.Region = region })
	}
	return c, nil
}

// Regions returns the regions this Cloud has a client for.
func (c *Cloud) Regions() []string { return slices.Clone(c.regions) }

func (c *Cloud) client(region string) (*ec2.Client, error) {
	if !regionRE.MatchString(region) {
		return nil, fmt.Errorf("ec2: %q is not a region name", region)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.clients[region]
	if !ok {
		cl = ec2.NewFromConfig(c.awsCfg, func(o *ec2.Options) { o.Region = region })
		c.clients[region] = cl
	}
	return cl, nil
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)

// NotFoundError says EC2 does not know an instance.
type NotFoundError struct {
	Region, ID string
	err        error // EC2's own error, when there was one
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("ec2: instance %s not found in %s", e.ID, e.Region)
}

// Unwrap lets callers still errors.As the smithy APIError.
func (e *NotFoundError) Unwrap() error { return e.err }

// errorCode returns the AWS error code inside err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// withTimeout gives one AWS call its own deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, callTimeout)
}

// setupErrorCodes are AWS answers that no retry will change: the bot's
// credentials, role or IAM policy, or a profile's ids, are wrong.
// (AuthFailure and SignatureDoesNotMatch are left out: a skewed clock
// causes them too, and passes.)
var setupErrorCodes = map[string]bool{
	"UnauthorizedOperation": true, "AccessDenied": true, "AccessDeniedException": true,
	"InvalidClientTokenId": true, "OptInRequired": true,
	"InvalidLaunchTemplateId.NotFound": true, "InvalidLaunchTemplateId.Malformed": true,
	"InvalidLaunchTemplateName.NotFoundException": true, "InvalidGroup.NotFound": true,
	"InvalidGroupId.Malformed": true, "InvalidSubnetID.NotFound": true,
}

// IsSetupError reports whether err is AWS refusing the operator's setup (a
// denied action, bad credentials, or a template, group or subnet that does
// not exist): worth telling someone, not worth retrying.
func IsSetupError(err error) bool { return setupErrorCodes[errorCode(err)] }

// ErrorCode is the AWS error code inside err ("" when there is none), for logs and messages.
func ErrorCode(err error) string { return errorCode(err) }

// AccountID is the AWS account the bot's credentials (or assumed role) act in.
func (c *Cloud) AccountID(ctx context.Context) (string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	out, err := sts.NewFromConfig(c.awsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("ec2: who am I (sts:GetCallerIdentity): %w", err)
	}
	return aws.ToString(out.Account), nil
}

// ErrNoCredentials: the SDK's credential chain found no credentials to act with.
var ErrNoCredentials = errors.New("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
	"or AWS_PROFILE, or run where an instance or pod role provides them (with AWS_EC2_METADATA_DISABLED unset)")

// CheckCredentials resolves the bot's credentials (assuming aws.role_arn,
// if set) without calling EC2: without them nothing can end a VM.
func (c *Cloud) CheckCredentials(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if _, err := c.awsCfg.Credentials.Retrieve(ctx); err != nil {
		if code := errorCode(err); code != "" { // an STS answer: the role or the base credentials were refused
			return fmt.Errorf("AWS refused the bot's credentials (%s): check aws.role_arn and aws.external_id, and the base credentials", code)
		}
		var ue *url.Error
		if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrAWSUnreachable, err)
		}
		return ErrNoCredentials
	}
	return nil
}

// ErrAWSUnreachable means the credentials could not be checked: AWS (STS)
// did not answer. It may pass; a missing credential does not.
var ErrAWSUnreachable = errors.New("AWS could not be reached to check the bot's credentials")
