package cli_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// waitNote waits for a bot note on issue #7 that contains text.
func waitNote(t *testing.T, gl *gitlabtest.Server, sm gitlabtest.Sample, text string) gitlabtest.Note {
	t.Helper()
	var found gitlabtest.Note
	eventually(t, "a note with "+text, func() bool {
		for _, n := range botNotes(gl, sm, "issue", 7) {
			if strings.Contains(n.Body, text) {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

const compareConfig = `version: 1
commands:
  compare:
    description: Compare two companies side by side
    args: [a, b]
    prompt: |
      Compare {a} and {b}: revenue growth, margins and valuation.
      Write the comparison to output/compare/{a}-vs-{b}.md.
`

func TestCustomCommandRunsAndHelpListsIt(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	setConfig(gl, compareConfig)
	model := bedrocktest.New(t,
		bedrocktest.Call("file_write", map[string]any{"path": "output/compare/AAPL-vs-MSFT.md", "content": "# AAPL vs MSFT\n"}),
		bedrocktest.Reply("Wrote output/compare/AAPL-vs-MSFT.md."))
	s := startServe(t, serveEnvWithModel(t, gl, sm, model))

	postEdited(t, s.url, "note_issue_help", "help", nil)
	help := waitNote(t, gl, sm, "agentbot commands")
	for _, want := range []string{"analyze <TICKER>", "This project's commands", "/agent compare <a> <b>", "Compare two companies side by side"} {
		if !strings.Contains(help.Body, want) {
			t.Errorf("help lacks %q:\n%s", want, help.Body)
		}
	}

	postEdited(t, s.url, "note_issue", "wrong-args", withNote("/agent compare AAPL"))
	usage := waitNote(t, gl, sm, "takes 2 arguments")
	if !strings.Contains(usage.Body, "`compare` takes 2 arguments and got 1") || !strings.Contains(usage.Body, "/agent compare <a> <b>") {
		t.Errorf("usage reply:\n%s", usage.Body)
	}

	postEdited(t, s.url, "note_issue", "compare", withNote("/agent compare AAPL MSFT"))
	finished(t, gl, sm, "issue", 7, 1)
	s.shutdown(t)
	if u := userText(model.Requests()[0]); !strings.HasPrefix(u, "Compare AAPL and MSFT: revenue growth") {
		t.Fatalf("the model was asked:\n%s", u)
	}
	mrs := gl.MergeRequests(42)
	if len(mrs) != 2 || mrs[1].SourceBranch != "agent/issue-7-compare-aapl-msft" {
		t.Fatalf("merge requests = %+v", mrs)
	}
	if got := gl.Git().Files("acme/research", mrs[1].SourceBranch)["output/compare/AAPL-vs-MSFT.md"]; got != "# AAPL vs MSFT\n" {
		t.Fatalf("the comparison on the branch = %q", got)
	}
}

func TestConfigIsReadFromTheDefaultBranchOnly(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	// A feature branch asks for its own command and a stricter role: it
	// has no effect until merged.
	gl.Git().Commit("acme/research", "feature/q3", map[string]string{
		".agentbot.yml": compareConfig + "access:\n  min_level: owner\n",
	}, "settings on a branch")
	s := startServe(t, serveEnv(t, gl, sm))

	postEdited(t, s.url, "note_issue_help", "help-1", nil)
	help := waitNote(t, gl, sm, "agentbot commands")
	if strings.Contains(help.Body, "compare") {
		t.Fatalf("a feature branch's command is listed:\n%s", help.Body)
	}

	// Merged with a stricter role: alice (Developer) is refused.
	setConfig(gl, "version: 1\naccess:\n  min_level: maintainer\n")
	postEdited(t, s.url, "note_issue_help", "help-2", nil)
	refusal := waitNote(t, gl, sm, "Sorry @alice")
	s.shutdown(t)
	if !strings.Contains(refusal.Body, "maintainer") || !strings.Contains(refusal.Body, "developer") {
		t.Fatalf("refusal:\n%s", refusal.Body)
	}
}

func TestInvalidConfigGetsANoteNamingTheLine(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.New(t) // nothing may run
	s := startServe(t, serveEnvWithModel(t, gl, sm, model))
	for i, tc := range []struct {
		yml  string
		want string
	}{
		{"version: 1\ncommands:\n  compare:\n    promt: Compare {a}\n",
			"- line 4: `commands.compare.promt`: unknown key; did you mean `prompt`?"},
		{"version: 1\naccess:\n  min_level: admin\n",
			"- line 3: `access.min_level`: want one of guest, planner, reporter, developer, maintainer, owner; got `admin`"},
		{"version: 1\nmodel:\n  limits:\n    max_turns: 5000\n",
			"- line 4: `model.limits.max_turns`: want a whole number from 1 to 1000, got `5000`"},
		{"version: 2\n",
			"- line 1: `version`: unsupported version 2"},
	} {
		setConfig(gl, tc.yml)
		postEdited(t, s.url, "note_issue", "invalid-"+itoa(int64(i)), nil)
		note := waitNote(t, gl, sm, tc.want)
		if !strings.Contains(note.Body, "I could not use this project's `.agentbot.yml` (read from the default branch)") ||
			!strings.Contains(note.Body, "Nothing was run") {
			t.Errorf("note:\n%s", note.Body)
		}
	}
	s.shutdown(t)
	if len(model.Requests()) != 0 || len(gl.MergeRequests(42)) != 1 {
		t.Fatal("a run went ahead with an invalid .agentbot.yml")
	}
}

func TestProjectCannotWidenTheOperatorsBounds(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	setConfig(gl, `version: 1
output:
  allow: ["**", "docs/**"]
model:
  limits:
    max_turns: 500
access:
  min_level: guest
`)
	model := bedrocktest.New(t,
		bedrocktest.Call("file_write", map[string]any{"path": "docs/index.md", "content": "# Docs\n"}),
		bedrocktest.Call("file_write", map[string]any{"path": "output/AAPL.md", "content": "# AAPL\n"}),
		bedrocktest.Reply("Wrote output/AAPL.md."))
	env := serveEnvWithModel(t, gl, sm, model)
	env["AGENTBOT_MAX_TURNS"] = "10"
	s := startServe(t, env)

	// The guest is still refused.
	if got := postEdited(t, s.url, "note_guest", "guest", nil); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	waitNote(t, gl, sm, "Sorry @gary")

	postEdited(t, s.url, "note_issue", "alice", nil)
	finished(t, gl, sm, "issue", 7, 1)
	s.shutdown(t)
	bounded := waitNote(t, gl, sm, "asks for more than this agentbot's operator allows")
	for _, want := range []string{
		"- line 3: `output.allow[0]`: `**` is not within this agentbot's write allowlist (output/**)",
		"- line 3: `output.allow[1]`: `docs/**` is not within",
		"- line 6: `model.limits.max_turns`: 500 is above this agentbot's limit of 10 turns; 10 applies",
		"- line 8: `access.min_level`: guest is below this agentbot's minimum, developer",
	} {
		if !strings.Contains(bounded.Body, want) {
			t.Errorf("the note on the bounds lacks %q:\n%s", want, bounded.Body)
		}
	}
	reqs := model.Requests()
	if res := reqs[1].ToolResults(); !strings.Contains(strings.Join(values(res), "\n"), "outside the write allowlist") {
		t.Errorf("docs/index.md was not refused: %v", res)
	}
	mrs := gl.MergeRequests(42)
	if len(mrs) != 2 {
		t.Fatalf("merge requests = %+v", mrs)
	}
	files := gl.Git().Files("acme/research", mrs[1].SourceBranch)
	if _, ok := files["docs/index.md"]; ok || files["output/AAPL.md"] != "# AAPL\n" {
		t.Fatalf("branch files: docs/index.md present=%v, output/AAPL.md=%q", ok, files["output/AAPL.md"])
	}
}

func TestProjectNarrowsTheAllowlistAndShapesTheMergeRequest(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	setConfig(gl, `version: 1
output:
  dir: output/research/
  allow: ["output/research/**"]
merge_request:
  draft: true
  labels: [research]
  reviewers: ["@alice", nobody]
instructions:
  max_bytes: 45
`)
	gl.Git().Commit("acme/research", "main", map[string]string{
		"AGENTS.md": "", // removed: CLAUDE.md is the fallback
		"CLAUDE.md": "Use British English.\nCite every source.\nNever use tables.\n",
	}, "instructions")
	model := bedrocktest.New(t,
		bedrocktest.Call("file_write", map[string]any{"path": "output/AAPL.md", "content": "# AAPL\n"}),
		bedrocktest.Call("file_write", map[string]any{"path": "output/research/AAPL.md", "content": "# AAPL\n"}),
		bedrocktest.Reply("Wrote output/research/AAPL.md."))
	s := startServe(t, serveEnvWithModel(t, gl, sm, model))
	postEdited(t, s.url, "note_issue", "narrow", nil)
	finished(t, gl, sm, "issue", 7, 1)
	s.shutdown(t)

	sys := systemText(model.Requests()[0])
	for _, want := range []string{"write your files under output/research/", `source="CLAUDE.md"`, "Use British English.\nCite every source.", "CLAUDE.md is cut here"} {
		if !strings.Contains(sys, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, sys)
		}
	}
	if strings.Contains(sys, "Never use tables") {
		t.Error("the instructions are not cut to instructions.max_bytes")
	}
	mrs := gl.MergeRequests(42)
	if len(mrs) != 2 || !mrs[1].Draft || !slices.Contains(mrs[1].Labels, "research") || !slices.Equal(mrs[1].ReviewerIDs, []int64{sm.Alice.ID}) {
		t.Fatalf("merge requests = %+v", mrs)
	}
	files := gl.Git().Files("acme/research", mrs[1].SourceBranch)
	if _, ok := files["output/AAPL.md"]; ok || files["output/research/AAPL.md"] != "# AAPL\n" {
		t.Fatalf("output/AAPL.md written outside the project's allowlist")
	}
}

func values(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
