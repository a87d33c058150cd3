package repoconfig_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/repoconfig"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func parseFile(t *testing.T, name string) *repoconfig.Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	c, err := repoconfig.Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return c
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update and review the diff):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestParseFull(t *testing.T) {
	c := parseFile(t, "full.yml")
	if c.Version != 1 {
		t.Errorf("Version = %d", c.Version)
	}
	if got := c.Verbs(); !reflect.DeepEqual(got, []string{"compare", "ask", "weekly"}) {
		t.Errorf("Verbs = %q", got)
	}
	ask, ok := c.Command("ask")
	if !ok || ask.AllowFiles || !reflect.DeepEqual(ask.Args, []string{"ticker", "question..."}) {
		t.Errorf("ask = %+v", ask)
	}
	if cmp, _ := c.Command("compare"); !cmp.AllowFiles || cmp.Description != "Compare two companies side by side" || cmp.Line != 5 {
		t.Errorf("compare = %+v", cmp)
	}
	if c.Output.Dir != "output/research/" || !reflect.DeepEqual(c.Output.Allow, []string{"output/research/**", "output/compare/*.md"}) {
		t.Errorf("Output = %+v", c.Output)
	}
	if c.Model.ID != "us.anthropic.claude-sonnet-4-6" || c.Model.Limits != (repoconfig.Limits{MaxTurns: 15, MaxTokens: 500000, Timeout: 10 * time.Minute}) {
		t.Errorf("Model = %+v", c.Model)
	}
	wantMR := repoconfig.MergeRequest{Draft: true, Labels: []string{"research", "agentbot"}, Reviewers: []string{"alice", "bob"}, Target: "main"}
	if !reflect.DeepEqual(c.MergeRequest, wantMR) {
		t.Errorf("MergeRequest = %+v", c.MergeRequest)
	}
	if c.Access.MinLevel != 40 {
		t.Errorf("Access = %+v", c.Access)
	}
	if !c.Review.Enabled || c.Review.MaxInlineComments == nil || *c.Review.MaxInlineComments != 10 || c.Review.SuggestFixes ||
		!reflect.DeepEqual(c.Review.Ignore, []string{"vendor/**", "**/*.lock"}) {
		t.Errorf("Review = %+v", c.Review)
	}
	if c.Instructions.MaxBytes == nil || *c.Instructions.MaxBytes != 16000 {
		t.Errorf("Instructions = %+v", c.Instructions)
	}
	want := []repoconfig.Rule{
		{Name: "diagnose failed MR pipelines", Status: []string{"failed"}, Sources: []string{"merge_request_event"}, Command: "diagnose", Report: repoconfig.ReportNote, Line: 46},
		{Name: "daily report", Status: []string{"success"}, Refs: []string{"main"}, Sources: []string{"schedule"},
			Prompt: "Write today's market report for our watchlist to output/research/daily.md.", Report: repoconfig.ReportMR, Line: 53},
		{Name: "weekly on release branches", Status: []string{"success"}, Refs: []string{"release/*"}, Command: "compare", Args: []string{"AAPL", "MSFT"},
			Report: repoconfig.ReportMR, Line: 61},
	}
	if !reflect.DeepEqual(c.Pipelines, want) {
		t.Errorf("Pipelines =\n%+v\nwant\n%+v", c.Pipelines, want)
	}
}

// The example in docs/repoconfig.md is the one in testdata/full.yml.
func TestDocsExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "repoconfig.md"))
	if err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(filepath.Join("testdata", "full.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```yaml\n"+string(full)+"```\n") {
		t.Error("docs/repoconfig.md does not show testdata/full.yml as its full example; copy it over")
	}
}

func TestEmptyFile(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# nothing yet\n", "---\n"} {
		c, err := repoconfig.Parse([]byte(in))
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if len(c.Commands) != 0 || !c.Review.Enabled {
			t.Errorf("Parse(%q) = %+v", in, c)
		}
	}
}

func TestExpand(t *testing.T) {
	c := parseFile(t, "full.yml")
	got, err := c.Expand("compare", []string{"AAPL", "MSFT"})
	if err != nil {
		t.Fatal(err)
	}
	want := "Compare AAPL and MSFT: revenue growth, margins, valuation and the main risks.\nWrite the comparison to output/compare/AAPL-vs-MSFT.md.\n"
	if got != want {
		t.Errorf("Expand compare = %q, want %q", got, want)
	}
	// The verb comes lower-cased from command.Parse; Expand accepts any case.
	if got, err := c.Expand("ASK", []string{"AAPL", "what", "is", "{a}", "worth?"}); err != nil || got != "About AAPL: what is {a} worth?" {
		t.Errorf("Expand ask = %q, %v", got, err)
	}
	if got, err := c.Expand("weekly", nil); err != nil || got != "Write this week's market summary to output/weekly.md." {
		t.Errorf("Expand weekly = %q, %v", got, err)
	}

	for _, tc := range []struct {
		verb string
		args []string
		msg  string
	}{
		{"compare", []string{"AAPL"}, "`compare` takes 2 arguments and got 1.\n\nUsage: `/agent compare <a> <b>`"},
		{"compare", []string{"A", "B", "C"}, "`compare` takes 2 arguments and got 3.\n\nUsage: `/agent compare <a> <b>`"},
		{"ask", []string{"AAPL"}, "`ask` takes at least 2 arguments and got 1.\n\nUsage: `/agent ask <ticker> <question…>`"},
		{"weekly", []string{"now"}, "`weekly` takes no arguments and got 1.\n\nUsage: `/agent weekly`"},
		{"compare", []string{"AAPL", strings.Repeat("x", 201)}, "`compare` argument <b> is longer than 200 characters.\n\nUsage: `/agent compare <a> <b>`"},
		{"compare", []string{"AAPL", "a\x00b"}, "`compare` argument <b> contains control characters.\n\nUsage: `/agent compare <a> <b>`"},
	} {
		_, err := c.Expand(tc.verb, tc.args)
		var u *repoconfig.UsageError
		if !errors.As(err, &u) {
			t.Errorf("Expand(%s, %q) = %v, want a usage error", tc.verb, tc.args, err)
			continue
		}
		if got := u.Markdown("/agent"); got != tc.msg {
			t.Errorf("Expand(%s, %q) usage =\n%s\nwant\n%s", tc.verb, tc.args, got, tc.msg)
		}
	}
	if _, err := c.Expand("nope", nil); !errors.Is(err, repoconfig.ErrUnknownCommand) {
		t.Errorf("Expand(nope) = %v", err)
	}
	var none *repoconfig.Config
	if _, err := none.Expand("compare", nil); !errors.Is(err, repoconfig.ErrUnknownCommand) {
		t.Errorf("nil Expand = %v", err)
	}
}

// A custom command works end to end through the command parser: the note is
// parsed with the project's verbs, and the prompt is expanded.
func TestCustomCommandFromNote(t *testing.T) {
	c := parseFile(t, "full.yml")
	cmd := command.Parse("/agent compare AAPL MSFT", command.Options{CustomVerbs: c.Verbs()})
	if cmd.Kind != command.Custom {
		t.Fatalf("Kind = %v", cmd.Kind)
	}
	prompt, err := c.Expand(cmd.Verb, cmd.Args)
	if err != nil || !strings.HasPrefix(prompt, "Compare AAPL and MSFT:") {
		t.Errorf("prompt = %q, %v", prompt, err)
	}
}

func TestHelpEntries(t *testing.T) {
	c := parseFile(t, "full.yml")
	got := repoconfig.HelpEntries(c)
	want := []command.CustomHelp{
		{Verb: "compare", Args: "<a> <b>", Description: "Compare two companies side by side"},
		{Verb: "ask", Args: "<ticker> <question…>", Description: "Answer a question about one company, on the thread"},
		{Verb: "weekly", Description: "Write this week's market summary to output/weekly.md."},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HelpEntries = %+v", got)
	}
	golden(t, "help.golden", command.HelpText(command.Options{CustomVerbs: c.Verbs()}, got))
	if repoconfig.HelpEntries(nil) != nil {
		t.Error("HelpEntries(nil) is not nil")
	}
}

func TestMatch(t *testing.T) {
	c := parseFile(t, "full.yml")
	for _, tc := range []struct {
		p    repoconfig.Pipeline
		rule string
	}{
		{repoconfig.Pipeline{Status: "failed", Ref: "feature/q3", Source: "merge_request_event"}, "diagnose failed MR pipelines"},
		{repoconfig.Pipeline{Status: "failed", Ref: "feature/q3", Source: "push"}, ""},
		{repoconfig.Pipeline{Status: "success", Ref: "main", Source: "schedule"}, "daily report"},
		{repoconfig.Pipeline{Status: "success", Ref: "refs/heads/main", Source: "schedule"}, "daily report"},
		{repoconfig.Pipeline{Status: "success", Ref: "develop", Source: "schedule"}, ""},
		{repoconfig.Pipeline{Status: "success", Ref: "release/1.2", Source: "push"}, "weekly on release branches"},
		{repoconfig.Pipeline{Status: "success", Ref: "release/1.2/x", Source: "push"}, ""},
		{repoconfig.Pipeline{Status: "running", Ref: "main", Source: "schedule"}, ""},
		// agentbot's own branches never match, whatever the rule says.
		{repoconfig.Pipeline{Status: "failed", Ref: "agent/analyze-7-aapl", Source: "merge_request_event"}, ""},
		{repoconfig.Pipeline{Status: "failed", Ref: "refs/heads/agent/x", Source: "merge_request_event"}, ""},
	} {
		r, ok := c.Match(tc.p)
		if ok != (tc.rule != "") || r.Name != tc.rule {
			t.Errorf("Match(%+v) = %q, %v; want %q", tc.p, r.Name, ok, tc.rule)
		}
	}
	var none *repoconfig.Config
	if _, ok := none.Match(repoconfig.Pipeline{Status: "failed"}); ok {
		t.Error("nil config matched")
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "full.yml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := repoconfig.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
