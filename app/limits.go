package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
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

// fit cuts markdown to at most max bytes (so at most max characters), with
// a note when cut; cut says whether it was. It never cuts inside a UTF-8
// character, ends on a line when it can, and never leaves an inline code span
// or a fenced block open: the rest of an escaped value must not render.
func fit(text string, max int, note string) (fitted string, cut bool) {
	if len(text) <= max {
		return text, false
	}
	keep := max - len(note) - maxFenceClose
	for keep > 0 && !utf8.RuneStart(text[keep]) {
		keep--
	}
	kept := text[:keep]
	if i := strings.LastIndexByte(kept, '\n'); i >= len(kept)/2 {
		kept = kept[:i]
	}
	fence := openFence(kept)
	if fence == "" {
		kept = closeInlineSpans(kept)
	} else {
		kept += "\n" + fence
	}
	return kept + note, true
}

// maxFenceClose is room for closing a fenced block ("\n" and its fence).
const maxFenceClose = 16

// openFence returns the fence of a fenced code block left open at the end
// of text, or "".
func openFence(text string) string {
	fence := ""
	for _, line := range strings.Split(text, "\n") {
		run := len(line) - len(strings.TrimLeft(line, "`"))
		switch {
		case fence == "" && run >= 3:
			fence = line[:run]
		case fence != "" && run >= len(fence) && strings.TrimSpace(line[run:]) == "":
			fence = ""
		}
	}
	if len(fence) > maxFenceClose-1 {
		fence = fence[:maxFenceClose-1] // longer fences are not the bot's
	}
	return fence
}

// closeInlineSpans cuts the last line before a code span it opens but does
// not close (code spans never cross lines in the bot's markdown).
func closeInlineSpans(text string) string {
	start := strings.LastIndexByte(text, '\n') + 1
	open, openAt := 0, -1
	for i := start; i < len(text); {
		if text[i] != '`' {
			i++
			continue
		}
		j := i
		for j < len(text) && text[j] == '`' {
			j++
		}
		switch n := j - i; {
		case open == 0:
			open, openAt = n, i
		case n == open:
			open, openAt = 0, -1
		}
		i = j
	}
	if openAt >= 0 {
		return text[:openAt]
	}
	return text
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

// githubTrouble reports whether err is GitHub failing in a way that may
// pass: a server error, a timeout, a broken connection.
func githubTrouble(err error) bool {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		code := er.Response.StatusCode
		return code >= 500 || code == http.StatusRequestTimeout
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// waitOnGitHub says until when a command failing with err waits before it
// runs again: a rate limit until its reset, other GitHub trouble (5xx,
// timeouts) with a backoff that doubles with the command's age — while
// that stays within maxHeldAge of its receipt, the one deadline for every
// kind of waiting on GitHub. Its retries are kept for other errors.
func waitOnGitHub(err error, received, now time.Time) (time.Time, bool) {
	if received.IsZero() || received.After(now) {
		received = now
	}
	var until time.Time
	if d, ok := rateLimitWait(err, now); ok {
		until = now.Add(d + time.Second)
	} else if githubTrouble(err) {
		until = now.Add(min(max(now.Sub(received), time.Second), 15*time.Minute))
	} else {
		return time.Time{}, false
	}
	return until, until.Before(received.Add(maxHeldAge))
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
