package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/config"
)

func env(m map[string]string) config.Getenv { return func(k string) string { return m[k] } }

func TestLoadAgentDefaults(t *testing.T) {
	a, err := config.LoadAgent(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if a.ModelID != "" || !a.PromptCache || a.MaxTurns != 25 || a.RunTimeout != 15*time.Minute ||
		a.ToolTimeout != 2*time.Minute || a.MaxToolResult != 100_000 || a.Parallelism != 4 ||
		strings.Join(a.WriteAllow, ",") != "output/**" || a.MaxFileBytes != 1<<20 || a.MaxTotalBytes != 10<<20 ||
		a.BypassToolConsent || a.Price.Set() || a.MaxOutputTokens != 8192 || a.MaxTokens != 3_000_000 {
		t.Errorf("defaults: %+v", a)
	}
}

func TestLoadAgentSettings(t *testing.T) {
	promptFile := filepath.Join(t.TempDir(), "system.md")
	if err := os.WriteFile(promptFile, []byte("Be brief."), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := config.LoadAgent(env(map[string]string{
		"MODEL_ID":                         "eu.anthropic.claude-opus-4-6-v1",
		"MODEL_PROMPT_CACHE":               "false",
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "https://vpce-1.bedrock-runtime.eu-west-1.vpce.amazonaws.com",
		"AGENTBOT_MAX_TURNS":               "40",
		"AGENTBOT_MAX_TOOL_RESULT":         "64KiB",
		"AGENTBOT_WRITE_ALLOW":             "output/**, reports/*.md",
		"BYPASS_TOOL_CONSENT":              "true",
		"AGENTBOT_SYSTEM_PROMPT_FILE":      promptFile,
		"AGENTBOT_PRICE_INPUT":             "2.5",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if a.ModelID != "eu.anthropic.claude-opus-4-6-v1" || a.PromptCache || a.MaxTurns != 40 || a.MaxToolResult != 64<<10 ||
		strings.Join(a.WriteAllow, ",") != "output/**,reports/*.md" || !a.BypassToolConsent || a.SystemPrompt != "Be brief." ||
		a.Price.Input != 2.5 || a.Price.Output != -1 || !a.Price.Set() || !strings.HasPrefix(a.BedrockEndpoint, "https://vpce-1") {
		t.Errorf("settings: %+v", a)
	}
}

func TestLoadAgentProblemsNameTheVariable(t *testing.T) {
	_, err := config.LoadAgent(env(map[string]string{
		"AGENTBOT_MAX_TURNS":               "0",
		"AGENTBOT_RUN_TIMEOUT":             "soon",
		"AGENTBOT_WRITE_ALLOW":             "../up/**,/abs",
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "not a url",
		"MODEL_PROMPT_CACHE":               "maybe",
		"AGENTBOT_SYSTEM_PROMPT":           "x",
		"AGENTBOT_SYSTEM_PROMPT_FILE":      "/nonexistent",
		"AGENTBOT_PRICE_OUTPUT":            "-3",
	}))
	var p config.Problems
	if !errors.As(err, &p) {
		t.Fatalf("error %v", err)
	}
	for _, name := range []string{"AGENTBOT_MAX_TURNS", "AGENTBOT_RUN_TIMEOUT", `"../up/**"`, `"/abs"`,
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "MODEL_PROMPT_CACHE", "AGENTBOT_SYSTEM_PROMPT_FILE", "AGENTBOT_PRICE_OUTPUT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("problems do not name %s:\n%v", name, err)
		}
	}
}
