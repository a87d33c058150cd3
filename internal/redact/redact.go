// Package redact removes secrets from text before it reaches logs, notes,
// transcripts or the model: the exact values agentbot knows (tokens it was
// given) and well-known credential shapes (GitLab tokens, AWS access key ids,
// bearer tokens, private keys).
package redact

import (
	"regexp"
	"strings"
	"sync"
)

// Mask replaces every secret found.
const Mask = "[REDACTED]"

// minSecretLen is the shortest known value replaced; shorter values would
// mangle ordinary text ("a", "123") and are not credentials anyway.
const minSecretLen = 6

// pattern is a credential shape. hints are literals, one of which every match contains,
// checked first so that text without it costs one substring search.
type pattern struct {
	hints      []string // any of them
	ignoreCase bool
	re         *regexp.Regexp
	keepPrefix int    // 1: keep submatch 1 before the mask (0: replace the whole match)
	tail       string // literal put back after the mask
}

func patterns() []pattern {
	return []pattern{
		// GitLab tokens: personal, project/group (glpat-), deploy (gldt-),
		// runner (glrt-, glrtr-), trigger (glptt-), CI job (glcbt-), OAuth
		// app secrets (gloas-), SCIM (glsoat-), feed (glft-), incoming mail
		// (glimt-), agent (glagent-), feature-flag client (glffct-).
		{hints: []string{"glpat-", "gldt-", "glrt-", "glrtr-", "glptt-", "glcbt-", "gloas-", "glsoat-", "glft-", "glimt-", "glagent-", "glffct-", "glwt-"}, re: regexp.MustCompile(`\bgl(?:pat|dt|rt|rtr|ptt|cbt|oas|soat|ft|imt|agent|ffct|wt)-[0-9A-Za-z_\-\.]{16,}`)},
		// AWS access key ids (long-term AKIA, temporary ASIA).
		{hints: []string{"AKIA", "ASIA", "AROA", "AIDA"}, re: regexp.MustCompile(`\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b`)},
		// aws_secret_access_key = ... in config files and env dumps.
		{hints: []string{"secret_access_key"}, ignoreCase: true, re: regexp.MustCompile(`(?i)(aws_secret_access_key\s*[=:]\s*["']?)[0-9A-Za-z/+=]{30,}`), keepPrefix: 1},
		// HTTP bearer and basic credentials.
		{hints: []string{"bearer"}, ignoreCase: true, re: regexp.MustCompile(`(?i)(\bbearer\s+)[0-9A-Za-z\-\._~\+/]{8,}=*`), keepPrefix: 1},
		// Private keys in PEM form.
		{hints: []string{"PRIVATE KEY"}, re: regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)`)},
		// Credentials in URLs: https://user:secret@host.
		{hints: []string{"://"}, re: regexp.MustCompile(`(\b[a-zA-Z][a-zA-Z0-9+\-.]*://[^\s:/@]+:)[^\s@/]+@`), keepPrefix: 1, tail: "@"},
	}
}

// Redactor replaces known secret values and credential-shaped strings. The
// zero value is not usable; build one with New. It is safe for concurrent use.
type Redactor struct {
	patterns []pattern

	mu       sync.RWMutex
	secrets  []string
	replacer *strings.Replacer // nil when there are no known secrets
}

// New returns a Redactor that also replaces the given secret values
// (values shorter than 6 bytes are ignored).
func New(secrets ...string) *Redactor {
	r := &Redactor{patterns: patterns()}
	for _, s := range secrets {
		r.add(s)
	}
	r.rebuild()
	return r
}

// Add registers one more secret value, e.g. a token fetched at run time.
func (r *Redactor) Add(secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.add(secret) {
		r.rebuild()
	}
}

func (r *Redactor) add(secret string) bool {
	secret = strings.TrimSpace(secret)
	if len(secret) < minSecretLen {
		return false
	}
	for _, s := range r.secrets {
		if s == secret {
			return false
		}
	}
	r.secrets = append(r.secrets, secret)
	return true
}

// rebuild makes the replacer; longer secrets first so that a secret that
// contains another is replaced whole. Caller holds mu (or owns r).
func (r *Redactor) rebuild() {
	if len(r.secrets) == 0 {
		r.replacer = nil
		return
	}
	sorted := append([]string(nil), r.secrets...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && len(sorted[j]) > len(sorted[j-1]); j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	pairs := make([]string, 0, 2*len(sorted))
	for _, s := range sorted {
		pairs = append(pairs, s, Mask)
	}
	r.replacer = strings.NewReplacer(pairs...)
}

// String returns s with every secret replaced by [REDACTED]. A nil Redactor
// returns s unchanged.
func (r *Redactor) String(s string) string {
	if r == nil || s == "" {
		return s
	}
	r.mu.RLock()
	rep := r.replacer
	r.mu.RUnlock()
	if rep != nil {
		s = rep.Replace(s)
	}
	var lower string
	for _, p := range r.patterns {
		hay := s
		if p.ignoreCase {
			if lower == "" {
				lower = strings.ToLower(s)
			}
			hay = lower
		}
		if !containsAny(hay, p.hints) {
			continue
		}
		if p.keepPrefix > 0 {
			s = p.re.ReplaceAllString(s, "${1}"+Mask+p.tail)
		} else {
			s = p.re.ReplaceAllLiteralString(s, Mask)
		}
		lower = ""
	}
	return s
}

// Func returns r.String as a plain function, for APIs that take one.
func (r *Redactor) Func() func(string) string { return r.String }

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
