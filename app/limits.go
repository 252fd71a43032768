package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"
	"github.com/packit/packit-launch/store"
)

// GitHub's limits on what the bot writes (../shared/docs/github.md).
const (
	// maxCommentChars bounds an issue or PR comment body; GitHub answers
	// 422 above it, and no retry can change that.
	maxCommentChars = 65536
	// maxCheckText bounds a check run's output summary and text (bytes).
	maxCheckText = 65535
	// maxCheckTitle keeps a check run's title a title.
	maxCheckTitle = 255
	cutNote       = "\n\n*(Cut here: the answer was longer than GitHub allows. The full text is in the bot's log.)*"
)

// fit cuts text to at most max bytes (so at most max characters), never
// inside a UTF-8 character, with a note when cut. cut says whether it was.
func fit(text string, max int, note string) (fitted string, cut bool) {
	if len(text) <= max {
		return text, false
	}
	keep := max - len(note)
	for keep > 0 && !utf8.RuneStart(text[keep]) {
		keep--
	}
	return text[:keep] + note, true
}

// permanent reports a GitHub answer that no retry can change: a 4xx other
// than a rate limit or an expired token.
func permanent(err error) bool {
	if _, ok := rateLimitWait(err, time.Now()); ok {
		return false
	}
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return false
	}
	code := er.Response.StatusCode
	return code >= 400 && code < 500 && code != http.StatusUnauthorized && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// rateLimitWait says how long GitHub asked the bot to wait, when err is a
// primary or secondary rate limit.
func rateLimitWait(err error, now time.Time) (time.Duration, bool) {
	var primary *github.RateLimitError
	if errors.As(err, &primary) {
		return max(primary.Rate.Reset.Time.Sub(now), time.Second), true
	}
	var secondary *github.AbuseRateLimitError
	if errors.As(err, &secondary) {
		if d := secondary.GetRetryAfter(); d > 0 {
			return d, true
		}
		return time.Minute, true // GitHub's advice when it names no time
	}
	return 0, false
}

// maxRateLimitHold bounds how long a job waits for a rate limit to reset;
// GitHub's primary limit resets within the hour.
const maxRateLimitHold = time.Hour

// holdable says until when a job failing with err should wait, when err is
// a rate limit that resets within maxRateLimitHold.
func holdable(err error, now time.Time) (time.Time, bool) {
	d, ok := rateLimitWait(err, now)
	if !ok || d > maxRateLimitHold {
		return time.Time{}, false
	}
	return now.Add(d + time.Second), true
}

// holdOnRateLimit makes a job that hit GitHub's rate limit wait for the
// reset instead of burning its retries; other errors pass unchanged.
func holdOnRateLimit(err error, now time.Time, log *slog.Logger) error {
	if err == nil {
		return nil
	}
	if until, ok := holdable(err, now); ok {
		log.Warn("GitHub rate limit: job held until it resets", "until", until, "err", err)
		rateLimitedTotal.WithLabelValues("held").Inc()
		return store.HoldUntil(until, err)
	}
	if _, ok := rateLimitWait(err, now); ok {
		log.Error("GitHub rate limit resets too late to hold the job; retrying as usual", "err", err)
		rateLimitedTotal.WithLabelValues("not_held").Inc()
	}
	return err
}

// holdingRateLimits wraps a job handler with holdOnRateLimit.
func holdingRateLimits(fn func(context.Context, []byte) error, now func() time.Time, log *slog.Logger) func(context.Context, []byte) error {
	return func(ctx context.Context, payload []byte) error {
		return holdOnRateLimit(fn(ctx, payload), now(), log)
	}
}
