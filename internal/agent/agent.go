// Package agent is a model-agnostic tool loop: it sends the conversation to a
// Model, runs the tools the model asks for, feeds the results back, and stops
// when the model is done or a limit is reached.
package agent

import (
	"context"
	"encoding/json"
)

// Role says who wrote a message.
type Role string

const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// StopReason is why the model stopped answering.
type StopReason string

const (
	StopEndTurn     StopReason = "end_turn"
	StopToolUse     StopReason = "tool_use"
	StopMaxTokens   StopReason = "max_tokens"
	StopSequence    StopReason = "stop_sequence"
	StopGuardrail   StopReason = "guardrail_intervened"
	StopContentFilt StopReason = "content_filtered"
)

// Message is one turn of the conversation.
type Message struct {
	Role    Role
	Content []Block
}

// Block is one piece of a message; exactly one field is set.
type Block struct {
	Text       string
	ToolUse    *ToolUse
	ToolResult *ToolResult
}

// ToolUse is the model asking for a tool call.
type ToolUse struct {
	ID    string
	Name  string
	Input json.RawMessage
}

// ToolResult answers one ToolUse.
type ToolResult struct {
	ToolUseID string
	Content   string
	IsError   bool
}

// ToolSpec describes a tool to the model. InputSchema is a JSON Schema object.
type ToolSpec struct {
	Name        string
	Description string
	InputSchema map[string]any
}

// Usage counts tokens.
type Usage struct {
	InputTokens      int
	OutputTokens     int
	CacheReadTokens  int
	CacheWriteTokens int
}

// Request is what the loop sends to the model each turn.
type Request struct {
	System   string
	Messages []Message
	Tools    []ToolSpec
}

// Response is the model's answer to one Request.
type Response struct {
	Message    Message
	StopReason StopReason
	Usage      Usage
}

// Model is a chat model that can ask for tools.
type Model interface {
	Converse(ctx context.Context, req *Request) (*Response, error)
}

// Tool is something the model can call.
type Tool interface {
	Spec() ToolSpec
	// Call runs the tool. A failure the model should see is returned as
	// (message, true); Call never panics on bad input.
	Call(ctx context.Context, input json.RawMessage) (result string, isError bool)
}
