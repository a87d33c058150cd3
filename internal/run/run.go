// Package run is the worker: one run is a small state machine whose steps
// each record what they created (a note, a branch, a merge request) in a
// checkpoint, so that a retry after a crash finds it instead of doing it
// again. Every GitLab write is also idempotent by itself (notes carry a
// marker, merge requests are found by branch), which covers the instant
// between a write and its checkpoint.
package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/config"
	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/publish"
	"gitlab.com/agentbot/agentbot/internal/queue"
	"gitlab.com/agentbot/agentbot/internal/repoconfig"
	"gitlab.com/agentbot/agentbot/internal/workspace"
)

// GitLab is the part of the GitLab API a run uses.
type GitLab interface {
	AwardEmoji(ctx context.Context, t gitlab.Thread, noteID int64, name string) error
	RemoveEmoji(ctx context.Context, t gitlab.Thread, noteID int64, name string) error
	AccessLevel(ctx context.Context, projectID, userID int64) (int, error)
	PostNote(ctx context.Context, t gitlab.Thread, key, body string) (gitlab.Note, error)
	UpdateNote(ctx context.Context, t gitlab.Thread, noteID int64, key, body string) error
	User(ctx context.Context, id int64) (gitlab.User, error)
	Issue(ctx context.Context, projectID, iid int64) (gitlab.Issue, error)
	ListNotes(ctx context.Context, t gitlab.Thread) ([]gitlab.Note, error)
	publish.GitLab
	projectAPI // reviews, pipeline rules and .agentbot.yml (repoconfig.go)

	// The pipeline executor (pipeline.go).
	FindNote(ctx context.Context, t gitlab.Thread, key string) (gitlab.Note, bool, error)
	CreatePipeline(ctx context.Context, projectID int64, ref, key string, vars map[string]string) (gitlab.Pipeline, error)
	Pipeline(ctx context.Context, projectID, id int64) (gitlab.Pipeline, error)
	PipelineJobs(ctx context.Context, projectID, pipelineID int64, statuses ...string) ([]gitlab.Job, error)
}

// Config is what every run shares.
type Config struct {
	MinAccess int // AGENTBOT_MIN_ACCESS_LEVEL
	Command   command.Options
	Logger    *slog.Logger
	// Executor is "local" (the agent runs in this process) or "pipeline"
	// (a CI pipeline on the project's runners runs it).
	Executor string
	// Agent runs the model loop; required for local runs.
	Agent Agent
	// Git is how the workspace reaches the repositories.
	Git GitSettings
	// MR settings for the merge requests agentbot opens.
	Draft       bool
	Labels      []string
	ReviewerIDs []int64
	// ConfidentialMR allows a merge request (visible to everyone who can see
	// the project) for a command on a confidential issue.
	ConfidentialMR bool
	// Metrics, when set, counts runs and their queue wait.
	Metrics Metrics
	// ProjectRuns caps the runs going on at once in one project
	// (AGENTBOT_PROJECT_RUNS); 0 means no cap.
	ProjectRuns int
	// UserRunsPerHour is each person's hourly budget of agent runs
	// (AGENTBOT_USER_RUNS_PER_HOUR); 0 means no limit.
	UserRunsPerHour int
	// LockTTL bounds how long a killed run can keep its thread locked;
	// more than the job timeout. Default one hour.
	LockTTL time.Duration
	// MaxTurns is the agent's turn limit, shown in the progress note.
	MaxTurns int
	// Redact removes secrets from everything posted; nil posts as is.
	Redact func(string) string
	// Operator bounds what a project's .agentbot.yml may ask for; its
	// MinAccess defaults to MinAccess.
	Operator repoconfig.Operator
}

// GitSettings configure the workspace of a local run.
type GitSettings struct {
	Token          string // GITLAB_TOKEN, sent as basic auth, kept in memory
	Author         workspace.Signature
	TempDir        string
	Policy         func(path string) error // the write allowlist, re-checked at commit
	MaxFileBytes   int64
	MaxCommitBytes int64
}

// Runner works runs; it is the queue's Handler.
type Runner struct {
	cfg Config
	gl  GitLab
}

// New returns a Runner.
func New(cfg Config, gl GitLab) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, gl: gl}
}

// Work runs one job to its end. A transient failure is returned for the
// queue to retry; on the last attempt, or when the failure is permanent, the
// thread gets a note that says what failed and what to check.
func (r *Runner) Work(ctx context.Context, job queue.Job) error {
	a := job.Args
	s := &state{
		Runner: r,
		job:    job,
		thread: gitlab.Thread{
			ProjectID:    a.ProjectID,
			Kind:         a.ThreadKind,
			IID:          a.IID,
			DiscussionID: a.DiscussionID,
			Internal:     a.Internal || a.Confidential,
		},
		log: r.cfg.Logger.With("job", job.ID, "project", a.ProjectPath, "iid", a.IID,
			"kind", a.ThreadKind, "delivery", a.DeliveryKey, "attempt", job.Attempt),
	}
	finished := func(string) {}
	if m := r.cfg.Metrics; m != nil {
		// The wait from the delivery to the first worker that took the job,
		// measured once (a snoozed or retried job comes back).
		if err := s.once(ctx, "dequeued", nil, func() (any, error) {
			if !a.ReceivedAt.IsZero() {
				m.QueueWait(time.Since(a.ReceivedAt))
			}
			return nil, nil
		}); err != nil {
			return err
		}
		finished = m.RunStarted(runKind(a))
	}
	err := s.work(ctx)
	if err == nil {
		s.log.Info("run finished")
		finished("ok")
		return nil
	}
	var snooze *queue.SnoozeError
	if errors.As(err, &snooze) {
		finished("queued")
		return err
	}
	last := job.Attempt >= job.MaxAttempts || isPermanent(err) || ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded)
	s.log.Error("run failed", "err", err, "final", last)
	if !last {
		finished("retry")
		return err
	}
	s.fail(context.WithoutCancel(ctx), err)
	finished("failed")
	// Told on the thread already: the queue must not try again.
	return Permanent(err)
}

// Metrics is what a run reports; nil reports nothing.
type Metrics interface {
	RunStarted(kind string) (finished func(outcome string))
	QueueWait(d time.Duration)
}

// runKind is the run's metric label: the trigger, or the command's kind.
func runKind(a queue.RunArgs) string {
	if a.Trigger != "" && a.Trigger != queue.TriggerNote {
		return string(a.Trigger)
	}
	return a.Command.Kind.String()
}

type state struct {
	*Runner
	job    queue.Job
	thread gitlab.Thread
	log    *slog.Logger

	progressID int64                // the run's progress note, once posted
	ws         *workspace.Workspace // open during one attempt; reopened after a crash
	target     publish.Target       // where ws was fetched from and pushes to
	project    *project             // the project's settings, once read (repoconfig.go)
}

func (s *state) work(ctx context.Context) error {
	a := s.job.Args
	if a.Trigger == queue.TriggerPipeline {
		return s.pipelineEvent(ctx) // rules.go
	}
	// The project's settings, from its default branch, may ask for a
	// stricter minimum role.
	if err := s.loadProject(ctx); err != nil {
		return err
	}
	// Authorization comes first, so that a note by someone who may not use
	// the bot gets a refusal and nothing else.
	level, err := s.authorLevel(ctx)
	if err != nil {
		return err
	}
	if level < s.minAccess() {
		s.log.Info("refused", "author", a.AuthorUsername, "level", level)
		return s.reply(ctx, "refusal", refusal(a.AuthorUsername, level, s.minAccess()))
	}
	if a.NoteID != 0 { // a review request has no note
		if err := s.once(ctx, "ack", nil, func() (any, error) {
			return nil, s.gl.AwardEmoji(ctx, s.thread, a.NoteID, "eyes")
		}); err != nil {
			return fmt.Errorf("acknowledge the note: %w", err)
		}
	}
	// The project's own verbs, help, review and diagnose (repoconfig.go).
	if done, err := s.projectCommand(ctx); done || err != nil {
		return err
	}

	switch a.Command.Kind {
	case command.Help, command.Usage:
		return s.reply(ctx, "reply", a.Command.Reply)
	}
	if stop, err := s.rateLimited(ctx); stop || err != nil {
		return err
	}
	return s.agentRun(ctx)
}

// once runs fn unless an earlier attempt finished the step, and records its
// result (which may be nil) as the step's checkpoint. Either way, the
// recorded result is loaded into out (when not nil).
func (s *state) once(ctx context.Context, step string, out any, fn func() (any, error)) error {
	if out == nil {
		out = &struct{}{}
	}
	done, err := s.job.Checkpoints.Get(ctx, step, out)
	if err != nil || done {
		return err
	}
	v, err := fn()
	if err != nil {
		return err
	}
	if v == nil {
		v = struct{}{}
	}
	if err := s.job.Checkpoints.Put(ctx, step, v); err != nil {
		return err
	}
	// Load what was recorded, so that a first run sees what a retry would.
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

// reply posts a note on the run's thread once, whatever the retries.
func (s *state) reply(ctx context.Context, step, body string) error {
	return s.once(ctx, step, nil, func() (any, error) {
		n, err := s.gl.PostNote(ctx, s.thread, s.noteKey(step), body)
		return struct{ NoteID int64 }{n.ID}, err
	})
}

func (s *state) noteKey(step string) string {
	return "run-" + strconv.FormatInt(s.job.ID, 10) + "-" + step
}

// fail tells the thread that the run failed and what to check: in the
// progress note when there is one, else in a note of its own; and ❌ on the
// command. It is best-effort: the error is already logged and kept by the
// queue.
func (s *state) fail(ctx context.Context, err error) {
	body := s.redact(fmt.Sprintf("❌ Sorry, run %d failed: %s.", s.job.ID, userMessage(err)))
	var perr error
	if s.progressID != 0 {
		perr = s.gl.UpdateNote(ctx, s.thread, s.progressID, s.noteKey("progress"), body)
	} else {
		_, perr = s.gl.PostNote(ctx, s.thread, s.noteKey("failure"), body)
	}
	if perr != nil {
		s.log.Error("could not post the failure note", "err", perr)
	}
	if s.job.Args.NoteID != 0 {
		_ = s.gl.RemoveEmoji(ctx, s.thread, s.job.Args.NoteID, "eyes")
		if err := s.gl.AwardEmoji(ctx, s.thread, s.job.Args.NoteID, "x"); err != nil {
			s.log.Warn("could not react with ❌", "err", err)
		}
	}
}

func (s *state) redact(text string) string {
	if s.cfg.Redact == nil {
		return text
	}
	return s.cfg.Redact(text)
}

func refusal(username string, level, min int) string {
	return fmt.Sprintf("Sorry @%s, only project members with the %s role or higher can ask me for work here "+
		"(your role: %s). A maintainer can change your role, or the operator AGENTBOT_MIN_ACCESS_LEVEL.",
		username, config.AccessLevelName(min), config.AccessLevelName(level))
}

// permanentError is a failure a retry cannot fix.
type permanentError struct{ err error }

func (p permanentError) Error() string   { return p.err.Error() }
func (p permanentError) Unwrap() error   { return p.err }
func (p permanentError) Permanent() bool { return true }

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return permanentError{err} }

func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	if errors.As(err, &p) && p.Permanent() {
		return true
	}
	// GitLab's 4xx (but 429) will answer the same next time.
	var ge *gitlab.Error
	return errors.As(err, &ge) && ge.Status >= 400 && ge.Status < 500 && ge.Status != http.StatusTooManyRequests
}

// userMessage is the part of an error a person on the thread may read: what
// failed and what to check, never a stack trace or a secret.
func userMessage(err error) string {
	return err.Error()
}

// authorLevel is the access level on the project of whoever started the run
// (members including inherited ones; 0 for none), checked once per run.
func (s *state) authorLevel(ctx context.Context) (int, error) {
	a := s.job.Args
	var auth struct{ Level int }
	if err := s.once(ctx, "authorize", &auth, func() (any, error) {
		level, err := s.gl.AccessLevel(ctx, a.ProjectID, a.AuthorID)
		auth.Level = level
		return auth, err
	}); err != nil {
		return 0, fmt.Errorf("check @%s's access to the project: %w", a.AuthorUsername, err)
	}
	return auth.Level, nil
}
