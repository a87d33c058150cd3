package gitlabtest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Fault is an error answer the API gives instead of its normal one.
type Fault struct {
	Method      string // "" for any
	PathPattern string // see FailNext
	Status      int    // 5xx or 429
	Times       int    // how many requests it hits
	// AfterApply makes the server apply the request (a note is created…)
	// and then answer Status, as a proxy timing out behind GitLab does: the
	// case that makes a naive retry post a comment twice.
	AfterApply bool
	// RetryAfter is the Retry-After header of a 429 answer, in seconds;
	// 0 means the server's default (see SetRetryAfter).
	RetryAfter int
}

type faultRate struct {
	p        float64
	statuses []int
	rng      *rand.Rand
}

// FailNext makes the next n API requests that match method ("" for any) and
// pathPattern answer status without being applied. pathPattern is matched
// with path.Match against the escaped URL path, "/api/v4" optional ("*"
// matches one segment): "/projects/*/issues/*/notes". An empty pattern
// matches every path. A 429 carries Retry-After (see SetRetryAfter).
func (s *Server) FailNext(method, pathPattern string, status, n int) {
	s.InjectFault(Fault{Method: method, PathPattern: pathPattern, Status: status, Times: n})
}

// FailAfterApply makes the next n matching requests apply their write and
// then answer status (see Fault.AfterApply).
func (s *Server) FailAfterApply(method, pathPattern string, status, n int) {
	s.InjectFault(Fault{Method: method, PathPattern: pathPattern, Status: status, Times: n, AfterApply: true})
}

// InjectFault queues a fault; faults are tried in the order they were
// queued.
func (s *Server) InjectFault(f Fault) {
	s.t.Helper()
	if f.Status < 400 {
		s.fatalf("InjectFault: status %d is not an error", f.Status)
	}
	if _, err := path.Match(normalizePattern(f.PathPattern), "/"); err != nil {
		s.fatalf("InjectFault: bad pattern %q: %v", f.PathPattern, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// SetFaultRate makes each API request fail with probability p, with a status
// drawn from statuses (default 500 and 429), from a generator seeded with
// seed. Half of the failed writes (non-GET) are applied before the error
// answer. p = 0 turns it off.
func (s *Server) SetFaultRate(p float64, seed uint64, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p <= 0 {
		s.rate = nil
		return
	}
	if len(statuses) == 0 {
		statuses = []int{http.StatusInternalServerError, http.StatusTooManyRequests}
	}
	s.rate = &faultRate{p: p, statuses: statuses, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// SetRetryAfter sets the Retry-After (seconds, 0 allowed) of 429 answers
// whose Fault does not set one; the default is 1. Chaos tests with many 429s
// set 0 to stay fast.
func (s *Server) SetRetryAfter(seconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAfter = max(seconds, 0)
}

// ClearFaults drops queued faults and the fault rate.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.rate = nil, nil
}

func normalizePattern(p string) string {
	if p == "" {
		return ""
	}
	if !strings.HasPrefix(p, "/api/v4/") && !strings.HasPrefix(p, "/api/v4") {
		p = "/api/v4/" + strings.TrimPrefix(p, "/")
	}
	return p
}

func matchCall(method, pattern, gotMethod, gotPath string) bool {
	if method != "" && !strings.EqualFold(method, gotMethod) {
		return false
	}
	if pattern == "" {
		return true
	}
	ok, _ := path.Match(normalizePattern(pattern), gotPath)
	return ok
}

// takeFault picks the fault for a request, if any, and uses it up.
func (s *Server) takeFault(r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if matchCall(f.Method, f.PathPattern, r.Method, r.URL.EscapedPath()) {
			f.Times--
			if f.Times <= 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
			c := *f
			return &c
		}
	}
	if s.rate != nil && s.rate.rng.Float64() < s.rate.p {
		st := s.rate.statuses[s.rate.rng.IntN(len(s.rate.statuses))]
		after := r.Method != http.MethodGet && st >= 500 && s.rate.rng.IntN(2) == 0
		return &Fault{Status: st, AfterApply: after}
	}
	return nil
}

func (s *Server) writeFault(w http.ResponseWriter, f *Fault) {
	if f.Status == http.StatusTooManyRequests {
		ra := f.RetryAfter
		if ra <= 0 {
			s.mu.Lock()
			ra = s.retryAfter
			s.mu.Unlock()
		}
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(f.Status)
		fmt.Fprintln(w, "Retry later")
		return
	}
	// What nginx in front of GitLab answers.
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(f.Status)
	fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", f.Status, http.StatusText(f.Status))
}
