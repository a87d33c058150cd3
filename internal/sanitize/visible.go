// Package sanitize turns text from GitLab, which is untrusted input to the
// model, into what a person reading it on GitLab can actually see, and wraps
// it for the model as data rather than instructions.
//
// Visible errs on the side of removing: where GitLab's rendering could show
// or hide something depending on context it cannot see (a comment inside a
// code span, a tag inside an HTML block), it removes it. Hidden text never
// survives; visible text occasionally goes too.
package sanitize

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Visible returns markdown without what a person cannot see in GitLab's
// rendering of it:
//
//   - invisible characters: zero-width and bidirectional controls, tag
//     characters, variation selectors, the soft hyphen, other format and
//     control characters (tabs and line breaks stay), also when written as
//     HTML entities (&#x200B;, &ZeroWidthSpace;);
//   - HTML comments (an unterminated one runs to the end of the text),
//     declarations, processing instructions and CDATA sections;
//   - raw HTML tags (their visible text stays; <img> becomes "[image]"), and
//     the whole content of elements that are hidden (hidden attribute,
//     display:none, visibility:hidden, font-size:0, opacity:0, …) or never
//     shown (script, style, template, …);
//   - link reference definitions ("[x]: url "title"", the "[//]: # (…)"
//     comment idiom), which are never rendered;
//   - image alt text and URLs (an image becomes "[image]") and link titles
//     ("[text](url "title")" becomes "text (url)").
//
// Runs of blank lines are collapsed into one, and the result is trimmed.
// Visible never panics and takes time roughly linear in the input.
func Visible(markdown string) string {
	s := visibleRunes(markdown)
	s = dropInvisibleEntities(s)
	s = stripHTML(s)
	s = stripDefinitions(s)
	s = rewriteLinks(s)
	return collapseBlankLines(s)
}

// StripInvisible removes only invisible characters (as Visible does, HTML
// entities included) and makes line breaks "\n", leaving Markdown and HTML
// alone: for text that is not Markdown written by a person, such as diffs,
// file contents and job logs, where a bidirectional override or zero-width
// text can still make what the model reads differ from what a reviewer sees.
func StripInvisible(s string) string {
	return dropInvisibleEntities(visibleRunes(s))
}

// invisible reports whether r renders as nothing (or only changes how
// neighbouring text is shown) in a browser.
func invisible(r rune) bool {
	switch {
	case r == '\t' || r == '\n':
		return false
	case r < 0x20 || r >= 0x7f && r <= 0x9f: // C0 and C1 controls
		return true
	case r == 0x00AD, // soft hyphen
		r == 0x034F,              // combining grapheme joiner
		r == 0x061C,              // Arabic letter mark
		r == 0x115F, r == 0x1160, // Hangul choseong/jungseong fillers
		r == 0x17B4, r == 0x17B5, // Khmer inherent vowels
		r == 0x3164, r == 0xFFA0, // Hangul fillers
		r >= 0x180B && r <= 0x180F,   // Mongolian variation selectors, vowel separator
		r >= 0x200B && r <= 0x200F,   // zero-width space/joiners, LRM, RLM
		r >= 0x202A && r <= 0x202E,   // bidi embeddings and overrides
		r >= 0x2060 && r <= 0x206F,   // word joiner, invisible operators, bidi isolates
		r >= 0xFE00 && r <= 0xFE0F,   // variation selectors
		r == 0xFEFF,                  // zero-width no-break space (BOM)
		r >= 0xFFF0 && r <= 0xFFFB,   // interlinear annotation and unassigned specials
		r >= 0x1D173 && r <= 0x1D17A, // musical formatting controls
		r >= 0xE0000 && r <= 0xE0FFF: // tag characters, variation selectors supplement
		return true
	}
	return unicode.Is(unicode.Cf, r)
}

// visibleRunes drops invalid UTF-8 and invisible characters, and makes
// every line break a "\n".
func visibleRunes(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if c := s[i]; c >= 0x20 && c < 0x7f || c == '\n' || c == '\t' {
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError && n <= 1:
			// invalid byte: dropped
		case r == '\r':
			if i < len(s) && s[i] == '\n' {
				i++
			}
			b.WriteByte('\n')
		case r == 0x85 || r == 0x2028 || r == 0x2029: // NEL, line and paragraph separators
			b.WriteByte('\n')
		case invisible(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// invisibleEntities are the named character references of invisible
// characters (HTML's names are case-sensitive).
var invisibleEntities = map[string]bool{
	"shy": true, "ZeroWidthSpace": true, "zwj": true, "zwnj": true, "lrm": true, "rlm": true,
	"NoBreak": true, "InvisibleTimes": true, "it": true, "InvisibleComma": true, "ic": true,
	"ApplyFunction": true, "af": true, "NegativeVeryThinSpace": true, "NegativeThinSpace": true,
	"NegativeMediumSpace": true, "NegativeThickSpace": true,
}

// dropInvisibleEntities removes character references ("&#8203;", "&#x200B;",
// "&zwnj;") that stand for invisible characters; the others stay as written.
func dropInvisibleEntities(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i:]
		if n, hidden := entity(s); n > 0 {
			if !hidden {
				b.WriteString(s[:n])
			}
			s = s[n:]
			continue
		}
		b.WriteByte('&')
		s = s[1:]
	}
}

// entity measures the character reference at the start of s ("&…;"): its
// length (0 when there is none) and whether it stands for an invisible
// character.
func entity(s string) (n int, hidden bool) {
	end := strings.IndexByte(s[:min(len(s), 41)], ';')
	if end < 2 {
		return 0, false
	}
	name := s[1:end]
	if name[0] == '#' {
		digits, base := name[1:], 10
		if len(digits) > 0 && (digits[0] == 'x' || digits[0] == 'X') {
			digits, base = digits[1:], 16
		}
		if len(digits) == 0 || len(digits) > 8 {
			return 0, false
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return 0, false
		}
		r := rune(v)
		// HTML turns NUL, surrogates and out-of-range values into U+FFFD,
		// which is visible, but nothing is lost by dropping them.
		return end + 1, v == 0 || v > unicode.MaxRune || !utf8.ValidRune(r) || invisible(r)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return 0, false
		}
	}
	return end + 1, invisibleEntities[name]
}

// collapseBlankLines makes whitespace-only lines empty, keeps at most one
// empty line in a row, and trims the text.
func collapseBlankLines(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	blank := 0
	for line := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(line) == "" {
			blank++
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
			if blank > 0 {
				b.WriteByte('\n')
			}
		}
		blank = 0
		b.WriteString(strings.TrimRight(line, " \t"))
	}
	return strings.TrimLeft(b.String(), " \t")
}
