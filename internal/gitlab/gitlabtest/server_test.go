package gitlabtest

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

type world struct {
	s       *Server
	bot     User
	alice   User
	project Project
	issue   Issue
}

func newWorld(t *testing.T) world {
	s := New(t)
	w := world{s: s}
	w.bot = s.AddUser(User{Username: "agentbot", Bot: true})
	w.alice = s.AddUser(User{Username: "alice", Name: "Alice", PublicEmail: "alice@example.com"})
	w.project = s.AddProject("acme/research", "main", map[string]string{"README.md": "hello\n"})
	s.AddMember(w.project.ID, w.bot.ID, Developer)
	s.AddInheritedMember(w.project.ID, w.alice.ID, Maintainer)
	w.issue = s.AddIssue(w.project.ID, Issue{IID: 7, Title: "Analyse", AuthorID: w.alice.ID})
	return w
}

func client(t *testing.T, s *Server, token string, opts ...gitlab.ClientOptionFunc) *gitlab.Client {
	t.Helper()
	c, err := gitlab.NewClient(token, append([]gitlab.ClientOptionFunc{
		gitlab.WithBaseURL(s.URL()), gitlab.WithOnlyIdempotentRetries(),
		gitlab.WithCustomBackoff(func(_, _ time.Duration, _ int, _ *http.Response) time.Duration { return time.Millisecond }),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUsersProjectsMembers(t *testing.T) {
	w := newWorld(t)
	c := client(t, w.s, w.bot.Token)
	me, _, err := c.Users.CurrentUser()
	if err != nil || me.Username != "agentbot" || !me.Bot {
		t.Fatalf("CurrentUser = %+v, %v", me, err)
	}
	u, _, err := c.Users.GetUser(w.alice.ID, nil)
	if err != nil || u.PublicEmail != "alice@example.com" {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	for _, pid := range []any{w.project.ID, "acme/research"} {
		p, _, err := c.Projects.GetProject(pid, nil)
		if err != nil || p.DefaultBranch != "main" || p.HTTPURLToRepo != w.s.Git().URL("acme/research") || p.PathWithNamespace != "acme/research" {
			t.Fatalf("GetProject(%v) = %+v, %v", pid, p, err)
		}
	}
	m, _, err := c.ProjectMembers.GetInheritedProjectMember(w.project.ID, w.alice.ID)
	if err != nil || m.AccessLevel != gitlab.MaintainerPermissions {
		t.Fatalf("members/all = %+v, %v", m, err)
	}
	if _, _, err := c.ProjectMembers.GetProjectMember(w.project.ID, w.alice.ID); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("direct member lookup of an inherited member: %v, want 404", err)
	}
	stranger := w.s.AddUser(User{Username: "stranger"})
	if _, _, err := client(t, w.s, stranger.Token).Projects.GetProject(w.project.ID, nil); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("private project for a non-member: %v, want 404", err)
	}
	if _, _, err := client(t, w.s, "nope").Users.CurrentUser(); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad token: %v, want 401", err)
	}
}

func TestNotesDiscussionsAwards(t *testing.T) {
	w := newWorld(t)
	c := client(t, w.s, w.bot.Token)
	pid := w.project.ID
	trigger := w.s.AddNote(pid, "issue", 7, Note{Body: "/agent help", AuthorID: w.alice.ID})
	for i := range 3 {
		if _, _, err := c.Notes.CreateIssueNote(pid, 7, &gitlab.CreateIssueNoteOptions{Body: gitlab.Ptr(fmt.Sprint("n", i))}); err != nil {
			t.Fatal(err)
		}
	}
	reply, _, err := c.Discussions.AddIssueDiscussionNote(pid, 7, trigger.DiscussionID, &gitlab.AddIssueDiscussionNoteOptions{Body: gitlab.Ptr("reply")})
	if err != nil {
		t.Fatal(err)
	}
	// Default order is newest first; pages of two.
	page1, resp, err := c.Notes.ListIssueNotes(pid, 7, &gitlab.ListIssueNotesOptions{ListOptions: gitlab.ListOptions{PerPage: 2}})
	if err != nil || len(page1) != 2 || page1[0].Body != "reply" || resp.NextPage != 2 || resp.TotalItems != 5 {
		t.Fatalf("page 1 = %d notes, first %q, next %d, %v", len(page1), page1[0].Body, resp.NextPage, err)
	}
	if _, _, err := c.Notes.UpdateIssueNote(pid, 7, reply.ID, &gitlab.UpdateIssueNoteOptions{Body: gitlab.Ptr("edited")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Notes.UpdateIssueNote(pid, 7, trigger.ID, &gitlab.UpdateIssueNoteOptions{Body: gitlab.Ptr("x")}); err == nil {
		t.Error("editing someone else's note succeeded")
	}
	notes := w.s.Notes(pid, "issue", 7)
	if len(notes) != 5 || notes[4].Body != "edited" || notes[4].Edits != 1 || notes[4].DiscussionID != trigger.DiscussionID {
		t.Fatalf("Notes = %+v", notes)
	}

	// Awards: a second identical award is GitLab's 404.
	if _, _, err := c.AwardEmoji.CreateIssuesAwardEmojiOnNote(pid, 7, trigger.ID, &gitlab.CreateAwardEmojiOptions{Name: "eyes"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.AwardEmoji.CreateIssuesAwardEmojiOnNote(pid, 7, trigger.ID, &gitlab.CreateAwardEmojiOptions{Name: "eyes"}); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("duplicate award: %v, want 404", err)
	}
	if _, _, err := c.AwardEmoji.CreateIssuesAwardEmojiOnNote(pid, 7, trigger.ID, &gitlab.CreateAwardEmojiOptions{Name: "✅"}); err == nil {
		t.Error("award with a non-emoji name succeeded")
	}
	list, _, err := c.AwardEmoji.ListIssuesAwardEmojiOnNote(pid, 7, trigger.ID, nil)
	if err != nil || len(list) != 1 || list[0].User.ID != w.bot.ID {
		t.Fatalf("awards = %+v, %v", list, err)
	}
	if _, err := c.AwardEmoji.DeleteIssuesAwardEmojiOnNote(pid, 7, trigger.ID, list[0].ID); err != nil || len(w.s.Awards(trigger.ID)) != 0 {
		t.Fatalf("delete award: %v, left %v", err, w.s.Awards(trigger.ID))
	}

	// Internal notes and confidential issues.
	secret := w.s.AddIssue(pid, Issue{Title: "secret", Confidential: true, AuthorID: w.alice.ID})
	n, _, err := c.Notes.CreateIssueNote(pid, secret.IID, &gitlab.CreateIssueNoteOptions{Body: gitlab.Ptr("hidden"), Internal: gitlab.Ptr(true)})
	if err != nil || !n.Internal {
		t.Fatalf("internal note = %+v, %v", n, err)
	}
	guest := w.s.AddUser(User{Username: "guest"})
	w.s.AddMember(pid, guest.ID, Guest)
	if _, _, err := client(t, w.s, guest.Token).Issues.GetIssue(pid, secret.IID); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("guest reading a confidential issue: %v, want 404", err)
	}
	gl, _, err := client(t, w.s, guest.Token).Notes.ListIssueNotes(pid, 7, nil)
	if err != nil || len(gl) != 5 {
		t.Errorf("guest listing public notes: %d, %v", len(gl), err)
	}
}

func TestMergeRequestsAndDiffs(t *testing.T) {
	w := newWorld(t)
	c := client(t, w.s, w.bot.Token)
	pid := w.project.ID
	w.s.Git().Commit("acme/research", "agent/issue-7-aapl", map[string]string{"output/aapl.md": "one\ntwo\n", "README.md": "hello\nmore\n"}, "Add report")
	mr, _, err := c.MergeRequests.CreateMergeRequest(pid, &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr("Draft: AAPL"), SourceBranch: gitlab.Ptr("agent/issue-7-aapl"), TargetBranch: gitlab.Ptr("main"),
		Labels: &gitlab.LabelOptions{"agentbot", "research"}, ReviewerIDs: &[]int64{w.alice.ID},
	})
	if err != nil || !mr.Draft || len(mr.Labels) != 2 || len(mr.Reviewers) != 1 || mr.DiffRefs.HeadSha == "" {
		t.Fatalf("CreateMergeRequest = %+v, %v", mr, err)
	}
	if _, _, err := c.MergeRequests.CreateMergeRequest(pid, &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr("again"), SourceBranch: gitlab.Ptr("agent/issue-7-aapl"), TargetBranch: gitlab.Ptr("main"),
	}); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("duplicate MR: %v, want 409", err)
	}
	open, _, err := c.MergeRequests.ListProjectMergeRequests(pid, &gitlab.ListProjectMergeRequestsOptions{
		SourceBranch: gitlab.Ptr("agent/issue-7-aapl"), State: gitlab.Ptr("opened")})
	if err != nil || len(open) != 1 || open[0].IID != mr.IID {
		t.Fatalf("list by source branch = %v, %v", open, err)
	}
	up, _, err := c.MergeRequests.UpdateMergeRequest(pid, mr.IID, &gitlab.UpdateMergeRequestOptions{Title: gitlab.Ptr("AAPL"), Description: gitlab.Ptr("d")})
	if err != nil || up.Draft || w.s.MergeRequests(pid)[0].Updates != 1 {
		t.Fatalf("UpdateMergeRequest = %+v, %v", up, err)
	}
	diffs, _, err := c.MergeRequests.ListMergeRequestDiffs(pid, mr.IID, nil)
	if err != nil || len(diffs) != 2 || diffs[1].NewPath != "output/aapl.md" || !diffs[1].NewFile || !strings.HasPrefix(diffs[1].Diff, "@@ -0,0 +1,2 @@") {
		t.Fatalf("diffs = %+v, %v", diffs, err)
	}
	refs := up.DiffRefs
	pos := func(line int64) *gitlab.PositionOptions {
		return &gitlab.PositionOptions{BaseSHA: &refs.BaseSha, StartSHA: &refs.StartSha, HeadSHA: &refs.HeadSha,
			PositionType: gitlab.Ptr("text"), NewPath: gitlab.Ptr("output/aapl.md"), OldPath: gitlab.Ptr("output/aapl.md"), NewLine: &line}
	}
	d, _, err := c.Discussions.CreateMergeRequestDiscussion(pid, mr.IID, &gitlab.CreateMergeRequestDiscussionOptions{Body: gitlab.Ptr("check"), Position: pos(2)})
	if err != nil || d.Notes[0].Position == nil || d.Notes[0].Type != gitlab.DiffNote {
		t.Fatalf("inline comment = %+v, %v", d, err)
	}
	if _, _, err := c.Discussions.CreateMergeRequestDiscussion(pid, mr.IID, &gitlab.CreateMergeRequestDiscussionOptions{Body: gitlab.Ptr("x"), Position: pos(9)}); err == nil {
		t.Error("inline comment on a line outside the diff succeeded")
	}
	if _, _, err := c.Branches.GetBranch(pid, "agent/issue-7-aapl"); err != nil {
		t.Errorf("GetBranch: %v", err)
	}
	pb, _, err := c.ProtectedBranches.ListProtectedBranches(pid, nil)
	if err != nil || len(pb) != 1 || pb[0].Name != "main" {
		t.Errorf("protected branches = %+v, %v", pb, err)
	}
}

func TestPipelinesJobs(t *testing.T) {
	w := newWorld(t)
	c := client(t, w.s, w.bot.Token)
	pid := w.project.ID
	var mu sync.Mutex
	var events []Event
	w.s.SetHook(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	pl, _, err := c.Pipelines.CreatePipeline(pid, &gitlab.CreatePipelineOptions{Ref: gitlab.Ptr("main"),
		Variables: &[]*gitlab.PipelineVariableOptions{{Key: gitlab.Ptr("AGENTBOT_COMMAND"), Value: gitlab.Ptr("analyze AAPL")}}})
	if err != nil || pl.Status != "created" {
		t.Fatalf("CreatePipeline = %+v, %v", pl, err)
	}
	if got := w.s.Pipelines(pid); len(got) != 1 || got[0].Variables["AGENTBOT_COMMAND"] != "analyze AAPL" {
		t.Fatalf("Pipelines = %+v", got)
	}
	job := w.s.AddJob(pl.ID, Job{Name: "agent", Stage: "run"})
	w.s.SetJob(job.ID, "failed", "script_failure", "line 1\nERROR: boom\n")
	w.s.SetPipelineStatus(pl.ID, "failed")
	jobs, _, err := c.Jobs.ListPipelineJobs(pid, pl.ID, &gitlab.ListJobsOptions{Scope: &[]gitlab.BuildStateValue{gitlab.Failed}})
	if err != nil || len(jobs) != 1 || jobs[0].Status != "failed" {
		t.Fatalf("jobs = %+v, %v", jobs, err)
	}
	trace, _, err := c.Jobs.GetTraceFile(pid, job.ID)
	if err != nil || trace.Len() != len("line 1\nERROR: boom\n") {
		t.Fatalf("trace: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0].Kind != "pipeline.create" || events[0].ID != pl.ID {
		t.Errorf("events = %+v", events)
	}
}

func TestFaults(t *testing.T) {
	w := newWorld(t)
	c := client(t, w.s, w.bot.Token)
	pid := w.project.ID
	w.s.FailAfterApply("POST", "/projects/*/issues/*/notes", http.StatusBadGateway, 1)
	_, _, err := c.Notes.CreateIssueNote(pid, 7, &gitlab.CreateIssueNoteOptions{Body: gitlab.Ptr("once")})
	var er *gitlab.ErrorResponse
	if !errors.As(err, &er) || er.StatusCode != http.StatusBadGateway {
		t.Fatalf("err = %v, want 502", err)
	}
	if n := w.s.Notes(pid, "issue", 7); len(n) != 1 {
		t.Fatalf("notes after apply-then-502 = %d, want 1 (applied)", len(n))
	}
	w.s.FailNext("POST", "/projects/*/issues/*/notes", http.StatusInternalServerError, 1)
	if _, _, err := c.Notes.CreateIssueNote(pid, 7, &gitlab.CreateIssueNoteOptions{Body: gitlab.Ptr("twice")}); err == nil {
		t.Fatal("want 500")
	}
	if n := w.s.Notes(pid, "issue", 7); len(n) != 1 {
		t.Fatalf("notes after fail-before = %d, want 1", len(n))
	}
	// GETs are retried by client-go over a 500.
	w.s.FailNext("GET", "/user", http.StatusInternalServerError, 2)
	if _, _, err := c.Users.CurrentUser(); err != nil {
		t.Fatalf("GET after two 500s: %v", err)
	}
	if got := w.s.Count("GET", "/user"); got != 3 {
		t.Errorf("GET /user calls = %d, want 3", got)
	}
	w.s.SetFaultRate(1, 42, http.StatusServiceUnavailable)
	if _, _, err := client(t, w.s, w.bot.Token, gitlab.WithoutRetries()).Users.CurrentUser(); err == nil {
		t.Error("fault rate 1: request succeeded")
	}
	w.s.ClearFaults()
}

func TestMountedGitServerChecksAccess(t *testing.T) {
	w := newWorld(t)
	g := w.s.Git()
	clone := filepath.Join(t.TempDir(), "c")
	url := w.s.HTTPURLToRepo(w.project.ID)
	if out, err := runGit(t, g, "", "clone", "--quiet", withToken(url, w.bot.Token), clone); err != nil {
		t.Fatalf("clone: %v: %s", err, out)
	}
	runGit(t, g, clone, "commit", "--quiet", "--allow-empty", "-m", "x")
	if out, err := runGit(t, g, clone, "push", "origin", "HEAD:main"); err == nil {
		t.Fatalf("push to the default branch succeeded: %s", out)
	}
	if out, err := runGit(t, g, clone, "push", "--quiet", "origin", "HEAD:agent/issue-7-x"); err != nil {
		t.Fatalf("push to an agent branch: %v: %s", err, out)
	}
	stranger := w.s.AddUser(User{Username: "stranger"})
	if _, err := runGit(t, g, "", "ls-remote", withToken(url, stranger.Token)); err == nil {
		t.Error("a non-member could read the private repository")
	}
	reporter := w.s.AddUser(User{Username: "rep"})
	w.s.AddMember(w.project.ID, reporter.ID, Reporter)
	if out, err := runGit(t, g, clone, "push", withToken(url, reporter.Token), "HEAD:refs/heads/rep"); err == nil {
		t.Errorf("a Reporter could push: %s", out)
	}
}

// recordingTB catches the fake's complaints about unexpected requests.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestUnexpectedRequestFailsTheTest(t *testing.T) {
	rec := &recordingTB{TB: t}
	s := New(rec)
	bot := s.AddUser(User{Username: "agentbot"})
	c := client(t, s, bot.Token)
	_, _, err := c.Projects.ListProjects(nil)
	if !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("unknown route: %v, want 404", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "unexpected request GET /api/v4/projects") {
		t.Errorf("errors = %q", rec.errs)
	}
}
