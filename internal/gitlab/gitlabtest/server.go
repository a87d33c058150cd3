package gitlabtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Access levels, as GitLab numbers them.
const (
	Guest      = 10
	Reporter   = 20
	Developer  = 30
	Maintainer = 40
	Owner      = 50
)

// Server is a fake GitLab: the REST API under /api/v4 for the calls agentbot
// makes, and the projects' git repositories (a mounted GitServer) on the same
// host. Every request is recorded; a request to a route the fake does not
// know fails the test. Its state is inspected and arranged through its
// methods. It is safe for concurrent use.
//
// Access is checked as GitLab does, in a simplified way: every API request
// needs a user's token (PRIVATE-TOKEN or Authorization: Bearer); a private
// project is visible only to its members (404 otherwise); notes and emoji need
// Guest, internal notes and confidential issues Reporter, merge requests,
// pipelines and git pushes Developer (403 otherwise).
type Server struct {
	t   TB
	srv *httptest.Server
	git *GitServer
	mux *http.ServeMux
	now func() time.Time

	mu         sync.Mutex
	seq        int64 // one id sequence for everything, so that ids never collide across kinds
	users      map[int64]*User
	tokens     map[string]int64
	projects   map[int64]*project
	notes      map[int64]*Note
	awards     map[int64]*Award
	pipelines  map[int64]*Pipeline
	jobs       map[int64]*Job
	calls      []Call
	faults     []*Fault
	rate       *faultRate
	retryAfter int // seconds, for 429 faults
	hook       func(Event)
}

// Option configures a Server.
type Option func(*Server)

// WithClock makes the server time-stamp with now instead of time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// Event tells a hook about a write the fake applied.
type Event struct {
	Kind      string // "note.create", "note.update", "award.create", "award.delete", "mr.create", "mr.update", "pipeline.create"
	ProjectID int64
	IID       int64 // issue or merge request, when there is one
	ID        int64 // the note, award, merge request or pipeline id
}

// New starts a fake GitLab on a loopback port; it is closed when the test
// ends.
func New(t TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		t:          t,
		git:        newGitServer(t, ""),
		mux:        http.NewServeMux(),
		now:        time.Now,
		users:      map[int64]*User{},
		tokens:     map[string]int64{},
		projects:   map[int64]*project{},
		notes:      map[int64]*Note{},
		awards:     map[int64]*Award{},
		pipelines:  map[int64]*Pipeline{},
		jobs:       map[int64]*Job{},
		retryAfter: 1,
	}
	for _, o := range opts {
		o(s)
	}
	s.routes()
	s.git.authorize = s.authorizeGit
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	s.git.base = s.srv.URL
	return s
}

// URL is the server's base URL, "http://127.0.0.1:port" (what GITLAB_URL
// would be).
func (s *Server) URL() string { return s.srv.URL }

// Git is the git server that holds the projects' repositories; use it to
// read branches, files and commits, or to push as a person would.
func (s *Server) Git() *GitServer { return s.git }

// SetHook makes the server call fn after each write it applies (outside its
// lock, on the request's goroutine). nil removes the hook.
func (s *Server) SetHook(fn func(Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = fn
}

// Calls returns every request the server answered (API and git), in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Count returns how many recorded requests match a method ("" for any) and a
// path pattern (see FailNext).
func (s *Server) Count(method, pathPattern string) int {
	n := 0
	for _, c := range s.Calls() {
		if matchCall(method, pathPattern, c.Method, c.Path) {
			n++
		}
	}
	return n
}

// ServeHTTP routes git smart-HTTP requests to the git server and the rest to
// the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isGitPath(r.URL.Path) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		s.git.ServeHTTP(rec, r)
		s.record(r, rec.status)
		return
	}
	_, pattern := s.mux.Handler(r)
	if pattern == "" || !strings.HasPrefix(r.URL.Path, "/api/v4/") {
		s.t.Errorf("gitlabtest: unexpected request %s %s", r.Method, r.URL.RequestURI())
		writeJSON(w, http.StatusNotFound, msg("404 Not Found"))
		s.record(r, http.StatusNotFound)
		return
	}
	if _, ok := s.userOf(r); !ok {
		writeJSON(w, http.StatusUnauthorized, msg("401 Unauthorized"))
		s.record(r, http.StatusUnauthorized)
		return
	}
	f := s.takeFault(r)
	if f != nil && !f.AfterApply {
		s.writeFault(w, f)
		s.record(r, f.Status)
		return
	}
	// Handlers answer into a buffer, so that a fault can replace an answer
	// whose write was applied.
	rec := httptest.NewRecorder()
	var events []Event
	s.mux.ServeHTTP(rec, r.WithContext(withEvents(r.Context(), &events)))
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		for _, e := range events {
			hook(e)
		}
	}
	if f != nil {
		s.writeFault(w, f)
		s.record(r, f.Status)
		return
	}
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
	s.record(r, rec.Code)
}

func (s *Server) record(r *http.Request, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Status: status})
}

// userOf finds the user whose token the request carries.
func (s *Server) userOf(r *http.Request) (*User, bool) {
	token := r.Header.Get("PRIVATE-TOKEN")
	if token == "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			token = v
		}
	}
	if token == "" {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[s.tokens[token]]
	return u, ok
}

func (s *Server) nextID() int64 {
	s.seq++
	return s.seq
}

// routes lists every endpoint the fake answers.
func (s *Server) routes() {
	h := func(pattern string, fn func(*request) (int, any)) {
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			req := &request{s: s, r: r, events: eventsFrom(r.Context())}
			u, _ := s.users[s.tokens[tokenOf(r)]]
			req.user = u
			status, body := fn(req)
			s.mu.Unlock()
			if text, ok := body.(plainText); ok {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(status)
				io.WriteString(w, string(text))
				return
			}
			for k, v := range req.header {
				w.Header()[k] = v
			}
			writeJSON(w, status, body)
		})
	}
	const p = "/api/v4/projects/{id}"
	h("GET /api/v4/user", s.getCurrentUser)
	h("GET /api/v4/users/{uid}", s.getUser)
	h("GET /api/v4/users", s.listUsers)
	h("GET "+p, s.getProject)
	h("GET "+p+"/members/all/{uid}", s.getMember(true))
	h("GET "+p+"/members/{uid}", s.getMember(false))
	h("GET "+p+"/issues/{iid}", s.getIssue)
	for _, kind := range []string{"issues", "merge_requests"} {
		n := p + "/" + kind + "/{iid}"
		h("GET "+n+"/notes", s.listNotes)
		h("POST "+n+"/notes", s.createNote)
		h("GET "+n+"/notes/{nid}", s.getNote)
		h("PUT "+n+"/notes/{nid}", s.updateNote)
		h("POST "+n+"/discussions", s.createDiscussion)
		h("GET "+n+"/discussions/{did}", s.getDiscussion)
		h("POST "+n+"/discussions/{did}/notes", s.addDiscussionNote)
		h("PUT "+n+"/discussions/{did}/notes/{nid}", s.updateNote)
		h("GET "+n+"/notes/{nid}/award_emoji", s.listAwards)
		h("POST "+n+"/notes/{nid}/award_emoji", s.createAward)
		h("DELETE "+n+"/notes/{nid}/award_emoji/{aid}", s.deleteAward)
	}
	h("GET "+p+"/repository/branches", s.listBranches)
	h("GET "+p+"/repository/branches/{branch...}", s.getBranch)
	h("GET "+p+"/protected_branches", s.listProtectedBranches)
	h("GET "+p+"/merge_requests", s.listMRs)
	h("POST "+p+"/merge_requests", s.createMR)
	h("GET "+p+"/merge_requests/{iid}", s.getMR)
	h("PUT "+p+"/merge_requests/{iid}", s.updateMR)
	h("GET "+p+"/merge_requests/{iid}/diffs", s.mrDiffs)
	h("POST "+p+"/pipeline", s.createPipeline)
	h("GET "+p+"/pipelines", s.listPipelines)
	h("GET "+p+"/pipelines/{pid}", s.getPipeline)
	h("GET "+p+"/pipelines/{pid}/variables", s.pipelineVariables)
	h("GET "+p+"/pipelines/{pid}/jobs", s.listJobs)
	h("GET "+p+"/jobs/{jid}", s.getJob)
	h("GET "+p+"/jobs/{jid}/trace", s.jobTrace)
	h("GET "+p+"/repository/files/{path}/raw", s.rawFile)
}

func tokenOf(r *http.Request) string {
	if t := r.Header.Get("PRIVATE-TOKEN"); t != "" {
		return t
	}
	t, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return t
}

// request is one API request being handled, with the server's lock held.
type request struct {
	s      *Server
	r      *http.Request
	user   *User
	header http.Header
	events *[]Event
	body   map[string]any // decoded lazily
}

// plainText is a handler result sent as text/plain.
type plainText string

func msg(m string) map[string]any { return map[string]any{"message": m} }

func notFound(what string) (int, any) {
	return http.StatusNotFound, msg("404 " + what + " Not Found")
}

func forbidden() (int, any) { return http.StatusForbidden, msg("403 Forbidden") }

func badRequest(m string) (int, any) { return http.StatusBadRequest, map[string]any{"error": m} }

func (q *request) emit(e Event) {
	if q.events != nil {
		*q.events = append(*q.events, e)
	}
}

func (q *request) setHeader(k, v string) {
	if q.header == nil {
		q.header = http.Header{}
	}
	q.header.Set(k, v)
}

// pathInt is an integer path parameter; ok is false when it is not one.
func (q *request) pathInt(name string) (int64, bool) {
	n, err := strconv.ParseInt(q.r.PathValue(name), 10, 64)
	return n, err == nil
}

// decode reads the request body (JSON, or a form) once.
func (q *request) decode() map[string]any {
	if q.body != nil {
		return q.body
	}
	q.body = map[string]any{}
	b, _ := io.ReadAll(io.LimitReader(q.r.Body, 10<<20))
	if strings.HasPrefix(q.r.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &q.body); err != nil && len(bytes.TrimSpace(b)) > 0 {
			q.s.t.Errorf("gitlabtest: %s %s: bad JSON body: %v", q.r.Method, q.r.URL.Path, err)
		}
	} else {
		q.r.Body = io.NopCloser(bytes.NewReader(b))
		q.r.ParseForm()
		for k, v := range q.r.Form {
			q.body[k] = v[0]
		}
	}
	return q.body
}

func (q *request) has(key string) bool {
	_, ok := q.decode()[key]
	return ok
}

func (q *request) str(key string) string {
	switch v := q.decode()[key].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

func (q *request) boolean(key string) bool {
	switch v := q.decode()[key].(type) {
	case bool:
		return v
	case string:
		return v == "true" || v == "1"
	}
	return false
}

// ints reads a list of integers sent as a JSON array or a comma list.
func (q *request) ints(key string) []int64 {
	var out []int64
	switch v := q.decode()[key].(type) {
	case []any:
		for _, x := range v {
			if f, ok := x.(float64); ok {
				out = append(out, int64(f))
			}
		}
	case string:
		for _, x := range strings.Split(v, ",") {
			if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				out = append(out, n)
			}
		}
	case float64:
		out = append(out, int64(v))
	}
	return out
}

// labels reads labels sent as a comma list (client-go's LabelOptions) or an
// array.
func (q *request) labels(key string) []string {
	var out []string
	switch v := q.decode()[key].(type) {
	case string:
		for _, l := range strings.Split(v, ",") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	case []any:
		for _, x := range v {
			if l, ok := x.(string); ok {
				out = append(out, l)
			}
		}
	}
	return out
}

// checkQuery fails the test when the request uses a query parameter the fake
// would silently ignore, so that a client never relies on a filter the fake
// does not apply.
func (q *request) checkQuery(allowed ...string) {
	allowed = append(allowed, "page", "per_page")
	for k := range q.r.URL.Query() {
		if !slices.Contains(allowed, k) {
			q.s.t.Errorf("gitlabtest: %s %s: query parameter %q is not supported by the fake", q.r.Method, q.r.URL.Path, k)
		}
	}
}

// paginate answers one page of items with GitLab's pagination headers.
func paginate[T any](q *request, items []T) []T {
	page, _ := strconv.Atoi(q.r.URL.Query().Get("page"))
	if page < 1 {
		page = 1
	}
	per, _ := strconv.Atoi(q.r.URL.Query().Get("per_page"))
	if per < 1 {
		per = 20
	}
	per = min(per, 100)
	total := len(items)
	pages := max(1, (total+per-1)/per)
	q.setHeader("X-Page", strconv.Itoa(page))
	q.setHeader("X-Per-Page", strconv.Itoa(per))
	q.setHeader("X-Total", strconv.Itoa(total))
	q.setHeader("X-Total-Pages", strconv.Itoa(pages))
	q.setHeader("X-Next-Page", "")
	if page < pages {
		q.setHeader("X-Next-Page", strconv.Itoa(page+1))
	}
	if page > 1 {
		q.setHeader("X-Prev-Page", strconv.Itoa(page-1))
	}
	start := min((page-1)*per, total)
	out := items[start:min(start+per, total)]
	if out == nil {
		out = []T{}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func (s *Server) timePtr() *time.Time {
	t := s.now().UTC()
	return &t
}

func (s *Server) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("gitlabtest: "+format, args...)
}

// webURL is the web address of a project's page.
func (s *Server) webURL(p *project, suffix string) string {
	return fmt.Sprintf("%s/%s%s", s.srv.URL, p.Path, suffix)
}
