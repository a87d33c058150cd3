package sanitize_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"gitlab.com/agentbot/agentbot/internal/sanitize"
)

// FuzzVisible checks that Visible never panics, returns valid UTF-8 without
// invisible characters or comment openers, stays within a small multiple of
// its input, and that text hidden in a comment never comes out, whatever
// surrounds it, nor text in a hidden element after text without markup.
//
//	go test -run '^$' -fuzz FuzzVisible -fuzztime 30s ./internal/sanitize
func FuzzVisible(f *testing.F) {
	seeds := []string{
		"", "plain", "<!-- x -->", "<!--", "<div hidden>", "</div>", "![a](b \"c\")", "[a](b 'c')",
		"[a]: b (c)", "`", "``a``", "<span style='display:none'>", "&#x200B;", "\u202e", "\\",
		"[[[", "(((", "<a b='", "<?", "<!x", "<![CDATA[", "&", "[^1]: x", "\n\n", "> [a]: b",
	}
	for _, a := range seeds {
		for _, b := range seeds[:8] {
			f.Add(a, b)
		}
	}
	const marker = "ZQXJ"
	f.Fuzz(func(t *testing.T, a, b string) {
		in := a + b
		out := sanitize.Visible(in)
		if !utf8.ValidString(out) {
			t.Fatalf("Visible(%q) = %q: invalid UTF-8", in, out)
		}
		for _, r := range out {
			if r != '\n' && r != '\t' && (r < 0x20 || r >= 0x7f && r <= 0x9f || r == 0x200b || r == 0x202e || r == 0xfeff || r >= 0xe0000 && r <= 0xe007f || r == 0xad) {
				t.Fatalf("Visible(%q) = %q: keeps invisible %U", in, out, r)
			}
		}
		if strings.Contains(out, "<!--") {
			t.Fatalf("Visible(%q) = %q: keeps a comment opener", in, out)
		}
		if len(out) > 3*len(in)+8 {
			t.Fatalf("Visible(%q): %d bytes out of %d", in, len(out), len(in))
		}
		if strings.Contains(sanitize.Visible(a+b), marker) {
			return
		}
		hiding := []string{"<!--" + marker + "-->"}
		if !strings.Contains(a, "<") {
			// (Markup left open in a, such as "<!x", can swallow a start
			// tag, and then a browser shows what follows it.)
			hiding = append(hiding, "<div hidden>"+marker+"</div>", "<span style=\"display:none\">"+marker+"</span>", "<script>"+marker+"</script>")
		}
		for _, hide := range hiding {
			if got := sanitize.Visible(a + hide + b); strings.Contains(got, marker) {
				t.Fatalf("Visible(%q) = %q: hidden text came out", a+hide+b, got)
			}
		}
	})
}
