package sanitize

import (
	"strconv"
	"strings"
)

// stripHTML removes raw HTML from s: comments and other markup that is never
// shown go entirely; tags go but the text between them stays, except inside
// hidden elements, which go with their content. Markup that is cut off by the
// end of the text is taken to run to the end.
func stripHTML(s string) string {
	if !strings.Contains(s, "<") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	bt := backticks{s: s}
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '<')
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+j])
		i += j
		if n, ok := nonElement(s[i:]); ok {
			i += n
			continue
		}
		t, ok := parseTag(s[i:])
		if !ok {
			b.WriteByte('<')
			i++
			continue
		}
		if t.n < 0 { // cut off: it swallows the rest
			break
		}
		i += t.n
		switch {
		case t.end:
			b.WriteString(separator(t.name))
		case t.name == "img" || t.name == "image":
			if !t.hidden() {
				b.WriteString("[image]")
			}
		case t.name == "video" || t.name == "audio":
			if !t.hidden() {
				b.WriteString("[" + t.name + "]")
			}
			i = skipElement(s, i, t.name, &bt)
		case t.hidden() || neverShown[t.name]:
			if !voidElements[t.name] {
				i = skipElement(s, i, t.name, &bt)
			}
		default:
			b.WriteString(separator(t.name))
		}
	}
	return b.String()
}

// nonElement measures markup at the start of s (which starts with '<') that
// is never shown and holds no element: a comment, a CDATA section, a
// declaration, a processing instruction, or a bogus comment ("</ x>"). An
// unterminated one runs to the end of s.
func nonElement(s string) (n int, ok bool) {
	switch {
	case strings.HasPrefix(s, "<!--"):
		return commentLen(s), true
	case strings.HasPrefix(s, "<![CDATA["):
		return through(s, "]]>"), true
	case strings.HasPrefix(s, "<?"):
		// CommonMark ends it at "?>", a browser at the first '>': the
		// later, and the end when there is no "?>".
		return through(s, "?>"), true
	case strings.HasPrefix(s, "<!"):
		return through(s, ">"), true
	case strings.HasPrefix(s, "</") && (len(s) == 2 || !isLetter(s[2])):
		// A browser reads "</ x>" as a comment; Markdown shows it. Drop it
		// when it ends, keep a lone "</" as text.
		if e := strings.IndexByte(s, '>'); e >= 0 {
			return e + 1, true
		}
	}
	return 0, false
}

// commentLen measures the HTML comment at the start of s; "<!-->" and
// "<!--->" are complete comments, and an unterminated one runs to the end.
func commentLen(s string) int {
	switch {
	case strings.HasPrefix(s, "<!-->"):
		return 5
	case strings.HasPrefix(s, "<!--->"):
		return 6
	}
	if e := strings.Index(s[4:], "-->"); e >= 0 {
		return 4 + e + 3
	}
	return len(s)
}

// through is the length of s up to and including the first sep, or all of s.
func through(s, sep string) int {
	if e := strings.Index(s, sep); e >= 0 {
		return e + len(sep)
	}
	return len(s)
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

// tag is a start or end tag.
type tag struct {
	name  string // lower case
	end   bool
	attrs map[string]string // lower-case names; first one wins
	n     int               // length in the text; -1 when cut off by the end
}

// parseTag reads the tag at the start of s, as a browser's tokenizer does
// (quoted attribute values may hold '>'). ok is false when s does not start
// a tag ('<' not followed by a name, or a name not followed by a space, '/'
// or '>'), which Markdown shows as text.
func parseTag(s string) (t tag, ok bool) {
	i := 1
	if i < len(s) && s[i] == '/' {
		t.end = true
		i++
	}
	if i >= len(s) || !isLetter(s[i]) {
		return tag{}, false
	}
	start := i
	for i < len(s) && (isLetter(s[i]) || s[i] >= '0' && s[i] <= '9' || s[i] == '-') {
		i++
	}
	t.name = strings.ToLower(s[start:i])
	if i < len(s) && !isSpace(s[i]) && s[i] != '/' && s[i] != '>' {
		return tag{}, false // "<https://…>", "<a@b.c>", "<T,": text
	}
	for {
		for i < len(s) && (isSpace(s[i]) || s[i] == '/') {
			i++
		}
		if i >= len(s) {
			t.n = -1
			return t, true
		}
		if s[i] == '>' {
			t.n = i + 1
			return t, true
		}
		start := i
		i++ // a name may start with '='
		for i < len(s) && !isSpace(s[i]) && s[i] != '/' && s[i] != '>' && s[i] != '=' {
			i++
		}
		name := strings.ToLower(s[start:i])
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		var value string
		if i < len(s) && s[i] == '=' {
			i++
			for i < len(s) && isSpace(s[i]) {
				i++
			}
			if i < len(s) && (s[i] == '"' || s[i] == '\'') {
				e := strings.IndexByte(s[i+1:], s[i])
				if e < 0 {
					t.n = -1
					return t, true
				}
				value = s[i+1 : i+1+e]
				i += e + 2
			} else {
				start := i
				for i < len(s) && !isSpace(s[i]) && s[i] != '>' {
					i++
				}
				value = s[start:i]
			}
		}
		if t.attrs == nil {
			t.attrs = map[string]string{}
		}
		if _, dup := t.attrs[name]; !dup {
			t.attrs[name] = value
		}
	}
}

// hidden reports whether the element's attributes hide it.
func (t tag) hidden() bool {
	if t.attrs == nil {
		return false
	}
	if _, ok := t.attrs["hidden"]; ok {
		return true
	}
	if t.name == "input" && strings.EqualFold(strings.TrimSpace(t.attrs["type"]), "hidden") {
		return true
	}
	style, ok := t.attrs["style"]
	return ok && hiddenStyle(style)
}

// hiddenStyle reports whether an inline style hides its element or text.
func hiddenStyle(style string) bool {
	css := normalizeCSS(style)
	decl := map[string]string{}
	for d := range strings.SplitSeq(css, ";") {
		k, v, ok := strings.Cut(d, ":")
		if !ok {
			continue
		}
		v = strings.TrimSuffix(v, "!important")
		decl[k] = v // the last one wins, as in CSS
	}
	switch {
	case decl["display"] == "none",
		decl["visibility"] == "hidden", decl["visibility"] == "collapse",
		decl["content-visibility"] == "hidden",
		zeroLength(decl["font-size"]), zeroLength(decl["opacity"]),
		decl["color"] == "transparent", strings.HasPrefix(decl["clip-path"], "inset(50%"),
		decl["clip-path"] == "circle(0)", strings.HasPrefix(decl["clip"], "rect(0"):
		return true
	}
	overflowHidden := decl["overflow"] == "hidden" || decl["overflow"] == "clip"
	if overflowHidden {
		for _, k := range []string{"height", "max-height", "width", "max-width"} {
			if zeroLength(decl[k]) {
				return true
			}
		}
	}
	if p := decl["position"]; p == "absolute" || p == "fixed" {
		for _, k := range []string{"left", "top", "right", "bottom", "text-indent"} {
			if strings.HasPrefix(decl[k], "-") {
				return true
			}
		}
	}
	if strings.HasPrefix(decl["text-indent"], "-") && overflowHidden {
		return true
	}
	if t := decl["transform"]; strings.Contains(t, "scale(0") {
		return true
	}
	return false
}

// normalizeCSS lower-cases a style and removes white space, comments and
// backslashes, so that "DISPLAY : /**/ n\one" reads "display:none".
func normalizeCSS(style string) string {
	var b strings.Builder
	for i := 0; i < len(style); i++ {
		c := style[i]
		switch {
		case c == '/' && i+1 < len(style) && style[i+1] == '*':
			e := strings.Index(style[i+2:], "*/")
			if e < 0 {
				return b.String()
			}
			i += 2 + e + 1
		case isSpace(c) || c == '\\':
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// zeroLength reports whether a CSS value is a zero number with any unit
// ("0", "0px", ".0em", "0%").
func zeroLength(v string) bool {
	if v == "" {
		return false
	}
	end := 0
	for end < len(v) && (v[end] >= '0' && v[end] <= '9' || v[end] == '.' || v[end] == '+' || v[end] == '-') {
		end++
	}
	if end == 0 {
		return false
	}
	f, err := strconv.ParseFloat(v[:end], 64)
	return err == nil && f == 0
}

// neverShown are elements whose content a reader never sees.
var neverShown = map[string]bool{
	"script": true, "style": true, "template": true, "title": true, "head": true,
	"noscript": true, "noembed": true, "noframes": true, "iframe": true, "object": true,
	"frameset": true, "frame": true, "svg": true, "math": true, "datalist": true,
	"applet": true, "param": true, "meta": true, "link": true, "base": true,
}

// voidElements have no content and no end tag.
var voidElements = map[string]bool{
	"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true,
	"img": true, "image": true, "input": true, "link": true, "meta": true, "param": true,
	"source": true, "track": true, "wbr": true, "keygen": true, "frame": true,
}

// blockElements start a new line where their tags were.
var blockElements = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "br": true,
	"dd": true, "details": true, "div": true, "dl": true, "dt": true, "figcaption": true,
	"figure": true, "footer": true, "h1": true, "h2": true, "h3": true, "h4": true,
	"h5": true, "h6": true, "header": true, "hr": true, "li": true, "main": true,
	"nav": true, "ol": true, "p": true, "pre": true, "section": true, "summary": true,
	"table": true, "tbody": true, "tfoot": true, "thead": true, "tr": true, "ul": true,
	"caption": true,
}

// separator is what replaces a shown element's tag: a line break for block
// elements, a space for table cells, else nothing.
func separator(name string) string {
	switch {
	case blockElements[name]:
		return "\n"
	case name == "td" || name == "th":
		return " "
	}
	return ""
}

// skipElement returns where the content of the element named name, whose
// start tag ends at i, ends: after its matching end tag, counting nested
// elements of the same name, or the end of s.
//
// Where a browser and Markdown disagree, it takes the later end: comments
// are honoured everywhere, even in code spans; end tags are not counted in
// code spans or indented code (where Markdown would show them as text), and
// start tags are counted wherever they are.
func skipElement(s string, i int, name string, bt *backticks) int {
	depth := 1
	for i < len(s) {
		j := strings.IndexAny(s[i:], "<`")
		if j < 0 {
			return len(s)
		}
		i += j
		if s[i] == '`' {
			i = skipCodeSpanOrComment(s, i, bt)
			continue
		}
		if n, ok := nonElement(s[i:]); ok {
			i += n
			continue
		}
		t, ok := parseTag(s[i:])
		if !ok {
			i++
			continue
		}
		if t.n < 0 {
			return len(s)
		}
		if t.name == name {
			switch {
			case !t.end && !voidElements[name]:
				depth++
			case t.end && !indentedCode(s, i):
				depth--
			}
		}
		i += t.n
		if depth == 0 {
			return i
		}
	}
	return len(s)
}

// skipCodeSpanOrComment skips the backtick run at i and, when a run of the
// same length closes it, the code span; an HTML comment opening inside the
// span is honoured to its end.
func skipCodeSpanOrComment(s string, i int, bt *backticks) int {
	n := runLen(s, i)
	open := i + n
	k, ok := bt.closing(open, n)
	if !ok {
		return open
	}
	if c := strings.Index(s[open:k], "<!--"); c >= 0 {
		return open + c + commentLen(s[open+c:])
	}
	return k + n
}

// indentedCode reports whether the text at i follows four or more columns
// of indentation on its line, where Markdown may show it as code.
func indentedCode(s string, i int) bool {
	line := i
	for line > 0 && (s[line-1] == ' ' || s[line-1] == '\t') {
		line--
	}
	if line > 0 && s[line-1] != '\n' {
		return false
	}
	cols := 0
	for _, c := range []byte(s[line:i]) {
		if c == '\t' {
			cols += 4 - cols%4
		} else {
			cols++
		}
	}
	return cols >= 4
}
