// Package bedrocktest is a wire-level fake of the Bedrock Converse API
// (POST /model/{modelId}/converse) for the real AWS SDK, pointed at it
// through BaseEndpoint with static credentials. Each test scripts the
// model's answers; the fake checks what the SDK sent (schemas are JSON
// objects, cache points are where they belong, every tool result answers a
// tool use of the previous assistant turn) and records every request.
package bedrocktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Turn is one scripted answer: a message (Text and/or ToolUses) or an Error.
type Turn struct {
	Text     string
	ToolUses []ToolUse
	// StopReason defaults to tool_use when there are ToolUses, else end_turn.
	StopReason string
	Usage      Usage
	// Error, if set, is answered instead of a message.
	Error *Error
	// Hold makes the fake answer only once the client has gone away (its
	// context ended): a model that never answers in time.
	Hold bool
}

// ToolUse is a tool call in a scripted answer. Input is marshalled to JSON
// (a json.RawMessage is used as is).
type ToolUse struct {
	ID    string // default tooluse_<n>
	Name  string
	Input any
}

// Usage is the token count reported with an answer.
type Usage struct {
	Input, Output, CacheRead, CacheWrite int
}

// Error is a Bedrock error answer.
type Error struct {
	Status  int
	Type    string // x-amzn-ErrorType, e.g. ThrottlingException
	Message string
}

// Error answers Bedrock gives; the messages are Bedrock's.
func Throttle() Turn {
	return Turn{Error: &Error{Status: 429, Type: "ThrottlingException", Message: "Too many requests, please wait before trying again."}}
}

func AccessDenied() Turn {
	return Turn{Error: &Error{Status: 403, Type: "AccessDeniedException", Message: "You don't have access to the model with the specified model ID."}}
}

func ModelNotFound() Turn {
	return Turn{Error: &Error{Status: 404, Type: "ResourceNotFoundException", Message: "Model use case details have not been submitted for this account."}}
}

func InvalidModel() Turn {
	return Turn{Error: &Error{Status: 400, Type: "ValidationException", Message: "The provided model identifier is invalid."}}
}

// Reply is a final answer: text and end_turn.
func Reply(text string) Turn { return Turn{Text: text, Usage: Usage{Input: 100, Output: 20}} }

// Call is an answer that asks for one tool.
func Call(name string, input any) Turn {
	return Turn{ToolUses: []ToolUse{{Name: name, Input: input}}, Usage: Usage{Input: 100, Output: 20}}
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	srv  *httptest.Server
	next func(*Request) Turn

	mu          sync.Mutex
	turns       []Turn
	requests    []*Request
	problems    []string
	expectCache *bool
	ids         int
}

// New starts a fake answering turns in order, closed (and its problems
// reported as test errors) when the test ends.
func New(t testing.TB, turns ...Turn) *Server {
	t.Helper()
	s := Start(turns...)
	t.Cleanup(func() {
		s.Close()
		for _, p := range s.Problems() {
			t.Errorf("bedrocktest: %s", p)
		}
	})
	return s
}

// NewFunc is New with answers computed per request.
func NewFunc(t testing.TB, next func(*Request) Turn) *Server {
	t.Helper()
	s := New(t)
	s.next = next
	return s
}

// Start starts a fake outside a test (agentbot demo); Close it when done.
func Start(turns ...Turn) *Server {
	s := &Server{turns: turns}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the endpoint to give the SDK as BaseEndpoint.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// ExpectCache makes the fake check for cache points (true) or their
// absence (false).
func (s *Server) ExpectCache(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expectCache = &on
}

// Requests returns the requests received so far.
func (s *Server) Requests() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Request(nil), s.requests...)
}

// Problems returns what the fake found wrong in the requests.
func (s *Server) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// AWSConfig is an aws.Config with static credentials and region us-east-1;
// give the client BaseEndpoint = s.URL().
func (s *Server) AWSConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKEFAKEFAKE", "fake-secret", ""),
		HTTPClient:  s.srv.Client(),
	}
}

// Request is one request as received.
type Request struct {
	ModelID string
	Header  http.Header
	Body    []byte
	Parsed  ConverseRequest
}

// ConverseRequest is the wire shape of a Converse request body.
type ConverseRequest struct {
	Messages   []Message     `json:"messages"`
	System     []SystemBlock `json:"system"`
	ToolConfig *struct {
		Tools []WireTool `json:"tools"`
	} `json:"toolConfig"`
	InferenceConfig *struct {
		MaxTokens int `json:"maxTokens"`
	} `json:"inferenceConfig"`
}

type Message struct {
	Role    string  `json:"role"`
	Content []Block `json:"content"`
}

type Block struct {
	Text       *string     `json:"text"`
	ToolUse    *WireUse    `json:"toolUse"`
	ToolResult *WireResult `json:"toolResult"`
	CachePoint *CachePoint `json:"cachePoint"`
}

type WireUse struct {
	ToolUseID string          `json:"toolUseId"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
}

type WireResult struct {
	ToolUseID string `json:"toolUseId"`
	Status    string `json:"status"`
	Content   []struct {
		Text *string         `json:"text"`
		JSON json.RawMessage `json:"json"`
	} `json:"content"`
}

type CachePoint struct {
	Type string `json:"type"`
}

type SystemBlock struct {
	Text       *string     `json:"text"`
	CachePoint *CachePoint `json:"cachePoint"`
}

type WireTool struct {
	ToolSpec *struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		InputSchema struct {
			JSON json.RawMessage `json:"json"`
		} `json:"inputSchema"`
	} `json:"toolSpec"`
	CachePoint *CachePoint `json:"cachePoint"`
}

// ToolNames lists the tools offered.
func (r *Request) ToolNames() []string {
	var out []string
	if r.Parsed.ToolConfig != nil {
		for _, t := range r.Parsed.ToolConfig.Tools {
			if t.ToolSpec != nil {
				out = append(out, t.ToolSpec.Name)
			}
		}
	}
	return out
}

// CachePoints counts cache points in the system prompt, the tool list and
// the messages.
func (r *Request) CachePoints() (system, tools, messages int) {
	for _, b := range r.Parsed.System {
		if b.CachePoint != nil {
			system++
		}
	}
	if r.Parsed.ToolConfig != nil {
		for _, t := range r.Parsed.ToolConfig.Tools {
			if t.CachePoint != nil {
				tools++
			}
		}
	}
	for _, m := range r.Parsed.Messages {
		for _, b := range m.Content {
			if b.CachePoint != nil {
				messages++
			}
		}
	}
	return
}

// ToolResults are the tool results in the last message, by tool-use id.
func (r *Request) ToolResults() map[string]string {
	out := map[string]string{}
	if n := len(r.Parsed.Messages); n > 0 {
		for _, b := range r.Parsed.Messages[n-1].Content {
			if b.ToolResult != nil {
				var sb strings.Builder
				for _, c := range b.ToolResult.Content {
					if c.Text != nil {
						sb.WriteString(*c.Text)
					}
				}
				if b.ToolResult.Status == "error" {
					out[b.ToolResult.ToolUseID] = "ERROR: " + sb.String()
				} else {
					out[b.ToolResult.ToolUseID] = sb.String()
				}
			}
		}
	}
	return out
}

// LastText is the text of the last message.
func (r *Request) LastText() string {
	var sb strings.Builder
	if n := len(r.Parsed.Messages); n > 0 {
		for _, b := range r.Parsed.Messages[n-1].Content {
			if b.Text != nil {
				sb.WriteString(*b.Text)
			}
		}
	}
	return sb.String()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := &Request{Header: r.Header.Clone(), Body: body}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	path := r.URL.EscapedPath()
	if r.Method != http.MethodPost || !strings.HasPrefix(path, "/model/") || !strings.HasSuffix(path, "/converse") {
		bad("unexpected request %s %s", r.Method, path)
	} else {
		id, err := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(path, "/model/"), "/converse"))
		if err != nil || id == "" {
			bad("bad model id in path %s", path)
		}
		req.ModelID = id
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		bad("request is not SigV4-signed (Authorization %q)", r.Header.Get("Authorization"))
	}
	if err := json.Unmarshal(body, &req.Parsed); err != nil {
		bad("body is not a Converse request: %v", err)
	} else {
		s.mu.Lock()
		expect := s.expectCache
		s.mu.Unlock()
		problems = append(problems, check(&req.Parsed, expect)...)
	}

	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.problems = append(s.problems, problems...)
	n := len(s.requests)
	var turn Turn
	var ok bool
	if s.next != nil && len(problems) == 0 {
		s.mu.Unlock()
		turn, ok = s.next(req), true
		s.mu.Lock()
	} else if len(s.turns) > 0 && len(problems) == 0 {
		turn, s.turns, ok = s.turns[0], s.turns[1:], true
	}
	if ok {
		for i := range turn.ToolUses {
			if turn.ToolUses[i].ID == "" {
				s.ids++
				turn.ToolUses[i].ID = fmt.Sprintf("tooluse_%d", s.ids)
			}
		}
	}
	if !ok && len(problems) == 0 {
		s.problems = append(s.problems, fmt.Sprintf("request %d: the script has no answer left", n))
	}
	s.mu.Unlock()

	switch {
	case len(problems) > 0:
		writeError(w, &Error{Status: 400, Type: "ValidationException", Message: "bedrocktest: " + strings.Join(problems, "; ")})
	case !ok:
		writeError(w, &Error{Status: 500, Type: "InternalServerException", Message: "bedrocktest: the script has no answer left"})
	case turn.Hold:
		<-r.Context().Done()
	case turn.Error != nil:
		writeError(w, turn.Error)
	default:
		writeTurn(w, turn)
	}
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", e.Type)
	w.Header().Set("X-Amzn-Requestid", "bedrocktest-request")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": e.Message})
}

func writeTurn(w http.ResponseWriter, t Turn) {
	content := []map[string]any{}
	if t.Text != "" {
		content = append(content, map[string]any{"text": t.Text})
	}
	for _, u := range t.ToolUses {
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
		content = append(content, map[string]any{"toolUse": map[string]any{"toolUseId": u.ID, "name": u.Name, "input": input}})
	}
	stop := t.StopReason
	if stop == "" {
		stop = "end_turn"
		if len(t.ToolUses) > 0 {
			stop = "tool_use"
		}
	}
	u := t.Usage
	body := map[string]any{
		"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
		"stopReason": stop,
		"usage": map[string]any{
			"inputTokens": u.Input, "outputTokens": u.Output,
			"totalTokens":          u.Input + u.Output + u.CacheRead + u.CacheWrite,
			"cacheReadInputTokens": u.CacheRead, "cacheWriteInputTokens": u.CacheWrite,
		},
		"metrics": map[string]any{"latencyMs": 1},
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Requestid", "bedrocktest-request")
	_ = json.NewEncoder(w).Encode(body)
}

// check returns what Bedrock would reject, or what agentbot should not send.
func check(r *ConverseRequest, expectCache *bool) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if r.ToolConfig != nil {
		if len(r.ToolConfig.Tools) == 0 {
			bad("toolConfig has no tools")
		}
		for i, t := range r.ToolConfig.Tools {
			if t.ToolSpec == nil {
				continue
			}
			js := bytes.TrimSpace(t.ToolSpec.InputSchema.JSON)
			var obj map[string]any
			if len(js) == 0 || js[0] != '{' || json.Unmarshal(js, &obj) != nil {
				bad("tool %d (%s): inputSchema.json is not a JSON object: %.60s", i, t.ToolSpec.Name, js)
			} else if obj["type"] != "object" {
				bad("tool %d (%s): inputSchema.json has type %v, want object", i, t.ToolSpec.Name, obj["type"])
			}
			if t.ToolSpec.Name == "" {
				bad("tool %d has no name", i)
			}
		}
	}
	for i, b := range r.System {
		if b.Text != nil && strings.TrimSpace(*b.Text) == "" {
			bad("system block %d is blank", i)
		}
	}

	if len(r.Messages) == 0 {
		bad("no messages")
	}
	prevUses := map[string]bool{}
	for i, m := range r.Messages {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if m.Role != want {
			bad("message %d has role %q, want %q (roles must alternate, starting with user)", i, m.Role, want)
		}
		if len(m.Content) == 0 {
			bad("message %d has no content", i)
		}
		uses := map[string]bool{}
		answered := map[string]bool{}
		for j, b := range m.Content {
			switch {
			case b.Text != nil:
				if strings.TrimSpace(*b.Text) == "" {
					bad("message %d block %d: blank text", i, j)
				}
			case b.ToolUse != nil:
				if m.Role != "assistant" {
					bad("message %d: toolUse in a %s message", i, m.Role)
				}
				in := bytes.TrimSpace(b.ToolUse.Input)
				if len(in) == 0 || in[0] != '{' {
					bad("message %d: toolUse %s input is not a JSON object: %.60s", i, b.ToolUse.ToolUseID, in)
				}
				uses[b.ToolUse.ToolUseID] = true
			case b.ToolResult != nil:
				id := b.ToolResult.ToolUseID
				if !prevUses[id] {
					bad("message %d: toolResult %q answers no toolUse of the previous assistant message", i, id)
				}
				if answered[id] {
					bad("message %d: toolResult %q given twice", i, id)
				}
				answered[id] = true
				if len(b.ToolResult.Content) == 0 {
					bad("message %d: toolResult %q has no content", i, id)
				}
			}
		}
		if m.Role == "user" {
			for id := range prevUses {
				if !answered[id] {
					bad("message %d: toolUse %q of the previous assistant message has no toolResult", i, id)
				}
			}
		}
		prevUses = uses
	}

	sys, tools, msgs := (&Request{Parsed: *r}).CachePoints()
	if sys+tools+msgs > 4 {
		bad("%d cache points; Bedrock allows at most 4", sys+tools+msgs)
	}
	if expectCache != nil {
		if *expectCache {
			if len(r.System) > 0 && sys == 0 {
				bad("prompt caching on but no cache point after the system prompt")
			}
			if r.ToolConfig != nil && tools == 0 {
				bad("prompt caching on but no cache point after the tools")
			}
			if len(r.Messages) >= 3 && msgs == 0 {
				bad("prompt caching on but no cache point in a conversation of %d messages", len(r.Messages))
			}
		} else if sys+tools+msgs > 0 {
			bad("prompt caching off but the request has %d cache points", sys+tools+msgs)
		}
	}
	return p
}
