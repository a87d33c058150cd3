package publish_test

import (
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/publish"
)

func TestNeutralizeQuickActions(t *testing.T) {
	in := "Fine.\n/approve\n  /merge\n> /close\n```\n/not-in-code\n```\nsee a/b"
	want := "Fine.\n\\/approve\n  \\/merge\n> \\/close\n```\n/not-in-code\n```\nsee a/b"
	if got := publish.Neutralize(in); got != want {
		t.Fatalf("neutralize = %q\nwant %q", got, want)
	}
}

// TestDescriptionNeutralizesQuickActions: an MR description is where GitLab
// runs quick actions when the MR is created, with the bot's rights.
func TestDescriptionNeutralizesQuickActions(t *testing.T) {
	d := publish.Description(publish.Request{Command: "analyze AAPL", Summary: "Done.\n/merge\n/assign @mallory"}, []string{"output/AAPL.md"})
	for _, line := range []string{"\n/merge", "\n/assign"} {
		if strings.Contains(d, line) {
			t.Fatalf("description runs a quick action:\n%s", d)
		}
	}
}
