package cli_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// setConfig writes the project's .agentbot.yml on its default branch, as a
// merged change would.
func setConfig(gl *gitlabtest.Server, yml string) {
	gl.Git().Commit("acme/research", "main", map[string]string{".agentbot.yml": yml}, "agentbot settings")
}

// forPipeline makes a pipeline delivery describe pl.
func forPipeline(pl gitlabtest.Pipeline, status string) func(m map[string]any) {
	return func(m map[string]any) {
		a := attrs(m)
		a["id"], a["iid"], a["sha"], a["status"] = pl.ID, pl.IID, pl.SHA, status
	}
}

const checkFiguresLog = "\x1b[0KRunning with gitlab-runner 18.5.0\n" +
	"section_start:1772442112:step_script\r\x1b[0K\x1b[32;1m$ python scripts/check_figures.py notes/q3/\x1b[0;m\n" +
	"Checking notes/q3/msft.md\n" +
	"ERROR notes/q3/msft.md:3: revenue 245.1 does not match the source (245.122)\n" +
	"section_end:1772442164:step_script\r\x1b[0K\x1b[31;1mERROR: Job failed: exit code 1\n\x1b[0;m\n"

func TestFailedPipelineIsDiagnosedOnceOnItsMergeRequest(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	setConfig(gl, `version: 1
pipelines:
  - name: diagnose failed MR pipelines
    when:
      status: [failed]
      source: [merge_request_event]
    run:
      command: diagnose
`)
	pl := gl.AddPipeline(42, gitlabtest.Pipeline{Ref: "feature/q3", Source: "merge_request_event", Status: "failed", UserID: 7})
	gl.AddJob(pl.ID, gitlabtest.Job{Name: "render", Stage: "build", Status: "success", Trace: "rendered\n"})
	gl.AddJob(pl.ID, gitlabtest.Job{Name: "check-figures", Stage: "test", Status: "failed", FailureReason: "script_failure", Trace: checkFiguresLog})
	model := bedrocktest.New(t, bedrocktest.Reply("The `check-figures` job failed: notes/q3/msft.md states revenue 245.1, "+
		"which does not match the source (245.122). Correct the figure on line 3."))
	s := startServe(t, serveEnvWithModel(t, gl, sm, model))

	// A running pipeline matches no rule; the failed one does, once.
	postEdited(t, s.url, "pipeline_failed", "running", forPipeline(pl, "running"))
	for _, key := range []string{"failed-1", "failed-2"} {
		if got := postEdited(t, s.url, "pipeline_failed", key, forPipeline(pl, "failed")); got != http.StatusAccepted {
			t.Fatalf("status %d", got)
		}
	}
	var note gitlabtest.Note
	eventually(t, "the diagnosis", func() bool {
		for _, n := range botNotes(gl, sm, "mr", 3) {
			if strings.HasPrefix(n.Body, "🔍") {
				note = n
				return true
			}
		}
		return false
	})
	// Sent again later: still the same pipeline and status.
	if got := postEdited(t, s.url, "pipeline_failed", "failed-3", forPipeline(pl, "failed")); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	s.shutdown(t)

	notes := botNotes(gl, sm, "mr", 3)
	if len(notes) != 1 {
		t.Fatalf("%d notes on !3, want one diagnosis:\n%+v", len(notes), notes)
	}
	for _, want := range []string{
		"Why pipeline [#", "diagnose failed MR pipelines", "does not match the source (245.122). Correct",
		"`check-figures`", "`script_failure`",
		"ERROR notes/q3/msft.md:3: revenue 245.1 does not match the source (245.122)",
		"ERROR: Job failed: exit code 1",
	} {
		if !strings.Contains(note.Body, want) {
			t.Errorf("the diagnosis lacks %q:\n%s", want, note.Body)
		}
	}
	if strings.Contains(note.Body, "\x1b") || strings.Contains(note.Body, "section_start") || strings.Contains(note.Body, "`render`") {
		t.Errorf("the diagnosis quotes terminal codes or a passing job:\n%s", note.Body)
	}
	reqs := model.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model calls, want 1", len(reqs))
	}
	if u := userText(reqs[0]); !strings.Contains(u, "revenue 245.1 does not match") || !strings.Contains(u, "untrusted_gitlab_content") {
		t.Errorf("the model was not given the log as data:\n%s", u)
	}
	if len(gl.MergeRequests(42)) != 1 || len(gl.Git().Branches("acme/research")) != 2 {
		t.Fatal("a diagnosis opened a merge request or pushed a branch")
	}
}

func TestScheduledPipelineRuleOpensMergeRequestWithTheReport(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	setConfig(gl, `version: 1
merge_request:
  labels: [daily]
pipelines:
  - name: daily report
    when:
      status: success
      ref: main
      source: schedule
    run:
      prompt: Write today's market report for our watchlist to output/daily.md.
    report: mr
`)
	pl := gl.AddPipeline(42, gitlabtest.Pipeline{Ref: "main", Source: "schedule", Status: "success", UserID: 7})
	model := bedrocktest.New(t,
		bedrocktest.Call("file_write", map[string]any{"path": "output/daily.md", "content": "# Daily report\n\nMarkets were calm.\n"}),
		bedrocktest.Reply("Wrote output/daily.md."))
	s := startServe(t, serveEnvWithModel(t, gl, sm, model))

	if got := postEdited(t, s.url, "pipeline_schedule_success", "schedule-1", forPipeline(pl, "success")); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	eventually(t, "the report's merge request", func() bool { return len(gl.MergeRequests(42)) == 2 })
	s.shutdown(t)

	mr := gl.MergeRequests(42)[1]
	if want := "agent/run-" + itoa(pl.IID) + "-daily-report"; mr.SourceBranch != want || mr.TargetBranch != "main" {
		t.Fatalf("MR %s → %s, want %s → main", mr.SourceBranch, mr.TargetBranch, want)
	}
	if !strings.Contains(mr.Description, "daily report") || !strings.Contains(mr.Description, "output/daily.md") || !slices.Contains(mr.Labels, "daily") {
		t.Fatalf("MR labels %v, description:\n%s", mr.Labels, mr.Description)
	}
	if got := gl.Git().Files("acme/research", mr.SourceBranch)["output/daily.md"]; !strings.Contains(got, "Markets were calm") {
		t.Fatalf("output/daily.md on the branch = %q", got)
	}
	if u := userText(model.Requests()[0]); !strings.HasPrefix(u, "Write today's market report") {
		t.Fatalf("the model was asked:\n%s", u)
	}
	if n := len(botNotes(gl, sm, "mr", 3)) + len(botNotes(gl, sm, "issue", 7)); n != 0 {
		t.Fatalf("%d notes: a scheduled report has no thread", n)
	}
}

func TestBotsOwnPipelinesStartNothing(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	// Rules that would match everything the bot's pipelines do.
	setConfig(gl, `version: 1
pipelines:
  - name: everything
    when:
      status: [success, failed]
    run:
      prompt: Write a report to output/loop.md.
`)
	model := bedrocktest.New(t) // any call fails the test
	env := serveEnvWithModel(t, gl, sm, model)
	s := startServe(t, env)
	for i, edit := range []func(m map[string]any){
		nil, // as GitLab sends it: user 99, source api, ref agent/…
		func(m map[string]any) { attrs(m)["status"], attrs(m)["source"] = "failed", "push" },
		func(m map[string]any) { // another user, but the bot's branch
			m["user"] = map[string]any{"id": 7, "username": "alice"}
		},
		func(m map[string]any) { // another branch, but the executor's variables
			m["user"] = map[string]any{"id": 7, "username": "alice"}
			attrs(m)["ref"] = "main"
			attrs(m)["variables"] = []any{map[string]any{"key": "AGENTBOT_RUN_ID", "value": "12"}}
		},
	} {
		if got := postEdited(t, s.url, "pipeline_agentbot", "bot-"+itoa(int64(i)), edit); got != http.StatusOK {
			t.Errorf("delivery %d: status %d, want 200 (ignored)", i, got)
		}
	}
	s.shutdown(t)
	if n := jobCount(t, env["AGENTBOT_DB"]); n != 0 {
		t.Fatalf("%d jobs, want none", n)
	}
	if len(model.Requests()) != 0 || len(gl.MergeRequests(42)) != 1 {
		t.Fatal("the bot's own pipeline started a run")
	}
}
