package cli_test

import (
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// TestShutdownHandsBackRunningRuns: on SIGTERM a run that does not finish
// within AGENTBOT_DRAIN_TIMEOUT is cancelled and handed back to the queue;
// serve exits cleanly, and the next start finishes the run, once.
func TestShutdownHandsBackRunningRuns(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	// The first model call never answers; the retry gets the real script.
	model := bedrocktest.New(t, append([]bedrocktest.Turn{{Hold: true}}, bedrocktest.AnalyzeScript("AAPL")...)...)
	env := serveEnvWithModel(t, gl, sm, model)
	env["AGENTBOT_DRAIN_TIMEOUT"] = "1s"
	s := startServe(t, env)
	post(t, s.url, "note_issue", nil)
	eventually(t, "the model call", func() bool { return len(model.Requests()) == 1 })

	start := time.Now()
	s.shutdown(t) // fails the test unless serve returns nil
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("shutdown took %s with a 1s drain timeout", took)
	}
	for _, n := range botNotes(gl, sm, "issue", 7) {
		if strings.HasPrefix(n.Body, "❌") {
			t.Fatalf("the interrupted run was reported failed: %s", n.Body)
		}
	}

	s = startServe(t, env)
	notes := finished(t, gl, sm, "issue", 7, 1)
	s.shutdown(t)
	if len(notes) != 1 || !strings.HasPrefix(notes[0].Body, "✅") {
		t.Fatalf("notes after restart: %+v", notes)
	}
	if mrs := gl.MergeRequests(42); len(mrs) != 2 {
		t.Fatalf("%d merge requests, want 2", len(mrs))
	}
}
