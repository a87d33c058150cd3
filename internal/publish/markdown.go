package publish

import "strings"

// Markdown helpers for what agentbot posts (notes and MR descriptions),
// shared by serve and `agentbot run --publish`.

// Blockquote quotes every line of s.
func Blockquote(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = "> " + l
	}
	return strings.Join(lines, "\n")
}

// Cut bounds s to at most n bytes, at a line boundary when one is near (a
// cut inside a Markdown line could break it, and GitLab refuses notes over
// a million characters), never inside a UTF-8 sequence, and says so with
// note.
func Cut(s string, n int, note string) string {
	if len(s) <= n {
		return s
	}
	cut := strings.LastIndex(s[:n], "\n")
	if cut < n/2 {
		cut = n
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
	}
	return s[:cut] + "\n\n_(" + note + ")_"
}

// InlineCode makes s safe inside a code span: one line, no backticks.
func InlineCode(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "`", "'")
}

// Neutralize keeps text written by the model from acting on GitLab when
// posted: a line that starts with "/" would be a quick action (/merge,
// /approve) run with the bot's rights.
// GitLab does not run quick actions inside fenced code, which is left as is.
func Neutralize(text string) string {
	lines := strings.Split(text, "\n")
	fence := ""
	for i, l := range lines {
		t := strings.TrimLeft(l, " \t>")
		switch {
		case fence != "":
			if strings.HasPrefix(t, fence) {
				fence = ""
			}
		case strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~"):
			fence = t[:3]
		case strings.HasPrefix(t, "/"):
			lines[i] = l[:len(l)-len(t)] + "\\" + t
		}
	}
	return strings.Join(lines, "\n")
}
