package workspace_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/tools"
	"gitlab.com/agentbot/agentbot/internal/workspace"
)

const (
	token    = "glpat-secret-token-0123456789"
	repoPath = "acme/research"
	botEmail = "agentbot@example.com"
)

var baseFiles = map[string]string{
	"README.md":           "# research\n",
	"src/main.go":         "package main\n",
	"src/lib/util.go":     "package lib\n",
	"output/old.md":       "old report\n",
	".gitlab-ci.yml":      "stages: [test]\n",
	"docs/guide/intro.md": "intro\n",
}

// fixture is a git server with one project and what Open needs for it.
type fixture struct {
	git  *gitlabtest.GitServer
	base string // the main branch's head
	logs *bytes.Buffer
	mu   *sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	g := gitlabtest.NewGitServer(t, token)
	base := g.CreateRepo(repoPath, baseFiles, "main")
	return &fixture{git: g, base: base, logs: &bytes.Buffer{}, mu: &sync.Mutex{}}
}

// bothServers runs a test against a plain git server (the workspace fetches
// the whole tree) and one that allows filters as GitLab does (the workspace
// fetches commit and trees, and blobs on demand).
func bothServers(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, partial := range []bool{false, true} {
		name := "full-fetch"
		if partial {
			name = "blobs-on-demand"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if partial {
				gitConfig(t, f.git.Dir(repoPath), "uploadpack.allowFilter", "true")
			}
			test(t, f)
			f.mu.Lock()
			defer f.mu.Unlock()
			if got := strings.Contains(f.logs.String(), "blobs_on_demand=true"); got != partial {
				t.Errorf("blobs on demand = %v, want %v; logs:\n%s", got, partial, f.logs)
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// allowOutput is the file tools' default policy (output/** only).
var allowOutput = tools.Policy{}.Check

func (f *fixture) options(t *testing.T, runID string) workspace.Options {
	return workspace.Options{
		RemoteURL:     f.git.URL(repoPath),
		Token:         token,
		BaseBranch:    "main",
		DefaultBranch: "main",
		Protected:     []string{"main", "release/*"},
		Branch:        workspace.BranchName("issue", 7, "analyze AAPL"),
		Author:        workspace.Signature{Name: "agentbot", Email: botEmail},
		RunID:         runID,
		TempDir:       t.TempDir(),
		Policy:        allowOutput,
		Logger:        slog.New(slog.NewTextHandler(lockedWriter{f.mu, f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func open(t *testing.T, o workspace.Options) *workspace.Workspace {
	t.Helper()
	ws, err := workspace.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

func write(t *testing.T, fsys *workspace.Overlay, name, content string) {
	t.Helper()
	if err := fsys.WriteFile(name, []byte(content)); err != nil {
		t.Fatalf("WriteFile(%s): %v", name, err)
	}
}

func commitAndPush(t *testing.T, ws *workspace.Workspace, msg string) workspace.CommitResult {
	t.Helper()
	ctx := context.Background()
	res, err := ws.Commit(ctx, workspace.CommitInput{Message: msg,
		Trailers: []workspace.Trailer{{Key: "Co-authored-by", Value: "Ada <ada@example.com>"}}})
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := ws.Push(ctx); err != nil {
		t.Fatalf("Push: %v", err)
	}
	return res
}

// agentCommits are the commits on branch that are not on main.
func (f *fixture) agentCommits(t *testing.T, branch string) []gitlabtest.Commit {
	t.Helper()
	var out []gitlabtest.Commit
	for _, c := range f.git.Log(repoPath, branch) {
		if c.SHA == f.base {
			break
		}
		out = append(out, c)
	}
	return out
}

func TestOverlayReadsBaseTreeAndWrites(t *testing.T) {
	t.Parallel()
	bothServers(t, testOverlayReadsBaseTreeAndWrites)
}

func testOverlayReadsBaseTreeAndWrites(t *testing.T, f *fixture) {
	ws := open(t, f.options(t, "run-1"))
	if ws.BaseCommit() != f.base || ws.BranchExisted() || ws.Branch() != "agent/issue-7-analyze-aapl" {
		t.Fatalf("base %s existed %v branch %s; want %s false agent/issue-7-analyze-aapl",
			ws.BaseCommit(), ws.BranchExisted(), ws.Branch(), f.base)
	}
	fsys := ws.FS()

	got, err := fsys.ReadFile("src/lib/util.go")
	if err != nil || string(got) != "package lib\n" {
		t.Fatalf("ReadFile(src/lib/util.go) = %q, %v", got, err)
	}
	if _, err := fsys.ReadFile("src/missing.go"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing) error = %v, want fs.ErrNotExist", err)
	}
	if _, err := fsys.ReadFile("README.md/x"); err == nil {
		t.Error("ReadFile(README.md/x) succeeded")
	}
	if _, err := fsys.ReadFile("src"); err == nil {
		t.Error("ReadFile(src) of a directory succeeded")
	}
	for _, bad := range []string{"../etc/passwd", "/etc/passwd", "src/../README.md", ""} {
		if _, err := fsys.ReadFile(bad); err == nil {
			t.Errorf("ReadFile(%q) succeeded", bad)
		}
	}
	fi, err := fsys.Stat("src")
	if err != nil || !fi.IsDir() {
		t.Fatalf("Stat(src) = %v, %v; want a directory", fi, err)
	}
	fi, err = fsys.Stat("README.md")
	if err != nil || fi.IsDir() || fi.Size() != int64(len(baseFiles["README.md"])) || !fi.Mode().IsRegular() {
		t.Fatalf("Stat(README.md) = %+v, %v", fi, err)
	}

	write(t, fsys, "output/aapl/report.md", "# AAPL\n")
	write(t, fsys, "output/old.md", "new report\n")
	write(t, fsys, "src/new.go", "package main // new\n")

	got, err = fsys.ReadFile("output/old.md")
	if err != nil || string(got) != "new report\n" {
		t.Fatalf("ReadFile(output/old.md) after write = %q, %v", got, err)
	}
	if fi, err := fsys.Stat("output/aapl/report.md"); err != nil || fi.Size() != 7 {
		t.Fatalf("Stat(output/aapl/report.md) = %v, %v", fi, err)
	}
	if got := names(t, fsys, "."); !slices.Equal(got, []string{".gitlab-ci.yml", "README.md", "docs", "output", "src"}) {
		t.Errorf("ReadDir(.) = %v", got)
	}
	if got := names(t, fsys, "output"); !slices.Equal(got, []string{"aapl", "old.md"}) {
		t.Errorf("ReadDir(output) = %v", got)
	}
	if got := names(t, fsys, "src"); !slices.Equal(got, []string{"lib", "main.go", "new.go"}) {
		t.Errorf("ReadDir(src) = %v", got)
	}
	if got := names(t, fsys, "output/aapl"); !slices.Equal(got, []string{"report.md"}) {
		t.Errorf("ReadDir(output/aapl) = %v", got)
	}
	entries, err := fsys.ReadDir("src")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := entries[1].Info(); err != nil || info.Size() != int64(len("package main\n")) {
		t.Errorf("ReadDir(src)[1].Info() = %v, %v", info, err)
	}
	if _, err := fsys.ReadDir("README.md"); err == nil {
		t.Error("ReadDir(README.md) succeeded")
	}
	if _, err := fsys.ReadDir("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadDir(nope) error = %v, want fs.ErrNotExist", err)
	}
	if got := fsys.Changed(); !slices.Equal(got, []string{"output/aapl/report.md", "output/old.md", "src/new.go"}) {
		t.Errorf("Changed() = %v", got)
	}
}

func names(t *testing.T, fsys *workspace.Overlay, dir string) []string {
	t.Helper()
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir(%s): %v", dir, err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestOverlayRefusesConflictsAndGitDir(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fsys := open(t, f.options(t, "run-1")).FS()
	for _, name := range []string{
		".git/config", "output/.git/hooks/x", "output/.GIT/x", // never a .git component
		"README.md/x", // a base file as a directory
		"src",         // a base directory as a file
		"../x", "/x", "output//x", ".",
	} {
		if err := fsys.WriteFile(name, []byte("x")); err == nil {
			t.Errorf("WriteFile(%q) succeeded", name)
		}
	}
	if got := fsys.Changed(); len(got) != 0 {
		t.Errorf("Changed() = %v after refused writes", got)
	}
}

func TestSymlinkInBaseTreeIsNotFollowed(t *testing.T) {
	t.Parallel()
	bothServers(t, testSymlinkInBaseTreeIsNotFollowed)
}

func testSymlinkInBaseTreeIsNotFollowed(t *testing.T, f *fixture) {
	head := addSymlink(t, f.git, "main", "output/link", "../.gitlab-ci.yml")
	f.base = head
	ws := open(t, f.options(t, "run-1"))
	fsys := ws.FS()
	fi, err := fsys.Stat("output/link")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("Stat(output/link) = %v, %v; want a symlink", fi, err)
	}
	if _, err := fsys.ReadFile("output/link"); !errors.Is(err, workspace.ErrSymlink) {
		t.Errorf("ReadFile(symlink) error = %v, want ErrSymlink", err)
	}
	if _, err := fsys.ReadFile("output/link/x"); err == nil {
		t.Error("ReadFile through a symlink succeeded")
	}
	if err := fsys.WriteFile("output/link", []byte("x")); !errors.Is(err, workspace.ErrConflict) {
		t.Errorf("WriteFile over a symlink error = %v, want ErrConflict", err)
	}
	if err := fsys.WriteFile("output/link/x", []byte("x")); !errors.Is(err, workspace.ErrConflict) {
		t.Errorf("WriteFile through a symlink error = %v, want ErrConflict", err)
	}
	entries, err := fsys.ReadDir("output")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "link" && e.Type()&fs.ModeSymlink == 0 {
			t.Errorf("ReadDir lists output/link as %v, want a symlink", e.Type())
		}
	}
}

// addSymlink commits a symbolic link on branch with the git CLI.
func addSymlink(t *testing.T, g *gitlabtest.GitServer, branch, name, target string) string {
	t.Helper()
	dir := g.Dir(repoPath)
	index := filepath.Join(t.TempDir(), "index")
	run := func(stdin string, args ...string) string {
		cmd := exec.Command("git", append([]string{"--git-dir=" + dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_INDEX_FILE="+index, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
			"GIT_AUTHOR_NAME=Person", "GIT_AUTHOR_EMAIL=person@example.com",
			"GIT_COMMITTER_NAME=Person", "GIT_COMMITTER_EMAIL=person@example.com")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("", "read-tree", "refs/heads/"+branch)
	blob := run(target, "hash-object", "-w", "--stdin")
	run("", "update-index", "--add", "--cacheinfo", "120000,"+blob+","+name)
	tree := run("", "write-tree")
	commit := run("", "commit-tree", tree, "-p", "refs/heads/"+branch, "-m", "add link")
	run("", "update-ref", "refs/heads/"+branch, commit)
	return commit
}

func TestCommitHoldsOnlyOverlayFilesAndPushCreatesBranch(t *testing.T) {
	t.Parallel()
	bothServers(t, testCommitHoldsOnlyOverlayFilesAndPushCreatesBranch)
}

func testCommitHoldsOnlyOverlayFilesAndPushCreatesBranch(t *testing.T, f *fixture) {
	o := f.options(t, "run-1")
	o.Now = func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	ws := open(t, o)
	write(t, ws.FS(), "output/aapl/report.md", "# AAPL\n")
	write(t, ws.FS(), "output/aapl/data.csv", "a,b\n1,2\n")
	write(t, ws.FS(), "output/old.md", "old report\n") // unchanged: not in the commit
	res := commitAndPush(t, ws, "agent: analyze AAPL\n\nRequested on #7.")

	if want := []string{"output/aapl/data.csv", "output/aapl/report.md"}; !slices.Equal(res.Files, want) {
		t.Errorf("CommitResult.Files = %v, want %v", res.Files, want)
	}
	if got := f.git.Branches(repoPath)["agent/issue-7-analyze-aapl"]; got != res.Hash {
		t.Fatalf("branch head = %q, want %s", got, res.Hash)
	}
	if got := f.git.Branches(repoPath)["main"]; got != f.base {
		t.Errorf("main moved to %s", got)
	}
	commits := f.agentCommits(t, "agent/issue-7-analyze-aapl")
	if len(commits) != 1 {
		t.Fatalf("%d agent commits, want 1", len(commits))
	}
	c := commits[0]
	if !slices.Equal(c.Parents, []string{f.base}) {
		t.Errorf("parents = %v, want [%s]", c.Parents, f.base)
	}
	if c.AuthorName != "agentbot" || c.AuthorEmail != botEmail || c.CommitterEmail != botEmail {
		t.Errorf("author %s <%s>, committer <%s>", c.AuthorName, c.AuthorEmail, c.CommitterEmail)
	}
	wantMsg := "agent: analyze AAPL\n\nRequested on #7.\n\nCo-authored-by: Ada <ada@example.com>\nAgentbot-Run: run-1"
	if c.Message != wantMsg {
		t.Errorf("message = %q, want %q", c.Message, wantMsg)
	}
	if want := []string{"output/aapl/data.csv", "output/aapl/report.md"}; !slices.Equal(c.Files, want) {
		t.Errorf("commit files = %v, want %v", c.Files, want)
	}
	files := f.git.Files(repoPath, "agent/issue-7-analyze-aapl")
	for name, content := range baseFiles {
		if files[name] != content {
			t.Errorf("file %s = %q on the branch, want %q", name, files[name], content)
		}
	}
	if files["output/aapl/report.md"] != "# AAPL\n" || len(files) != len(baseFiles)+2 {
		t.Errorf("branch files = %v", files)
	}
	// git itself finds the repository sound.
	fsck := exec.Command("git", "--git-dir="+f.git.Dir(repoPath), "fsck", "--strict", "--no-progress")
	fsck.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	if out, err := fsck.CombinedOutput(); err != nil {
		t.Errorf("git fsck: %v: %s", err, out)
	}
}

func TestSecondRunAddsCommitOnTop(t *testing.T) {
	t.Parallel()
	bothServers(t, testSecondRunAddsCommitOnTop)
}

func testSecondRunAddsCommitOnTop(t *testing.T, f *fixture) {
	ws1 := open(t, f.options(t, "run-1"))
	write(t, ws1.FS(), "output/report.md", "first\n")
	first := commitAndPush(t, ws1, "agent: analyze AAPL")

	ws2 := open(t, f.options(t, "run-2"))
	if !ws2.BranchExisted() || ws2.BaseCommit() != first.Hash || ws2.AlreadyPushed() {
		t.Fatalf("second run: existed %v base %s already %v; want true %s false",
			ws2.BranchExisted(), ws2.BaseCommit(), ws2.AlreadyPushed(), first.Hash)
	}
	if h := ws2.BranchHead(); h.RunID != "run-1" || h.AuthorEmail != botEmail || h.Hash != first.Hash {
		t.Errorf("BranchHead = %+v", h)
	}
	got, err := ws2.FS().ReadFile("output/report.md")
	if err != nil || string(got) != "first\n" {
		t.Fatalf("second run reads %q, %v; want the first run's file", got, err)
	}
	write(t, ws2.FS(), "output/report.md", "second\n")
	write(t, ws2.FS(), "output/extra.md", "extra\n")
	second := commitAndPush(t, ws2, "agent: analyze AAPL again")

	commits := f.agentCommits(t, ws2.Branch())
	if len(commits) != 2 || commits[0].SHA != second.Hash || commits[1].SHA != first.Hash {
		t.Fatalf("agent commits = %+v", commits)
	}
	if !slices.Equal(commits[0].Parents, []string{first.Hash}) {
		t.Errorf("second commit's parents = %v", commits[0].Parents)
	}
	if files := f.git.Files(repoPath, ws2.Branch()); files["output/report.md"] != "second\n" || files["output/extra.md"] != "extra\n" {
		t.Errorf("branch files = %v", files)
	}
}

func TestForeignBranchGetsAnotherName(t *testing.T) {
	t.Parallel()
	for _, filter := range []bool{false, true} {
		name := "full-fetch-probe"
		if filter {
			name = "filtered-probe"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if filter {
				gitConfig(t, f.git.Dir(repoPath), "uploadpack.allowFilter", "true")
			}
			// A person made the branch agentbot would pick.
			f.git.Commit(repoPath, "agent/issue-7-analyze-aapl", map[string]string{"output/mine.md": "mine\n"}, "my work")
			ws := open(t, f.options(t, "run-1"))
			if ws.Branch() != "agent/issue-7-analyze-aapl-2" || ws.BranchExisted() || ws.BaseCommit() != f.base {
				t.Fatalf("branch %s existed %v base %s; want agent/issue-7-analyze-aapl-2 false %s",
					ws.Branch(), ws.BranchExisted(), ws.BaseCommit(), f.base)
			}
			write(t, ws.FS(), "output/report.md", "r\n")
			commitAndPush(t, ws, "agent: analyze AAPL")
			if got := f.agentCommits(t, "agent/issue-7-analyze-aapl"); len(got) != 1 || got[0].AuthorEmail == botEmail {
				t.Errorf("the person's branch changed: %+v", got)
			}

			// The next run finds agentbot's own -2 branch again.
			ws2 := open(t, f.options(t, "run-2"))
			if ws2.Branch() != "agent/issue-7-analyze-aapl-2" || !ws2.BranchExisted() {
				t.Errorf("second run: branch %s existed %v", ws2.Branch(), ws2.BranchExisted())
			}
		})
	}
}

func gitConfig(t *testing.T, dir, key, value string) {
	t.Helper()
	cmd := exec.Command("git", "--git-dir="+dir, "config", key, value)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git config: %v: %s", err, out)
	}
}

func TestRefusesDefaultProtectedAndForeignBranches(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		branch    string
		protected []string
	}{
		{branch: "main"},
		{branch: "feature/x"},
		{branch: "agent/"},
		{branch: "agent/release-1", protected: []string{"agent/release-*"}},
		{branch: "agent/x", protected: []string{"agent/*"}},
		{branch: "agent/bad..name"},
	} {
		o := f.options(t, "run-1")
		o.Branch = tc.branch
		o.Protected = append(o.Protected, tc.protected...)
		_, err := workspace.Open(context.Background(), o)
		if !errors.Is(err, workspace.ErrRefusedBranch) {
			t.Errorf("Open(branch %q, protected %v) error = %v, want ErrRefusedBranch", tc.branch, o.Protected, err)
		}
	}
	if len(f.git.Calls()) != 0 {
		t.Errorf("refused branches still reached the server: %v", f.git.Calls())
	}

	// A branch the server protects (unknown to agentbot) is refused by the
	// server, and the error says so.
	f.git.ProtectBranch(repoPath, "agent/issue-7-analyze-aapl")
	ws := open(t, f.options(t, "run-1"))
	write(t, ws.FS(), "output/r.md", "r\n")
	if _, err := ws.Commit(context.Background(), workspace.CommitInput{Message: "m"}); err != nil {
		t.Fatal(err)
	}
	err := ws.Push(context.Background())
	if !errors.Is(err, workspace.ErrPushRejected) || !strings.Contains(err.Error(), "not allowed to push code to protected branches") {
		t.Errorf("Push to a server-protected branch error = %v", err)
	}
	if _, ok := f.git.Branches(repoPath)["agent/issue-7-analyze-aapl"]; ok {
		t.Error("the protected branch was created")
	}
}

func TestNothingToCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ws := open(t, f.options(t, "run-1"))
	ctx := context.Background()
	if _, err := ws.Commit(ctx, workspace.CommitInput{Message: "m"}); !errors.Is(err, workspace.ErrNothingToCommit) {
		t.Errorf("Commit with no writes error = %v, want ErrNothingToCommit", err)
	}
	write(t, ws.FS(), "output/old.md", baseFiles["output/old.md"])
	if _, err := ws.Commit(ctx, workspace.CommitInput{Message: "m"}); !errors.Is(err, workspace.ErrNothingToCommit) {
		t.Errorf("Commit of an unchanged file error = %v, want ErrNothingToCommit", err)
	}
	if err := ws.Push(ctx); err == nil {
		t.Error("Push with no commit succeeded")
	}
	if _, ok := f.git.Branches(repoPath)[ws.Branch()]; ok {
		t.Error("a branch was pushed")
	}
}

func TestPolicyAndSizeLimitsAtCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()

	o := f.options(t, "run-1")
	o.MaxFileBytes = 10
	o.MaxCommitBytes = 15
	ws := open(t, o)
	if err := ws.FS().WriteFile("output/big.md", make([]byte, 11)); !errors.Is(err, workspace.ErrTooLarge) ||
		!strings.Contains(err.Error(), "limit per file is 10") {
		t.Errorf("WriteFile over the file limit error = %v", err)
	}
	write(t, ws.FS(), "output/a.md", "0123456789")
	if err := ws.FS().WriteFile("output/b.md", []byte("0123456789")); !errors.Is(err, workspace.ErrTooLarge) ||
		!strings.Contains(err.Error(), "limit per commit is 15") {
		t.Errorf("WriteFile over the commit limit error = %v", err)
	}
	write(t, ws.FS(), "output/a.md", "01234") // rewriting frees its old size
	write(t, ws.FS(), "output/b.md", "0123456789")

	// The policy is checked again at commit time: here it changed since the
	// write (a tools bug, or a file slipped into the overlay).
	o = f.options(t, "run-2")
	var refuse sync.Map
	o.Policy = func(p string) error {
		if _, ok := refuse.Load(p); ok {
			return errors.New("not in the allowlist")
		}
		return allowOutput(p)
	}
	ws = open(t, o)
	write(t, ws.FS(), "output/ok.md", "ok\n")
	write(t, ws.FS(), "output/secret.md", "s\n")
	refuse.Store("output/secret.md", true)
	_, err := ws.Commit(ctx, workspace.CommitInput{Message: "m"})
	if !errors.Is(err, workspace.ErrNotAllowed) || !strings.Contains(err.Error(), "output/secret.md") {
		t.Errorf("Commit with a refused path error = %v, want ErrNotAllowed naming it", err)
	}

	// The file tools' own policy refuses .gitlab-ci.yml at commit time even
	// if it reached the overlay.
	ws = open(t, f.options(t, "run-4"))
	write(t, ws.FS(), "output/ok.md", "ok\n")
	if err := os.WriteFile(filepath.Join(ws.Dir(), "overlay", ".gitlab-ci.yml"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ws.Commit(ctx, workspace.CommitInput{Message: "m"})
	if !errors.Is(err, tools.ErrForbidden) {
		t.Errorf("Commit with a refused path error = %v, want ErrNotAllowed naming it", err)
	}

	o = f.options(t, "run-3")
	o.Policy = nil
	if _, err := workspace.Open(ctx, o); err == nil || !strings.Contains(err.Error(), "Policy") {
		t.Errorf("Open without a policy error = %v", err)
	}
}

func TestWrongTokenSaysWhatToCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := f.options(t, "run-1")
	o.Token = "glpat-wrong-token-9876543210"
	_, err := workspace.Open(context.Background(), o)
	if !errors.Is(err, workspace.ErrAuth) {
		t.Fatalf("Open with a wrong token error = %v, want ErrAuth", err)
	}
	msg := err.Error()
	for _, want := range []string{"acme/research", "GITLAB_TOKEN", "read_repository", "write_repository"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %s", msg, want)
		}
	}
	if strings.Contains(msg, o.Token) || strings.Contains(msg, token) {
		t.Errorf("error %q holds a token", msg)
	}
	entries, _ := os.ReadDir(o.TempDir)
	if len(entries) != 0 {
		t.Errorf("a failed Open left %d entries in the temp dir", len(entries))
	}

	o.RemoteURL = strings.Replace(f.git.URL(repoPath), "http://", "http://oauth2:"+token+"@", 1)
	o.Token = token
	if _, err := workspace.Open(context.Background(), o); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("Open with credentials in the URL error = %v", err)
	}
}

func TestTokenNeverOnDiskAndTempFilesRemoved(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ws := open(t, f.options(t, "run-1"))
	write(t, ws.FS(), "output/report.md", "r\n")
	commitAndPush(t, ws, "agent: analyze AAPL")
	dir := ws.Dir()
	if dir == "" {
		t.Fatal("no temp dir")
	}
	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		seen++
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(token)) {
			t.Errorf("%s holds the token", p)
		}
		if filepath.Base(p) == "config" && bytes.Contains(data, []byte("url")) {
			t.Errorf("%s records a remote: %s", p, data)
		}
		return nil
	})
	if err != nil || seen == 0 {
		t.Fatalf("walk %s: %v (%d files)", dir, err, seen)
	}
	f.mu.Lock()
	logs := f.logs.String()
	f.mu.Unlock()
	if strings.Contains(logs, token) || !strings.Contains(logs, "pushed") {
		t.Errorf("logs hold the token or miss the push:\n%s", logs)
	}
	if err := ws.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temp dir %s still there after Close: %v", dir, err)
	}
	if err := ws.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestPushIsIdempotentAcrossCrashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("push retried in the same process", func(t *testing.T) {
		f := newFixture(t)
		ws := open(t, f.options(t, "run-1"))
		write(t, ws.FS(), "output/report.md", "r\n")
		commitAndPush(t, ws, "m")
		if err := ws.Push(ctx); err != nil {
			t.Fatalf("second Push: %v", err)
		}
		if n := len(f.agentCommits(t, ws.Branch())); n != 1 {
			t.Errorf("%d agent commits, want 1", n)
		}
	})

	t.Run("run retried after a crash after the push", func(t *testing.T) {
		f := newFixture(t)
		ws := open(t, f.options(t, "run-1"))
		write(t, ws.FS(), "output/report.md", "r\n")
		first := commitAndPush(t, ws, "m")
		_ = ws.Close() // the crash

		again := open(t, f.options(t, "run-1"))
		if !again.AlreadyPushed() || again.BaseCommit() != first.Hash {
			t.Fatalf("retry: AlreadyPushed %v base %s", again.AlreadyPushed(), again.BaseCommit())
		}
		// Even a caller that runs the agent again lands on the same commit.
		write(t, again.FS(), "output/report.md", "r\n")
		res := commitAndPush(t, again, "m")
		if !res.AlreadyPushed || res.Hash != first.Hash || !slices.Equal(res.Files, []string{"output/report.md"}) {
			t.Errorf("retry commit = %+v, want the first commit %s", res, first.Hash)
		}
		if n := len(f.agentCommits(t, again.Branch())); n != 1 {
			t.Errorf("%d agent commits, want 1", n)
		}
	})

	t.Run("an equal commit pushed by a lost attempt", func(t *testing.T) {
		f := newFixture(t)
		o := f.options(t, "run-1")
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		o.Now = func() time.Time { return now }
		lost := open(t, o)
		retry := open(t, o) // opened before the lost attempt's push landed
		write(t, lost.FS(), "output/report.md", "r\n")
		commitAndPush(t, lost, "m")

		now = now.Add(time.Minute) // another commit id for the same change
		write(t, retry.FS(), "output/report.md", "r\n")
		res, err := retry.Commit(ctx, workspace.CommitInput{Message: "m"})
		if err != nil {
			t.Fatal(err)
		}
		if err := retry.Push(ctx); err != nil {
			t.Fatalf("Push over an equal commit: %v", err)
		}
		commits := f.agentCommits(t, retry.Branch())
		if len(commits) != 1 || commits[0].SHA == res.Hash {
			t.Errorf("agent commits = %+v", commits)
		}
	})
}

func TestPushFailsWhenBranchMoved(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ws := open(t, f.options(t, "run-1"))
	f.git.Commit(repoPath, ws.Branch(), map[string]string{"output/theirs.md": "t\n"}, "someone else")
	write(t, ws.FS(), "output/report.md", "r\n")
	if _, err := ws.Commit(context.Background(), workspace.CommitInput{Message: "m"}); err != nil {
		t.Fatal(err)
	}
	err := ws.Push(context.Background())
	if !errors.Is(err, workspace.ErrBranchMoved) || !strings.Contains(err.Error(), "retry") {
		t.Errorf("Push after the branch moved error = %v, want ErrBranchMoved", err)
	}
}

func TestConcurrentToolCalls(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fsys := open(t, f.options(t, "run-1")).FS()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			name := "output/f" + string(rune('a'+i)) + ".md"
			if err := fsys.WriteFile(name, []byte(name)); err != nil {
				t.Error(err)
			}
			if _, err := fsys.ReadFile("src/main.go"); err != nil {
				t.Error(err)
			}
			if _, err := fsys.ReadDir("output"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(fsys.Changed()); n != 8 {
		t.Errorf("Changed() has %d files, want 8", n)
	}
}

func TestBlobsFetchedOnDemand(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	gitConfig(t, f.git.Dir(repoPath), "uploadpack.allowFilter", "true")
	ws := open(t, f.options(t, "run-1"))
	fetches := func() int {
		n := 0
		for _, c := range f.git.Calls() {
			if c.Method == "POST" && strings.HasSuffix(c.Path, "/git-upload-pack") {
				n++
			}
		}
		return n
	}
	fsys := ws.FS()
	start := fetches()
	step := func(what string, want int, op func() error) {
		t.Helper()
		before := fetches()
		if err := op(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := fetches() - before; got != want {
			t.Errorf("%s made %d fetches, want %d", what, got, want)
		}
	}
	step("listing the root", 0, func() error { _, err := fsys.ReadDir("."); return err })
	step("stat of a directory", 0, func() error { _, err := fsys.Stat("src/lib"); return err })
	step("first read", 1, func() error { _, err := fsys.ReadFile("src/main.go"); return err })
	step("second read", 0, func() error { _, err := fsys.ReadFile("src/main.go"); return err })
	step("stat of a file", 1, func() error { _, err := fsys.Stat("README.md"); return err })
	step("sizes of a listing", 1, func() error {
		entries, err := fsys.ReadDir("output")
		if err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := e.Info(); err != nil {
				return err
			}
		}
		return nil
	})
	step("read of a listed file", 0, func() error { _, err := fsys.ReadFile("output/old.md"); return err })
	step("commit and push", 0, func() error {
		if err := fsys.WriteFile("output/old.md", []byte("changed\n")); err != nil {
			return err
		}
		if _, err := ws.Commit(context.Background(), workspace.CommitInput{Message: "m"}); err != nil {
			return err
		}
		return ws.Push(context.Background())
	})
	if total := fetches() - start; total != 3 {
		t.Errorf("%d blob fetches in all, want 3", total)
	}
	files := f.git.Files(repoPath, ws.Branch())
	if files["output/old.md"] != "changed\n" || files["src/lib/util.go"] != baseFiles["src/lib/util.go"] {
		t.Errorf("branch files = %v", files)
	}
}
