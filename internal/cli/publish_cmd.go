package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"gitlab.com/agentbot/agentbot/internal/config"
	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/publish"
	"gitlab.com/agentbot/agentbot/internal/redact"
	"gitlab.com/agentbot/agentbot/internal/tools"
	"gitlab.com/agentbot/agentbot/internal/workspace"
)

// publisher is what `agentbot run --publish` / `--reply-to` does after the
// agent: the same workspace, commit, push and merge request code as serve
// (internal/workspace, internal/publish), then a note on the thread.
type publisher struct {
	ci      config.CI
	acfg    config.Agent
	gl      *gitlab.Client
	bot     gitlab.User
	req     publish.Request
	target  publish.Target // set when publishing
	thread  gitlab.Thread  // Kind "" when there is no thread to answer
	publish bool
	// confidentialHold: --publish was asked on a confidential issue and is
	// not done.
	confidentialHold bool
	redactor         *redact.Redactor
	log              *slog.Logger
	stderr           func(format string, args ...any)
}

// publishResult is what publishing made, for --json.
type publishResult struct {
	Branch          string
	Commit          string
	MergeRequestURL string
	NoteURL         string
}

// newPublisher checks everything GitLab-side before the agent runs: the
// token, the project, the thread, and (with --publish) the branch target.
func newPublisher(ctx context.Context, e *env, o runOptions, acfg config.Agent, redactor *redact.Redactor) (*publisher, error) {
	ci := o.ci
	what := "--publish"
	if !o.publish {
		what = "--reply-to"
	}
	if err := ci.RequireToken(what); err != nil {
		return nil, err
	}
	if ci.ProjectID == 0 {
		return nil, config.Problems{what + " needs the project: CI_PROJECT_ID is not set (run inside a GitLab CI job, " +
			"or set AGENTBOT_PROJECT_ID to the project's numeric id)"}
	}
	if ci.RunID == "" {
		// Outside CI with nothing to name the run: a fresh id, so no retry
		// will find this run's commit or note again.
		ci.RunID = "local-" + time.Now().UTC().Format("20060102-150405")
	}
	log := e.logger().With("project", ci.ProjectID, "run", ci.RunID)
	p := &publisher{ci: ci, acfg: acfg, publish: o.publish, redactor: redactor, log: log,
		stderr: func(format string, args ...any) { fmt.Fprintf(e.stderr, format, args...) }}

	gl, err := gitlab.New(ci.GitLab.URL, ci.GitLab.Token, gitlab.Options{Logger: log})
	if err != nil {
		return nil, config.Problems{err.Error()}
	}
	p.gl = gl
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if p.bot, err = gl.CurrentUser(ctx); err != nil {
		return nil, fmt.Errorf("find the token's user (GET /user on %s; check GITLAB_TOKEN): %w", ci.GitLab.URL, err)
	}

	p.req = publish.Request{
		ProjectID:   ci.ProjectID,
		Kind:        o.replyTo.Kind,
		IID:         o.replyTo.IID,
		Command:     o.request,
		RequestedBy: p.requester(ctx),
		RunID:       ci.RunID,
		Draft:       ci.Draft,
		Labels:      ci.Labels,
	}
	if !o.replyTo.IsZero() {
		p.thread = gitlab.Thread{ProjectID: ci.ProjectID, Kind: o.replyTo.Kind, IID: o.replyTo.IID, DiscussionID: o.replyTo.DiscussionID}
		if o.replyTo.Kind == gitlab.KindIssue {
			is, err := gl.Issue(ctx, ci.ProjectID, o.replyTo.IID)
			if err != nil {
				return nil, fmt.Errorf("--reply-to %s: %w", o.replyTo, err)
			}
			p.req.Title = is.Title
			p.thread.Internal = is.Confidential
			if is.Confidential && p.publish && !ci.ConfidentialMR {
				// As serve: a merge request would show a confidential
				// issue's work to everyone who can see the project.
				p.publish, p.confidentialHold = false, true
				p.stderr("agentbot: #%d is confidential: the files stay in the job's artifacts, no merge request "+
					"(AGENTBOT_ALLOW_CONFIDENTIAL_MR=true allows one)\n", is.IID)
			}
		} else {
			mr, err := gl.MergeRequest(ctx, ci.ProjectID, o.replyTo.IID)
			if err != nil {
				return nil, fmt.Errorf("--reply-to %s: %w", o.replyTo, err)
			}
			p.req.Title = mr.Title
		}
	}
	if o.publish {
		if p.target, err = publish.Resolve(ctx, gl, p.req); err != nil {
			return nil, err
		}
		if p.target.Base == "" {
			p.target.Base = ci.DefaultBranch
		}
		if p.target.Project.DefaultBranch == "" {
			p.target.Project.DefaultBranch = ci.DefaultBranch
		}
	}
	return p, nil
}

// requester is who asked: AGENTBOT_REQUESTED_BY (a user id, looked up for
// the Co-authored-by trailer, or a username), else who started the pipeline.
func (p *publisher) requester(ctx context.Context) gitlab.User {
	who := p.ci.RequestedBy
	if who == "" {
		return gitlab.User{}
	}
	id, err := strconv.ParseInt(who, 10, 64)
	if err != nil {
		return gitlab.User{Username: who}
	}
	u, err := p.gl.User(ctx, id)
	if err != nil {
		p.log.Warn("look up who asked", "user_id", id, "err", err)
		if p.ci.UserLogin != "" && p.ci.UserID == id {
			return gitlab.User{ID: id, Username: p.ci.UserLogin}
		}
		return gitlab.User{ID: id}
	}
	return u
}

// finish publishes the agent's files (with --publish) and answers on the
// thread (with a thread). It returns runErr, or the publishing error.
func (p *publisher) finish(ctx context.Context, out agentRun, runErr error) (publishResult, error) {
	ctx = context.WithoutCancel(ctx) // the job's files are worth landing even when it is being stopped
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var res publishResult
	if runErr != nil {
		p.failed(ctx, runErr)
		return res, runErr
	}
	var mr gitlab.MergeRequest
	var created bool
	if p.publish && len(out.written) > 0 {
		var err error
		res, mr, created, err = p.publishFiles(ctx, out)
		if err != nil {
			err = fmt.Errorf("publish the agent's files: %w", err)
			p.failed(ctx, err)
			return res, err
		}
	}
	if p.thread.Kind == "" {
		return res, nil
	}
	body := p.redactor.String(p.resultNote(out, res, mr, created))
	n, err := p.gl.PostNote(ctx, p.thread, p.noteKey("result"), body)
	if err != nil {
		return res, fmt.Errorf("post the result on %s: %w", p.thread, err)
	}
	res.NoteURL = p.noteURL(n)
	p.stderr("agentbot: answered on %s\n", p.where())
	return res, nil
}

// publishFiles fetches the project shallowly, puts the agent's files in the
// overlay, commits them on the agent/… branch, pushes, and opens or updates
// the merge request.
func (p *publisher) publishFiles(ctx context.Context, out agentRun) (publishResult, gitlab.MergeRequest, bool, error) {
	t := p.target
	policy := tools.Policy{WriteAllow: p.acfg.WriteAllow, MaxFileBytes: p.acfg.MaxFileBytes,
		MaxTotalBytes: p.acfg.MaxTotalBytes, AllowBinary: p.acfg.AllowBinary}
	ws, err := workspace.Open(ctx, workspace.Options{
		RemoteURL:      t.Project.HTTPURLToRepo,
		Token:          p.ci.GitLab.Token,
		BaseBranch:     t.Base,
		DefaultBranch:  t.Project.DefaultBranch,
		Protected:      t.Protected,
		Branch:         t.Branch,
		Author:         p.signature(),
		RunID:          p.ci.RunID,
		Policy:         policy.Check,
		MaxFileBytes:   p.acfg.MaxFileBytes,
		MaxCommitBytes: p.acfg.MaxTotalBytes,
		Logger:         p.log,
	})
	if err != nil {
		return publishResult{}, gitlab.MergeRequest{}, false, fmt.Errorf("fetch %s: %w", t.Project.PathWithNamespace, err)
	}
	defer ws.Close()
	for _, name := range out.written {
		if err := ws.FS().WriteFile(name, out.contents[name]); err != nil {
			return publishResult{}, gitlab.MergeRequest{}, false, fmt.Errorf("write %s into the commit: %w", name, err)
		}
	}
	r := p.req
	r.Summary = out.res.Answer
	c, err := ws.Commit(ctx, publish.Commit(r))
	if errors.Is(err, workspace.ErrNothingToCommit) {
		p.stderr("agentbot: the files equal %s's; nothing to commit\n", ws.Branch())
		return publishResult{Branch: ws.Branch()}, gitlab.MergeRequest{}, false, nil
	}
	if err != nil {
		return publishResult{}, gitlab.MergeRequest{}, false, fmt.Errorf("commit the files: %w", err)
	}
	if err := ws.Push(ctx); err != nil {
		return publishResult{}, gitlab.MergeRequest{}, false, err
	}
	p.stderr("agentbot: pushed %s to %s (%s)\n", shortSHA(c.Hash), ws.Branch(), listOrNone(c.Files))
	mr, created, err := publish.MergeRequest(ctx, p.gl, r, t, ws.Branch(), c.Files)
	if err != nil {
		return publishResult{Branch: ws.Branch(), Commit: c.Hash}, gitlab.MergeRequest{}, false, err
	}
	verb := "updated"
	if created {
		verb = "opened"
	}
	p.stderr("agentbot: %s merge request !%d %s\n", verb, mr.IID, mr.WebURL)
	return publishResult{Branch: ws.Branch(), Commit: c.Hash, MergeRequestURL: mr.WebURL}, mr, created, nil
}

// signature is the commit author, by the same rule as serve's.
func (p *publisher) signature() workspace.Signature {
	return botSignature(config.Server{GitName: p.ci.GitName, GitEmail: p.ci.GitEmail, GitLab: p.ci.GitLab}, p.bot)
}

// failed tells the thread, when there is one, that the run failed. It is
// best-effort: the job's log and exit status say it too.
func (p *publisher) failed(ctx context.Context, err error) {
	if p == nil || p.thread.Kind == "" || err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	where := "in `agentbot run`"
	if p.ci.InCI {
		where = "on the CI runner"
	}
	body := fmt.Sprintf("❌ `%s` failed %s: %s.", publish.InlineCode(p.req.Command), where, err.Error())
	if p.ci.JobURL != "" {
		body += fmt.Sprintf(" See [job %s](%s).", p.ci.JobID, p.ci.JobURL)
	}
	if _, perr := p.gl.PostNote(ctx, p.thread, p.noteKey("failure"), p.redactor.String(body)); perr != nil {
		p.log.Error("post the failure note", "err", perr)
	}
}

func (p *publisher) noteKey(step string) string { return "run-" + p.ci.RunID + "-ci-" + step }

func (p *publisher) where() string {
	if p.thread.Kind == gitlab.KindMR {
		return fmt.Sprintf("!%d", p.thread.IID)
	}
	return fmt.Sprintf("#%d", p.thread.IID)
}

func (p *publisher) noteURL(n gitlab.Note) string {
	base := p.target.Project.WebURL
	if base == "" || n.ID == 0 {
		return ""
	}
	kind := "issues"
	if p.thread.Kind == gitlab.KindMR {
		kind = "merge_requests"
	}
	return fmt.Sprintf("%s/-/%s/%d#note_%d", base, kind, p.thread.IID, n.ID)
}

// resultNote is the answer on the thread: the merge request, the agent's
// answer, the files and what the run cost.
func (p *publisher) resultNote(out agentRun, res publishResult, mr gitlab.MergeRequest, created bool) string {
	var b strings.Builder
	switch {
	case mr.WebURL != "":
		verb := "Updated"
		if created {
			verb = "Opened"
		}
		fmt.Fprintf(&b, "✅ %s merge request !%d: %s\n\n", verb, mr.IID, mr.WebURL)
	case len(out.written) == 0:
		b.WriteString("✅ Done. The agent wrote no files, so there is no branch and no merge request.\n\n")
	case p.confidentialHold:
		b.WriteString("✅ Done. This issue is confidential, so I did not open a merge request (it would be visible to everyone " +
			"who can see the project); the files are in the CI job's artifacts.\n\n")
	case !p.publish:
		b.WriteString("✅ Done. The files are in the job's artifacts (this run does not publish them).\n\n")
	default:
		b.WriteString("✅ Done; the files were already on the branch.\n\n")
	}
	if ans := strings.TrimSpace(out.res.Answer); ans != "" {
		b.WriteString(publish.Blockquote(publish.Neutralize(publish.Cut(ans, 50000, "answer cut; the full text is in the merge request"))))
		b.WriteString("\n\n")
	}
	if len(out.written) > 0 {
		b.WriteString("**Files:** ")
		for i, n := range out.written {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "`%s`", publish.InlineCode(n))
		}
		if res.Branch != "" {
			fmt.Fprintf(&b, " on `%s`", res.Branch)
		}
		b.WriteString("\n\n")
	}
	r := out.res
	fmt.Fprintf(&b, "<sub>`%s` · run %s", publish.InlineCode(p.req.Command), p.ci.RunID)
	if p.ci.JobURL != "" {
		fmt.Fprintf(&b, " · [CI job %s](%s)", p.ci.JobID, p.ci.JobURL)
	}
	fmt.Fprintf(&b, " · %s, %s · tokens: %d in, %d out, %d cached · ~$%.4f · %s</sub>",
		plural(r.Turns, "turn"), plural(r.ToolCalls, "tool call"), r.Usage.InputTokens, r.Usage.OutputTokens,
		r.Usage.CacheReadTokens, r.Cost, r.Duration.Round(time.Second))
	return b.String()
}

func shortSHA(h string) string {
	if len(h) > 8 {
		return h[:8]
	}
	return h
}
