package command

import (
	"strings"
	"unicode"
)

// maxQuoted is the most runes of user input a reply repeats.
const maxQuoted = 40

// CustomHelp describes one of the project's own commands for HelpText.
type CustomHelp struct {
	Verb        string // "compare"
	Args        string // "<TICKER> <TICKER>", may be empty
	Description string // one line
}

// HelpText is the Markdown reply to "help": the built-in verbs, then the
// project's custom verbs. custom adds descriptions; a verb in opt.CustomVerbs
// without an entry in custom is listed by name. Descriptions are cut to one
// line.
func HelpText(opt Options, custom []CustomHelp) string {
	p := strings.TrimSpace(opt.Prefix)
	if p == "" {
		p = DefaultPrefix
	}
	var b strings.Builder
	b.WriteString("**agentbot commands**\n\n")
	b.WriteString("Start a comment with `" + p + "`")
	if bot := strings.TrimPrefix(strings.TrimSpace(opt.BotUsername), "@"); bot != "" {
		b.WriteString(" or `@" + bot + "`")
	}
	b.WriteString(", then:\n\n")
	b.WriteString("| command | what it does |\n|---|---|\n")
	b.WriteString("| `" + p + " analyze <TICKER>` | research a company and open a merge request with the report (`AAPL`, `BRK.B`, `7203.T`) |\n")
	b.WriteString("| `" + p + " review` | review this merge request (merge requests only) |\n")
	b.WriteString("| `" + p + " diagnose` | find the likely cause of this merge request's failed pipeline |\n")
	b.WriteString("| `" + p + " <anything else>` | a request in your own words, e.g. `" + p + " summarise Q3 earnings for MSFT` |\n")
	b.WriteString("| `" + p + " help` | this list |\n")

	described := map[string]bool{}
	var rows []string
	for _, c := range custom {
		v := strings.ToLower(strings.TrimSpace(c.Verb))
		if v == "" || described[v] || isBuiltin(v) {
			continue
		}
		described[v] = true
		cmd := p + " " + v
		if a := OneLine(c.Args, 80); a != "" {
			cmd += " " + a
		}
		rows = append(rows, "| `"+cell(cmd)+"` | "+cell(OneLine(c.Description, 200))+" |\n")
	}
	for _, v := range opt.CustomVerbs {
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "" || described[v] || isBuiltin(v) {
			continue
		}
		described[v] = true
		rows = append(rows, "| `"+cell(p+" "+OneLine(v, 80))+"` | |\n")
	}
	if len(rows) > 0 {
		b.WriteString("\n**This project's commands**\n\n| command | what it does |\n|---|---|\n")
		for _, r := range rows {
			b.WriteString(r)
		}
	}
	b.WriteString("\nLines after the first are passed on as extra context. Commands in quotes or code blocks are ignored.\n")
	return b.String()
}

func isBuiltin(v string) bool {
	if v == verbAnalyse {
		return true
	}
	for _, b := range builtins {
		if v == b {
			return true
		}
	}
	return false
}

func emptyReply(via string, hasContext bool) string {
	msg := "Tell me what to do after `" + via + "`, on the same line, for example `" + via + " analyze AAPL`."
	if hasContext {
		msg = "Put the request on the same line as `" + via + "`; the lines below it are extra context. For example `" + via + " analyze AAPL`."
	}
	return msg + "\n\n" + helpHint(via)
}

func analyzeReply(problem, via string) string {
	return problem + "\n\nUsage: `" + via + " analyze <TICKER>`, for example `" + via + " analyze AAPL`, `" +
		via + " analyze BRK.B` or `" + via + " analyze 7203.T`.\n\n" + helpHint(via)
}

func didYouMeanReply(typed, verb string, args []string, via string) string {
	example := via + " " + verb
	switch {
	case len(args) == 1:
		example += " " + OneLine(args[0], maxQuoted)
	case verb == verbAnalyze:
		example += " AAPL"
	}
	return "I don't know the command " + quote(typed) + ". Did you mean `" + verb + "`, as in `" + example + "`?\n\n" + helpHint(via)
}

func helpHint(via string) string {
	return "Send `" + via + " help` for the list of commands."
}

// quote renders user input as a code span that cannot break out of itself.
func quote(s string) string { return CodeSpan(s, maxQuoted) }

// CodeSpan renders untrusted text (a comment, a config file's value) as a
// short code span that cannot break out of itself: at most n runes of it,
// "(empty)" when nothing is left.
func CodeSpan(s string, n int) string {
	s = OneLine(s, n)
	if s == "" {
		return "(empty)"
	}
	return "`" + s + "`"
}

// OneLine keeps at most n runes of s on one line, without backticks,
// control, format or replacement characters, and marks a cut with "…".
func OneLine(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range s {
		if count == n {
			b.WriteRune('…')
			break
		}
		switch {
		case r == '`':
			r = '\''
		case unicode.IsSpace(r):
			r = ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar:
			continue
		}
		b.WriteRune(r)
		count++
	}
	return strings.TrimSpace(b.String())
}

// cell escapes a table cell's pipes.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
