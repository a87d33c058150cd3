// Package webhooks holds GitLab webhook deliveries as GitLab sends them: for
// each name, <name>.json is the request body and <name>.headers the request
// headers ("Name: value" per line), without X-Gitlab-Token, which a test adds
// with its own secret. README.md lists what each delivery represents and
// whether agentbot should start a job for it. Tests, the docs' replay commands
// and `agentbot demo` share them.
package webhooks

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"
)

// FS holds the deliveries: <name>.json and <name>.headers.
//
//go:embed *.json *.headers
var FS embed.FS

// Delivery is one webhook request.
type Delivery struct {
	Name   string
	Header http.Header
	Body   []byte
}

// ErrNotFound is returned by Load for a name with no delivery.
var ErrNotFound = errors.New("no such webhook delivery")

// Load returns the delivery called name (a file name without extension, such
// as "note_issue"). Each call returns fresh copies that the caller may change.
func Load(name string) (Delivery, error) {
	if name == "" || strings.ContainsAny(name, `/\.`) || !fs.ValidPath(name) {
		return Delivery{}, fmt.Errorf("load webhook delivery %q: %w", name, ErrNotFound)
	}
	body, err := FS.ReadFile(name + ".json")
	if err != nil {
		return Delivery{}, fmt.Errorf("load webhook delivery %q: %w", name, ErrNotFound)
	}
	raw, err := FS.ReadFile(name + ".headers")
	if err != nil {
		return Delivery{}, fmt.Errorf("load webhook delivery %q: headers: %w", name, ErrNotFound)
	}
	h, err := parseHeaders(raw)
	if err != nil {
		return Delivery{}, fmt.Errorf("load webhook delivery %q: %w", name, err)
	}
	return Delivery{Name: name, Header: h, Body: body}, nil
}

// All returns every delivery, sorted by name.
func All() ([]Delivery, error) {
	files, err := fs.Glob(FS, "*.json")
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	slices.Sort(files)
	out := make([]Delivery, 0, len(files))
	for _, f := range files {
		d, err := Load(strings.TrimSuffix(f, ".json"))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Event is the delivery's X-Gitlab-Event header, e.g. "Note Hook".
func (d Delivery) Event() string { return d.Header.Get("X-Gitlab-Event") }

// NewRequest builds a POST of the delivery to url, with its headers and a
// copy of its body. Add X-Gitlab-Token (or signing headers) before sending.
func (d Delivery) NewRequest(ctx context.Context, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(slices.Clone(d.Body)))
	if err != nil {
		return nil, fmt.Errorf("build request for webhook delivery %q: %w", d.Name, err)
	}
	req.Header = d.Header.Clone()
	return req, nil
}

// parseHeaders reads "Name: value" lines; blank lines and lines starting
// with "#" are skipped.
func parseHeaders(raw []byte) (http.Header, error) {
	h := http.Header{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("headers line %d: want \"Name: value\"", n)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read headers: %w", err)
	}
	return h, nil
}
