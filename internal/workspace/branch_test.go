package workspace

import (
	"strings"
	"testing"
)

func TestBranchName(t *testing.T) {
	for _, tc := range []struct {
		kind string
		iid  int64
		src  string
		want string
	}{
		{"issue", 7, "analyze AAPL", "agent/issue-7-analyze-aapl"},
		{"mr", 3, "  Review: the ÉTÉ report!! ", "agent/mr-3-review-the-t-report"},
		{"issue", 12, "", "agent/issue-12"},
		{"issue", 12, "!!!", "agent/issue-12"},
		{"Issue", 1, "a/b..c@{d}", "agent/issue-1-a-b-c-d"},
		{"", 1, "x", "agent/item-1-x"},
		{"issue", 9, strings.Repeat("word ", 30), "agent/issue-9-" + strings.TrimRight(strings.Repeat("word-", 8), "-")},
	} {
		got := BranchName(tc.kind, tc.iid, tc.src)
		if got != tc.want {
			t.Errorf("BranchName(%q, %d, %q) = %q, want %q", tc.kind, tc.iid, tc.src, got, tc.want)
		}
		if err := checkPushTarget(got, &Options{BaseBranch: "main"}); err != nil {
			t.Errorf("BranchName(%q, %d, %q) = %q is refused: %v", tc.kind, tc.iid, tc.src, got, err)
		}
	}
	if got := AlternativeName("agent/issue-7-x", 1); got != "agent/issue-7-x" {
		t.Errorf("AlternativeName(…, 1) = %q", got)
	}
	if got := AlternativeName("agent/issue-7-x", 3); got != "agent/issue-7-x-3" {
		t.Errorf("AlternativeName(…, 3) = %q", got)
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"main", "main", true},
		{"main", "main2", false},
		{"release/*", "release/1.0", true},
		{"release/*", "release/a/b", true},
		{"release/*", "releases/1", false},
		{"*-stable", "1-0-stable", true},
		{"*-stable", "1-0-stable-x", false},
		{"agent/*/keep", "agent/a/b/keep", true},
		{"*", "anything", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
	} {
		if got := globMatch(tc.pattern, tc.name); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestTrailerValueAndOwnership(t *testing.T) {
	msg := "agent: analyze AAPL\n\nAgentbot-Run: not-a-trailer-paragraph\n\nCo-authored-by: Ada <a@x>\nAgentbot-Run: run-9\n"
	if got := trailerValue(msg, RunTrailer); got != "run-9" {
		t.Errorf("trailerValue = %q, want run-9", got)
	}
	if got := trailerValue("subject only", RunTrailer); got != "" {
		t.Errorf("trailerValue(subject) = %q", got)
	}
	bot := "bot@example.com"
	for _, tc := range []struct {
		h    Head
		want bool
	}{
		{Head{AuthorEmail: "BOT@example.com", RunID: "r"}, true},
		{Head{AuthorEmail: bot}, false},                           // no trailer
		{Head{AuthorEmail: "ada@example.com", RunID: "r"}, false}, // a person's commit on top
	} {
		if got := BranchOwnedByAgent(tc.h, bot); got != tc.want {
			t.Errorf("BranchOwnedByAgent(%+v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestCommitMessage(t *testing.T) {
	got, err := commitMessage(CommitInput{Message: "agent: x\r\n\r\nbody\n", Trailers: []Trailer{{"Requested-by", "@ada"}}}, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := "agent: x\n\nbody\n\nRequested-by: @ada\nAgentbot-Run: run-1\n"; got != want {
		t.Errorf("commitMessage = %q, want %q", got, want)
	}
	for _, bad := range []Trailer{{"Bad Key", "v"}, {"K", "a\nb"}, {"Agentbot-Run", "other"}, {"", "v"}} {
		if _, err := commitMessage(CommitInput{Message: "m", Trailers: []Trailer{bad}}, "run-1"); err == nil {
			t.Errorf("commitMessage accepted trailer %+v", bad)
		}
	}
	if _, err := commitMessage(CommitInput{Message: " \n"}, "run-1"); err == nil {
		t.Error("commitMessage accepted an empty message")
	}
}
