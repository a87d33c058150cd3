package run

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"gitlab.com/agentbot/agentbot/internal/agent"
)

// progressEvery bounds how often the progress note is edited: GitLab
// rate-limits note edits, and nobody reads faster than this.
const progressEvery = 5 * time.Second

// progress is the run's live checklist. The agent's events and its own
// `progress` tool change it; one goroutine edits the note from it, at most
// every progressEvery.
type progress struct {
	mu      sync.Mutex
	start   time.Time
	steps   []string // finished steps, "✔ …"
	agent   []string // the agent's own checklist items
	now     string   // what is happening, "⏳ …"
	dirty   bool
	changed chan struct{}
}

func newProgress() *progress {
	return &progress{start: time.Now(), changed: make(chan struct{}, 1)}
}

func (p *progress) set(f func()) {
	p.mu.Lock()
	f()
	p.dirty = true
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *progress) done(step string)  { p.set(func() { p.steps = append(p.steps, "✔ "+step) }) }
func (p *progress) doing(what string) { p.set(func() { p.now = "⏳ " + what }) }

// event follows the agent loop.
func (p *progress) event(maxTurns int) func(agent.Event) {
	return func(e agent.Event) {
		switch e.Kind {
		case agent.EventTurn:
			p.doing(fmt.Sprintf("agent: turn %d of %d, thinking", e.Turn, maxTurns))
		case agent.EventToolStart:
			p.doing(fmt.Sprintf("agent: turn %d of %d, calling `%s`", e.Turn, maxTurns, e.Tool))
		}
	}
}

func (p *progress) body(header string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	b.WriteString(header + "\n\n")
	for _, s := range p.steps {
		b.WriteString("- " + s + "\n")
	}
	for _, s := range p.agent {
		b.WriteString("- " + s + "\n")
	}
	if p.now != "" {
		b.WriteString("- " + p.now + "\n")
	}
	fmt.Fprintf(&b, "\n_%s elapsed_", time.Since(p.start).Round(time.Second))
	p.dirty = false
	return b.String()
}

// follow edits the note while ctx lives; it returns when ctx is done.
func (p *progress) follow(ctx context.Context, edit func(body string) error, header string) {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.mu.Lock()
		dirty := p.dirty
		p.mu.Unlock()
		if !dirty {
			continue
		}
		// A failed edit is not worth failing the run for; the next one or
		// the final answer replaces it.
		_ = edit(p.body(header))
	}
}

// progressTool lets the agent add its own checklist items.
type progressTool struct{ p *progress }

func (progressTool) Spec() agent.ToolSpec {
	return agent.ToolSpec{
		Name:        "progress",
		Description: "Show the person who asked what you are doing: add an item to the checklist in your progress note on the GitLab thread (mark it done when finished). Use it for the main steps of a long task, not for every tool call.",
		InputSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"item": map[string]any{"type": "string", "description": "a short step, such as \"Fetched the quote\""},
				"done": map[string]any{"type": "boolean", "description": "true when the step is finished"},
			},
			"required": []any{"item"},
		},
	}
}

func (t progressTool) Call(_ context.Context, input json.RawMessage) (string, bool) {
	var in struct {
		Item string `json:"item"`
		Done bool   `json:"done"`
	}
	if err := json.Unmarshal(input, &in); err != nil || strings.TrimSpace(in.Item) == "" {
		return "give an item: a short description of the step", true
	}
	item := strings.Join(strings.Fields(in.Item), " ")
	if r := []rune(item); len(r) > 120 {
		item = string(r[:120]) + "…"
	}
	mark := "☐ "
	if in.Done {
		mark = "☑ "
	}
	t.p.set(func() {
		for i, s := range t.p.agent {
			if strings.TrimPrefix(strings.TrimPrefix(s, "☐ "), "☑ ") == item {
				t.p.agent[i] = mark + item
				return
			}
		}
		if len(t.p.agent) < 30 {
			t.p.agent = append(t.p.agent, mark+item)
		}
	})
	return "noted on the progress note", false
}
