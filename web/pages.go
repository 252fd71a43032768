package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/store"
)

const (
	// livePage is how many running and waiting launches a page shows.
	livePage = 50
	// endedPage is how many ended launches a page shows; endedScan how
	// many of the latest ended it reads at most to find them.
	endedPage = 25
	endedScan = 1000
	// actionWait bounds a form's Extend or Terminate (GitHub and AWS calls).
	actionWait = time.Minute
)

// viewer is the request's session, or nil after answering a logged-out
// visitor, who sees nothing but the way to log in.
func (s *Server) viewer(w http.ResponseWriter, r *http.Request) *session {
	if sess, ok := s.sessionOf(r); ok {
		return sess
	}
	next := r.URL.RequestURI()
	if r.Method != http.MethodGet {
		next = "/launches" // a form's target answers posts only
	}
	var d doc
	d.f(`<h1>Launches</h1><p>Log in with GitHub to see the VMs of the repositories you can access.</p><a class="login" href="/login?next=%s">Log in with GitHub</a>`,
		url.QueryEscape(next))
	write(w, http.StatusUnauthorized, layout("Log in", nil, false, d.String()))
	return nil
}

// page sends a logged-in viewer's page.
func (s *Server) page(w http.ResponseWriter, status int, sess *session, title, body string) {
	write(w, status, layout(title, sess, s.cfg.IsOperator(sess.Login), body))
}

func (s *Server) launchesPage(w http.ResponseWriter, r *http.Request) {
	sess := s.viewer(w, r)
	if sess == nil {
		return
	}
	ctx := r.Context()
	repos, partial, err := s.visible(ctx, sess)
	if err != nil {
		s.log.Warn("web: the viewer's repositories", "login", sess.Login, "err", err)
		s.problem(w, sess, http.StatusBadGateway, "GitHub did not say which repositories you can access; reload in a moment.")
		return
	}
	liveFrom, _ := strconv.Atoi(r.URL.Query().Get("live_from"))
	liveFrom, endedFrom := max(liveFrom, 0), 0
	if from, err := strconv.Atoi(r.URL.Query().Get("ended_from")); err == nil {
		endedFrom = max(from, 0)
	}
	live, liveNext, err := s.liveLaunches(ctx, repos, liveFrom)
	if err != nil {
		s.log.Error("web: live launches", "err", err)
		s.problem(w, sess, http.StatusServiceUnavailable, "The launch records cannot be read right now; reload in a moment.")
		return
	}
	ended, next, err := s.endedLaunches(ctx, repos, endedFrom)
	if err != nil {
		s.log.Error("web: ended launches", "err", err)
		s.problem(w, sess, http.StatusServiceUnavailable, "The launch records cannot be read right now; reload in a moment.")
		return
	}
	now := s.now()
	var d doc
	d.raw("<h1>Launches</h1>\n")
	if partial {
		d.raw(`<p class="note">You can access more repositories than one page view asks GitHub about; some launches may be missing.</p>`)
	}
	d.raw(`<h2>Running and waiting</h2>`)
	if len(live) == 0 {
		d.raw(`<p class="note" id="no-live">No VM runs or waits in the repositories you can access.</p>`)
	} else {
		d.raw(`<table id="live"><thead><tr><th>launch</th><th>repository</th><th>PR</th><th>owner</th><th>machine</th><th>image</th><th>type, region</th><th>state</th><th>started</th><th>terminates</th><th></th></tr></thead><tbody>`)
		for _, l := range live {
			d.f(`<tr data-launch="%s"><td><a href="/launches/%s"><code>%s</code></a></td><td>%s</td><td><a href="%s">#%d</a></td><td>%s</td><td>%s</td><td>`,
				l.ID, l.ID, l.ID, l.Repo, s.prURL(l), l.PR, l.Owner, l.Machine)
			s.image(&d, l)
			d.f(`</td><td>%s, %s</td><td class="state %s">%s</td><td>%s</td><td>%s <span class="note">(%s)</span></td><td class="actions">`,
				l.InstanceType, l.Region, l.State, l.State, stamp(l.CreatedAt), stamp(l.ExpiresAt), left(l.ExpiresAt, now))
			if l.State == store.StateRunning {
				s.forms(&d, sess, l)
			}
			d.raw("</td></tr>\n")
		}
		d.raw("</tbody></table>")
	}
	if liveNext > 0 {
		d.f(`<p><a id="more-live" href="/launches?live_from=%d&amp;ended_from=%d">More</a></p>`, liveNext, endedFrom)
	}
	d.raw(`<h2>Ended and failed</h2>`)
	if len(ended) == 0 {
		d.raw(`<p class="note" id="no-ended">None here.</p>`)
	} else {
		d.raw(`<table id="ended"><thead><tr><th>launch</th><th>repository</th><th>PR</th><th>owner</th><th>machine</th><th>state</th><th>ended</th><th>why</th></tr></thead><tbody>`)
		for _, l := range ended {
			d.f(`<tr data-launch="%s"><td><a href="/launches/%s"><code>%s</code></a></td><td>%s</td><td><a href="%s">#%d</a></td><td>%s</td><td>%s</td><td class="state %s">%s</td><td>%s</td><td>%s</td></tr>`,
				l.ID, l.ID, l.ID, l.Repo, s.prURL(l), l.PR, l.Owner, l.Machine, l.State, l.State, stamp(l.EndedAt), why(l))
		}
		d.raw("</tbody></table>")
	}
	if next > 0 {
		d.f(`<p><a id="older" href="/launches?live_from=%d&amp;ended_from=%d">Older</a></p>`, liveFrom, next)
	}
	s.page(w, http.StatusOK, sess, "Launches", d.String())
}

// liveLaunches are a page of the running and waiting launches of repos,
// the newest first, from the from-th: the live index's summaries, then the
// records of those shown. next is where the next page starts (0: none).
func (s *Server) liveLaunches(ctx context.Context, repos map[string]bool, from int) (live []*store.Launch, next int, err error) {
	if len(repos) == 0 {
		return nil, 0, nil // nothing to read for
	}
	active, err := s.records.ActiveIndex(ctx)
	if err != nil {
		return nil, 0, err
	}
	var ids []string
	seen := 0
	for i := len(active) - 1; i >= 0; i-- {
		if !repos[strings.ToLower(active[i].Repo)] {
			continue
		}
		if seen++; seen <= from {
			continue
		}
		if len(ids) == livePage {
			next = from + livePage
			break
		}
		ids = append(ids, active[i].ID)
	}
	live, err = s.records.LiveRecords(ctx, ids)
	slices.Reverse(live)
	return live, next, err
}

// endedLaunches are up to endedPage ended launches of repos, the latest
// first, from position from of the ended index; next is where the next
// page starts (0: none).
func (s *Server) endedLaunches(ctx context.Context, repos map[string]bool, from int) ([]*store.Launch, int, error) {
	var out []*store.Launch
	const batch = 200
	if len(repos) == 0 {
		return nil, 0, nil
	}
	for pos := from; pos < from+endedScan; pos += batch {
		ids, err := s.records.RecentEnded(ctx, pos, batch)
		if err != nil {
			return nil, 0, err
		}
		records, err := s.records.Launches(ctx, ids)
		if err != nil {
			return nil, 0, err
		}
		byID := map[string]*store.Launch{}
		for _, l := range records {
			byID[l.ID] = l
		}
		for i, id := range ids {
			if l := byID[id]; l != nil && repos[strings.ToLower(l.Repo)] {
				out = append(out, l)
				if len(out) == endedPage {
					return out, pos + i + 1, nil
				}
			}
		}
		if len(ids) < batch {
			return out, 0, nil
		}
	}
	return out, from + endedScan, nil
}

// image is the launch's image, with Packit's build linked.
func (s *Server) image(d *doc, l *store.Launch) {
	switch {
	case l.PackitTarget != "" && strings.HasPrefix(l.PackitBuildURL, s.webURL):
		d.f(`<a href="%s">Packit's build %s</a>`, l.PackitBuildURL, l.PackitTarget)
	case l.PackitTarget != "":
		d.f(`Packit's build %s`, l.PackitTarget)
	default:
		d.f(`<code>%s</code>`, l.Image)
	}
}

// forms are a running launch's Extend and Terminate buttons.
func (s *Server) forms(d *doc, sess *session, l *store.Launch) {
	if l.ExpiresAt.Before(l.HardExpiresAt) {
		d.f(`<form method="post" action="/launches/%s/extend"><input type="hidden" name="csrf" value="%s"><input type="hidden" name="once" value="%s"><button type="submit">Extend 1h</button></form>`,
			l.ID, sess.CSRF, randomToken())
	}
	d.f(`<form method="post" action="/launches/%s/terminate"><input type="hidden" name="csrf" value="%s"><button type="submit" class="danger">Terminate</button></form>`, l.ID, sess.CSRF)
}

func (s *Server) prURL(l *store.Launch) string {
	return s.webURL + l.Repo + "/pull/" + strconv.Itoa(l.PR)
}

// visibleLaunch is the launch id of the path when the viewer may see it;
// otherwise the answer is sent (not found, whether it exists or not).
func (s *Server) visibleLaunch(w http.ResponseWriter, r *http.Request, sess *session) *store.Launch {
	ctx := r.Context()
	id := mux.Vars(r)["id"]
	repos, _, err := s.visible(ctx, sess)
	if err != nil {
		s.log.Warn("web: the viewer's repositories", "login", sess.Login, "err", err)
		s.problem(w, sess, http.StatusBadGateway, "GitHub did not say which repositories you can access; reload in a moment.")
		return nil
	}
	l, err := s.records.GetLaunch(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && !repos[strings.ToLower(l.Repo)]):
		s.problem(w, sess, http.StatusNotFound, "No launch "+id+" in the repositories you can access (an ended launch's record is kept for a while, then forgotten).")
		return nil
	case err != nil:
		s.log.Error("web: read launch", "launch", id, "err", err)
		s.problem(w, sess, http.StatusServiceUnavailable, "The launch record cannot be read right now; reload in a moment.")
		return nil
	}
	return l
}

func (s *Server) launchPage(w http.ResponseWriter, r *http.Request) {
	sess := s.viewer(w, r)
	if sess == nil {
		return
	}
	if l := s.visibleLaunch(w, r, sess); l != nil {
		s.page(w, http.StatusOK, sess, "Launch "+l.ID, s.story(sess, l, "", ""))
	}
}

// act runs a form's Extend or Terminate, decided as a comment's would be.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	sess := s.viewer(w, r)
	if sess == nil {
		return
	}
	if !validCSRF(sess, r) {
		s.problem(w, sess, http.StatusForbidden, "This form is not from your session; reload the page and try again.")
		return
	}
	l := s.visibleLaunch(w, r, sess)
	if l == nil {
		return
	}
	// The action goes through even if the viewer closes the page.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), actionWait)
	defer cancel()
	var said string
	var err error
	switch mux.Vars(r)["action"] {
	case "extend":
		once := r.PostFormValue("once")
		if len(once) > 64 {
			once = once[:64]
		}
		said, err = s.actions.ExtendAs(ctx, l, sess.Login, sess.Login+":"+once)
	default:
		said, err = s.actions.TerminateAs(ctx, l, sess.Login)
	}
	var refusal *config.Refusal
	switch {
	case errors.As(err, &refusal):
		s.log.Info("web: action refused", "launch", l.ID, "login", sess.Login, "action", mux.Vars(r)["action"], "reason", refusal.Reason)
		s.page(w, http.StatusForbidden, sess, "Launch "+l.ID, s.story(sess, l, "", refusal.Reason))
		return
	case err != nil:
		s.log.Error("web: action", "launch", l.ID, "login", sess.Login, "err", err)
		s.problem(w, sess, http.StatusServiceUnavailable, "That did not go through (GitHub, AWS or Redis did not answer); try again in a moment.")
		return
	}
	if fresh, err := s.records.GetLaunch(ctx, l.ID); err == nil {
		l = fresh
	}
	s.page(w, http.StatusOK, sess, "Launch "+l.ID, s.story(sess, l, said, ""))
}

// story is a launch's page: what it is, and its timeline.
func (s *Server) story(sess *session, l *store.Launch, done, refused string) string {
	now := s.now()
	var d doc
	d.f(`<h1>Launch <code>%s</code></h1>`, l.ID)
	if done != "" {
		d.f(`<p class="done" role="status">%s</p>`, plain(done))
	}
	if refused != "" {
		d.f(`<p class="problem" role="alert">%s</p>`, plain(refused))
	}
	d.f(`<table id="facts"><tbody><tr><th>repository</th><td>%s, <a href="%s">pull request #%d</a></td></tr><tr><th>owner</th><td>%s</td></tr><tr><th>machine</th><td>%s: `,
		l.Repo, s.prURL(l), l.PR, l.Owner, l.Machine)
	s.image(&d, l)
	d.f(`, %s in %s</td></tr><tr><th>state</th><td class="state %s" id="state">%s</td></tr>`, l.InstanceType, l.Region, l.State, l.State)
	if !l.State.Ended() {
		d.f(`<tr><th>terminates</th><td>%s (%s); at the latest %s</td></tr>`, stamp(l.ExpiresAt), left(l.ExpiresAt, now), stamp(l.HardExpiresAt))
	}
	if l.InstanceID != "" {
		d.f(`<tr><th>instance</th><td><code>%s</code></td></tr>`, l.InstanceID)
	}
	d.raw("</tbody></table>")
	if l.State == store.StateRunning {
		d.raw(`<div class="actions">`)
		s.forms(&d, sess, l)
		d.raw("</div>")
	}
	d.raw(`<h2>Its story</h2><ol class="timeline" id="timeline">`)
	for _, e := range timeline(l) {
		d.f(`<li data-event="%s"><time datetime="%s">%s</time>%s`, e.name, e.at.UTC().Format(time.RFC3339), stamp(e.at), e.text)
		if e.code != "" {
			d.f(`<pre>%s</pre>`, e.code)
		}
		d.raw("</li>")
	}
	d.raw("</ol>")
	return d.String()
}

// plain is a refusal or answer written for a PR (markdown) as text.
func plain(md string) string { return strings.ReplaceAll(md, "`", "") }

func stamp(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// left is the time until t, roughly.
func left(t, now time.Time) string {
	d := t.Sub(now).Round(time.Minute)
	switch {
	case d <= 0:
		return "now"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min left"
	}
	return strconv.Itoa(int(d.Hours())) + " h " + strconv.Itoa(int(d.Minutes())%60) + " min left"
}

// why a launch ended or failed.
func why(l *store.Launch) string {
	if l.State == store.StateFailed {
		return plain(l.Failure)
	}
	return l.EndReason
}
