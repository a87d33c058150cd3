package run

import (
	"context"
	"errors"
	"fmt"
	"gitlab.com/agentbot/agentbot/internal/publish"
	"regexp"
	"strconv"
	"strings"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/queue"
	"gitlab.com/agentbot/agentbot/internal/repoconfig"
	"gitlab.com/agentbot/agentbot/internal/workspace"
)

// Bounds of a diagnosis.
const (
	maxDiagnosedJobs = 5
	maxTraceBytes    = 64 << 10 // read from the end of each failed job's log
	maxTailBytes     = 12 << 10 // of each log, given to the agent
	maxErrorLines    = 12       // quoted per job in the note
	maxErrorLineLen  = 300
)

// pipelineEvent runs the first of the project's pipeline rules that matches
// the event, if any. The webhook never sends the bot's own pipelines here,
// and rules never match agent/ branches, so a rule cannot start itself
// again. A pipeline event that matches nothing ends silently.
func (s *state) pipelineEvent(ctx context.Context) error {
	a := &s.job.Args
	if err := s.loadProject(ctx); err != nil {
		return err
	}
	p := s.project
	if p.Invalid != nil {
		s.log.Warn("the project's .agentbot.yml has problems; no pipeline rule runs", "problems", p.Invalid.Error())
		return nil
	}
	rule, ok := p.Config.Match(repoconfig.Pipeline{Status: a.PipelineStatus, Ref: a.Ref, Source: a.Source})
	if !ok {
		s.log.Debug("no pipeline rule matches", "status", a.PipelineStatus, "ref", a.Ref, "source", a.Source)
		return nil
	}
	s.log = s.log.With("rule", rule.Name, "pipeline", a.PipelineID)

	// The pipeline's user (who pushed, or owns the schedule) must be
	// allowed to use the bot, as for a command.
	level, err := s.authorLevel(ctx)
	if err != nil {
		return err
	}
	if level < s.minAccess() {
		s.log.Info("pipeline rule not run: the pipeline's user may not use the bot", "user", a.AuthorUsername, "level", level)
		return nil
	}

	// The merge request to report on: the pipeline's, else the open one
	// from its branch.
	if a.ThreadKind == "" && rule.Report != repoconfig.ReportMR {
		var mr struct {
			IID   int64  `json:"iid"`
			Title string `json:"title"`
		}
		if err := s.once(ctx, "find-mr", &mr, func() (any, error) {
			m, found, err := s.gl.FindOpenMR(ctx, a.ProjectID, strings.TrimPrefix(a.Ref, "refs/heads/"))
			if found {
				mr.IID, mr.Title = m.IID, m.Title
			}
			return mr, err
		}); err != nil {
			return fmt.Errorf("find the merge request of %s: %w", a.Ref, err)
		}
		if mr.IID != 0 {
			a.ThreadKind, a.IID, a.Title = gitlab.KindMR, mr.IID, mr.Title
			s.thread = gitlab.Thread{ProjectID: a.ProjectID, Kind: gitlab.KindMR, IID: mr.IID}
		}
	}
	onMR := a.ThreadKind == gitlab.KindMR

	switch rule.Command {
	case "diagnose":
		if !onMR {
			s.log.Info("pipeline rule not run: no merge request to report on")
			return nil
		}
		a.Command = command.Command{Kind: command.Diagnose, Verb: "diagnose", Request: "diagnose"}
		return s.diagnose(ctx, gitlab.Pipeline{ID: a.PipelineID, IID: a.PipelineIID, ProjectID: a.ProjectID,
			Status: a.PipelineStatus, Ref: a.Ref, SHA: a.HeadSHA, Source: a.Source}, rule.Name)
	case "review":
		if !onMR {
			s.log.Info("pipeline rule not run: no merge request to review")
			return nil
		}
		a.Command = command.Command{Kind: command.Review, Verb: "review", Request: "review"}
		return s.review(ctx)
	}

	cmd, err := s.ruleCommand(rule)
	if err != nil {
		return err
	}
	a.Command = cmd
	switch {
	case onMR && rule.Report == repoconfig.ReportNote:
		p.readOnly = true
		return s.agentRun(ctx)
	case onMR && rule.Report == repoconfig.ReportBoth:
		return s.agentRun(ctx)
	case rule.Report == repoconfig.ReportNote:
		s.log.Info("pipeline rule not run: no merge request to report on")
		return nil
	}
	if !onMR {
		// A run of its own: its branch is agent/run-<pipeline iid>-<rule>.
		a.ThreadKind, a.IID = "", a.PipelineIID
		s.thread = gitlab.Thread{ProjectID: a.ProjectID}
	}
	return s.publishRun(ctx)
}

// ruleCommand is the command a rule runs; a prompt rule runs its prompt,
// shown (and its branch named) by the rule's name.
func (s *state) ruleCommand(rule repoconfig.Rule) (command.Command, error) {
	p := s.project
	switch {
	case rule.Prompt != "":
		p.prompt = rule.Prompt
		return command.Command{Kind: command.Freeform, Request: rule.Name}, nil
	case rule.Command == "analyze":
		if len(rule.Args) != 1 {
			return command.Command{}, Permanent(fmt.Errorf("rule %q: analyze takes one ticker", rule.Name))
		}
		t, ok := command.NormalizeTicker(rule.Args[0])
		if !ok {
			return command.Command{}, Permanent(fmt.Errorf("rule %q: %q is not a ticker", rule.Name, rule.Args[0]))
		}
		return command.Command{Kind: command.Analyze, Verb: "analyze", Args: []string{t}, Ticker: t, Request: "analyze " + t}, nil
	}
	text, err := p.Config.Expand(rule.Command, rule.Args)
	if err != nil {
		return command.Command{}, Permanent(fmt.Errorf("rule %q: %w", rule.Name, err))
	}
	c, _ := p.Config.Command(rule.Command)
	p.prompt, p.readOnly = text, !c.AllowFiles
	return command.Command{Kind: command.Custom, Verb: c.Verb, Args: rule.Args,
		Request: strings.TrimSpace(c.Verb + " " + strings.Join(rule.Args, " "))}, nil
}

// publishRun runs the agent and opens a merge request with what it wrote,
// with no thread to post on (a scheduled report).
func (s *state) publishRun(ctx context.Context) error {
	defer s.closeWorkspace()
	if s.cfg.Agent == nil {
		// The pipeline executor reports on a thread, and this run has none.
		s.log.Warn("pipeline rule not run: a report without a merge request needs the local executor", "executor", s.cfg.Executor)
		return nil
	}
	var out agentOutput
	if err := s.once(ctx, "agent", &out, func() (any, error) { return s.runAgent(ctx, newProgress()) }); err != nil {
		return err
	}
	if out.Outcome != agent.OutcomeDone || len(out.Files) == 0 {
		s.log.Info("nothing to publish", "outcome", out.Outcome, "files", len(out.Files), "message", out.Message)
		return nil
	}
	var push pushed
	if err := s.once(ctx, "push", &push, func() (any, error) { return s.push(ctx, out) }); err != nil {
		return err
	}
	var mr mergeRequest
	if err := s.once(ctx, "mr", &mr, func() (any, error) { return s.mergeRequest(ctx, out, push) }); err != nil {
		return err
	}
	s.log.Info("published", "branch", push.Branch, "mr", mr.IID, "created", mr.Created)
	return nil
}

// diagnoseKey marks the diagnosis of one pipeline: it is posted once.
func diagnoseKey(pipelineID int64) string { return "diagnose-" + strconv.FormatInt(pipelineID, 10) }

// diagnoseCommand is "/agent diagnose" on a merge request: the latest
// pipeline of its source branch, when it failed.
func (s *state) diagnoseCommand(ctx context.Context) error {
	a := s.job.Args
	if a.ThreadKind != gitlab.KindMR {
		return s.reply(ctx, "reply", "`diagnose` works on merge requests only: it looks into the merge request's failed pipeline.")
	}
	var found struct {
		Pipeline gitlab.Pipeline `json:"pipeline"`
		Found    bool            `json:"found"`
	}
	if err := s.once(ctx, "find-pipeline", &found, func() (any, error) {
		mr, err := s.gl.MergeRequest(ctx, a.ProjectID, a.IID)
		if err != nil {
			return nil, fmt.Errorf("look up merge request !%d: %w", a.IID, err)
		}
		found.Pipeline, found.Found, err = s.gl.LatestPipeline(ctx, a.ProjectID, mr.SourceBranch,
			fmt.Sprintf("refs/merge-requests/%d/head", a.IID))
		return found, err
	}); err != nil {
		return err
	}
	switch pl := found.Pipeline; {
	case !found.Found:
		return s.reply(ctx, "reply", "This merge request has no pipeline, so there is nothing to diagnose.")
	case pl.Status != "failed":
		return s.reply(ctx, "reply", fmt.Sprintf("The latest pipeline of this merge request, [#%d](%s), is `%s`, not failed: nothing to diagnose.",
			pl.ID, pl.WebURL, strings.ReplaceAll(pl.Status, "`", "")))
	}
	return s.diagnose(ctx, found.Pipeline, "")
}

// failedJob is one failed job as the note shows it.
type failedJob struct {
	Name       string   `json:"name"`
	Stage      string   `json:"stage"`
	Reason     string   `json:"reason"`
	WebURL     string   `json:"web_url"`
	ErrorLines []string `json:"error_lines"`
}

// diagnosis is the agent step's checkpoint.
type diagnosis struct {
	agentOutput
	Pipeline gitlab.Pipeline `json:"pipeline"`
	Jobs     []failedJob     `json:"jobs"`
	More     int             `json:"more"` // failed jobs not read
}

// diagnose reads the logs of a pipeline's failed jobs, asks the agent for
// the likely cause, and answers on the merge request once per pipeline.
func (s *state) diagnose(ctx context.Context, pl gitlab.Pipeline, rule string) error {
	defer s.closeWorkspace()
	a := s.job.Args
	if s.cfg.Agent == nil {
		return Permanent(errors.New("a diagnosis runs the agent in agentbot itself, and this agentbot has no agent (executor " + s.cfg.Executor + ")"))
	}
	key := diagnoseKey(pl.ID)
	mrThread := gitlab.Thread{ProjectID: a.ProjectID, Kind: gitlab.KindMR, IID: a.IID}
	var seen struct{ NoteID int64 }
	if err := s.once(ctx, "diagnose-target", &seen, func() (any, error) {
		n, found, err := s.gl.FindNote(ctx, mrThread, key)
		if found {
			seen.NoteID = n.ID
		}
		return seen, err
	}); err != nil {
		return fmt.Errorf("look for an earlier diagnosis: %w", err)
	}
	if seen.NoteID != 0 {
		s.log.Info("pipeline diagnosed already", "note", seen.NoteID)
		if a.Trigger != queue.TriggerNote {
			return nil
		}
		return s.reply(ctx, "reply", fmt.Sprintf("I already looked into pipeline #%d on this merge request: see my note above.", pl.ID))
	}

	var progress struct{ NoteID int64 }
	if err := s.once(ctx, "progress", &progress, func() (any, error) {
		n, err := s.gl.PostNote(ctx, s.thread, key, s.progressBody(fmt.Sprintf("⏳ Looking into why pipeline #%d failed…", pl.ID)))
		progress.NoteID = n.ID
		return progress, err
	}); err != nil {
		return fmt.Errorf("post the progress note: %w", err)
	}
	s.progressID = progress.NoteID

	var d diagnosis
	if err := s.once(ctx, "agent", &d, func() (any, error) { return s.runDiagnosis(ctx, pl) }); err != nil {
		return err
	}
	return s.once(ctx, "report", nil, func() (any, error) {
		body := s.redact(diagnosisReport(s.job.ID, s.job.Args.Command, rule, d))
		if err := s.gl.UpdateNote(ctx, s.thread, s.progressID, key, body); err != nil {
			return nil, fmt.Errorf("post the diagnosis: %w", err)
		}
		s.finishReaction(ctx, d.Outcome == agent.OutcomeDone)
		return nil, nil
	})
}

func (s *state) runDiagnosis(ctx context.Context, pl gitlab.Pipeline) (diagnosis, error) {
	a := s.job.Args
	if fresh, err := s.gl.Pipeline(ctx, a.ProjectID, pl.ID); err == nil {
		pl = fresh
	} else if !errors.Is(err, gitlab.ErrNotFound) {
		return diagnosis{}, fmt.Errorf("look up pipeline #%d: %w", pl.ID, err)
	}
	jobs, err := s.gl.PipelineJobs(ctx, a.ProjectID, pl.ID, "failed")
	if err != nil {
		return diagnosis{}, fmt.Errorf("list the failed jobs of pipeline #%d: %w", pl.ID, err)
	}
	d := diagnosis{Pipeline: pl}
	if len(jobs) == 0 {
		d.agentOutput = agentOutput{Outcome: agent.OutcomeDone,
			Answer: fmt.Sprintf("Pipeline #%d has no failed jobs (its status is `%s`), so there is no log to read.", pl.ID, pl.Status)}
		return d, nil
	}
	if len(jobs) > maxDiagnosedJobs {
		d.More = len(jobs) - maxDiagnosedJobs
		jobs = jobs[:maxDiagnosedJobs]
	}
	var logs strings.Builder
	fmt.Fprintf(&logs, "Pipeline #%d on %s (commit %s, source %s) failed.\n", pl.ID, pl.Ref, pl.SHA, pl.Source)
	for _, j := range jobs {
		trace, err := s.gl.JobTrace(ctx, a.ProjectID, j.ID, maxTraceBytes)
		if err != nil {
			return diagnosis{}, fmt.Errorf("read the log of job %s: %w", j.Name, err)
		}
		text := s.redact(cleanLog(trace))
		d.Jobs = append(d.Jobs, failedJob{Name: j.Name, Stage: j.Stage, Reason: j.FailureReason, WebURL: j.WebURL,
			ErrorLines: errorLines(text, maxErrorLines)})
		fmt.Fprintf(&logs, "\n=== job %s (stage %s, failure reason %s), the end of its log:\n%s\n", j.Name, j.Stage, j.FailureReason, tail(text, maxTailBytes))
	}

	branch := strings.TrimPrefix(pl.Ref, "refs/heads/")
	if a.ThreadKind == gitlab.KindMR {
		if mr, err := s.gl.MergeRequest(ctx, a.ProjectID, a.IID); err == nil {
			branch = mr.SourceBranch
		}
	}
	ws, err := s.openReadOnly(ctx, branch, workspace.BranchName("diagnose", pl.ID, ""))
	if err != nil {
		return diagnosis{}, err
	}
	task := Task{
		Command: a.Command,
		Prompt: fmt.Sprintf("Pipeline #%d of merge request !%d failed. The end of each failed job's log is below. "+
			"Find the likely cause: read the project's files (such as .gitlab-ci.yml and what the failing job runs) with file_read and list_files "+
			"when that helps; you cannot change files. Answer in Markdown, briefly: the likely cause first, with the log lines that show it, "+
			"then how to fix it. Say so when the logs do not show the cause.", pl.ID, a.IID),
		Context:  untrusted(logs.String()),
		ReadOnly: true,
	}
	s.applyProject(&task)
	out, err := s.callAgent(ctx, readOnlyFS{ws.FS()}, task)
	if err != nil {
		return diagnosis{}, err
	}
	d.agentOutput = out
	s.log.Info("diagnosis finished", "outcome", out.Outcome, "jobs", len(d.Jobs))
	return d, nil
}

func diagnosisReport(runID int64, c command.Command, rule string, d diagnosis) string {
	var b strings.Builder
	pl := d.Pipeline
	ref := "#" + strconv.FormatInt(pl.ID, 10)
	if pl.WebURL != "" {
		ref = "[" + ref + "](" + pl.WebURL + ")"
	}
	if d.Outcome != agent.OutcomeDone {
		fmt.Fprintf(&b, "❌ The diagnosis of pipeline %s stopped before finishing: %s\n\n", ref, d.Message)
	} else {
		fmt.Fprintf(&b, "🔍 **Why pipeline %s failed**", ref)
		if rule != "" {
			fmt.Fprintf(&b, " (rule `%s` of `.agentbot.yml`)", strings.ReplaceAll(rule, "`", "'"))
		}
		b.WriteString("\n\n")
	}
	if ans := strings.TrimSpace(d.Answer); ans != "" {
		b.WriteString(publish.Neutralize(bounded(ans, 30000)) + "\n\n")
	}
	if len(d.Jobs) > 0 {
		b.WriteString("**Failed jobs**\n\n")
		for _, j := range d.Jobs {
			name := "`" + strings.ReplaceAll(j.Name, "`", "'") + "`"
			if j.WebURL != "" {
				name = "[" + name + "](" + j.WebURL + ")"
			}
			fmt.Fprintf(&b, "- %s (stage `%s`", name, strings.ReplaceAll(j.Stage, "`", "'"))
			if j.Reason != "" {
				fmt.Fprintf(&b, ", `%s`", strings.ReplaceAll(j.Reason, "`", "'"))
			}
			b.WriteString(")")
			if len(j.ErrorLines) == 0 {
				b.WriteString("\n")
				continue
			}
			fence := fenceFor(j.ErrorLines)
			b.WriteString(":\n\n  " + fence + "text\n")
			for _, l := range j.ErrorLines {
				b.WriteString("  " + l + "\n")
			}
			b.WriteString("  " + fence + "\n")
		}
		if d.More > 0 {
			fmt.Fprintf(&b, "- … and %d more failed jobs, not read\n", d.More)
		}
		b.WriteString("\n")
	}
	b.WriteString(usageLine(runID, c, d.agentOutput))
	return b.String()
}

// fenceFor is a code fence longer than any run of backticks in lines.
func fenceFor(lines []string) string {
	n := 3
	for _, l := range lines {
		run := 0
		for _, r := range l {
			if r == '`' {
				run++
				n = max(n, run+1)
			} else {
				run = 0
			}
		}
	}
	return strings.Repeat("`", n)
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?`)

// cleanLog turns a CI log into plain lines: no terminal colours, and a line
// rewritten with carriage returns (GitLab's section markers, progress bars)
// keeps only what a terminal would show last.
func cleanLog(trace string) string {
	trace = ansiRE.ReplaceAllString(trace, "")
	lines := strings.Split(trace, "\n")
	out := lines[:0]
	for _, l := range lines {
		l = strings.TrimRight(l, "\r")
		if i := strings.LastIndexByte(l, '\r'); i >= 0 {
			l = l[i+1:]
		}
		l = strings.Map(func(r rune) rune {
			if r == '\t' || r >= ' ' && r != 0x7f {
				return r
			}
			return -1
		}, l)
		if strings.HasPrefix(l, "section_start:") || strings.HasPrefix(l, "section_end:") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// errorRE finds the lines of a log that say what went wrong.
var errorRE = regexp.MustCompile(`(?i)\b(error|errors|err|fail|failed|failure|fatal|exception|traceback|panic|denied|cannot|can't|could not|not found|no such|undefined|exit code|exit status|assert\w*|mismatch|does not match|expected)\b`)

// errorLines are the last n lines of log that look like errors, or its last
// non-blank lines when none does.
func errorLines(log string, n int) []string {
	lines := strings.Split(log, "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && errorRE.MatchString(l) {
			out = append(out, cutBytes(l, maxErrorLineLen))
		}
	}
	if len(out) == 0 {
		for i := len(lines) - 1; i >= 0 && len(out) < 5; i-- {
			if l := strings.TrimSpace(lines[i]); l != "" {
				out = append(out, cutBytes(l, maxErrorLineLen))
			}
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// tail is the end of s, at most n bytes, from a line start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < n/2 {
		s = s[i+1:]
	}
	return "(…)\n" + s
}
