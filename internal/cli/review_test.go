package cli_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// postEdited posts a sample delivery with its JSON changed by edit, under
// its own Idempotency-Key (a new delivery).
func postEdited(t *testing.T, url, name, key string, edit func(m map[string]any)) int {
	t.Helper()
	return post(t, url, name, func(h http.Header, body []byte) []byte {
		h.Set("Idempotency-Key", key)
		if edit == nil {
			return body
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
}

// attrs is a delivery's object_attributes.
func attrs(m map[string]any) map[string]any { return m["object_attributes"].(map[string]any) }

// withHead makes a review request delivery name the merge request's head.
func withHead(sha string) func(m map[string]any) {
	return func(m map[string]any) { attrs(m)["last_commit"].(map[string]any)["id"] = sha }
}

// withNote makes a note delivery say text.
func withNote(text string) func(m map[string]any) {
	return func(m map[string]any) { attrs(m)["note"] = text }
}

// userText is the first user message the model got.
func userText(r *bedrocktest.Request) string {
	for _, m := range r.Parsed.Messages {
		if m.Role != "user" {
			continue
		}
		var b strings.Builder
		for _, c := range m.Content {
			if c.Text != nil {
				b.WriteString(*c.Text)
			}
		}
		return b.String()
	}
	return ""
}

// systemText is the system prompt the model got.
func systemText(r *bedrocktest.Request) string {
	var b strings.Builder
	for _, s := range r.Parsed.System {
		if s.Text != nil {
			b.WriteString(*s.Text)
		}
	}
	return b.String()
}

// inlineAndOther splits the bot's notes on a merge request into inline
// comments (with a position) and the rest.
func inlineAndOther(gl *gitlabtest.Server, sm gitlabtest.Sample) (inline, other []gitlabtest.Note) {
	for _, n := range botNotes(gl, sm, "mr", 3) {
		if n.Position != nil {
			inline = append(inline, n)
		} else {
			other = append(other, n)
		}
	}
	return inline, other
}

func reviewAnswer(findings string) bedrocktest.Turn {
	return bedrocktest.Reply("The notes add MSFT's Q3 figures. The revenue figure is rounded inconsistently.\n\n" +
		"/approve\n\n```json\n" + findings + "\n```")
}

func TestReviewRequestPostsOneReviewPerHead(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	head := gl.Git().Commit("acme/research", "feature/q3", map[string]string{
		"notes/q3/msft.md": "# MSFT Q3\n\nRevenue: 245.1bn\nAzure growth: 40%\nOperating margin: 45%\n",
	}, "Add MSFT notes")
	model := bedrocktest.New(t,
		bedrocktest.Call("file_read", map[string]any{"path": "notes/q3/msft.md"}),
		reviewAnswer(`[{"path": "notes/q3/msft.md", "line": 3, "comment": "Revenue was 245.122bn: round it as the other figures."},
		 {"path": "notes/q3/msft.md", "line": 99, "comment": "Beyond the file."},
		 {"path": "README.md", "line": 1, "comment": "Not part of the change."}]`),
		// The second head's review.
		reviewAnswer(`[{"path": "notes/q3/aapl.md", "line": 1, "comment": "Title should name the quarter."}]`),
	)
	s := startServe(t, serveEnvWithModel(t, gl, sm, model))

	if got := postEdited(t, s.url, "mr_reviewer_added", "review-1", withHead(head)); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	notes := finished(t, gl, sm, "mr", 3, 1)
	inline, other := inlineAndOther(gl, sm)
	if len(inline) != 1 || len(other) != 1 {
		t.Fatalf("notes = %+v, want one inline comment and one summary", notes)
	}
	pos := inline[0].Position
	if pos.NewPath != "notes/q3/msft.md" || pos.NewLine != 3 || pos.HeadSHA != head || pos.BaseSHA == "" || pos.StartSHA == "" {
		t.Fatalf("inline position = %+v, want notes/q3/msft.md line 3 at %s", pos, head)
	}
	if !strings.Contains(inline[0].Body, "245.122bn") {
		t.Fatalf("inline comment:\n%s", inline[0].Body)
	}
	summary := other[0].Body
	for _, want := range []string{"Review of `" + head[:8] + "`", "1 comment on the diff", "rounded inconsistently",
		"**More findings**", "`notes/q3/msft.md` line 99", "`README.md` line 1", "\\/approve"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	if strings.Contains(summary, "```json") {
		t.Errorf("the findings block is left in the summary:\n%s", summary)
	}
	first := model.Requests()[0]
	if tools := first.ToolNames(); !slices.Contains(tools, "file_read") || slices.Contains(tools, "file_write") || slices.Contains(tools, "editor") {
		t.Errorf("a review's tools = %v, want read-only ones", tools)
	}
	if u := userText(first); !strings.Contains(u, "Revenue: 245.1bn") || !strings.Contains(u, "     3 + Revenue") {
		t.Errorf("the model was not shown the numbered diff:\n%s", u)
	}
	if sys := systemText(first); !strings.Contains(sys, "British English") {
		t.Errorf("AGENTS.md is not in the system prompt:\n%s", sys)
	}

	// The same head, asked for again as a reviewer: a duplicate; asked with
	// a command: a pointer to the review.
	if got := postEdited(t, s.url, "mr_reviewer_added", "review-2", withHead(head)); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	postEdited(t, s.url, "note_mr", "review-command", withNote("/agent review"))
	eventually(t, "the pointer to the earlier review", func() bool {
		for _, n := range botNotes(gl, sm, "mr", 3) {
			if strings.Contains(n.Body, "already reviewed") {
				return true
			}
		}
		return false
	})

	// New commits, asked again: a review of the new head.
	newHead := gl.Git().Commit("acme/research", "feature/q3", map[string]string{"notes/q3/aapl.md": "# AAPL\n"}, "Add AAPL notes")
	postEdited(t, s.url, "mr_reviewer_added", "review-3", withHead(newHead))
	finished(t, gl, sm, "mr", 3, 2)
	s.shutdown(t)

	inline, other = inlineAndOther(gl, sm)
	var summaries []string
	for _, n := range other {
		if strings.HasPrefix(n.Body, "✅") {
			summaries = append(summaries, n.Body)
		}
	}
	if len(summaries) != 2 || !strings.Contains(summaries[1], newHead[:8]) {
		t.Fatalf("summaries = %q, want one per head", summaries)
	}
	if len(inline) != 2 || inline[1].Position.NewPath != "notes/q3/aapl.md" || inline[1].Position.HeadSHA != newHead {
		t.Fatalf("inline comments = %+v", inline)
	}
	if n := len(model.Requests()); n != 3 {
		t.Fatalf("%d model calls, want 3 (two reviews)", n)
	}
	if got := gl.Git().Branches("acme/research"); len(got) != 2 {
		t.Fatalf("branches = %v: a review pushes nothing", got)
	}
	if awards := gl.Awards(sm.NoteIDs["note_mr"]); len(awards) == 0 || awards[0].Name != "eyes" {
		t.Fatalf("awards on the command = %+v", awards)
	}
}
