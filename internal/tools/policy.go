package tools

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits on names the model may use.
const (
	MaxPathBytes      = 1024
	MaxComponentBytes = 255
)

// Defaults for Policy's zero fields.
const (
	DefaultMaxFileBytes  = 1 << 20  // 1 MiB
	DefaultMaxTotalBytes = 10 << 20 // 10 MiB
)

// DefaultWriteAllow is where the agent may write unless configured otherwise.
var DefaultWriteAllow = []string{"output/**"}

// Why a path is refused (errors.Is).
var (
	// ErrBadPath: the name itself is unsafe or ambiguous (.., absolute, NUL,
	// look-alike characters, too long, …). Refused for reads and writes.
	ErrBadPath = errors.New("unsafe path")
	// ErrForbidden: a path agentbot never writes (.git/, .gitlab-ci.yml,
	// .gitmodules), whatever the allowlist or a person says.
	ErrForbidden = errors.New("path may never be written")
	// ErrNotAllowed: a valid path outside the write allowlist.
	ErrNotAllowed = errors.New("path is outside the write allowlist")
	// ErrTooLarge: a per-file or total byte limit.
	ErrTooLarge = errors.New("too large")
	// ErrNotText: binary content while only text is allowed.
	ErrNotText = errors.New("not a text file")
)

// Policy says where and what the file tools may write.
type Policy struct {
	// WriteAllow are slash-separated globs (path.Match per segment, "**"
	// for any number of segments); DefaultWriteAllow when empty.
	WriteAllow []string
	// MaxFileBytes bounds one file, MaxTotalBytes everything written in a
	// run (defaults 1 MiB and 10 MiB).
	MaxFileBytes  int64
	MaxTotalBytes int64
	// AllowBinary permits content that is not valid UTF-8 or contains NUL.
	AllowBinary bool
	// Consent, when set (agentbot run on a terminal), is asked before a write
	// outside the allowlist; without it such writes are refused. It is never
	// asked about bad or forbidden paths.
	Consent func(path string) bool
}

func (p Policy) allow() []string {
	if len(p.WriteAllow) == 0 {
		return DefaultWriteAllow
	}
	return p.WriteAllow
}

func (p Policy) maxFile() int64 {
	if p.MaxFileBytes <= 0 {
		return DefaultMaxFileBytes
	}
	return p.MaxFileBytes
}

func (p Policy) maxTotal() int64 {
	if p.MaxTotalBytes <= 0 {
		return DefaultMaxTotalBytes
	}
	return p.MaxTotalBytes
}

// Check reports whether the agent may write name: a clean relative path,
// not forbidden, under the allowlist. It never asks for consent, so the
// workspace can call it again at commit time.
func (p Policy) Check(name string) error {
	clean, err := CleanPath(name)
	if err != nil {
		return err
	}
	if clean == "." {
		return fmt.Errorf("%q: %w: it is the workspace root", name, ErrBadPath)
	}
	if err := forbidden(clean); err != nil {
		return err
	}
	for _, g := range p.allow() {
		if MatchGlob(g, clean) {
			return nil
		}
	}
	return fmt.Errorf("%q: %w (%s)", clean, ErrNotAllowed, strings.Join(p.allow(), ", "))
}

// CheckContent applies the text-only rule and the per-file limit.
func (p Policy) CheckContent(name string, data []byte) error {
	if int64(len(data)) > p.maxFile() {
		return fmt.Errorf("%s: %w: %d bytes, the limit for one file is %d", name, ErrTooLarge, len(data), p.maxFile())
	}
	if !p.AllowBinary && !isText(data) {
		return fmt.Errorf("%s: %w: content must be valid UTF-8 without NUL bytes", name, ErrNotText)
	}
	return nil
}

func isText(b []byte) bool {
	return utf8.Valid(b) && !strings.ContainsRune(string(b), 0)
}

// forbidden refuses .git anywhere and CI/submodule files, compared without
// case (case-insensitive file systems would write .GIT into .git).
func forbidden(clean string) error {
	parts := strings.Split(clean, "/")
	for _, c := range parts {
		if strings.EqualFold(c, ".git") {
			return fmt.Errorf("%q: %w: .git/ is the repository itself", clean, ErrForbidden)
		}
	}
	base := parts[len(parts)-1]
	for _, f := range []string{".gitlab-ci.yml", ".gitlab-ci.yaml", ".gitmodules"} {
		if strings.EqualFold(base, f) {
			return fmt.Errorf("%q: %w: %s controls CI or submodules", clean, ErrForbidden, f)
		}
	}
	return nil
}

// CleanPath validates a name the model gave and returns it cleaned: a
// slash-separated path relative to the workspace root ("." for the root).
// A leading "./" is dropped; everything else that could escape or deceive
// is refused rather than repaired.
func CleanPath(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%q: %w: %s", truncateName(name), ErrBadPath, why)
	}
	if name == "" {
		return bad("empty")
	}
	if len(name) > MaxPathBytes {
		return bad(fmt.Sprintf("longer than %d bytes", MaxPathBytes))
	}
	if !utf8.ValidString(name) {
		return bad("not valid UTF-8")
	}
	if !norm.NFC.IsNormalString(name) {
		return bad("not in Unicode normal form C (composed characters)")
	}
	for _, r := range name {
		switch {
		case r == 0:
			return bad("contains a NUL byte")
		case r == '\\':
			return bad(`contains a backslash; use "/"`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return bad("contains a control character")
		case lookAlike(r):
			return bad(fmt.Sprintf("contains %U, which looks like a path separator or dot", r))
		case unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r):
			return bad(fmt.Sprintf("contains the invisible character %U", r))
		case r != ' ' && unicode.IsSpace(r):
			return bad(fmt.Sprintf("contains the space character %U", r))
		}
	}
	if strings.HasPrefix(name, "/") {
		return bad("absolute; give a path relative to the workspace")
	}
	if len(name) >= 2 && name[1] == ':' {
		return bad("looks like a drive letter")
	}
	for strings.HasPrefix(name, "./") {
		name = name[2:]
	}
	if name == "." || name == "" {
		return ".", nil
	}
	name = strings.TrimSuffix(name, "/")
	for _, c := range strings.Split(name, "/") {
		switch {
		case c == "":
			return bad("contains an empty segment (//)")
		case c == "." || c == "..":
			return bad(`contains "." or ".." segments`)
		case len(c) > MaxComponentBytes:
			return bad(fmt.Sprintf("has a segment longer than %d bytes", MaxComponentBytes))
		case strings.TrimSpace(c) != c:
			return bad("has a segment starting or ending with a space")
		case strings.HasSuffix(c, "."):
			return bad("has a segment ending with a dot")
		case c == "~" || strings.HasPrefix(c, "~"):
			return bad(`has a segment starting with "~"`)
		}
	}
	return name, nil
}

// lookAlike are characters that render like "/", "\" or "." and could make
// a path look like another one in a review.
func lookAlike(r rune) bool {
	switch r {
	case '\u2215', // division slash
		'\u2044', // fraction slash
		'\u29f8', // big solidus
		'\uff0f', // fullwidth solidus
		'\u2571', // box drawings light diagonal
		'\u29f5', // reverse solidus operator
		'\u29f9', // big reverse solidus
		'\ufe68', // small reverse solidus
		'\uff3c', // fullwidth reverse solidus
		'\u2216', // set minus
		'\u2024', // one dot leader
		'\u2025', // two dot leader
		'\u2026', // horizontal ellipsis
		'\uff0e', // fullwidth full stop
		'\ufe52', // small full stop
		'\u3002', // ideographic full stop
		'\uff61', // halfwidth ideographic full stop
		'\u0701', // syriac supralinear full stop
		'\u0702', // syriac sublinear full stop
		'\ua60e', // vai full stop
		'\u00b7', // middle dot
		'\u2219', // bullet operator
		'\u22c5': // dot operator
		return true
	}
	return false
}

func truncateName(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// MatchGlob matches a slash-separated path against a glob where "**" is any
// number of whole segments (including none) and other segments use
// path.Match. "output/**" matches everything under output/.
func MatchGlob(glob, name string) bool {
	return matchSegs(strings.Split(glob, "/"), strings.Split(name, "/"))
}

func matchSegs(g, n []string) bool {
	for len(g) > 0 {
		if g[0] == "**" {
			if len(g) == 1 {
				return true
			}
			for i := 0; i <= len(n); i++ {
				if matchSegs(g[1:], n[i:]) {
					return true
				}
			}
			return false
		}
		if len(n) == 0 {
			return false
		}
		if ok, err := path.Match(g[0], n[0]); err != nil || !ok {
			return false
		}
		g, n = g[1:], n[1:]
	}
	return len(n) == 0
}

// ValidGlob reports whether a write-allow glob is usable: relative, no
// ".." and well-formed segments.
func ValidGlob(glob string) error {
	if glob == "" || strings.HasPrefix(glob, "/") {
		return fmt.Errorf("glob %q: must be a relative path", glob)
	}
	for _, seg := range strings.Split(glob, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("glob %q: empty, . or .. segment", glob)
		}
		if seg == "**" {
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("glob %q: %w", glob, err)
		}
	}
	return nil
}
