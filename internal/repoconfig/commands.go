package repoconfig

import (
	"errors"
	"strconv"
	"strings"
	"unicode"

	"gitlab.com/agentbot/agentbot/internal/command"
)

// maxArgRunes bounds one argument's value.
const maxArgRunes = 200

// ErrUnknownCommand is returned by Expand for a verb the file does not
// define.
var ErrUnknownCommand = errors.New("no such command in " + FileName)

// UsageError is a custom command called with the wrong arguments. Its
// Error is one line fit for a note; Markdown adds the usage with the
// prefix.
type UsageError struct {
	Verb  string
	Usage string // "compare <a> <b>"
	Msg   string // "takes 2 arguments and got 1"
}

func (e *UsageError) Error() string {
	return e.Verb + " " + e.Msg + "; usage: " + e.Usage
}

// Markdown is the reply to post: what is wrong and how to call it, e.g.
// "`compare` takes 2 arguments (a b) and got 1. Usage: `/agent compare <a> <b>`".
func (e *UsageError) Markdown(prefix string) string {
	if prefix == "" {
		prefix = command.DefaultPrefix
	}
	return "`" + e.Verb + "` " + e.Msg + ".\n\nUsage: `" + clean(prefix, 20) + " " + e.Usage + "`"
}

// Usage is how to call the command: "compare <a> <b>" or
// "ask <ticker> <question…>".
func (c Command) Usage() string {
	u := c.Verb
	if a := c.argsHelp(); a != "" {
		u += " " + a
	}
	return u
}

func (c Command) argsHelp() string {
	var parts []string
	for _, a := range c.Args {
		if name, rest := strings.CutSuffix(a, "..."); rest {
			parts = append(parts, "<"+name+"…>")
		} else {
			parts = append(parts, "<"+a+">")
		}
	}
	return strings.Join(parts, " ")
}

// Expand fills in the prompt of the custom command verb with args (the
// words after the verb). A wrong number of words or an unusable word is a
// *UsageError; an unknown verb is ErrUnknownCommand.
func (c *Config) Expand(verb string, args []string) (string, error) {
	cmd, ok := c.Command(verb)
	if !ok {
		return "", ErrUnknownCommand
	}
	return cmd.expand(args)
}

func (c Command) expand(args []string) (string, error) {
	n := len(c.Args)
	variadic := n > 0 && strings.HasSuffix(c.Args[n-1], "...")
	switch {
	case variadic && len(args) < n:
		return "", c.usage("takes at least " + plural(n, "argument") + " and got " + strconv.Itoa(len(args)))
	case !variadic && len(args) != n:
		if n == 0 {
			return "", c.usage("takes no arguments and got " + strconv.Itoa(len(args)))
		}
		return "", c.usage("takes " + plural(n, "argument") + " and got " + strconv.Itoa(len(args)))
	}
	values := make([]string, n)
	for i := range values {
		v := args[i]
		if variadic && i == n-1 {
			v = strings.Join(args[i:], " ")
		}
		if msg := argProblem(v); msg != "" {
			return "", c.usage("argument <" + strings.TrimSuffix(c.Args[i], "...") + "> " + msg)
		}
		values[i] = v
	}
	var b strings.Builder
	for _, p := range c.parts {
		if p.arg >= 0 {
			b.WriteString(values[p.arg])
		} else {
			b.WriteString(p.lit)
		}
	}
	return b.String(), nil
}

func (c Command) usage(msg string) *UsageError {
	return &UsageError{Verb: c.Verb, Usage: c.Usage(), Msg: msg}
}

func argProblem(v string) string {
	switch {
	case strings.TrimSpace(v) == "":
		return "is empty"
	case utf8Len(v) > maxArgRunes:
		return "is longer than " + strconv.Itoa(maxArgRunes) + " characters"
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0:
		return "contains control characters"
	}
	return ""
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// HelpEntries lists the project's commands for command.HelpText. A command
// without a description is described by its prompt's first line.
func HelpEntries(c *Config) []command.CustomHelp {
	if c == nil {
		return nil
	}
	out := make([]command.CustomHelp, 0, len(c.Commands))
	for _, cmd := range c.Commands {
		d := cmd.Description
		if d == "" {
			first, _, _ := strings.Cut(strings.TrimSpace(cmd.Prompt), "\n")
			d = clean(first, 80)
		}
		out = append(out, command.CustomHelp{Verb: cmd.Verb, Args: cmd.argsHelp(), Description: d})
	}
	return out
}
