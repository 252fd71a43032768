package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/google/go-github/v60/github"
)

// Thread is the PR conversation a command came from: where the bot reacts
// and answers.
type Thread struct {
	gh  *github.Client
	job CommandJob
	log *slog.Logger
}

// GitHub is the installation client, for the launch stage's own calls.
func (t *Thread) GitHub() *github.Client { return t.gh }

// React adds a reaction to the command's comment (idempotent on GitHub).
func (t *Thread) React(ctx context.Context, content string) error {
	_, _, err := t.gh.Reactions.CreateIssueCommentReaction(ctx, t.job.Owner(), t.job.Name(), t.job.CommentID, content)
	if err != nil {
		return fmt.Errorf("react %s: %w", content, err)
	}
	return nil
}

// Comment posts a new comment on the PR and returns its id.
func (t *Thread) Comment(ctx context.Context, body string) error {
	_, err := t.CommentID(ctx, body)
	return err
}

// CommentID posts a new comment on the PR and returns its id.
func (t *Thread) CommentID(ctx context.Context, body string) (int64, error) {
	c, _, err := t.gh.Issues.CreateComment(ctx, t.job.Owner(), t.job.Name(), t.job.Number, &github.IssueComment{Body: github.String(body)})
	if err != nil {
		return 0, fmt.Errorf("comment: %w", err)
	}
	return c.GetID(), nil
}

// Refuse answers a command the bot will not run: 😕 and a comment that
// mentions the person and quotes their command.
func (t *Thread) Refuse(ctx context.Context, reason string) error {
	if err := t.Comment(ctx, fmt.Sprintf("> %s\n\n@%s %s", t.job.Line, t.job.User, reason)); err != nil {
		return err
	}
	return t.React(ctx, "confused")
}
