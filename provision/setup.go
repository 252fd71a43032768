package provision

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/launchapi"
	"golang.org/x/oauth2"
)

// SetupError is a check of the operator's setup that failed for certain:
// launching cannot work until the operator changes something.
type SetupError struct{ Problem string }

func (e *SetupError) Error() string { return e.Problem }

// setupAPI is what checking the setup needs of the Launch service.
type setupAPI interface {
	CheckSourceStatus(ctx context.Context, sourceID string) error
	GetUploadInfo(ctx context.Context, sourceID string) (*launchapi.UploadInfo, error)
}

// accountSource tells which AWS account the bot acts in (*ec2.Cloud).
type accountSource interface {
	AccountID(ctx context.Context) (string, error)
}

// CheckSetup is the pre-flight an operator would otherwise learn from a
// failed /launch: the Launch source works, and it launches into the AWS
// account the bot's own access reaches (else the bot could neither tag nor
// end its VMs). A *SetupError is certain; other errors may pass.
// credentials names the setting holding the Launch credentials in use, so
// that a refusal of those is not blamed on the source.
func CheckSetup(ctx context.Context, api setupAPI, sourceID, credentials string, aws accountSource) error {
	if err := api.CheckSourceStatus(ctx, sourceID); err != nil {
		return setupProblem(fmt.Sprintf("LAUNCH_SOURCE_ID %s: the Launch service says the source does not work", sourceID), credentials, err)
	}
	info, err := api.GetUploadInfo(ctx, sourceID)
	if err != nil {
		return setupProblem(fmt.Sprintf("LAUNCH_SOURCE_ID %s: cannot read its AWS account", sourceID), credentials, err)
	}
	if info.Provider != "" && info.Provider != "aws" {
		return &SetupError{fmt.Sprintf("LAUNCH_SOURCE_ID %s is a %s source; packit-launch needs an AWS one", sourceID, info.Provider)}
	}
	account, err := aws.AccountID(ctx)
	if ec2.IsSetupError(err) {
		return &SetupError{fmt.Sprintf("AWS refused the bot's credentials (%s): %v", ec2.ErrorCode(err), err)}
	}
	if err != nil {
		return err
	}
	if info.AWSAccountID != "" && info.AWSAccountID != account {
		return &SetupError{fmt.Sprintf("the Launch source %s launches into AWS account %s, but the bot's AWS access (credentials or AWS_ROLE_ARN) is to account %s: "+
			"it could neither tag nor end those VMs. Give the bot access to account %s", sourceID, info.AWSAccountID, account, info.AWSAccountID)}
	}
	return nil
}

// setupProblem makes answers no retry will change (refused credentials, an
// unknown source) certain; a 5xx or a network error may pass. A refusal of
// the credentials names their setting rather than the source.
func setupProblem(what, credentials string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		// Not an answer: the check did not happen, which is not a refusal.
		// The innermost URL is the one not reached (SSO, behind the API's).
		for inner := ue; errors.As(inner.Err, &inner); {
			ue = inner
		}
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			host = u.Host
		}
		return fmt.Errorf("could not reach %s, so %s is not checked (a network problem, not a refusal: try again): %w", host, strings.SplitN(what, ":", 2)[0], err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer in time, so %s is not checked (try again): %w", strings.SplitN(what, ":", 2)[0], err)
	}
	var tokenErr *oauth2.RetrieveError
	if errors.As(err, &tokenErr) {
		return &SetupError{fmt.Sprintf("the SSO token endpoint refused the bot's Launch credentials (%s; HTTP %d): check them", credentials, tokenErr.Response.StatusCode)}
	}
	var apiErr *launchapi.APIError
	if errors.As(err, &apiErr) && (apiErr.StatusCode >= 500 || apiErr.StatusCode == http.StatusTooManyRequests) {
		return fmt.Errorf("the Launch service answered HTTP %d, so %s is not checked (its trouble, not a refusal: try again later): %w", apiErr.StatusCode, strings.SplitN(what, ":", 2)[0], err)
	}
	if apiErr == nil || apiErr.StatusCode < 400 {
		return fmt.Errorf("%s: %w", what, err)
	}
	if apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden ||
		strings.Contains(strings.ToLower(apiErr.Msg), "identity") {
		return &SetupError{fmt.Sprintf("the Launch service refused the bot's credentials (%s; HTTP %d: %s): check them, the source was not reached", credentials, apiErr.StatusCode, apiErr.Msg)}
	}
	return &SetupError{fmt.Sprintf("%s (HTTP %d: %s)", what, apiErr.StatusCode, apiErr.Msg)}
}
