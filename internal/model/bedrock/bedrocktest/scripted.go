package bedrocktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"gitlab.com/agentbot/agentbot/internal/agent"
)

// Scripted is an in-process agent.Model that answers turns in order, for
// callers that want no HTTP at all. Error turns return an error.
type Scripted struct {
	mu       sync.Mutex
	turns    []Turn
	ids      int
	requests []*agent.Request
}

var _ agent.Model = (*Scripted)(nil)

// NewScripted returns a model answering turns in order.
func NewScripted(turns ...Turn) *Scripted { return &Scripted{turns: turns} }

// Requests are the requests received so far (shared, do not modify).
func (s *Scripted) Requests() []*agent.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*agent.Request(nil), s.requests...)
}

// Converse answers the next turn.
func (s *Scripted) Converse(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	s.mu.Lock()
	s.requests = append(s.requests, req)
	if len(s.turns) == 0 {
		s.mu.Unlock()
		return nil, errors.New("bedrocktest: the script has no answer left")
	}
	t := s.turns[0]
	s.turns = s.turns[1:]
	first := s.ids
	s.ids += len(t.ToolUses)
	s.mu.Unlock()

	if t.Hold {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if t.Error != nil {
		return nil, fmt.Errorf("bedrocktest: %s: %s", t.Error.Type, t.Error.Message)
	}
	return ResponseOf(t, first), nil
}

// ResponseOf converts a turn into the agent.Response a Model would return;
// tool uses without an id get tooluse_<firstID+i+1>.
func ResponseOf(t Turn, firstID int) *agent.Response {
	resp := &agent.Response{
		Message: agent.Message{Role: agent.RoleAssistant},
		Usage: agent.Usage{InputTokens: t.Usage.Input, OutputTokens: t.Usage.Output,
			CacheReadTokens: t.Usage.CacheRead, CacheWriteTokens: t.Usage.CacheWrite},
		StopReason: agent.StopReason(t.StopReason),
	}
	if t.Text != "" {
		resp.Message.Content = append(resp.Message.Content, agent.Block{Text: t.Text})
	}
	for i, u := range t.ToolUses {
		id := u.ID
		if id == "" {
			id = fmt.Sprintf("tooluse_%d", firstID+i+1)
		}
		var input json.RawMessage
		switch v := u.Input.(type) {
		case json.RawMessage:
			input = v
		case nil:
			input = json.RawMessage("{}")
		default:
			b, err := json.Marshal(v)
			if err != nil {
				panic(fmt.Sprintf("bedrocktest: tool input for %s: %v", u.Name, err))
			}
			input = b
		}
		resp.Message.Content = append(resp.Message.Content, agent.Block{ToolUse: &agent.ToolUse{ID: id, Name: u.Name, Input: input}})
	}
	if resp.StopReason == "" {
		resp.StopReason = agent.StopEndTurn
		if len(t.ToolUses) > 0 {
			resp.StopReason = agent.StopToolUse
		}
	}
	return resp
}

// AnalyzeScript is the scripted model of `agentbot demo` and of the CLI
// tests: it writes output/<TICKER>.md with file_write, then answers.
func AnalyzeScript(ticker string) []Turn {
	path := "output/" + ticker + ".md"
	report := fmt.Sprintf(`# %[1]s — equity snapshot

_Demo report written by a scripted model: the figures below are placeholders, not market data._

| | |
|---|---|
| Ticker | %[1]s |
| As of | (demo: no market data tool was called) |
| Source | agentbot demo script |

## Summary

This file shows where a real run puts its analysis: a Markdown report under
output/, with its sources and as-of times stated, committed on a branch for review.
`, ticker)
	return []Turn{
		{
			Text:     fmt.Sprintf("I'll write the %s report to %s.", ticker, path),
			ToolUses: []ToolUse{{ID: "tooluse_write_report", Name: "file_write", Input: map[string]any{"path": path, "content": report}}},
			Usage:    Usage{Input: 1850, Output: 420, CacheWrite: 1600},
		},
		{
			Text:  fmt.Sprintf("Wrote %s: a snapshot report for %s (demo data).", path, ticker),
			Usage: Usage{Input: 320, Output: 40, CacheRead: 1600},
		},
	}
}
