package repoconfig

import (
	"path"
	"strings"
)

// Globs here have the write allowlist's syntax (tools.MatchGlob): paths are
// split at "/", a "**" segment is any number of whole segments (none
// included), and every other segment is a path.Match pattern.

const maxGlobBytes = 256

// globProblem says why g is not a usable glob, or "".
func globProblem(g string) string {
	switch {
	case g == "":
		return "empty glob"
	case len(g) > maxGlobBytes:
		return "longer than 256 bytes"
	case strings.HasPrefix(g, "/"):
		return "must be relative to the repository root (no leading /)"
	case strings.ContainsRune(g, '\\'):
		return `backslashes are not allowed; paths use "/"`
	}
	for _, seg := range strings.Split(g, "/") {
		switch {
		case seg == "":
			return `has an empty segment ("//" or a trailing "/"); write dir/** for everything under dir`
		case seg == "." || seg == "..":
			return `has a "." or ".." segment`
		case seg == "**":
		case strings.Contains(seg, "**"):
			return `"**" must be a whole segment, as in dir/**/*.md`
		default:
			if _, err := path.Match(seg, ""); err != nil {
				return "is malformed (check its [ ] brackets)"
			}
		}
	}
	return ""
}

// globWithin reports whether every path that glob p matches is also matched
// by glob o. It is conservative: a true answer is always right, but some
// subsets it cannot prove are refused (the project then writes a narrower
// glob). The check walks both globs segment by segment:
//
//   - an "**" in o may absorb any run of p's segments (including p's own
//     "**"), or none;
//   - an "**" in p is only covered by an "**" in o (it can stand for any
//     number of segments, so nothing narrower covers it);
//   - a single segment of p is covered by a single segment of o when
//     segmentWithin says so.
//
// So "output/reports/**" is within "output/**", "output/*.md" is within
// "output/**" and "**/*.md", but "**/*.md" is not within "output/**", and
// "output/**" is not within "output/*".
func globWithin(p, o string) bool {
	ps, os := strings.Split(p, "/"), strings.Split(o, "/")
	memo := make(map[[2]int]bool)
	seen := make(map[[2]int]bool)
	var within func(i, j int) bool
	within = func(i, j int) bool {
		k := [2]int{i, j}
		if seen[k] {
			return memo[k]
		}
		seen[k] = true
		var ok bool
		switch {
		case j == len(os):
			ok = i == len(ps)
		case os[j] == "**":
			// o's "**" matches nothing here, or absorbs p's next segment.
			ok = within(i, j+1) || (i < len(ps) && within(i+1, j))
		case i == len(ps) || ps[i] == "**":
			ok = false
		default:
			ok = segmentWithin(ps[i], os[j]) && within(i+1, j+1)
		}
		memo[k] = ok
		return ok
	}
	return within(0, 0)
}

// segmentWithin reports whether every name matching pattern p (one path
// segment, path.Match syntax) also matches pattern o. It proves these
// cases and refuses the rest:
//
//   - o is "*", or p and o are the same text;
//   - p has no pattern characters: it is one name, and o must match it;
//   - o is a literal prefix, one "*" and a literal suffix ("report-*.md"),
//     and p starts with that prefix and ends with that suffix as plain
//     characters that do not overlap ("report-q*.md").
func segmentWithin(p, o string) bool {
	if o == "*" || p == o {
		return true
	}
	if !hasMeta(p) {
		ok, err := path.Match(o, p)
		return err == nil && ok
	}
	star := strings.IndexByte(o, '*')
	if star < 0 || strings.ContainsAny(o[star+1:], `*?[\`) || hasMeta(o[:star]) {
		return false
	}
	prefix, suffix := o[:star], o[star+1:]
	if len(p) < len(prefix)+len(suffix) {
		return false
	}
	head, tail := p[:len(prefix)], p[len(p)-len(suffix):]
	return head == prefix && tail == suffix && !hasMeta(head) && !hasMeta(tail) && !strings.HasSuffix(p[:len(p)-len(suffix)], `\`)
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// literalDir is the leading run of g's segments without pattern characters,
// as "reports/2024/" ("" when the first segment is a pattern).
func literalDir(g string) string {
	segs := strings.Split(g, "/")
	var b strings.Builder
	for _, s := range segs[:len(segs)-1] {
		if s == "**" || hasMeta(s) {
			break
		}
		b.WriteString(s + "/")
	}
	return b.String()
}

// dirWritable reports whether the agent can write files directly in dir (a
// clean "a/b/" path) under the allowlist: dir/** lies within a glob, a glob
// names files directly in dir ("dir/*.md"), or a glob starts with "**"
// (which reaches into any directory).
func dirWritable(dir string, allow []string) bool {
	for _, g := range allow {
		if globWithin(dir+"**", g) || filesIn(g, dir) || strings.HasPrefix(g, "**/") {
			return true
		}
	}
	return false
}

// filesIn reports whether glob g names files directly in dir ("dir/*.md").
func filesIn(g, dir string) bool {
	rest, ok := strings.CutPrefix(g, dir)
	return ok && rest != "" && rest != "**" && !strings.Contains(rest, "/")
}
