package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/tools"
)

// workspace makes a workspace dir with a few files, an outside dir beside
// it, and symlinks from output/ into the workspace and out of it.
func workspace(t *testing.T) (dir, outside string) {
	t.Helper()
	base := t.TempDir()
	dir = filepath.Join(base, "ws")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{dir, outside, filepath.Join(dir, "output"), filepath.Join(dir, "src"), filepath.Join(dir, ".git")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(dir, "README.md"):      "# Project\n",
		filepath.Join(dir, ".gitlab-ci.yml"): "stages: [test]\n",
		filepath.Join(dir, ".git", "config"): "[remote \"origin\"]\n\turl = https://gitlab-ci-token:secret@gitlab.example/x.git\n",
		filepath.Join(dir, "src", "main.go"): "package main\n",
		filepath.Join(outside, "target.txt"): "outside\n",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		filepath.Join(dir, "output", "in"):      "../src",                             // stays inside
		filepath.Join(dir, "output", "out"):     outside,                              // leaves the root
		filepath.Join(dir, "output", "file.md"): filepath.Join(outside, "target.txt"), // a file link out
		filepath.Join(dir, "output", "ci.md"):   "../.gitlab-ci.yml",                  // a file link in
	}
	for l, target := range links {
		if err := os.Symlink(target, l); err != nil {
			t.Fatal(err)
		}
	}
	return dir, outside
}

// snapshot maps every path under the dirs to its content (or link target).
func snapshot(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch {
			case e.Type()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				out[p] = "-> " + target
			case e.IsDir():
				out[p] = "dir"
			default:
				b, _ := os.ReadFile(p)
				out[p] = string(b)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func newFiles(t *testing.T, dir string, p tools.Policy) (*tools.Files, map[string]agent.Tool) {
	t.Helper()
	d, err := tools.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f := tools.NewFiles(d, p)
	byName := map[string]agent.Tool{}
	for _, tl := range f.Tools() {
		byName[tl.Spec().Name] = tl
	}
	return f, byName
}

func call(t *testing.T, tl agent.Tool, input any) (string, bool) {
	t.Helper()
	b, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	return tl.Call(context.Background(), b)
}

func TestEscapesAreRefused(t *testing.T) {
	dir, outside := workspace(t)
	before := snapshot(t, dir, outside)
	files, tl := newFiles(t, dir, tools.Policy{})

	escapes := []struct{ name, path string }{
		{"parent", "../escape.md"},
		{"parent inside output", "output/../../escape.md"},
		{"absolute", filepath.Join(outside, "abs.md")},
		{"absolute root", "/etc/agentbot.md"},
		{"ci file through ..", "output/../.gitlab-ci.yml"},
		{"ci file", ".gitlab-ci.yml"},
		{"git config", ".git/config"},
		{"git config, other case", ".GIT/config"},
		{"git dir inside output", "output/.git/hooks/pre-commit"},
		{"ci file inside output", "output/.gitlab-ci.yml"},
		{"outside the allowlist", "README.md"},
		{"NUL", "output/a\x00.md"},
		{"control character", "output/a\n.md"},
		{"backslash", `output\..\escape.md`},
		{"very long path", "output/" + strings.Repeat("a/", 600) + "x.md"},
		{"very long segment", "output/" + strings.Repeat("a", 300) + ".md"},
		{"division slash", "output\u2215..\u2215escape.md"},
		{"fullwidth solidus", "output\uff0fx.md"},
		{"one dot leaders", "output/\u2024\u2024/escape.md"},
		{"fullwidth full stop", "output/\uff0e\uff0e/escape.md"},
		{"not NFC", "output/e\u0301.md"},
		{"right-to-left override", "output/\u202edm.txt"},
		{"zero-width space", "output\u200b/x.md"},
		{"drive letter", "C:/x.md"},
		{"home", "~/x.md"},
		{"trailing dot segment", "output./x.md"},
		{"empty segment", "output//x.md"},
		{"dot segment", "output/./x.md"},
		{"symlink into the workspace", "output/in/main.go"},
		{"symlink out of the workspace", "output/out/x.md"},
		{"file symlink out", "output/file.md"},
		{"file symlink in", "output/ci.md"},
		{"empty", ""},
		{"root", "."},
	}
	for _, e := range escapes {
		t.Run(e.name, func(t *testing.T) {
			for _, try := range []struct {
				tool  string
				input map[string]any
			}{
				{"file_write", map[string]any{"path": e.path, "content": "pwned"}},
				{"editor", map[string]any{"command": "create", "path": e.path, "file_text": "pwned"}},
			} {
				out, isErr := call(t, tl[try.tool], try.input)
				if !isErr || !strings.HasPrefix(out, "error: ") {
					t.Errorf("%s %q: accepted: %s", try.tool, e.path, out)
				}
			}
		})
	}
	if after := snapshot(t, dir, outside); !equal(before, after) {
		t.Errorf("the refused writes changed files:\n%s", diff(before, after))
	}
	if w := files.Written(); len(w) != 0 {
		t.Errorf("Written() = %v", w)
	}
}

func equal(a, b map[string]string) bool { return diff(a, b) == "" }

func diff(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "removed "+k)
		} else if v != w {
			out = append(out, "changed "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "added "+k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestWriteEditRead(t *testing.T) {
	dir, _ := workspace(t)
	files, tl := newFiles(t, dir, tools.Policy{})

	mustOK := func(tool string, in map[string]any) string {
		t.Helper()
		out, isErr := call(t, tl[tool], in)
		if isErr {
			t.Fatalf("%s %v: %s", tool, in, out)
		}
		return out
	}
	mustErr := func(tool string, in map[string]any, mention string) {
		t.Helper()
		out, isErr := call(t, tl[tool], in)
		if !isErr || !strings.Contains(out, mention) {
			t.Errorf("%s %v: %q, want an error mentioning %q", tool, in, out, mention)
		}
	}

	mustOK("file_write", map[string]any{"path": "./output/AAPL.md", "content": "# AAPL\nline 2\nline 3\n"})
	if b, _ := os.ReadFile(filepath.Join(dir, "output", "AAPL.md")); string(b) != "# AAPL\nline 2\nline 3\n" {
		t.Errorf("file content %q", b)
	}
	mustOK("file_write", map[string]any{"path": "output/AAPL.md", "content": "line 4\n", "append": true})
	if got := mustOK("file_read", map[string]any{"path": "output/AAPL.md", "offset": 2, "limit": 2}); got != "line 2\nline 3\n" {
		t.Errorf("read lines 2-3: %q", got)
	}
	mustOK("editor", map[string]any{"command": "str_replace", "path": "output/AAPL.md", "old_str": "line 2", "new_str": "second line"})
	mustErr("editor", map[string]any{"command": "str_replace", "path": "output/AAPL.md", "old_str": "line", "new_str": "x"}, "occurs 3 times")
	mustErr("editor", map[string]any{"command": "str_replace", "path": "output/AAPL.md", "old_str": "nope", "new_str": "x"}, "does not occur")
	mustOK("editor", map[string]any{"command": "insert", "path": "output/AAPL.md", "insert_line": 1, "new_str": "inserted"})
	if got := mustOK("editor", map[string]any{"command": "view", "path": "output/AAPL.md", "view_range": []int{1, 3}}); got != "1\t# AAPL\n2\tinserted\n3\tsecond line\n" {
		t.Errorf("view: %q", got)
	}
	mustOK("editor", map[string]any{"command": "create", "path": "output/sub/notes.md", "file_text": "notes"})
	mustErr("editor", map[string]any{"command": "delete", "path": "output/AAPL.md"}, "unknown command")

	if got := mustOK("file_read", map[string]any{"path": "README.md"}); got != "# Project\n" {
		t.Errorf("read README: %q", got)
	}
	mustErr("file_read", map[string]any{"path": ".git/config"}, ".git/ is not readable")
	mustErr("file_read", map[string]any{"path": "output/out/target.txt"}, "output/out/target.txt")
	mustErr("file_read", map[string]any{"path": "nope.md"}, "does not exist")
	if got := mustOK("file_read", map[string]any{"path": "output/in/main.go"}); got != "package main\n" {
		t.Errorf("read through an inside symlink: %q", got)
	}

	list := mustOK("list_files", map[string]any{"recursive": true})
	for _, want := range []string{"README.md (10 bytes)", "output/", "output/sub/notes.md (5 bytes)", "src/main.go"} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, ".git/") {
		t.Errorf("list shows .git:\n%s", list)
	}
	if got := files.Written(); strings.Join(got, ",") != "output/AAPL.md,output/sub/notes.md" {
		t.Errorf("Written() = %v", got)
	}
}

func TestLimitsAndText(t *testing.T) {
	dir, _ := workspace(t)
	_, tl := newFiles(t, dir, tools.Policy{MaxFileBytes: 10, MaxTotalBytes: 15})
	write := func(p, content string) (string, bool) {
		return call(t, tl["file_write"], map[string]any{"path": p, "content": content})
	}
	if out, isErr := write("output/a.md", "0123456789"); isErr {
		t.Fatal(out)
	}
	if out, isErr := write("output/b.md", "01234567890"); !isErr || !strings.Contains(out, "limit for one file is 10") {
		t.Errorf("per-file limit: %s", out)
	}
	if out, isErr := write("output/b.md", "0123456"); !isErr || !strings.Contains(out, "limit is 15") {
		t.Errorf("total limit: %s", out)
	}
	// Rewriting a file counts its new size, not both.
	if out, isErr := write("output/a.md", "01234"); isErr {
		t.Errorf("rewrite: %s", out)
	}
	if out, isErr := write("output/c.md", "bin\x00ary"); !isErr || !strings.Contains(out, "not a text file") {
		t.Errorf("binary: %s", out)
	}

	_, tl = newFiles(t, dir, tools.Policy{AllowBinary: true})
	if out, isErr := call(t, tl["file_write"], map[string]any{"path": "output/e.bin", "content": "bin\x00ary"}); isErr {
		t.Errorf("binary allowed: %s", out)
	}
}

func TestConsent(t *testing.T) {
	dir, _ := workspace(t)
	var asked []string
	answer := true
	files, tl := newFiles(t, dir, tools.Policy{Consent: func(p string) bool { asked = append(asked, p); return answer }})
	write := func(p string) (string, bool) {
		return call(t, tl["file_write"], map[string]any{"path": p, "content": "x"})
	}
	if out, isErr := write("docs/notes.md"); isErr {
		t.Fatalf("consented write refused: %s", out)
	}
	if _, isErr := write("docs/notes.md"); isErr { // asked once per path
		t.Error("second write refused")
	}
	for _, p := range []string{".gitlab-ci.yml", ".git/config", "../x.md", "output/out/x.md"} {
		if out, isErr := write(p); !isErr {
			t.Errorf("%s written with consent: %s", p, out)
		}
	}
	answer = false
	if out, isErr := write("docs/other.md"); !isErr || !strings.Contains(out, "declined") {
		t.Errorf("declined write: %s", out)
	}
	if strings.Join(asked, ",") != "docs/notes.md,docs/other.md" {
		t.Errorf("consent asked for %v", asked)
	}
	if got := files.Written(); strings.Join(got, ",") != "docs/notes.md" {
		t.Errorf("Written() = %v", got)
	}
}

func TestPolicyCheck(t *testing.T) {
	p := tools.Policy{WriteAllow: []string{"output/**", "reports/*.md", "**/CHANGELOG.md"}}
	for name, want := range map[string]error{
		"output/a.md":           nil,
		"output/x/y/z.csv":      nil,
		"reports/q1.md":         nil,
		"reports/q1.txt":        tools.ErrNotAllowed,
		"reports/sub/q1.md":     tools.ErrNotAllowed,
		"CHANGELOG.md":          nil,
		"pkg/a/CHANGELOG.md":    nil,
		"README.md":             tools.ErrNotAllowed,
		".git/HEAD":             tools.ErrForbidden,
		"output/.gitlab-ci.yml": tools.ErrForbidden,
		"output/.gitmodules":    tools.ErrForbidden,
		"output/../README.md":   tools.ErrBadPath,
		"/output/a.md":          tools.ErrBadPath,
	} {
		if err := p.Check(name); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("Check(%q) = %v, want %v", name, err, want)
		}
	}
	if err := p.CheckContent("output/x", []byte("\xff\xfe")); !errors.Is(err, tools.ErrNotText) {
		t.Errorf("invalid UTF-8: %v", err)
	}
	for _, g := range []string{"output/**", "a/*.md", "**"} {
		if err := tools.ValidGlob(g); err != nil {
			t.Errorf("ValidGlob(%q): %v", g, err)
		}
	}
	for _, g := range []string{"", "/abs/**", "../x", "a/[", "a//b"} {
		if err := tools.ValidGlob(g); err == nil {
			t.Errorf("ValidGlob(%q) accepted", g)
		}
	}
}
