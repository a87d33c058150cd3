package repoconfig

import (
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/tools"
)

func TestGlobWithin(t *testing.T) {
	for _, tc := range []struct {
		p, o string
		want bool
	}{
		{"output/**", "output/**", true},
		{"output/reports/**", "output/**", true},
		{"output/*.md", "output/**", true},
		{"output/a/b/c.md", "output/**", true},
		{"output/**/*.md", "output/**", true},
		{"output/*.md", "**/*.md", true},
		{"output/x/*.md", "**/*.md", true},
		{"output/**/*.md", "**/*.md", true},
		{"output/**/*.md", "**", true},
		{"output/q3-*.md", "output/*.md", true},
		{"output/q3-[ab]*.md", "output/q3-*.md", true},
		{"output/report.md", "output/r*.md", true},
		{"output/report.md", "output/*", true},
		{"output/*", "output/*", true},
		{"a/b", "a/**/b", true},
		{"a/x/y/b", "a/**/b", true},
		{"a/**/b", "a/**/b", true},
		{"a/**/**/b", "a/**/b", true},

		{"**", "output/**", false},
		{"**/*.md", "output/**", false},
		{"output/**", "output/*", false},
		{"output/**", "output/*.md", false},
		{"output", "output/**", true}, // "**" matches no segment too (tools.MatchGlob agrees)
		{"outputs/**", "output/**", false},
		{"output/*.txt", "output/*.md", false},
		{"output/*", "output/*.md", false},
		{"output/?.md", "output/x*.md", false},
		{"output/*.md", "output/?*.md", false}, // true in fact, but not provable here: refused
		{"a/**/b", "a/*/b", false},
		{"reports/*.md", "reports/*/*.md", false},
		{".gitlab-ci.yml", "output/**", false},
	} {
		if got := globWithin(tc.p, tc.o); got != tc.want {
			t.Errorf("globWithin(%q, %q) = %v, want %v", tc.p, tc.o, got, tc.want)
		}
	}
}

// globWithin is sound: when it says p lies within o, every path p matches
// is matched by o, by the same matcher the file tools use.
func FuzzGlobWithin(f *testing.F) {
	for _, s := range [][3]string{
		{"output/**", "output/**", "output/a.md"},
		{"output/q3-*.md", "output/*.md", "output/q3-x.md"},
		{"a/**/b", "a/**/**/b", "a/x/b"},
		{"**/*.md", "*/*.md", "x/y.md"},
		{"out[a-c]/*", "out?/*", "outb/x"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, p, o, name string) {
		if len(p) > 64 || len(o) > 64 || len(name) > 64 || globProblem(p) != "" || globProblem(o) != "" {
			return
		}
		if globWithin(p, o) && tools.MatchGlob(p, name) && !tools.MatchGlob(o, name) {
			t.Fatalf("globWithin(%q, %q) but %q matches only the first", p, o, name)
		}
	})
}

// The same, over paths built from the globs' own segments, which finds
// counter-examples far faster than random names.
func TestGlobWithinSound(t *testing.T) {
	segs := []string{"a", "b", "x.md", "q3-x.md", "**", "*", "*.md", "q3-*.md", "?", "[ab]", "[!a]*"}
	names := []string{"a", "b", "x.md", "q3-x.md", "c", "bb", "q3-.md", ".md"}
	var globs []string
	var build func(prefix []string, depth int)
	build = func(prefix []string, depth int) {
		if len(prefix) > 0 {
			globs = append(globs, strings.Join(prefix, "/"))
		}
		if depth == 0 {
			return
		}
		for _, s := range segs {
			build(append(prefix[:len(prefix):len(prefix)], s), depth-1)
		}
	}
	build(nil, 2)
	var paths []string
	for _, a := range names {
		paths = append(paths, a)
		for _, b := range names {
			paths = append(paths, a+"/"+b)
			for _, c := range names[:4] {
				paths = append(paths, a+"/"+b+"/"+c)
			}
		}
	}
	proved := 0
	for _, p := range globs {
		for _, o := range globs {
			if !globWithin(p, o) {
				continue
			}
			proved++
			for _, name := range paths {
				if tools.MatchGlob(p, name) && !tools.MatchGlob(o, name) {
					t.Fatalf("globWithin(%q, %q) but %q matches only the first", p, o, name)
				}
			}
		}
	}
	if proved < len(globs) { // at least p within p for each
		t.Errorf("only %d pairs proved for %d globs", proved, len(globs))
	}
}

func TestDirWritable(t *testing.T) {
	for _, tc := range []struct {
		dir   string
		allow []string
		want  bool
	}{
		{"output/", []string{"output/**"}, true},
		{"output/q3/", []string{"output/**"}, true},
		{"reports/", []string{"reports/*.md"}, true},
		{"reports/", []string{"reports/2024/**"}, false},
		{"reports/2024/", []string{"reports/2024/**"}, true},
		{"reports/", []string{"output/**"}, false},
		{"src/", []string{"**/*.md"}, true},
		{"src/", []string{"*.md"}, false},
		{"output/", []string{"output/*/summary.md"}, false},
		{"output/", []string{"output/**/summary.md"}, false},
	} {
		if got := dirWritable(tc.dir, tc.allow); got != tc.want {
			t.Errorf("dirWritable(%q, %q) = %v", tc.dir, tc.allow, got)
		}
	}
}
