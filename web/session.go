package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// A session lives in a cookie, sealed (AES-GCM, so signed and secret: it
// holds the viewer's GitHub user token) with a key made from SESSION_KEY.

const (
	sessionCookie = "packit-launch-session"
	loginCookie   = "packit-launch-login"
	sessionFor    = 8 * time.Hour // GitHub's user tokens last 8 h
	loginFor      = 10 * time.Minute
)

// session is a logged-in viewer.
type session struct {
	Login   string `json:"l"`
	Token   string `json:"t"`
	CSRF    string `json:"c"` // the forms' token
	Expires int64  `json:"e"`
}

// loginState is a login under way: GitHub must send back State.
type loginState struct {
	State   string `json:"s"`
	Next    string `json:"n"`
	Expires int64  `json:"e"`
}

// sealer seals and opens cookie values.
type sealer struct{ aead cipher.AEAD }

func newSealer(key string) (*sealer, error) {
	sum := sha256.Sum256([]byte("packit-launch session\x00" + key))
	block, err := aes.NewCipher(sum[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal is v as a cookie value; name binds it to its cookie.
func (s *sealer) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

var errBadCookie = errors.New("web: cookie does not open")

// open reads a cookie value sealed for name into v.
func (s *sealer) open(name, value string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() || len(value) > 4096 {
		return errBadCookie
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(name))
	if err != nil {
		return errBadCookie
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return errBadCookie
	}
	return nil
}

// randomToken is 128 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// setCookie sets a sealed cookie: HttpOnly, SameSite=Lax, and Secure
// unless the bot is tried on loopback over plain HTTP.
func (s *Server) setCookie(w http.ResponseWriter, name string, v any, until time.Time) error {
	value, err := s.seal.seal(name, v)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Expires: until, MaxAge: int(until.Sub(s.now()).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secure})
	return nil
}

func (s *Server) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secure})
}

// sessionOf is the request's live session, if any.
func (s *Server) sessionOf(r *http.Request) (*session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	var sess session
	if s.seal.open(sessionCookie, c.Value, &sess) != nil || s.now().Unix() > sess.Expires || sess.Login == "" {
		return nil, false
	}
	return &sess, true
}
