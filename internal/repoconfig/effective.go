package repoconfig

import (
	"strconv"
	"strings"
	"time"
)

// Defaults for the operator's zero fields.
const (
	DefaultOutputDir            = "output/"
	DefaultMaxInlineComments    = 20
	DefaultMaxInstructionsBytes = 32 << 10
)

// defaultWriteAllow matches tools.DefaultWriteAllow.
var defaultWriteAllow = []string{"output/**"}

// Operator holds the operator's bounds, from agentbot's own configuration.
// A project may narrow them, never widen them.
type Operator struct {
	// WriteAllow is the operator's write allowlist (AGENTBOT_WRITE_ALLOW);
	// output/** when empty.
	WriteAllow []string
	// DefaultModel is the operator's model (MODEL_ID); "" leaves the choice
	// to the model package.
	DefaultModel string
	// Models are the other model ids a project may pick. With none, a
	// project can only use DefaultModel.
	Models []string
	// MaxTurns, MaxTokens and Timeout bound a run; 0 is no bound (then a
	// project may set one).
	MaxTurns  int
	MaxTokens int
	Timeout   time.Duration
	// MinAccess is the lowest GitLab access level that may call the bot
	// (AGENTBOT_MIN_ACCESS_LEVEL, as GitLab's number).
	MinAccess int
	// MaxInlineComments bounds a review's inline comments;
	// DefaultMaxInlineComments when 0.
	MaxInlineComments int
	// MaxInstructionsBytes bounds AGENTS.md in the system prompt;
	// DefaultMaxInstructionsBytes when 0.
	MaxInstructionsBytes int
}

// Effective is what a run uses: the project's settings within the
// operator's bounds.
type Effective struct {
	OutputDir  string   // "output/"
	WriteAllow []string // globs
	ModelID    string   // "" means the model package's default
	MaxTurns   int      // 0: no bound
	MaxTokens  int      // 0: no bound
	Timeout    time.Duration
	MinAccess  int

	MergeRequest MergeRequest

	ReviewEnabled     bool
	MaxInlineComments int
	SuggestFixes      bool
	ReviewIgnore      []string

	// InstructionsBytes bounds AGENTS.md; 0 leaves it out.
	InstructionsBytes int
}

// Effective combines the project's settings with the operator's bounds. A
// setting beyond them is a problem (Overridden is set) and the operator's
// value applies: the run goes ahead, and the caller posts the problems so
// that the project sees its setting was not used. A nil Config gives the
// operator's settings.
func (c *Config) Effective(op Operator) (Effective, *Problems) {
	if c == nil {
		c = &Config{Review: Review{Enabled: true}}
	}
	var col collector
	line := func(path string) int { return c.lines[path] }

	opAllow := op.WriteAllow
	if len(opAllow) == 0 {
		opAllow = defaultWriteAllow
	}
	opInline := op.MaxInlineComments
	if opInline <= 0 {
		opInline = DefaultMaxInlineComments
	}
	opInstr := op.MaxInstructionsBytes
	if opInstr <= 0 {
		opInstr = DefaultMaxInstructionsBytes
	}
	e := Effective{
		WriteAllow:        opAllow,
		ModelID:           op.DefaultModel,
		MaxTurns:          op.MaxTurns,
		MaxTokens:         op.MaxTokens,
		Timeout:           op.Timeout,
		MinAccess:         op.MinAccess,
		MergeRequest:      c.MergeRequest,
		ReviewEnabled:     c.Review.Enabled,
		MaxInlineComments: opInline,
		SuggestFixes:      c.Review.SuggestFixes,
		ReviewIgnore:      c.Review.Ignore,
		InstructionsBytes: opInstr,
	}

	// Write allowlist: keep the project's globs that lie within one of the
	// operator's; if none does, the operator's list applies.
	var kept []string
	for i, g := range c.Output.Allow {
		if within(g, opAllow) {
			kept = append(kept, g)
			continue
		}
		path := "output.allow[" + strconv.Itoa(i) + "]"
		col.add(line(path), path, "%s is not within this agentbot's write allowlist (%s), so it is not used; a project can only narrow it",
			q(g), strings.Join(opAllow, ", "))
	}
	if len(kept) > 0 {
		e.WriteAllow = kept
	}

	// Output directory: the project's, else output/ when writable, else the
	// allowlist's first directory.
	switch {
	case c.Output.Dir != "":
		if dirWritable(c.Output.Dir, e.WriteAllow) {
			e.OutputDir = c.Output.Dir
		} else {
			col.add(line("output.dir"), "output.dir", "%s is outside the write allowlist (%s), so the agent is not told to write there",
				q(c.Output.Dir), strings.Join(e.WriteAllow, ", "))
		}
	}
	if e.OutputDir == "" {
		e.OutputDir = DefaultOutputDir
		if !dirWritable(e.OutputDir, e.WriteAllow) {
			for _, g := range e.WriteAllow {
				if d := literalDir(g); d != "" && dirWritable(d, e.WriteAllow) {
					e.OutputDir = d
					break
				}
			}
		}
	}

	if id := c.Model.ID; id != "" {
		if id == op.DefaultModel || contains(op.Models, id) {
			e.ModelID = id
		} else {
			allowed := "only its default model"
			if len(op.Models) > 0 {
				allowed = "these models: " + strings.Join(op.Models, ", ")
			}
			col.add(line("model.id"), "model.id", "%s is not a model this agentbot allows (%s); its default model was used", q(id), allowed)
		}
	}

	l := c.Model.Limits
	if l.MaxTurns > 0 {
		if op.MaxTurns == 0 || l.MaxTurns <= op.MaxTurns {
			e.MaxTurns = l.MaxTurns
		} else {
			col.add(line("model.limits.max_turns"), "model.limits.max_turns", "%d is above this agentbot's limit of %d turns; %d applies", l.MaxTurns, op.MaxTurns, op.MaxTurns)
		}
	}
	if l.MaxTokens > 0 {
		if op.MaxTokens == 0 || l.MaxTokens <= op.MaxTokens {
			e.MaxTokens = l.MaxTokens
		} else {
			col.add(line("model.limits.max_tokens"), "model.limits.max_tokens", "%d is above this agentbot's limit of %d tokens; %d applies", l.MaxTokens, op.MaxTokens, op.MaxTokens)
		}
	}
	if l.Timeout > 0 {
		if op.Timeout == 0 || l.Timeout <= op.Timeout {
			e.Timeout = l.Timeout
		} else {
			col.add(line("model.limits.timeout"), "model.limits.timeout", "%s is above this agentbot's limit of %s; %s applies", l.Timeout, op.Timeout, op.Timeout)
		}
	}

	if lvl := c.Access.MinLevel; lvl > 0 {
		if lvl >= op.MinAccess {
			e.MinAccess = lvl
		} else {
			col.add(line("access.min_level"), "access.min_level", "%s is below this agentbot's minimum, %s; %s applies (a project can only make it stricter)",
				LevelName(lvl), LevelName(op.MinAccess), LevelName(op.MinAccess))
		}
	}

	if p := c.Review.MaxInlineComments; p != nil {
		if *p <= opInline {
			e.MaxInlineComments = *p
		} else {
			col.add(line("review.max_inline_comments"), "review.max_inline_comments", "%d is above this agentbot's limit of %d; %d applies", *p, opInline, opInline)
		}
	}

	if p := c.Instructions.MaxBytes; p != nil {
		if *p <= opInstr {
			e.InstructionsBytes = *p
		} else {
			col.add(line("instructions.max_bytes"), "instructions.max_bytes", "%d is above this agentbot's limit of %d bytes; %d applies", *p, opInstr, opInstr)
		}
	}
	return e, col.problems(true)
}

// within reports whether glob g lies within one of the globs in allow.
// Each operator glob is checked on its own (see globWithin), so a project
// glob covered only by two operator globs together is refused.
func within(g string, allow []string) bool {
	for _, o := range allow {
		if globWithin(g, o) {
			return true
		}
	}
	return false
}
