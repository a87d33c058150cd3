package gitlab

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// MergeRequest is what agentbot needs of a merge request.
type MergeRequest struct {
	ID, IID, ProjectID         int64
	Title, Description         string
	SourceBranch, TargetBranch string
	State                      string // "opened", "closed", "merged"
	Draft                      bool
	Labels                     []string
	ReviewerIDs                []int64
	AuthorID                   int64
	SHA                        string // head of the source branch
	DiffRefs                   DiffRefs
	WebURL                     string
}

// DiffRefs are the SHAs an inline comment's position is made of.
type DiffRefs struct {
	BaseSHA, StartSHA, HeadSHA string
}

func mrFrom(b *gl.BasicMergeRequest) MergeRequest {
	out := MergeRequest{ID: b.ID, IID: b.IID, ProjectID: b.ProjectID, Title: b.Title, Description: b.Description,
		SourceBranch: b.SourceBranch, TargetBranch: b.TargetBranch, State: b.State, Draft: b.Draft,
		Labels: b.Labels, SHA: b.SHA, WebURL: b.WebURL}
	if b.Author != nil {
		out.AuthorID = b.Author.ID
	}
	for _, r := range b.Reviewers {
		out.ReviewerIDs = append(out.ReviewerIDs, r.ID)
	}
	return out
}

func fullMRFrom(m *gl.MergeRequest) MergeRequest {
	out := mrFrom(&m.BasicMergeRequest)
	out.DiffRefs = DiffRefs{BaseSHA: m.DiffRefs.BaseSha, StartSHA: m.DiffRefs.StartSha, HeadSHA: m.DiffRefs.HeadSha}
	return out
}

// MergeRequest looks up a merge request by its IID.
func (c *Client) MergeRequest(ctx context.Context, projectID, iid int64) (MergeRequest, error) {
	m, _, err := c.gl.MergeRequests.GetMergeRequest(projectID, iid, nil, c.ctxOpt(ctx))
	if err != nil {
		return MergeRequest{}, c.wrap(fmt.Sprintf("get merge request %d of project %d", iid, projectID), err)
	}
	return fullMRFrom(m), nil
}

// FindOpenMR finds the open merge request from a source branch (the oldest,
// should there be several).
func (c *Client) FindOpenMR(ctx context.Context, projectID int64, sourceBranch string) (MergeRequest, bool, error) {
	list, _, err := c.gl.MergeRequests.ListProjectMergeRequests(projectID, &gl.ListProjectMergeRequestsOptions{
		ListOptions:  gl.ListOptions{PerPage: 20},
		State:        gl.Ptr("opened"),
		SourceBranch: &sourceBranch,
		OrderBy:      gl.Ptr("created_at"),
		Sort:         gl.Ptr("asc"),
	}, c.ctxOpt(ctx))
	if err != nil {
		return MergeRequest{}, false, c.wrap(fmt.Sprintf("find open merge request from %s in project %d", sourceBranch, projectID), err)
	}
	if len(list) == 0 {
		return MergeRequest{}, false, nil
	}
	return mrFrom(list[0]), true, nil
}

// NewMR describes a merge request to open.
type NewMR struct {
	SourceBranch, TargetBranch string
	Title, Description         string
	Draft                      bool // prefixes the title with "Draft: "
	Labels                     []string
	ReviewerIDs                []int64
	RemoveSourceBranch         bool
}

// draftPrefix matches the title prefixes GitLab reads as "draft".
var draftPrefix = regexp.MustCompile(`(?i)^\s*(\[draft\]|\(draft\)|draft:|draft\s-\s)\s*`)

func draftTitle(title string, draft bool) string {
	bare := draftPrefix.ReplaceAllString(title, "")
	if draft {
		return "Draft: " + bare
	}
	return bare
}

// CreateMR opens a merge request, or returns the open one from the same
// source branch when there is one already (made by an earlier attempt or
// run); the existing one is returned unchanged — use UpdateMR to refresh it.
func (c *Client) CreateMR(ctx context.Context, projectID int64, in NewMR) (MergeRequest, error) {
	find := func(ctx context.Context) (MergeRequest, bool, error) {
		return c.FindOpenMR(ctx, projectID, in.SourceBranch)
	}
	if mr, ok, err := find(ctx); err != nil || ok {
		return mr, err
	}
	op := fmt.Sprintf("create merge request from %s to %s in project %d", in.SourceBranch, in.TargetBranch, projectID)
	opt := &gl.CreateMergeRequestOptions{
		Title:        gl.Ptr(draftTitle(in.Title, in.Draft)),
		Description:  &in.Description,
		SourceBranch: &in.SourceBranch,
		TargetBranch: &in.TargetBranch,
	}
	if len(in.Labels) > 0 {
		opt.Labels = gl.Ptr(gl.LabelOptions(in.Labels))
	}
	if len(in.ReviewerIDs) > 0 {
		opt.ReviewerIDs = &in.ReviewerIDs
	}
	if in.RemoveSourceBranch {
		opt.RemoveSourceBranch = gl.Ptr(true)
	}
	return createOnce(ctx, c, op, find, func(ctx context.Context) (MergeRequest, error) {
		m, _, err := c.gl.MergeRequests.CreateMergeRequest(projectID, opt, c.ctxOpt(ctx))
		if err == nil {
			return fullMRFrom(m), nil
		}
		err = c.wrap(op, err)
		if errors.Is(err, ErrConflict) {
			// Another open MR from this branch appeared meanwhile.
			if mr, ok, ferr := find(ctx); ferr == nil && ok {
				return mr, nil
			}
		}
		return MergeRequest{}, err
	})
}

// UpdateMR says what to change on a merge request; nil fields stay as they
// are.
type UpdateMR struct {
	Title        *string
	Description  *string
	Draft        *bool // sets or removes the title's "Draft: " prefix
	Labels       *[]string
	ReviewerIDs  *[]int64
	TargetBranch *string
}

// UpdateMR changes a merge request (PUT, safe to repeat).
func (c *Client) UpdateMR(ctx context.Context, projectID, iid int64, in UpdateMR) (MergeRequest, error) {
	op := fmt.Sprintf("update merge request %d of project %d", iid, projectID)
	opt := &gl.UpdateMergeRequestOptions{Description: in.Description, TargetBranch: in.TargetBranch, ReviewerIDs: in.ReviewerIDs}
	if in.Labels != nil {
		opt.Labels = gl.Ptr(gl.LabelOptions(*in.Labels))
	}
	if in.Title != nil || in.Draft != nil {
		title, draft := "", false
		if in.Title != nil {
			title = *in.Title
		}
		if in.Draft != nil {
			draft = *in.Draft
		}
		if in.Title == nil || in.Draft == nil {
			cur, err := c.MergeRequest(ctx, projectID, iid)
			if err != nil {
				return MergeRequest{}, err
			}
			if in.Title == nil {
				title = cur.Title
			}
			if in.Draft == nil {
				draft = cur.Draft
			}
		}
		opt.Title = gl.Ptr(draftTitle(title, draft))
	}
	m, _, err := c.gl.MergeRequests.UpdateMergeRequest(projectID, iid, opt, c.ctxOpt(ctx))
	if err != nil {
		return MergeRequest{}, c.wrap(op, err)
	}
	return fullMRFrom(m), nil
}

// Diff is one file's change in a merge request; Diff is the unified diff
// from the first hunk header on.
type Diff struct {
	OldPath, NewPath                   string
	NewFile, DeletedFile, RenamedFile  bool
	TooLarge, Collapsed, GeneratedFile bool
	Diff                               string
}

// maxDiffPages bounds MRDiffs: 30 pages of 100 files.
const maxDiffPages = 30

// MRDiffs returns a merge request's changed files and the diff refs they
// were computed against (for inline comments). Files past 3,000 are left
// out.
func (c *Client) MRDiffs(ctx context.Context, projectID, iid int64) ([]Diff, DiffRefs, error) {
	mr, err := c.MergeRequest(ctx, projectID, iid)
	if err != nil {
		return nil, DiffRefs{}, err
	}
	var out []Diff
	opt := &gl.ListMergeRequestDiffsOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for range maxDiffPages {
		diffs, resp, err := c.gl.MergeRequests.ListMergeRequestDiffs(projectID, iid, opt, c.ctxOpt(ctx))
		if err != nil {
			return nil, DiffRefs{}, c.wrap(fmt.Sprintf("list diffs of merge request %d of project %d", iid, projectID), err)
		}
		for _, d := range diffs {
			out = append(out, Diff{OldPath: d.OldPath, NewPath: d.NewPath, NewFile: d.NewFile, DeletedFile: d.DeletedFile,
				RenamedFile: d.RenamedFile, TooLarge: d.TooLarge, Collapsed: d.Collapsed, GeneratedFile: d.GeneratedFile, Diff: d.Diff})
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return out, mr.DiffRefs, nil
}

// Position places an inline comment on a line of a merge request's diff:
// NewLine for an added or unchanged line (in NewPath), OldLine alone for a
// removed one (in OldPath). The SHAs are the MR's DiffRefs.
type Position struct {
	DiffRefs
	OldPath, NewPath string
	OldLine, NewLine int64
}

// CreateMRDiscussion starts a discussion on a merge request, inline on the
// diff when pos is set, once per key (see PostNote).
func (c *Client) CreateMRDiscussion(ctx context.Context, projectID, iid int64, key, body string, pos *Position) (Note, error) {
	if err := checkKey(key); err != nil {
		return Note{}, err
	}
	t := Thread{ProjectID: projectID, Kind: KindMR, IID: iid}
	find := func(ctx context.Context) (Note, bool, error) { return c.FindNote(ctx, t, key) }
	if n, ok, err := find(ctx); err != nil || ok {
		return n, err
	}
	body = WithMarker(key, body)
	opt := &gl.CreateMergeRequestDiscussionOptions{Body: &body}
	if pos != nil {
		p := &gl.PositionOptions{
			BaseSHA: &pos.BaseSHA, StartSHA: &pos.StartSHA, HeadSHA: &pos.HeadSHA,
			PositionType: gl.Ptr("text"),
		}
		if pos.NewPath != "" {
			p.NewPath = &pos.NewPath
		}
		if pos.OldPath != "" {
			p.OldPath = &pos.OldPath
		}
		if p.OldPath == nil {
			p.OldPath = p.NewPath
		}
		if p.NewPath == nil {
			p.NewPath = p.OldPath
		}
		if pos.NewLine > 0 {
			p.NewLine = &pos.NewLine
		}
		if pos.OldLine > 0 {
			p.OldLine = &pos.OldLine
		}
		opt.Position = p
	}
	op := "create discussion on " + t.String()
	return createOnce(ctx, c, op, find, func(ctx context.Context) (Note, error) {
		d, _, err := c.gl.Discussions.CreateMergeRequestDiscussion(projectID, iid, opt, c.ctxOpt(ctx))
		if err != nil {
			return Note{}, c.wrap(op, err)
		}
		if len(d.Notes) == 0 {
			return Note{}, c.wrap(op, errors.New("GitLab answered a discussion without notes"))
		}
		return noteFrom(d.Notes[0]), nil
	})
}

// maxProtectedPages bounds ProtectedBranches: 10 pages of 100.
const maxProtectedPages = 10

// ProtectedBranches lists a project's protected branch names and wildcard
// patterns; see BranchProtected.
func (c *Client) ProtectedBranches(ctx context.Context, projectID int64) ([]string, error) {
	var out []string
	opt := &gl.ListProtectedBranchesOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for range maxProtectedPages {
		list, resp, err := c.gl.ProtectedBranches.ListProtectedBranches(projectID, opt, c.ctxOpt(ctx))
		if err != nil {
			return nil, c.wrap(fmt.Sprintf("list protected branches of project %d", projectID), err)
		}
		for _, b := range list {
			out = append(out, b.Name)
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return out, nil
}

// BranchProtected reports whether branch matches one of GitLab's protected
// branch patterns, where "*" matches any characters ("release/*",
// "*-stable").
func BranchProtected(patterns []string, branch string) bool {
	for _, p := range patterns {
		if !strings.Contains(p, "*") {
			if p == branch {
				return true
			}
			continue
		}
		parts := strings.Split(p, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		if regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(branch) {
			return true
		}
	}
	return false
}

// Branch returns the head commit of a branch; found is false when the
// branch does not exist.
func (c *Client) Branch(ctx context.Context, projectID int64, name string) (sha string, found bool, err error) {
	b, _, err := c.gl.Branches.GetBranch(projectID, name, c.ctxOpt(ctx))
	if errors.Is(err, gl.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, c.wrap(fmt.Sprintf("get branch %s of project %d", name, projectID), err)
	}
	if b.Commit == nil {
		return "", true, nil
	}
	return b.Commit.ID, true, nil
}
