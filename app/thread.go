package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"
	"github.com/packit/packit-launch/mdsafe"
)

// Thread is the PR conversation a command came from: where the bot reacts
// and answers.
type Thread struct {
	gh          *github.Client
	owner, name string
	number      int
	commentID   int64 // the command's comment
	user        string
	line        string
	log         *slog.Logger
}

func newThread(gh *github.Client, repo string, number int, commentID int64, user, line string, log *slog.Logger) *Thread {
	owner, name, _ := strings.Cut(repo, "/")
	return &Thread{gh: gh, owner: owner, name: name, number: number, commentID: commentID, user: user, line: line, log: log}
}

// React adds a reaction to the command's comment (idempotent on GitHub).
func (t *Thread) React(ctx context.Context, content string) error {
	if t.commentID == 0 {
		return nil // a launch rebuilt from its VM's tags: its command is not known
	}
	_, _, err := t.gh.Reactions.CreateIssueCommentReaction(ctx, t.owner, t.name, t.commentID, content)
	if err != nil {
		return fmt.Errorf("react %s: %w", content, err)
	}
	return nil
}

// Comment posts a new comment on the PR.
func (t *Thread) Comment(ctx context.Context, body string) error {
	_, err := t.Post(ctx, 0, body)
	return err
}

// errAnswerRefused means GitHub refused an answer and its short fallback
// for good (the PR is locked or gone, the app lost access): a retry cannot help.
var errAnswerRefused = errors.New("GitHub refused the answer and its fallback")

// Post posts a new comment, or edits comment id when it is not 0, and
// returns the comment's id. A body over GitHub's limit is cut with a note;
// an edit of a comment someone deleted becomes a new comment; a body GitHub
// refuses for good is replaced by a short answer, never by silence.
func (t *Thread) Post(ctx context.Context, id int64, body string) (int64, error) {
	fitted, cut := fit(body, maxCommentChars, cutNote)
	if cut {
		t.log.Warn("answer cut to GitHub's comment limit", "chars", utf8.RuneCountInString(body), "answer", body)
	}
	cid, err := t.post(ctx, id, fitted)
	if id != 0 && isNotFound(err) {
		cid, err = t.post(ctx, 0, fitted)
	}
	if err == nil || !permanent(err) {
		return cid, err
	}
	t.log.Error("GitHub refused the answer; posting a short one instead", "err", err, "answer", fitted)
	short := fmt.Sprintf("%s I have an answer for this, but GitHub refused to show it (%s). The operators of this packit-launch instance can read it in its log.", mdsafe.Mention(t.user), httpStatus(err))
	cid, ferr := t.post(ctx, 0, short)
	if ferr != nil {
		t.log.Error("GitHub refused the short answer too", "err", ferr)
		if permanent(ferr) {
			return 0, fmt.Errorf("%w: %w", errAnswerRefused, err)
		}
		return 0, ferr
	}
	return cid, nil
}

func (t *Thread) post(ctx context.Context, id int64, body string) (int64, error) {
	c := &github.IssueComment{Body: github.String(body)}
	var err error
	if id != 0 {
		c, _, err = t.gh.Issues.EditComment(ctx, t.owner, t.name, id, c)
	} else {
		c, _, err = t.gh.Issues.CreateComment(ctx, t.owner, t.name, t.number, c)
	}
	if err != nil {
		return 0, fmt.Errorf("comment: %w", err)
	}
	return c.GetID(), nil
}

// httpStatus names a GitHub error's HTTP status for people, e.g. "HTTP 422".
func httpStatus(err error) string {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return fmt.Sprintf("HTTP %d", er.Response.StatusCode)
	}
	return "an error"
}

// Refuse answers a command the bot will not run: a comment that mentions the
// person and quotes their command, then 😕.
func (t *Thread) Refuse(ctx context.Context, reason string) error {
	if err := t.Comment(ctx, fmt.Sprintf("> %s\n\n%s %s", mdsafe.Code(t.line), mdsafe.Mention(t.user), reason)); err != nil {
		return err
	}
	// The answer is out; a missing reaction is not worth a second answer.
	if err := t.React(ctx, "confused"); err != nil {
		t.log.Warn("react confused", "err", err)
	}
	return nil
}
