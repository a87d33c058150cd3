package command

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// closing returns the quote that closes open, or 0 when open is not a quote.
func closing(open rune) rune {
	switch open {
	case '"', '\'':
		return open
	case '“':
		return '”'
	case '‘':
		return '’'
	}
	return 0
}

// splitWords splits s at white space, honouring quotes that open a word (or
// follow "=") and have a matching close. It never fails: a quote without its
// close is an ordinary character. See the package documentation.
func splitWords(s string) []string {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
	)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
			i += n
			continue
		}
		atStart := !in || strings.HasSuffix(cur.String(), "=")
		if q := closing(r); q != 0 && atStart {
			if body, next, ok := quoted(s, i+n, q, r == '"'); ok {
				cur.WriteString(body)
				in = true
				i = next
				continue
			}
		}
		cur.WriteRune(r)
		in = true
		i += n
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// quoted reads a quoted string starting at s[i:] (just after the opening
// quote) up to the closing quote q. With escapes, `\"` and `\\` stand for `"`
// and `\`. It returns the unquoted text and the index after the closing quote.
func quoted(s string, i int, q rune, escapes bool) (string, int, bool) {
	var b strings.Builder
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if escapes && r == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
			b.WriteByte(s[i+1])
			i += 2
			continue
		}
		if r == q {
			return b.String(), i + n, true
		}
		b.WriteRune(r)
		i += n
	}
	return "", 0, false
}
