// Package command turns the text of a GitLab note into a Command: something to
// run, a reply to post at once (help, or a usage message for a malformed
// command), or nothing at all. It is pure: no I/O, no clock, no globals.
//
// # What counts as a command
//
// A note is a command only when the command is the first thing in it: leading
// blank lines and up to three spaces of indentation are allowed, then either the
// prefix (default "/agent") or a mention of the bot ("@agentbot"), then white
// space or the end of the line. Matching is case-insensitive. "/agentfoo" and
// "@agentbot-dev" are not ours. Because the command must come first, a command
// quoted with ">", put in inline code, a fenced code block or an HTML comment is
// never run; a first line indented by four or more columns (or a tab) is a
// Markdown indented code block and is ignored too. A mention may be followed by
// ":" or "," ("@agentbot, help").
//
// The rest of the first line is the request. Every later line of the note is
// kept, as typed, in Command.Context (leading blank lines and trailing space
// removed); the caller bounds its size.
//
// # Arguments
//
// The request is split into words at white space. Quotes group words, but
// only where a word starts (or right after "=", as in name="Q3 report"), and
// only when the matching closing quote exists: "a 'b c'" is two words, while
// the apostrophes in "what's Apple's P/E" stay ordinary letters. ASCII quotes
// and typographic ones (“…”, ‘…’) work; inside double quotes a backslash escapes
// a double quote or a backslash; everywhere else a backslash is a plain
// character, so paths such as C:\data survive. "#" is not a comment. This is
// deliberately not github.com/google/shlex, which drops everything after "#",
// fails on a lone apostrophe and eats backslashes.
//
// # Verbs
//
//   - help: the list of commands. "help" followed by one known verb is help
//     too; "help" followed by anything else is a free-form request ("help me
//     write a summary of…").
//   - analyze TICKER (also the British "analyse"): exactly one ticker such as
//     AAPL, BRK.B, 7203.T or RDS-A; lower case is accepted and upper-cased, and
//     a leading "$" (a cashtag) is dropped. Anything else gets a usage reply
//     that says what is wrong, with an example.
//   - review, diagnose: recorded with their arguments; whether they apply
//     (merge requests only) is for the caller to decide.
//   - the project's custom verbs (Options.CustomVerbs): Kind Custom, with args.
//   - anything else is a free-form request: Kind Freeform, Request holds the
//     text after the prefix as typed.
//   - the prefix alone is a usage reply.
//
// # Did you mean
//
// A first word that is not a verb but is close to one (optimal string
// alignment distance, i.e. Levenshtein plus swapped neighbours, at most 1 for
// verbs of up to four letters and at most 2 for longer ones) gets a usage reply
// with "did you mean", but only when the note is shaped like that verb's
// command: a single word ("/agent hepl", "/agent diagnoes"), or, for analyze,
// the misspelt verb followed by exactly one valid ticker ("/agent analzye
// AAPL"). Any other multi-word request stays free-form, so "/agent review-ish
// thoughts on the Q3 memo" or "/agent helm chart for the API" are passed on to
// the agent rather than second-guessed.
//
// Replies quote user input only in code spans, on one line, without
// backticks, and cut to a few dozen characters.
package command

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultPrefix is the prefix used when Options.Prefix is empty.
const DefaultPrefix = "/agent"

// Options says how notes address the bot.
type Options struct {
	// Prefix starts a command; "" means DefaultPrefix. Matched case-insensitively.
	Prefix string
	// BotUsername, when set, makes "@<BotUsername> verb …" a command too.
	// A leading "@" is ignored.
	BotUsername string
	// CustomVerbs are the project's own verbs (from .agentbot.yml). They parse
	// as Kind Custom and count as known verbs for "did you mean". A custom verb
	// cannot replace a built-in one.
	CustomVerbs []string
}

// Kind is what a note asks for.
type Kind int

// The kinds of note.
const (
	// Ignore: not a command (no prefix, quoted, in code, …). Nothing to do.
	Ignore Kind = iota
	// Help: post Command.Reply.
	Help
	// Analyze: analyze Command.Ticker.
	Analyze
	// Freeform: a request in the user's own words, in Command.Request.
	Freeform
	// Review: review the merge request (Args as given).
	Review
	// Diagnose: diagnose the failed pipeline (Args as given).
	Diagnose
	// Custom: one of Options.CustomVerbs, with Args.
	Custom
	// Usage: a malformed command; post Command.Reply and do nothing else.
	Usage
)

var kindNames = [...]string{"ignore", "help", "analyze", "freeform", "review", "diagnose", "custom", "usage"}

// String returns a lower-case name for logs and metrics.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Command is the result of Parse.
type Command struct {
	Kind Kind
	// Verb is the first word, lower-cased ("analyse" becomes "analyze"). For a
	// did-you-mean usage reply it is the verb as typed, lower-cased.
	Verb string
	// Args are the words after the verb, unquoted.
	Args []string
	// Ticker is the upper-cased ticker for Analyze.
	Ticker string
	// Request is the rest of the first line after the prefix, trimmed, as typed.
	Request string
	// Context is the rest of a multi-line note, as typed.
	Context string
	// Reply is the Markdown to post for Help and Usage.
	Reply string
}

// Built-in verbs.
const (
	verbHelp     = "help"
	verbAnalyze  = "analyze"
	verbAnalyse  = "analyse"
	verbReview   = "review"
	verbDiagnose = "diagnose"
)

// builtins in the order help lists them; analyse is an alias, not listed.
var builtins = []string{verbHelp, verbAnalyze, verbReview, verbDiagnose}

// Parse classifies one note. It never panics and does no I/O.
func Parse(note string, opt Options) Command {
	first, rest, ok := firstLine(note)
	if !ok {
		return Command{Kind: Ignore}
	}
	request, via, ok := stripAddress(first, opt)
	if !ok {
		return Command{Kind: Ignore}
	}
	cmd := Command{Request: request, Context: context(rest)}
	if request == "" {
		cmd.Kind = Usage
		cmd.Reply = emptyReply(via, cmd.Context != "")
		return cmd
	}
	words := splitWords(request)
	if len(words) == 0 { // cannot happen for a non-empty trimmed request; be safe
		cmd.Kind = Freeform
		return cmd
	}
	cmd.Verb = strings.ToLower(words[0])
	cmd.Args = words[1:]

	switch cmd.Verb {
	case verbHelp:
		if len(cmd.Args) == 0 || (len(cmd.Args) == 1 && isKnown(strings.ToLower(cmd.Args[0]), opt)) {
			cmd.Kind = Help
			cmd.Reply = HelpText(opt, nil)
			return cmd
		}
		cmd.Kind = Freeform
		return cmd
	case verbAnalyze, verbAnalyse:
		cmd.Verb = verbAnalyze
		return analyze(cmd, via)
	case verbReview:
		cmd.Kind = Review
		return cmd
	case verbDiagnose:
		cmd.Kind = Diagnose
		return cmd
	}
	for _, v := range opt.CustomVerbs {
		if strings.EqualFold(strings.TrimSpace(v), cmd.Verb) {
			cmd.Kind = Custom
			return cmd
		}
	}
	if s, ok := suggest(cmd.Verb, cmd.Args, opt); ok {
		cmd.Kind = Usage
		cmd.Reply = didYouMeanReply(cmd.Verb, s, cmd.Args, via)
		return cmd
	}
	cmd.Kind = Freeform
	return cmd
}

func analyze(cmd Command, via string) Command {
	switch len(cmd.Args) {
	case 0:
		cmd.Kind = Usage
		cmd.Reply = analyzeReply("`analyze` needs a ticker symbol.", via)
		return cmd
	case 1:
		t, ok := NormalizeTicker(cmd.Args[0])
		if !ok {
			cmd.Kind = Usage
			cmd.Reply = analyzeReply(quote(cmd.Args[0])+" is not a ticker symbol I recognise.", via)
			return cmd
		}
		cmd.Kind = Analyze
		cmd.Ticker = t
		return cmd
	default:
		cmd.Kind = Usage
		cmd.Reply = analyzeReply("`analyze` takes exactly one ticker symbol, and got "+strconv.Itoa(len(cmd.Args))+
			" words. To ask something else, write it in your own words, like `"+via+" compare AAPL with MSFT`.", via)
		return cmd
	}
}

// firstLine finds the first non-blank line and returns it without its
// indentation, plus what follows it. ok is false when the note is empty or the
// line is an indented code block.
func firstLine(note string) (first, rest string, ok bool) {
	s := note
	for {
		if s == "" {
			return "", "", false
		}
		line, after, found := strings.Cut(s, "\n")
		if strings.TrimSpace(line) != "" {
			s = line
			rest = after
			if !found {
				rest = ""
			}
			break
		}
		if !found {
			return "", "", false
		}
		s = after
	}
	s = strings.TrimSuffix(s, "\r")
	col := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			col++
		case '\t':
			col += 4 - col%4
		default:
			if col >= 4 {
				return "", "", false
			}
			return s[i:], rest, true
		}
		if col >= 4 {
			return "", "", false
		}
	}
	return "", "", false
}

// stripAddress removes the prefix or the bot mention from the start of line.
// via is the form to use in examples (the configured prefix or "@bot").
func stripAddress(line string, opt Options) (request, via string, ok bool) {
	prefix := strings.TrimSpace(opt.Prefix)
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if r, ok := cutFold(line, prefix, false); ok {
		return r, prefix, true
	}
	if bot := strings.TrimPrefix(strings.TrimSpace(opt.BotUsername), "@"); bot != "" {
		mention := "@" + bot
		if r, ok := cutFold(line, mention, true); ok {
			return r, mention, true
		}
	}
	return "", "", false
}

// cutFold reports whether line starts with word (case-insensitively) followed
// by white space or the end, and returns the trimmed remainder. With punct, a
// ":" or "," may follow the word directly.
func cutFold(line, word string, punct bool) (string, bool) {
	if len(line) < len(word) || !strings.EqualFold(line[:len(word)], word) {
		return "", false
	}
	r := line[len(word):]
	if punct && r != "" && (r[0] == ':' || r[0] == ',') {
		r = r[1:]
	}
	if r != "" {
		c, _ := utf8.DecodeRuneInString(r)
		if !unicode.IsSpace(c) {
			return "", false
		}
	}
	return strings.TrimSpace(r), true
}

// context returns the lines after the command, without leading blank lines
// and trailing white space.
func context(rest string) string {
	for rest != "" {
		line, after, found := strings.Cut(rest, "\n")
		if strings.TrimSpace(line) != "" {
			break
		}
		if !found {
			return ""
		}
		rest = after
	}
	return strings.TrimRightFunc(rest, unicode.IsSpace)
}

func isKnown(verb string, opt Options) bool {
	if verb == verbAnalyse {
		return true
	}
	for _, b := range builtins {
		if verb == b {
			return true
		}
	}
	for _, v := range opt.CustomVerbs {
		if strings.EqualFold(strings.TrimSpace(v), verb) {
			return true
		}
	}
	return false
}
