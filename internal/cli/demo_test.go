package cli_test

import (
	"strings"
	"testing"
)

// TestDemo runs `agentbot demo` as a user would: the whole loop, offline.
// The report in the MR holds the figures the finance MCP server's get_quote
// answered (AAPL 205.17 in its sample data), so the tool was really called
// over streamable HTTP with a client-credentials token.
func TestDemo(t *testing.T) {
	env := hermeticAWS(t)
	stdout, stderr, err := runCLI(t, env, "demo")
	if err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, stdout, stderr)
	}
	for _, want := range []string{
		"✅ Opened merge request !4",
		"Merge request !4: agentbot: analyze AAPL (agent/issue-7-analyze-aapl → main)",
		"diff --git a/output/AAPL.md b/output/AAPL.md",
		`"price":205.17`,
		"Co-authored-by: Alice Analyst <alice@acme.test>",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
}
