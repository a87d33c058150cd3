package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
	"gitlab.com/agentbot/agentbot/internal/redact"
)

// toolFunc is a test tool made of a function.
type toolFunc struct {
	name string
	fn   func(ctx context.Context, input json.RawMessage) (string, bool)
}

var _ agent.Tool = toolFunc{}

func (t toolFunc) Spec() agent.ToolSpec {
	return agent.ToolSpec{Name: t.name, Description: "test tool " + t.name, InputSchema: map[string]any{
		"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}},
	}}
}

func (t toolFunc) Call(ctx context.Context, input json.RawMessage) (string, bool) {
	return t.fn(ctx, input)
}

func echo() toolFunc {
	return toolFunc{"echo", func(_ context.Context, in json.RawMessage) (string, bool) {
		var v struct{ Text string }
		_ = json.Unmarshal(in, &v)
		return "echo: " + v.Text, false
	}}
}

// slow waits d (or until canceled), the way a network tool would.
func slow(name string, d time.Duration) toolFunc {
	return toolFunc{name, func(ctx context.Context, _ json.RawMessage) (string, bool) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return name + " done", false
		case <-ctx.Done():
			return ctx.Err().Error(), true
		}
	}}
}

func model(t *testing.T, fake *bedrocktest.Server) *bedrock.Model {
	t.Helper()
	m, err := bedrock.New(fake.AWSConfig(), bedrock.Options{
		ModelID: "us.anthropic.claude-sonnet-4-6", BaseEndpoint: fake.URL(), PromptCache: true, MaxBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func cfg() agent.Config {
	return agent.Config{ModelID: "us.anthropic.claude-sonnet-4-6"}
}

func TestRunMultiTurnWithTools(t *testing.T) {
	fake := bedrocktest.New(t,
		bedrocktest.Turn{Text: "First a single call.", ToolUses: []bedrocktest.ToolUse{{Name: "echo", Input: map[string]string{"text": "one"}}},
			Usage: bedrocktest.Usage{Input: 1000, Output: 100, CacheWrite: 2000}},
		bedrocktest.Turn{ToolUses: []bedrocktest.ToolUse{{Name: "echo", Input: map[string]string{"text": "two"}}, {Name: "echo", Input: map[string]string{"text": "three"}}},
			Usage: bedrocktest.Usage{Input: 200, Output: 50, CacheRead: 2000}},
		bedrocktest.Turn{Text: "All echoed.", Usage: bedrocktest.Usage{Input: 300, Output: 10, CacheRead: 2000}},
	)
	fake.ExpectCache(true)
	var events []agent.Event
	c := cfg()
	c.OnEvent = func(e agent.Event) { events = append(events, e) }

	res, err := agent.Run(context.Background(), model(t, fake), []agent.Tool{echo()}, c, "system prompt", "echo three things")
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "All echoed." || res.Outcome != agent.OutcomeDone || res.Turns != 3 || res.ToolCalls != 3 {
		t.Errorf("result %+v", res)
	}
	wantUsage := agent.Usage{InputTokens: 1500, OutputTokens: 160, CacheReadTokens: 4000, CacheWriteTokens: 2000}
	if res.Usage != wantUsage {
		t.Errorf("usage %+v, want %+v", res.Usage, wantUsage)
	}
	// Sonnet: $3 in, $15 out, $0.30 cache read, $3.75 cache write per MTok.
	wantCost := (1500*3 + 160*15 + 4000*0.30 + 2000*3.75) / 1e6
	if diff := res.Cost - wantCost; diff > 1e-9 || diff < -1e-9 {
		t.Errorf("cost %v, want %v", res.Cost, wantCost)
	}
	reqs := fake.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	got := reqs[2].ToolResults()
	if len(got) != 2 || got["tooluse_2"] != "echo: two" || got["tooluse_3"] != "echo: three" {
		t.Errorf("tool results of turn 2: %v", got)
	}
	if len(res.Transcript) != 6 {
		t.Errorf("transcript has %d messages, want 6", len(res.Transcript))
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, string(e.Kind))
		if e.Kind == agent.EventToolStart && e.Turn == 1 && e.Text != "text=one" {
			t.Errorf("tool start summary %q, want text=one", e.Text)
		}
	}
	if got := strings.Join(kinds, ","); !strings.HasPrefix(got, "turn,text,tool_start,tool_finish,turn,") || !strings.HasSuffix(got, "turn,text,stop") {
		t.Errorf("events %s", got)
	}
}

func TestRunToolsConcurrently(t *testing.T) {
	fake := bedrocktest.New(t,
		bedrocktest.Turn{ToolUses: []bedrocktest.ToolUse{{Name: "a"}, {Name: "b"}, {Name: "c"}}},
		bedrocktest.Reply("done"),
	)
	tools := []agent.Tool{slow("a", 200*time.Millisecond), slow("b", 200*time.Millisecond), slow("c", 200*time.Millisecond)}
	start := time.Now()
	res, err := agent.Run(context.Background(), model(t, fake), tools, cfg(), "s", "go")
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed >= 450*time.Millisecond {
		t.Errorf("three 200 ms tools took %v; they should run at once (~200 ms)", elapsed)
	}
	got := fake.Requests()[1].ToolResults()
	for id, want := range map[string]string{"tooluse_1": "a done", "tooluse_2": "b done", "tooluse_3": "c done"} {
		if got[id] != want {
			t.Errorf("result %s = %q, want %q", id, got[id], want)
		}
	}
	if res.ToolCalls != 3 {
		t.Errorf("tool calls %d", res.ToolCalls)
	}
}

func TestRunParallelismBound(t *testing.T) {
	var mu sync.Mutex
	running, peak := 0, 0
	counting := toolFunc{"count", func(ctx context.Context, _ json.RawMessage) (string, bool) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // the tool's own work
		mu.Lock()
		running--
		mu.Unlock()
		return "ok", false
	}}
	uses := make([]bedrocktest.ToolUse, 6)
	for i := range uses {
		uses[i] = bedrocktest.ToolUse{Name: "count"}
	}
	m := bedrocktest.NewScripted(bedrocktest.Turn{ToolUses: uses}, bedrocktest.Reply("ok"))
	c := cfg()
	c.Parallelism = 2
	if _, err := agent.Run(context.Background(), m, []agent.Tool{counting}, c, "s", "go"); err != nil {
		t.Fatal(err)
	}
	if peak != 2 {
		t.Errorf("peak concurrency %d, want 2", peak)
	}
}

func TestRunThrottlingThenSuccess(t *testing.T) {
	fake := bedrocktest.New(t,
		bedrocktest.Throttle(), bedrocktest.Throttle(),
		bedrocktest.Call("echo", map[string]string{"text": "x"}),
		bedrocktest.Throttle(),
		bedrocktest.Reply("made it"),
	)
	res, err := agent.Run(context.Background(), model(t, fake), []agent.Tool{echo()}, cfg(), "s", "go")
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "made it" || res.Turns != 2 || len(fake.Requests()) != 5 {
		t.Errorf("answer %q, %d turns, %d requests", res.Answer, res.Turns, len(fake.Requests()))
	}
}

func TestRunLimits(t *testing.T) {
	forever := func(*bedrocktest.Request) bedrocktest.Turn {
		return bedrocktest.Turn{Text: "more", ToolUses: []bedrocktest.ToolUse{{Name: "echo"}}, Usage: bedrocktest.Usage{Input: 100, Output: 20}}
	}
	tests := []struct {
		name    string
		turns   []bedrocktest.Turn
		next    func(*bedrocktest.Request) bedrocktest.Turn
		config  func(*agent.Config)
		outcome agent.Outcome
		mention string
		check   func(t *testing.T, res *agent.Result, err error)
	}{
		{name: "max turns", next: forever, config: func(c *agent.Config) { c.MaxTurns = 3 },
			outcome: agent.OutcomeMaxTurns, mention: "AGENTBOT_MAX_TURNS",
			check: func(t *testing.T, res *agent.Result, _ error) {
				if res.Turns != 3 {
					t.Errorf("turns %d", res.Turns)
				}
			}},
		{name: "total tokens", next: forever, config: func(c *agent.Config) { c.MaxTokens = 250 },
			outcome: agent.OutcomeMaxTokensTotal, mention: "AGENTBOT_MAX_TOKENS",
			check: func(t *testing.T, res *agent.Result, _ error) {
				if res.Turns != 3 { // 120, 240, 360 tokens
					t.Errorf("turns %d", res.Turns)
				}
			}},
		{name: "deadline", turns: []bedrocktest.Turn{{Hold: true}}, config: func(c *agent.Config) { c.Deadline = 100 * time.Millisecond },
			outcome: agent.OutcomeDeadline, mention: "AGENTBOT_RUN_TIMEOUT"},
		{name: "guardrail", turns: []bedrocktest.Turn{{Text: "Sorry.", StopReason: "guardrail_intervened"}},
			outcome: agent.OutcomeGuardrail, mention: "guardrail"},
		{name: "content filter", turns: []bedrocktest.Turn{{Text: "...", StopReason: "content_filtered"}},
			outcome: agent.OutcomeContentFiltered, mention: "content filter"},
		{name: "context window", turns: []bedrocktest.Turn{{Text: "...", StopReason: "model_context_window_exceeded"}},
			outcome: agent.OutcomeContextWindow, mention: "context window"},
		{name: "truncated twice", turns: []bedrocktest.Turn{{Text: "Part one", StopReason: "max_tokens"}, {Text: " and part two", StopReason: "max_tokens"}},
			outcome: agent.OutcomeTruncated, mention: "MODEL_MAX_OUTPUT_TOKENS",
			check: func(t *testing.T, res *agent.Result, _ error) {
				if res.Answer != "Part one and part two" {
					t.Errorf("partial answer %q", res.Answer)
				}
			}},
		{name: "model error", turns: []bedrocktest.Turn{bedrocktest.AccessDenied()},
			outcome: agent.OutcomeModelError, mention: "bedrock:InvokeModel",
			check: func(t *testing.T, _ *agent.Result, err error) {
				if !errors.Is(err, bedrock.ErrAccessDenied) {
					t.Errorf("error %v does not wrap ErrAccessDenied", err)
				}
			}},
	}
	messages := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fake *bedrocktest.Server
			if tt.next != nil {
				fake = bedrocktest.NewFunc(t, tt.next)
			} else {
				fake = bedrocktest.New(t, tt.turns...)
			}
			c := cfg()
			if tt.config != nil {
				tt.config(&c)
			}
			res, err := agent.Run(context.Background(), model(t, fake), []agent.Tool{echo()}, c, "s", "go")
			var se *agent.StopError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a *StopError", err)
			}
			if res == nil || res.Outcome != tt.outcome || se.Outcome != tt.outcome {
				t.Fatalf("outcome %v, want %v", res.Outcome, tt.outcome)
			}
			if !strings.Contains(err.Error(), tt.mention) || res.Message == "" {
				t.Errorf("message %q does not mention %q", err, tt.mention)
			}
			if other, dup := messages[res.Message]; dup {
				t.Errorf("same message as %s: %q", other, res.Message)
			}
			messages[res.Message] = tt.name
			if tt.check != nil {
				tt.check(t, res, err)
			}
		})
	}
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	canceling := toolFunc{"cancel", func(context.Context, json.RawMessage) (string, bool) { cancel(); return "bye", false }}
	m := bedrocktest.NewScripted(bedrocktest.Call("cancel", nil), bedrocktest.Reply("never"))
	res, err := agent.Run(ctx, m, []agent.Tool{canceling}, cfg(), "s", "go")
	if res.Outcome != agent.OutcomeCanceled || !errors.Is(err, context.Canceled) {
		t.Errorf("outcome %v, error %v", res.Outcome, err)
	}
}

func TestRunContinuesOnceAfterMaxTokens(t *testing.T) {
	fake := bedrocktest.New(t,
		bedrocktest.Turn{Text: "The report starts", StopReason: "max_tokens"},
		bedrocktest.Turn{Text: " and ends here."},
	)
	res, err := agent.Run(context.Background(), model(t, fake), nil, cfg(), "s", "go")
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "The report starts and ends here." {
		t.Errorf("answer %q", res.Answer)
	}
	if got := fake.Requests()[1].LastText(); !strings.Contains(got, "cut off") {
		t.Errorf("continue prompt %q", got)
	}
}

func TestRunBadToolCallsAreToolErrors(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stubborn := toolFunc{"stubborn", func(context.Context, json.RawMessage) (string, bool) { <-release; return "late", false }}
	panicky := toolFunc{"panicky", func(context.Context, json.RawMessage) (string, bool) { panic("boom") }}
	fake := bedrocktest.New(t,
		bedrocktest.Turn{ToolUses: []bedrocktest.ToolUse{
			{ID: "u1", Name: "nosuch"},
			{ID: "u2", Name: "echo", Input: json.RawMessage(`[1,2]`)},
			{ID: "u3", Name: "slow", Input: map[string]string{}},
			{ID: "u4", Name: "stubborn"},
			{ID: "u5", Name: "panicky"},
		}},
		bedrocktest.Reply("coped"),
	)
	c := cfg()
	c.ToolTimeout = 50 * time.Millisecond
	tools := []agent.Tool{echo(), slow("slow", time.Hour), stubborn, panicky}
	res, err := agent.Run(context.Background(), model(t, fake), tools, c, "s", "go")
	if err != nil {
		t.Fatal(err)
	}
	got := fake.Requests()[1].ToolResults()
	for id, want := range map[string]string{
		"u1": `there is no tool named "nosuch"`,
		"u2": "not a JSON object",
		"u3": "timed out after 50ms",
		"u4": "timed out after 50ms",
		"u5": "boom",
	} {
		if !strings.HasPrefix(got[id], "ERROR: ") || !strings.Contains(got[id], want) {
			t.Errorf("result %s = %q, want an error mentioning %q", id, got[id], want)
		}
	}
	if res.ToolErrors != 5 {
		t.Errorf("tool errors %d", res.ToolErrors)
	}
}

func TestRunTruncatesLongResults(t *testing.T) {
	big := toolFunc{"big", func(context.Context, json.RawMessage) (string, bool) { return strings.Repeat("é", 1000), false }}
	fake := bedrocktest.New(t, bedrocktest.Call("big", nil), bedrocktest.Reply("ok"))
	c := cfg()
	c.MaxToolResultBytes = 101
	if _, err := agent.Run(context.Background(), model(t, fake), []agent.Tool{big}, c, "s", "go"); err != nil {
		t.Fatal(err)
	}
	got := fake.Requests()[1].ToolResults()["tooluse_1"]
	if !strings.HasPrefix(got, strings.Repeat("é", 50)+"\n[truncated: the result was 2000 bytes; only the first 100 are shown") {
		t.Errorf("truncated result %q", got)
	}
}

func TestRunRedacts(t *testing.T) {
	r := redact.New("hunter2-secret")
	leaky := toolFunc{"leaky", func(context.Context, json.RawMessage) (string, bool) {
		return "config: token=glpat-abcdefghijklmnopqrstu pass=hunter2-secret", false
	}}
	fake := bedrocktest.New(t, bedrocktest.Call("leaky", nil), bedrocktest.Reply("The password is hunter2-secret."))
	c := cfg()
	c.Redact = r.String
	res, err := agent.Run(context.Background(), model(t, fake), []agent.Tool{leaky}, c, "s", "my key is hunter2-secret")
	if err != nil {
		t.Fatal(err)
	}
	if got := fake.Requests()[1].ToolResults()["tooluse_1"]; got != "config: token=[REDACTED] pass=[REDACTED]" {
		t.Errorf("the model saw %q", got)
	}
	if res.Answer != "The password is [REDACTED]." {
		t.Errorf("answer %q", res.Answer)
	}
	for _, m := range res.Transcript {
		for _, b := range m.Content {
			s := fmt.Sprintf("%s %+v %+v", b.Text, b.ToolUse, b.ToolResult)
			if strings.Contains(s, "hunter2-secret") || strings.Contains(s, "glpat-abc") {
				t.Errorf("transcript leaks a secret: %s", s)
			}
		}
	}
}

func TestRunRefusesDuplicateTools(t *testing.T) {
	_, err := agent.Run(context.Background(), bedrocktest.NewScripted(), []agent.Tool{echo(), echo()}, cfg(), "s", "go")
	if err == nil || !strings.Contains(err.Error(), `two tools are named "echo"`) {
		t.Errorf("error %v", err)
	}
}

func TestPricesLookup(t *testing.T) {
	p := agent.DefaultPrices()
	for id, want := range map[string]float64{
		"us.anthropic.claude-sonnet-4-6":                                                               3,
		"global.anthropic.claude-opus-4-6-v1":                                                          5,
		"eu.anthropic.claude-haiku-4-5-20251001-v1:0":                                                  1,
		"anthropic.claude-opus-4-1-20250805-v1:0":                                                      15,
		"arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0": 3,
	} {
		got, ok := p.Lookup(id)
		if !ok || got.Input != want {
			t.Errorf("Lookup(%s) = %+v %v, want input %v", id, got, ok, want)
		}
	}
	if _, ok := p.Lookup("meta.llama3"); ok {
		t.Error("unknown model has a price")
	}
}
