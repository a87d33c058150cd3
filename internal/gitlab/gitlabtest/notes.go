package gitlabtest

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

// knownEmoji are the award names the fake accepts; GitLab refuses names that
// are not emoji (like "✅" instead of "white_check_mark").
var knownEmoji = map[string]bool{
	"eyes": true, "white_check_mark": true, "heavy_check_mark": true, "x": true,
	"thumbsup": true, "thumbsdown": true, "+1": true, "-1": true, "hourglass": true,
	"hourglass_flowing_sand": true, "rocket": true, "tada": true, "warning": true,
	"robot": true, "construction": true, "no_entry": true, "stop_sign": true,
	"repeat": true, "hammer_and_wrench": true, "mag": true, "memo": true,
}

// noteKind maps the URL segment to the kind used in the fake's state.
func noteKind(r *http.Request) string {
	if strings.Contains(r.URL.Path, "/merge_requests/") {
		return "mr"
	}
	return "issue"
}

// noteable resolves project and issue/MR of a notes route and checks that the
// user may see it.
func (q *request) noteable() (p *project, kind string, iid int64, status int, body any) {
	p, ok := q.project()
	if !ok {
		status, body = notFound("Project")
		return
	}
	kind = noteKind(q.r)
	iid, _ = q.pathInt("iid")
	if kind == "issue" {
		is := p.issues[iid]
		if is == nil || !canSeeIssue(p, is, q.user) {
			status, body = notFound("Issue")
		}
	} else if p.mrs[iid] == nil {
		status, body = notFound("Merge Request")
	}
	return
}

func (s *Server) sortedNotes() []*Note {
	out := make([]*Note, 0, len(s.notes))
	for _, n := range s.notes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// insertNote stores a new note, starting a discussion when its id is empty or
// unknown; the lock is held.
func (s *Server) insertNote(n *Note) *Note {
	n.ID = s.nextID()
	if n.DiscussionID == "" {
		sum := sha1.Sum(fmt.Appendf(nil, "discussion-%d", n.ID))
		n.DiscussionID = hex.EncodeToString(sum[:])
	}
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.now().UTC()
	}
	n.UpdatedAt = n.CreatedAt
	s.notes[n.ID] = n
	return n
}

// discussionNotes are the notes of one discussion, oldest first.
func (s *Server) discussionNotes(projectID int64, kind string, iid int64, id string) []*Note {
	var out []*Note
	for _, n := range s.sortedNotes() {
		if n.ProjectID == projectID && n.Kind == kind && n.IID == iid && n.DiscussionID == id {
			out = append(out, n)
		}
	}
	return out
}

func (s *Server) noteJSON(p *project, n *Note) *gitlab.Note {
	a := s.basicUser(n.AuthorID)
	created, updated := n.CreatedAt, n.UpdatedAt
	out := &gitlab.Note{
		ID: n.ID, Body: n.Body, System: n.System, Internal: n.Internal, Confidential: n.Internal,
		Author:    gitlab.NoteAuthor{ID: a.ID, Username: a.Username, Name: a.Name, State: a.State, WebURL: a.WebURL},
		CreatedAt: &created, UpdatedAt: &updated,
		ProjectID: p.ID, NoteableIID: n.IID, Position: n.Position,
	}
	if n.Kind == "issue" {
		out.NoteableType, out.NoteableID = "Issue", p.issues[n.IID].ID
	} else {
		out.NoteableType, out.NoteableID = "MergeRequest", p.mrs[n.IID].ID
	}
	if len(s.discussionNotes(p.ID, n.Kind, n.IID, n.DiscussionID)) > 1 || n.Position != nil {
		out.Type = gitlab.DiscussionNote
	}
	if n.Position != nil {
		out.Type = gitlab.DiffNote
		out.Resolvable = true
	}
	return out
}

// canSeeNote: internal notes are for Reporters.
func canSeeNote(p *project, n *Note, u *User) bool {
	return !n.Internal || p.accessLevel(u.ID) >= Reporter
}

func (s *Server) listNotes(q *request) (int, any) {
	p, kind, iid, status, body := q.noteable()
	if status != 0 {
		return status, body
	}
	q.checkQuery("order_by", "sort")
	orderBy := q.r.URL.Query().Get("order_by")
	asc := q.r.URL.Query().Get("sort") == "asc"
	var notes []*Note
	for _, n := range s.sortedNotes() {
		if n.ProjectID == p.ID && n.Kind == kind && n.IID == iid && canSeeNote(p, n, q.user) {
			notes = append(notes, n)
		}
	}
	sort.SliceStable(notes, func(i, j int) bool {
		a, b := notes[i], notes[j]
		if orderBy == "updated_at" && !a.UpdatedAt.Equal(b.UpdatedAt) {
			return a.UpdatedAt.Before(b.UpdatedAt) == asc
		}
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.Before(b.CreatedAt) == asc
		}
		return (a.ID < b.ID) == asc
	})
	var out []*gitlab.Note
	for _, n := range paginate(q, notes) {
		out = append(out, s.noteJSON(p, n))
	}
	if out == nil {
		out = []*gitlab.Note{}
	}
	return http.StatusOK, out
}

func (q *request) note(p *project, kind string, iid int64) (*Note, bool) {
	nid, _ := q.pathInt("nid")
	n := q.s.notes[nid]
	if n == nil || n.ProjectID != p.ID || n.Kind != kind || n.IID != iid || !canSeeNote(p, n, q.user) {
		return nil, false
	}
	return n, true
}

func (s *Server) getNote(q *request) (int, any) {
	p, kind, iid, status, body := q.noteable()
	if status != 0 {
		return status, body
	}
	n, ok := q.note(p, kind, iid)
	if !ok {
		return notFound("Note")
	}
	return http.StatusOK, s.noteJSON(p, n)
}

// newNote checks the body and the user's rights for a note about to be
// created.
func (q *request) newNote(p *project, internal bool) (status int, body any) {
	if strings.TrimSpace(q.str("body")) == "" {
		return badRequest("body is missing")
	}
	if len(q.str("body")) > 1_000_000 {
		return http.StatusBadRequest, msg("Note {:note=>[\"is too long (maximum is 1000000 characters)\"]}")
	}
	if p.Visibility == "private" && p.accessLevel(q.user.ID) < Guest {
		return forbidden()
	}
	if internal && p.accessLevel(q.user.ID) < Reporter {
		return forbidden()
	}
	return 0, nil
}

func (s *Server) createNote(q *request) (int, any) {
	p, kind, iid, status, body := q.noteable()
	if status != 0 {
		return status, body
	}
	internal := q.boolean("internal")
	if status, body := q.newNote(p, internal); status != 0 {
		return status, body
	}
	n := s.insertNote(&Note{ProjectID: p.ID, Kind: kind, IID: iid, Body: q.str("body"), AuthorID: q.user.ID, Internal: internal})
	q.emit(Event{Kind: "note.create", ProjectID: p.ID, IID: iid, ID: n.ID})
	return http.StatusCreated, s.noteJSON(p, n)
}

// createDiscussion starts a discussion; on a merge request a position makes
// it an inline comment on the diff.
func (s *Server) createDiscussion(q *request) (int, any) {
	p, kind, iid, status, body := q.noteable()
	if status != 0 {
		return status, body
	}
	internal := q.boolean("internal")
	if status, body := q.newNote(p, internal); status != 0 {
		return status, body
	}
	n := &Note{ProjectID: p.ID, Kind: kind, IID: iid, Body: q.str("body"), AuthorID: q.user.ID, Internal: internal}
	if pos, ok := q.decode()["position"].(map[string]any); ok {
		if kind != "mr" {
			return badRequest("position is only for merge requests")
		}
		np, err := s.checkPosition(p, p.mrs[iid], pos)
		if err != "" {
			return http.StatusBadRequest, msg("400 Bad request - Note {:line_code=>[\"" + err + "\"]}")
		}
		n.Position = np
	}
	s.insertNote(n)
	q.emit(Event{Kind: "note.create", ProjectID: p.ID, IID: iid, ID: n.ID})
	return http.StatusCreated, &gitlab.Discussion{ID: n.DiscussionID, Notes: []*gitlab.Note{s.noteJSON(p, n)}}
}

// checkPosition validates an inline comment's position against the merge
// request's current diff, as GitLab does: the SHAs must be the MR's diff refs,
// and new_line must be a line of new_path in the diff (old_line for removed
// lines).
func (s *Server) checkPosition(p *project, mr *MergeRequest, pos map[string]any) (*gitlab.NotePosition, string) {
	str := func(k string) string { v, _ := pos[k].(string); return v }
	num := func(k string) int64 {
		switch v := pos[k].(type) {
		case float64:
			return int64(v)
		case string:
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
		return 0
	}
	np := &gitlab.NotePosition{
		BaseSHA: str("base_sha"), StartSHA: str("start_sha"), HeadSHA: str("head_sha"),
		PositionType: str("position_type"), NewPath: str("new_path"), OldPath: str("old_path"),
		NewLine: num("new_line"), OldLine: num("old_line"),
	}
	if np.PositionType != "text" {
		return nil, "position_type must be text"
	}
	refs, err := s.diffRefs(p, mr)
	if err != nil {
		return nil, err.Error()
	}
	if np.BaseSHA != refs.BaseSha || np.StartSHA != refs.StartSha || np.HeadSHA != refs.HeadSha {
		return nil, "can't be blank" // what GitLab says when the SHAs do not match the MR's diff
	}
	diffs, err := s.git.diff(p.Path, refs.BaseSha, refs.HeadSha)
	if err != nil {
		return nil, err.Error()
	}
	for _, d := range diffs {
		if d.NewPath != np.NewPath && d.OldPath != np.OldPath {
			continue
		}
		if lineInDiff(d.Diff, np.OldLine, np.NewLine) {
			return np, ""
		}
	}
	return nil, "can't be blank"
}

// lineInDiff reports whether a unified diff shows the given line: a new line
// (added or context) when newLine > 0, else a removed old line.
func lineInDiff(diff string, oldLine, newLine int64) bool {
	var o, n int64
	for _, l := range strings.Split(diff, "\n") {
		if strings.HasPrefix(l, "@@") {
			var os, ns int64
			fmt.Sscanf(l, "@@ -%d", &os)
			if i := strings.Index(l, " +"); i >= 0 {
				fmt.Sscanf(l[i:], " +%d", &ns)
			}
			o, n = os, ns
			continue
		}
		switch {
		case strings.HasPrefix(l, "+"):
			if newLine > 0 && n == newLine {
				return true
			}
			n++
		case strings.HasPrefix(l, "-"):
			if newLine == 0 && o == oldLine {
				return true
			}
			o++
		case strings.HasPrefix(l, " "):
			if newLine > 0 && n == newLine {
				return true
			}
			o++
			n++
		}
	}
	return false
}

func (s *Server) getDiscussion(q *request) (int, any) {
	p, kind, iid, status, body := q.noteable()
	if status != 0 {
		return status, body
	}
	notes := s.discussionNotes(p.ID, kind, iid, q.r.PathValue("did"))
	if len(notes) == 0 || !canSeeNote(p, notes[0], q.user) {
		return notFound("Discussion")
	}
	d := &gitlab.Discussion{ID: notes[0].DiscussionID, IndividualNote: len(notes) == 1 && notes[0].Position == nil}
	for _, n := range notes {
		d.Notes = append(d.Notes, s.noteJSON(p, n))
	}
	return http.StatusOK, d
}

// addDiscussionNote replies in a discussion; the reply is internal when the
// discussion is.
func (s *Server) addDiscussionNote(q *request) (int, any) {
	p, kind, iid, status, body := q.noteable()
	if status != 0 {
		return status, body
	}
	thread := s.discussionNotes(p.ID, kind, iid, q.r.PathValue("did"))
	if len(thread) == 0 || !canSeeNote(p, thread[0], q.user) {
		return notFound("Discussion")
	}
	internal := thread[0].Internal
	if status, body := q.newNote(p, internal); status != 0 {
		return status, body
	}
	n := s.insertNote(&Note{ProjectID: p.ID, Kind: kind, IID: iid, DiscussionID: thread[0].DiscussionID,
		Body: q.str("body"), AuthorID: q.user.ID, Internal: internal})
	q.emit(Event{Kind: "note.create", ProjectID: p.ID, IID: iid, ID: n.ID})
	return http.StatusCreated, s.noteJSON(p, n)
}

// updateNote edits a note's body; only its author may.
func (s *Server) updateNote(q *request) (int, any) {
	p, kind, iid, status, body := q.noteable()
	if status != 0 {
		return status, body
	}
	n, ok := q.note(p, kind, iid)
	if !ok || (q.r.PathValue("did") != "" && n.DiscussionID != q.r.PathValue("did")) {
		return notFound("Note")
	}
	if n.AuthorID != q.user.ID {
		return forbidden()
	}
	if !q.has("body") || strings.TrimSpace(q.str("body")) == "" {
		return badRequest("body is missing")
	}
	if len(q.str("body")) > 1_000_000 {
		return http.StatusBadRequest, msg("Note {:note=>[\"is too long (maximum is 1000000 characters)\"]}")
	}
	n.Body = q.str("body")
	n.UpdatedAt = s.now().UTC()
	n.Edits++
	q.emit(Event{Kind: "note.update", ProjectID: p.ID, IID: iid, ID: n.ID})
	return http.StatusOK, s.noteJSON(p, n)
}

func (s *Server) awardJSON(a *Award) *gitlab.AwardEmoji {
	t := s.now().UTC()
	return &gitlab.AwardEmoji{ID: a.ID, Name: a.Name, User: *s.basicUser(a.UserID),
		CreatedAt: &t, UpdatedAt: &t, AwardableID: a.NoteID, AwardableType: "Note"}
}

func (s *Server) listAwards(q *request) (int, any) {
	p, kind, iid, status, body := q.noteable()
	if status != 0 {
		return status, body
	}
	n, ok := q.note(p, kind, iid)
	if !ok {
		return notFound("Note")
	}
	var awards []*Award
	for _, a := range s.awards {
		if a.NoteID == n.ID {
			awards = append(awards, a)
		}
	}
	sort.Slice(awards, func(i, j int) bool { return awards[i].ID < awards[j].ID })
	out := []*gitlab.AwardEmoji{}
	for _, a := range paginate(q, awards) {
		out = append(out, s.awardJSON(a))
	}
	return http.StatusOK, out
}

// createAward awards an emoji; the same user awarding the same name twice
// gets GitLab's 404 "has already been taken".
func (s *Server) createAward(q *request) (int, any) {
	p, kind, iid, status, body := q.noteable()
	if status != 0 {
		return status, body
	}
	n, ok := q.note(p, kind, iid)
	if !ok {
		return notFound("Note")
	}
	name := q.str("name")
	if !knownEmoji[name] {
		return http.StatusBadRequest, msg(fmt.Sprintf("Name %q is not a valid emoji name (the fake knows: eyes, white_check_mark, x, …)", name))
	}
	if p.Visibility == "private" && p.accessLevel(q.user.ID) < Guest {
		return forbidden()
	}
	for _, a := range s.awards {
		if a.NoteID == n.ID && a.UserID == q.user.ID && a.Name == name {
			return http.StatusNotFound, msg(`404 Award Emoji {:name=>["has already been taken"]} Not Found`)
		}
	}
	a := &Award{ID: s.nextID(), ProjectID: p.ID, Kind: kind, IID: iid, NoteID: n.ID, Name: name, UserID: q.user.ID}
	s.awards[a.ID] = a
	q.emit(Event{Kind: "award.create", ProjectID: p.ID, IID: iid, ID: a.ID})
	return http.StatusCreated, s.awardJSON(a)
}

// deleteAward removes an award; only the user who gave it may.
func (s *Server) deleteAward(q *request) (int, any) {
	p, kind, iid, status, body := q.noteable()
	if status != 0 {
		return status, body
	}
	n, ok := q.note(p, kind, iid)
	if !ok {
		return notFound("Note")
	}
	aid, _ := q.pathInt("aid")
	a := s.awards[aid]
	if a == nil || a.NoteID != n.ID {
		return notFound("Award Emoji")
	}
	if a.UserID != q.user.ID {
		return forbidden()
	}
	delete(s.awards, aid)
	q.emit(Event{Kind: "award.delete", ProjectID: p.ID, IID: iid, ID: aid})
	return http.StatusNoContent, nil
}
