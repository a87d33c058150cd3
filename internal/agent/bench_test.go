package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/redact"
)

// instantModel answers at once with prebuilt responses: a tool call on
// every turn but the last of each run.
type instantModel struct {
	turnsPerRun int
	n           int
	call, done  *agent.Response
}

func (m *instantModel) Converse(_ context.Context, req *agent.Request) (*agent.Response, error) {
	m.n++
	if m.n%m.turnsPerRun == 0 {
		return m.done, nil
	}
	return m.call, nil
}

// BenchmarkLoopTurn measures the loop's own cost per turn: a zero-latency
// model and tool, 50 tool definitions, 100 KB of earlier conversation, a
// 2 KB tool result per turn, redaction and an event hook on. It reports
// µs/turn and allocs/turn for the loop, the same for the fake model call
// alone (the baseline), their ratio, and for scale the cost of merely
// JSON-encoding one such request (what any real model client does).
func BenchmarkLoopTurn(b *testing.B) {
	const turnsPerRun = 10
	var tools []agent.Tool
	for i := range 50 {
		name := fmt.Sprintf("tool_%02d", i)
		result := strings.Repeat(fmt.Sprintf("%s line of result text, 2026-01-02 price 189.12\n", name), 40)[:2048]
		tools = append(tools, toolFunc{name, func(context.Context, json.RawMessage) (string, bool) { return result, false }})
	}
	var history []agent.Message
	size := 0
	for i := 0; size < 100_000; i++ {
		text := strings.Repeat(fmt.Sprintf("turn %d of an earlier analysis. ", i), 60)
		history = append(history,
			agent.Message{Role: agent.RoleUser, Content: []agent.Block{{Text: text}}},
			agent.Message{Role: agent.RoleAssistant, Content: []agent.Block{{Text: text}}})
		size += 2 * len(text)
	}
	history = append(history, agent.Message{Role: agent.RoleUser, Content: []agent.Block{{Text: "and now?"}}},
		agent.Message{Role: agent.RoleAssistant, Content: []agent.Block{{Text: "ask away"}}})
	m := &instantModel{
		turnsPerRun: turnsPerRun,
		call: &agent.Response{StopReason: agent.StopToolUse, Usage: agent.Usage{InputTokens: 30000, OutputTokens: 200},
			Message: agent.Message{Role: agent.RoleAssistant, Content: []agent.Block{
				{Text: "Let me call a tool."},
				{ToolUse: &agent.ToolUse{ID: "tooluse_abc", Name: "tool_07", Input: json.RawMessage(`{"ticker":"AAPL","range":"1y"}`)}},
			}}},
		done: &agent.Response{StopReason: agent.StopEndTurn, Usage: agent.Usage{InputTokens: 30000, OutputTokens: 400},
			Message: agent.Message{Role: agent.RoleAssistant, Content: []agent.Block{{Text: "Here is the answer."}}}},
	}
	cfg := agent.Config{
		ModelID: "us.anthropic.claude-sonnet-4-6",
		Redact:  redact.New("hunter2-secret-value").String,
		OnEvent: func(agent.Event) {},
		History: history,
	}
	ctx := context.Background()

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	b.ResetTimer()
	for b.Loop() {
		res, err := agent.Run(ctx, m, tools, cfg, "You are a financial analyst.", "analyze AAPL")
		if err != nil || res.Turns != turnsPerRun {
			b.Fatalf("run: %v, %d turns", err, res.Turns)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms)
	turns := float64(b.N * turnsPerRun)
	loopNs := float64(b.Elapsed().Nanoseconds()) / turns
	loopAllocs := float64(ms.Mallocs-mallocs) / turns

	// Baseline: the fake model call alone, as often.
	req := &agent.Request{System: "s", Messages: history, Tools: make([]agent.ToolSpec, 0, 50)}
	for _, t := range tools {
		req.Tools = append(req.Tools, t.Spec())
	}
	runtime.ReadMemStats(&ms)
	mallocs = ms.Mallocs
	start := time.Now()
	for range int(turns) {
		_, _ = m.Converse(ctx, req)
	}
	modelNs := float64(time.Since(start).Nanoseconds()) / turns
	runtime.ReadMemStats(&ms)
	modelAllocs := float64(ms.Mallocs-mallocs) / turns

	// For scale: JSON-encoding one request of this size.
	encodes := max(1, int(turns)/100)
	start = time.Now()
	for range encodes {
		if _, err := json.Marshal(req); err != nil {
			b.Fatal(err)
		}
	}
	encodeNs := float64(time.Since(start).Nanoseconds()) / float64(encodes)

	b.ReportMetric(loopNs/1e3, "µs/turn")
	b.ReportMetric(loopAllocs, "allocs/turn")
	b.ReportMetric(modelNs/1e3, "model-µs/turn")
	b.ReportMetric(modelAllocs, "model-allocs/turn")
	b.ReportMetric(loopNs/max(modelNs, 1), "loop/model")
	b.ReportMetric(encodeNs/1e3, "json-encode-µs/req")
	b.ReportMetric(loopNs/encodeNs, "loop/json-encode")
	b.ReportMetric(0, "ns/op")
}
