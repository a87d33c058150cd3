package gitlab

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// Kinds of thread.
const (
	KindIssue = "issue"
	KindMR    = "mr"
)

// Thread is where agentbot answers: an issue or merge request, and within it
// a discussion when DiscussionID is set. Internal makes new top-level notes
// internal (for confidential issues); a reply in a discussion is internal
// when the discussion is.
type Thread struct {
	ProjectID    int64
	Kind         string // KindIssue or KindMR
	IID          int64
	DiscussionID string
	Internal     bool
}

func (t Thread) String() string {
	kind := "issue"
	if t.Kind == KindMR {
		kind = "merge request"
	}
	return fmt.Sprintf("project %d %s %d", t.ProjectID, kind, t.IID)
}

func (t Thread) check() error {
	if t.Kind != KindIssue && t.Kind != KindMR {
		return fmt.Errorf("gitlab: thread kind %q: want %q or %q", t.Kind, KindIssue, KindMR)
	}
	return nil
}

// Note is a comment.
type Note struct {
	ID             int64
	Body           string
	AuthorID       int64
	AuthorUsername string
	System         bool
	Internal       bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func noteFrom(n *gl.Note) Note {
	out := Note{ID: n.ID, Body: n.Body, AuthorID: n.Author.ID, AuthorUsername: n.Author.Username,
		System: n.System, Internal: n.Internal || n.Confidential}
	if n.CreatedAt != nil {
		out.CreatedAt = *n.CreatedAt
	}
	if n.UpdatedAt != nil {
		out.UpdatedAt = *n.UpdatedAt
	}
	return out
}

// Marker is the invisible HTML comment that identifies the note agentbot
// posted for key.
func Marker(key string) string { return "<!-- agentbot:" + key + " -->" }

// WithMarker appends key's marker to body unless it is there already.
func WithMarker(key, body string) string {
	if key == "" || strings.Contains(body, Marker(key)) {
		return body
	}
	return strings.TrimRight(body, "\n") + "\n\n" + Marker(key)
}

// checkKey refuses keys that would end the HTML comment or span lines.
func checkKey(key string) error {
	if key == "" || strings.Contains(key, "--") || strings.ContainsAny(key, "<>\r\n") {
		return fmt.Errorf("gitlab: note key %q: want a non-empty key without \"--\", \"<\", \">\" or newlines", key)
	}
	return nil
}

// PostNote posts body on the thread once per key: the note carries key's
// marker, and when a note of the token's user with that marker exists
// already (an earlier attempt, maybe one that failed after GitLab applied
// it) that note is returned instead. The search covers the newest
// Options.SearchPages×100 notes of the thread.
func (c *Client) PostNote(ctx context.Context, t Thread, key, body string) (Note, error) {
	if err := t.check(); err != nil {
		return Note{}, err
	}
	if err := checkKey(key); err != nil {
		return Note{}, err
	}
	if n, ok, err := c.FindNote(ctx, t, key); err != nil || ok {
		return n, err
	}
	body = WithMarker(key, body)
	op := "create note on " + t.String()
	create := func(ctx context.Context) (Note, error) {
		var n *gl.Note
		var err error
		switch {
		case t.DiscussionID != "" && t.Kind == KindIssue:
			n, _, err = c.gl.Discussions.AddIssueDiscussionNote(t.ProjectID, t.IID, t.DiscussionID,
				&gl.AddIssueDiscussionNoteOptions{Body: &body}, c.ctxOpt(ctx))
		case t.DiscussionID != "":
			n, _, err = c.gl.Discussions.AddMergeRequestDiscussionNote(t.ProjectID, t.IID, t.DiscussionID,
				&gl.AddMergeRequestDiscussionNoteOptions{Body: &body}, c.ctxOpt(ctx))
		case t.Kind == KindIssue:
			n, _, err = c.gl.Notes.CreateIssueNote(t.ProjectID, t.IID,
				&gl.CreateIssueNoteOptions{Body: &body, Internal: internal(t)}, c.ctxOpt(ctx))
		default:
			n, _, err = c.gl.Notes.CreateMergeRequestNote(t.ProjectID, t.IID,
				&gl.CreateMergeRequestNoteOptions{Body: &body, Internal: internal(t)}, c.ctxOpt(ctx))
		}
		if err != nil {
			return Note{}, c.wrap(op, err)
		}
		return noteFrom(n), nil
	}
	find := func(ctx context.Context) (Note, bool, error) { return c.FindNote(ctx, t, key) }
	return createOnce(ctx, c, op, find, create)
}

func internal(t Thread) *bool {
	if !t.Internal {
		return nil
	}
	return gl.Ptr(true)
}

// FindNote finds the note the token's user posted on the thread with key's
// marker, searching the newest notes first.
func (c *Client) FindNote(ctx context.Context, t Thread, key string) (Note, bool, error) {
	if err := t.check(); err != nil {
		return Note{}, false, err
	}
	me, err := c.self(ctx)
	if err != nil {
		return Note{}, false, err
	}
	marker := Marker(key)
	var found Note
	ok := false
	err = c.eachNote(ctx, t, "desc", c.opt.SearchPages, func(n *gl.Note) bool {
		if n.Author.ID == me.ID && strings.Contains(n.Body, marker) {
			found, ok = noteFrom(n), true
			return false
		}
		return true
	})
	if err != nil {
		return Note{}, false, c.wrap("find note "+key+" on "+t.String(), err)
	}
	return found, ok, nil
}

// maxListPages bounds ListNotes: 20 pages of 100.
const maxListPages = 20

// ListNotes returns the thread's notes (all of the issue or merge request,
// discussions included), oldest first, at most 2,000.
func (c *Client) ListNotes(ctx context.Context, t Thread) ([]Note, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	var out []Note
	err := c.eachNote(ctx, t, "asc", maxListPages, func(n *gl.Note) bool {
		out = append(out, noteFrom(n))
		return true
	})
	if err != nil {
		return nil, c.wrap("list notes of "+t.String(), err)
	}
	return out, nil
}

// eachNote calls fn on the thread's notes in created_at order ("asc" or
// "desc") until fn returns false or pages run out.
func (c *Client) eachNote(ctx context.Context, t Thread, sort string, pages int, fn func(*gl.Note) bool) error {
	list := gl.ListOptions{PerPage: 100, Page: 1}
	for range pages {
		var notes []*gl.Note
		var resp *gl.Response
		var err error
		if t.Kind == KindIssue {
			notes, resp, err = c.gl.Notes.ListIssueNotes(t.ProjectID, t.IID, &gl.ListIssueNotesOptions{
				ListOptions: list, OrderBy: gl.Ptr("created_at"), Sort: &sort}, c.ctxOpt(ctx))
		} else {
			notes, resp, err = c.gl.Notes.ListMergeRequestNotes(t.ProjectID, t.IID, &gl.ListMergeRequestNotesOptions{
				ListOptions: list, OrderBy: gl.Ptr("created_at"), Sort: &sort}, c.ctxOpt(ctx))
		}
		if err != nil {
			return err
		}
		for _, n := range notes {
			if !fn(n) {
				return nil
			}
		}
		if resp.NextPage == 0 {
			return nil
		}
		list.Page = resp.NextPage
	}
	return nil
}

// UpdateNote replaces a note's body. With a key, the body gets key's marker,
// so that the note stays findable by PostNote and FindNote.
func (c *Client) UpdateNote(ctx context.Context, t Thread, noteID int64, key, body string) error {
	if err := t.check(); err != nil {
		return err
	}
	if key != "" {
		if err := checkKey(key); err != nil {
			return err
		}
		body = WithMarker(key, body)
	}
	var err error
	if t.Kind == KindIssue {
		_, _, err = c.gl.Notes.UpdateIssueNote(t.ProjectID, t.IID, noteID, &gl.UpdateIssueNoteOptions{Body: &body}, c.ctxOpt(ctx))
	} else {
		_, _, err = c.gl.Notes.UpdateMergeRequestNote(t.ProjectID, t.IID, noteID, &gl.UpdateMergeRequestNoteOptions{Body: &body}, c.ctxOpt(ctx))
	}
	return c.wrap(fmt.Sprintf("update note %d on %s", noteID, t), err)
}

// awardPages bounds the award lists read: 5 pages of 100.
const awardPages = 5

// myAward finds the token user's award name on a note.
func (c *Client) myAward(ctx context.Context, t Thread, noteID int64, name string) (*gl.AwardEmoji, bool, error) {
	me, err := c.self(ctx)
	if err != nil {
		return nil, false, err
	}
	opt := &gl.ListAwardEmojiOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for range awardPages {
		var awards []*gl.AwardEmoji
		var resp *gl.Response
		if t.Kind == KindIssue {
			awards, resp, err = c.gl.AwardEmoji.ListIssuesAwardEmojiOnNote(t.ProjectID, t.IID, noteID, opt, c.ctxOpt(ctx))
		} else {
			awards, resp, err = c.gl.AwardEmoji.ListMergeRequestAwardEmojiOnNote(t.ProjectID, t.IID, noteID, opt, c.ctxOpt(ctx))
		}
		if err != nil {
			return nil, false, err
		}
		for _, a := range awards {
			if a.Name == name && a.User.ID == me.ID {
				return a, true, nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return nil, false, nil
}

// AwardEmoji reacts to a note with an emoji name ("eyes",
// "white_check_mark", "x"), once: an award the token's user already gave
// counts as done.
func (c *Client) AwardEmoji(ctx context.Context, t Thread, noteID int64, name string) error {
	if err := t.check(); err != nil {
		return err
	}
	op := fmt.Sprintf("award %s on note %d of %s", name, noteID, t)
	find := func(ctx context.Context) (struct{}, bool, error) {
		_, ok, err := c.myAward(ctx, t, noteID, name)
		return struct{}{}, ok, c.wrap(op, err)
	}
	if _, ok, err := find(ctx); err != nil || ok {
		return err
	}
	_, err := createOnce(ctx, c, op, find, func(ctx context.Context) (struct{}, error) {
		opt := &gl.CreateAwardEmojiOptions{Name: name}
		var err error
		if t.Kind == KindIssue {
			_, _, err = c.gl.AwardEmoji.CreateIssuesAwardEmojiOnNote(t.ProjectID, t.IID, noteID, opt, c.ctxOpt(ctx))
		} else {
			_, _, err = c.gl.AwardEmoji.CreateMergeRequestAwardEmojiOnNote(t.ProjectID, t.IID, noteID, opt, c.ctxOpt(ctx))
		}
		if errors.Is(err, gl.ErrNotFound) {
			// GitLab answers 404 both for a missing note and for "has
			// already been taken": ask which.
			if _, ok, ferr := find(ctx); ferr == nil && ok {
				return struct{}{}, nil
			}
		}
		return struct{}{}, c.wrap(op, err)
	})
	return err
}

// RemoveEmoji takes back the token user's award name from a note, if given.
func (c *Client) RemoveEmoji(ctx context.Context, t Thread, noteID int64, name string) error {
	if err := t.check(); err != nil {
		return err
	}
	op := fmt.Sprintf("remove %s from note %d of %s", name, noteID, t)
	a, ok, err := c.myAward(ctx, t, noteID, name)
	if err != nil || !ok {
		return c.wrap(op, err)
	}
	if t.Kind == KindIssue {
		_, err = c.gl.AwardEmoji.DeleteIssuesAwardEmojiOnNote(t.ProjectID, t.IID, noteID, a.ID, c.ctxOpt(ctx))
	} else {
		_, err = c.gl.AwardEmoji.DeleteMergeRequestAwardEmojiOnNote(t.ProjectID, t.IID, noteID, a.ID, c.ctxOpt(ctx))
	}
	if errors.Is(err, gl.ErrNotFound) {
		return nil // gone already, maybe by a retried DELETE
	}
	return c.wrap(op, err)
}
