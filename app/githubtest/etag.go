package githubtest

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
)

// serveConditional answers a GET as GitHub does: with an ETag, and with 304
// Not Modified (no body; not counted against the rate limit) when the
// request's If-None-Match still matches it.
func serveConditional(w http.ResponseWriter, r *http.Request, next http.Handler) {
	buf := httptest.NewRecorder()
	next.ServeHTTP(buf, r)
	for k, vs := range buf.Header() {
		w.Header()[k] = vs
	}
	if buf.Code == http.StatusOK {
		sum := sha256.Sum256(buf.Body.Bytes())
		etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.WriteHeader(buf.Code)
	w.Write(buf.Body.Bytes())
}
