package cli_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// TestUserRateLimit: past AGENTBOT_USER_RUNS_PER_HOUR a command gets a
// polite reply and no run; a retried delivery does not count twice.
func TestUserRateLimit(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.New(t, bedrocktest.Reply("one"), bedrocktest.Reply("two"))
	env := serveEnvWithModel(t, gl, sm, model)
	env["AGENTBOT_USER_RUNS_PER_HOUR"] = "2"
	s := startServe(t, env)
	for i := range 3 {
		post(t, s.url, "note_issue", func(h http.Header, b []byte) []byte {
			h.Set("Idempotency-Key", fmt.Sprintf("rate-%d", i))
			return b
		})
		eventually(t, "the answer", func() bool {
			notes := botNotes(gl, sm, "issue", 7)
			return len(notes) == i+1 && !strings.HasPrefix(notes[i].Body, "⏳")
		})
	}
	s.shutdown(t)
	notes := botNotes(gl, sm, "issue", 7)
	if len(notes) != 3 || !strings.Contains(notes[2].Body, "AGENTBOT_USER_RUNS_PER_HOUR=2") {
		t.Fatalf("notes: %+v", notes)
	}
	if n := len(model.Requests()); n != 2 {
		t.Fatalf("%d model calls, want 2", n)
	}
}

// TestProjectCap: with AGENTBOT_PROJECT_RUNS=1, runs on two issues of one
// project do not overlap.
func TestProjectCap(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	var mu sync.Mutex
	active, most := 0, 0
	model := bedrocktest.NewFunc(t, func(*bedrocktest.Request) bedrocktest.Turn {
		mu.Lock()
		active++
		most = max(most, active)
		mu.Unlock()
		time.Sleep(300 * time.Millisecond) // long enough for the other run to try
		mu.Lock()
		active--
		mu.Unlock()
		return bedrocktest.Reply("done")
	})
	env := serveEnvWithModel(t, gl, sm, model)
	env["AGENTBOT_PROJECT_RUNS"] = "1"
	s := startServe(t, env)
	other := gl.AddIssue(42, gitlabtest.Issue{IID: 9, Title: "Another", AuthorID: sm.Alice.ID})
	n := gl.AddNote(42, "issue", other.IID, gitlabtest.Note{Body: "/agent hello", AuthorID: sm.Alice.ID})
	h, body := noteDelivery(t, n.ID, other.ID, other.IID, n.DiscussionID, "/agent hello", "cap-9")
	post(t, s.url, "note_issue", nil)
	postRaw(t, s.url, h, body)
	finished(t, gl, sm, "issue", 7, 1)
	finished(t, gl, sm, "issue", 9, 1)
	s.shutdown(t)
	mu.Lock()
	defer mu.Unlock()
	if most != 1 {
		t.Fatalf("%d runs of one project at once, want 1", most)
	}
}
