package repoconfig

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// walker checks a yaml.Node tree against the schema, collecting problems
// with their lines and remembering where each setting was written.
type walker struct {
	collector
	lines    map[string]int
	declared map[string]bool // command names, valid or not
}

// count is how many problems were found so far.
func (w *walker) count() int { return len(w.list) + w.dropped }

// field is one key and its value in a mapping.
type field struct {
	key, val *yaml.Node
	path     string
}

// usable reports whether n can be read at all: an alias is refused (the
// schema never needs one, and expanding them is how YAML bombs work).
func (w *walker) usable(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode {
		w.add(n.Line, path, "aliases (*%s) are not supported here; write the value out", clean(n.Value, maxQuoted))
		return false
	}
	return true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// entries returns the fields of mapping n in order, reporting a value that
// is not a mapping, keys that are not plain strings, and duplicate keys.
// A null value (a section left empty) has no entries and no problem.
func (w *walker) entries(n *yaml.Node, path string) []field {
	if !w.usable(n, path) || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		w.add(n.Line, path, "want a mapping of keys to values, got %s", describe(n))
		return nil
	}
	var out []field
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			w.add(k.Line, path, "keys must be plain names (no aliases, merges or complex keys)")
			continue
		}
		p := join(path, k.Value)
		if line, dup := first[k.Value]; dup {
			w.add(k.Line, p, "duplicate key (first set on line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		out = append(out, field{key: k, val: v, path: p})
	}
	return out
}

// known returns the fields of mapping n whose keys are in keys, reporting
// the others as unknown (with a suggestion when one is close).
func (w *walker) known(n *yaml.Node, path string, keys ...string) map[string]field {
	out := map[string]field{}
	for _, f := range w.entries(n, path) {
		if !contains(keys, f.key.Value) {
			msg := "unknown key"
			if s := closest(f.key.Value, keys); s != "" {
				msg += "; did you mean " + q(s) + "?"
			} else {
				msg += "; known keys here: " + strings.Join(keys, ", ")
			}
			w.add(f.key.Line, f.path, "%s", msg)
			continue
		}
		out[f.key.Value] = f
		w.lines[f.path] = f.key.Line
	}
	return out
}

// str reads a scalar string. Numbers are taken as their text (a label may be
// 2024); booleans, null, lists and mappings are refused.
func (w *walker) str(f field) (string, bool) {
	n := f.val
	if !w.usable(n, f.path) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		w.add(n.Line, f.path, "want a string, got %s", describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float":
		return n.Value, true
	}
	w.add(n.Line, f.path, "want a string, got %s", describe(n))
	return "", false
}

// boolean reads true or false.
func (w *walker) boolean(f field) (bool, bool) {
	n := f.val
	if !w.usable(n, f.path) {
		return false, false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err == nil {
			return b, true
		}
	}
	w.add(n.Line, f.path, "want true or false, got %s", describe(n))
	return false, false
}

// integer reads a whole number in [lo, hi].
func (w *walker) integer(f field, lo, hi int) (int, bool) {
	n := f.val
	if !w.usable(n, f.path) {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err == nil && v >= int64(lo) && v <= int64(hi) {
			return int(v), true
		}
		w.add(n.Line, f.path, "want a whole number from %d to %d, got %s", lo, hi, q(n.Value))
		return 0, false
	}
	w.add(n.Line, f.path, "want a whole number, got %s", describe(n))
	return 0, false
}

// strs reads a list of strings, each checked by check (which returns a
// problem or ""). With scalarOK a single string stands for a list of one.
// It returns the good items; ok is false when anything was wrong.
func (w *walker) strs(f field, max int, scalarOK bool, check func(string) string) ([]string, bool) {
	n := f.val
	if !w.usable(n, f.path) || isNull(n) {
		return nil, n.Kind != yaml.AliasNode
	}
	items := []field{{key: f.key, val: n, path: f.path}}
	switch {
	case n.Kind == yaml.SequenceNode:
		items = items[:0]
		for i, c := range n.Content {
			items = append(items, field{key: f.key, val: c, path: f.path + "[" + strconv.Itoa(i) + "]"})
		}
	case n.Kind == yaml.ScalarNode && scalarOK:
	default:
		want := "want a list, as [a, b]"
		if scalarOK {
			want = "want a string or a list, as [a, b]"
		}
		w.add(n.Line, f.path, "%s, got %s", want, describe(n))
		return nil, false
	}
	if len(items) > max {
		w.add(n.Line, f.path, "at most %d items, got %d", max, len(items))
		return nil, false
	}
	var out []string
	ok := true
	for _, it := range items {
		s, good := w.str(it)
		if !good {
			ok = false
			continue
		}
		if check != nil {
			if msg := check(s); msg != "" {
				w.add(it.val.Line, it.path, "%s", msg)
				ok = false
				continue
			}
		}
		w.lines[it.path] = it.val.Line
		out = append(out, s)
	}
	return out, ok
}

// describe names what a node holds, for "want X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!null":
		return "nothing"
	case "!!bool":
		return "the boolean " + q(n.Value)
	case "!!int", "!!float":
		return "the number " + q(n.Value)
	case "!!str":
		return "the string " + q(n.Value)
	}
	return "a value tagged " + q(n.Tag)
}

// join appends a key to a path, quoting keys from the file that are not
// plain names.
func join(path, key string) string {
	k := clean(key, maxQuoted)
	if !plainKey(k) {
		k = strconv.Quote(k)
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

func plainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// closest returns the candidate within edit distance 2 of s (1 for short
// words), or "".
func closest(s string, candidates []string) string {
	s = strings.ToLower(s)
	if len(s) > 64 {
		return ""
	}
	best, bestD := "", 3
	for _, c := range candidates {
		limit := 2
		if len(c) <= 4 {
			limit = 1
		}
		if d := distance(s, c); d <= limit && d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance (Levenshtein plus
// swapped neighbours) between two short ASCII-ish strings.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
