package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults for Config's zero fields.
const (
	DefaultMaxTurns           = 25
	DefaultToolTimeout        = 2 * time.Minute
	DefaultMaxToolResultBytes = 100_000
	DefaultParallelism        = 4
)

// continuePrompt is sent once when an answer was cut off at the model's
// output token limit.
const continuePrompt = "Your previous answer was cut off because it reached the output token limit. " +
	"Continue exactly where you stopped, without repeating what you already wrote."

// Config bounds and observes one run. The zero value works: every limit has a
// default or is off.
type Config struct {
	// MaxTurns is the most model calls in one run (default 25).
	MaxTurns int
	// MaxTokens is the most tokens (input, output and cache, added up over
	// every turn) the run may use; 0 means no limit.
	MaxTokens int
	// Deadline is the run's wall-clock limit; 0 means only ctx's.
	Deadline time.Duration
	// ToolTimeout bounds one tool call (default 2m).
	ToolTimeout time.Duration
	// MaxToolResultBytes is the most of one tool result the model sees;
	// longer results are cut with a marker saying so (default 100,000).
	MaxToolResultBytes int
	// Parallelism is how many tool calls of one answer run at once (default 4).
	Parallelism int

	// ModelID and Prices give Result.Cost; DefaultPrices when Prices is nil.
	ModelID string
	Prices  Prices

	// Redact removes secrets from tool results (before the model sees them),
	// the answer, the transcript and events. nil leaves text as it is.
	Redact func(string) string
	// Logger gets one debug line per turn and tool call; nil logs nothing.
	Logger *slog.Logger
	// OnEvent, if set, is told about progress: turns, tool calls, the stop.
	// It is called from one goroutine at a time and must return quickly.
	OnEvent func(Event)
	// History is earlier conversation (already redacted), sent before the
	// user's message; it must start with a user message and alternate.
	History []Message
}

// Outcome is why a run ended.
type Outcome string

const (
	OutcomeDone            Outcome = "done"                    // the model finished its answer
	OutcomeMaxTurns        Outcome = "max_turns"               // Config.MaxTurns model calls made
	OutcomeMaxTokensTotal  Outcome = "max_tokens_total"        // Config.MaxTokens used up
	OutcomeDeadline        Outcome = "deadline"                // Config.Deadline or ctx's deadline passed
	OutcomeCanceled        Outcome = "canceled"                // ctx was canceled
	OutcomeGuardrail       Outcome = "guardrail"               // a Bedrock guardrail intervened
	OutcomeContentFiltered Outcome = "content_filtered"        // the model's content filter stopped it
	OutcomeTruncated       Outcome = "output_truncated"        // cut off at the output limit twice
	OutcomeContextWindow   Outcome = "context_window_exceeded" // the conversation outgrew the model
	OutcomeModelError      Outcome = "model_error"             // the model call failed
)

// Result is what a run produced. Run returns one even when it fails.
type Result struct {
	Answer     string  `json:"answer"`
	Outcome    Outcome `json:"stop_reason"`
	Message    string  `json:"message"` // one sentence on why the run stopped
	Usage      Usage   `json:"usage"`
	Cost       float64 `json:"cost_usd"` // estimate; 0 when the model has no known price
	Turns      int     `json:"turns"`
	ToolCalls  int     `json:"tool_calls"`
	ToolErrors int     `json:"tool_errors"`
	Duration   time.Duration
	// Transcript is the conversation of this run (without History), with
	// secrets redacted.
	Transcript []Message `json:"-"`
}

// StopError is Run's error when the run did not finish: a limit, a refusal,
// a model failure. Err is the underlying cause, if any.
type StopError struct {
	Outcome Outcome
	Message string
	Err     error
}

func (e *StopError) Error() string {
	if e.Err != nil && !strings.Contains(e.Message, e.Err.Error()) {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *StopError) Unwrap() error { return e.Err }

// EventKind says what happened.
type EventKind string

const (
	EventTurn       EventKind = "turn"        // a model call is about to start
	EventText       EventKind = "text"        // the model said something (Text)
	EventToolStart  EventKind = "tool_start"  // a tool call started
	EventToolFinish EventKind = "tool_finish" // a tool call finished (IsError, Duration)
	EventStop       EventKind = "stop"        // the run ended (Outcome, Message)
)

// Event is one step of a run, for progress displays. Text fields are
// redacted and short.
type Event struct {
	Kind      EventKind
	Turn      int
	Text      string // EventText: the model's words; tool events: a summary of the input or result
	Tool      string
	ToolUseID string
	IsError   bool
	Duration  time.Duration
	Usage     Usage // running total
	Outcome   Outcome
	Message   string
}

// Run sends userMessage to m with tools and system, runs the tool calls the
// model asks for, and returns when the model is done or a limit is reached.
// The error is nil exactly when Result.Outcome is OutcomeDone; otherwise it
// is a *StopError whose Message is also in Result.Message.
func Run(ctx context.Context, m Model, tools []Tool, cfg Config, system, userMessage string) (*Result, error) {
	l, err := newLoop(m, tools, cfg)
	if err != nil {
		return nil, err
	}
	return l.run(ctx, system, userMessage)
}

type loop struct {
	model   Model
	cfg     Config
	tools   map[string]Tool
	specs   []ToolSpec
	names   string // for "unknown tool" errors
	price   Price
	priced  bool
	redact  func(string) string
	eventMu sync.Mutex
	res     Result
}

func newLoop(m Model, tools []Tool, cfg Config) (*loop, error) {
	if m == nil {
		return nil, errors.New("agent: no model")
	}
	if cfg.MaxTurns <= 0 {
		cfg.MaxTurns = DefaultMaxTurns
	}
	if cfg.ToolTimeout <= 0 {
		cfg.ToolTimeout = DefaultToolTimeout
	}
	if cfg.MaxToolResultBytes <= 0 {
		cfg.MaxToolResultBytes = DefaultMaxToolResultBytes
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = DefaultParallelism
	}
	if cfg.Prices == nil {
		cfg.Prices = DefaultPrices()
	}
	l := &loop{model: m, cfg: cfg, tools: make(map[string]Tool, len(tools)), redact: cfg.Redact}
	if l.redact == nil {
		l.redact = func(s string) string { return s }
	}
	names := make([]string, 0, len(tools))
	for _, t := range tools {
		s := t.Spec()
		if s.Name == "" {
			return nil, errors.New("agent: a tool has no name")
		}
		if _, dup := l.tools[s.Name]; dup {
			return nil, fmt.Errorf("agent: two tools are named %q", s.Name)
		}
		l.tools[s.Name] = t
		l.specs = append(l.specs, s)
		names = append(names, s.Name)
	}
	sort.Strings(names)
	l.names = strings.Join(names, ", ")
	l.price, l.priced = cfg.Prices.Lookup(cfg.ModelID)
	return l, nil
}

func (l *loop) run(ctx context.Context, system, userMessage string) (*Result, error) {
	start := time.Now()
	parent := ctx
	if l.cfg.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.Deadline)
		defer cancel()
	}

	msgs := make([]Message, len(l.cfg.History), len(l.cfg.History)+2*l.cfg.MaxTurns+1)
	copy(msgs, l.cfg.History)
	first := Message{Role: RoleUser, Content: []Block{{Text: userMessage}}}
	msgs = append(msgs, first)
	l.record(first)

	req := &Request{System: system, Tools: l.specs}
	continued := false // asked the model to continue after max_tokens
	malformed := false // told the model its last answer was malformed
	var partial strings.Builder

	stop := func(o Outcome, msg string, cause error) (*Result, error) {
		l.res.Outcome, l.res.Message = o, msg
		l.res.Duration = time.Since(start)
		l.emit(Event{Kind: EventStop, Turn: l.res.Turns, Outcome: o, Message: msg, Usage: l.res.Usage})
		if o == OutcomeDone {
			return &l.res, nil
		}
		if l.cfg.Logger != nil {
			l.cfg.Logger.Debug("agent run stopped", "outcome", string(o), "message", msg, "turns", l.res.Turns)
		}
		return &l.res, &StopError{Outcome: o, Message: msg, Err: cause}
	}

	for {
		if l.res.Turns >= l.cfg.MaxTurns {
			return stop(OutcomeMaxTurns, fmt.Sprintf("stopped after %d turns, the limit (AGENTBOT_MAX_TURNS); the model was still working", l.cfg.MaxTurns), nil)
		}
		if err := ctx.Err(); err != nil {
			return l.ctxStop(stop, parent, err)
		}
		l.res.Turns++
		turn := l.res.Turns
		l.emit(Event{Kind: EventTurn, Turn: turn, Usage: l.res.Usage})

		req.Messages = msgs
		resp, err := l.model.Converse(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return l.ctxStop(stop, parent, ctx.Err())
			}
			return stop(OutcomeModelError, "the model call failed", err)
		}
		l.addUsage(resp.Usage)
		if l.cfg.Logger != nil {
			l.cfg.Logger.Debug("agent turn", "turn", turn, "stop_reason", string(resp.StopReason),
				"input_tokens", resp.Usage.InputTokens, "output_tokens", resp.Usage.OutputTokens)
		}

		reply := resp.Message
		reply.Role = RoleAssistant
		text, uses := split(reply)
		if text != "" {
			l.emit(Event{Kind: EventText, Turn: turn, Text: short(l.redact(text), 300), Usage: l.res.Usage})
		}
		if len(reply.Content) > 0 {
			msgs = append(msgs, reply)
			l.record(reply)
		}

		switch resp.StopReason {
		case StopGuardrail:
			return stop(OutcomeGuardrail, "a Bedrock guardrail stopped the model's answer; rephrase the request or review the guardrail's policy", nil)
		case StopContentFilt:
			return stop(OutcomeContentFiltered, "the model's content filter stopped its answer; rephrase the request", nil)
		case "model_context_window_exceeded":
			return stop(OutcomeContextWindow, "the conversation outgrew the model's context window; ask for less at once or lower AGENTBOT_MAX_TOOL_RESULT", nil)
		}

		var note string
		switch {
		case resp.StopReason == StopMaxTokens:
			partial.WriteString(text)
			if continued {
				l.res.Answer = l.redact(partial.String())
				return stop(OutcomeTruncated, "the model's answer was cut off at its output token limit twice (raise MODEL_MAX_OUTPUT_TOKENS or ask for a shorter answer)", nil)
			}
			continued = true
			note = continuePrompt
		case len(uses) > 0:
			continued = false
			partial.Reset()
		case resp.StopReason == "malformed_tool_use" || resp.StopReason == "malformed_model_output":
			if malformed {
				return stop(OutcomeModelError, "the model produced a malformed answer twice in a row ("+string(resp.StopReason)+")", nil)
			}
			malformed = true
			note = "Your last answer could not be parsed (" + string(resp.StopReason) + "). Try again, with tool inputs as valid JSON objects."
		default:
			// end_turn, stop_sequence, or anything else without tool calls.
			partial.WriteString(text)
			l.res.Answer = l.redact(partial.String())
			return stop(OutcomeDone, "the model finished", nil)
		}

		// The next user message: results for every tool use, then the note.
		next := Message{Role: RoleUser}
		if len(uses) > 0 {
			next.Content = l.callTools(ctx, turn, uses)
		}
		if note != "" {
			next.Content = append(next.Content, Block{Text: note})
		}
		if len(reply.Content) == 0 {
			// The model said nothing; keep the conversation alternating.
			msgs = append(msgs, Message{Role: RoleAssistant, Content: []Block{{Text: "(no answer)"}}})
		}
		msgs = append(msgs, next)
		l.record(next)

		if err := ctx.Err(); err != nil {
			return l.ctxStop(stop, parent, err)
		}
		if l.cfg.MaxTokens > 0 && l.total() >= l.cfg.MaxTokens {
			return stop(OutcomeMaxTokensTotal, fmt.Sprintf("stopped after using %d tokens, the limit is %d (AGENTBOT_MAX_TOKENS)", l.total(), l.cfg.MaxTokens), nil)
		}
	}
}

// ctxStop tells our own deadline apart from the caller's cancellation.
func (l *loop) ctxStop(stop func(Outcome, string, error) (*Result, error), parent context.Context, err error) (*Result, error) {
	if parent.Err() == nil || errors.Is(parent.Err(), context.DeadlineExceeded) {
		if errors.Is(err, context.DeadlineExceeded) {
			limit := "the run's deadline"
			if l.cfg.Deadline > 0 && parent.Err() == nil {
				limit = fmt.Sprintf("the run's time limit of %s (AGENTBOT_RUN_TIMEOUT)", l.cfg.Deadline)
			}
			return stop(OutcomeDeadline, "stopped at "+limit, err)
		}
	}
	return stop(OutcomeCanceled, "the run was canceled", err)
}

func (l *loop) total() int {
	u := l.res.Usage
	return u.InputTokens + u.OutputTokens + u.CacheReadTokens + u.CacheWriteTokens
}

func (l *loop) addUsage(u Usage) {
	l.res.Usage.InputTokens += u.InputTokens
	l.res.Usage.OutputTokens += u.OutputTokens
	l.res.Usage.CacheReadTokens += u.CacheReadTokens
	l.res.Usage.CacheWriteTokens += u.CacheWriteTokens
	if l.priced {
		l.res.Cost = l.price.Cost(l.res.Usage)
	}
}

// split returns the message's text (blocks joined) and its tool uses.
func split(m Message) (string, []*ToolUse) {
	var text string
	var uses []*ToolUse
	for i := range m.Content {
		b := &m.Content[i]
		switch {
		case b.ToolUse != nil:
			uses = append(uses, b.ToolUse)
		case b.Text != "":
			if text != "" {
				text += "\n"
			}
			text += b.Text
		}
	}
	return text, uses
}

// callTools runs the calls concurrently, at most Parallelism at once, and
// returns one result block per call in the calls' order.
func (l *loop) callTools(ctx context.Context, turn int, uses []*ToolUse) []Block {
	out := make([]Block, len(uses))
	if len(uses) == 1 {
		out[0] = Block{ToolResult: l.callTool(ctx, turn, uses[0])}
		return out
	}
	sem := make(chan struct{}, l.cfg.Parallelism)
	var wg sync.WaitGroup
	for i, u := range uses {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = Block{ToolResult: l.callTool(ctx, turn, u)}
		}()
	}
	wg.Wait()
	return out
}

func (l *loop) callTool(ctx context.Context, turn int, u *ToolUse) *ToolResult {
	start := time.Now()
	l.emit(Event{Kind: EventToolStart, Turn: turn, Tool: u.Name, ToolUseID: u.ID, Text: l.redact(summarize(u.Input))})
	content, isErr := l.invoke(ctx, u)
	content = l.redact(truncate(content, l.cfg.MaxToolResultBytes))
	d := time.Since(start)
	l.eventMu.Lock()
	l.res.ToolCalls++
	if isErr {
		l.res.ToolErrors++
	}
	l.eventMu.Unlock()
	if l.cfg.Logger != nil {
		l.cfg.Logger.Debug("agent tool call", "turn", turn, "tool", u.Name, "error", isErr, "duration", d)
	}
	l.emit(Event{Kind: EventToolFinish, Turn: turn, Tool: u.Name, ToolUseID: u.ID, IsError: isErr, Duration: d, Text: short(content, 200)})
	return &ToolResult{ToolUseID: u.ID, Content: content, IsError: isErr}
}

// invoke checks the call and runs the tool under its timeout. A tool that
// ignores its context is abandoned at the timeout: its goroutine ends when
// the tool returns, and its late result is dropped.
func (l *loop) invoke(ctx context.Context, u *ToolUse) (string, bool) {
	t, ok := l.tools[u.Name]
	if !ok {
		return fmt.Sprintf("error: there is no tool named %q; the tools are: %s", u.Name, l.names), true
	}
	input := u.Input
	if len(strings.TrimSpace(string(input))) == 0 {
		input = json.RawMessage("{}")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(input, &obj); err != nil {
		return fmt.Sprintf("error: the input for %s is not a JSON object (%v); send an object matching the tool's input schema", u.Name, err), true
	}

	ctx, cancel := context.WithTimeout(ctx, l.cfg.ToolTimeout)
	defer cancel()
	type answer struct {
		s     string
		isErr bool
	}
	done := make(chan answer, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- answer{fmt.Sprintf("error: tool %s failed: %v", u.Name, r), true}
			}
		}()
		s, isErr := t.Call(ctx, input)
		done <- answer{s, isErr}
	}()
	select {
	case a := <-done:
		return a.s, a.isErr
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Sprintf("error: tool %s timed out after %s", u.Name, l.cfg.ToolTimeout), true
		}
		return fmt.Sprintf("error: tool %s was canceled", u.Name), true
	}
}

// truncate cuts s to at most max bytes on a rune boundary, with a marker.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("\n[truncated: the result was %d bytes; only the first %d are shown. Ask for less, e.g. a smaller range.]", len(s), cut)
}

// summarize shows a tool input briefly: key=value pairs, identifying keys
// first, long values cut ("path=output/AAPL.md content=\"# AAPL…\"").
func summarize(input json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(input, &m) != nil {
		return short(string(input), 200)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		switch k {
		case "command", "path", "ticker", "symbol", "query":
			return 0
		}
		return 1
	}
	sort.Slice(keys, func(i, j int) bool {
		if rank(keys[i]) != rank(keys[j]) {
			return rank(keys[i]) < rank(keys[j])
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for _, k := range keys {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		v, _ := m[k].(string)
		if v == "" {
			raw, _ := json.Marshal(m[k])
			v = string(raw)
		} else if strings.ContainsAny(v, " \t\n\"") || len(v) > 60 {
			v = strconv.Quote(short(v, 40))
		}
		b.WriteString(k + "=" + v)
		if b.Len() > 200 {
			break
		}
	}
	return short(b.String(), 220)
}

// short is s on one line, at most n bytes (plus an ellipsis), for events
// and logs. It reads only as much of s as it keeps.
func short(s string, n int) string {
	var b strings.Builder
	b.Grow(min(len(s), n+4))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if b.Len()+utf8.RuneLen(r)+1 > n {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// record appends a redacted copy of m to the transcript.
func (l *loop) record(m Message) {
	c := Message{Role: m.Role, Content: make([]Block, len(m.Content))}
	for i, b := range m.Content {
		switch {
		case b.ToolUse != nil:
			u := *b.ToolUse
			u.Input = json.RawMessage(l.redact(string(u.Input)))
			c.Content[i] = Block{ToolUse: &u}
		case b.ToolResult != nil:
			r := *b.ToolResult // already redacted when made
			c.Content[i] = Block{ToolResult: &r}
		default:
			c.Content[i] = Block{Text: l.redact(b.Text)}
		}
	}
	l.res.Transcript = append(l.res.Transcript, c)
}

func (l *loop) emit(e Event) {
	if l.cfg.OnEvent == nil {
		return
	}
	l.eventMu.Lock()
	defer l.eventMu.Unlock()
	l.cfg.OnEvent(e)
}
