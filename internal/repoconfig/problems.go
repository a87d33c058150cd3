package repoconfig

import (
	"fmt"
	"gitlab.com/agentbot/agentbot/internal/command"
	"sort"
	"strconv"
	"strings"
)

// FileName is the name of the project's settings file, at the root of its
// default branch.
const FileName = ".agentbot.yml"

// Bounds on what a Problems list keeps and shows.
const (
	maxProblems = 100 // kept; later ones are counted in Problems.Dropped
	maxShown    = 20  // listed by Markdown
	maxQuoted   = 40  // runes of the file's text repeated in a message
)

// Problem is one thing wrong with the file, or one setting the operator's
// bounds overrode.
type Problem struct {
	// Line is the 1-based line in the file; 0 means the file as a whole.
	Line int
	// Path names the setting, as "commands.compare.prompt" or
	// "pipelines[0].when.status[1]"; empty for the file as a whole.
	Path string
	// Msg says what is wrong, in plain words.
	Msg string
}

// String renders "line 7: commands.compare.prompt: required".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found at once. Parse returns it as its error; a
// run must then not go ahead (the file may ask for stricter settings than
// the operator's, and ignoring it would loosen them). Config.Effective
// returns it with Overridden set for settings beyond the operator's bounds:
// there the operator's value was used and the run may go ahead.
type Problems struct {
	List []Problem
	// Dropped counts problems beyond the ones kept in List.
	Dropped int
	// Overridden marks problems from Effective: the file is valid but asks
	// for more than the operator allows, and the operator's values apply.
	Overridden bool
}

// Error lists the first few problems on one line.
func (p *Problems) Error() string {
	n := len(p.List) + p.Dropped
	var b strings.Builder
	b.WriteString(FileName + ": ")
	for i, q := range p.List {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", n-3)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(q.String())
	}
	if len(p.List) == 0 {
		b.WriteString("invalid")
	}
	return b.String()
}

// Markdown is the note to post on the thread: a short intro and a list of at
// most twenty problems, each with its line. Values from the file appear only
// in code spans and cut to a few dozen characters.
func (p *Problems) Markdown() string {
	n := len(p.List) + p.Dropped
	var b strings.Builder
	if p.Overridden {
		b.WriteString("This project's `" + FileName + "` asks for more than this agentbot's operator allows, " +
			"so the operator's settings were used instead:\n\n")
	} else {
		b.WriteString("I could not use this project's `" + FileName + "` (read from the default branch): ")
		if n == 1 {
			b.WriteString("it has a problem.")
		} else {
			b.WriteString("it has " + strconv.Itoa(n) + " problems.")
		}
		b.WriteString(" Nothing was run. Fix the file on the default branch, then ask again.\n\n")
	}
	for i, q := range p.List {
		if i == maxShown {
			break
		}
		b.WriteString("- ")
		if q.Line > 0 {
			b.WriteString("line " + strconv.Itoa(q.Line) + ": ")
		}
		if q.Path != "" {
			b.WriteString("`" + clean(q.Path, 80) + "`: ")
		}
		b.WriteString(oneLine(q.Msg, 500) + "\n")
	}
	if more := n - min(len(p.List), maxShown); more > 0 {
		b.WriteString("- … and " + strconv.Itoa(more) + " more\n")
	}
	return b.String()
}

// collector gathers problems while the file is walked.
type collector struct {
	list    []Problem
	dropped int
}

func (c *collector) add(line int, path, format string, args ...any) {
	if len(c.list) >= maxProblems {
		c.dropped++
		return
	}
	c.list = append(c.list, Problem{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// problems returns the sorted list as *Problems, or nil when there is none.
func (c *collector) problems(overridden bool) *Problems {
	if len(c.list) == 0 && c.dropped == 0 {
		return nil
	}
	sort.SliceStable(c.list, func(i, j int) bool { return c.list[i].Line < c.list[j].Line })
	return &Problems{List: c.list, Dropped: c.dropped, Overridden: overridden}
}

// q quotes text from the file as a short code span that cannot break out of
// itself.
func q(s string) string { return command.CodeSpan(s, maxQuoted) }

// clean keeps at most n runes of s on one line (command.OneLine).
func clean(s string, n int) string { return command.OneLine(s, n) }

// oneLine flattens a message we wrote (which may hold code spans from q) to
// one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
