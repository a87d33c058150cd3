package sanitize

import (
	"sort"
	"strings"
)

// Bounds on the parts of a link that Markdown allows to be long. A link
// whose destination or title runs past them is taken to hide the rest of
// its paragraph, so that the bounds can cut visible text but never reveal
// hidden text.
const (
	maxDest  = 2048
	maxTitle = 4096
	maxLabel = 999 // CommonMark's limit on a link label
)

// stripDefinitions removes link reference definitions ("[label]: url
// "title""), which Markdown never renders. Footnotes ("[^1]: text") are
// rendered and stay.
func stripDefinitions(s string) string {
	if !strings.Contains(s, "]:") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if n := definitionLen(s[i:]); n > 0 {
			i += n
			continue
		}
		e := strings.IndexByte(s[i:], '\n')
		if e < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+e+1])
		i += e + 1
	}
	return b.String()
}

// definitionLen measures the link reference definition at the start of line
// s, through the end of its last line; 0 when s does not start one. It takes
// more than CommonMark would rather than less: any indentation, block quote
// or list marker before it, and a definition whose title does not end
// before a blank line runs to that blank line.
func definitionLen(s string) int {
	p := skipContainerMarkers(s)
	if p+1 >= len(s) || s[p] != '[' || s[p+1] == '^' {
		return 0
	}
	q := p + 1
	for ; q < len(s) && q-p <= maxLabel; q++ {
		c := s[q]
		if c == '\\' {
			q++
			continue
		}
		if c == '[' || c == ']' || c == '\n' && blankLineAt(s, q) {
			break
		}
	}
	if q+1 >= len(s) || s[q] != ']' || s[q+1] != ':' {
		return 0
	}
	i := skipSpaces(s, q+2)
	if i < len(s) && s[i] == '\n' && !blankLineAt(s, i) {
		i = skipSpaces(s, i+1) // the destination may be on the next line
	}
	// The destination: "<…>" or a run without spaces.
	if i < len(s) && s[i] == '<' {
		if e := strings.IndexAny(s[i+1:], ">\n"); e >= 0 && s[i+1+e] == '>' {
			i += e + 2
		}
	}
	for i < len(s) && !isSpace(s[i]) {
		i++
	}
	// A title on the same line or the next one.
	j := skipSpaces(s, i)
	if j < len(s) && s[j] == '\n' && !blankLineAt(s, j) {
		j = skipSpaces(s, j+1)
	}
	if j < len(s) && (s[j] == '"' || s[j] == '\'' || s[j] == '(') {
		closer := s[j]
		if closer == '(' {
			closer = ')'
		}
		limit := min(len(s), j+1+maxTitle)
		if e := unescapedIndex(s[j+1:limit], closer); e >= 0 && !hasBlankLine(s[j:j+1+e]) {
			return lineEnd(s, j+1+e)
		}
		return lineEnd(s, nextBlank(s, j))
	}
	return lineEnd(s, i)
}

// hasBlankLine reports whether s holds a blank line after a line break.
func hasBlankLine(s string) bool {
	for i := 0; i < len(s); i++ {
		e := strings.IndexByte(s[i:], '\n')
		if e < 0 {
			return false
		}
		i += e
		if j := skipSpaces(s, i+1); j < len(s) && s[j] == '\n' {
			return true
		}
	}
	return false
}

// skipContainerMarkers skips what may come before a block inside block
// quotes and list items: spaces, '>', and list markers.
func skipContainerMarkers(s string) int {
	p := 0
	for p < len(s) {
		switch c := s[p]; {
		case c == ' ' || c == '\t' || c == '>':
			p++
		case (c == '-' || c == '*' || c == '+') && p+1 < len(s) && (s[p+1] == ' ' || s[p+1] == '\t'):
			p += 2
		case c >= '0' && c <= '9':
			q := p
			for q < len(s) && q-p < 9 && s[q] >= '0' && s[q] <= '9' {
				q++
			}
			if q+1 < len(s) && (s[q] == '.' || s[q] == ')') && (s[q+1] == ' ' || s[q+1] == '\t') {
				p = q + 2
				continue
			}
			return p
		default:
			return p
		}
	}
	return p
}

func skipSpaces(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// lineEnd is the index just after the end of the line holding i (after its
// '\n', or len(s)).
func lineEnd(s string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	if e := strings.IndexByte(s[i:], '\n'); e >= 0 {
		return i + e + 1
	}
	return len(s)
}

// blankLineAt reports whether the '\n' at i is followed by a line of only
// spaces and tabs (or by the end of s).
func blankLineAt(s string, i int) bool {
	j := skipSpaces(s, i+1)
	return j >= len(s) || s[j] == '\n'
}

// nextBlank is the index of the first '\n' at or after i that starts a blank
// line: where the paragraph holding i ends. len(s) when there is none.
func nextBlank(s string, i int) int {
	for i < len(s) {
		e := strings.IndexByte(s[i:], '\n')
		if e < 0 {
			return len(s)
		}
		i += e
		if blankLineAt(s, i) {
			return i
		}
		i++
	}
	return len(s)
}

// escaped reports whether s[i] follows an odd number of backslashes.
func escaped(s string, i int) bool {
	n := 0
	for i-1-n >= 0 && s[i-1-n] == '\\' {
		n++
	}
	return n%2 == 1
}

// unescapedIndex is the index of the first c in s not escaped by a
// backslash, or -1.
func unescapedIndex(s string, c byte) int {
	for i := 0; i < len(s); {
		e := strings.IndexByte(s[i:], c)
		if e < 0 {
			return -1
		}
		i += e
		if !escaped(s, i) {
			return i
		}
		i++
	}
	return -1
}

// runLen is the length of the run of backticks at s[i].
func runLen(s string, i int) int {
	n := 0
	for i+n < len(s) && s[i+n] == '`' {
		n++
	}
	return n
}

// backticks indexes the backtick runs of a text by length, so that finding
// the run that closes a code span is a binary search. It is built on first
// use.
type backticks struct {
	s     string
	byLen map[int][]int // run length → start positions, ascending
}

// closing is the start of the first run of exactly n backticks at or after
// from.
func (bt *backticks) closing(from, n int) (int, bool) {
	if bt.byLen == nil {
		bt.byLen = map[int][]int{}
		for i := 0; i < len(bt.s); {
			e := strings.IndexByte(bt.s[i:], '`')
			if e < 0 {
				break
			}
			i += e
			m := runLen(bt.s, i)
			bt.byLen[m] = append(bt.byLen[m], i)
			i += m
		}
	}
	runs := bt.byLen[n]
	k := sort.SearchInts(runs, from)
	if k == len(runs) {
		return 0, false
	}
	return runs[k], true
}

// matches pairs brackets and parentheses within paragraphs, as a stack
// does: close[i] is the index of the ']' or ')' that closes the '[' or '('
// at i, or 0. Brackets inside code spans do not count (code spans bind
// tighter than link brackets); parentheses do (a link's destination is read
// before its code spans). Escaped ones never count.
func matches(s string) []int32 {
	close := make([]int32, len(s))
	bt := backticks{s: s}
	var brackets, parens []int
	para := nextBlank(s, 0)
	inCode := -1 // end of the code span being crossed, for brackets only
	for i := 0; i < len(s); i++ {
		if i >= para {
			brackets, parens = brackets[:0], parens[:0]
			para = nextBlank(s, i+1)
		}
		c := s[i]
		switch {
		case c == '\\':
			i++
		case c == '`' && i >= inCode:
			n := runLen(s, i)
			if k, ok := bt.closing(i+n, n); ok && k < para {
				inCode = k + n
			}
			i += n - 1
		case c == '[' && i >= inCode:
			brackets = append(brackets, i)
		case c == ']' && i >= inCode && len(brackets) > 0:
			close[brackets[len(brackets)-1]] = int32(i)
			brackets = brackets[:len(brackets)-1]
		case c == '(':
			parens = append(parens, i)
		case c == ')' && len(parens) > 0:
			close[parens[len(parens)-1]] = int32(i)
			parens = parens[:len(parens)-1]
		}
	}
	return close
}

// rewriteLinks replaces images with "[image]" and inline links with their
// text and destination ("text (url)"), dropping titles; a reference link
// keeps its text.
func rewriteLinks(s string) string {
	if !strings.Contains(s, "[") {
		return s
	}
	close := matches(s)
	type open struct {
		close  int    // the link text's ']'
		suffix string // written at close
		resume int    // where the text goes on after the link
	}
	var links []open
	var b strings.Builder
	b.Grow(len(s))
	para := nextBlank(s, 0)
	for i := 0; i < len(s); {
		if i > para {
			para = nextBlank(s, i)
		}
		if n := len(links); n > 0 {
			top := links[n-1]
			if i == top.close {
				b.WriteString(top.suffix)
				i = top.resume
				links = links[:n-1]
				continue
			}
			if i > top.close { // an image's tail ran past it: drop the link's tail too
				i = max(i, top.resume)
				links = links[:n-1]
				continue
			}
		}
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			b.WriteString(s[i : i+2])
			i += 2
			continue
		case c == '!' && i+1 < len(s) && s[i+1] == '[' && close[i+1] > 0:
			e := int(close[i+1])
			end := e + 1
			if e+1 < len(s) && s[e+1] == '(' {
				if _, tail, ok := linkTail(s, e+1, para, close); ok {
					end = tail
				}
			} else if e+1 < len(s) && s[e+1] == '[' && close[e+1] > 0 {
				end = int(close[e+1]) + 1
			}
			b.WriteString("[image]")
			i = end
			continue
		case c == '[' && close[i] > 0 && (i+1 >= len(s) || s[i+1] != '^'):
			e := int(close[i])
			if e+1 < len(s) && s[e+1] == '(' {
				if dest, tail, ok := linkTail(s, e+1, para, close); ok {
					suffix := ""
					// A destination that starts like a title may be one
					// whose destination the HTML pass took for a tag.
					if dest != "" && dest != s[i+1:e] && !strings.ContainsAny(dest[:1], "\"'(") {
						suffix = " (" + dest + ")"
					}
					links = append(links, open{close: e, suffix: suffix, resume: tail})
					i++
					continue
				}
			} else if e+1 < len(s) && s[e+1] == '[' && close[e+1] > 0 {
				links = append(links, open{close: e, resume: int(close[e+1]) + 1})
				i++
				continue
			}
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

// linkTail reads the "(destination "title")" of an inline link, at
// s[p] == '(', within the paragraph ending at para. It returns the
// destination and the index after the tail. When CommonMark's reading and
// plain parenthesis matching disagree on where the tail ends, the later end
// wins; a tail longer than the bounds runs to the end of the paragraph.
func linkTail(s string, p, para int, close []int32) (dest string, end int, ok bool) {
	end = -1
	if m := int(close[p]); m > 0 && m < para {
		end = m + 1
		dest = firstField(s[p+1 : m])
		if len(dest) > maxDest {
			dest = ""
		}
	}
	strictDest, strictEnd, long := strictTail(s, p, para)
	if long {
		return "", para, true
	}
	if strictEnd > end {
		dest, end = strictDest, strictEnd
	} else if strictEnd == end {
		dest = strictDest
	}
	return dest, end, end > 0
}

// strictTail reads a link's tail as CommonMark does; end is -1 when it is
// not one, and long is set when a part runs past the bounds.
func strictTail(s string, p, para int) (dest string, end int, long bool) {
	i := skipBlank(s, p+1, para)
	if i < para && s[i] == '<' {
		e := strings.IndexAny(s[i+1:para], "<>\n")
		if e < 0 || s[i+1+e] != '>' {
			return "", -1, false
		}
		dest = s[i+1 : i+1+e]
		if len(dest) > maxDest {
			return "", -1, true
		}
		i += e + 2
	} else {
		start, depth := i, 0
	scan:
		for ; i < para; i++ {
			if i-start > maxDest {
				return "", -1, true
			}
			switch c := s[i]; {
			case c == '\\':
				i++
			case c <= ' ':
				break scan
			case c == '(':
				depth++
			case c == ')':
				if depth == 0 {
					break scan
				}
				depth--
			}
		}
		if depth != 0 || i > para {
			return "", -1, false
		}
		dest = s[start:i]
	}
	j := skipBlank(s, i, para)
	if j < para && j > i && (s[j] == '"' || s[j] == '\'' || s[j] == '(') {
		closer := s[j]
		if closer == '(' {
			closer = ')'
		}
		limit := min(para, j+1+maxTitle)
		e := unescapedIndex(s[j+1:limit], closer)
		if e < 0 {
			return "", -1, limit < para
		}
		j = skipBlank(s, j+1+e+1, para)
	}
	if j < para && s[j] == ')' {
		return dest, j + 1, false
	}
	return "", -1, false
}

// skipBlank skips spaces, tabs and line breaks up to para.
func skipBlank(s string, i, para int) int {
	for i < para && isSpace(s[i]) {
		i++
	}
	return i
}

// firstField is the first run of non-space characters in s.
func firstField(s string) string {
	i := skipBlank(s, 0, len(s))
	j := i
	for j < len(s) && !isSpace(s[j]) {
		j++
	}
	return s[i:j]
}
