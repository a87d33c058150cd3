package queue

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"gitlab.com/agentbot/agentbot/internal/command"
)

// Trigger says what started a run.
type Trigger string

const (
	TriggerNote     Trigger = "note"     // a comment command
	TriggerReview   Trigger = "review"   // the bot added as a reviewer
	TriggerPipeline Trigger = "pipeline" // a pipeline event matching a rule
)

// RunArgs is one run's job: everything the worker needs from the delivery,
// so that it can act after a restart without the webhook.
type RunArgs struct {
	// DeliveryKey makes the job unique: GitLab's Idempotency-Key, or the
	// event UUID plus the note id.
	DeliveryKey string  `json:"delivery_key" river:"unique"`
	Trigger     Trigger `json:"trigger"`

	ProjectID   int64  `json:"project_id"`
	ProjectPath string `json:"project_path"`
	// ThreadKind is "issue" or "mr"; IID the or MR's number.
	ThreadKind   string `json:"thread_kind"`
	IID          int64  `json:"iid"`
	Title        string `json:"title,omitempty"`
	Confidential bool   `json:"confidential,omitempty"`
	NoteID       int64  `json:"note_id,omitempty"`
	DiscussionID string `json:"discussion_id,omitempty"`
	// Internal is set when the triggering note was internal; replies are too.
	Internal bool `json:"internal,omitempty"`

	AuthorID       int64  `json:"author_id"`
	AuthorUsername string `json:"author_username"`

	Command    command.Command `json:"command"`
	ReceivedAt time.Time       `json:"received_at"`

	// HeadSHA is the commit a review or a pipeline event is about: the
	// merge request's head when the review was asked for, the pipeline's
	// commit.
	HeadSHA string `json:"head_sha,omitempty"`
	// The pipeline of a TriggerPipeline run. Its merge request, when it has
	// one, is the thread (ThreadKind "mr", IID).
	PipelineID     int64  `json:"pipeline_id,omitempty"`
	PipelineIID    int64  `json:"pipeline_iid,omitempty"`
	PipelineStatus string `json:"pipeline_status,omitempty"`
	Ref            string `json:"ref,omitempty"`    // the pipeline's branch or tag
	Source         string `json:"source,omitempty"` // push, schedule, merge_request_event, …
}

// Kind is River's job kind.
func (RunArgs) Kind() string { return "agentbot_run" }

// InsertOpts makes a redelivery of the same event a no-op for as long as
// the first job is kept (CompletedJobRetentionPeriod).
func (RunArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{
		ByArgs: true,
		ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStateCompleted, rivertype.JobStatePending,
			rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled,
			rivertype.JobStateCancelled, rivertype.JobStateDiscarded,
		},
	}}
}

// Enqueued is the outcome of Enqueue.
type Enqueued struct {
	ID        int64
	Duplicate bool // an earlier delivery of the same event already made the job
}

// Enqueue stores a run durably; it returns once the insert has committed.
// Concurrent calls share transactions (see batch.go).
func (q *Queue) Enqueue(ctx context.Context, args RunArgs) (Enqueued, error) {
	req := enqueueReq{ctx: ctx, args: args, reply: make(chan enqueueRes, 1)}
	select {
	case q.requests <- req:
	case <-ctx.Done():
		return Enqueued{}, ctx.Err()
	}
	// The batcher always answers, so this cannot leak: an insert that
	// outlives the caller's context still commits (GitLab may resend, and
	// the unique key makes that a duplicate).
	select {
	case r := <-req.reply:
		return r.res, r.err
	case <-ctx.Done():
		return Enqueued{}, ctx.Err()
	}
}

type worker struct {
	river.WorkerDefaults[RunArgs]
	handler Handler
	timeout time.Duration
	queue   *Queue
}

func (w *worker) Timeout(*river.Job[RunArgs]) time.Duration { return w.timeout }

func (w *worker) Work(ctx context.Context, j *river.Job[RunArgs]) error {
	err := w.handler.Work(ctx, Job{
		ID:          j.ID,
		Attempt:     j.Attempt,
		MaxAttempts: j.MaxAttempts,
		Args:        j.Args,
		Checkpoints: &Checkpoints{db: w.queue.db, jobID: j.ID},
		Locks:       &Locks{db: w.queue.db, jobID: j.ID},
	})
	var snooze *SnoozeError
	if errors.As(err, &snooze) {
		return river.JobSnooze(snooze.After)
	}
	var p interface{ Permanent() bool }
	if errors.As(err, &p) && p.Permanent() {
		return river.JobCancel(err)
	}
	return err
}
