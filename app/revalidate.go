package app

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	lru "github.com/hashicorp/golang-lru/v2"
)

// GitHub answers a GET whose ETag still matches (If-None-Match) with 304
// Not Modified, which does not count against the rate limit. The bot keeps
// its last answers by ETag and always asks again: never an answer from
// memory unasked, so a fixed config or a new key is seen at once.
// (Libraries such as httpcache also serve answers within max-age unasked.)

const (
	// maxRevalidated bounds the answers kept, across installations.
	maxRevalidated = 1024
	// maxRevalidatedBody keeps large answers out: 1024 × 32 KiB at most.
	maxRevalidatedBody = 32 << 10
)

type revalidated struct {
	etag   string
	header http.Header
	body   []byte
}

// revalidating is an installation client's transport that sends GETs as
// conditional requests when it holds an earlier answer.
type revalidating struct {
	next         http.RoundTripper
	installation int64
	answers      *lru.Cache[string, revalidated] // shared by the installations' clients
}

func (t *revalidating) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		return t.next.RoundTrip(req)
	}
	key := fmt.Sprintf("%d %s %s", t.installation, req.Header.Get("Accept"), req.URL)
	kept, ok := t.answers.Get(key)
	if ok {
		req = req.Clone(req.Context())
		req.Header.Set("If-None-Match", kept.etag)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch {
	case ok && resp.StatusCode == http.StatusNotModified:
		resp.Body.Close()
		header := kept.header.Clone()
		for k, vs := range resp.Header { // the rate-limit headers are the 304's
			header[k] = vs
		}
		return &http.Response{Status: "200 OK", StatusCode: http.StatusOK, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
			Header: header, Body: io.NopCloser(bytes.NewReader(kept.body)), ContentLength: int64(len(kept.body)), Request: req}, nil
	case resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "" && resp.ContentLength <= maxRevalidatedBody:
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxRevalidatedBody+1))
		if err != nil {
			resp.Body.Close()
			return nil, err
		}
		if len(body) > maxRevalidatedBody { // too large to keep: hand it on whole, unread rest included
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
			return resp, nil
		}
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		t.answers.Add(key, revalidated{etag: resp.Header.Get("ETag"), header: resp.Header.Clone(), body: body})
	}
	return resp, nil
}
