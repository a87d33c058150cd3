package gitlabtest

import (
	"fmt"
	"strings"
)

// What the API fake reads from the repositories. These run inside HTTP
// handlers, so they return errors instead of failing the test.

func (g *GitServer) repoDir(repoPath string) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.repos[repoPath]
	if !ok {
		return "", fmt.Errorf("no repository %s", repoPath)
	}
	return r.dir, nil
}

// branchHeads is Branches without failing the test.
func (g *GitServer) branchHeads(repoPath string) (map[string]string, error) {
	dir, err := g.repoDir(repoPath)
	if err != nil {
		return nil, err
	}
	out, err := g.run(nil, dir, "", "for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/heads/")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if name, sha, ok := strings.Cut(line, " "); ok {
			m[name] = sha
		}
	}
	return m, nil
}

// resolve returns the commit a ref names, or "" when there is none.
func (g *GitServer) resolve(repoPath, ref string) (string, error) {
	dir, err := g.repoDir(repoPath)
	if err != nil {
		return "", err
	}
	return g.run(nil, dir, "", "rev-parse", "--verify", "--quiet", ref+"^{commit}")
}

// mergeBase returns the best common ancestor of two commits, or "" when they
// have none.
func (g *GitServer) mergeBase(repoPath, a, b string) (string, error) {
	dir, err := g.repoDir(repoPath)
	if err != nil {
		return "", err
	}
	out, err := g.run(nil, dir, "", "merge-base", a, b)
	if err != nil {
		return "", nil // no common ancestor: git exits 1
	}
	return out, nil
}

// commitInfo is what the API shows of a commit.
type commitInfo struct {
	SHA, Title, Message, AuthorName, AuthorEmail string
}

func (g *GitServer) commit(repoPath, sha string) (commitInfo, error) {
	dir, err := g.repoDir(repoPath)
	if err != nil {
		return commitInfo{}, err
	}
	out, err := g.run(nil, dir, "", "show", "-s", "--format=%H%x00%an%x00%ae%x00%B", sha)
	if err != nil {
		return commitInfo{}, err
	}
	f := strings.SplitN(out, "\x00", 4)
	if len(f) != 4 {
		return commitInfo{}, fmt.Errorf("git show %s: unexpected output", sha)
	}
	title, _, _ := strings.Cut(f[3], "\n")
	return commitInfo{SHA: f[0], AuthorName: f[1], AuthorEmail: f[2], Message: f[3], Title: title}, nil
}

// fileDiff is one file's change between two commits, as GitLab's diffs API
// shows it: the diff text starts at the first hunk header.
type fileDiff struct {
	OldPath, NewPath string
	NewFile          bool
	DeletedFile      bool
	Diff             string
}

// diff lists the changes from one commit to another (no rename detection).
func (g *GitServer) diff(repoPath, from, to string) ([]fileDiff, error) {
	dir, err := g.repoDir(repoPath)
	if err != nil {
		return nil, err
	}
	status, err := g.run(nil, dir, "", "diff", "--no-renames", "--name-status", "-z", from, to)
	if err != nil {
		return nil, err
	}
	var diffs []fileDiff
	fields := strings.Split(status, "\x00")
	for i := 0; i+1 < len(fields); i += 2 {
		st, name := fields[i], fields[i+1]
		d := fileDiff{OldPath: name, NewPath: name, NewFile: st == "A", DeletedFile: st == "D"}
		text, err := g.run(nil, dir, "", "diff", "--no-color", "--no-ext-diff", "--no-renames", from, to, "--", name)
		if err != nil {
			return nil, err
		}
		if i := strings.Index(text, "\n@@"); i >= 0 {
			d.Diff = text[i+1:] + "\n"
		}
		diffs = append(diffs, d)
	}
	return diffs, nil
}
