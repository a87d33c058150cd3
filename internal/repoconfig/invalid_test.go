package repoconfig_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/repoconfig"
)

// Each invalid file yields every one of its problems, with its line.
func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		yml  string
		want []string // Problem.String(), in order
	}{
		{
			name: "unknown key with a suggestion",
			yml:  "version: 1\ncommands:\n  compare:\n    args: [a]\n    promt: \"Compare {a}\"\n",
			want: []string{
				"line 3: commands.compare.prompt: required",
				"line 5: commands.compare.promt: unknown key; did you mean `prompt`?",
			},
		},
		{
			name: "unknown top-level key",
			yml:  "version: 1\nmodels:\n  id: x\nfoo: 1\n",
			want: []string{
				"line 2: models: unknown key; did you mean `model`?",
				"line 4: foo: unknown key; known keys here: version, commands, output, model, merge_request, access, review, pipelines, instructions",
			},
		},
		{
			name: "missing version",
			yml:  "review:\n  enabled: false\n",
			want: []string{`line 1: version: required: start the file with "version: 1"`},
		},
		{
			name: "unsupported version",
			yml:  "version: 2\n",
			want: []string{"line 1: version: unsupported version 2; this agentbot reads version 1"},
		},
		{
			name: "wrong types",
			yml: "version: 1\nmerge_request:\n  draft: \"yes\"\n  labels: research\n  target: [main]\n" +
				"review:\n  max_inline_comments: ten\n  enabled: 1\n",
			want: []string{
				"line 3: merge_request.draft: want true or false, got the string `yes`",
				"line 4: merge_request.labels: want a list, as [a, b], got the string `research`",
				"line 5: merge_request.target: want a string, got a list",
				"line 7: review.max_inline_comments: want a whole number, got the string `ten`",
				"line 8: review.enabled: want true or false, got the number `1`",
			},
		},
		{
			name: "section that is not a mapping",
			yml:  "version: 1\noutput: output/\n",
			want: []string{"line 2: output: want a mapping of keys to values, got the string `output/`"},
		},
		{
			name: "bad globs",
			yml:  "version: 1\noutput:\n  allow:\n    - /etc/**\n    - \"out[put/**\"\n    - output/a**\n    - ../x\n  dir: \"out/*\"\n",
			want: []string{
				"line 4: output.allow[0]: glob `/etc/**`: must be relative to the repository root (no leading /)",
				"line 5: output.allow[1]: glob `out[put/**`: is malformed (check its [ ] brackets)",
				"line 6: output.allow[2]: glob `output/a**`: \"**\" must be a whole segment, as in dir/**/*.md",
				"line 7: output.allow[3]: glob `../x`: has a \".\" or \"..\" segment",
				"line 8: output.dir: a directory, not a glob: no * ? [ ] or \\",
			},
		},
		{
			name: "unknown placeholder and unused argument",
			yml:  "version: 1\ncommands:\n  compare:\n    args: [a, b]\n    prompt: Compare {a} and {c}\n",
			want: []string{
				"line 5: commands.compare.prompt: unknown placeholder `{c}`; its args are a, b (write {{ for a literal {)",
				"line 5: commands.compare.prompt: argument `b` is never used; put `{b}` in the prompt",
			},
		},
		{
			name: "go template placeholders",
			yml:  "version: 1\ncommands:\n  quote:\n    args: [ticker]\n    prompt: \"Quote {{.Args.ticker}}\"\n",
			want: []string{"line 5: commands.quote.prompt: placeholders are written {name}, not `{{.Args.ticker}}`; write {{ for a literal {"},
		},
		{
			name: "built-in verb override and bad names",
			yml: "version: 1\ncommands:\n  review:\n    prompt: x\n  Analyze:\n    prompt: x\n  Compare:\n    prompt: x\n" +
				"  ok:\n    args: [A, b..., b]\n    prompt: \"{b}\"\n",
			want: []string{
				"line 3: commands.review: `review` is a built-in command and cannot be redefined; pick another name",
				"line 5: commands.Analyze: `Analyze` is a built-in command and cannot be redefined; pick another name",
				"line 7: commands.Compare: a command name is one lower-case word of letters, digits, - and _ (up to 32), starting with a letter",
				"line 10: commands.ok.args[0]: an argument name is a lower-case word of letters, digits and _ (up to 32), starting with a letter; the last may end in ...",
				"line 10: commands.ok.args[2]: duplicate argument `b`",
			},
		},
		{
			name: "duplicate keys",
			yml:  "version: 1\nreview:\n  enabled: true\n  enabled: false\nversion: 1\n",
			want: []string{
				"line 4: review.enabled: duplicate key (first set on line 3)",
				"line 5: version: duplicate key (first set on line 1)",
			},
		},
		{
			name: "bad pipeline status, source and report",
			yml: "version: 1\npipelines:\n  - name: nightly\n    when:\n      status: [faild, success]\n      source: [schedul, cron]\n" +
				"    run:\n      command: diagnose\n    report: email\n",
			want: []string{
				"line 5: pipelines[0].when.status[0]: unknown status `faild`; did you mean `failed`?",
				"line 6: pipelines[0].when.source[0]: unknown source `schedul`; did you mean `schedule`?",
				"line 6: pipelines[0].when.source[1]: unknown source `cron`; want one of push, web, trigger, schedule, api, external, pipeline, chat, webide, merge_request_event, external_pull_request_event, parent_pipeline, ondemand_dast_scan, ondemand_dast_validation, security_orchestration_policy, container_registry_push, duo_workflow, pipeline_execution_policy_schedule",
				"line 9: pipelines[0].report: want mr, note or both; got `email`",
			},
		},
		{
			name: "pipeline rule shape",
			yml: "version: 1\ncommands:\n  cmp:\n    args: [a, b]\n    prompt: \"{a} {b}\"\npipelines:\n" +
				"  - name: one\n    when: {status: failed}\n    run: {command: cmp, args: [AAPL]}\n" +
				"  - name: one\n    when: {ref: main}\n    run: {command: deploy}\n" +
				"  - when: {status: success, source: schedule}\n    run: {command: diagnose, prompt: hi}\n" +
				"  - name: three\n    when: {status: success, source: [schedule]}\n    run: {prompt: report}\n    report: note\n" +
				"  - name: four\n    when: {status: failed}\n    run: {command: analyze, args: [\"not a ticker\"]}\n",
			want: []string{
				"line 9: pipelines[0].run: cmp takes 2 arguments and got 1; usage: cmp <a> <b>",
				"line 10: pipelines[1].name: duplicate rule name (first on line 7)",
				"line 11: pipelines[1].when.status: required: the pipeline statuses to act on, as [failed]",
				"line 12: pipelines[1].run.command: unknown command `deploy`; want one of diagnose, review, analyze, cmp",
				"line 13: pipelines[2].name: required",
				"line 14: pipelines[2].run: give command or prompt, not both",
				"line 15: pipelines[3].report: pipelines from schedule have no merge request to post a note on; use report: mr",
				"line 21: pipelines[4].run.args: `not a ticker` is not a ticker symbol",
			},
		},
		{
			name: "bad access level",
			yml:  "version: 1\naccess:\n  min_level: admin\n",
			want: []string{"line 3: access.min_level: want one of guest, planner, reporter, developer, maintainer, owner; got `admin`"},
		},
		{
			name: "bad values",
			yml: "version: 1\nmodel:\n  id: \"claude sonnet\"\n  limits:\n    max_turns: 0\n    max_tokens: 1.5\n    timeout: 600\n" +
				"merge_request:\n  reviewers: [\"al ice\"]\n  labels: [\"a,b\"]\n  target: agent/mine\n" +
				"instructions:\n  max_bytes: -1\n",
			want: []string{
				"line 3: model.id: want a model id such as us.anthropic.claude-sonnet-4-6 (no spaces, up to 200 characters)",
				"line 5: model.limits.max_turns: want a whole number from 1 to 1000, got `0`",
				"line 6: model.limits.max_tokens: want a whole number, got the number `1.5`",
				"line 7: model.limits.timeout: want a duration such as 10m, 90s or 1h30m, from 1s to 24h, got the number `600`",
				"line 9: merge_request.reviewers[0]: `al ice` is not a GitLab username",
				"line 10: merge_request.labels[0]: a label cannot contain a comma",
				"line 11: merge_request.target: agent/ branches are agentbot's own; a merge request cannot target them",
				"line 13: instructions.max_bytes: want a whole number from 0 to 1048576, got `-1`",
			},
		},
		{
			name: "tab indentation",
			yml:  "version: 1\nreview:\n  enabled: true\n\tmax_inline_comments: 3\n",
			want: []string{"line 4: indented with a tab; YAML indentation must use spaces"},
		},
		{
			name: "tab indentation reported late by the parser",
			yml:  "version: 1\nreview:\n  enabled: true\n  ignore:\n    - a/**\n\t- b/**\n",
			want: []string{"line 6: indented with a tab; YAML indentation must use spaces"},
		},
		{
			name: "unclosed flow list",
			yml:  "version: 1\nmerge_request:\n  labels: [a, b\n  draft: true\n",
			want: []string{"line 3: YAML syntax error: did not find expected ',' or ']'"},
		},
		{
			name: "syntax error without a line from the parser",
			yml:  "version: 1\nreview:\n  enabled: true\n  ignore: a: b\n",
			want: []string{"line 4: YAML syntax error: mapping values are not allowed in this context"},
		},
		{
			name: "unterminated quote",
			yml:  "version: 1\ncommands:\n  x:\n    prompt: 'hello\n",
			want: []string{"line 4: YAML syntax error: found unexpected end of stream"},
		},
		{
			name: "aliases",
			yml:  "version: 1\nmerge_request:\n  labels: &l [a]\nreview:\n  ignore: *l\n",
			want: []string{"line 5: review.ignore: aliases (*l) are not supported here; write the value out"},
		},
		{
			name: "two documents",
			yml:  "version: 1\n---\nversion: 1\n",
			want: []string{"line 2: only one YAML document is allowed; remove the second \"---\" and what follows"},
		},
		{
			name: "top level is a list",
			yml:  "- version: 1\n",
			want: []string{"line 1: want a mapping of settings at the top level (version: 1, commands: …), got a list"},
		},
		{
			name: "not UTF-8",
			yml:  "version: 1\nmerge_request:\n  labels: [\xff]\n",
			want: []string{"line 3: the file is not valid UTF-8 text"},
		},
		{
			name: "command with no prompt at all",
			yml:  "version: 1\ncommands:\n  weekly:\n",
			want: []string{"line 3: commands.weekly.prompt: required"},
		},
		{
			name: "command given as a bare prompt",
			yml:  "version: 1\ncommands:\n  weekly: Write the weekly summary\n",
			want: []string{"line 3: commands.weekly: want a mapping of keys to values, got the string `Write the weekly summary`"},
		},
		{
			name: "CRLF line ends",
			yml:  "version: 1\r\nreview:\r\n  enabld: true\r\n",
			want: []string{"line 3: review.enabld: unknown key; did you mean `enabled`?"},
		},
		{
			// YAML ends a line at a lone CR (or U+2028); GitLab does not.
			name: "lines counted as GitLab shows them",
			yml:  "version: 1\rreview:\n  enabld: true\ncommands:\n  x: {prompt: \"a\u2028b\", args: [q]}\n",
			want: []string{
				"line 2: review.enabld: unknown key; did you mean `enabled`?",
				"line 4: commands.x.prompt: argument `q` is never used; put `{q}` in the prompt",
			},
		},
		{
			name: "variadic argument not last",
			yml:  "version: 1\ncommands:\n  ask:\n    args: [q..., t]\n    prompt: \"{q} {t}\"\n",
			want: []string{"line 4: commands.ask.args: only the last argument may end in ... (it takes the remaining words)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := repoconfig.Parse([]byte(tc.yml))
			var p *repoconfig.Problems
			if !errors.As(err, &p) {
				t.Fatalf("Parse = %+v, %v; want problems", c, err)
			}
			if c != nil {
				t.Error("Parse returned a config with its problems")
			}
			var got []string
			for _, x := range p.List {
				got = append(got, x.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			md := p.Markdown()
			for _, x := range p.List {
				if x.Line > 0 && !strings.Contains(md, "line "+strconv.Itoa(x.Line)+": ") {
					t.Errorf("Markdown does not name line %d:\n%s", x.Line, md)
				}
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	data := []byte("version: 1\n" + strings.Repeat("# padding\n", repoconfig.MaxFileBytes/10+1))
	_, err := repoconfig.Parse(data)
	var p *repoconfig.Problems
	if !errors.As(err, &p) || len(p.List) != 1 || p.List[0].Line != 0 || !strings.Contains(p.List[0].Msg, "the limit is 65536") {
		t.Fatalf("Parse = %v", err)
	}
}

// The note lists at most twenty problems, repeats at most a few dozen
// characters of any value, and cannot be broken out of.
func TestMarkdownBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nmerge_request:\n  reviewers:\n")
	for i := 0; i < 10; i++ {
		b.WriteString("    - \"" + strings.Repeat("`Z", 100) + "\"\n")
	}
	b.WriteString("commands:\n")
	for i := 0; i < 30; i++ {
		b.WriteString("  Bad" + strings.Repeat("Z", 50) + strconv.Itoa(i) + ": {prompt: x}\n")
	}
	_, err := repoconfig.Parse([]byte(b.String()))
	var p *repoconfig.Problems
	if !errors.As(err, &p) {
		t.Fatal(err)
	}
	md := p.Markdown()
	if n := strings.Count(md, "\n- "); n != 21 {
		t.Errorf("%d list items, want 20 and a last line", n)
	}
	if !strings.Contains(md, "- … and 20 more\n") {
		t.Errorf("no count of the rest:\n%s", md)
	}
	if len(md) > 6000 {
		t.Errorf("Markdown is %d bytes", len(md))
	}
	for _, line := range strings.Split(md, "\n") {
		if strings.Count(line, "`")%2 != 0 {
			t.Errorf("unbalanced code span: %s", line)
		}
		if strings.Contains(line, strings.Repeat("Z", 41)) {
			t.Errorf("repeats too much of the file: %s", line)
		}
	}
	golden(t, "problems.golden", p.Markdown())
}
