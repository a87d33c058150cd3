package gitlabtest

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// runGit runs the git CLI as a client would, isolated from the machine's
// configuration.
func runGit(t *testing.T, g *GitServer, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(g.baseEnv(),
		"GIT_AUTHOR_NAME=Person", "GIT_AUTHOR_EMAIL=person@example.com",
		"GIT_COMMITTER_NAME=Person", "GIT_COMMITTER_EMAIL=person@example.com")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func withToken(u, token string) string {
	return strings.Replace(u, "http://", "http://oauth2:"+token+"@", 1)
}

func TestGitServerCloneAndPush(t *testing.T) {
	g := NewGitServer(t, "s3cret")
	seed := g.CreateRepo("acme/research", map[string]string{"README.md": "# Research\n", "docs/a.txt": "a"}, "main")
	if got := g.Branches("acme/research"); got["main"] != seed || len(got) != 1 {
		t.Fatalf("Branches = %v, want main=%s", got, seed)
	}
	if again := NewGitServer(t, "x").CreateRepo("acme/research", map[string]string{"README.md": "# Research\n", "docs/a.txt": "a"}, "main"); again != seed {
		t.Errorf("seed commit not deterministic: %s != %s", again, seed)
	}

	work := filepath.Join(t.TempDir(), "clone")
	if out, err := runGit(t, g, "", "clone", "--quiet", "--depth=1", withToken(g.URL("acme/research"), "s3cret"), work); err != nil {
		t.Fatalf("clone: %v: %s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(work, "docs/a.txt")); err != nil || string(b) != "a" {
		t.Fatalf("cloned file = %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(work, "new.md"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"add", "new.md"},
		{"commit", "--quiet", "-m", "Add new\n\nCo-authored-by: A <a@example.com>"},
		{"push", "--quiet", "origin", "HEAD:refs/heads/agent/issue-7-x"},
	} {
		if out, err := runGit(t, g, work, args...); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	log := g.Log("acme/research", "agent/issue-7-x")
	if len(log) != 2 || log[0].Parents[0] != seed || log[0].AuthorName != "Person" ||
		!strings.HasSuffix(log[0].Message, "Co-authored-by: A <a@example.com>") ||
		strings.Join(log[0].Files, ",") != "new.md" || strings.Join(log[1].Files, ",") != "README.md,docs/a.txt" {
		t.Fatalf("Log = %+v", log)
	}
	files := g.Files("acme/research", "agent/issue-7-x")
	if len(files) != 3 || files["new.md"] != "new\n" || files["README.md"] != "# Research\n" {
		t.Fatalf("Files = %v", files)
	}

	// A person's commit through the helper, deleting and adding.
	sha := g.Commit("acme/research", "main", map[string]string{"docs/a.txt": "", "b.txt": "b"}, "Edit")
	if files := g.Files("acme/research", sha); len(files) != 2 || files["b.txt"] != "b" {
		t.Fatalf("Files after Commit = %v", files)
	}
}

func TestGitServerRejectsBadToken(t *testing.T) {
	g := NewGitServer(t, "s3cret")
	g.CreateRepo("acme/research", map[string]string{"a": "a"}, "main")
	for _, token := range []string{"", "wrong"} {
		req, _ := http.NewRequest("GET", g.URL("acme/research")+"/info/refs?service=git-upload-pack", nil)
		if token != "" {
			req.SetBasicAuth("oauth2", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("token %q: status %d, WWW-Authenticate %q", token, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	out, err := runGit(t, g, "", "ls-remote", withToken(g.URL("acme/research"), "wrong"))
	if err == nil {
		t.Fatalf("ls-remote with a wrong token succeeded: %s", out)
	}
	if calls := g.Calls(); len(calls) == 0 || calls[len(calls)-1].Status != http.StatusUnauthorized {
		t.Errorf("Calls = %+v", calls)
	}
}

func TestGitServerGoGitShallowFetchAndProtectedPush(t *testing.T) {
	g := NewGitServer(t, "s3cret")
	g.CreateRepo("acme/research", map[string]string{"a.txt": "a"}, "main")
	g.Commit("acme/research", "main", map[string]string{"b.txt": "b"}, "Second")
	auth := &githttp.BasicAuth{Username: "oauth2", Password: "s3cret"}
	repo, err := git.Clone(memory.NewStorage(), nil, &git.CloneOptions{
		URL: g.URL("acme/research"), Auth: auth, Depth: 1, SingleBranch: true,
		ReferenceName: plumbing.NewBranchReferenceName("main"), Tags: git.NoTags, NoCheckout: true,
	})
	if err != nil {
		t.Fatalf("go-git shallow clone: %v", err)
	}
	head, err := repo.Head()
	if err != nil || head.Hash().String() != g.Branches("acme/research")["main"] {
		t.Fatalf("head = %v, %v", head, err)
	}

	g.ProtectBranch("acme/research", "main")
	err = repo.Push(&git.PushOptions{Auth: auth, RefSpecs: []config.RefSpec{"refs/heads/main:refs/heads/release"}})
	if err != nil {
		t.Fatalf("push to an unprotected branch: %v", err)
	}
	work := filepath.Join(t.TempDir(), "c")
	if out, err := runGit(t, g, "", "clone", "--quiet", withToken(g.URL("acme/research"), "s3cret"), work); err != nil {
		t.Fatalf("clone: %v: %s", err, out)
	}
	runGit(t, g, work, "commit", "--quiet", "--allow-empty", "-m", "x")
	if out, err := runGit(t, g, work, "push", "origin", "HEAD:main"); err == nil || !strings.Contains(out, "protected branches") {
		t.Fatalf("push to a protected branch: %v: %s", err, out)
	}
}

func TestGitServerServeRepoDir(t *testing.T) {
	src := NewGitServer(t, "")
	src.CreateRepo("seed/repo", map[string]string{"x.txt": "x"}, "trunk")
	g := NewGitServer(t, "tok")
	g.ServeRepoDir("big/monorepo", src.Dir("seed/repo"))
	out, err := runGit(t, g, "", "ls-remote", withToken(g.URL("big/monorepo"), "tok"))
	if err != nil || !strings.Contains(out, "refs/heads/trunk") {
		t.Fatalf("ls-remote: %v: %s", err, out)
	}
	if g.DefaultBranch("big/monorepo") != "trunk" {
		t.Errorf("DefaultBranch = %q", g.DefaultBranch("big/monorepo"))
	}
}
