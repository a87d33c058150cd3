package config

import (
	"fmt"
	"os"
	"path"
	"strings"
	"time"
)

// Agent is how the agent runs: which model, its limits, and what its file
// tools may write. The AWS region and credentials are in AWS (aws.go).
type Agent struct {
	// ModelID is MODEL_ID: a Bedrock model id or inference profile id/ARN.
	// Empty means the default for the region (Claude Sonnet 4.6 through the
	// region's cross-region profile), chosen by the model package.
	ModelID string
	// PromptCache is MODEL_PROMPT_CACHE (default true).
	PromptCache bool
	// MaxOutputTokens is MODEL_MAX_OUTPUT_TOKENS, one answer's limit (8192).
	MaxOutputTokens int
	// BedrockEndpoint is AWS_ENDPOINT_URL_BEDROCK_RUNTIME, else
	// AWS_ENDPOINT_URL: a VPC endpoint or proxy (or a test fake).
	BedrockEndpoint string
	// IMDSDisabled is AWS_EC2_METADATA_DISABLED: never ask the EC2 instance
	// metadata service for credentials.
	IMDSDisabled bool

	MaxTurns      int           // AGENTBOT_MAX_TURNS (25)
	MaxTokens     int           // AGENTBOT_MAX_TOKENS, whole run incl. cache tokens (3,000,000; 0 = none)
	RunTimeout    time.Duration // AGENTBOT_RUN_TIMEOUT (15m)
	ToolTimeout   time.Duration // AGENTBOT_TOOL_TIMEOUT (2m)
	MaxToolResult int           // AGENTBOT_MAX_TOOL_RESULT, bytes of one tool result (100000)
	Parallelism   int           // AGENTBOT_TOOL_PARALLELISM (4)

	WriteAllow        []string // AGENTBOT_WRITE_ALLOW, comma-separated globs (output/**)
	MaxFileBytes      int64    // AGENTBOT_MAX_FILE_BYTES (1MiB)
	MaxTotalBytes     int64    // AGENTBOT_MAX_TOTAL_BYTES (10MiB)
	AllowBinary       bool     // AGENTBOT_ALLOW_BINARY (false)
	BypassToolConsent bool     // BYPASS_TOOL_CONSENT (false)

	// SystemPrompt is AGENTBOT_SYSTEM_PROMPT or the contents of
	// AGENTBOT_SYSTEM_PROMPT_FILE; empty means the built-in prompt.
	SystemPrompt string

	// Price overrides the model's price (US dollars per million tokens) for
	// the cost estimate: AGENTBOT_PRICE_INPUT, _OUTPUT, _CACHE_READ,
	// _CACHE_WRITE. A negative field was not set.
	Price Price
}

// Price is a price override; negative fields are unset.
type Price struct {
	Input, Output, CacheRead, CacheWrite float64
}

// Set reports whether any field was given.
func (p Price) Set() bool {
	return p.Input >= 0 || p.Output >= 0 || p.CacheRead >= 0 || p.CacheWrite >= 0
}

// LoadAgent reads the agent's settings.
func LoadAgent(get Getenv) (Agent, error) {
	r := newReader(get)
	a := Agent{
		ModelID:         r.str("MODEL_ID", ""),
		PromptCache:     r.bool("MODEL_PROMPT_CACHE", true),
		MaxOutputTokens: r.int("MODEL_MAX_OUTPUT_TOKENS", 8192, 1),
		BedrockEndpoint: r.str("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", r.str("AWS_ENDPOINT_URL", "")),
		IMDSDisabled:    r.bool("AWS_EC2_METADATA_DISABLED", false),

		MaxTurns:      r.int("AGENTBOT_MAX_TURNS", 25, 1),
		MaxTokens:     r.int("AGENTBOT_MAX_TOKENS", 3_000_000, 0),
		RunTimeout:    r.duration("AGENTBOT_RUN_TIMEOUT", 15*time.Minute),
		ToolTimeout:   r.duration("AGENTBOT_TOOL_TIMEOUT", 2*time.Minute),
		MaxToolResult: int(r.bytes("AGENTBOT_MAX_TOOL_RESULT", 100_000)),
		Parallelism:   r.int("AGENTBOT_TOOL_PARALLELISM", 4, 1),

		WriteAllow:        r.list("AGENTBOT_WRITE_ALLOW", []string{"output/**"}),
		MaxFileBytes:      r.bytes("AGENTBOT_MAX_FILE_BYTES", 1<<20),
		MaxTotalBytes:     r.bytes("AGENTBOT_MAX_TOTAL_BYTES", 10<<20),
		AllowBinary:       r.bool("AGENTBOT_ALLOW_BINARY", false),
		BypassToolConsent: r.bool("BYPASS_TOOL_CONSENT", false),

		Price: Price{
			Input:      r.optFloat("AGENTBOT_PRICE_INPUT"),
			Output:     r.optFloat("AGENTBOT_PRICE_OUTPUT"),
			CacheRead:  r.optFloat("AGENTBOT_PRICE_CACHE_READ"),
			CacheWrite: r.optFloat("AGENTBOT_PRICE_CACHE_WRITE"),
		},
	}
	if a.BedrockEndpoint != "" && !validEndpointURL(a.BedrockEndpoint) {
		r.problem("AWS_ENDPOINT_URL_BEDROCK_RUNTIME=%q: want an http(s) URL", a.BedrockEndpoint)
	}
	if strings.ContainsAny(a.ModelID, " \t\n/") && !strings.HasPrefix(a.ModelID, "arn:") {
		r.problem("MODEL_ID=%q: want a model or inference profile id such as us.anthropic.claude-sonnet-4-6, or an ARN", a.ModelID)
	}
	for _, g := range a.WriteAllow {
		if err := checkGlob(g); err != "" {
			r.problem("AGENTBOT_WRITE_ALLOW: glob %q %s", g, err)
		}
	}
	prompt, file := r.str("AGENTBOT_SYSTEM_PROMPT", ""), r.str("AGENTBOT_SYSTEM_PROMPT_FILE", "")
	switch {
	case prompt != "" && file != "":
		r.problem("AGENTBOT_SYSTEM_PROMPT and AGENTBOT_SYSTEM_PROMPT_FILE are both set: keep one")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			r.problem("AGENTBOT_SYSTEM_PROMPT_FILE=%q: %v", file, err)
		} else if strings.TrimSpace(string(b)) == "" {
			r.problem("AGENTBOT_SYSTEM_PROMPT_FILE=%q is empty", file)
		}
		a.SystemPrompt = string(b)
	default:
		a.SystemPrompt = prompt
	}
	return a, r.err()
}

// optFloat reads a non-negative number, or -1 when the variable is unset.
func (r *reader) optFloat(name string) float64 {
	if r.str(name, "") == "" {
		return -1
	}
	return r.float(name, -1)
}

// checkGlob returns why a write-allow glob is unusable, or "".
func checkGlob(g string) string {
	if strings.HasPrefix(g, "/") {
		return "must be relative to the repository root"
	}
	for _, seg := range strings.Split(g, "/") {
		switch {
		case seg == "" || seg == "." || seg == "..":
			return `has an empty, "." or ".." segment`
		case seg == "**":
		default:
			if _, err := path.Match(seg, ""); err != nil {
				return fmt.Sprintf("is malformed: %v", err)
			}
		}
	}
	return ""
}
