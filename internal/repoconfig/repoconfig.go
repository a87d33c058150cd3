// Package repoconfig reads a project's .agentbot.yml and its AGENTS.md.
//
// The caller fetches both from the project's default branch (a branch or a
// merge request cannot change how the bot treats its project) and hands the
// bytes over; this package does no I/O.
//
// Parse is strict: unknown keys, wrong types and bad values are errors, and
// every problem in the file is reported at once with its line, as a
// *Problems whose Markdown is what the bot posts on the thread. A run does
// not go ahead with a file that has problems.
//
// The operator's settings bound the project's: Config.Effective combines the
// two, and a project that asks for more than the operator allows (a wider
// write allowlist, higher limits, a model the operator did not approve, a
// lower access level) gets the operator's value and a note saying so.
//
// The file's format is documented in docs/repoconfig.md.
package repoconfig

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits on the file and its parts.
const (
	MaxFileBytes      = 64 << 10 // the file itself
	maxCommands       = 50
	maxArgs           = 10
	maxPromptBytes    = 8 << 10
	maxDescription    = 200 // runes
	maxRules          = 20
	maxListItems      = 20 // labels, reviewers, allow globs, statuses, sources, refs
	maxIgnore         = 50
	maxModelID        = 200
	maxRuleName       = 64
	maxTurnsCeiling   = 1000
	maxTokensCeiling  = 1_000_000_000
	maxTimeout        = 24 * time.Hour
	maxInlineCeiling  = 1000
	maxInstrCeiling   = 1 << 20
	maxLabelRunes     = 100
	maxBranchBytes    = 200
	maxUsernameLength = 255
)

// Version is the only version of the format.
const Version = 1

// Config is a parsed, valid .agentbot.yml. Its zero value (and a nil
// *Config) means "no file": the operator's settings apply.
type Config struct {
	Version      int
	Commands     []Command // in file order
	Output       Output
	Model        Model
	MergeRequest MergeRequest
	Access       Access
	Review       Review
	Pipelines    []Rule // in file order; the first match wins
	Instructions InstructionLimits

	// lines maps a setting's path to the line it was written on, for
	// problems found later by Effective.
	lines map[string]int
}

// Command is one of the project's own verbs: "/agent compare AAPL MSFT".
type Command struct {
	Verb        string
	Description string
	// Args are the argument names, in order. The last may end in "..." to
	// take all the remaining words (at least one).
	Args []string
	// Prompt is the template; {name} is replaced by the argument of that
	// name and {{ is a literal {.
	Prompt string
	// AllowFiles says whether the run may write files and open a merge
	// request (default true); when false the agent only answers on the
	// thread.
	AllowFiles bool
	Line       int

	parts []part
}

// part is a piece of a prompt template: literal text or an argument.
type part struct {
	lit string
	arg int // index into Args, or -1 for lit
}

// Output is where the agent writes.
type Output struct {
	// Dir is the directory the agent is told to write in, as "reports/";
	// empty means the default (output/, or the allowlist's own directory).
	Dir string
	// Allow narrows the operator's write allowlist; empty means the
	// operator's.
	Allow []string
}

// Model picks the model and its limits, within the operator's.
type Model struct {
	ID     string // empty: the operator's default
	Limits Limits
}

// Limits bound a run; zero fields are not set.
type Limits struct {
	MaxTurns  int
	MaxTokens int
	Timeout   time.Duration
}

// MergeRequest shapes the merge requests the bot opens.
type MergeRequest struct {
	Draft     bool
	Labels    []string
	Reviewers []string // usernames, without "@"
	Target    string   // branch; empty means the default branch
}

// Access is who may call the bot.
type Access struct {
	// MinLevel is a GitLab access level (10 guest … 50 owner); 0 is not set.
	MinLevel int
}

// Review shapes reviews of merge requests.
type Review struct {
	Enabled           bool // default true
	MaxInlineComments *int // nil: the operator's maximum
	SuggestFixes      bool // open a follow-up merge request with fixes
	Ignore            []string
}

// InstructionLimits bounds the project's AGENTS.md.
type InstructionLimits struct {
	MaxBytes *int // nil: the operator's maximum; 0 leaves them out
}

// Report is where a pipeline rule reports.
type Report string

// Where a pipeline rule's run reports.
const (
	ReportMR   Report = "mr"   // a merge request with the files written
	ReportNote Report = "note" // a note on the pipeline's merge request
	ReportBoth Report = "both"
)

// Rule runs a command when a pipeline event matches it.
type Rule struct {
	Name string
	// Status, Refs and Sources must each match (empty Refs or Sources match
	// anything). Refs are globs in the allowlist's syntax.
	Status  []string
	Refs    []string
	Sources []string
	// Command is "diagnose", "review", "analyze" or a custom verb, with
	// Args; or Prompt is a request in words. Exactly one is set.
	Command string
	Args    []string
	Prompt  string
	Report  Report
	Line    int
}

// Verbs are the custom verbs, for command.Options.CustomVerbs.
func (c *Config) Verbs() []string {
	if c == nil {
		return nil
	}
	out := make([]string, len(c.Commands))
	for i, cmd := range c.Commands {
		out[i] = cmd.Verb
	}
	return out
}

// Command returns the custom command for verb.
func (c *Config) Command(verb string) (Command, bool) {
	if c == nil {
		return Command{}, false
	}
	verb = strings.ToLower(verb)
	for _, cmd := range c.Commands {
		if cmd.Verb == verb {
			return cmd, true
		}
	}
	return Command{}, false
}

// Parse reads .agentbot.yml. On any problem it returns a nil Config and a
// *Problems listing them all. An empty file (or one with only comments) is
// a valid empty Config.
func Parse(data []byte) (*Config, error) {
	w := &walker{lines: map[string]int{}, declared: map[string]bool{}}
	c := &Config{lines: w.lines, Review: Review{Enabled: true}}
	if len(data) > MaxFileBytes {
		w.add(0, "", "the file is %d bytes; the limit is %d", len(data), MaxFileBytes)
		return nil, w.problems(false)
	}
	if !utf8.Valid(data) {
		w.add(firstInvalidLine(data), "", "the file is not valid UTF-8 text")
		return nil, w.problems(false)
	}
	lm := newLineMap(data)
	root, err := decode(data, w, lm)
	if err != nil {
		return nil, err
	}
	if root == nil || isNull(root) {
		return c, nil
	}
	w.config(root, c)
	if p := w.problems(false); p != nil {
		for i := range p.List {
			p.List[i].Line = lm.file(p.List[i].Line)
		}
		return nil, p
	}
	if lm != nil {
		for k, l := range c.lines {
			c.lines[k] = lm.file(l)
		}
		for i := range c.Commands {
			c.Commands[i].Line = lm.file(c.Commands[i].Line)
		}
		for i := range c.Pipelines {
			c.Pipelines[i].Line = lm.file(c.Pipelines[i].Line)
		}
	}
	return c, nil
}

// lineMap maps YAML's line numbers to the file's. YAML also ends a line at
// a lone CR, NEL, LS or PS; GitLab and editors count LF only. nil is the
// identity.
type lineMap []int

func newLineMap(data []byte) lineMap {
	if !bytes.ContainsAny(data, "\r\u0085\u2028\u2029") {
		return nil
	}
	m := lineMap{0, 1}
	file := 1
	for i := 0; i < len(data); {
		switch {
		case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
			file++
			m = append(m, file)
			i += 2
		case data[i] == '\n':
			file++
			m = append(m, file)
			i++
		case data[i] == '\r':
			m = append(m, file)
			i++
		case bytes.HasPrefix(data[i:], []byte("\u0085")):
			m = append(m, file)
			i += 2
		case bytes.HasPrefix(data[i:], []byte("\u2028")), bytes.HasPrefix(data[i:], []byte("\u2029")):
			m = append(m, file)
			i += 3
		default:
			i++
		}
	}
	return m
}

// file is the file's line for YAML's line y.
func (m lineMap) file(y int) int {
	switch {
	case m == nil || y <= 0:
		return y
	case y < len(m):
		return m[y]
	}
	return m[len(m)-1]
}

// decode parses the YAML into a node tree, turning syntax errors and extra
// documents into problems. root is nil for an empty file.
func decode(data []byte, w *walker, lm lineMap) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		line, msg := syntaxError(data, err, lm)
		w.add(line, "", "%s", msg)
		return nil, w.problems(false)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		w.add(lm.file(next.Line), "", "only one YAML document is allowed; remove the second \"---\" and what follows")
		return nil, w.problems(false)
	case !errors.Is(err, io.EOF):
		line, msg := syntaxError(data, err, lm)
		w.add(line, "", "%s", msg)
		return nil, w.problems(false)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the messages of the YAML parser (as opposed to its
// scanner), whose lines it reports counting from 0.
var parserProblems = []string{
	"did not find expected <stream-start>", "did not find expected <document start>",
	"found undefined tag handle", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found duplicate %YAML directive", "found incompatible YAML document", "found duplicate %TAG directive",
}

// syntaxError turns a YAML parser error into a line and a plain message.
// The parser's line names where the broken construct started; it counts
// from 0 for parser (not scanner) errors, and is missing for some errors. A
// tab is found by looking for it, and a missing line by parsing ever longer
// prefixes of the file.
func syntaxError(data []byte, err error, lm lineMap) (int, string) {
	s := err.Error()
	line := 0
	msg := strings.TrimPrefix(s, "yaml: ")
	if m := yamlLine.FindStringSubmatch(s); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if contains(parserProblems, msg) {
			line++
		}
		line = lm.file(line)
	}
	if strings.Contains(msg, "tab character") {
		if l := tabIndentedLine(data, line); l > 0 {
			line = l
		}
		return line, "indented with a tab; YAML indentation must use spaces"
	}
	if line == 0 {
		line = failingLine(data, msg)
	}
	return line, "YAML syntax error: " + clean(msg, 120)
}

// tabIndentedLine is the first line at or after from whose indentation
// holds a tab.
func tabIndentedLine(data []byte, from int) int {
	for i, l := range strings.Split(string(data), "\n") {
		if i+1 < from {
			continue
		}
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if strings.Contains(indent, "\t") && strings.TrimSpace(l) != "" {
			return i + 1
		}
	}
	return 0
}

// failingLine finds the shortest prefix of whole lines that fails with
// msg, by bisection, and returns its last line (0 when not found).
func failingLine(data []byte, msg string) int {
	lines := strings.SplitAfter(string(data), "\n")
	fails := func(n int) bool {
		var doc yaml.Node
		dec := yaml.NewDecoder(strings.NewReader(strings.Join(lines[:n], "")))
		for {
			err := dec.Decode(&doc)
			if err == nil {
				continue
			}
			return !errors.Is(err, io.EOF) && strings.Contains(err.Error(), msg)
		}
	}
	lo, hi := 1, len(lines)
	if !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

func firstInvalidLine(data []byte) int {
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size <= 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		data = data[size:]
	}
	return 0
}
