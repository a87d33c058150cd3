package gitlab_test

import (
	"bytes"
	"context"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
)

func TestFileAtRef(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	pid := w.project.ID
	w.s.Git().Commit("acme/research", "feature", map[string]string{".agentbot.yml": "version: 1\n", "docs/a b.md": "x\n"}, "add config")

	for _, tc := range []struct {
		path, ref string
		want      string
		found     bool
	}{
		{"README.md", "main", "hello\n", true},
		{".agentbot.yml", "main", "", false},
		{".agentbot.yml", "feature", "version: 1\n", true},
		{"docs/a b.md", "feature", "x\n", true},
		{"docs", "feature", "", false},
		{"README.md", "no-such-branch", "", false},
	} {
		data, found, err := w.c.File(ctx, pid, tc.path, tc.ref)
		if err != nil || found != tc.found || string(data) != tc.want {
			t.Errorf("File(%s, %s) = %q, %v, %v; want %q, %v", tc.path, tc.ref, data, found, err, tc.want, tc.found)
		}
	}

	big := bytes.Repeat([]byte("a"), gitlab.MaxFileBytes+100)
	w.s.Git().Commit("acme/research", "feature", map[string]string{"big.txt": string(big)}, "big")
	data, found, err := w.c.File(ctx, pid, "big.txt", "feature")
	if err != nil || !found || len(data) != gitlab.MaxFileBytes+1 {
		t.Fatalf("big file: %d bytes, %v, %v; want MaxFileBytes+1", len(data), found, err)
	}
}

func TestLatestPipeline(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	pid := w.project.ID
	if _, found, err := w.c.LatestPipeline(ctx, pid, "main"); err != nil || found {
		t.Fatalf("no pipelines: found=%v err=%v", found, err)
	}
	w.s.AddPipeline(pid, gitlabtest.Pipeline{Ref: "main", Status: "success"})
	mr := w.s.AddPipeline(pid, gitlabtest.Pipeline{Ref: "refs/merge-requests/1/head", Status: "failed", SHA: "abc"})
	w.s.AddPipeline(pid, gitlabtest.Pipeline{Ref: "other", Status: "failed"})
	p, found, err := w.c.LatestPipeline(ctx, pid, "main", "refs/merge-requests/1/head")
	if err != nil || !found || p.ID != mr.ID || p.Status != "failed" {
		t.Fatalf("LatestPipeline = %+v, %v, %v; want pipeline %d", p, found, err, mr.ID)
	}
}

func TestUserByUsername(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	u, found, err := w.c.UserByUsername(ctx, "@Alice")
	if err != nil || !found || u.ID != w.alice.ID {
		t.Fatalf("UserByUsername(@Alice) = %+v, %v, %v", u, found, err)
	}
	if _, found, err := w.c.UserByUsername(ctx, "nobody"); err != nil || found {
		t.Fatalf("UserByUsername(nobody) = %v, %v", found, err)
	}
}
