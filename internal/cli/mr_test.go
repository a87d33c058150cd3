package cli_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/metrics"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// finished waits until the run's progress note holds its final answer.
func finished(t *testing.T, gl *gitlabtest.Server, sm gitlabtest.Sample, kind string, iid int64, n int) []gitlabtest.Note {
	t.Helper()
	eventually(t, "the final answer", func() bool {
		done := 0
		for _, note := range botNotes(gl, sm, kind, iid) {
			if strings.HasPrefix(note.Body, "✅") || strings.HasPrefix(note.Body, "❌") {
				done++
			}
		}
		return done >= n
	})
	return botNotes(gl, sm, kind, iid)
}

func TestAnalyzeOnIssueOpensOneMergeRequest(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	second := []bedrocktest.Turn{
		bedrocktest.Call("file_write", map[string]any{"path": "output/AAPL.md", "content": "# AAPL\n\nUpdated after the data fix.\n"}),
		bedrocktest.Reply("Updated output/AAPL.md."),
	}
	model := bedrocktest.New(t, append(bedrocktest.AnalyzeScript("AAPL"), second...)...)
	env := serveEnvWithModel(t, gl, sm, model)
	s := startServe(t, env)

	if got := post(t, s.url, "note_issue", nil); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	notes := finished(t, gl, sm, "issue", 7, 1)
	mrs := gl.MergeRequests(42)
	if len(mrs) != 2 { // !3 and ours
		t.Fatalf("merge requests = %+v", mrs)
	}
	mr := mrs[len(mrs)-1]
	if !strings.HasPrefix(mr.SourceBranch, "agent/issue-7-") || mr.TargetBranch != "main" {
		t.Fatalf("MR %s → %s", mr.SourceBranch, mr.TargetBranch)
	}
	if strings.Contains(strings.ToLower(mr.Description), "closes") || !strings.Contains(mr.Description, "#7") ||
		!strings.Contains(mr.Description, "@alice") || !strings.Contains(mr.Description, "output/AAPL.md") {
		t.Fatalf("MR description:\n%s", mr.Description)
	}
	log := gl.Git().Log("acme/research", mr.SourceBranch)
	head := log[0]
	if len(head.Files) != 1 || head.Files[0] != "output/AAPL.md" {
		t.Fatalf("commit files = %v, want only output/AAPL.md", head.Files)
	}
	if head.AuthorName != "agentbot" || !strings.Contains(head.Message, "Co-authored-by: Alice Analyst <alice@acme.test>") {
		t.Fatalf("commit author %s <%s>, message:\n%s", head.AuthorName, head.AuthorEmail, head.Message)
	}
	if !strings.Contains(gl.Git().Files("acme/research", mr.SourceBranch)["output/AAPL.md"], "AAPL") {
		t.Fatal("report missing on the branch")
	}
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "!"+itoa(mr.IID)) || !strings.Contains(notes[0].Body, "output/AAPL.md") {
		t.Fatalf("notes = %+v", notes)
	}
	awards := gl.Awards(sm.NoteIDs["note_issue"])
	if len(awards) != 1 || awards[0].Name != "white_check_mark" {
		t.Fatalf("awards = %+v, want ✅ only", awards)
	}

	// A second command on #7: a second commit on the same branch, the same
	// MR updated, no new MR.
	if got := post(t, s.url, "note_issue", func(h http.Header, b []byte) []byte {
		h.Set("Idempotency-Key", "second-command")
		return b
	}); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	finished(t, gl, sm, "issue", 7, 2)
	s.shutdown(t)
	if mrs := gl.MergeRequests(42); len(mrs) != 2 {
		t.Fatalf("merge requests after the second command = %d, want 2", len(mrs))
	}
	if log := gl.Git().Log("acme/research", mr.SourceBranch); len(log) != len(gl.Git().Log("acme/research", "main"))+2 {
		t.Fatalf("branch has %d commits, want main's + 2", len(log))
	}
	assertNoToken(t, gl, sm, env)
	if strings.Contains(s.stderr.String(), sm.BotToken) {
		t.Fatal("token in the logs")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCommandOnMergeRequestOpensFollowUp(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.New(t, bedrocktest.AnalyzeScript("MSFT")...)
	s := startServe(t, serveEnvWithModel(t, gl, sm, model))
	post(t, s.url, "note_mr", nil)
	finished(t, gl, sm, "mr", 3, 1)
	s.shutdown(t)
	mrs := gl.MergeRequests(42)
	if len(mrs) != 2 {
		t.Fatalf("merge requests = %+v", mrs)
	}
	follow := mrs[1]
	if !strings.HasPrefix(follow.SourceBranch, "agent/mr-3-") || follow.TargetBranch != "feature/q3" {
		t.Fatalf("follow-up MR %s → %s, want agent/mr-3-… → feature/q3", follow.SourceBranch, follow.TargetBranch)
	}
	if got := len(gl.Git().Log("acme/research", "feature/q3")); got != len(gl.Git().Log("acme/research", "main")) {
		t.Fatal("the person's branch was pushed to")
	}
}

func TestAgentThatWritesNothingMakesNoBranch(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.New(t, bedrocktest.Reply("AAPL trades at 205. No report needed."))
	s := startServe(t, serveEnvWithModel(t, gl, sm, model))
	post(t, s.url, "note_issue", nil)
	notes := finished(t, gl, sm, "issue", 7, 1)
	s.shutdown(t)
	if len(gl.Git().Branches("acme/research")) != 2 || len(gl.MergeRequests(42)) != 1 {
		t.Fatalf("branches %v, MRs %d", gl.Git().Branches("acme/research"), len(gl.MergeRequests(42)))
	}
	if !strings.Contains(notes[0].Body, "no branch") || !strings.Contains(notes[0].Body, "AAPL trades at 205") {
		t.Log(s.stderr.String())
		t.Fatalf("reply:\n%s", notes[0].Body)
	}
}

// TestCrashAfterEachStep fails the run right after each step's GitLab write
// (the write is applied, the answer is an error, as when the process dies
// before recording it) and checks the retry finishes with one of each.
func TestCrashAfterEachStep(t *testing.T) {
	for _, tc := range []struct {
		name          string
		method, path  string
		afterApplying bool
	}{
		{"progress note", http.MethodPost, "/api/v4/projects/42/issues/7/discussions/*/notes", true},
		{"agent, before publishing", http.MethodGet, "/api/v4/users/7", false},
		{"push, before the MR", http.MethodGet, "/api/v4/projects/42/merge_requests", false},
		{"merge request", http.MethodPost, "/api/v4/projects/42/merge_requests", true},
		{"final answer", http.MethodPut, "/api/v4/projects/42/issues/7/notes/*", true},
		{"reaction", http.MethodPost, "/api/v4/projects/42/issues/7/notes/*/award_emoji", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gl := gitlabtest.New(t)
			sm := gl.AddSample()
			model := bedrocktest.New(t, bedrocktest.AnalyzeScript("AAPL")...)
			if tc.afterApplying {
				gl.FailAfterApply(tc.method, tc.path, http.StatusInternalServerError, 1)
			} else {
				gl.FailNext(tc.method, tc.path, http.StatusInternalServerError, 1)
			}
			env := serveEnvWithModel(t, gl, sm, model)
			env["AGENTBOT_LOG_LEVEL"] = "warn"
			s := startServe(t, env)
			post(t, s.url, "note_issue", nil)
			notes := finished(t, gl, sm, "issue", 7, 1)
			s.shutdown(t)
			if len(notes) != 1 {
				t.Fatalf("%d notes, want 1", len(notes))
			}
			if mrs := gl.MergeRequests(42); len(mrs) != 2 {
				t.Fatalf("%d merge requests, want 2 (!3 and ours)", len(mrs))
			}
			branches := 0
			for name := range gl.Git().Branches("acme/research") {
				if strings.HasPrefix(name, "agent/") {
					branches++
					if n := len(gl.Git().Log("acme/research", name)) - len(gl.Git().Log("acme/research", "main")); n != 1 {
						t.Fatalf("%s has %d new commits, want 1", name, n)
					}
				}
			}
			if branches != 1 {
				t.Fatalf("%d agent branches, want 1", branches)
			}
		})
	}
}

// assertNoToken checks the bot's token is nowhere it must not be: notes, MR
// text, the logs, or a workspace left on disk.
func assertNoToken(t *testing.T, gl *gitlabtest.Server, sm gitlabtest.Sample, env map[string]string) {
	t.Helper()
	for _, n := range gl.Notes(42, "issue", 7) {
		if strings.Contains(n.Body, sm.BotToken) {
			t.Fatalf("token in note %d", n.ID)
		}
	}
	for _, mr := range gl.MergeRequests(42) {
		if strings.Contains(mr.Description, sm.BotToken) {
			t.Fatal("token in an MR description")
		}
	}
	filepath.Walk(env["AGENTBOT_WORKDIR"], func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if data, _ := os.ReadFile(path); strings.Contains(string(data), sm.BotToken) {
				t.Errorf("token in %s", path)
			}
		}
		return nil
	})
}

// TestServeMetrics: after one analyze run, /metrics exposes every family.
func TestServeMetrics(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.New(t, bedrocktest.AnalyzeScript("AAPL")...)
	s := startServe(t, serveEnvWithModel(t, gl, sm, model))
	post(t, s.url, "note_issue", nil)
	finished(t, gl, sm, "issue", 7, 1)
	var body []byte
	// The run is counted when its worker returns, just after the answer.
	eventually(t, "the run counted", func() bool {
		resp, err := http.Get(s.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(body), `agentbot_runs_total{kind="analyze",outcome="ok"} 1`)
	})
	for _, family := range metrics.Families() {
		if !strings.Contains(string(body), "# TYPE "+family+" ") {
			t.Errorf("/metrics lacks %s", family)
		}
	}
	for _, sample := range []string{
		`agentbot_webhook_deliveries_total{event="Note Hook",outcome="queued"} 1`,
		`agentbot_runs_total{kind="analyze",outcome="ok"} 1`,
		`agentbot_tool_calls_total{outcome="ok",tool="file_write"} 1`,
	} {
		if !strings.Contains(string(body), sample) {
			t.Errorf("/metrics lacks %s", sample)
		}
	}
}
