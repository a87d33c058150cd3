package cli_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// pipelineServe starts serve with the pipeline executor and returns the
// channel on which the fake GitLab reports the pipelines it creates.
func pipelineServe(t *testing.T) (*gitlabtest.Server, gitlabtest.Sample, *server, chan int64) {
	t.Helper()
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	created := make(chan int64, 8)
	gl.SetHook(func(ev gitlabtest.Event) {
		if ev.Kind == "pipeline.create" {
			created <- ev.ID
		}
	})
	env := serveEnv(t, gl, sm)
	env["AGENTBOT_EXECUTOR"] = "pipeline"
	s := startServe(t, env)
	return gl, sm, s, created
}

// createdPipeline waits for the pipeline serve creates.
func createdPipeline(t *testing.T, gl *gitlabtest.Server, created chan int64) gitlabtest.Pipeline {
	t.Helper()
	select {
	case id := <-created:
		for _, pl := range gl.Pipelines(42) {
			if pl.ID == id {
				return pl
			}
		}
		t.Fatalf("pipeline %d not found", id)
	case <-time.After(20 * time.Second):
		t.Fatal("no pipeline created within 20s")
	}
	return gitlabtest.Pipeline{}
}

func notesContaining(gl *gitlabtest.Server, sm gitlabtest.Sample, kind string, iid int64, s string) []gitlabtest.Note {
	var out []gitlabtest.Note
	for _, n := range botNotes(gl, sm, kind, iid) {
		if strings.Contains(n.Body, s) {
			out = append(out, n)
		}
	}
	return out
}

func TestPipelineExecutorEndToEnd(t *testing.T) {
	gl, sm, s, created := pipelineServe(t)
	if got := post(t, s.url, "note_issue", nil); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	pl := createdPipeline(t, gl, created)
	v := pl.Variables
	if pl.Ref != "main" || pl.Source != "api" || v["AGENTBOT_COMMAND"] != "analyze AAPL" || !strings.HasPrefix(v["AGENTBOT_REPLY_TO"], "issue:7") ||
		v["AGENTBOT_RUN_ID"] == "" || v["AGENTBOT_REQUESTED_BY"] != "7" {
		t.Fatalf("pipeline %+v", pl)
	}
	link := "/-/pipelines/" + itoa(pl.ID)
	eventually(t, "the pipeline's link in the progress note", func() bool {
		return len(notesContaining(gl, sm, "issue", 7, link)) == 1
	})

	// Play the runner: the component's job runs agentbot with the
	// pipeline's variables.
	gl.SetPipelineStatus(pl.ID, "running")
	job := gl.AddJob(pl.ID, gitlabtest.Job{Name: "agentbot", Stage: "agent", Status: "running"})
	model := bedrocktest.New(t, bedrocktest.AnalyzeScript("AAPL")...)
	env := ciEnv(t, gl, sm, model)
	for k, val := range v {
		env[k] = val
	}
	env["CI_JOB_ID"] = strconv.FormatInt(job.ID, 10)
	env["GITLAB_USER_ID"] = "99"
	if _, stderr, err := runCLI(t, env, "run", "--dir", ciCheckout(t), "--from-env", "--publish"); err != nil {
		t.Fatalf("the CI job: %v\n%s", err, stderr)
	}
	gl.SetJob(job.ID, "success", "", "agentbot: done")
	gl.SetPipelineStatus(pl.ID, "success")

	eventually(t, "the pipeline's final state", func() bool {
		return len(notesContaining(gl, sm, "issue", 7, "passed")) == 1
	})
	mrs := gl.MergeRequests(42)
	if len(mrs) != 2 || !strings.HasPrefix(mrs[1].SourceBranch, "agent/issue-7-") {
		t.Fatalf("merge requests: %+v", mrs)
	}
	head := gl.Git().Log("acme/research", mrs[1].SourceBranch)[0]
	if !strings.Contains(head.Message, "Agentbot-Run: "+v["AGENTBOT_RUN_ID"]) || !strings.Contains(head.Message, "Co-authored-by: Alice Analyst") {
		t.Fatalf("commit:\n%s", head.Message)
	}
	notes := botNotes(gl, sm, "issue", 7)
	if len(notes) != 2 {
		t.Fatalf("notes: %+v", notes)
	}
	progress, result := notes[0], notes[1]
	if !strings.HasPrefix(progress.Body, "✅ Pipeline [#") || !strings.Contains(progress.Body, link) || strings.Contains(progress.Body, "No agentbot job") {
		t.Errorf("progress note:\n%s", progress.Body)
	}
	if !strings.HasPrefix(result.Body, "✅ Opened merge request !"+itoa(mrs[1].IID)) {
		t.Errorf("the CI job's answer:\n%s", result.Body)
	}
	eventually(t, "✅ on the command", func() bool {
		a := gl.Awards(sm.NoteIDs["note_issue"])
		return len(a) == 1 && a[0].Name == "white_check_mark"
	})
	if n := len(gl.Pipelines(42)); n != 1 {
		t.Errorf("%d pipelines", n)
	}
}

func TestPipelineExecutorReportsAFailedPipeline(t *testing.T) {
	gl, sm, s, created := pipelineServe(t)
	if got := post(t, s.url, "note_issue", nil); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	pl := createdPipeline(t, gl, created)
	job := gl.AddJob(pl.ID, gitlabtest.Job{Name: "agentbot", Stage: "agent"})
	gl.SetJob(job.ID, "failed", "script_failure", "agentbot: no usable AWS credentials")
	gl.SetPipelineStatus(pl.ID, "failed")

	jobLink := "/-/jobs/" + itoa(job.ID)
	eventually(t, "the failure reply", func() bool {
		return len(notesContaining(gl, sm, "issue", 7, jobLink)) == 2 // the reply, and the progress note
	})
	replies := notesContaining(gl, sm, "issue", 7, "failed.")
	if len(replies) != 2 {
		t.Fatalf("notes: %+v", botNotes(gl, sm, "issue", 7))
	}
	for _, n := range replies {
		if !strings.Contains(n.Body, "Job [agentbot]") || !strings.Contains(n.Body, "script failure") {
			t.Errorf("note:\n%s", n.Body)
		}
	}
	eventually(t, "❌ on the command", func() bool {
		a := gl.Awards(sm.NoteIDs["note_issue"])
		return len(a) == 1 && a[0].Name == "x"
	})
	if n := len(gl.MergeRequests(42)); n != 1 {
		t.Errorf("%d merge requests", n)
	}
}

// TestPipelineHookWakesTheRun: the Pipeline Hook of a pipeline agentbot
// started makes the run following it look at once, between its polls.
func TestPipelineHookWakesTheRun(t *testing.T) {
	gl, sm, s, created := pipelineServe(t)
	post(t, s.url, "note_issue", nil)
	pl := createdPipeline(t, gl, created)
	polls := func() int { return gl.Count(http.MethodGet, "/api/v4/projects/42/pipelines/"+itoa(pl.ID)) }
	// After the second poll the next one is four seconds away.
	eventually(t, "two polls", func() bool { return polls() >= 2 })
	if got := post(t, s.url, "pipeline_agentbot", func(h http.Header, body []byte) []byte {
		var b map[string]any
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatal(err)
		}
		attrs := b["object_attributes"].(map[string]any)
		attrs["id"], attrs["iid"], attrs["status"] = pl.ID, pl.IID, "failed"
		h.Set("Idempotency-Key", "hook-"+itoa(pl.ID))
		out, _ := json.Marshal(b)
		return out
	}); got != http.StatusOK {
		t.Fatalf("hook status %d", got)
	}
	gl.SetPipelineStatus(pl.ID, "failed")
	eventually(t, "the failure reply", func() bool {
		return len(notesContaining(gl, sm, "issue", 7, "failed.")) == 2
	})
	if !strings.Contains(s.stderr.String(), `"msg":"pipeline hook","job":`) {
		t.Fatal("the run did not hear of the hook")
	}
}
