package bedrocktest

import (
	"fmt"
	"strings"
)

// StartFunc is Start with answers computed per request (agentbot demo).
func StartFunc(next func(*Request) Turn) *Server {
	s := Start()
	s.next = next
	return s
}

// QuoteScript is a scripted analyst for `analyze <ticker>` that uses the
// finance MCP server: it asks for the quote (get_quote), writes
// output/<TICKER>.md quoting what the tool answered, and sums up. It finds
// its place in the conversation from the request, so one script serves any
// number of runs.
func QuoteScript(ticker string) func(*Request) Turn {
	path := "output/" + ticker + ".md"
	return func(r *Request) Turn {
		msgs := r.Parsed.Messages
		result, tool := lastToolResult(msgs)
		switch {
		case tool == "":
			return Turn{
				Text:     fmt.Sprintf("I'll get the latest quote for %s first.", ticker),
				ToolUses: []ToolUse{{ID: "tooluse_quote", Name: quoteTool(r), Input: map[string]any{"symbol": ticker}}},
				Usage:    Usage{Input: 1900, Output: 60, CacheWrite: 1700},
			}
		case tool == "tooluse_quote":
			report := fmt.Sprintf("# %[1]s — equity snapshot\n\n"+
				"_Written by agentbot's scripted demo model: the figures come from the finance MCP server's get_quote tool "+
				"(a sample server with fixed data), the prose is a template._\n\n"+
				"## Quote\n\n```json\n%[2]s\n```\n\n"+
				"Source: finance MCP server, tool `get_quote`; as-of time as stated in the quote.\n\n"+
				"## Summary\n\nA real run writes its analysis here: valuation, recent developments, risks and what to watch.\n",
				ticker, strings.TrimSpace(result))
			return Turn{
				Text:     fmt.Sprintf("Writing the report to %s.", path),
				ToolUses: []ToolUse{{ID: "tooluse_write_report", Name: "file_write", Input: map[string]any{"path": path, "content": report}}},
				Usage:    Usage{Input: 2300, Output: 380, CacheRead: 1700},
			}
		default:
			return Turn{
				Text:  fmt.Sprintf("Wrote %s with the latest %s quote from the finance MCP server (sample data).", path, ticker),
				Usage: Usage{Input: 420, Output: 35, CacheRead: 1700},
			}
		}
	}
}

// quoteTool is the quote tool's name as offered (it may carry a prefix).
func quoteTool(r *Request) string {
	for _, name := range r.ToolNames() {
		if strings.HasSuffix(name, "get_quote") {
			return name
		}
	}
	return "get_quote"
}

// lastToolResult is the text of the newest tool result and its tool-use id.
func lastToolResult(msgs []Message) (text, id string) {
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, b := range msgs[i].Content {
			if b.ToolResult == nil {
				continue
			}
			var parts []string
			for _, c := range b.ToolResult.Content {
				if c.Text != nil {
					parts = append(parts, *c.Text)
				}
				if len(c.JSON) > 0 {
					parts = append(parts, string(c.JSON))
				}
			}
			return strings.Join(parts, "\n"), b.ToolResult.ToolUseID
		}
	}
	return "", ""
}
