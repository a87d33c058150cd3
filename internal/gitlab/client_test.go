package gitlab_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
)

type world struct {
	s       *gitlabtest.Server
	c       *gitlab.Client
	bot     gitlabtest.User
	alice   gitlabtest.User
	project gitlabtest.Project
	issue   gitlab.Thread
}

func newWorld(t *testing.T) world {
	t.Helper()
	s := gitlabtest.New(t)
	w := world{s: s}
	w.bot = s.AddUser(gitlabtest.User{Username: "agentbot", Bot: true, Token: "glpat-bot-secret-123"})
	w.alice = s.AddUser(gitlabtest.User{Username: "alice", Name: "Alice A.", PublicEmail: "alice@example.com"})
	w.project = s.AddProject("acme/research", "main", map[string]string{"README.md": "hello\n"})
	s.AddMember(w.project.ID, w.bot.ID, gitlabtest.Developer)
	s.AddInheritedMember(w.project.ID, w.alice.ID, gitlabtest.Maintainer)
	s.AddIssue(w.project.ID, gitlabtest.Issue{IID: 7, Title: "Analyse AAPL", AuthorID: w.alice.ID})
	w.issue = gitlab.Thread{ProjectID: w.project.ID, Kind: gitlab.KindIssue, IID: 7}
	w.c = newClient(t, s, w.bot.Token)
	return w
}

func newClient(t *testing.T, s *gitlabtest.Server, token string) *gitlab.Client {
	t.Helper()
	c, err := gitlab.New(s.URL(), token, gitlab.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const notesPath = "/projects/*/issues/*/notes"

func TestPostNoteIsIdempotentByKey(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	n1, err := w.c.PostNote(ctx, w.issue, "run-1:ack", "On it.")
	if err != nil {
		t.Fatal(err)
	}
	n2, err := w.c.PostNote(ctx, w.issue, "run-1:ack", "On it.")
	if err != nil || n2.ID != n1.ID {
		t.Fatalf("second PostNote = %+v, %v; want note %d", n2, err, n1.ID)
	}
	notes := w.s.Notes(w.project.ID, "issue", 7)
	if len(notes) != 1 || notes[0].Body != "On it.\n\n<!-- agentbot:run-1:ack -->" {
		t.Fatalf("notes = %+v", notes)
	}
	if got := w.s.Count("POST", notesPath); got != 1 {
		t.Errorf("POSTs = %d, want 1", got)
	}
	// A person quoting the marker does not make the bot think it answered.
	w.s.AddNote(w.project.ID, "issue", 7, gitlabtest.Note{Body: "copy " + gitlab.Marker("run-2:ack"), AuthorID: w.alice.ID})
	if _, ok, err := w.c.FindNote(ctx, w.issue, "run-2:ack"); err != nil || ok {
		t.Errorf("FindNote matched a person's note: %v, %v", ok, err)
	}
	if _, err := w.c.PostNote(ctx, w.issue, "bad--key", "x"); err == nil {
		t.Error("a key that ends the HTML comment was accepted")
	}
}

func TestPostNoteAfter502ThatWasApplied(t *testing.T) {
	w := newWorld(t)
	w.s.FailAfterApply("POST", notesPath, http.StatusBadGateway, 1)
	n, err := w.c.PostNote(context.Background(), w.issue, "run-1:reply", "Done.")
	if err != nil {
		t.Fatal(err)
	}
	notes := w.s.Notes(w.project.ID, "issue", 7)
	if len(notes) != 1 || notes[0].ID != n.ID {
		t.Fatalf("notes = %+v, want exactly one (%d)", notes, n.ID)
	}
	if got := w.s.Count("POST", notesPath); got != 1 {
		t.Errorf("POSTs = %d, want 1 (found by marker, not re-posted)", got)
	}
}

func TestPostNoteRetriesA5xxThatWasNotApplied(t *testing.T) {
	w := newWorld(t)
	w.s.FailNext("POST", notesPath, http.StatusInternalServerError, 2)
	if _, err := w.c.PostNote(context.Background(), w.issue, "run-1:reply", "Done."); err != nil {
		t.Fatal(err)
	}
	if n := len(w.s.Notes(w.project.ID, "issue", 7)); n != 1 {
		t.Fatalf("notes = %d, want 1", n)
	}
	if got := w.s.Count("POST", notesPath); got != 3 {
		t.Errorf("POSTs = %d, want 3", got)
	}

	// Always failing: bounded attempts, a transient error.
	w.s.FailNext("POST", notesPath, http.StatusServiceUnavailable, 100)
	_, err := w.c.PostNote(context.Background(), w.issue, "run-1:other", "x")
	if !gitlab.IsTransient(err) {
		t.Fatalf("err = %v, want transient", err)
	}
	if got := w.s.Count("POST", notesPath); got != 3+4 {
		t.Errorf("POSTs = %d, want 4 more (Options.WriteAttempts)", got-3)
	}
}

func TestGetRetriedAfter429WithRetryAfter(t *testing.T) {
	w := newWorld(t)
	w.s.FailNext("GET", "/user", http.StatusTooManyRequests, 1)
	start := time.Now()
	me, err := w.c.CurrentUser(context.Background())
	if err != nil || me.Username != "agentbot" {
		t.Fatalf("CurrentUser = %+v, %v", me, err)
	}
	if w.s.Count("GET", "/user") != 2 {
		t.Errorf("GET /user calls = %d, want 2", w.s.Count("GET", "/user"))
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %v; Retry-After asked for 1s", d)
	}
}

func TestAwardEmojiOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	trigger := w.s.AddNote(w.project.ID, "issue", 7, gitlabtest.Note{Body: "/agent help", AuthorID: w.alice.ID})
	for range 2 {
		if err := w.c.AwardEmoji(ctx, w.issue, trigger.ID, "eyes"); err != nil {
			t.Fatal(err)
		}
	}
	w.s.FailAfterApply("POST", "/projects/*/issues/*/notes/*/award_emoji", http.StatusBadGateway, 1)
	if err := w.c.AwardEmoji(ctx, w.issue, trigger.ID, "white_check_mark"); err != nil {
		t.Fatalf("award after an applied 502: %v", err)
	}
	awards := w.s.Awards(trigger.ID)
	if len(awards) != 2 || awards[0].Name != "eyes" || awards[1].Name != "white_check_mark" {
		t.Fatalf("awards = %+v", awards)
	}
	if err := w.c.RemoveEmoji(ctx, w.issue, trigger.ID, "eyes"); err != nil {
		t.Fatal(err)
	}
	if err := w.c.RemoveEmoji(ctx, w.issue, trigger.ID, "eyes"); err != nil {
		t.Fatalf("removing an absent award: %v", err)
	}
	if awards := w.s.Awards(trigger.ID); len(awards) != 1 {
		t.Fatalf("awards after remove = %+v", awards)
	}
	err := w.c.AwardEmoji(ctx, w.issue, 999999, "eyes")
	if !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("award on a missing note: %v, want ErrNotFound", err)
	}
}

func TestRepliesInDiscussionsAndInternalNotes(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	pid := w.project.ID
	start := w.s.AddNote(pid, "issue", 7, gitlabtest.Note{Body: "thread", AuthorID: w.alice.ID})
	th := w.issue
	th.DiscussionID = start.DiscussionID
	if _, err := w.c.PostNote(ctx, th, "r:1", "reply"); err != nil {
		t.Fatal(err)
	}
	if notes := w.s.Notes(pid, "issue", 7); len(notes) != 2 || notes[1].DiscussionID != start.DiscussionID {
		t.Fatalf("notes = %+v", notes)
	}

	secret := w.s.AddIssue(pid, gitlabtest.Issue{Title: "secret", Confidential: true, AuthorID: w.alice.ID})
	is, err := w.c.Issue(ctx, pid, secret.IID)
	if err != nil || !is.Confidential {
		t.Fatalf("Issue = %+v, %v", is, err)
	}
	ct := gitlab.Thread{ProjectID: pid, Kind: gitlab.KindIssue, IID: secret.IID, Internal: true}
	n, err := w.c.PostNote(ctx, ct, "r:2", "internal")
	if err != nil || !n.Internal {
		t.Fatalf("internal note = %+v, %v", n, err)
	}
	if err := w.c.UpdateNote(ctx, ct, n.ID, "r:2", "edited"); err != nil {
		t.Fatal(err)
	}
	if got := w.s.Notes(pid, "issue", secret.IID)[0].Body; got != "edited\n\n"+gitlab.Marker("r:2") {
		t.Errorf("updated body = %q", got)
	}
	if again, err := w.c.PostNote(ctx, ct, "r:2", "internal"); err != nil || again.ID != n.ID {
		t.Errorf("PostNote after an edit = %+v, %v: want the edited note", again, err)
	}
	all, err := w.c.ListNotes(ctx, w.issue)
	if err != nil || len(all) != 2 || all[0].Body != "thread" {
		t.Errorf("ListNotes = %+v, %v", all, err)
	}
}

func TestFindNoteSearchesPages(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	n, err := w.c.PostNote(ctx, w.issue, "old", "old")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		w.s.AddNote(w.project.ID, "issue", 7, gitlabtest.Note{Body: fmt.Sprint("chatter ", i), AuthorID: w.alice.ID})
	}
	got, ok, err := w.c.FindNote(ctx, w.issue, "old")
	if err != nil || !ok || got.ID != n.ID {
		t.Fatalf("FindNote = %+v, %v, %v", got, ok, err)
	}
}

func TestUsersAndAccess(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	lvl, err := w.c.AccessLevel(ctx, w.project.ID, w.alice.ID)
	if err != nil || lvl != gitlabtest.Maintainer {
		t.Fatalf("AccessLevel(alice) = %d, %v", lvl, err)
	}
	stranger := w.s.AddUser(gitlabtest.User{Username: "stranger"})
	if lvl, err := w.c.AccessLevel(ctx, w.project.ID, stranger.ID); err != nil || lvl != 0 {
		t.Fatalf("AccessLevel(stranger) = %d, %v", lvl, err)
	}
	u, err := w.c.User(ctx, w.alice.ID)
	if err != nil || u.PublicEmail != "alice@example.com" || u.Name != "Alice A." {
		t.Fatalf("User = %+v, %v", u, err)
	}
	p, err := w.c.Project(ctx, w.project.ID)
	if err != nil || p.DefaultBranch != "main" || p.PathWithNamespace != "acme/research" || p.HTTPURLToRepo != w.s.HTTPURLToRepo(w.project.ID) {
		t.Fatalf("Project = %+v, %v", p, err)
	}
	if _, err := w.c.Issue(ctx, w.project.ID, 99); !errors.Is(err, gitlab.ErrNotFound) || gitlab.IsTransient(err) {
		t.Errorf("missing issue: %v", err)
	}
}

func TestErrorsSayWhatToCheckAndHideTheToken(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	bad := newClient(t, w.s, "glpat-wrong-secret-456")
	_, err := bad.CurrentUser(ctx)
	if !errors.Is(err, gitlab.ErrUnauthorized) || gitlab.IsTransient(err) || strings.Contains(err.Error(), "glpat-wrong-secret-456") ||
		!strings.Contains(err.Error(), "GITLAB_TOKEN") {
		t.Errorf("bad token: %v", err)
	}
	guest := w.s.AddUser(gitlabtest.User{Username: "guest", Token: "glpat-guest-secret-789"})
	w.s.AddMember(w.project.ID, guest.ID, gitlabtest.Guest)
	w.s.Git().Commit("acme/research", "agent/x", map[string]string{"a": "a"}, "a")
	_, err = newClient(t, w.s, guest.Token).CreateMR(ctx, w.project.ID, gitlab.NewMR{SourceBranch: "agent/x", TargetBranch: "main", Title: "t"})
	if !errors.Is(err, gitlab.ErrForbidden) || !strings.Contains(err.Error(), "role Developer") || strings.Contains(err.Error(), guest.Token) {
		t.Errorf("guest creating an MR: %v", err)
	}
	w.s.FailNext("GET", "/projects/*", http.StatusServiceUnavailable, 100)
	if _, err := w.c.Project(ctx, w.project.ID); !gitlab.IsTransient(err) {
		t.Errorf("503s: %v, want transient", err)
	}
	w.s.ClearFaults()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := w.c.Project(cctx, w.project.ID); err == nil || gitlab.IsTransient(err) {
		t.Errorf("cancelled context: %v, want a permanent error", err)
	}
}
