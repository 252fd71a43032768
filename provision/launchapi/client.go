package launchapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Defaults for Config.
const (
	DefaultBaseURL  = "https://console.redhat.com/api/provisioning/v1"
	DefaultTokenURL = "https://sso.redhat.com/auth/realms/redhat-external/protocol/openid-connect/token"
	// OfflineTokenClientID is the SSO client that offline tokens belong to.
	OfflineTokenClientID = "cloud-services"

	defaultRequestTimeout = 30 * time.Second
	defaultMaxRetries     = 3
	defaultRateRetries    = 5
	defaultRetryBackoff   = 500 * time.Millisecond
	defaultMaxBackoff     = 10 * time.Second
	defaultAdoptWindow    = 50
	maxBodySize           = 8 << 20
)

// Config configures a Client. Exactly one way to authenticate must be set:
// a service account (ClientID + ClientSecret), an offline token
// (OfflineToken), or an X-Rh-Identity value (Identity) for talking to the
// backend directly.
type Config struct {
	BaseURL  string // default DefaultBaseURL
	TokenURL string // default DefaultTokenURL

	ClientID     string // service account id; with OfflineToken overrides "cloud-services"
	ClientSecret string
	OfflineToken string
	Identity     string

	HTTPClient     *http.Client  // default: a client on http.DefaultTransport
	RequestTimeout time.Duration // per HTTP request; default 30 s

	// MaxRetries bounds retries of GETs after a 5xx or a network error;
	// default 3, negative disables.
	MaxRetries int
	// MaxRateLimitRetries bounds retries after a 429 (any method: a 429
	// means nothing was done); default 5, negative disables.
	MaxRateLimitRetries int
	// RetryBackoff is the first wait before a retry; it doubles up to
	// MaxBackoff, which also caps a Retry-After. Defaults 500 ms and 10 s.
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// AdoptWindow is how many of the org's newest reservations are searched
	// for this launch's name when a create's outcome is unknown; default 50.
	AdoptWindow int

	Clock  Clock        // default real time
	Logger *slog.Logger // default slog.Default()
}

// Client talks to the Launch API v1. It is safe for concurrent use.
type Client struct {
	baseURL  string
	http     *http.Client
	tokens   oauth2.TokenSource // nil in identity mode
	identity string
	timeout  time.Duration

	maxRetries, maxRateRetries int
	backoff, maxBackoff        time.Duration
	adoptWindow                int
	clock                      Clock
	log                        *slog.Logger
}

// New validates cfg and returns a client. It does no I/O.
func New(cfg Config) (*Client, error) {
	modes := 0
	for _, set := range []bool{cfg.ClientSecret != "", cfg.OfflineToken != "", cfg.Identity != ""} {
		if set {
			modes++
		}
	}
	switch {
	case modes != 1:
		return nil, errors.New("launchapi: set exactly one of a service account (client id and secret), an offline token, or an identity")
	case cfg.ClientSecret != "" && cfg.ClientID == "":
		return nil, errors.New("launchapi: a client secret needs a client id")
	case cfg.Identity != "" && cfg.ClientID != "":
		return nil, errors.New("launchapi: a client id makes no sense with an identity")
	}
	c := &Client{
		identity: cfg.Identity, timeout: cfg.RequestTimeout,
		maxRetries: cfg.MaxRetries, maxRateRetries: cfg.MaxRateLimitRetries,
		backoff: cfg.RetryBackoff, maxBackoff: cfg.MaxBackoff, adoptWindow: cfg.AdoptWindow,
		clock: cfg.Clock, log: cfg.Logger,
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	if err := checkURL(base); err != nil {
		return nil, fmt.Errorf("launchapi: base URL: %w", err)
	}
	c.baseURL = strings.TrimRight(base, "/")
	tokenURL := cfg.TokenURL
	if tokenURL == "" {
		tokenURL = DefaultTokenURL
	}
	if cfg.Identity == "" {
		if err := checkURL(tokenURL); err != nil {
			return nil, fmt.Errorf("launchapi: token URL: %w", err)
		}
	}
	if c.timeout <= 0 {
		c.timeout = defaultRequestTimeout
	}
	c.maxRetries = orDefault(c.maxRetries, defaultMaxRetries)
	c.maxRateRetries = orDefault(c.maxRateRetries, defaultRateRetries)
	if c.backoff <= 0 {
		c.backoff = defaultRetryBackoff
	}
	if c.maxBackoff <= 0 {
		c.maxBackoff = defaultMaxBackoff
	}
	if c.adoptWindow <= 0 {
		c.adoptWindow = defaultAdoptWindow
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.http = cfg.HTTPClient
	if c.http == nil {
		c.http = &http.Client{Transport: http.DefaultTransport}
	}

	// Token requests cannot take the caller's context, so bound them with
	// the client's timeout instead.
	tokenHTTP := *c.http
	if tokenHTTP.Timeout == 0 {
		tokenHTTP.Timeout = c.timeout
	}
	tctx := context.WithValue(context.Background(), oauth2.HTTPClient, &tokenHTTP)
	switch {
	case cfg.ClientSecret != "":
		cc := clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}
		c.tokens = cc.TokenSource(tctx)
	case cfg.OfflineToken != "":
		id := cfg.ClientID
		if id == "" {
			id = OfflineTokenClientID
		}
		oc := oauth2.Config{ClientID: id, Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}}
		c.tokens = oc.TokenSource(tctx, &oauth2.Token{RefreshToken: cfg.OfflineToken})
	}
	return c, nil
}

func orDefault(n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		return 0
	}
	return n
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	if u.User != nil {
		return errors.New("credentials in the URL are not supported")
	}
	return nil
}

// notSentError marks a failure before the request left the client, so its
// outcome is known: nothing happened.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// do sends one API call with retries and decodes a 2xx body into out (when
// out is not nil). path is relative to the base URL.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return fmt.Errorf("launchapi: %s %s: encode request: %w", method, path, err)
		}
	}
	retries, rateRetries := 0, 0
	for {
		resp, err := c.once(ctx, method, path, query, payload)
		var wait time.Duration
		switch {
		case err != nil:
			var ns *notSentError
			if ctx.Err() != nil || errors.As(err, &ns) || method != http.MethodGet || retries >= c.maxRetries {
				return fmt.Errorf("launchapi: %s %s: %w", method, path, err)
			}
			retries++
			wait = c.backoffFor(retries)
			c.log.WarnContext(ctx, "launch api request failed, retrying", "method", method, "path", path, "error", err, "retry", retries)
		case resp.status >= 200 && resp.status < 300:
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(resp.body, out); err != nil {
				return &DecodeError{Method: method, Path: path, StatusCode: resp.status, Err: err}
			}
			return nil
		case resp.status == http.StatusTooManyRequests && rateRetries < c.maxRateRetries:
			rateRetries++
			wait = c.backoffFor(rateRetries)
			if ra := retryAfter(resp.header, c.clock.Now()); ra > 0 {
				wait = min(ra, c.maxBackoff)
			}
			c.log.WarnContext(ctx, "launch api rate limited, retrying", "method", method, "path", path, "wait", wait, "retry", rateRetries)
		case resp.status >= 500 && method == http.MethodGet && retries < c.maxRetries:
			retries++
			wait = c.backoffFor(retries)
			c.log.WarnContext(ctx, "launch api server error, retrying", "method", method, "path", path, "status", resp.status, "retry", retries)
		default:
			return newAPIError(method, path, resp, c.clock.Now())
		}
		if err := c.clock.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("launchapi: %s %s: %w", method, path, err)
		}
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// once sends a single HTTP request under the per-request timeout.
func (c *Client) once(ctx context.Context, method, path string, query url.Values, payload []byte) (*response, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(rctx, method, u, body)
	if err != nil {
		return nil, &notSentError{err}
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.tokens != nil {
		tok, err := c.tokens.Token()
		if err != nil {
			return nil, &notSentError{fmt.Errorf("get access token: %w", err)}
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	} else {
		req.Header.Set("X-Rh-Identity", c.identity)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBodySize))
	if err != nil {
		return nil, fmt.Errorf("read %d response: %w", res.StatusCode, err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}, nil
}

func (c *Client) backoffFor(retry int) time.Duration {
	d := c.backoff
	for i := 1; i < retry && d < c.maxBackoff; i++ {
		d *= 2
	}
	return min(d, c.maxBackoff)
}

func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// newAPIError reads msg and error best-effort: a 400 body may hold two JSON
// documents (read the first) or be plain text.
func newAPIError(method, path string, resp *response, now time.Time) *APIError {
	e := &APIError{StatusCode: resp.status, Method: method, Path: path, RetryAfter: retryAfter(resp.header, now)}
	var doc struct {
		Msg   string `json:"msg"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(bytes.NewReader(resp.body)).Decode(&doc); err == nil {
		e.Msg, e.Detail = doc.Msg, doc.Error
		return e
	}
	text := strings.TrimSpace(string(resp.body))
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	if len(text) > 200 {
		text = text[:200]
	}
	if strings.HasPrefix(resp.header.Get("Content-Type"), "text/plain") {
		e.Msg = text
	}
	return e
}
