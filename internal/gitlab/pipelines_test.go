package gitlab_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
)

func TestCreatePipelineOncePerKey(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	pid := w.project.ID
	vars := map[string]string{"AGENTBOT_COMMAND": "analyze AAPL", "AGENTBOT_REPLY_TO": "issue:7"}
	w.s.FailAfterApply("POST", "/projects/*/pipeline", http.StatusBadGateway, 1)
	p, err := w.c.CreatePipeline(ctx, pid, "main", "run-1", vars)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := w.c.CreatePipeline(ctx, pid, "main", "run-1", vars); err != nil || again.ID != p.ID {
		t.Fatalf("second CreatePipeline = %+v, %v", again, err)
	}
	pls := w.s.Pipelines(pid)
	if len(pls) != 1 || pls[0].ID != p.ID || pls[0].Variables["AGENTBOT_COMMAND"] != "analyze AAPL" || pls[0].Variables[gitlab.KeyVariable] != "run-1" {
		t.Fatalf("pipelines = %+v", pls)
	}
	if p2, err := w.c.CreatePipeline(ctx, pid, "main", "run-2", vars); err != nil || p2.ID == p.ID {
		t.Fatalf("another key = %+v, %v", p2, err)
	}
}

func TestPipelineJobsAndTrace(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	pid := w.project.ID
	pl := w.s.AddPipeline(pid, gitlabtest.Pipeline{Ref: "main"})
	ok := w.s.AddJob(pl.ID, gitlabtest.Job{Name: "lint", Stage: "test", Status: "success"})
	bad := w.s.AddJob(pl.ID, gitlabtest.Job{Name: "test", Stage: "test"})
	log := strings.Repeat("noise\n", 1000) + "FAIL: TestX\n"
	w.s.SetJob(bad.ID, "failed", "script_failure", log)
	w.s.SetPipelineStatus(pl.ID, "failed")

	got, err := w.c.Pipeline(ctx, pid, pl.ID)
	if err != nil || got.Status != "failed" || got.WebURL == "" {
		t.Fatalf("Pipeline = %+v, %v", got, err)
	}
	jobs, err := w.c.PipelineJobs(ctx, pid, pl.ID, "failed")
	if err != nil || len(jobs) != 1 || jobs[0].ID != bad.ID || jobs[0].FailureReason != "script_failure" {
		t.Fatalf("failed jobs = %+v, %v", jobs, err)
	}
	if all, err := w.c.PipelineJobs(ctx, pid, pl.ID); err != nil || len(all) != 2 || all[0].ID != ok.ID {
		t.Fatalf("all jobs = %+v, %v", all, err)
	}
	tail, err := w.c.JobTrace(ctx, pid, bad.ID, 30)
	if err != nil || len(tail) != 30 || !strings.HasSuffix(tail, "FAIL: TestX\n") {
		t.Fatalf("JobTrace tail = %q, %v", tail, err)
	}
	full, err := w.c.JobTrace(ctx, pid, bad.ID, 0)
	if err != nil || full != log {
		t.Fatalf("JobTrace full: %d bytes, %v", len(full), err)
	}
}
