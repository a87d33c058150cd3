package bedrock_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

func newModel(t *testing.T, fake *bedrocktest.Server, o bedrock.Options) *bedrock.Model {
	t.Helper()
	o.BaseEndpoint = fake.URL()
	if o.MaxBackoff == 0 {
		o.MaxBackoff = time.Millisecond
	}
	m, err := bedrock.New(fake.AWSConfig(), o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var quoteSpec = agent.ToolSpec{
	Name:        "quote",
	Description: "Latest quote for a ticker.",
	InputSchema: map[string]any{
		"type":       "object",
		"properties": map[string]any{"ticker": map[string]any{"type": "string"}},
		"required":   []string{"ticker"},
	},
}

func TestConverseRoundTrip(t *testing.T) {
	fake := bedrocktest.New(t,
		bedrocktest.Turn{
			Text:     "Looking it up.",
			ToolUses: []bedrocktest.ToolUse{{ID: "tu1", Name: "quote", Input: map[string]any{"ticker": "AAPL", "n": 12345678901234567}}},
			Usage:    bedrocktest.Usage{Input: 10, Output: 5, CacheRead: 7, CacheWrite: 3},
		},
	)
	fake.ExpectCache(true)
	m := newModel(t, fake, bedrock.Options{ModelID: "us.anthropic.claude-sonnet-4-6", PromptCache: true, MaxOutputTokens: 1000})

	resp, err := m.Converse(context.Background(), &agent.Request{
		System:   "You are terse.",
		Messages: []agent.Message{{Role: agent.RoleUser, Content: []agent.Block{{Text: "quote AAPL"}}}},
		Tools:    []agent.ToolSpec{quoteSpec},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StopReason != agent.StopToolUse {
		t.Errorf("stop reason %q", resp.StopReason)
	}
	want := agent.Usage{InputTokens: 10, OutputTokens: 5, CacheReadTokens: 7, CacheWriteTokens: 3}
	if resp.Usage != want {
		t.Errorf("usage %+v, want %+v", resp.Usage, want)
	}
	if len(resp.Message.Content) != 2 || resp.Message.Content[0].Text != "Looking it up." {
		t.Fatalf("content %+v", resp.Message.Content)
	}
	tu := resp.Message.Content[1].ToolUse
	if tu == nil || tu.ID != "tu1" || tu.Name != "quote" {
		t.Fatalf("tool use %+v", tu)
	}
	if got := string(tu.Input); got != `{"n":12345678901234567,"ticker":"AAPL"}` {
		t.Errorf("tool input %s", got)
	}

	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.ModelID != "us.anthropic.claude-sonnet-4-6" {
		t.Errorf("model id %q", r.ModelID)
	}
	if r.Parsed.InferenceConfig == nil || r.Parsed.InferenceConfig.MaxTokens != 1000 {
		t.Errorf("inference config %+v", r.Parsed.InferenceConfig)
	}
	if sys, tools, msgs := r.CachePoints(); sys != 1 || tools != 1 || msgs != 0 {
		t.Errorf("cache points system=%d tools=%d messages=%d, want 1 1 0", sys, tools, msgs)
	}
	if names := r.ToolNames(); len(names) != 1 || names[0] != "quote" {
		t.Errorf("tools %v", names)
	}
}

// The tool input comes back into the conversation and must reach the wire
// as a JSON object again, numbers intact; results pair with the use's id.
func TestConverseReplaysToolUse(t *testing.T) {
	fake := bedrocktest.New(t, bedrocktest.Reply("AAPL is at 190."))
	fake.ExpectCache(true)
	m := newModel(t, fake, bedrock.Options{ModelID: "m", PromptCache: true})
	_, err := m.Converse(context.Background(), &agent.Request{
		System: "s",
		Tools:  []agent.ToolSpec{quoteSpec},
		Messages: []agent.Message{
			{Role: agent.RoleUser, Content: []agent.Block{{Text: "quote AAPL"}}},
			{Role: agent.RoleAssistant, Content: []agent.Block{{ToolUse: &agent.ToolUse{ID: "tu1", Name: "quote", Input: json.RawMessage(`{"ticker":"AAPL","n":12345678901234567}`)}}}},
			{Role: agent.RoleUser, Content: []agent.Block{{ToolResult: &agent.ToolResult{ToolUseID: "tu1", Content: "190.00", IsError: false}}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := fake.Requests()[0]
	if got := string(r.Parsed.Messages[1].Content[0].ToolUse.Input); !strings.Contains(got, `12345678901234567`) || !strings.Contains(got, `"ticker":"AAPL"`) {
		t.Errorf("replayed input %s", got)
	}
	if got := r.ToolResults()["tu1"]; got != "190.00" {
		t.Errorf("tool result %q", got)
	}
	if _, _, msgs := r.CachePoints(); msgs != 1 {
		t.Errorf("conversation cache points = %d, want 1", msgs)
	}
}

func TestPromptCacheOff(t *testing.T) {
	fake := bedrocktest.New(t, bedrocktest.Reply("ok"))
	fake.ExpectCache(false)
	m := newModel(t, fake, bedrock.Options{ModelID: "m", PromptCache: false})
	if _, err := m.Converse(context.Background(), &agent.Request{
		System:   "s",
		Tools:    []agent.ToolSpec{quoteSpec},
		Messages: []agent.Message{{Role: agent.RoleUser, Content: []agent.Block{{Text: "hi"}}}},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestThrottlingRetried(t *testing.T) {
	fake := bedrocktest.New(t, bedrocktest.Throttle(), bedrocktest.Throttle(), bedrocktest.Reply("finally"))
	m := newModel(t, fake, bedrock.Options{ModelID: "m"})
	resp, err := m.Converse(context.Background(), &agent.Request{Messages: []agent.Message{{Role: agent.RoleUser, Content: []agent.Block{{Text: "hi"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message.Content[0].Text != "finally" || len(fake.Requests()) != 3 {
		t.Errorf("got %+v after %d requests", resp.Message, len(fake.Requests()))
	}
}

func TestErrorsSayWhatToFix(t *testing.T) {
	throttles := make([]bedrocktest.Turn, 3)
	for i := range throttles {
		throttles[i] = bedrocktest.Throttle()
	}
	tests := []struct {
		name     string
		turns    []bedrocktest.Turn
		modelID  string
		region   string
		sentinel error
		mention  []string
	}{
		{"access denied", []bedrocktest.Turn{bedrocktest.AccessDenied()}, "us.anthropic.claude-sonnet-4-6", "us-east-1",
			bedrock.ErrAccessDenied, []string{"bedrock:InvokeModel", "model access"}},
		{"not found", []bedrocktest.Turn{bedrocktest.ModelNotFound()}, "anthropic.claude-x", "us-east-1",
			bedrock.ErrModelNotFound, []string{"MODEL_ID", "us.anthropic.claude-sonnet-4-6"}},
		{"profile of another geography", []bedrocktest.Turn{bedrocktest.InvalidModel()}, "us.anthropic.claude-sonnet-4-6", "eu-west-1",
			bedrock.ErrModelNotFound, []string{"AWS_REGION is eu-west-1", "eu.anthropic.claude-sonnet-4-6"}},
		{"on-demand not supported", []bedrocktest.Turn{{Error: &bedrocktest.Error{Status: 400, Type: "ValidationException",
			Message: "Invocation of model ID anthropic.claude-sonnet-4-6 with on-demand throughput isn't supported. Retry your request with the ID or ARN of an inference profile that contains this model."}}},
			"anthropic.claude-sonnet-4-6", "us-west-2", bedrock.ErrModelNotFound, []string{"inference profile", "us.anthropic.claude-sonnet-4-6"}},
		{"bad credentials", []bedrocktest.Turn{{Error: &bedrocktest.Error{Status: 403, Type: "UnrecognizedClientException", Message: "The security token included in the request is invalid."}}},
			"m", "us-east-1", bedrock.ErrCredentials, []string{"AWS_ACCESS_KEY_ID"}},
		{"throttled to the end", throttles, "m", "us-east-1", bedrock.ErrThrottled, []string{"after 3 attempts", "quota"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := bedrocktest.New(t, tt.turns...)
			cfg := fake.AWSConfig()
			cfg.Region = tt.region
			m, err := bedrock.New(cfg, bedrock.Options{ModelID: tt.modelID, BaseEndpoint: fake.URL(), MaxAttempts: 3, MaxBackoff: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Converse(context.Background(), &agent.Request{Messages: []agent.Message{{Role: agent.RoleUser, Content: []agent.Block{{Text: "hi"}}}}})
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("error %v, want %v", err, tt.sentinel)
			}
			for _, s := range tt.mention {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not mention %q: %v", s, err)
				}
			}
		})
	}
}

func TestDefaultModelID(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1":      "us.anthropic.claude-sonnet-4-6",
		"eu-central-1":   "eu.anthropic.claude-sonnet-4-6",
		"ap-northeast-1": "jp.anthropic.claude-sonnet-4-6",
		"ap-south-1":     "global.anthropic.claude-sonnet-4-6",
		"us-gov-west-1":  "global.anthropic.claude-sonnet-4-6",
	} {
		if got := bedrock.DefaultModelID(region); got != want {
			t.Errorf("DefaultModelID(%s) = %s, want %s", region, got, want)
		}
	}
}
