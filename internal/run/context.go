package run

import (
	"context"
	"fmt"

	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/sanitize"
)

// maxContextAuthors bounds the access-level look-ups for one run's context.
const maxContextAuthors = 50

// threadContext is the untrusted text the agent gets beside the command: the
// issue's or MR's title and description, the thread's comments by members
// at or above the minimum access level, and the triggering comment — all
// with what a person cannot see stripped (sanitize.Context).
func (s *state) threadContext(ctx context.Context) (string, error) {
	a := s.job.Args
	in := sanitize.ContextInput{
		Kind:            threadNoun(a.ThreadKind),
		MinAccess:       s.cfg.MinAccess,
		BotUsername:     s.cfg.Command.BotUsername,
		IncludeInternal: a.Internal || a.Confidential,
	}
	switch a.ThreadKind {
	case "issue":
		is, err := s.gl.Issue(ctx, a.ProjectID, a.IID)
		if err != nil {
			return "", fmt.Errorf("read issue #%d: %w", a.IID, err)
		}
		in.Title, in.Description = is.Title, is.Description
	case "mr":
		mr, err := s.gl.MergeRequest(ctx, a.ProjectID, a.IID)
		if err != nil {
			return "", fmt.Errorf("read merge request !%d: %w", a.IID, err)
		}
		in.Title, in.Description = mr.Title, mr.Description
	default:
		return "", nil
	}
	notes, err := s.gl.ListNotes(ctx, gitlab.Thread{ProjectID: a.ProjectID, Kind: a.ThreadKind, IID: a.IID})
	if err != nil {
		return "", fmt.Errorf("read the thread: %w", err)
	}
	levels := map[int64]int{}
	for _, n := range notes {
		note := sanitize.Note{ID: n.ID, Author: n.AuthorUsername, System: n.System, Internal: n.Internal,
			Body: n.Body, CreatedAt: n.CreatedAt}
		if n.ID == a.NoteID {
			note.AccessLevel = s.cfg.MinAccess // authorized before the run started
			in.Trigger = note
			continue
		}
		if n.System || n.AuthorUsername == s.cfg.Command.BotUsername {
			continue
		}
		level, ok := levels[n.AuthorID]
		if !ok && len(levels) < maxContextAuthors {
			if level, err = s.gl.AccessLevel(ctx, a.ProjectID, n.AuthorID); err != nil {
				return "", fmt.Errorf("check a commenter's access: %w", err)
			}
			levels[n.AuthorID] = level
		}
		// Past the look-up budget a comment counts as a non-member's: left out.
		note.AccessLevel = level
		in.Notes = append(in.Notes, note)
	}
	if in.Trigger.ID == 0 { // the note is gone (deleted): keep what the webhook carried
		in.Trigger = sanitize.Note{ID: a.NoteID, Author: a.AuthorUsername, AccessLevel: s.cfg.MinAccess,
			Body: commandText(a.Command) + "\n\n" + a.Command.Context}
	}
	// Secrets pasted into GitLab never reach the model.
	return s.redact(sanitize.Context(in)), nil
}
