package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"gitlab.com/agentbot/agentbot/internal/publish"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/queue"
	"gitlab.com/agentbot/agentbot/internal/sanitize"
	"gitlab.com/agentbot/agentbot/internal/tools"
	"gitlab.com/agentbot/agentbot/internal/workspace"
)

// Bounds of a review.
const (
	maxDiffBytes     = 150 << 10 // the diff shown to the agent, all files
	maxFileDiffBytes = 30 << 10  // one file's part of it
	maxCommentBytes  = 4000      // one inline comment
	maxOtherFindings = 30        // findings listed in the summary
)

// reviewTarget is the review's first checkpoint: the head it reviews, and
// whether that head was reviewed already.
type reviewTarget struct {
	Head         string `json:"head"`
	WebURL       string `json:"web_url"`
	SourceBranch string `json:"source_branch"`
	SeenNoteID   int64  `json:"seen_note_id,omitempty"` // the earlier review of this head
}

// finding is what the agent points at: a line of the new version of a file.
type finding struct {
	Path    string `json:"path"`
	Line    int64  `json:"line"`
	Comment string `json:"comment"`
}

// placed is a finding on a line of the diff, with its position.
type placed struct {
	finding
	Pos gitlab.Position `json:"pos"`
}

// reviewOutput is the agent step's checkpoint.
type reviewOutput struct {
	agentOutput
	Refs    gitlab.DiffRefs `json:"refs"`
	Inline  []placed        `json:"inline"`
	Other   []finding       `json:"other"`   // not on a line of the diff, or past the limit
	Skipped []string        `json:"skipped"` // files the agent was not shown
}

// reviewKey marks the review of one head: the summary note carries it, so
// that the same head is never reviewed twice, whoever asks and however.
func reviewKey(head string) string { return "review-" + head }

// review reviews the merge request of the thread: the agent reads the diff
// and the source branch through read-only tools, then the bot posts inline
// comments and a summary. Nothing is pushed.
func (s *state) review(ctx context.Context) error {
	defer s.closeWorkspace()
	a := s.job.Args
	e := s.project.Effective
	switch {
	case a.ThreadKind != gitlab.KindMR:
		return s.reply(ctx, "reply", "`review` works on merge requests only: ask on the merge request, or add me as a reviewer there.")
	case !e.ReviewEnabled:
		return s.reply(ctx, "reply", "Reviews are turned off for this project (`review.enabled: false` in its `.agentbot.yml`).")
	case s.cfg.Agent == nil:
		return Permanent(errors.New("reviews run the agent in agentbot itself, and this agentbot has no agent (executor " + s.cfg.Executor + ")"))
	}
	mrThread := gitlab.Thread{ProjectID: a.ProjectID, Kind: gitlab.KindMR, IID: a.IID}

	var target reviewTarget
	if err := s.once(ctx, "review-target", &target, func() (any, error) {
		mr, err := s.gl.MergeRequest(ctx, a.ProjectID, a.IID)
		if err != nil {
			return nil, fmt.Errorf("look up merge request !%d: %w", a.IID, err)
		}
		head := mr.DiffRefs.HeadSHA
		if head == "" {
			head = mr.SHA
		}
		t := reviewTarget{Head: head, WebURL: mr.WebURL, SourceBranch: mr.SourceBranch}
		if mr.State != "" && mr.State != "opened" {
			return nil, Permanent(fmt.Errorf("merge request !%d is %s", a.IID, mr.State))
		}
		n, found, err := s.gl.FindNote(ctx, mrThread, reviewKey(head))
		if err != nil {
			return nil, fmt.Errorf("look for an earlier review: %w", err)
		}
		if found {
			t.SeenNoteID = n.ID
		}
		return t, nil
	}); err != nil {
		return err
	}
	s.log = s.log.With("head", short(target.Head))
	if target.SeenNoteID != 0 {
		s.log.Info("head reviewed already", "note", target.SeenNoteID)
		if a.Trigger != queue.TriggerNote {
			return nil
		}
		return s.reply(ctx, "reply", fmt.Sprintf("I already reviewed this merge request at `%s`: see [the review](%s#note_%d). "+
			"Push new commits, then ask again.", short(target.Head), target.WebURL, target.SeenNoteID))
	}

	var progress struct{ NoteID int64 }
	if err := s.once(ctx, "progress", &progress, func() (any, error) {
		n, err := s.gl.PostNote(ctx, s.thread, reviewKey(target.Head), s.progressBody(fmt.Sprintf("⏳ Reviewing `%s`…", short(target.Head))))
		progress.NoteID = n.ID
		return progress, err
	}); err != nil {
		return fmt.Errorf("post the progress note: %w", err)
	}
	s.progressID = progress.NoteID

	var out reviewOutput
	if err := s.once(ctx, "agent", &out, func() (any, error) { return s.runReview(ctx, target) }); err != nil {
		return err
	}

	failed := 0
	for i := range out.Inline {
		c := &out.Inline[i]
		step := "inline-" + strconv.Itoa(i)
		err := s.once(ctx, step, nil, func() (any, error) {
			body := s.redact(publish.Neutralize(c.Comment)) + "\n\n<sub>agentbot review of `" + short(out.Refs.HeadSHA) + "`</sub>"
			_, err := s.gl.CreateMRDiscussion(ctx, a.ProjectID, a.IID, reviewKey(target.Head)+"-"+strconv.Itoa(i), body, &c.Pos)
			return nil, err
		})
		if err != nil {
			if !isPermanent(err) {
				return fmt.Errorf("post an inline comment: %w", err)
			}
			// GitLab refused the position (the diff moved on): the
			// finding goes into the summary instead.
			s.log.Warn("inline comment refused", "path", c.Path, "line", c.Line, "err", err)
			out.Other = append(out.Other, c.finding)
			failed++
		}
	}

	return s.once(ctx, "report", nil, func() (any, error) {
		body := s.redact(reviewReport(s.job.ID, a.Command, target, out, len(out.Inline)-failed))
		if err := s.gl.UpdateNote(ctx, s.thread, s.progressID, reviewKey(target.Head), body); err != nil {
			return nil, fmt.Errorf("post the review: %w", err)
		}
		s.finishReaction(ctx, out.Outcome == agent.OutcomeDone)
		return nil, nil
	})
}

// finishReaction swaps 👀 for ✅ or ❌ on the note that asked, when a note
// asked.
func (s *state) finishReaction(ctx context.Context, ok bool) {
	id := s.job.Args.NoteID
	if id == 0 {
		return
	}
	emoji := "white_check_mark"
	if !ok {
		emoji = "x"
	}
	if err := s.gl.AwardEmoji(ctx, s.thread, id, emoji); err != nil {
		s.log.Warn("could not react to the note", "err", err)
	}
	if err := s.gl.RemoveEmoji(ctx, s.thread, id, "eyes"); err != nil {
		s.log.Warn("could not remove 👀", "err", err)
	}
}

func (s *state) runReview(ctx context.Context, target reviewTarget) (reviewOutput, error) {
	a := s.job.Args
	e := s.project.Effective
	diffs, refs, err := s.gl.MRDiffs(ctx, a.ProjectID, a.IID)
	if err != nil {
		return reviewOutput{}, fmt.Errorf("read the diff of !%d: %w", a.IID, err)
	}
	if refs.HeadSHA != target.Head {
		s.log.Info("the merge request moved on; reviewing its new head", "new_head", short(refs.HeadSHA))
	}
	mr, err := s.gl.MergeRequest(ctx, a.ProjectID, a.IID)
	if err != nil {
		return reviewOutput{}, fmt.Errorf("look up merge request !%d: %w", a.IID, err)
	}
	ws, err := s.openReadOnly(ctx, target.SourceBranch, workspace.BranchName("review", a.IID, short(target.Head)))
	if err != nil {
		return reviewOutput{}, err
	}
	text, skipped := diffText(diffs, e.ReviewIgnore)
	var c strings.Builder
	fmt.Fprintf(&c, "Merge request !%d: %s\nFrom %s into %s, head commit %s.\n", mr.IID, sanitize.Visible(mr.Title), mr.SourceBranch, mr.TargetBranch, refs.HeadSHA)
	if d := strings.TrimSpace(mr.Description); d != "" {
		c.WriteString("Description:\n" + cutBytes(sanitize.Visible(d), 8000) + "\n")
	}
	if ctxt := strings.TrimSpace(a.Command.Context); ctxt != "" {
		c.WriteString("More from the comment that asked for the review:\n" + cutBytes(sanitize.Visible(ctxt), 4000) + "\n")
	}
	c.WriteString("\nThe diff. Each line of the new version of a file starts with its line number; removed lines (-) have none.\n\n")
	c.WriteString(text)
	if len(skipped) > 0 {
		c.WriteString("\nNot shown: " + strings.Join(skipped, ", ") + "\n")
	}

	task := Task{Command: a.Command, Prompt: reviewPrompt(a.IID, e.MaxInlineComments), Context: untrusted(c.String()), ReadOnly: true}
	s.applyProject(&task)
	out, err := s.callAgent(ctx, readOnlyFS{ws.FS()}, task)
	if err != nil {
		return reviewOutput{}, err
	}
	summary, found := splitFindings(out.Answer)
	if e.MaxInlineComments == 0 {
		found = nil
	}
	out.Answer = summary
	r := reviewOutput{agentOutput: out, Refs: refs, Skipped: skipped}
	r.Inline, r.Other = place(found, diffs, refs, e.MaxInlineComments)
	s.log.Info("review finished", "outcome", out.Outcome, "inline", len(r.Inline), "other", len(r.Other))
	return r, nil
}

// callAgent runs the agent on fsys and keeps what the report needs (no
// files: callers give it a read-only view).
func (s *state) callAgent(ctx context.Context, fsys tools.FS, task Task) (agentOutput, error) {
	res, err := s.cfg.Agent.Run(ctx, fsys, task)
	if res == nil {
		return agentOutput{}, fmt.Errorf("run the agent: %w", err)
	}
	var stop *agent.StopError
	if err != nil && errors.As(err, &stop) && stop.Outcome == agent.OutcomeModelError {
		return agentOutput{}, fmt.Errorf("call the model: %w", err)
	}
	return agentOutput{
		Answer: res.Answer, Outcome: res.Outcome, Message: res.Message, Usage: res.Usage, Cost: res.Cost,
		Turns: res.Turns, ToolCalls: res.ToolCalls, Seconds: res.Duration.Seconds(),
	}, nil
}

// openReadOnly fetches branch into a workspace the agent only reads;
// nothing is ever pushed from it (its Policy refuses every path).
func (s *state) openReadOnly(ctx context.Context, branch, name string) (*workspace.Workspace, error) {
	if s.ws != nil {
		return s.ws, nil
	}
	p, err := s.gl.Project(ctx, s.job.Args.ProjectID)
	if err != nil {
		return nil, fmt.Errorf("look up the project: %w", err)
	}
	g := s.cfg.Git
	ws, err := workspace.Open(ctx, workspace.Options{
		RemoteURL:     p.HTTPURLToRepo,
		Token:         g.Token,
		BaseBranch:    branch,
		DefaultBranch: p.DefaultBranch,
		Branch:        name,
		Author:        g.Author,
		RunID:         fmt.Sprint(s.job.ID),
		TempDir:       g.TempDir,
		Policy:        func(string) error { return errReadOnly },
		MaxFileBytes:  g.MaxFileBytes,
		Logger:        s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("fetch %s of %s: %w", branch, p.PathWithNamespace, err)
	}
	s.ws = ws
	return ws, nil
}

func reviewPrompt(iid int64, maxInline int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Review merge request !%d. The diff and the merge request's description are below. "+
		"Read files of its source branch with file_read and list_files when you need more context; you cannot change files. "+
		"Where the change states market figures, check them against your market data tools.\n\n", iid)
	b.WriteString("Answer in Markdown with:\n1. A short summary of the change and your overall assessment, in a few sentences.\n" +
		"2. The problems that matter, if any, most important first.\n")
	if maxInline > 0 {
		fmt.Fprintf(&b, "3. At the very end, a fenced ```json block with the findings that belong on specific lines of the diff, at most %d, "+
			"most important first: [{\"path\": \"notes/q3/msft.md\", \"line\": 12, \"comment\": \"…\"}], "+
			"where line is the line number in the new version of the file, as numbered in the diff. "+
			"Only lines shown in the diff can be commented on. Write [] when there are none.\n", maxInline)
	} else {
		b.WriteString("Do not add line comments.\n")
	}
	return b.String()
}

// diffText renders the diffs for the agent, each new-version line with its
// number, within maxDiffBytes; it returns the files it left out.
func diffText(diffs []gitlab.Diff, ignore []string) (string, []string) {
	var b strings.Builder
	var skipped []string
	for _, d := range diffs {
		name := d.NewPath
		if d.DeletedFile {
			name = d.OldPath
		}
		switch {
		case ignored(name, ignore):
			skipped = append(skipped, name+" (ignored by the project)")
			continue
		case d.TooLarge || (d.Collapsed && d.Diff == ""):
			skipped = append(skipped, name+" (too large)")
			continue
		}
		var f strings.Builder
		switch {
		case d.NewFile:
			fmt.Fprintf(&f, "=== %s (new file)\n", d.NewPath)
		case d.DeletedFile:
			fmt.Fprintf(&f, "=== %s (deleted)\n", d.OldPath)
		case d.RenamedFile:
			fmt.Fprintf(&f, "=== %s (renamed from %s)\n", d.NewPath, d.OldPath)
		default:
			fmt.Fprintf(&f, "=== %s\n", d.NewPath)
		}
		if d.Diff == "" {
			f.WriteString("(no text changes: binary or mode only)\n")
		}
		eachDiffLine(d.Diff, func(kind byte, oldLine, newLine int64, text string) {
			switch kind {
			case '@':
				f.WriteString(text + "\n")
			case '+':
				fmt.Fprintf(&f, "%6d + %s\n", newLine, text)
			case '-':
				fmt.Fprintf(&f, "%6s - %s\n", "", text)
			default:
				fmt.Fprintf(&f, "%6d   %s\n", newLine, text)
			}
		})
		part := f.String()
		if len(part) > maxFileDiffBytes {
			part = cutBytes(part, maxFileDiffBytes) + "\n(… the rest of this file's diff is cut)\n"
		}
		if b.Len()+len(part) > maxDiffBytes {
			skipped = append(skipped, name+" (over the review's size limit)")
			continue
		}
		b.WriteString(part + "\n")
	}
	return b.String(), skipped
}

func ignored(name string, globs []string) bool {
	for _, g := range globs {
		if tools.MatchGlob(g, name) {
			return true
		}
	}
	return false
}

// eachDiffLine walks a unified diff (from its first hunk header), calling
// fn with '@' for a hunk header, '+', '-' or ' ' for a line, with the line's
// numbers in the old and new versions (0 where it has none).
func eachDiffLine(diff string, fn func(kind byte, oldLine, newLine int64, text string)) {
	var o, n int64
	for _, l := range strings.Split(strings.TrimSuffix(diff, "\n"), "\n") {
		if strings.HasPrefix(l, "@@") {
			o, n = hunkStart(l)
			fn('@', 0, 0, l)
			continue
		}
		if l == "" || l[0] == '\\' { // "\ No newline at end of file"
			continue
		}
		switch l[0] {
		case '+':
			fn('+', 0, n, l[1:])
			n++
		case '-':
			fn('-', o, 0, l[1:])
			o++
		default:
			fn(' ', o, n, l[1:])
			o++
			n++
		}
	}
}

var hunkRE = regexp.MustCompile(`^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@`)

func hunkStart(h string) (oldLine, newLine int64) {
	m := hunkRE.FindStringSubmatch(h)
	if m == nil {
		return 0, 0
	}
	oldLine, _ = strconv.ParseInt(m[1], 10, 64)
	newLine, _ = strconv.ParseInt(m[2], 10, 64)
	return oldLine, newLine
}

// fenceRE finds the findings block: the last ```json fence of the answer.
var fenceRE = regexp.MustCompile("(?s)```json[ \t]*\n(.*?)\n[ \t]*```")

// splitFindings takes the findings block off the end of the agent's answer.
// An answer without a block (or with one that does not parse) is all
// summary.
func splitFindings(answer string) (string, []finding) {
	locs := fenceRE.FindAllStringSubmatchIndex(answer, -1)
	if len(locs) == 0 {
		return strings.TrimSpace(answer), nil
	}
	loc := locs[len(locs)-1]
	raw := answer[loc[2]:loc[3]]
	var list []finding
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		var wrapped struct{ Findings []finding }
		if err := json.Unmarshal([]byte(raw), &wrapped); err != nil {
			return strings.TrimSpace(answer), nil
		}
		list = wrapped.Findings
	}
	summary := strings.TrimSpace(answer[:loc[0]] + answer[loc[1]:])
	return summary, list
}

// place puts each finding on its line of the diff (the new version's line
// number, an added or unchanged line), up to max; the others are returned
// apart.
func place(found []finding, diffs []gitlab.Diff, refs gitlab.DiffRefs, max int) (inline []placed, other []finding) {
	type line struct{ old int64 }
	lines := map[string]map[int64]line{}
	paths := map[string]gitlab.Diff{}
	for _, d := range diffs {
		if d.DeletedFile {
			continue
		}
		m := map[int64]line{}
		eachDiffLine(d.Diff, func(kind byte, o, n int64, _ string) {
			switch kind {
			case '+':
				m[n] = line{}
			case ' ':
				m[n] = line{old: o}
			}
		})
		lines[d.NewPath] = m
		paths[d.NewPath] = d
	}
	for _, f := range found {
		f.Path = cleanFindingPath(f.Path)
		f.Comment = strings.TrimSpace(f.Comment)
		if f.Comment == "" {
			continue
		}
		if len(f.Comment) > maxCommentBytes {
			f.Comment = cutBytes(f.Comment, maxCommentBytes) + "…"
		}
		l, ok := lines[f.Path][f.Line]
		if !ok || len(inline) >= max {
			if len(other) < maxOtherFindings {
				other = append(other, f)
			}
			continue
		}
		d := paths[f.Path]
		pos := gitlab.Position{DiffRefs: refs, OldPath: d.OldPath, NewPath: d.NewPath, NewLine: f.Line, OldLine: l.old}
		inline = append(inline, placed{finding: f, Pos: pos})
	}
	return inline, other
}

func cleanFindingPath(p string) string {
	p = strings.TrimSpace(p)
	for _, prefix := range []string{"b/", "./", "/"} {
		p = strings.TrimPrefix(p, prefix)
	}
	return path.Clean(p)
}

func reviewReport(runID int64, c command.Command, target reviewTarget, out reviewOutput, inline int) string {
	var b strings.Builder
	head := short(out.Refs.HeadSHA)
	if head == "" {
		head = short(target.Head)
	}
	if out.Outcome != agent.OutcomeDone {
		fmt.Fprintf(&b, "❌ The review of `%s` stopped before finishing: %s\n\n", head, out.Message)
	} else {
		fmt.Fprintf(&b, "✅ **Review of `%s`**", head)
		switch inline {
		case 0:
			b.WriteString("\n\n")
		case 1:
			b.WriteString(" · 1 comment on the diff\n\n")
		default:
			fmt.Fprintf(&b, " · %d comments on the diff\n\n", inline)
		}
	}
	if ans := strings.TrimSpace(out.Answer); ans != "" {
		b.WriteString(publish.Neutralize(bounded(ans, 50000)))
		b.WriteString("\n\n")
	}
	if len(out.Other) > 0 {
		b.WriteString("**More findings**\n\n")
		for _, f := range out.Other {
			where := "`" + strings.ReplaceAll(f.Path, "`", "'") + "`"
			if f.Line > 0 {
				where += " line " + strconv.FormatInt(f.Line, 10)
			}
			fmt.Fprintf(&b, "- %s: %s\n", where, strings.Join(strings.Fields(publish.Neutralize(f.Comment)), " "))
		}
		b.WriteString("\n")
	}
	if len(out.Skipped) > 0 {
		fmt.Fprintf(&b, "Not reviewed: %s.\n\n", strings.Join(out.Skipped, ", "))
	}
	b.WriteString(usageLine(runID, c, out.agentOutput))
	return b.String()
}

// usageLine is the small print under a report.
func usageLine(runID int64, c command.Command, out agentOutput) string {
	return fmt.Sprintf("<sub>`%s` · run %d · %d turns, %d tool calls · tokens: %d in, %d out, %d cached · ~$%.4f · %s</sub>",
		strings.ReplaceAll(commandText(c), "`", "'"), runID, out.Turns, out.ToolCalls,
		out.Usage.InputTokens, out.Usage.OutputTokens, out.Usage.CacheReadTokens, out.Cost,
		(time.Duration(out.Seconds * float64(time.Second))).Round(time.Second))
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

// cutBytes cuts s to at most n bytes at a rune boundary.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
