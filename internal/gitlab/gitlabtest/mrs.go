package gitlabtest

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

type protectedRule struct {
	ID      int64
	Pattern string // a name, or a wildcard pattern ("release/*")
}

// matches reports whether a branch name matches a protected-branch pattern;
// as in GitLab, "*" matches any characters, "/" included.
func (r protectedRule) matches(branch string) bool {
	if !strings.Contains(r.Pattern, "*") {
		return r.Pattern == branch
	}
	parts := strings.Split(r.Pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(branch)
}

func (p *project) isProtected(branch string) bool {
	return slices.ContainsFunc(p.protected, func(r protectedRule) bool { return r.matches(branch) })
}

// isDraft reports whether a title marks a merge request as a draft.
func isDraft(title string) bool {
	t := strings.ToLower(strings.TrimSpace(title))
	for _, prefix := range []string{"draft:", "[draft]", "(draft)", "draft -"} {
		if strings.HasPrefix(t, prefix) {
			return true
		}
	}
	return false
}

// Branches.

func (s *Server) branchJSON(p *project, name, sha string) (*gitlab.Branch, error) {
	c, err := s.git.commit(p.Path, sha)
	if err != nil {
		return nil, err
	}
	return &gitlab.Branch{
		Name: name, Default: name == p.DefaultBranch, Protected: p.isProtected(name),
		CanPush: !p.isProtected(name), DevelopersCanPush: !p.isProtected(name),
		WebURL: s.webURL(p, "/-/tree/"+name),
		Commit: &gitlab.Commit{ID: c.SHA, ShortID: c.SHA[:8], Title: c.Title, Message: c.Message,
			AuthorName: c.AuthorName, AuthorEmail: c.AuthorEmail},
	}, nil
}

func (s *Server) listBranches(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	q.checkQuery("search")
	heads, err := s.git.branchHeads(p.Path)
	if err != nil {
		return http.StatusInternalServerError, msg(err.Error())
	}
	var names []string
	for name := range heads {
		if strings.Contains(name, q.r.URL.Query().Get("search")) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := []*gitlab.Branch{}
	for _, name := range paginate(q, names) {
		b, err := s.branchJSON(p, name, heads[name])
		if err != nil {
			return http.StatusInternalServerError, msg(err.Error())
		}
		out = append(out, b)
	}
	return http.StatusOK, out
}

func (s *Server) getBranch(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	name := q.r.PathValue("branch")
	heads, err := s.git.branchHeads(p.Path)
	if err != nil {
		return http.StatusInternalServerError, msg(err.Error())
	}
	sha, ok := heads[name]
	if !ok {
		return notFound("Branch")
	}
	b, err := s.branchJSON(p, name, sha)
	if err != nil {
		return http.StatusInternalServerError, msg(err.Error())
	}
	return http.StatusOK, b
}

func (s *Server) listProtectedBranches(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	q.checkQuery("search")
	maint := []*gitlab.BranchAccessDescription{{AccessLevel: Maintainer, AccessLevelDescription: "Maintainers"}}
	out := []*gitlab.ProtectedBranch{}
	for _, r := range paginate(q, p.protected) {
		if !strings.Contains(r.Pattern, q.r.URL.Query().Get("search")) {
			continue
		}
		out = append(out, &gitlab.ProtectedBranch{ID: r.ID, Name: r.Pattern,
			PushAccessLevels: maint, MergeAccessLevels: maint, UnprotectAccessLevels: maint})
	}
	return http.StatusOK, out
}

// Merge requests.

// diffRefs are a merge request's current diff SHAs: base is the merge base
// of target and source, start the target's head, head the source's head.
func (s *Server) diffRefs(p *project, mr *MergeRequest) (gitlab.MergeRequestDiffRefs, error) {
	heads, err := s.git.branchHeads(p.Path)
	if err != nil {
		return gitlab.MergeRequestDiffRefs{}, err
	}
	head, start := heads[mr.SourceBranch], heads[mr.TargetBranch]
	if head == "" || start == "" {
		return gitlab.MergeRequestDiffRefs{}, fmt.Errorf("branch %s or %s is missing", mr.SourceBranch, mr.TargetBranch)
	}
	base, err := s.git.mergeBase(p.Path, start, head)
	if err != nil {
		return gitlab.MergeRequestDiffRefs{}, err
	}
	return gitlab.MergeRequestDiffRefs{BaseSha: base, HeadSha: head, StartSha: start}, nil
}

func (s *Server) basicMRJSON(p *project, mr *MergeRequest) gitlab.BasicMergeRequest {
	created, updated := mr.CreatedAt, mr.UpdatedAt
	out := gitlab.BasicMergeRequest{
		ID: mr.ID, IID: mr.IID, ProjectID: p.ID, SourceProjectID: p.ID, TargetProjectID: p.ID,
		Title: mr.Title, Description: mr.Description, State: mr.State,
		SourceBranch: mr.SourceBranch, TargetBranch: mr.TargetBranch,
		Draft: mr.Draft, Labels: gitlab.Labels(slices.Clone(mr.Labels)),
		Author: s.basicUser(mr.AuthorID), Reviewers: []*gitlab.BasicUser{},
		CreatedAt: &created, UpdatedAt: &updated, DetailedMergeStatus: "mergeable",
		WebURL:     s.webURL(p, fmt.Sprintf("/-/merge_requests/%d", mr.IID)),
		References: &gitlab.IssueReferences{Short: fmt.Sprintf("!%d", mr.IID), Full: fmt.Sprintf("%s!%d", p.Path, mr.IID)},
	}
	if out.Labels == nil {
		out.Labels = gitlab.Labels{}
	}
	for _, id := range mr.ReviewerIDs {
		out.Reviewers = append(out.Reviewers, s.basicUser(id))
	}
	if heads, err := s.git.branchHeads(p.Path); err == nil {
		out.SHA = heads[mr.SourceBranch]
	}
	return out
}

func (s *Server) mrJSON(p *project, mr *MergeRequest) *gitlab.MergeRequest {
	out := &gitlab.MergeRequest{BasicMergeRequest: s.basicMRJSON(p, mr), WorkInProgress: mr.Draft}
	if refs, err := s.diffRefs(p, mr); err == nil {
		out.DiffRefs = refs
	}
	return out
}

func (s *Server) listMRs(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	q.checkQuery("state", "source_branch", "target_branch", "iids[]", "author_id", "order_by", "sort")
	v := q.r.URL.Query()
	var iids []int64
	for _, x := range v["iids[]"] {
		n, _ := strconv.ParseInt(x, 10, 64)
		iids = append(iids, n)
	}
	var mrs []*MergeRequest
	for _, mr := range p.mrs {
		switch {
		case v.Get("state") != "" && v.Get("state") != "all" && mr.State != v.Get("state"),
			v.Get("source_branch") != "" && mr.SourceBranch != v.Get("source_branch"),
			v.Get("target_branch") != "" && mr.TargetBranch != v.Get("target_branch"),
			v.Get("author_id") != "" && strconv.FormatInt(mr.AuthorID, 10) != v.Get("author_id"),
			len(iids) > 0 && !slices.Contains(iids, mr.IID):
			continue
		}
		mrs = append(mrs, mr)
	}
	asc := v.Get("sort") == "asc"
	sort.Slice(mrs, func(i, j int) bool {
		a, b := mrs[i], mrs[j]
		if v.Get("order_by") == "updated_at" && !a.UpdatedAt.Equal(b.UpdatedAt) {
			return a.UpdatedAt.Before(b.UpdatedAt) == asc
		}
		return (a.IID < b.IID) == asc
	})
	out := []*gitlab.BasicMergeRequest{}
	for _, mr := range paginate(q, mrs) {
		b := s.basicMRJSON(p, mr)
		out = append(out, &b)
	}
	return http.StatusOK, out
}

func (q *request) mr(p *project) (*MergeRequest, bool) {
	iid, _ := q.pathInt("iid")
	mr := p.mrs[iid]
	return mr, mr != nil
}

func (s *Server) getMR(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	mr, ok := q.mr(p)
	if !ok {
		return notFound("Merge Request")
	}
	return http.StatusOK, s.mrJSON(p, mr)
}

// reviewers keeps the ids of known users.
func (s *Server) reviewers(ids []int64) []int64 {
	var out []int64
	for _, id := range ids {
		if s.users[id] != nil && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func (s *Server) createMR(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	if p.accessLevel(q.user.ID) < Developer {
		return forbidden()
	}
	src, dst, title := q.str("source_branch"), q.str("target_branch"), q.str("title")
	switch {
	case src == "":
		return badRequest("source_branch is missing")
	case dst == "":
		return badRequest("target_branch is missing")
	case strings.TrimSpace(title) == "":
		return badRequest("title is missing")
	case src == dst:
		return http.StatusBadRequest, msg("You can't use same project/branch for source and target")
	}
	heads, err := s.git.branchHeads(p.Path)
	if err != nil {
		return http.StatusInternalServerError, msg(err.Error())
	}
	if heads[src] == "" {
		return http.StatusBadRequest, msg(fmt.Sprintf("Source branch %q does not exist", src))
	}
	if heads[dst] == "" {
		return http.StatusBadRequest, msg(fmt.Sprintf("Target branch %q does not exist", dst))
	}
	for _, o := range p.mrs {
		if o.State == "opened" && o.SourceBranch == src && o.TargetBranch == dst {
			return http.StatusConflict, map[string]any{"message": []string{
				fmt.Sprintf("Another open merge request already exists for this source branch: !%d", o.IID)}}
		}
	}
	p.mrIID++
	now := s.now().UTC()
	mr := &MergeRequest{
		ID: s.nextID(), IID: p.mrIID, ProjectID: p.ID, Title: title, Description: q.str("description"),
		SourceBranch: src, TargetBranch: dst, State: "opened", Draft: isDraft(title),
		Labels: q.labels("labels"), ReviewerIDs: s.reviewers(q.ints("reviewer_ids")), AuthorID: q.user.ID,
		CreatedAt: now, UpdatedAt: now,
	}
	p.mrs[mr.IID] = mr
	q.emit(Event{Kind: "mr.create", ProjectID: p.ID, IID: mr.IID, ID: mr.ID})
	return http.StatusCreated, s.mrJSON(p, mr)
}

func (s *Server) updateMR(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	mr, ok := q.mr(p)
	if !ok {
		return notFound("Merge Request")
	}
	if p.accessLevel(q.user.ID) < Developer {
		return forbidden()
	}
	if q.has("title") {
		if strings.TrimSpace(q.str("title")) == "" {
			return badRequest("title is empty")
		}
		mr.Title = q.str("title")
		mr.Draft = isDraft(mr.Title)
	}
	if q.has("description") {
		mr.Description = q.str("description")
	}
	if q.has("target_branch") {
		heads, err := s.git.branchHeads(p.Path)
		if err != nil {
			return http.StatusInternalServerError, msg(err.Error())
		}
		if heads[q.str("target_branch")] == "" {
			return http.StatusBadRequest, msg(fmt.Sprintf("Target branch %q does not exist", q.str("target_branch")))
		}
		mr.TargetBranch = q.str("target_branch")
	}
	if q.has("labels") {
		mr.Labels = q.labels("labels")
	}
	for _, l := range q.labels("add_labels") {
		if !slices.Contains(mr.Labels, l) {
			mr.Labels = append(mr.Labels, l)
		}
	}
	for _, l := range q.labels("remove_labels") {
		mr.Labels = slices.DeleteFunc(mr.Labels, func(x string) bool { return x == l })
	}
	if q.has("reviewer_ids") {
		mr.ReviewerIDs = s.reviewers(q.ints("reviewer_ids"))
	}
	switch q.str("state_event") {
	case "close":
		mr.State = "closed"
	case "reopen":
		mr.State = "opened"
	case "":
	default:
		return badRequest("state_event does not have a valid value")
	}
	mr.UpdatedAt = s.now().UTC()
	mr.Updates++
	q.emit(Event{Kind: "mr.update", ProjectID: p.ID, IID: mr.IID, ID: mr.ID})
	return http.StatusOK, s.mrJSON(p, mr)
}

// mrDiffs lists the merge request's changes, from its merge base to its head.
func (s *Server) mrDiffs(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	mr, ok := q.mr(p)
	if !ok {
		return notFound("Merge Request")
	}
	q.checkQuery("unidiff")
	refs, err := s.diffRefs(p, mr)
	if err != nil {
		return http.StatusInternalServerError, msg(err.Error())
	}
	diffs, err := s.git.diff(p.Path, refs.BaseSha, refs.HeadSha)
	if err != nil {
		return http.StatusInternalServerError, msg(err.Error())
	}
	out := []*gitlab.MergeRequestDiff{}
	for _, d := range paginate(q, diffs) {
		out = append(out, &gitlab.MergeRequestDiff{OldPath: d.OldPath, NewPath: d.NewPath, Diff: d.Diff,
			NewFile: d.NewFile, DeletedFile: d.DeletedFile, AMode: "100644", BMode: "100644"})
	}
	return http.StatusOK, out
}
