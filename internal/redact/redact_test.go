package redact_test

import (
	"strings"
	"sync"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/redact"
)

func TestString(t *testing.T) {
	r := redact.New("s3cr3t-value-123", "tiny")
	tests := []struct {
		name, in, want string
	}{
		{"known secret", "token is s3cr3t-value-123!", "token is [REDACTED]!"},
		{"short values are not secrets", "tiny things", "tiny things"},
		{"gitlab pat", "use glpat-abcdefghijklmnopqrst now", "use [REDACTED] now"},
		{"gitlab runner token", "glrt-t1_abcdefghijklmnopqrstu", "[REDACTED]"},
		{"aws key id", "key AKIAIOSFODNN7EXAMPLE here", "key [REDACTED] here"},
		{"aws secret", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = [REDACTED]"},
		{"bearer", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "Authorization: Bearer [REDACTED]"},
		{"bearer lower", "authorization: bearer abcdefghij", "authorization: bearer [REDACTED]"},
		{"url credentials", "https://oauth2:hunter2hunter2@gitlab.example/x.git", "https://oauth2:[REDACTED]@gitlab.example/x.git"},
		{"private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nrest", "[REDACTED]\nrest"},
		{"plain text untouched", "AAPL closed at 189.12 on 2026-01-02", "AAPL closed at 189.12 on 2026-01-02"},
		{"the word bearer alone", "the bearer of news", "the bearer of news"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAddLongestFirst(t *testing.T) {
	r := redact.New("abcdef")
	r.Add("abcdefghij")
	r.Add("abcdef") // duplicate ignored
	if got := r.String("x abcdefghij y abcdef"); got != "x [REDACTED] y [REDACTED]" {
		t.Errorf("got %q", got)
	}
}

func TestNilRedactor(t *testing.T) {
	var r *redact.Redactor
	if got := r.String("glpat-abcdefghijklmnopqrst"); got != "glpat-abcdefghijklmnopqrst" {
		t.Errorf("nil redactor changed text: %q", got)
	}
}

func TestConcurrentAdd(t *testing.T) {
	r := redact.New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := strings.Repeat(string(rune('a'+i)), 10)
			r.Add(s)
			_ = r.String("x " + s)
		}()
	}
	wg.Wait()
	if got := r.String("aaaaaaaaaa hhhhhhhhhh"); got != "[REDACTED] [REDACTED]" {
		t.Errorf("got %q", got)
	}
}
