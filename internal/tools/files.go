package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gitlab.com/agentbot/agentbot/internal/agent"
)

// Limits of the reading tools.
const (
	maxReadBytes   = 10 << 20
	maxListEntries = 1000
)

// Files is the set of file tools (file_read, file_write, editor,
// list_files) over one workspace and policy. It remembers what it wrote.
// It is safe for concurrent use: the loop runs tool calls in parallel.
type Files struct {
	fs     FS
	policy Policy

	mu       sync.Mutex // serializes writes (and consent prompts)
	written  map[string]int64
	total    int64
	approved map[string]bool
}

// NewFiles returns the file tools over fsys.
func NewFiles(fsys FS, p Policy) *Files {
	return &Files{fs: fsys, policy: p, written: map[string]int64{}, approved: map[string]bool{}}
}

// Tools returns the four tools, for agent.Run.
func (f *Files) Tools() []agent.Tool {
	return []agent.Tool{
		&fileTool{name: "file_read", desc: "Read a text file of the workspace. Optional offset (first line, 1-based) and limit (number of lines).",
			schema: object(props{"path": str("Path relative to the workspace root"), "offset": integer("First line to return, 1-based"), "limit": integer("Number of lines to return")}, "path"),
			call:   f.read},
		&fileTool{name: "file_write", desc: "Create or replace a text file (parent directories are created). " + f.where() + " Set append to add to the end of an existing file.",
			schema: object(props{"path": str("Path relative to the workspace root, e.g. output/AAPL.md"), "content": str("The whole file content"), "append": boolean("Append instead of replacing")}, "path", "content"),
			call:   f.writeTool},
		&fileTool{name: "editor", desc: "View and edit text files. Commands: view (a file with line numbers, or a directory), create (write file_text), str_replace (replace old_str, which must occur exactly once, with new_str), insert (insert new_str after line insert_line; 0 is the top). " + f.where(),
			schema: object(props{
				"command":     enum("The operation", "view", "create", "str_replace", "insert"),
				"path":        str("Path relative to the workspace root"),
				"file_text":   str("create: the file content"),
				"old_str":     str("str_replace: the exact text to replace"),
				"new_str":     str("str_replace: the replacement; insert: the text to insert"),
				"insert_line": integer("insert: the line after which to insert (0 = top)"),
				"view_range":  map[string]any{"type": "array", "items": map[string]any{"type": "integer"}, "description": "view: [first, last] line, 1-based; last -1 means the end"},
			}, "command", "path"),
			call: f.editor},
		&fileTool{name: "list_files", desc: "List a directory of the workspace (default: the root). Set recursive to list everything below it.",
			schema: object(props{"path": str("Directory relative to the workspace root; default ."), "recursive": boolean("List subdirectories too")}),
			call:   f.list},
	}
}

// Written lists the files the tools wrote, sorted.
func (f *Files) Written() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.written))
	for p := range f.written {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (f *Files) where() string {
	return "Writes are allowed only under: " + strings.Join(f.policy.allow(), ", ") + "."
}

// readable checks a name for reading: any clean path but .git/, which may
// hold credentials (a CI checkout's remote URL).
func readable(name string) (string, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return "", err
	}
	for _, c := range strings.Split(clean, "/") {
		if strings.EqualFold(c, ".git") {
			return "", fmt.Errorf("%q: %w: .git/ is not readable", clean, ErrForbidden)
		}
	}
	return clean, nil
}

func (f *Files) readText(clean string) (string, error) {
	fi, err := f.fs.Stat(clean)
	if err != nil {
		return "", notFound(clean, err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("%s is a directory; use list_files", clean)
	}
	if fi.Size() > maxReadBytes {
		return "", fmt.Errorf("%s is %d bytes, more than the %d this tool reads", clean, fi.Size(), maxReadBytes)
	}
	b, err := f.fs.ReadFile(clean)
	if err != nil {
		return "", notFound(clean, err)
	}
	if !isText(b) {
		return "", fmt.Errorf("%s is a binary file (%d bytes)", clean, len(b))
	}
	return string(b), nil
}

func notFound(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return missingError(name)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// missingError says a file does not exist, and is fs.ErrNotExist.
type missingError string

func (m missingError) Error() string        { return string(m) + " does not exist" }
func (m missingError) Is(target error) bool { return target == fs.ErrNotExist }

// write applies the policy (asking for consent when that is allowed), the
// limits, and writes.
func (f *Files) write(name string, data []byte) (string, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.policy.Check(clean); err != nil {
		if !errors.Is(err, ErrNotAllowed) || f.policy.Consent == nil {
			return "", err
		}
		if !f.approved[clean] {
			if !f.policy.Consent(clean) {
				return "", fmt.Errorf("%s: %w, and the user declined the write", clean, ErrNotAllowed)
			}
			f.approved[clean] = true
		}
	}
	if err := f.policy.CheckContent(clean, data); err != nil {
		return "", err
	}
	total := f.total - f.written[clean] + int64(len(data))
	if total > f.policy.maxTotal() {
		return "", fmt.Errorf("%s: %w: writing it would bring this run's files to %d bytes, the limit is %d", clean, ErrTooLarge, total, f.policy.maxTotal())
	}
	if err := f.fs.WriteFile(clean, data); err != nil {
		return "", err
	}
	f.written[clean] = int64(len(data))
	f.total = total
	return clean, nil
}

type readInput struct {
	Path   string `json:"path"`
	Offset int    `json:"offset"`
	Limit  int    `json:"limit"`
}

func (f *Files) read(_ context.Context, raw json.RawMessage) (string, error) {
	var in readInput
	if err := decode(raw, &in); err != nil {
		return "", err
	}
	clean, err := readable(in.Path)
	if err != nil {
		return "", err
	}
	text, err := f.readText(clean)
	if err != nil {
		return "", err
	}
	if in.Offset <= 0 && in.Limit <= 0 {
		return text, nil
	}
	lines := strings.SplitAfter(text, "\n")
	first := max(in.Offset, 1) - 1
	if first >= len(lines) {
		return "", fmt.Errorf("%s has %d lines; offset %d is past the end", clean, len(lines), in.Offset)
	}
	last := len(lines)
	if in.Limit > 0 {
		last = min(first+in.Limit, len(lines))
	}
	return strings.Join(lines[first:last], ""), nil
}

type writeInput struct {
	Path    string  `json:"path"`
	Content *string `json:"content"`
	Append  bool    `json:"append"`
}

func (f *Files) writeTool(_ context.Context, raw json.RawMessage) (string, error) {
	var in writeInput
	if err := decode(raw, &in); err != nil {
		return "", err
	}
	if in.Content == nil {
		return "", errors.New("content is required")
	}
	data := *in.Content
	if in.Append {
		clean, err := readable(in.Path)
		if err != nil {
			return "", err
		}
		old, err := f.readText(clean)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		data = old + data
	}
	clean, err := f.write(in.Path, []byte(data))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("wrote %d bytes to %s", len(data), clean), nil
}

type editorInput struct {
	Command    string  `json:"command"`
	Path       string  `json:"path"`
	FileText   *string `json:"file_text"`
	OldStr     *string `json:"old_str"`
	NewStr     *string `json:"new_str"`
	InsertLine *int    `json:"insert_line"`
	ViewRange  []int   `json:"view_range"`
}

func (f *Files) editor(ctx context.Context, raw json.RawMessage) (string, error) {
	var in editorInput
	if err := decode(raw, &in); err != nil {
		return "", err
	}
	switch in.Command {
	case "view":
		return f.view(ctx, in)
	case "create":
		if in.FileText == nil {
			return "", errors.New("create needs file_text")
		}
		clean, err := f.write(in.Path, []byte(*in.FileText))
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("created %s (%d bytes)", clean, len(*in.FileText)), nil
	case "str_replace":
		if in.OldStr == nil || *in.OldStr == "" {
			return "", errors.New("str_replace needs a non-empty old_str")
		}
		clean, text, err := f.editable(in.Path)
		if err != nil {
			return "", err
		}
		switch n := strings.Count(text, *in.OldStr); n {
		case 0:
			return "", fmt.Errorf("old_str does not occur in %s; view the file and copy the text exactly", clean)
		case 1:
		default:
			return "", fmt.Errorf("old_str occurs %d times in %s; include more context so that it is unique", n, clean)
		}
		newStr := ""
		if in.NewStr != nil {
			newStr = *in.NewStr
		}
		if _, err := f.write(clean, []byte(strings.Replace(text, *in.OldStr, newStr, 1))); err != nil {
			return "", err
		}
		return "replaced 1 occurrence in " + clean, nil
	case "insert":
		if in.InsertLine == nil || in.NewStr == nil {
			return "", errors.New("insert needs insert_line and new_str")
		}
		clean, text, err := f.editable(in.Path)
		if err != nil {
			return "", err
		}
		lines := strings.SplitAfter(text, "\n")
		if len(lines) > 0 && lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		at := *in.InsertLine
		if at < 0 || at > len(lines) {
			return "", fmt.Errorf("insert_line %d is outside 0..%d", at, len(lines))
		}
		ins := *in.NewStr
		if !strings.HasSuffix(ins, "\n") {
			ins += "\n"
		}
		if at > 0 && !strings.HasSuffix(lines[at-1], "\n") {
			lines[at-1] += "\n"
		}
		out := strings.Join(lines[:at], "") + ins + strings.Join(lines[at:], "")
		if _, err := f.write(clean, []byte(out)); err != nil {
			return "", err
		}
		return fmt.Sprintf("inserted %d line(s) after line %d of %s", strings.Count(ins, "\n"), at, clean), nil
	case "":
		return "", errors.New("command is required: view, create, str_replace or insert")
	default:
		return "", fmt.Errorf("unknown command %q: use view, create, str_replace or insert", in.Command)
	}
}

// editable reads a file that is about to be edited.
func (f *Files) editable(name string) (string, string, error) {
	clean, err := readable(name)
	if err != nil {
		return "", "", err
	}
	text, err := f.readText(clean)
	return clean, text, err
}

func (f *Files) view(ctx context.Context, in editorInput) (string, error) {
	clean, err := readable(in.Path)
	if err != nil {
		return "", err
	}
	if fi, err := f.fs.Stat(clean); err == nil && fi.IsDir() {
		return f.list(ctx, json.RawMessage(fmt.Sprintf(`{"path":%q}`, clean)))
	}
	text, err := f.readText(clean)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	first, last := 1, len(lines)
	if len(in.ViewRange) == 2 {
		first = max(in.ViewRange[0], 1)
		if in.ViewRange[1] > 0 {
			last = min(in.ViewRange[1], len(lines))
		}
		if first > last {
			return "", fmt.Errorf("view_range %v is outside the file's %d lines", in.ViewRange, len(lines))
		}
	}
	var b strings.Builder
	for i := first; i <= last; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\t')
		b.WriteString(lines[i-1])
		b.WriteByte('\n')
	}
	return b.String(), nil
}

type listInput struct {
	Path      string `json:"path"`
	Recursive bool   `json:"recursive"`
}

func (f *Files) list(_ context.Context, raw json.RawMessage) (string, error) {
	var in listInput
	if err := decode(raw, &in); err != nil {
		return "", err
	}
	if in.Path == "" {
		in.Path = "."
	}
	clean, err := readable(in.Path)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	n := 0
	var walk func(dir string) error
	walk = func(dir string) error {
		entries, err := f.fs.ReadDir(dir)
		if err != nil {
			return notFound(dir, err)
		}
		for _, e := range entries {
			if strings.EqualFold(e.Name(), ".git") {
				continue
			}
			if n >= maxListEntries {
				return nil
			}
			n++
			p := e.Name()
			if dir != "." {
				p = path.Join(dir, e.Name())
			}
			if e.IsDir() {
				b.WriteString(p + "/\n")
				if in.Recursive {
					if err := walk(p); err != nil {
						return err
					}
				}
				continue
			}
			size := ""
			if fi, err := e.Info(); err == nil {
				size = fmt.Sprintf(" (%d bytes)", fi.Size())
			}
			b.WriteString(p + size + "\n")
		}
		return nil
	}
	if err := walk(clean); err != nil {
		return "", err
	}
	if n >= maxListEntries {
		fmt.Fprintf(&b, "[stopped at %d entries; list a subdirectory]\n", maxListEntries)
	}
	if n == 0 {
		return clean + " is empty", nil
	}
	return b.String(), nil
}

func decode(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("bad input: %v", err)
	}
	return nil
}

// fileTool adapts one of Files' methods to agent.Tool.
type fileTool struct {
	name, desc string
	schema     map[string]any
	call       func(context.Context, json.RawMessage) (string, error)
}

func (t *fileTool) Spec() agent.ToolSpec {
	return agent.ToolSpec{Name: t.name, Description: t.desc, InputSchema: t.schema}
}

func (t *fileTool) Call(ctx context.Context, input json.RawMessage) (string, bool) {
	out, err := t.call(ctx, input)
	if err != nil {
		return "error: " + err.Error(), true
	}
	return out, false
}

type props map[string]any

func object(p props, required ...string) map[string]any {
	s := map[string]any{"type": "object", "properties": map[string]any(p)}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func str(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
func integer(desc string) map[string]any {
	return map[string]any{"type": "integer", "description": desc}
}
func boolean(desc string) map[string]any {
	return map[string]any{"type": "boolean", "description": desc}
}
func enum(desc string, values ...string) map[string]any {
	return map[string]any{"type": "string", "description": desc, "enum": values}
}
