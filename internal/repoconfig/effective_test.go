package repoconfig_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/repoconfig"
)

var operator = repoconfig.Operator{
	WriteAllow:        []string{"output/**", "reports/*.md"},
	DefaultModel:      "us.anthropic.claude-sonnet-4-6",
	Models:            []string{"us.anthropic.claude-haiku-4-5"},
	MaxTurns:          25,
	MaxTokens:         3_000_000,
	Timeout:           15 * time.Minute,
	MinAccess:         30,
	MaxInlineComments: 20,
}

func TestEffectiveDefaults(t *testing.T) {
	want := repoconfig.Effective{
		OutputDir:         "output/",
		WriteAllow:        []string{"output/**", "reports/*.md"},
		ModelID:           "us.anthropic.claude-sonnet-4-6",
		MaxTurns:          25,
		MaxTokens:         3_000_000,
		Timeout:           15 * time.Minute,
		MinAccess:         30,
		ReviewEnabled:     true,
		MaxInlineComments: 20,
		InstructionsBytes: repoconfig.DefaultMaxInstructionsBytes,
	}
	var none *repoconfig.Config
	got, p := none.Effective(operator)
	if p != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("nil config: %+v, %v", got, p)
	}
	empty, err := repoconfig.Parse([]byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, p = empty.Effective(operator)
	if p != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("empty config: %+v, %v", got, p)
	}
}

func TestEffectiveFull(t *testing.T) {
	c := parseFile(t, "full.yml")
	got, p := c.Effective(operator)
	if p != nil {
		t.Fatalf("problems: %v", p)
	}
	want := repoconfig.Effective{
		OutputDir:  "output/research/",
		WriteAllow: []string{"output/research/**", "output/compare/*.md"},
		ModelID:    "us.anthropic.claude-sonnet-4-6",
		MaxTurns:   15, MaxTokens: 500000, Timeout: 10 * time.Minute,
		MinAccess:         40,
		MergeRequest:      c.MergeRequest,
		ReviewEnabled:     true,
		MaxInlineComments: 10,
		ReviewIgnore:      []string{"vendor/**", "**/*.lock"},
		InstructionsBytes: 16000,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Effective =\n%+v\nwant\n%+v", got, want)
	}
}

// A project narrows the operator's settings and never widens them: each
// attempt is a problem on its line, and the operator's value applies.
func TestEffectiveBounds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yml   string
		check func(repoconfig.Effective) bool
		want  []string
	}{
		{
			name:  "narrower allowlist is used",
			yml:   "version: 1\noutput:\n  allow: [output/q3/**, reports/q3-*.md, output/*/summary.md]\n  dir: output/q3\n",
			check: func(e repoconfig.Effective) bool { return e.OutputDir == "output/q3/" && len(e.WriteAllow) == 3 },
		},
		{
			name: "wider allowlist",
			yml:  "version: 1\noutput:\n  allow:\n    - \"**\"\n    - docs/**\n    - reports/**\n    - \"*.md\"\n",
			check: func(e repoconfig.Effective) bool {
				return reflect.DeepEqual(e.WriteAllow, operator.WriteAllow)
			},
			want: []string{
				"line 4: output.allow[0]: `**` is not within this agentbot's write allowlist (output/**, reports/*.md), so it is not used; a project can only narrow it",
				"line 5: output.allow[1]: `docs/**` is not within this agentbot's write allowlist (output/**, reports/*.md), so it is not used; a project can only narrow it",
				"line 6: output.allow[2]: `reports/**` is not within this agentbot's write allowlist (output/**, reports/*.md), so it is not used; a project can only narrow it",
				"line 7: output.allow[3]: `*.md` is not within this agentbot's write allowlist (output/**, reports/*.md), so it is not used; a project can only narrow it",
			},
		},
		{
			name: "partly wider allowlist keeps the narrow part",
			yml:  "version: 1\noutput:\n  allow: [output/a/**, .gitlab-ci.yml]\n",
			check: func(e repoconfig.Effective) bool {
				return reflect.DeepEqual(e.WriteAllow, []string{"output/a/**"}) && e.OutputDir == "output/a/"
			},
			want: []string{"line 3: output.allow[1]: `.gitlab-ci.yml` is not within this agentbot's write allowlist (output/**, reports/*.md), so it is not used; a project can only narrow it"},
		},
		{
			name:  "output dir outside the allowlist",
			yml:   "version: 1\noutput:\n  dir: src/\n",
			check: func(e repoconfig.Effective) bool { return e.OutputDir == "output/" },
			want:  []string{"line 3: output.dir: `src/` is outside the write allowlist (output/**, reports/*.md), so the agent is not told to write there"},
		},
		{
			name: "higher limits",
			yml:  "version: 1\nmodel:\n  limits:\n    max_turns: 100\n    max_tokens: 9000000\n    timeout: 2h\n",
			check: func(e repoconfig.Effective) bool {
				return e.MaxTurns == 25 && e.MaxTokens == 3_000_000 && e.Timeout == 15*time.Minute
			},
			want: []string{
				"line 4: model.limits.max_turns: 100 is above this agentbot's limit of 25 turns; 25 applies",
				"line 5: model.limits.max_tokens: 9000000 is above this agentbot's limit of 3000000 tokens; 3000000 applies",
				"line 6: model.limits.timeout: 2h0m0s is above this agentbot's limit of 15m0s; 15m0s applies",
			},
		},
		{
			name: "lower limits are used",
			yml:  "version: 1\nmodel:\n  limits: {max_turns: 5, max_tokens: 1000, timeout: 90s}\n",
			check: func(e repoconfig.Effective) bool {
				return e.MaxTurns == 5 && e.MaxTokens == 1000 && e.Timeout == 90*time.Second
			},
		},
		{
			name:  "lower access level",
			yml:   "version: 1\naccess:\n  min_level: reporter\n",
			check: func(e repoconfig.Effective) bool { return e.MinAccess == 30 },
			want:  []string{"line 3: access.min_level: reporter is below this agentbot's minimum, developer; developer applies (a project can only make it stricter)"},
		},
		{
			name:  "stricter access level is used",
			yml:   "version: 1\naccess:\n  min_level: Owner\n",
			check: func(e repoconfig.Effective) bool { return e.MinAccess == 50 },
		},
		{
			name:  "unapproved model",
			yml:   "version: 1\nmodel:\n  id: us.anthropic.claude-opus-4-1\n",
			check: func(e repoconfig.Effective) bool { return e.ModelID == operator.DefaultModel },
			want:  []string{"line 3: model.id: `us.anthropic.claude-opus-4-1` is not a model this agentbot allows (these models: us.anthropic.claude-haiku-4-5); its default model was used"},
		},
		{
			name:  "approved model is used",
			yml:   "version: 1\nmodel:\n  id: us.anthropic.claude-haiku-4-5\n",
			check: func(e repoconfig.Effective) bool { return e.ModelID == "us.anthropic.claude-haiku-4-5" },
		},
		{
			name:  "more inline comments",
			yml:   "version: 1\nreview:\n  max_inline_comments: 500\n",
			check: func(e repoconfig.Effective) bool { return e.MaxInlineComments == 20 },
			want:  []string{"line 3: review.max_inline_comments: 500 is above this agentbot's limit of 20; 20 applies"},
		},
		{
			name: "larger instructions",
			yml:  "version: 1\ninstructions:\n  max_bytes: 1000000\n",
			check: func(e repoconfig.Effective) bool {
				return e.InstructionsBytes == repoconfig.DefaultMaxInstructionsBytes
			},
			want: []string{"line 3: instructions.max_bytes: 1000000 is above this agentbot's limit of 32768 bytes; 32768 applies"},
		},
		{
			name: "instructions turned off",
			yml:  "version: 1\ninstructions:\n  max_bytes: 0\nreview:\n  enabled: false\n  max_inline_comments: 0\n",
			check: func(e repoconfig.Effective) bool {
				return e.InstructionsBytes == 0 && !e.ReviewEnabled && e.MaxInlineComments == 0
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := repoconfig.Parse([]byte(tc.yml))
			if err != nil {
				t.Fatal(err)
			}
			e, p := c.Effective(operator)
			if !tc.check(e) {
				t.Errorf("Effective = %+v", e)
			}
			var got []string
			if p != nil {
				if !p.Overridden {
					t.Error("Overridden is not set")
				}
				for _, x := range p.List {
					got = append(got, x.String())
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestEffectiveMarkdown(t *testing.T) {
	c, err := repoconfig.Parse([]byte("version: 1\naccess:\n  min_level: guest\nmodel:\n  id: my-model\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, p := c.Effective(repoconfig.Operator{MinAccess: 40})
	golden(t, "overridden.golden", p.Markdown())
}

// With an operator that sets no bounds, a project's limits are used; the
// default allowlist is output/**.
func TestEffectiveUnboundedOperator(t *testing.T) {
	c, err := repoconfig.Parse([]byte("version: 1\nmodel:\n  limits: {max_turns: 900, timeout: 20h}\noutput:\n  allow: [reports/**]\n"))
	if err != nil {
		t.Fatal(err)
	}
	e, p := c.Effective(repoconfig.Operator{})
	if e.MaxTurns != 900 || e.Timeout != 20*time.Hour {
		t.Errorf("limits = %d, %v", e.MaxTurns, e.Timeout)
	}
	if p == nil || len(p.List) != 1 || p.List[0].Path != "output.allow[0]" || !reflect.DeepEqual(e.WriteAllow, []string{"output/**"}) {
		t.Errorf("allow = %v, %v", e.WriteAllow, p)
	}
}
