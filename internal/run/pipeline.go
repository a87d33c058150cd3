package run

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gitlab.com/agentbot/agentbot/internal/config"
	"gitlab.com/agentbot/agentbot/internal/gitlab"
)

// The pipeline executor's polling: the first look after pollFirst, then
// twice the wait each time up to pollMax. A run stops following when its
// job's deadline is nearer than the next wait plus deadlineMargin, and
// leaves the rest to the queue's next attempt, which finds the same
// pipeline in its checkpoint.
const (
	pollFirst      = time.Second
	pollMax        = 30 * time.Second
	deadlineMargin = 15 * time.Second
)

// followedPipeline is the pipeline step's checkpoint.
type followedPipeline struct {
	ID     int64  `json:"id"`
	IID    int64  `json:"iid"`
	Ref    string `json:"ref"`
	WebURL string `json:"web_url"`
}

// pipelineOutcome is the follow step's checkpoint.
type pipelineOutcome struct {
	Status string `json:"status"`
}

// inPipeline hands the run to a CI pipeline on the project's runners: it
// creates a pipeline on the default branch with the AGENTBOT_… variables
// (the project's .gitlab-ci.yml includes the agentbot component, whose job
// runs `agentbot run --from-env --publish`), shows the pipeline's link in
// the progress note, follows the pipeline until it ends, and reports its
// final state. The CI job posts the agent's answer itself; a pipeline that
// fails or is cancelled gets a reply with the failed job's link.
func (s *state) inPipeline(ctx context.Context) error {
	var pl followedPipeline
	if err := s.once(ctx, "pipeline", &pl, func() (any, error) { return s.createPipeline(ctx) }); err != nil {
		return err
	}
	s.log = s.log.With("pipeline", pl.ID)
	s.setProgress(ctx, fmt.Sprintf("⏳ Running on the project's CI runners: pipeline [#%d](%s).", pl.IID, pl.WebURL))

	var out pipelineOutcome
	if err := s.once(ctx, "follow", &out, func() (any, error) { return s.followPipeline(ctx, pl) }); err != nil {
		return err
	}
	return s.once(ctx, "pipeline-report", nil, func() (any, error) {
		return nil, s.reportPipeline(ctx, pl, out.Status)
	})
}

// pipelineVariables are what `agentbot run --from-env` reads.
func (s *state) pipelineVariables() map[string]string {
	a := s.job.Args
	return map[string]string{
		config.VarCommand:     commandText(a.Command),
		config.VarReplyTo:     config.ReplyTo{Kind: a.ThreadKind, IID: a.IID, DiscussionID: a.DiscussionID}.String(),
		config.VarRunID:       strconv.FormatInt(s.job.ID, 10),
		config.VarRequestedBy: strconv.FormatInt(a.AuthorID, 10),
	}
}

func (s *state) createPipeline(ctx context.Context) (followedPipeline, error) {
	a := s.job.Args
	p, err := s.gl.Project(ctx, a.ProjectID)
	if err != nil {
		return followedPipeline{}, fmt.Errorf("look up the project: %w", err)
	}
	if p.DefaultBranch == "" {
		return followedPipeline{}, Permanent(errors.New("the project has no default branch to run a pipeline on (is the repository empty?)"))
	}
	got, err := s.gl.CreatePipeline(ctx, a.ProjectID, p.DefaultBranch, s.noteKey("pipeline"), s.pipelineVariables())
	if err != nil {
		var ge *gitlab.Error
		if errors.As(err, &ge) && ge.Status == 400 {
			// GitLab refuses a pipeline none of whose jobs match its rules.
			return followedPipeline{}, Permanent(fmt.Errorf("start a pipeline on %s: %w (does the project's .gitlab-ci.yml "+
				"include the agentbot component, with a rule for %s? see docs/deployment.md)", p.DefaultBranch, err, config.VarCommand))
		}
		return followedPipeline{}, fmt.Errorf("start a pipeline on %s: %w", p.DefaultBranch, err)
	}
	s.log.Info("pipeline created", "pipeline", got.ID, "ref", got.Ref, "url", got.WebURL)
	return followedPipeline{ID: got.ID, IID: got.IID, Ref: got.Ref, WebURL: got.WebURL}, nil
}

// followPipeline polls until the pipeline ends, with a growing wait, and
// gives up for this attempt (a retryable error) when the job's deadline
// would pass before the next look.
func (s *state) followPipeline(ctx context.Context, pl followedPipeline) (pipelineOutcome, error) {
	wait := pollFirst
	last := ""
	for {
		got, err := s.gl.Pipeline(ctx, s.job.Args.ProjectID, pl.ID)
		switch {
		case err == nil:
			if got.Status != last {
				s.log.Info("pipeline status", "status", got.Status)
				if last != "" && got.Status == "running" {
					s.setProgress(ctx, fmt.Sprintf("⏳ Running on the project's CI runners: pipeline [#%d](%s) is running.", pl.IID, pl.WebURL))
				}
				last = got.Status
			}
			if pipelineEnded(got.Status) {
				return pipelineOutcome{Status: got.Status}, nil
			}
		case gitlab.IsTransient(err):
			s.log.Warn("look at the pipeline", "err", err)
		default:
			return pipelineOutcome{}, fmt.Errorf("follow pipeline #%d: %w", pl.IID, err)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait+deadlineMargin {
			return pipelineOutcome{}, fmt.Errorf("pipeline #%d is still %s; the next attempt follows it on (%s)", pl.IID, last, pl.WebURL)
		}
		if err := s.waitForPipeline(ctx, pl, last, wait); err != nil {
			return pipelineOutcome{}, err
		}
		wait = min(2*wait, pollMax)
	}
}

// pipelineEnded reports whether a pipeline status is final for agentbot.
// "manual" waits for a person, who may never come: it is reported, not
// followed.
func pipelineEnded(status string) bool {
	switch status {
	case "success", "failed", "canceled", "canceling", "skipped", "manual":
		return true
	}
	return false
}

// reportPipeline puts the pipeline's final state in the progress note and
// reacts to the command; a pipeline that did not succeed also gets a reply
// naming the failed job.
func (s *state) reportPipeline(ctx context.Context, pl followedPipeline, status string) error {
	a := s.job.Args
	link := fmt.Sprintf("[#%d](%s)", pl.IID, pl.WebURL)
	emoji := "white_check_mark"
	var progress string
	switch status {
	case "success":
		progress = fmt.Sprintf("✅ Pipeline %s passed.", link)
		if _, found, err := s.gl.FindNote(ctx, s.thread, "run-"+strconv.FormatInt(s.job.ID, 10)+"-ci-result"); err == nil && !found {
			progress += " No agentbot job answered, though: check that the project's .gitlab-ci.yml includes the agentbot " +
				"component with a rule for " + config.VarCommand + " (see docs/deployment.md)."
		} else if err != nil {
			s.log.Warn("look for the CI job's answer", "err", err)
		}
	default:
		emoji = "x"
		reply := s.pipelineFailure(ctx, pl, status)
		progress = "❌ " + reply
		if err := s.reply(ctx, "pipeline-failed", s.redact(reply)); err != nil {
			return fmt.Errorf("reply that the pipeline %s: %w", status, err)
		}
	}
	if err := s.gl.UpdateNote(ctx, s.thread, s.progressID, s.noteKey("progress"), s.redact(s.progressBody(progress))); err != nil {
		return fmt.Errorf("update the progress note: %w", err)
	}
	if err := s.gl.AwardEmoji(ctx, s.thread, a.NoteID, emoji); err != nil {
		return fmt.Errorf("react to the note: %w", err)
	}
	if err := s.gl.RemoveEmoji(ctx, s.thread, a.NoteID, "eyes"); err != nil {
		s.log.Warn("could not remove 👀", "err", err)
	}
	return nil
}

// pipelineFailure says how the pipeline ended and links its failed (or
// cancelled) jobs.
func (s *state) pipelineFailure(ctx context.Context, pl followedPipeline, status string) string {
	var b strings.Builder
	switch status {
	case "manual":
		fmt.Fprintf(&b, "Pipeline [#%d](%s) waits for a manual job, so the agent did not run: start the job there, or give the agentbot job a rule that runs it when %s is set.",
			pl.IID, pl.WebURL, config.VarCommand)
		return b.String()
	case "skipped":
		fmt.Fprintf(&b, "Pipeline [#%d](%s) was skipped, so the agent did not run.", pl.IID, pl.WebURL)
		return b.String()
	case "canceled", "canceling":
		fmt.Fprintf(&b, "Pipeline [#%d](%s) was cancelled before the agent finished.", pl.IID, pl.WebURL)
	default:
		fmt.Fprintf(&b, "Pipeline [#%d](%s) failed.", pl.IID, pl.WebURL)
	}
	jobs, err := s.gl.PipelineJobs(ctx, s.job.Args.ProjectID, pl.ID, "failed", "canceled")
	if err != nil {
		s.log.Warn("list the pipeline's failed jobs", "err", err)
		return b.String()
	}
	for i, j := range jobs {
		if i == 5 {
			fmt.Fprintf(&b, " (and %d more)", len(jobs)-i)
			break
		}
		fmt.Fprintf(&b, " Job [%s](%s) %s", strings.ReplaceAll(j.Name, "]", ""), j.WebURL, j.Status)
		if j.FailureReason != "" {
			fmt.Fprintf(&b, " (%s)", strings.ReplaceAll(j.FailureReason, "_", " "))
		}
		b.WriteString(".")
	}
	return b.String()
}

// setProgress shows status in the progress note; best-effort, since the
// pipeline runs whether or not the note says so.
func (s *state) setProgress(ctx context.Context, status string) {
	if s.progressID == 0 {
		return
	}
	if err := s.gl.UpdateNote(ctx, s.thread, s.progressID, s.noteKey("progress"), s.redact(s.progressBody(status))); err != nil {
		s.log.Warn("update the progress note", "err", err)
	}
}

// hookCheck is how often a run following a pipeline looks for news from the
// Pipeline Hook (a local read) between its polls of the API.
const hookCheck = time.Second

// waitForPipeline waits up to d for the next poll, and less when a Pipeline
// Hook has reported a status other than last: hooks make the bot react at
// once, the polls are the fallback when hooks are off or lost.
func (s *state) waitForPipeline(ctx context.Context, pl followedPipeline, last string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		step := min(hookCheck, time.Until(deadline))
		if step <= 0 {
			return nil
		}
		t := time.NewTimer(step)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		status, err := s.job.Locks.PipelineStatus(ctx, s.job.Args.ProjectID, pl.ID)
		if err != nil {
			s.log.Warn("read the pipeline's hook status", "err", err)
			continue
		}
		if status != "" && status != last {
			s.log.Info("pipeline hook", "status", status)
			return nil
		}
	}
}
