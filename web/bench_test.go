package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/store"
	"github.com/packit/packit-launch/store/storetest"
)

// BenchmarkPagesAt10k renders the launches and fleet pages from a real
// redis-server holding 10,000 running and 10,000 ended launches, for an
// operator who can access all of their 100 repositories (GitHub's answer
// remembered, as it is for 5 minutes after the first view):
//
//	go test -run '^$' -bench PagesAt10k -benchtime 50x ./web/
//
// ns/op is the server's time for one page; bytes/page what goes over the wire.
func BenchmarkPagesAt10k(b *testing.B) {
	ctx := context.Background()
	st, err := store.OpenWith(ctx, storetest.StartRedis(b), store.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	repos := map[string]bool{}
	now := time.Now().UTC()
	for i := range 20000 {
		repo := fmt.Sprintf("org/repo-%d", i%100)
		repos[repo] = true
		l, _, err := st.CreateLaunch(ctx, &store.Launch{Repo: repo, PR: i, Owner: fmt.Sprintf("user-%d", i%300), Machine: "fedora", Image: "ami-0123456789abcdef0",
			InstanceType: "t3.small", Region: "us-east-1", CommandCommentID: int64(i + 1), State: store.StateRunning, SSHUser: "fedora", PublicIPv4: "198.51.100.7",
			CreatedAt: now, LaunchedAt: now, ExpiresAt: now.Add(time.Hour), HardExpiresAt: now.Add(8 * time.Hour), ExtendStep: time.Hour,
			Events: []store.Event{{At: now, Name: "accept", State: store.StateAccepted}, {At: now, Name: "run", State: store.StateRunning}}})
		if err != nil {
			b.Fatal(err)
		}
		if i%2 == 1 {
			if _, err := st.UpdateLaunch(ctx, l.ID, func(x *store.Launch) error {
				x.State, x.EndedAt, x.EndReason = store.StateEnded, now, "its lifetime ended"
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := range 30 {
		if err := st.CountOutcome(ctx, now.AddDate(0, 0, -i), "running"); err != nil {
			b.Fatal(err)
		}
	}
	cfg := &config.Server{Web: config.Web{PublicURL: "https://launch.example.org", SessionKey: config.Secret(strings.Repeat("k", 32))},
		GitHub: config.GitHub{ClientID: "Iv1.x", ClientSecret: "s"}, Operators: []string{"ops"}, Projects: []config.Project{{Repos: []string{"org/*"}}}}
	s, err := New(cfg, st, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	sess := session{Login: "ops", Token: "ghu_x", CSRF: "c", Expires: now.Add(time.Hour).Unix()}
	s.repos["ops"] = viewerRepos{token: sha(sess.Token), repos: repos, until: now.Add(time.Hour)}
	cookie, err := s.seal.seal(sessionCookie, sess)
	if err != nil {
		b.Fatal(err)
	}
	r := mux.NewRouter()
	s.Register(r)
	for _, page := range []string{"/launches", "/fleet"} {
		b.Run(strings.TrimPrefix(page, "/"), func(b *testing.B) {
			var size int
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "https://launch.example.org"+page, nil)
				req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", page, w.Code, w.Body.String())
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
