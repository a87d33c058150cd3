package gitlabtest

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
)

// rawFile answers GET /projects/:id/repository/files/:path/raw?ref=…, the
// file's bytes at ref (the default branch when ref is not given), read from
// the project's git repository; Reporter needed on a private project, as in
// GitLab.
func (s *Server) rawFile(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	q.checkQuery("ref", "lfs")
	if p.Visibility == "private" && p.accessLevel(q.user.ID) < Reporter {
		return forbidden()
	}
	name := q.r.PathValue("path")
	ref := q.r.URL.Query().Get("ref")
	if ref == "" {
		ref = p.DefaultBranch
	}
	data, found, err := s.git.fileAt(p.Path, ref, name)
	if err != nil {
		return http.StatusInternalServerError, msg(err.Error())
	}
	if !found {
		return notFound("File")
	}
	return http.StatusOK, plainText(data)
}

// fileAt reads one file at ref without failing the test; found is false
// when the ref or the file does not exist (or the path is a directory).
func (g *GitServer) fileAt(repoPath, ref, name string) (data []byte, found bool, err error) {
	dir, err := g.repoDir(repoPath)
	if err != nil {
		return nil, false, err
	}
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") || strings.ContainsAny(ref, ":\x00") {
		return nil, false, nil
	}
	sha, err := g.run(nil, dir, "", "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil || sha == "" {
		return nil, false, err
	}
	typ, err := g.run(nil, dir, "", "cat-file", "-t", sha+":"+name)
	if err != nil || typ != "blob" {
		return nil, false, nil // git exits 128 for a missing path
	}
	cmd := g.command(nil, dir, "cat-file", "blob", sha+":"+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, false, fmt.Errorf("git cat-file blob %s:%s: %v: %s", sha, name, err, stderr.String())
	}
	return out, true, nil
}
