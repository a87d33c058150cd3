// Package gitlabtest holds test doubles for GitLab: a real git smart-HTTP
// server (GitServer, bare repositories served by `git http-backend`) and a fake
// of the GitLab REST API (Server) driven through the real client-go. Both are
// served on one host, as GitLab does: `/api/v4/...` and `/<ns>/<proj>.git/...`.
//
// They need the git command-line tool on PATH.
package gitlabtest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Fixed identity and date of the commits the fake makes itself, so that their
// ids are the same on every run.
const (
	SeedAuthorName  = "Seed Author"
	SeedAuthorEmail = "seed@example.com"
	seedDate        = "2024-01-02T03:04:05Z"
)

// TB is the part of testing.TB the fakes use: a *testing.T or *testing.B,
// or, outside tests (agentbot demo), anything that logs and stops on Fatalf.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Call is one HTTP request the fakes answered.
type Call struct {
	Method string
	Path   string // URL path, without the query
	Query  string // raw query
	Status int
}

// Commit is one commit as read back from a repository.
type Commit struct {
	SHA            string
	Parents        []string
	Message        string // full message, trailers included, trailing newline trimmed
	AuthorName     string
	AuthorEmail    string
	CommitterName  string
	CommitterEmail string
	Files          []string // paths changed against the first parent (all paths for a root commit), sorted
}

// GitServer serves bare repositories over git's smart-HTTP protocol through
// `git http-backend`, with clone, fetch (shallow too) and push enabled.
//
// Requests authenticate with HTTP basic auth: any username, and the password
// equal to an accepted token (GitLab accepts `oauth2:<token>`). A missing or
// wrong token gets 401 with `WWW-Authenticate: Basic`. With no token
// accepted at all, access is anonymous.
type GitServer struct {
	t      TB
	gitBin string
	root   string // directory holding the repositories the server creates
	home   string // empty HOME for the git processes
	hooks  string // directory holding per-repository hook directories

	srv *httptest.Server // nil when mounted in another server

	// authorize, when set (by the API fake that mounts the server), decides
	// access instead of the token list.
	authorize func(repoPath, password string, write bool) bool

	mu     sync.Mutex
	base   string          // URL prefix, "http://127.0.0.1:port"
	tokens map[string]bool // accepted tokens
	repos  map[string]*gitRepo
	calls  []Call
}

type gitRepo struct {
	dir       string          // bare repository
	hooks     string          // our hooks directory for it (core.hooksPath)
	protected map[string]bool // branch names pushes may not change
}

// NewGitServer starts a git server on a loopback port that accepts token
// (none when token is empty). It is closed when the test ends.
func NewGitServer(t TB, token string) *GitServer {
	t.Helper()
	g := newGitServer(t, token)
	g.srv = httptest.NewServer(g)
	t.Cleanup(g.srv.Close)
	g.base = g.srv.URL
	return g
}

// newGitServer makes a git server that is not listening; its owner mounts it
// and sets its base URL.
func newGitServer(t TB, token string) *GitServer {
	t.Helper()
	bin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("gitlabtest: the git command is needed: %v", err)
	}
	tmp := t.TempDir()
	g := &GitServer{
		t:      t,
		gitBin: bin,
		root:   filepath.Join(tmp, "repos"),
		home:   filepath.Join(tmp, "home"),
		hooks:  filepath.Join(tmp, "hooks"),
		tokens: map[string]bool{},
		repos:  map[string]*gitRepo{},
	}
	for _, d := range []string{g.root, g.home, g.hooks} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("gitlabtest: %v", err)
		}
	}
	if token != "" {
		g.tokens[token] = true
	}
	return g
}

// AllowToken makes the server accept one more token.
func (g *GitServer) AllowToken(token string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokens[token] = true
}

// URL is the clone URL of a repository: URL("acme/research") is
// "http://127.0.0.1:port/acme/research.git".
func (g *GitServer) URL(repoPath string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.base + "/" + strings.Trim(repoPath, "/") + ".git"
}

// Calls returns every request the git server answered, in order.
func (g *GitServer) Calls() []Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.calls)
}

// CreateRepo makes a bare repository at repoPath ("acme/research") whose
// branch holds one commit with files (path → content), by a fixed author
// at a fixed date. It returns the commit's id. files may be empty.
func (g *GitServer) CreateRepo(repoPath string, files map[string]string, branch string) string {
	g.t.Helper()
	repoPath = cleanRepoPath(g.t, repoPath)
	dir := filepath.Join(g.root, filepath.FromSlash(repoPath)+".git")
	if _, err := os.Stat(dir); err == nil {
		g.t.Fatalf("gitlabtest: repository %s exists already", repoPath)
	}
	g.git("", "init", "--quiet", "--bare", "--initial-branch="+branch, dir)
	g.register(repoPath, dir)
	return g.Commit(repoPath, branch, files, "Initial commit")
}

// ServeRepoDir serves an existing bare repository at repoPath. The server does
// not change the repository's files or configuration.
func (g *GitServer) ServeRepoDir(repoPath, bareDir string) {
	g.t.Helper()
	repoPath = cleanRepoPath(g.t, repoPath)
	abs, err := filepath.Abs(bareDir)
	if err != nil {
		g.t.Fatalf("gitlabtest: %v", err)
	}
	if out := g.git(abs, "rev-parse", "--is-bare-repository"); out != "true" {
		g.t.Fatalf("gitlabtest: %s is not a bare repository", bareDir)
	}
	g.register(repoPath, abs)
}

func (g *GitServer) register(repoPath, dir string) {
	g.t.Helper()
	hooks := filepath.Join(g.hooks, filepath.FromSlash(repoPath))
	if err := os.MkdirAll(hooks, 0o755); err != nil {
		g.t.Fatalf("gitlabtest: %v", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.repos[repoPath]; ok {
		g.t.Fatalf("gitlabtest: repository %s is served already", repoPath)
	}
	g.repos[repoPath] = &gitRepo{dir: dir, hooks: hooks, protected: map[string]bool{}}
}

// HasRepo reports whether the server serves repoPath.
func (g *GitServer) HasRepo(repoPath string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.repos[strings.Trim(repoPath, "/")]
	return ok
}

// Dir is the bare repository directory behind repoPath.
func (g *GitServer) Dir(repoPath string) string {
	return g.repo(repoPath).dir
}

func (g *GitServer) repo(repoPath string) *gitRepo {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.repos[strings.Trim(repoPath, "/")]
	if !ok {
		g.t.Fatalf("gitlabtest: no repository %s", repoPath)
	}
	return r
}

// Commit adds a commit on branch that writes files (path → content; an empty
// content deletes the path) on top of the branch's head, or of HEAD when the
// branch does not exist yet (a new branch), as SeedAuthor at a fixed date.
// It returns the new commit's id. Tests use it to play a person pushing.
func (g *GitServer) Commit(repoPath, branch string, files map[string]string, message string) string {
	g.t.Helper()
	r := g.repo(repoPath)
	work := g.t.TempDir()
	env := []string{"GIT_INDEX_FILE=" + filepath.Join(work, "index")}
	parent := g.gitEnv(env, r.dir, "", "rev-parse", "--verify", "--quiet", "refs/heads/"+branch+"^{commit}")
	if parent == "" {
		parent = g.gitEnv(env, r.dir, "", "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
	}
	if parent != "" {
		g.gitEnv(env, r.dir, "", "read-tree", parent)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var paths []string // contents to hash, one temporary file each
	for i, name := range names {
		if files[name] == "" {
			continue
		}
		p := filepath.Join(work, fmt.Sprintf("blob-%d", i))
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			g.t.Fatalf("gitlabtest: %v", err)
		}
		paths = append(paths, p)
	}
	var shas []string
	if len(paths) > 0 {
		shas = strings.Fields(g.gitEnv(env, r.dir, strings.Join(paths, "\n")+"\n", "hash-object", "-w", "--stdin-paths"))
	}
	var info strings.Builder
	for _, name := range names {
		if files[name] == "" {
			fmt.Fprintf(&info, "0 %s\t%s\n", strings.Repeat("0", 40), name)
			continue
		}
		fmt.Fprintf(&info, "100644 %s\t%s\n", shas[0], name)
		shas = shas[1:]
	}
	if info.Len() > 0 {
		g.gitEnv(env, r.dir, info.String(), "update-index", "--index-info")
	}
	tree := g.gitEnv(env, r.dir, "", "write-tree")
	args := []string{"commit-tree", tree, "-m", message}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	sha := g.gitEnv(env, r.dir, "", args...)
	g.gitEnv(env, r.dir, "", "update-ref", "refs/heads/"+branch, sha)
	return sha
}

// DeleteBranch removes a branch from a repository.
func (g *GitServer) DeleteBranch(repoPath, branch string) {
	g.t.Helper()
	g.git(g.repo(repoPath).dir, "update-ref", "-d", "refs/heads/"+branch)
}

// ProtectBranch makes the server refuse pushes that create, move or delete
// a branch matching pattern (a name, or a wildcard pattern such as
// "release/*" where "*" matches any characters), as GitLab does for a
// protected branch the pusher may not push to.
func (g *GitServer) ProtectBranch(repoPath, pattern string) {
	g.t.Helper()
	r := g.repo(repoPath)
	g.mu.Lock()
	r.protected[pattern] = true
	var cases []string
	for p := range r.protected {
		parts := strings.Split("refs/heads/"+p, "*")
		for i, part := range parts {
			parts[i] = "'" + strings.ReplaceAll(part, "'", `'\''`) + "'"
		}
		cases = append(cases, strings.Join(parts, "*"))
	}
	g.mu.Unlock()
	sort.Strings(cases)
	hook := `#!/bin/sh
while read old new ref; do
	case "$ref" in
	` + strings.Join(cases, "|") + `)
		echo "GitLab: You are not allowed to push code to protected branches on this project." >&2
		exit 1;;
	esac
done
`
	if err := os.WriteFile(filepath.Join(r.hooks, "pre-receive"), []byte(hook), 0o755); err != nil {
		g.t.Fatalf("gitlabtest: %v", err)
	}
}

// Branches returns the repository's branches, name → commit id.
func (g *GitServer) Branches(repoPath string) map[string]string {
	g.t.Helper()
	out := g.git(g.repo(repoPath).dir, "for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/heads/")
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if name, sha, ok := strings.Cut(line, " "); ok {
			m[name] = sha
		}
	}
	return m
}

// DefaultBranch is the branch HEAD points at.
func (g *GitServer) DefaultBranch(repoPath string) string {
	g.t.Helper()
	return g.git(g.repo(repoPath).dir, "symbolic-ref", "--short", "HEAD")
}

// Files returns every file at ref (a branch, tag or commit), path → content.
func (g *GitServer) Files(repoPath, ref string) map[string]string {
	g.t.Helper()
	dir := g.repo(repoPath).dir
	ls := g.git(dir, "ls-tree", "-r", "-z", "--full-tree", ref)
	files := map[string]string{}
	var names, shas []string
	for _, entry := range strings.Split(ls, "\x00") {
		meta, name, ok := strings.Cut(entry, "\t")
		if !ok {
			continue
		}
		f := strings.Fields(meta) // mode type sha
		if len(f) != 3 || f[1] != "blob" {
			continue
		}
		names = append(names, name)
		shas = append(shas, f[2])
	}
	if len(shas) == 0 {
		return files
	}
	cmd := g.command(nil, dir, "cat-file", "--batch")
	cmd.Stdin = strings.NewReader(strings.Join(shas, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		g.t.Fatalf("gitlabtest: git cat-file: %v", err)
	}
	for i := range shas {
		// "<sha> blob <size>\n<content>\n"
		header, rest, _ := bytes.Cut(out, []byte("\n"))
		var sha, typ string
		var size int
		if _, err := fmt.Sscanf(string(header), "%s %s %d", &sha, &typ, &size); err != nil || size > len(rest) {
			g.t.Fatalf("gitlabtest: git cat-file: bad header %q", header)
		}
		files[names[i]] = string(rest[:size])
		out = rest[min(size+1, len(rest)):]
	}
	return files
}

// Log returns the commits reachable from ref, newest first.
func (g *GitServer) Log(repoPath, ref string) []Commit {
	g.t.Helper()
	dir := g.repo(repoPath).dir
	var commits []Commit
	for _, sha := range strings.Fields(g.git(dir, "rev-list", ref)) {
		raw := g.git(dir, "show", "-s", "--format=%P%x00%an%x00%ae%x00%cn%x00%ce%x00%B", sha)
		f := strings.SplitN(raw, "\x00", 6)
		if len(f) != 6 {
			g.t.Fatalf("gitlabtest: git show %s: %q", sha, raw)
		}
		c := Commit{
			SHA:            sha,
			Parents:        strings.Fields(f[0]),
			AuthorName:     f[1],
			AuthorEmail:    f[2],
			CommitterName:  f[3],
			CommitterEmail: f[4],
			Message:        strings.TrimRight(f[5], "\n"),
		}
		names := g.git(dir, "diff-tree", "--no-commit-id", "--name-only", "-r", "-z", "--root", sha)
		for _, n := range strings.Split(names, "\x00") {
			if n != "" {
				c.Files = append(c.Files, n)
			}
		}
		sort.Strings(c.Files)
		commits = append(commits, c)
	}
	return commits
}

// git runs a git command in dir (a bare repository, or "" for none) and
// returns its trimmed standard output; a failure fails the test.
func (g *GitServer) git(dir string, args ...string) string {
	g.t.Helper()
	return g.gitEnv(nil, dir, "", args...)
}

// gitEnv runs git with extra environment and standard input; a failure
// fails the test.
func (g *GitServer) gitEnv(env []string, dir, stdin string, args ...string) string {
	g.t.Helper()
	out, err := g.run(env, dir, stdin, args...)
	if err != nil {
		g.t.Fatalf("gitlabtest: %v", err)
	}
	return out
}

// run runs git and returns its trimmed standard output. It is safe to call
// from HTTP handlers: it reports failures as errors.
func (g *GitServer) run(env []string, dir, stdin string, args ...string) (string, error) {
	cmd := g.command(env, dir, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		// rev-parse --verify --quiet exits 1 without output for a missing ref.
		if len(args) > 0 && args[0] == "rev-parse" && slices.Contains(args, "--quiet") && stderr.Len() == 0 {
			return "", nil
		}
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimRight(string(out), "\n"), nil
}

// command builds a git command isolated from the user's and the system's git
// configuration.
func (g *GitServer) command(env []string, dir string, args ...string) *exec.Cmd {
	if dir != "" {
		args = append([]string{"--git-dir=" + dir}, args...)
	}
	cmd := exec.Command(g.gitBin, args...)
	cmd.Env = append(g.baseEnv(),
		"GIT_AUTHOR_NAME="+SeedAuthorName,
		"GIT_AUTHOR_EMAIL="+SeedAuthorEmail,
		"GIT_AUTHOR_DATE="+seedDate,
		"GIT_COMMITTER_NAME="+SeedAuthorName,
		"GIT_COMMITTER_EMAIL="+SeedAuthorEmail,
		"GIT_COMMITTER_DATE="+seedDate,
	)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// baseEnv is the process environment without git's own variables, plus a
// configuration that ignores the machine's git settings.
func (g *GitServer) baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+g.home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
	)
}

// ServeHTTP answers git smart-HTTP requests for `/<repo path>.git/...`.
func (g *GitServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	g.serve(rec, req)
	g.mu.Lock()
	g.calls = append(g.calls, Call{Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery, Status: rec.status})
	g.mu.Unlock()
}

func (g *GitServer) serve(w http.ResponseWriter, req *http.Request) {
	repoPath, rest, ok := splitGitPath(req.URL.Path)
	write := strings.HasSuffix(rest, "/git-receive-pack") || req.URL.Query().Get("service") == "git-receive-pack"
	_, pass, hasAuth := req.BasicAuth()
	g.mu.Lock()
	r := g.repos[repoPath]
	authorize := g.authorize
	authorized := len(g.tokens) == 0 || (hasAuth && g.tokens[pass])
	g.mu.Unlock()
	if authorize != nil {
		authorized = hasAuth && authorize(repoPath, pass, write)
	}
	if !authorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
		http.Error(w, "HTTP Basic: Access denied", http.StatusUnauthorized)
		return
	}
	if !ok || r == nil {
		http.Error(w, "The project you were looking for could not be found.", http.StatusNotFound)
		return
	}
	user := "anonymous"
	if u, _, ok := req.BasicAuth(); ok && u != "" {
		user = u
	}
	// git http-backend finds the repository under GIT_PROJECT_ROOT by
	// PATH_INFO: serve each repository from its parent directory, so that
	// repositories outside our root (ServeRepoDir) work the same way.
	req2 := req.Clone(req.Context())
	req2.URL.Path = "/" + filepath.Base(r.dir) + rest
	req2.URL.RawPath = ""
	h := &cgi.Handler{
		Path: g.gitBin,
		Args: []string{"http-backend"},
		Dir:  filepath.Dir(r.dir),
		Env: append(g.baseEnv(),
			"GIT_PROJECT_ROOT="+filepath.Dir(r.dir),
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER="+user,
			"GIT_CONFIG_COUNT=3",
			"GIT_CONFIG_KEY_0=http.receivepack", "GIT_CONFIG_VALUE_0=true",
			"GIT_CONFIG_KEY_1=core.hooksPath", "GIT_CONFIG_VALUE_1="+r.hooks,
			"GIT_CONFIG_KEY_2=uploadpack.allowAnySHA1InWant", "GIT_CONFIG_VALUE_2=true",
		),
		Stderr: testWriter{g.t},
	}
	h.ServeHTTP(w, req2)
}

// splitGitPath splits "/acme/research.git/info/refs" into "acme/research"
// and "/info/refs".
func splitGitPath(p string) (repo, rest string, ok bool) {
	i := strings.Index(p, ".git/")
	if i < 0 {
		if !strings.HasSuffix(p, ".git") {
			return "", "", false
		}
		i = len(p) - len(".git")
	}
	repo = strings.Trim(p[:i], "/")
	rest = p[i+len(".git"):]
	return repo, rest, repo != ""
}

// isGitPath reports whether an URL path is a git smart-HTTP path.
func isGitPath(p string) bool {
	_, _, ok := splitGitPath(p)
	return ok && !strings.HasPrefix(p, "/api/")
}

func cleanRepoPath(t TB, p string) string {
	t.Helper()
	c := path.Clean(strings.Trim(p, "/"))
	if c == "." || strings.HasPrefix(c, "..") || strings.HasSuffix(c, ".git") || !strings.Contains(c, "/") {
		t.Fatalf("gitlabtest: bad repository path %q (want namespace/project)", p)
	}
	return c
}

type statusRecorder struct {
	http.ResponseWriter
	status  int
	written bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.written {
		r.status = code
		r.written = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.written = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// testWriter sends a child process's standard error to the test log.
type testWriter struct{ t TB }

func (w testWriter) Write(p []byte) (int, error) {
	if s := strings.TrimSpace(string(p)); s != "" {
		w.t.Logf("git http-backend: %s", s)
	}
	return len(p), nil
}
