package command

import "strings"

// maxSuggestLen bounds the words compared for "did you mean"; longer words are
// never typos of a verb.
const maxSuggestLen = 32

// suggest returns the known verb that verb is probably a typo of, when the
// note has the shape of that verb's command (see the package documentation).
func suggest(verb string, args []string, opt Options) (string, bool) {
	if len(args) > 1 || len(verb) > maxSuggestLen {
		return "", false
	}
	candidates := append([]string{verbAnalyse}, builtins...)
	for _, v := range opt.CustomVerbs {
		candidates = append(candidates, strings.ToLower(strings.TrimSpace(v)))
	}
	best, bestDist := "", maxSuggestLen
	for _, c := range candidates {
		if c == "" || len(c) > maxSuggestLen {
			continue
		}
		d := distance(verb, c)
		if d == 0 || d > allowedDistance(c) || d >= bestDist {
			continue
		}
		best, bestDist = c, d
	}
	if best == verbAnalyse {
		best = verbAnalyze
	}
	if best == "" {
		return "", false
	}
	if len(args) == 1 {
		// Only "analyze TICKER" has one argument by shape.
		if _, ok := NormalizeTicker(args[0]); best != verbAnalyze || !ok {
			return "", false
		}
	}
	return best, true
}

// allowedDistance is the most edits a typo of verb may have.
func allowedDistance(verb string) int {
	switch n := len([]rune(verb)); {
	case n <= 2:
		return 0
	case n <= 4:
		return 1
	default:
		return 2
	}
}

// distance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and swaps of neighbours), over runes.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows: two back (for swaps), previous and current.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
