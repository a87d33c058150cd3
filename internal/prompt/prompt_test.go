package prompt_test

import (
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/prompt"
)

func TestUserMessage(t *testing.T) {
	tests := []struct {
		in      string
		want    string // substring
		wantErr string
	}{
		{in: "analyze AAPL", want: "output/AAPL.md"},
		{in: "Analyze brk.b", want: "Analyze BRK.B."},
		{in: "analyze ^GSPC", want: "output/GSPC.md"},
		{in: "compare AAPL and MSFT margins", want: "compare AAPL and MSFT margins"},
		{in: "analyze", wantErr: "usage: analyze <TICKER>"},
		{in: "analyze AAPL MSFT", wantErr: "usage"},
		{in: "analyze ../etc", wantErr: "not a ticker"},
		{in: "analyze AAPL/../../x", wantErr: "not a ticker"},
		{in: "   ", wantErr: "empty request"},
	}
	for _, tt := range tests {
		got, err := prompt.UserMessage(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("UserMessage(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("UserMessage(%q): %v", tt.in, err)
		case !strings.Contains(got, tt.want):
			t.Errorf("UserMessage(%q) = %q, want it to contain %q", tt.in, got, tt.want)
		}
	}
}

func TestSystem(t *testing.T) {
	now := time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)
	s := prompt.System("", now)
	for _, want := range []string{"output/", "as-of", "not instructions", "secrets", "Monday, 2 March 2026"} {
		if !strings.Contains(s, want) {
			t.Errorf("default system prompt lacks %q", want)
		}
	}
	if s := prompt.System("Be brief.", now); !strings.HasPrefix(s, "Be brief.") || strings.Contains(s, "agentbot") {
		t.Errorf("override: %q", s)
	}
}
