package mcp_test

import (
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/mcp"
	"gitlab.com/agentbot/agentbot/internal/mcp/financedemo"
	"gitlab.com/agentbot/agentbot/internal/mcp/mcptest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// The agent loop, the Bedrock client (against its wire fake) and the MCP
// tools of the token-protected sample server: the model calls get_quote,
// and the figures reach it in the tool result; the token never does.
func TestAgentCallsFinanceTools(t *testing.T) {
	srv := mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{Issuer: issuerOptions(nil, time.Hour)})
	ts := mcp.NewTokenSource(mcp.TokenSourceOptions{TokenURL: srv.TokenURL, Resource: srv.URL, Credentials: staticCreds})
	s := connect(t, []mcp.Server{{Name: "finance", URL: srv.URL, Auth: ts}}, "file_write", "file_read")

	fake := bedrocktest.New(t,
		bedrocktest.Call("get_quote", map[string]any{"symbol": "AAPL"}),
		bedrocktest.Reply("AAPL trades at 205.17 USD."))
	model, err := bedrock.New(fake.AWSConfig(), bedrock.Options{ModelID: "us.anthropic.claude-sonnet-4-6", BaseEndpoint: fake.URL(), MaxOutputTokens: 1024})
	if err != nil {
		t.Fatal(err)
	}
	res, err := agent.Run(t.Context(), model, s.Tools(), agent.Config{MaxTurns: 4}, "You are a test.", "/agent analyze AAPL")
	if err != nil {
		t.Fatal(err)
	}
	if res.ToolCalls != 1 || res.ToolErrors != 0 {
		t.Errorf("%d tool calls, %d failed", res.ToolCalls, res.ToolErrors)
	}
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model calls", len(reqs))
	}
	var names []string
	for _, tool := range reqs[0].Parsed.ToolConfig.Tools {
		if tool.ToolSpec != nil { // not a cache point
			names = append(names, tool.ToolSpec.Name)
		}
	}
	if got := strings.Join(names, ","); got != "get_fundamentals,get_price_history,get_quote" {
		t.Errorf("tools sent to the model: %s", got)
	}
	body := string(reqs[1].Body)
	if !strings.Contains(body, "205.17") || !strings.Contains(body, "Apple Inc.") {
		t.Errorf("the quote did not reach the model: %s", body)
	}
	if mcptest.HasToken(body, srv.Issuer.Tokens()) || strings.Contains(body, creds.ClientSecret) {
		t.Error("a token or the client secret reached the model")
	}
}
