package web

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-github/v60/github"
	"golang.org/x/oauth2"
)

// login sends the viewer to GitHub to log in, remembering where to return.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	st := loginState{State: randomToken(), Next: localPath(r.URL.Query().Get("next")), Expires: s.now().Add(loginFor).Unix()}
	if err := s.setCookie(w, loginCookie, st, s.now().Add(loginFor)); err != nil {
		s.log.Error("web: login cookie", "err", err)
		s.problem(w, nil, http.StatusInternalServerError, "The login could not start; try again.")
		return
	}
	http.Redirect(w, r, s.oauth.AuthCodeURL(st.State), http.StatusSeeOther)
}

// localPath is next when it is a path on this site, else /launches: a
// login link must not send people elsewhere.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || len(next) > 200 {
		return "/launches"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/launches"
	}
	return next
}

// callback is where GitHub sends the viewer back: the state must be the
// one this browser was given, the code is exchanged for the viewer's user
// token, and GitHub says who they are.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	var st loginState
	c, err := r.Cookie(loginCookie)
	if err != nil || s.seal.open(loginCookie, c.Value, &st) != nil || s.now().Unix() > st.Expires {
		s.problem(w, nil, http.StatusBadRequest, "This login was not started here, or took longer than 10 minutes. Log in again.")
		return
	}
	s.clearCookie(w, loginCookie)
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1 {
		s.problem(w, nil, http.StatusBadRequest, "This login answer does not belong to the login this browser started. Log in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.log.Warn("web: GitHub refused the login", "error", e, "description", q.Get("error_description"))
		s.problem(w, nil, http.StatusBadRequest, "GitHub did not log you in ("+e+"). Log in again.")
		return
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, s.http)
	tok, err := s.oauth.Exchange(ctx, q.Get("code"))
	if err != nil {
		s.log.Warn("web: exchange the login code", "err", err)
		s.problem(w, nil, http.StatusBadGateway, "GitHub did not accept this login (the code may have been used already). Log in again.")
		return
	}
	user, _, err := s.userClient(tok.AccessToken).Users.Get(r.Context(), "")
	if err != nil || user.GetLogin() == "" {
		s.log.Warn("web: who logged in", "err", err)
		s.problem(w, nil, http.StatusBadGateway, "GitHub did not say who you are. Log in again.")
		return
	}
	until := s.now().Add(sessionFor)
	if !tok.Expiry.IsZero() && tok.Expiry.Before(until) {
		until = tok.Expiry
	}
	sess := session{Login: user.GetLogin(), Token: tok.AccessToken, CSRF: randomToken(), Expires: until.Unix()}
	if err := s.setCookie(w, sessionCookie, sess, until); err != nil {
		s.log.Error("web: session cookie", "err", err)
		s.problem(w, nil, http.StatusInternalServerError, "The login could not finish; try again.")
		return
	}
	s.log.Info("web: logged in", "login", sess.Login)
	http.Redirect(w, r, st.Next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if sess, ok := s.sessionOf(r); ok {
		if !validCSRF(sess, r) {
			s.problem(w, sess, http.StatusForbidden, "This form is not from your session; reload the page.")
			return
		}
		s.forget(sess.Login)
		// A copy of the cookie must not outlive the logout: GitHub forgets
		// the token too (best effort: it expires in 8 h anyway).
		if _, err := s.appClient().Authorizations.Revoke(r.Context(), s.oauth.ClientID, sess.Token); err != nil {
			s.log.Warn("web: revoke the user token at logout", "login", sess.Login, "err", err)
		}
	}
	s.clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/launches", http.StatusSeeOther)
}

// appClient calls GitHub as the App's OAuth client (its id and secret).
func (s *Server) appClient() *github.Client {
	hc := &http.Client{Timeout: s.http.Timeout, Transport: &github.BasicAuthTransport{Username: s.oauth.ClientID, Password: s.oauth.ClientSecret}}
	gh := github.NewClient(hc)
	if u, err := url.Parse(s.apiURL); err == nil {
		gh.BaseURL = u
	}
	return gh
}

// userClient calls GitHub as the viewer.
func (s *Server) userClient(token string) *github.Client {
	hc := &http.Client{Timeout: s.http.Timeout, Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})}}
	gh := github.NewClient(hc)
	if u, err := url.Parse(s.apiURL); err == nil {
		gh.BaseURL = u
	}
	return gh
}
