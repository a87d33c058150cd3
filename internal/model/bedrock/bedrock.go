// Package bedrock is an agent.Model over the Amazon Bedrock Converse API.
//
// Tool schemas go to the SDK as map[string]any inside a lazy document (a
// json.RawMessage would be sent as base64 bytes, which Bedrock rejects), and
// tool inputs come back through MarshalSmithyDocument (json.Marshal of the
// document yields {}).
package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithydoc "github.com/aws/smithy-go/document"

	"gitlab.com/agentbot/agentbot/internal/agent"
)

// Defaults for Options' zero fields.
const (
	// DefaultModel is the base id of the default model, Claude Sonnet 4.6;
	// DefaultModelID puts the region's cross-region inference profile
	// prefix in front of it.
	DefaultModel           = "anthropic.claude-sonnet-4-6"
	DefaultMaxOutputTokens = 8192
	DefaultMaxAttempts     = 8
	DefaultMaxBackoff      = 20 * time.Second
	// conversationCacheFrom is the conversation length from which a cache
	// point is also put on the latest user message.
	conversationCacheFrom = 3
)

// DefaultModelID is the default model id for region: Claude Sonnet 4.6
// through the cross-region inference profile of the region's geography
// (us., eu., jp.), or the global one elsewhere. Claude 4.x models are only
// served on demand through inference profiles.
func DefaultModelID(region string) string {
	switch {
	case strings.HasPrefix(region, "us-") && !strings.HasPrefix(region, "us-gov-"):
		return "us." + DefaultModel
	case strings.HasPrefix(region, "eu-"):
		return "eu." + DefaultModel
	case region == "ap-northeast-1" || region == "ap-northeast-3":
		return "jp." + DefaultModel
	default:
		return "global." + DefaultModel
	}
}

// Options configure a Model.
type Options struct {
	ModelID string
	// MaxOutputTokens bounds one answer (inferenceConfig.maxTokens).
	MaxOutputTokens int
	// PromptCache puts cache points after the system prompt, after the tool
	// list and, in longer conversations, after the latest user message.
	// Turn it off for models without prompt caching.
	PromptCache bool
	// BaseEndpoint overrides the endpoint (a VPC endpoint, a proxy, a test
	// fake). Empty keeps the SDK's resolution, which honours
	// AWS_ENDPOINT_URL_BEDROCK_RUNTIME.
	BaseEndpoint string
	// MaxAttempts is how often a throttled or failed call is tried (default 8).
	MaxAttempts int
	// MaxBackoff caps the jittered exponential wait between attempts
	// (default 20s).
	MaxBackoff time.Duration
}

// Model calls Converse. It is safe for concurrent use.
type Model struct {
	client *bedrockruntime.Client
	opts   Options
	region string
}

var _ agent.Model = (*Model)(nil)

// New builds a Model from an AWS configuration (region, credentials, HTTP
// client, shared-config settings all come from cfg).
func New(cfg aws.Config, o Options) (*Model, error) {
	if o.ModelID == "" {
		o.ModelID = DefaultModelID(cfg.Region)
	}
	if o.MaxOutputTokens <= 0 {
		o.MaxOutputTokens = DefaultMaxOutputTokens
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Region == "" {
		return nil, errors.New("bedrock: no AWS region (set AWS_REGION)")
	}
	client := bedrockruntime.NewFromConfig(cfg, func(co *bedrockruntime.Options) {
		if o.BaseEndpoint != "" {
			co.BaseEndpoint = aws.String(o.BaseEndpoint)
		}
		co.Retryer = newRetryer(o.MaxAttempts, o.MaxBackoff)
	})
	return &Model{client: client, opts: o, region: cfg.Region}, nil
}

// newRetryer retries throttling and transient failures with jittered
// exponential backoff. It does not use the SDK's client-side retry quota:
// a long agent run must not give up because earlier calls were throttled.
func newRetryer(attempts int, maxBackoff time.Duration) aws.Retryer {
	r := retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = attempts
		so.MaxBackoff = maxBackoff
		so.Backoff = retry.NewExponentialJitterBackoff(maxBackoff)
		so.RateLimiter = ratelimit.None
	})
	return retry.AddWithErrorCodes(r, "ModelNotReadyException", "ServiceUnavailableException")
}

// ModelID is the model or inference profile this Model calls.
func (m *Model) ModelID() string { return m.opts.ModelID }

// Converse sends one request.
func (m *Model) Converse(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	in, err := m.input(req)
	if err != nil {
		return nil, err
	}
	out, err := m.client.Converse(ctx, in)
	if err != nil {
		return nil, m.explain(err)
	}
	return response(out)
}

func (m *Model) input(req *agent.Request) (*bedrockruntime.ConverseInput, error) {
	in := &bedrockruntime.ConverseInput{
		ModelId:         aws.String(m.opts.ModelID),
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(m.opts.MaxOutputTokens))},
	}
	cache := func() types.CachePointBlock { return types.CachePointBlock{Type: types.CachePointTypeDefault} }
	if req.System != "" {
		in.System = []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: req.System}}
		if m.opts.PromptCache {
			in.System = append(in.System, &types.SystemContentBlockMemberCachePoint{Value: cache()})
		}
	}
	if len(req.Tools) > 0 {
		tools := make([]types.Tool, 0, len(req.Tools)+1)
		for _, t := range req.Tools {
			schema := t.InputSchema
			if schema == nil {
				schema = map[string]any{"type": "object", "properties": map[string]any{}}
			}
			tools = append(tools, &types.ToolMemberToolSpec{Value: types.ToolSpecification{
				Name:        aws.String(t.Name),
				Description: aws.String(t.Description),
				InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(docValue(schema))},
			}})
		}
		if m.opts.PromptCache {
			tools = append(tools, &types.ToolMemberCachePoint{Value: cache()})
		}
		in.ToolConfig = &types.ToolConfiguration{Tools: tools}
	}
	in.Messages = make([]types.Message, 0, len(req.Messages))
	lastUser := -1
	for i, msg := range req.Messages {
		bm, err := message(msg)
		if err != nil {
			return nil, fmt.Errorf("bedrock: message %d: %w", i, err)
		}
		if msg.Role == agent.RoleUser {
			lastUser = i
		}
		in.Messages = append(in.Messages, bm)
	}
	if m.opts.PromptCache && lastUser >= 0 && len(req.Messages) >= conversationCacheFrom {
		bm := &in.Messages[lastUser]
		bm.Content = append(bm.Content, &types.ContentBlockMemberCachePoint{Value: cache()})
	}
	return in, nil
}

func message(msg agent.Message) (types.Message, error) {
	bm := types.Message{Role: types.ConversationRole(msg.Role), Content: make([]types.ContentBlock, 0, len(msg.Content))}
	for _, b := range msg.Content {
		switch {
		case b.ToolUse != nil:
			var v any = map[string]any{}
			if len(bytes.TrimSpace(b.ToolUse.Input)) > 0 {
				d, err := decodeJSON(b.ToolUse.Input)
				if _, isObject := d.(map[string]any); err == nil && isObject {
					v = d
				} else {
					// Input that is not a JSON object: replay it as a string
					// so that the conversation stays valid.
					v = map[string]any{"malformed_input": string(b.ToolUse.Input)}
				}
			}
			bm.Content = append(bm.Content, &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
				ToolUseId: aws.String(b.ToolUse.ID),
				Name:      aws.String(b.ToolUse.Name),
				Input:     document.NewLazyDocument(v),
			}})
		case b.ToolResult != nil:
			content := b.ToolResult.Content
			if content == "" {
				content = "(empty result)" // Bedrock rejects blank text blocks
			}
			r := types.ToolResultBlock{
				ToolUseId: aws.String(b.ToolResult.ToolUseID),
				Content:   []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: content}},
			}
			if b.ToolResult.IsError {
				r.Status = types.ToolResultStatusError
			}
			bm.Content = append(bm.Content, &types.ContentBlockMemberToolResult{Value: r})
		case strings.TrimSpace(b.Text) != "":
			bm.Content = append(bm.Content, &types.ContentBlockMemberText{Value: b.Text})
		}
	}
	if len(bm.Content) == 0 {
		bm.Content = append(bm.Content, &types.ContentBlockMemberText{Value: "(empty)"})
	}
	return bm, nil
}

func response(out *bedrockruntime.ConverseOutput) (*agent.Response, error) {
	resp := &agent.Response{
		StopReason: agent.StopReason(out.StopReason),
		Message:    agent.Message{Role: agent.RoleAssistant},
	}
	if u := out.Usage; u != nil {
		resp.Usage = agent.Usage{
			InputTokens:      int(aws.ToInt32(u.InputTokens)),
			OutputTokens:     int(aws.ToInt32(u.OutputTokens)),
			CacheReadTokens:  int(aws.ToInt32(u.CacheReadInputTokens)),
			CacheWriteTokens: int(aws.ToInt32(u.CacheWriteInputTokens)),
		}
	}
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok {
		return resp, nil
	}
	for _, c := range msg.Value.Content {
		switch c := c.(type) {
		case *types.ContentBlockMemberText:
			resp.Message.Content = append(resp.Message.Content, agent.Block{Text: c.Value})
		case *types.ContentBlockMemberToolUse:
			input := json.RawMessage("{}")
			if c.Value.Input != nil {
				b, err := c.Value.Input.MarshalSmithyDocument()
				if err != nil {
					return nil, fmt.Errorf("bedrock: reading the input of tool call %s: %w", aws.ToString(c.Value.Name), err)
				}
				input = b
			}
			resp.Message.Content = append(resp.Message.Content, agent.Block{ToolUse: &agent.ToolUse{
				ID:    aws.ToString(c.Value.ToolUseId),
				Name:  aws.ToString(c.Value.Name),
				Input: input,
			}})
		}
	}
	return resp, nil
}

// decodeJSON decodes keeping numbers exact, as smithy document numbers.
func decodeJSON(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return docValue(v), nil
}

// docValue converts what encoding/json produces (and json.RawMessage) into
// values the smithy document encoder writes as JSON: json.Number would
// otherwise be written as a string and RawMessage as base64.
func docValue(v any) any {
	switch v := v.(type) {
	case json.Number:
		return smithydoc.Number(v.String())
	case json.RawMessage:
		d, err := decodeJSON(v)
		if err != nil {
			return string(v)
		}
		return d
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = docValue(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = docValue(e)
		}
		return out
	default:
		return v
	}
}
