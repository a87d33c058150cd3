package run

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/publish"
	"gitlab.com/agentbot/agentbot/internal/queue"
	"gitlab.com/agentbot/agentbot/internal/tools"
	"gitlab.com/agentbot/agentbot/internal/workspace"
)

// Agent runs the model loop over a workspace.
type Agent interface {
	// Run works on task in fsys and returns what the loop returned; the
	// files it wrote are read back from fsys by the caller.
	Run(ctx context.Context, fsys tools.FS, task Task) (*agent.Result, error)
}

// Task is one request for the agent.
type Task struct {
	Command command.Command
	// Context is untrusted text from GitLab (the issue, the thread),
	// already sanitised and delimited, added to the user's message.
	Context string
	OnEvent func(agent.Event)
	// Tools are added to the agent's built-in ones (the progress tool).
	Tools []agent.Tool

	// Prompt, when set, is the user's message instead of one made from
	// Command: a custom command's expanded prompt, a review's or a
	// diagnosis's request.
	Prompt string
	// Instructions are the project's own (AGENTS.md), already bounded and
	// delimited, for the system prompt.
	Instructions string
	// ReadOnly runs the agent without its write tools (a review, a
	// diagnosis, a custom command with allow_files: false).
	ReadOnly bool
	// Limits are the project's, within the operator's bounds.
	Limits Limits
}

// agentOutput is the agent step's checkpoint: enough to publish and report
// without running the model again after a crash.
type agentOutput struct {
	Answer    string            `json:"answer"`
	Outcome   agent.Outcome     `json:"outcome"`
	Message   string            `json:"message"`
	Usage     agent.Usage       `json:"usage"`
	Cost      float64           `json:"cost"`
	Turns     int               `json:"turns"`
	ToolCalls int               `json:"tool_calls"`
	Seconds   float64           `json:"seconds"`
	Files     map[string][]byte `json:"files"`
	Base      string            `json:"base"`
	Branch    string            `json:"branch"`
}

func (o agentOutput) fileNames() []string {
	names := make([]string, 0, len(o.Files))
	for n := range o.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type pushed struct {
	Branch string   `json:"branch"`
	Commit string   `json:"commit"`
	Files  []string `json:"files"`
}

type mergeRequest struct {
	IID     int64  `json:"iid"`
	WebURL  string `json:"web_url"`
	Created bool   `json:"created"`
}

// agentRun is a command that needs the agent: a progress note, the agent in
// a workspace, a commit and a merge request, and the final report.
func (s *state) agentRun(ctx context.Context) error {
	defer s.closeWorkspace()
	a := s.job.Args
	var progress struct{ NoteID int64 }
	if err := s.once(ctx, "progress", &progress, func() (any, error) {
		n, err := s.gl.PostNote(ctx, s.thread, s.noteKey("progress"), s.progressBody("⏳ Working on it…"))
		progress.NoteID = n.ID
		return progress, err
	}); err != nil {
		return fmt.Errorf("post the progress note: %w", err)
	}
	s.progressID = progress.NoteID

	// Runs on one issue or MR go one at a time: they push to one branch.
	release, err := s.lockThread(ctx)
	if err != nil {
		return err
	}
	defer release()

	if s.cfg.Executor == "pipeline" {
		return s.inPipeline(ctx)
	}

	p := newProgress()
	header := s.progressBody("⏳ Working on it…")
	followCtx, stopFollowing := context.WithCancel(ctx)
	following := make(chan struct{})
	go func() {
		defer close(following)
		p.follow(followCtx, func(body string) error {
			return s.gl.UpdateNote(ctx, s.thread, s.progressID, s.noteKey("progress"), s.redact(body))
		}, header)
	}()
	var out agentOutput
	err = s.once(ctx, "agent", &out, func() (any, error) { return s.runAgent(ctx, p) })
	stopFollowing()
	<-following
	if err != nil {
		return err
	}

	confidentialHold := a.Confidential && !s.cfg.ConfidentialMR
	var mr mergeRequest
	var push pushed
	if len(out.Files) > 0 && out.Outcome == agent.OutcomeDone && !confidentialHold {
		if err := s.once(ctx, "push", &push, func() (any, error) { return s.push(ctx, out) }); err != nil {
			return err
		}
		if err := s.once(ctx, "mr", &mr, func() (any, error) { return s.mergeRequest(ctx, out, push) }); err != nil {
			return err
		}
	}
	// The reactions go first and the answer last: an answer on the thread
	// means the run is over, reactions included. Every call is idempotent,
	// so a failure anywhere retries the whole step.
	return s.once(ctx, "report", nil, func() (any, error) {
		if a.NoteID != 0 { // a pipeline rule's run has no note to react to
			emoji := "white_check_mark"
			if out.Outcome != agent.OutcomeDone {
				emoji = "x"
			}
			if err := s.gl.AwardEmoji(ctx, s.thread, a.NoteID, emoji); err != nil {
				return nil, fmt.Errorf("react to the note: %w", err)
			}
			if err := s.gl.RemoveEmoji(ctx, s.thread, a.NoteID, "eyes"); err != nil {
				return nil, fmt.Errorf("remove 👀 from the note: %w", err)
			}
		}
		body := s.redact(finalReport(s.job.ID, a.Command, out, push, mr, confidentialHold))
		if err := s.gl.UpdateNote(ctx, s.thread, s.progressID, s.noteKey("progress"), body); err != nil {
			return nil, fmt.Errorf("post the answer: %w", err)
		}
		return nil, nil
	})
}

func (s *state) request(summary string) publish.Request {
	a := s.job.Args
	r := publish.Request{
		ProjectID:   a.ProjectID,
		Kind:        a.ThreadKind,
		IID:         a.IID,
		Title:       a.Title,
		Command:     commandText(a.Command),
		RequestedBy: gitlab.User{ID: a.AuthorID, Username: a.AuthorUsername},
		RunID:       fmt.Sprint(s.job.ID),
		Summary:     summary,
		Draft:       s.cfg.Draft,
		Labels:      s.cfg.Labels,
		ReviewerIDs: s.cfg.ReviewerIDs,
	}
	s.projectMR(&r) // repoconfig.go
	return r
}

// openWorkspace fetches the project (once per attempt).
func (s *state) openWorkspace(ctx context.Context) (*workspace.Workspace, publish.Target, error) {
	if s.ws != nil {
		return s.ws, s.target, nil
	}
	t, err := publish.Resolve(ctx, s.gl, s.request(""))
	if err != nil {
		return nil, t, err
	}
	s.projectTarget(&t) // repoconfig.go
	g := s.cfg.Git
	ws, err := workspace.Open(ctx, workspace.Options{
		RemoteURL:      t.Project.HTTPURLToRepo,
		Token:          g.Token,
		BaseBranch:     t.Base,
		DefaultBranch:  t.Project.DefaultBranch,
		Protected:      t.Protected,
		Branch:         t.Branch,
		Author:         g.Author,
		RunID:          fmt.Sprint(s.job.ID),
		TempDir:        g.TempDir,
		Policy:         g.Policy,
		MaxFileBytes:   g.MaxFileBytes,
		MaxCommitBytes: g.MaxCommitBytes,
		Logger:         s.log,
	})
	if err != nil {
		return nil, t, fmt.Errorf("fetch %s: %w", t.Project.PathWithNamespace, err)
	}
	s.ws, s.target = ws, t
	return ws, t, nil
}

func (s *state) closeWorkspace() {
	if s.ws != nil {
		if err := s.ws.Close(); err != nil {
			s.log.Warn("remove the workspace", "err", err)
		}
		s.ws = nil
	}
}

func (s *state) runAgent(ctx context.Context, p *progress) (agentOutput, error) {
	if s.cfg.Agent == nil {
		return agentOutput{}, Permanent(errors.New("no agent configured"))
	}
	p.doing("fetching the repository")
	ws, t, err := s.openWorkspace(ctx)
	if err != nil {
		return agentOutput{}, err
	}
	p.done(fmt.Sprintf("fetched `%s` (no checkout)", t.Base))
	a := s.job.Args
	untrusted, err := s.threadContext(ctx)
	if err != nil {
		return agentOutput{}, err
	}
	task := Task{
		Command: a.Command,
		Context: untrusted,
		OnEvent: p.event(s.cfg.MaxTurns),
		Tools:   []agent.Tool{progressTool{p}},
	}
	s.applyProject(&task) // repoconfig.go
	res, err := s.cfg.Agent.Run(ctx, s.projectFS(ws.FS(), task.ReadOnly), task)
	if res == nil {
		return agentOutput{}, fmt.Errorf("run the agent: %w", err)
	}
	if ctx.Err() != nil || res.Outcome == agent.OutcomeCanceled {
		// Shutting down (or the job's time is up): not a result to keep;
		// the run goes back to the queue.
		return agentOutput{}, fmt.Errorf("run the agent: interrupted: %w", cmp.Or(ctx.Err(), err))
	}
	var stop *agent.StopError
	if err != nil && errors.As(err, &stop) && stop.Outcome == agent.OutcomeModelError {
		// The model could not be reached or refused the request: the queue
		// retries what may pass (throttling), the rest is reported.
		return agentOutput{}, fmt.Errorf("call the model: %w", err)
	}
	out := agentOutput{
		Answer: res.Answer, Outcome: res.Outcome, Message: res.Message, Usage: res.Usage, Cost: res.Cost,
		Turns: res.Turns, ToolCalls: res.ToolCalls, Seconds: res.Duration.Seconds(),
		Files: map[string][]byte{}, Base: t.Base, Branch: ws.Branch(),
	}
	for _, name := range ws.FS().Changed() {
		data, err := ws.FS().ReadFile(name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return agentOutput{}, fmt.Errorf("read back %s: %w", name, err)
		}
		// Secrets pasted into an issue must not be committed either.
		if s.cfg.Redact != nil && utf8.Valid(data) {
			data = []byte(s.cfg.Redact(string(data)))
		}
		out.Files[name] = data
	}
	s.log.Info("agent finished", "outcome", res.Outcome, "turns", res.Turns, "files", len(out.Files),
		"input_tokens", res.Usage.InputTokens, "output_tokens", res.Usage.OutputTokens, "cost_usd", res.Cost)
	return out, nil
}

func (s *state) push(ctx context.Context, out agentOutput) (pushed, error) {
	ws, _, err := s.openWorkspace(ctx)
	if err != nil {
		return pushed{}, err
	}
	// After a crash the overlay is new: put the agent's files back.
	for _, name := range out.fileNames() {
		if err := ws.FS().WriteFile(name, out.Files[name]); err != nil {
			return pushed{}, Permanent(fmt.Errorf("write %s into the commit: %w", name, err))
		}
	}
	r := s.request(out.Answer)
	if u, err := s.gl.User(ctx, s.job.Args.AuthorID); err == nil {
		r.RequestedBy = u
	}
	c, err := ws.Commit(ctx, publish.Commit(r))
	if errors.Is(err, workspace.ErrNothingToCommit) {
		return pushed{Branch: ws.Branch()}, nil
	}
	if err != nil {
		return pushed{}, Permanent(fmt.Errorf("commit the files: %w", err))
	}
	if err := ws.Push(ctx); err != nil {
		return pushed{}, fmt.Errorf("push %s: %w", ws.Branch(), err)
	}
	s.log.Info("pushed", "branch", ws.Branch(), "commit", c.Hash, "files", len(c.Files))
	return pushed{Branch: ws.Branch(), Commit: c.Hash, Files: c.Files}, nil
}

func (s *state) mergeRequest(ctx context.Context, out agentOutput, p pushed) (mergeRequest, error) {
	if p.Commit == "" {
		return mergeRequest{}, nil
	}
	r := s.request(out.Answer)
	t := publish.Target{Base: out.Base}
	mr, created, err := publish.MergeRequest(ctx, s.gl, r, t, p.Branch, p.Files)
	if err != nil {
		return mergeRequest{}, err
	}
	return mergeRequest{IID: mr.IID, WebURL: mr.WebURL, Created: created}, nil
}

func threadNoun(kind string) string {
	if kind == "mr" {
		return "merge request"
	}
	return "issue"
}

func (s *state) progressBody(status string) string {
	return fmt.Sprintf("%s\n\n`%s` · run %d · started %s", status, strings.ReplaceAll(commandText(s.job.Args.Command), "`", "'"),
		s.job.ID, time.Now().UTC().Format("15:04 UTC"))
}

func commandText(c command.Command) string {
	switch c.Kind {
	case command.Analyze:
		return "analyze " + c.Ticker
	case command.Freeform:
		return c.Request
	}
	return strings.TrimSpace(c.Verb + " " + strings.Join(c.Args, " "))
}

func finalReport(runID int64, c command.Command, out agentOutput, p pushed, mr mergeRequest, confidentialHold bool) string {
	var b strings.Builder
	switch {
	case out.Outcome != agent.OutcomeDone:
		fmt.Fprintf(&b, "❌ The agent stopped before finishing: %s\n\n", out.Message)
	case mr.WebURL != "":
		verb := "Updated"
		if mr.Created {
			verb = "Opened"
		}
		fmt.Fprintf(&b, "✅ %s merge request !%d: %s\n\n", verb, mr.IID, mr.WebURL)
	case confidentialHold && len(out.Files) > 0:
		b.WriteString("✅ Done. This issue is confidential, so I did not open a merge request (it would be visible to everyone who can see the project); the files are listed below and the answer is here.\n\n")
	case len(out.Files) == 0:
		b.WriteString("✅ Done. The agent wrote no files, so there is no branch and no merge request.\n\n")
	default:
		b.WriteString("✅ Done; the files were already on the branch.\n\n")
	}
	if ans := strings.TrimSpace(out.Answer); ans != "" {
		b.WriteString(publish.Blockquote(publish.Neutralize(bounded(ans, 50000))))
		b.WriteString("\n\n")
	}
	if names := out.fileNames(); len(names) > 0 {
		b.WriteString("**Files:** ")
		for i, n := range names {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "`%s`", n)
		}
		if p.Branch != "" {
			fmt.Fprintf(&b, " on `%s`", p.Branch)
		}
		b.WriteString("\n\n")
	}
	fmt.Fprintf(&b, "<sub>`%s` · run %d · %d turns, %d tool calls · tokens: %d in, %d out, %d cached · ~$%.4f · %s</sub>",
		strings.ReplaceAll(commandText(c), "`", "'"), runID, out.Turns, out.ToolCalls,
		out.Usage.InputTokens, out.Usage.OutputTokens, out.Usage.CacheReadTokens, out.Cost,
		(time.Duration(out.Seconds * float64(time.Second))).Round(time.Second))
	return b.String()
}

// snoozeWhileQueued is how long a run waits before looking at the thread's
// lock again.
const snoozeWhileQueued = 3 * time.Second

// lockThread takes the thread's lock, or snoozes the job (without counting
// an attempt) after saying on the progress note which run it waits for.
func (s *state) lockThread(ctx context.Context) (release func(), err error) {
	a := s.job.Args
	key := fmt.Sprintf("thread/%d/%s/%d", a.ProjectID, a.ThreadKind, a.IID)
	ttl := s.cfg.LockTTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	holder, ok, err := s.job.Locks.TryLock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	if !ok {
		if holder != 0 {
			if err := s.once(ctx, "queued", nil, func() (any, error) {
				what := "merge request"
				if a.ThreadKind == "issue" {
					what = "issue"
				}
				body := s.progressBody(fmt.Sprintf("⏸ Queued behind run %d on this %s; I'll start when it has finished.", holder, what))
				return nil, s.gl.UpdateNote(ctx, s.thread, s.progressID, s.noteKey("progress"), body)
			}); err != nil {
				return nil, err
			}
		}
		s.log.Info("queued behind another run on the thread", "holder", holder)
		return nil, queue.Snooze(snoozeWhileQueued)
	}
	release = func() {
		if err := s.job.Locks.Unlock(context.WithoutCancel(ctx), key); err != nil {
			s.log.Warn("release the thread's lock", "err", err)
		}
	}
	// A per-project cap keeps one busy project from taking every worker.
	if limit := s.cfg.ProjectRuns; limit > 0 {
		n, err := s.job.Locks.Held(ctx, fmt.Sprintf("thread/%d/", a.ProjectID))
		if err != nil {
			release()
			return nil, err
		}
		if n > limit {
			release()
			s.log.Info("queued behind the project's cap", "runs", n-1, "cap", limit)
			return nil, queue.Snooze(snoozeWhileQueued)
		}
	}
	return release, nil
}

// rateLimited counts this run against its author's hourly budget and, when
// it is spent, says so on the thread; true means stop.
func (s *state) rateLimited(ctx context.Context) (bool, error) {
	limit := s.cfg.UserRunsPerHour
	a := s.job.Args
	if limit <= 0 || a.AuthorID == 0 {
		return false, nil
	}
	n, err := s.job.Locks.Use(ctx, fmt.Sprintf("user/%d", a.AuthorID), time.Hour)
	if err != nil {
		return false, err
	}
	if n <= limit {
		return false, nil
	}
	s.log.Info("rate limited", "author", a.AuthorUsername, "runs_last_hour", n-1, "limit", limit)
	return true, s.reply(ctx, "rate-limited", fmt.Sprintf(
		"Sorry @%s, you have asked me for %d runs in the last hour, the most this instance allows "+
			"(AGENTBOT_USER_RUNS_PER_HOUR=%d). Please try again later.", a.AuthorUsername, n-1, limit))
}

// bounded cuts an answer for a note.
func bounded(s string, n int) string {
	return publish.Cut(s, n, "answer cut; the full text is in the merge request")
}
