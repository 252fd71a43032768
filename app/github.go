package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v60/github"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Installations makes GitHub clients that act as the app's installations.
type Installations struct {
	appID   int64
	baseURL *url.URL
	base    http.RoundTripper

	// app acts as the App itself (its JWT): finding installations, reading the App.
	app *github.Client
	// signer signs App JWTs, each once for its lifetime, for every client.
	signer *cachedSigner

	// answers are GET answers kept by ETag, to ask again conditionally.
	answers *lru.Cache[string, revalidated]

	// now is the clock of the clients made from here on (time.Now; tests
	// move a clock of their own instead of waiting).
	now func() time.Time

	mu      sync.Mutex
	clients *lru.Cache[int64, *github.Client]
}

// maxClients bounds the client cache: each holds an installation's token;
// an installation used again after eviction just fetches a new one.
const maxClients = 1024

// NewInstallations checks the private key and API URL (which must end in /).
func NewInstallations(appID int64, privateKeyPEM []byte, apiURL string) (*Installations, error) {
	u, err := url.Parse(apiURL)
	if err != nil || !strings.HasSuffix(u.Path, "/") {
		return nil, fmt.Errorf("GITHUB_API_URL %q must be an absolute URL ending in /", apiURL)
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(privateKeyPEM)
	if err != nil {
		// The error can quote key material; say only what is wrong.
		return nil, errors.New("GITHUB_PRIVATE_KEY is not a valid RSA private key in PEM form: download a new one from the GitHub App's settings page")
	}
	signer := &cachedSigner{inner: ghinstallation.NewRSASigner(jwt.SigningMethodRS256, key)}
	base := gitHubTransport()
	tr, err := ghinstallation.NewAppsTransportWithOptions(base, appID, ghinstallation.WithSigner(signer))
	if err != nil {
		return nil, err
	}
	tr.BaseURL = strings.TrimSuffix(u.String(), "/")
	app := github.NewClient(&http.Client{Transport: tr, Timeout: 30 * time.Second})
	app.BaseURL = u
	clients, err := lru.New[int64, *github.Client](maxClients)
	if err != nil {
		return nil, err
	}
	answers, err := lru.New[string, revalidated](maxRevalidated)
	if err != nil {
		return nil, err
	}
	return &Installations{appID: appID, baseURL: u, base: base, app: app, signer: signer, answers: answers, clients: clients, now: time.Now}, nil
}

// gitHubIdleConns is how many idle connections to GitHub are kept: one per
// job the worker may run at once, and more. net/http keeps 2 per host by
// default, so jobs in parallel closed and dialled connections all the time
// (a TCP and TLS handshake each; 14 % of serve's CPU in a /launch load).
const gitHubIdleConns = 64

// gitHubTransport is http.DefaultTransport keeping gitHubIdleConns to the
// one host every request goes to.
func gitHubTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = gitHubIdleConns
	tr.MaxIdleConnsPerHost = gitHubIdleConns
	return tr
}

// Client returns a client for installation id; tokens are fetched and
// renewed by ghinstallation as needed, one request in flight at a time,
// with App JWTs signed once a minute (cachedSigner) and failures answered
// from memory for a moment (failFast).
func (i *Installations) Client(_ context.Context, id int64) (*github.Client, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if c, ok := i.clients.Get(id); ok {
		return c, nil
	}
	atr, err := ghinstallation.NewAppsTransportWithOptions(i.base, i.appID, ghinstallation.WithSigner(i.signer))
	if err != nil {
		return nil, err
	}
	tr := ghinstallation.NewFromAppsTransport(atr, id)
	tr.BaseURL = strings.TrimSuffix(i.baseURL.String(), "/")
	rt := &revalidating{next: newFailFast(tr, i.now), installation: id, answers: i.answers}
	c := github.NewClient(&http.Client{Transport: rt, Timeout: 30 * time.Second})
	c.BaseURL = i.baseURL
	i.clients.Add(id, c)
	return c, nil
}

// isNotFound reports a GitHub 404.
func isNotFound(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound
}
