package repoconfig_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/repoconfig"
)

// FuzzParse: Parse never panics; a valid file gives a Config whose every
// method works, and an invalid one a bounded note with sane line numbers.
func FuzzParse(f *testing.F) {
	if full, err := os.ReadFile(filepath.Join("testdata", "full.yml")); err == nil {
		f.Add(string(full))
	}
	for _, s := range []string{
		"", "version: 1\n", "version: 1\ncommands:\n  c:\n    args: [a, b...]\n    prompt: \"{a}{{b}{b}\"\n",
		"a: &x [1]\nb: *x\n", "version: 1\n\tx: 1\n", "- [", "version: 1\n---\n", "? [a]\n: 1\n",
		"version: 1\npipelines:\n  - {name: x, when: {status: failed, ref: \"**\"}, run: {prompt: p}, report: both}\n",
		"version: !!binary aGk=\n", "<<: {version: 1}\n", "version: 0x1\noutput: {dir: ./a/, allow: [a/**]}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := repoconfig.Parse([]byte(s))
		if err != nil {
			var p *repoconfig.Problems
			if !errors.As(err, &p) || len(p.List) == 0 || c != nil {
				t.Fatalf("Parse = %v, %v", c, err)
			}
			lines := strings.Count(s, "\n") + 2
			for _, x := range p.List {
				if x.Line < 0 || x.Line > lines || x.Msg == "" {
					t.Fatalf("bad problem %+v for %d lines", x, lines)
				}
			}
			if md := p.Markdown(); len(md) > 20000 {
				t.Fatalf("Markdown is %d bytes", len(md))
			}
			_ = p.Error()
			return
		}
		e, p := c.Effective(repoconfig.Operator{WriteAllow: []string{"output/**"}, MaxTurns: 10, MinAccess: 30})
		if p != nil {
			_ = p.Markdown()
		}
		if e.OutputDir == "" || len(e.WriteAllow) == 0 {
			t.Fatalf("Effective = %+v", e)
		}
		_ = repoconfig.HelpEntries(c)
		for _, cmd := range c.Commands {
			args := make([]string, len(cmd.Args))
			for i := range args {
				args[i] = "X"
			}
			if _, err := c.Expand(cmd.Verb, args); err != nil {
				t.Fatalf("Expand(%s, %q): %v", cmd.Verb, args, err)
			}
		}
		for _, r := range c.Pipelines {
			if len(r.Status) == 0 || (r.Command == "") == (r.Prompt == "") {
				t.Fatalf("rule %+v", r)
			}
			c.Match(repoconfig.Pipeline{Status: r.Status[0], Ref: "main", Source: "push"})
		}
	})
}
