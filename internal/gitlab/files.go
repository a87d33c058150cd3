package gitlab

import (
	"context"
	"errors"
	"fmt"
	"io"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// MaxFileBytes bounds File: it reads at most MaxFileBytes+1 bytes of a file,
// so that a caller with a smaller limit still sees that a file is too large.
const MaxFileBytes = 1 << 20

// File returns the content of a file of the repository at ref (a branch, a
// tag or a commit), at most MaxFileBytes+1 bytes of it; found is false when
// the file (or the ref) does not exist.
func (c *Client) File(ctx context.Context, projectID int64, path, ref string) (data []byte, found bool, err error) {
	op := fmt.Sprintf("read %s at %s in project %d", path, ref, projectID)
	r, _, err := c.gl.RepositoryFiles.GetRawFileReader(projectID, path, &gl.GetRawFileOptions{Ref: &ref}, c.ctxOpt(ctx))
	if errors.Is(err, gl.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, c.wrap(op, err)
	}
	defer r.Close()
	data, err = io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, false, c.wrap(op, err)
	}
	return data, true, nil
}

// LatestPipeline returns the newest pipeline on one of refs (a branch, or a
// merge request's "refs/merge-requests/<iid>/head"); found is false when
// there is none.
func (c *Client) LatestPipeline(ctx context.Context, projectID int64, refs ...string) (p Pipeline, found bool, err error) {
	for _, ref := range refs {
		list, _, err := c.gl.Pipelines.ListProjectPipelines(projectID, &gl.ListProjectPipelinesOptions{
			ListOptions: gl.ListOptions{PerPage: 1},
			Ref:         gl.Ptr(ref), OrderBy: gl.Ptr("id"), Sort: gl.Ptr("desc"),
		}, c.ctxOpt(ctx))
		if err != nil {
			return Pipeline{}, false, c.wrap(fmt.Sprintf("find the latest pipeline on %s in project %d", ref, projectID), err)
		}
		if len(list) > 0 && list[0].ID > p.ID {
			i := list[0]
			p = Pipeline{ID: i.ID, IID: i.IID, ProjectID: i.ProjectID, Status: i.Status, Ref: i.Ref, SHA: i.SHA,
				Source: i.Source, WebURL: i.WebURL}
			found = true
		}
	}
	return p, found, nil
}
