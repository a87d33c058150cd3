// Package publish turns what the agent wrote into a commit on an agent/…
// branch and a merge request. `agentbot serve` and `agentbot run --publish`
// share it, so that a run in the bot and a run on a CI runner land the same.
package publish

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/workspace"
)

// GitLab is the part of the GitLab API publishing uses.
type GitLab interface {
	Project(ctx context.Context, id int64) (gitlab.Project, error)
	MergeRequest(ctx context.Context, projectID, iid int64) (gitlab.MergeRequest, error)
	ProtectedBranches(ctx context.Context, projectID int64) ([]string, error)
	FindOpenMR(ctx context.Context, projectID int64, sourceBranch string) (gitlab.MergeRequest, bool, error)
	CreateMR(ctx context.Context, projectID int64, in gitlab.NewMR) (gitlab.MergeRequest, error)
	UpdateMR(ctx context.Context, projectID, iid int64, in gitlab.UpdateMR) (gitlab.MergeRequest, error)
}

// Request says what was asked, where and by whom.
type Request struct {
	ProjectID int64
	// Kind is "issue" or "mr"; IID its number. Kind "" means no thread (a
	// scheduled run): the branch is named after the command alone.
	Kind  string
	IID   int64
	Title string // the or MR's title, for the MR description
	// Command is what was asked, as shown to people ("analyze AAPL").
	Command string
	// RequestedBy is who asked; PublicEmail may be empty.
	RequestedBy gitlab.User
	RunID       string
	// Summary is the agent's answer, quoted in the MR description.
	Summary string
	// MR settings.
	Draft       bool
	Labels      []string
	ReviewerIDs []int64
}

// Target is where a run's branch starts and its MR goes.
type Target struct {
	Project gitlab.Project
	// Base is the branch the agent's branch starts from and the MR targets:
	// the default branch, or the source branch of the MR the command was
	// given on (a follow-up MR; a person's branch is never pushed to).
	Base      string
	Branch    string // the preferred agent/… branch name
	Protected []string
}

// Resolve finds the project, the base branch and the branch name.
func Resolve(ctx context.Context, gl GitLab, r Request) (Target, error) {
	p, err := gl.Project(ctx, r.ProjectID)
	if err != nil {
		return Target{}, fmt.Errorf("look up the project: %w", err)
	}
	t := Target{Project: p, Base: p.DefaultBranch}
	if r.Kind == "mr" {
		mr, err := gl.MergeRequest(ctx, r.ProjectID, r.IID)
		if err != nil {
			return Target{}, fmt.Errorf("look up merge request !%d: %w", r.IID, err)
		}
		t.Base = mr.SourceBranch
	}
	if t.Protected, err = gl.ProtectedBranches(ctx, r.ProjectID); err != nil {
		return Target{}, fmt.Errorf("list protected branches: %w", err)
	}
	kind := r.Kind
	if kind == "" {
		kind = "run"
	}
	t.Branch = workspace.BranchName(kind, r.IID, r.Command)
	return t, nil
}

// Commit is the commit message and trailers for a request.
func Commit(r Request) workspace.CommitInput {
	msg := "agentbot: " + oneLine(r.Command, 60)
	var body []string
	if where := r.where(); where != "" {
		body = append(body, "Requested by @"+r.RequestedBy.Username+" in "+where+".")
	}
	if len(body) > 0 {
		msg += "\n\n" + strings.Join(body, "\n")
	}
	var trailers []workspace.Trailer
	if r.RequestedBy.PublicEmail != "" {
		name := r.RequestedBy.Name
		if name == "" {
			name = r.RequestedBy.Username
		}
		trailers = append(trailers, workspace.Trailer{Key: "Co-authored-by", Value: name + " <" + r.RequestedBy.PublicEmail + ">"})
	} else if r.RequestedBy.Username != "" {
		trailers = append(trailers, workspace.Trailer{Key: "Requested-by", Value: "@" + r.RequestedBy.Username})
	}
	return workspace.CommitInput{Message: msg, Trailers: trailers}
}

func (r Request) where() string {
	switch r.Kind {
	case "issue":
		return fmt.Sprintf("#%d", r.IID)
	case "mr":
		return fmt.Sprintf("!%d", r.IID)
	}
	return ""
}

// Title is the merge request's title.
func Title(r Request) string {
	return "agentbot: " + oneLine(r.Command, 80)
}

// Description is the merge request's description: the request, who asked,
// the agent's summary, the files, and a link back (never "Closes").
func Description(r Request, files []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Request:** `%s`", InlineCode(oneLine(r.Command, 200)))
	if r.RequestedBy.Username != "" {
		fmt.Fprintf(&b, " by @%s", r.RequestedBy.Username)
	}
	if where := r.where(); where != "" {
		fmt.Fprintf(&b, " in %s", where)
		if r.Title != "" {
			fmt.Fprintf(&b, " (%s)", oneLine(r.Title, 120))
		}
	}
	b.WriteString(".\n\n")
	if s := strings.TrimSpace(r.Summary); s != "" {
		b.WriteString("### Summary\n\n")
		b.WriteString(Neutralize(Cut(s, 20000, "cut: the full answer is on the thread")))
		b.WriteString("\n\n")
	}
	b.WriteString("### Files\n\n")
	sorted := append([]string(nil), files...)
	sort.Strings(sorted)
	for _, f := range sorted {
		fmt.Fprintf(&b, "- `%s`\n", f)
	}
	fmt.Fprintf(&b, "\n---\n_Written by agentbot (run %s). Review it like any other change: the agent can be wrong._\n", r.RunID)
	return b.String()
}

// MergeRequest opens the branch's merge request, or updates the open one
// (a second command on the same thread lands on the same MR). It is safe to
// call again after a crash: the open MR is found by its source branch.
func MergeRequest(ctx context.Context, gl GitLab, r Request, t Target, branch string, files []string) (mr gitlab.MergeRequest, created bool, err error) {
	existing, found, err := gl.FindOpenMR(ctx, r.ProjectID, branch)
	if err != nil {
		return gitlab.MergeRequest{}, false, fmt.Errorf("look for the open merge request of %s: %w", branch, err)
	}
	desc := Description(r, files)
	if found {
		if existing.Description == desc {
			return existing, false, nil
		}
		mr, err := gl.UpdateMR(ctx, r.ProjectID, existing.IID, gitlab.UpdateMR{Description: &desc})
		if err != nil {
			return gitlab.MergeRequest{}, false, fmt.Errorf("update merge request !%d: %w", existing.IID, err)
		}
		return mr, false, nil
	}
	mr, err = gl.CreateMR(ctx, r.ProjectID, gitlab.NewMR{
		SourceBranch:       branch,
		TargetBranch:       t.Base,
		Title:              Title(r),
		Description:        desc,
		Draft:              r.Draft,
		Labels:             r.Labels,
		ReviewerIDs:        r.ReviewerIDs,
		RemoveSourceBranch: true,
	})
	if err != nil {
		return gitlab.MergeRequest{}, false, fmt.Errorf("open a merge request from %s into %s: %w", branch, t.Base, err)
	}
	return mr, true, nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
