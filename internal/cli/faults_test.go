package cli_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// TestFaultsFiftyCommands: with 20% of GitLab's API answers a 500 or a 429
// (half of the failed writes applied before the 500, as when a proxy times
// out behind GitLab) and every fifth model request throttled, 50 commands
// (five tickers on each of 10 issues, so 50 branches) all finish with one ✅
// answer each: one note per command, one commit and one merge request per
// branch, one reaction per command, no ❌.
func TestFaultsFiftyCommands(t *testing.T) {
	const issues = 10
	tickers := []string{"AAPL", "MSFT", "NVDA", "AMZN", "GOOG"}
	gl := gitlabtest.New(t)
	sm := gl.AddSample()

	var requests, throttled atomic.Int64
	model := bedrocktest.NewFunc(t, func(r *bedrocktest.Request) bedrocktest.Turn {
		if requests.Add(1)%5 == 0 {
			throttled.Add(1)
			return bedrocktest.Throttle() // the SDK waits and asks again
		}
		return analyzeTurn(t, r)
	})
	env := serveEnvWithModel(t, gl, sm, model)
	env["AGENTBOT_LOG_LEVEL"] = "warn"
	s := startServe(t, env)

	// Faults from here on (serve's start asks for the bot's user once).
	gl.SetRetryAfter(0) // 429s say "now": the test stays fast
	gl.SetFaultRate(0.2, 8, http.StatusInternalServerError, http.StatusTooManyRequests)
	before := len(gl.Calls())

	type command struct {
		iid, issueID, noteID int64
		discussionID, ticker string
	}
	var commands []command
	var iids []int64
	for i := range issues {
		is := gl.AddIssue(42, gitlabtest.Issue{IID: int64(200 + i), Title: fmt.Sprintf("Fault issue %d", 200+i), AuthorID: sm.Alice.ID})
		iids = append(iids, is.IID)
		for _, ticker := range tickers {
			n := gl.AddNote(42, "issue", is.IID, gitlabtest.Note{Body: "/agent analyze " + ticker, AuthorID: sm.Alice.ID})
			commands = append(commands, command{iid: is.IID, issueID: is.ID, noteID: n.ID, discussionID: n.DiscussionID, ticker: ticker})
		}
	}
	// Delivered in turn over the issues, as they might come.
	for j := range tickers {
		for i := range issues {
			c := commands[i*len(tickers)+j]
			h, body := noteDelivery(t, c.noteID, c.issueID, c.iid, c.discussionID, "/agent analyze "+c.ticker, fmt.Sprintf("fault-%d-%s", c.iid, c.ticker))
			if got := postRaw(t, s.url, h, body); got != http.StatusAccepted {
				t.Fatalf("delivery %d %s: status %d", c.iid, c.ticker, got)
			}
		}
	}

	start := time.Now()
	eventuallyWithin(t, 3*time.Minute, "50 answers", func() bool {
		done := 0
		for _, iid := range iids {
			for _, n := range botNotes(gl, sm, "issue", iid) {
				if strings.HasPrefix(n.Body, "✅") || strings.HasPrefix(n.Body, "❌") {
					done++
				}
			}
		}
		return done >= len(commands)
	})
	s.shutdown(t) // drains: the last reactions are in
	gl.ClearFaults()

	faults := map[int]int{}
	for _, c := range gl.Calls()[before:] {
		if c.Status >= 500 || c.Status == http.StatusTooManyRequests {
			faults[c.Status]++
		}
	}
	retried := strings.Count(s.stderr.String(), `"msg":"run failed"`)
	t.Logf("50 commands in %s; GitLab answered %d 500s and %d 429s; %d of %d model requests throttled; %d attempts failed and were retried",
		time.Since(start).Round(100*time.Millisecond), faults[500], faults[429], throttled.Load(), requests.Load(), retried)
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		if strings.Contains(line, `"msg":"run failed"`) {
			t.Log(line)
		}
	}
	if faults[500] == 0 || faults[429] == 0 {
		t.Fatalf("faults = %v, want both 500s and 429s", faults)
	}

	mainCommits := len(gl.Git().Log("acme/research", "main"))
	mrs := gl.MergeRequests(42)
	for _, iid := range iids {
		notes := botNotes(gl, sm, "issue", iid)
		if len(notes) != len(tickers) {
			t.Errorf("#%d: %d bot notes, want %d", iid, len(notes), len(tickers))
		}
		for _, n := range notes {
			if !strings.HasPrefix(n.Body, "✅") {
				t.Errorf("#%d: note %d:\n%s", iid, n.ID, n.Body)
			}
		}
	}
	for _, c := range commands {
		branch := fmt.Sprintf("agent/issue-%d-analyze-%s", c.iid, strings.ToLower(c.ticker))
		if n := len(gl.Git().Log("acme/research", branch)) - mainCommits; n != 1 {
			t.Errorf("%s: %d new commits, want 1", branch, n)
		}
		from := 0
		for _, mr := range mrs {
			if mr.SourceBranch == branch {
				from++
			}
		}
		if from != 1 {
			t.Errorf("%s: %d merge requests, want 1", branch, from)
		}
		var names []string
		for _, a := range gl.Awards(c.noteID) {
			names = append(names, a.Name)
		}
		if len(names) != 1 || names[0] != "white_check_mark" {
			t.Errorf("#%d %s: reactions %v, want one ✅", c.iid, c.ticker, names)
		}
	}
	if len(mrs) != 1+len(commands) {
		t.Errorf("%d merge requests, want %d (!3 and one per command)", len(mrs), 1+len(commands))
	}
}

var analyzeTicker = regexp.MustCompile(`(?m)^Analyze (\S+)\.$`)

// analyzeTurn answers as bedrocktest.AnalyzeScript does for the ticker the
// request asks about, from where the conversation is.
func analyzeTurn(t *testing.T, r *bedrocktest.Request) bedrocktest.Turn {
	var first string
	if m := r.Parsed.Messages; len(m) > 0 && len(m[0].Content) > 0 && m[0].Content[0].Text != nil {
		first = *m[0].Content[0].Text
	}
	match := analyzeTicker.FindStringSubmatch(first)
	if match == nil {
		t.Errorf("model request without an analyze prompt:\n%s", first)
		return bedrocktest.Reply("I can only analyze.")
	}
	turns := bedrocktest.AnalyzeScript(match[1])
	for _, m := range r.Parsed.Messages {
		for _, b := range m.Content {
			if b.ToolResult != nil {
				return turns[1]
			}
		}
	}
	return turns[0]
}
