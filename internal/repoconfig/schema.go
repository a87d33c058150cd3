package repoconfig

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"gitlab.com/agentbot/agentbot/internal/command"
)

// builtinVerbs cannot be redefined by a project.
var builtinVerbs = []string{"help", "analyze", "analyse", "review", "diagnose"}

// accessLevels are GitLab's role names and numbers.
var accessLevels = []struct {
	name  string
	level int
}{{"guest", 10}, {"planner", 15}, {"reporter", 20}, {"developer", 30}, {"maintainer", 40}, {"owner", 50}}

// LevelName is the role name of a GitLab access level, or its number.
func LevelName(level int) string {
	for _, a := range accessLevels {
		if a.level == level {
			return a.name
		}
	}
	return strconv.Itoa(level)
}

// pipelineStatuses are the statuses a Pipeline Hook reports.
var pipelineStatuses = []string{
	"created", "waiting_for_resource", "preparing", "pending", "running", "success", "failed",
	"canceling", "canceled", "skipped", "manual", "scheduled",
}

// pipelineSources are GitLab's pipeline sources.
var pipelineSources = []string{
	"push", "web", "trigger", "schedule", "api", "external", "pipeline", "chat", "webide",
	"merge_request_event", "external_pull_request_event", "parent_pipeline",
	"ondemand_dast_scan", "ondemand_dast_validation", "security_orchestration_policy",
	"container_registry_push", "duo_workflow", "pipeline_execution_policy_schedule",
}

var (
	verbRE     = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	argRE      = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}(\.\.\.)?$`)
	userRE     = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*$`)
	ruleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 _.-]*$`)
	goTmplRE   = regexp.MustCompile(`\{\{\s*\.?(?:Args\.)?([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)
)

var topKeys = []string{"version", "commands", "output", "model", "merge_request", "access", "review", "pipelines", "instructions"}

func (w *walker) config(root *yaml.Node, c *Config) {
	if root.Kind != yaml.MappingNode {
		if w.usable(root, "") {
			w.add(root.Line, "", "want a mapping of settings at the top level (version: 1, commands: …), got %s", describe(root))
		}
		return
	}
	f := w.known(root, "", topKeys...)
	if v, ok := f["version"]; ok {
		if n, good := w.integer(v, 0, 1<<30); good {
			if n != Version {
				w.add(v.val.Line, v.path, "unsupported version %d; this agentbot reads version %d", n, Version)
			}
			c.Version = n
		}
	} else {
		w.add(root.Line, "version", "required: start the file with \"version: %d\"", Version)
	}
	if v, ok := f["commands"]; ok {
		c.Commands = w.commands(v)
	}
	if v, ok := f["output"]; ok {
		c.Output = w.output(v)
	}
	if v, ok := f["model"]; ok {
		c.Model = w.model(v)
	}
	if v, ok := f["merge_request"]; ok {
		c.MergeRequest = w.mergeRequest(v)
	}
	if v, ok := f["access"]; ok {
		c.Access = w.access(v)
	}
	if v, ok := f["review"]; ok {
		c.Review = w.review(v)
	}
	if v, ok := f["pipelines"]; ok {
		c.Pipelines = w.pipelines(v, c)
	}
	if v, ok := f["instructions"]; ok {
		c.Instructions = w.instructions(v)
	}
}

func (w *walker) commands(f field) []Command {
	entries := w.entries(f.val, f.path)
	if len(entries) > maxCommands {
		w.add(f.val.Line, f.path, "at most %d commands, got %d", maxCommands, len(entries))
		return nil
	}
	var out []Command
	for _, e := range entries {
		verb := e.key.Value
		w.declared[verb] = true
		switch {
		case contains(builtinVerbs, strings.ToLower(verb)):
			w.add(e.key.Line, e.path, "%s is a built-in command and cannot be redefined; pick another name", q(verb))
			continue
		case !verbRE.MatchString(verb):
			w.add(e.key.Line, e.path, "a command name is one lower-case word of letters, digits, - and _ (up to 32), starting with a letter")
			continue
		}
		if cmd, ok := w.command(e, verb); ok {
			out = append(out, cmd)
		}
	}
	return out
}

func (w *walker) command(e field, verb string) (Command, bool) {
	cmd := Command{Verb: verb, AllowFiles: true, Line: e.key.Line}
	if isNull(e.val) {
		w.add(e.key.Line, join(e.path, "prompt"), "required")
		return cmd, false
	}
	ok := true
	f := w.known(e.val, e.path, "description", "prompt", "args", "allow_files")
	if e.val.Kind != yaml.MappingNode {
		return cmd, false // reported by known
	}
	if v, has := f["description"]; has {
		s, good := w.str(v)
		switch {
		case !good:
			ok = false
		case strings.ContainsAny(s, "\r\n") || utf8Len(s) > maxDescription:
			w.add(v.val.Line, v.path, "want one line of at most %d characters", maxDescription)
			ok = false
		default:
			cmd.Description = strings.TrimSpace(s)
		}
	}
	if v, has := f["args"]; has {
		seen := map[string]bool{}
		args, good := w.strs(v, maxArgs, false, func(a string) string {
			name := strings.TrimSuffix(a, "...")
			switch {
			case !argRE.MatchString(a):
				return "an argument name is a lower-case word of letters, digits and _ (up to 32), starting with a letter; the last may end in ..."
			case seen[name]:
				return "duplicate argument " + q(name)
			}
			seen[name] = true
			return ""
		})
		ok = ok && good
		for i, a := range args {
			if strings.HasSuffix(a, "...") && i != len(args)-1 {
				w.add(v.val.Line, v.path, "only the last argument may end in ... (it takes the remaining words)")
				ok = false
			}
		}
		cmd.Args = args
	}
	if v, has := f["allow_files"]; has {
		b, good := w.boolean(v)
		ok = ok && good
		cmd.AllowFiles = b
	}
	v, has := f["prompt"]
	if !has {
		w.add(e.key.Line, join(e.path, "prompt"), "required")
		return cmd, false
	}
	s, good := w.str(v)
	if !good {
		return cmd, false
	}
	if msg := promptProblem(s); msg != "" {
		w.add(v.val.Line, v.path, "%s", msg)
		return cmd, false
	}
	cmd.Prompt = s
	parts, problems := compile(s, cmd.Args)
	for _, p := range problems {
		w.add(v.val.Line, v.path, "%s", p)
	}
	cmd.parts = parts
	return cmd, ok && len(problems) == 0
}

func promptProblem(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "required, and must not be empty"
	case len(s) > maxPromptBytes:
		return "at most " + strconv.Itoa(maxPromptBytes) + " bytes, got " + strconv.Itoa(len(s))
	}
	return ""
}

// compile splits a prompt template into parts: "{name}" is an argument,
// "{{" a literal "{"; any other "{" is literal too. It reports
// placeholders that name no argument, arguments never used, and
// "{{name}}" written for "{name}".
func compile(s string, args []string) ([]part, []string) {
	var problems []string
	if m := goTmplRE.FindStringSubmatch(s); m != nil {
		return nil, []string{"placeholders are written {name}, not " + q(m[0]) + "; write {{ for a literal {"}
	}
	index := map[string]int{}
	for i, a := range args {
		index[strings.TrimSuffix(a, "...")] = i
	}
	used := make([]bool, len(args))
	var parts []part
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, part{lit: lit.String(), arg: -1})
			lit.Reset()
		}
	}
	reported := map[string]bool{}
	for i := 0; i < len(s); {
		if s[i] == '{' {
			if i+1 < len(s) && s[i+1] == '{' {
				lit.WriteByte('{')
				i += 2
				continue
			}
			j := i + 1
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			if j > i+1 && j < len(s) && s[j] == '}' {
				name := s[i+1 : j]
				if k, ok := index[name]; ok {
					flush()
					parts = append(parts, part{arg: k})
					used[k] = true
				} else if !reported[name] && len(problems) < 5 {
					reported[name] = true
					declared := "it declares no args"
					if len(args) > 0 {
						declared = "its args are " + strings.Join(args, ", ")
					}
					problems = append(problems, "unknown placeholder "+q("{"+name+"}")+"; "+declared+" (write {{ for a literal {)")
				}
				i = j + 1
				continue
			}
		}
		lit.WriteByte(s[i])
		i++
	}
	flush()
	for k, u := range used {
		if !u {
			problems = append(problems, "argument "+q(args[k])+" is never used; put "+q("{"+strings.TrimSuffix(args[k], "...")+"}")+" in the prompt")
		}
	}
	return parts, problems
}

func isIdent(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_'
}

func (w *walker) output(f field) Output {
	var out Output
	m := w.known(f.val, f.path, "dir", "allow")
	if v, ok := m["dir"]; ok {
		if s, good := w.str(v); good {
			if d, msg := cleanDir(s); msg != "" {
				w.add(v.val.Line, v.path, "%s", msg)
			} else {
				out.Dir = d
			}
		}
	}
	if v, ok := m["allow"]; ok {
		out.Allow, _ = w.strs(v, maxListItems, false, func(g string) string {
			if msg := globProblem(g); msg != "" {
				return "glob " + q(g) + ": " + msg
			}
			return ""
		})
		if v.val.Kind == yaml.SequenceNode && len(v.val.Content) == 0 {
			w.add(v.val.Line, v.path, "an empty list would allow no writes; leave allow out to use the operator's list")
		}
	}
	return out
}

// cleanDir checks a directory path and returns it as "a/b/".
func cleanDir(s string) (string, string) {
	d := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "./"), "/")
	switch {
	case d == "" || d == ".":
		return "", "want a directory inside the repository, such as output/ (not its root)"
	case strings.HasPrefix(d, "/"):
		return "", "must be relative to the repository root (no leading /)"
	case strings.ContainsAny(d, `*?[]\`):
		return "", "a directory, not a glob: no * ? [ ] or \\"
	case len(d) > maxGlobBytes:
		return "", "longer than 256 bytes"
	}
	for _, seg := range strings.Split(d, "/") {
		switch {
		case seg == "" || seg == "." || seg == "..":
			return "", `has an empty, "." or ".." segment`
		case strings.EqualFold(seg, ".git"):
			return "", ".git is never written"
		case strings.IndexFunc(seg, unicode.IsControl) >= 0:
			return "", "has control characters"
		}
	}
	return d + "/", ""
}

func (w *walker) model(f field) Model {
	var out Model
	m := w.known(f.val, f.path, "id", "limits")
	if v, ok := m["id"]; ok {
		if s, good := w.str(v); good {
			switch {
			case s == "" || len(s) > maxModelID || strings.IndexFunc(s, unicode.IsSpace) >= 0 || strings.IndexFunc(s, unicode.IsControl) >= 0:
				w.add(v.val.Line, v.path, "want a model id such as us.anthropic.claude-sonnet-4-6 (no spaces, up to %d characters)", maxModelID)
			default:
				out.ID = s
			}
		}
	}
	if v, ok := m["limits"]; ok {
		l := w.known(v.val, v.path, "max_turns", "max_tokens", "timeout")
		if x, ok := l["max_turns"]; ok {
			out.Limits.MaxTurns, _ = w.integer(x, 1, maxTurnsCeiling)
		}
		if x, ok := l["max_tokens"]; ok {
			out.Limits.MaxTokens, _ = w.integer(x, 1, maxTokensCeiling)
		}
		if x, ok := l["timeout"]; ok {
			out.Limits.Timeout = w.duration(x)
		}
	}
	return out
}

// duration reads a Go duration such as "10m" or "90s", from 1s to 24h.
func (w *walker) duration(f field) time.Duration {
	const want = "want a duration such as 10m, 90s or 1h30m, from 1s to 24h"
	if !w.usable(f.val, f.path) {
		return 0
	}
	if f.val.Kind != yaml.ScalarNode || f.val.ShortTag() != "!!str" {
		w.add(f.val.Line, f.path, "%s, got %s", want, describe(f.val))
		return 0
	}
	d, err := time.ParseDuration(strings.TrimSpace(f.val.Value))
	if err != nil || d < time.Second || d > maxTimeout {
		w.add(f.val.Line, f.path, "%s, got %s", want, q(f.val.Value))
		return 0
	}
	return d
}

func (w *walker) mergeRequest(f field) MergeRequest {
	var out MergeRequest
	m := w.known(f.val, f.path, "draft", "labels", "reviewers", "target")
	if v, ok := m["draft"]; ok {
		out.Draft, _ = w.boolean(v)
	}
	if v, ok := m["labels"]; ok {
		out.Labels, _ = w.strs(v, maxListItems, false, func(s string) string {
			switch {
			case strings.TrimSpace(s) == "":
				return "a label cannot be empty"
			case strings.ContainsRune(s, ','):
				return "a label cannot contain a comma"
			case utf8Len(s) > maxLabelRunes || strings.IndexFunc(s, unicode.IsControl) >= 0:
				return "a label is one line of at most 100 characters"
			}
			return ""
		})
		for i, l := range out.Labels {
			out.Labels[i] = strings.TrimSpace(l)
		}
	}
	if v, ok := m["reviewers"]; ok {
		users, _ := w.strs(v, maxListItems, false, func(s string) string {
			u := strings.TrimPrefix(s, "@")
			if !userRE.MatchString(u) || len(u) > maxUsernameLength {
				return q(s) + " is not a GitLab username"
			}
			return ""
		})
		for _, u := range users {
			out.Reviewers = append(out.Reviewers, strings.TrimPrefix(u, "@"))
		}
	}
	if v, ok := m["target"]; ok {
		if s, good := w.str(v); good {
			if msg := branchProblem(s); msg != "" {
				w.add(v.val.Line, v.path, "%s", msg)
			} else {
				out.Target = s
			}
		}
	}
	return out
}

// branchProblem checks a branch name by git's rules (check-ref-format),
// and keeps agentbot's own agent/ branches out.
func branchProblem(s string) string {
	const bad = "not a valid branch name"
	switch {
	case s == "" || len(s) > maxBranchBytes:
		return bad
	case strings.HasPrefix(s, "agent/"):
		return "agent/ branches are agentbot's own; a merge request cannot target them"
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") ||
		strings.HasSuffix(s, ".") || strings.HasSuffix(s, ".lock") || s == "@" ||
		strings.Contains(s, "..") || strings.Contains(s, "//") || strings.Contains(s, "@{") ||
		strings.ContainsAny(s, " ~^:?*[\\") || strings.IndexFunc(s, unicode.IsControl) >= 0:
		return bad
	}
	for _, seg := range strings.Split(s, "/") {
		if strings.HasPrefix(seg, ".") {
			return bad
		}
	}
	return ""
}

func (w *walker) access(f field) Access {
	var out Access
	m := w.known(f.val, f.path, "min_level")
	if v, ok := m["min_level"]; ok {
		if s, good := w.str(v); good {
			name := strings.ToLower(strings.TrimSpace(s))
			for _, a := range accessLevels {
				if a.name == name {
					out.MinLevel = a.level
				}
			}
			if out.MinLevel == 0 {
				w.add(v.val.Line, v.path, "want one of guest, planner, reporter, developer, maintainer, owner; got %s", q(s))
			}
		}
	}
	return out
}

func (w *walker) review(f field) Review {
	out := Review{Enabled: true}
	m := w.known(f.val, f.path, "enabled", "max_inline_comments", "suggest_fixes", "ignore")
	if v, ok := m["enabled"]; ok {
		if b, good := w.boolean(v); good {
			out.Enabled = b
		}
	}
	if v, ok := m["max_inline_comments"]; ok {
		if n, good := w.integer(v, 0, maxInlineCeiling); good {
			out.MaxInlineComments = &n
		}
	}
	if v, ok := m["suggest_fixes"]; ok {
		out.SuggestFixes, _ = w.boolean(v)
	}
	if v, ok := m["ignore"]; ok {
		out.Ignore, _ = w.strs(v, maxIgnore, false, func(g string) string {
			if msg := globProblem(g); msg != "" {
				return "glob " + q(g) + ": " + msg
			}
			return ""
		})
	}
	return out
}

func (w *walker) instructions(f field) InstructionLimits {
	var out InstructionLimits
	m := w.known(f.val, f.path, "max_bytes")
	if v, ok := m["max_bytes"]; ok {
		if n, good := w.integer(v, 0, maxInstrCeiling); good {
			out.MaxBytes = &n
		}
	}
	return out
}

func (w *walker) pipelines(f field, c *Config) []Rule {
	n := f.val
	if !w.usable(n, f.path) || isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		w.add(n.Line, f.path, "want a list of rules (each starting with \"- name: …\"), got %s", describe(n))
		return nil
	}
	if len(n.Content) > maxRules {
		w.add(n.Line, f.path, "at most %d rules, got %d", maxRules, len(n.Content))
		return nil
	}
	var out []Rule
	names := map[string]int{}
	for i, item := range n.Content {
		path := f.path + "[" + strconv.Itoa(i) + "]"
		r, ok := w.rule(field{key: f.key, val: item, path: path}, c)
		if r.Name != "" {
			if line, dup := names[r.Name]; dup {
				w.add(item.Line, path+".name", "duplicate rule name (first on line %d)", line)
				ok = false
			}
			names[r.Name] = item.Line
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

func (w *walker) rule(f field, c *Config) (Rule, bool) {
	r := Rule{Line: f.val.Line}
	bad := w.count()
	m := w.known(f.val, f.path, "name", "when", "run", "report")
	if f.val.Kind != yaml.MappingNode {
		return r, false
	}
	if v, ok := m["name"]; ok {
		if s, good := w.str(v); good {
			if !ruleNameRE.MatchString(s) || len(s) > maxRuleName {
				w.add(v.val.Line, v.path, "a rule name is up to %d letters, digits, spaces, . _ and -", maxRuleName)
			} else {
				r.Name = s
			}
		}
	} else {
		w.add(f.val.Line, f.path+".name", "required")
	}

	if v, ok := m["when"]; ok {
		wm := w.known(v.val, v.path, "status", "ref", "source")
		x, ok := wm["status"]
		if ok {
			r.Status, _ = w.strs(x, maxListItems, true, oneOf("status", pipelineStatuses))
		}
		if (!ok || isNull(x.val)) && (isNull(v.val) || v.val.Kind == yaml.MappingNode) {
			w.add(v.val.Line, v.path+".status", "required: the pipeline statuses to act on, as [failed]")
		}
		if x, ok := wm["ref"]; ok {
			r.Refs, _ = w.strs(x, maxListItems, true, func(g string) string {
				if msg := globProblem(g); msg != "" {
					return "ref " + q(g) + ": " + msg
				}
				return ""
			})
		}
		if x, ok := wm["source"]; ok {
			r.Sources, _ = w.strs(x, maxListItems, true, oneOf("source", pipelineSources))
		}
	} else {
		w.add(f.val.Line, f.path+".when", "required: when: {status: [failed]} at least")
	}

	if v, ok := m["run"]; ok {
		w.ruleRun(v, &r, c)
	} else {
		w.add(f.val.Line, f.path+".run", "required: run: {command: diagnose} or run: {prompt: \"…\"}")
	}

	r.Report = ReportMR
	if r.Command == "diagnose" || r.Command == "review" {
		r.Report = ReportNote
	}
	if v, ok := m["report"]; ok {
		if s, good := w.str(v); good {
			switch Report(s) {
			case ReportMR, ReportNote, ReportBoth:
				r.Report = Report(s)
			default:
				w.add(v.val.Line, v.path, "want mr, note or both; got %s", q(s))
			}
		}
	}
	if r.Report != ReportMR && len(r.Sources) > 0 && !anyFrom(r.Sources, "merge_request_event", "push", "web", "api", "trigger", "external_pull_request_event") {
		w.add(r.Line, f.path+".report", "pipelines from %s have no merge request to post a note on; use report: mr", strings.Join(r.Sources, ", "))
	}
	return r, w.count() == bad
}

func (w *walker) ruleRun(v field, r *Rule, c *Config) {
	m := w.known(v.val, v.path, "command", "args", "prompt")
	cmdF, hasCmd := m["command"]
	promptF, hasPrompt := m["prompt"]
	argsF, hasArgs := m["args"]
	switch {
	case hasCmd && hasPrompt:
		w.add(promptF.key.Line, v.path, "give command or prompt, not both")
		return
	case !hasCmd && !hasPrompt:
		if v.val.Kind == yaml.MappingNode || isNull(v.val) {
			w.add(v.val.Line, v.path, "required: command: diagnose (or a command of this file), or prompt: \"…\"")
		}
		return
	case hasPrompt:
		if hasArgs {
			w.add(argsF.key.Line, argsF.path, "args go with a command, not a prompt")
		}
		if s, good := w.str(promptF); good {
			if msg := promptProblem(s); msg != "" {
				w.add(promptF.val.Line, promptF.path, "%s", msg)
			} else {
				r.Prompt = s
			}
		}
		return
	}
	verb, good := w.str(cmdF)
	if !good {
		return
	}
	verb = strings.ToLower(verb)
	if verb == "analyse" {
		verb = "analyze"
	}
	var args []string
	if hasArgs {
		args, good = w.strs(argsF, maxArgs, false, nil)
		if !good {
			return
		}
	}
	line := cmdF.val.Line
	switch verb {
	case "diagnose", "review":
		if len(args) > 0 {
			w.add(argsF.key.Line, argsF.path, "%s takes no args", verb)
		}
	case "analyze":
		if len(args) != 1 {
			w.add(line, v.path, "analyze needs args: [TICKER], one ticker symbol")
			return
		}
		t, ok := command.NormalizeTicker(args[0])
		if !ok {
			w.add(argsF.val.Line, argsF.path, "%s is not a ticker symbol", q(args[0]))
			return
		}
		args[0] = t
	case "help":
		w.add(line, cmdF.path, "help cannot run from a pipeline")
		return
	default:
		cmd, ok := c.Command(verb)
		if !ok && w.declared[verb] {
			return // the command's own problems are reported
		}
		if !ok {
			known := "diagnose, review, analyze"
			if vs := c.Verbs(); len(vs) > 0 {
				known += ", " + strings.Join(vs, ", ")
			}
			w.add(line, cmdF.path, "unknown command %s; want one of %s", q(verb), known)
			return
		}
		if _, err := cmd.expand(args); err != nil {
			w.add(line, v.path, "%s", err.Error())
			return
		}
	}
	r.Command, r.Args = verb, args
}

func oneOf(what string, allowed []string) func(string) string {
	return func(s string) string {
		if contains(allowed, s) {
			return ""
		}
		msg := "unknown " + what + " " + q(s)
		if c := closest(s, allowed); c != "" {
			return msg + "; did you mean " + q(c) + "?"
		}
		return msg + "; want one of " + strings.Join(allowed, ", ")
	}
}

func anyFrom(list []string, want ...string) bool {
	for _, s := range list {
		if contains(want, s) {
			return true
		}
	}
	return false
}

func utf8Len(s string) int { return len([]rune(s)) }
