package gitlab_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
)

func TestCreateMRIsIdempotent(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	pid := w.project.ID
	w.s.Git().Commit("acme/research", "agent/issue-7-aapl", map[string]string{"output/aapl.md": "report\n"}, "Add report")
	in := gitlab.NewMR{SourceBranch: "agent/issue-7-aapl", TargetBranch: "main", Title: "Analyse AAPL",
		Description: "From #7", Draft: true, Labels: []string{"agentbot"}, ReviewerIDs: []int64{w.alice.ID}}
	w.s.FailAfterApply("POST", "/projects/*/merge_requests", http.StatusBadGateway, 1)
	mr, err := w.c.CreateMR(ctx, pid, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.c.CreateMR(ctx, pid, in)
	if err != nil || again.IID != mr.IID {
		t.Fatalf("second CreateMR = %+v, %v", again, err)
	}
	mrs := w.s.MergeRequests(pid)
	if len(mrs) != 1 || mrs[0].Title != "Draft: Analyse AAPL" || !mrs[0].Draft || mrs[0].ReviewerIDs[0] != w.alice.ID || mrs[0].Labels[0] != "agentbot" {
		t.Fatalf("MRs = %+v", mrs)
	}
	if got := w.s.Count("POST", "/projects/*/merge_requests"); got != 1 {
		t.Errorf("MR POSTs = %d, want 1", got)
	}

	up, err := w.c.UpdateMR(ctx, pid, mr.IID, gitlab.UpdateMR{Draft: ptr(false), Description: ptr("new"), Labels: &[]string{"a", "b"}})
	if err != nil || up.Draft || up.Title != "Analyse AAPL" || up.Description != "new" || len(up.Labels) != 2 {
		t.Fatalf("UpdateMR = %+v, %v", up, err)
	}
	got, err := w.c.MergeRequest(ctx, pid, mr.IID)
	if err != nil || got.SHA != w.s.Git().Branches("acme/research")["agent/issue-7-aapl"] || got.DiffRefs.HeadSHA != got.SHA {
		t.Fatalf("MergeRequest = %+v, %v", got, err)
	}
	if _, ok, err := w.c.FindOpenMR(ctx, pid, "agent/nothing"); ok || err != nil {
		t.Errorf("FindOpenMR(missing) = %v, %v", ok, err)
	}
}

func TestDiffsAndInlineDiscussions(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	pid := w.project.ID
	w.s.Git().Commit("acme/research", "feature", map[string]string{"report.md": "one\ntwo\nthree\n"}, "Report")
	mr := w.s.AddMergeRequest(pid, gitlabtest.MergeRequest{Title: "Report", SourceBranch: "feature", AuthorID: w.alice.ID})
	diffs, refs, err := w.c.MRDiffs(ctx, pid, mr.IID)
	if err != nil || len(diffs) != 1 || !diffs[0].NewFile || !strings.Contains(diffs[0].Diff, "+two") || refs.HeadSHA == "" {
		t.Fatalf("MRDiffs = %+v, %+v, %v", diffs, refs, err)
	}
	pos := &gitlab.Position{DiffRefs: refs, NewPath: "report.md", NewLine: 2}
	n1, err := w.c.CreateMRDiscussion(ctx, pid, mr.IID, "review:1", "Source for this figure?", pos)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := w.c.CreateMRDiscussion(ctx, pid, mr.IID, "review:1", "Source for this figure?", pos)
	if err != nil || n2.ID != n1.ID {
		t.Fatalf("second CreateMRDiscussion = %+v, %v", n2, err)
	}
	notes := w.s.Notes(pid, "mr", mr.IID)
	if len(notes) != 1 || notes[0].Position == nil || notes[0].Position.NewLine != 2 || notes[0].Position.NewPath != "report.md" {
		t.Fatalf("notes = %+v", notes)
	}
	if _, err := w.c.CreateMRDiscussion(ctx, pid, mr.IID, "review:2", "x", &gitlab.Position{DiffRefs: refs, NewPath: "report.md", NewLine: 40}); err == nil {
		t.Error("a comment outside the diff was accepted")
	}
}

func TestBranchesAndProtection(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.s.ProtectBranch(w.project.ID, "release/*")
	pats, err := w.c.ProtectedBranches(ctx, w.project.ID)
	if err != nil || len(pats) != 2 {
		t.Fatalf("ProtectedBranches = %v, %v", pats, err)
	}
	for branch, want := range map[string]bool{"main": true, "release/1.0": true, "agent/issue-7-x": false, "mainline": false} {
		if got := gitlab.BranchProtected(pats, branch); got != want {
			t.Errorf("BranchProtected(%q) = %v, want %v", branch, got, want)
		}
	}
	sha, ok, err := w.c.Branch(ctx, w.project.ID, "main")
	if err != nil || !ok || sha != w.s.Git().Branches("acme/research")["main"] {
		t.Errorf("Branch(main) = %s, %v, %v", sha, ok, err)
	}
	if _, ok, err := w.c.Branch(ctx, w.project.ID, "agent/none"); ok || err != nil {
		t.Errorf("Branch(missing) = %v, %v", ok, err)
	}
}

func ptr[T any](v T) *T { return &v }
