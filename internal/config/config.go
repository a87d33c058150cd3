// Package config loads and validates agentbot's settings from the
// environment. It is the only package that reads environment variables, and
// every problem it reports names the variable to fix.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Getenv looks up one variable; os.Getenv in production, a map in tests.
type Getenv func(string) string

// Problems is every validation problem found at once, one per line.
type Problems []string

func (p Problems) Error() string {
	return "invalid configuration:\n  - " + strings.Join(p, "\n  - ")
}

// reader collects problems while reading variables, so that a user sees all of
// them in one go instead of fixing one per start.
type reader struct {
	get      Getenv
	problems Problems
}

func newReader(get Getenv) *reader { return &reader{get: get} }

func (r *reader) err() error {
	if len(r.problems) == 0 {
		return nil
	}
	return r.problems
}

func (r *reader) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.get(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) required(name, why string) string {
	v := r.str(name, "")
	if v == "" {
		r.problem("%s is required: %s", name, why)
	}
	return v
}

func (r *reader) int(name string, def, min int) int {
	s := r.str(name, "")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min {
		r.problem("%s=%q: want a whole number >= %d", name, s, min)
		return def
	}
	return n
}

func (r *reader) float(name string, def float64) float64 {
	s := r.str(name, "")
	if s == "" {
		return def
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		r.problem("%s=%q: want a non-negative number", name, s)
		return def
	}
	return f
}

func (r *reader) bool(name string, def bool) bool {
	s := r.str(name, "")
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		r.problem("%s=%q: want true or false", name, s)
		return def
	}
	return b
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	s := r.str(name, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		r.problem("%s=%q: want a positive duration such as 30s, 10m or 1h", name, s)
		return def
	}
	return d
}

// bytes reads a size such as 5MiB, 512KiB, 1048576.
func (r *reader) bytes(name string, def int64) int64 {
	s := r.str(name, "")
	if s == "" {
		return def
	}
	n, err := ParseBytes(s)
	if err != nil || n <= 0 {
		r.problem("%s=%q: want a positive size such as 5MiB, 512KiB or 1048576", name, s)
		return def
	}
	return n
}

func (r *reader) list(name string, def []string) []string {
	s := r.str(name, "")
	if s == "" {
		return def
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ParseBytes parses a size with an optional B, KB, KiB, MB, MiB, GB or GiB
// suffix (case-insensitive).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
	}
	lower := strings.ToLower(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			lower = strings.TrimSpace(strings.TrimSuffix(lower, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(lower, 10, 64)
	if err != nil {
		return 0, errors.New("not a size")
	}
	return n * mult, nil
}

func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}
