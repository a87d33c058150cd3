package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/queue"
)

// Bot is who the bot is on GitLab, found with GET /user at start-up.
type Bot struct {
	UserID   int64
	Username string
}

// Decision is what to do with one verified delivery: a job to enqueue, or a
// reason to ignore it (answered 2xx all the same, since GitLab counts 4xx
// towards disabling the hook).
type Decision struct {
	Job    *queue.RunArgs
	Ignore string // why there is no job; a fixed phrase, never request text
	// Pipeline is the new status of a pipeline agentbot started (the
	// pipeline executor's): no job, but the run following it is told.
	Pipeline *PipelineStatus
}

// PipelineStatus is a Pipeline Hook's news about one pipeline.
type PipelineStatus struct {
	ProjectID, PipelineID int64
	Status                string
}

// ErrMalformed is a body that does not parse as the event it claims to be.
type ErrMalformed struct{ err error }

func (e ErrMalformed) Error() string { return "malformed delivery: " + e.err.Error() }
func (e ErrMalformed) Unwrap() error { return e.err }

// Classify decides what a delivery asks for. It is pure: no I/O.
func Classify(h http.Header, body []byte, bot Bot, opt command.Options, now time.Time) (Decision, error) {
	eventType := gitlab.EventType(h.Get("X-Gitlab-Event"))
	switch eventType {
	case gitlab.EventTypeNote, gitlab.EventConfidentialNote, gitlab.EventTypeMergeRequest, gitlab.EventTypePipeline:
	default:
		return Decision{Ignore: "event not handled"}, nil
	}
	event, err := gitlab.ParseWebhook(eventType, body)
	if err != nil {
		return Decision{}, ErrMalformed{err}
	}
	switch e := event.(type) {
	case *gitlab.MergeEvent:
		return classifyReview(e, bot, now), nil
	case *gitlab.PipelineEvent:
		return classifyPipeline(e, bot, now), nil
	}
	n, ok := noteFrom(event)
	if !ok {
		return Decision{Ignore: "note not on an issue or merge request"}, nil
	}
	n.internal = eventType == gitlab.EventConfidentialNote
	switch {
	case n.system:
		return Decision{Ignore: "system note"}, nil
	case n.action == "update":
		return Decision{Ignore: "edited note"}, nil
	case n.authorID == bot.UserID && bot.UserID != 0:
		return Decision{Ignore: "the bot's own note"}, nil
	}
	if opt.BotUsername == "" {
		opt.BotUsername = bot.Username
	}
	cmd := command.Parse(n.body, opt)
	if cmd.Kind == command.Ignore {
		return Decision{Ignore: "not a command"}, nil
	}
	return Decision{Job: &queue.RunArgs{
		DeliveryKey:    deliveryKey(h, body, n.id),
		Trigger:        queue.TriggerNote,
		ProjectID:      n.projectID,
		ProjectPath:    n.projectPath,
		ThreadKind:     n.kind,
		IID:            n.iid,
		Title:          n.title,
		Confidential:   n.confidential,
		NoteID:         n.id,
		DiscussionID:   n.discussionID,
		Internal:       n.internal,
		AuthorID:       n.authorID,
		AuthorUsername: n.authorUsername,
		Command:        cmd,
		ReceivedAt:     now.UTC(),
	}}, nil
}

// deliveryKey is what makes a redelivery a duplicate: GitLab's
// Idempotency-Key (the same on every retry of one delivery), else the event
// UUID plus the note id, else a hash of the body.
func deliveryKey(h http.Header, body []byte, noteID int64) string {
	if k := h.Get("Idempotency-Key"); k != "" {
		return "idem:" + k
	}
	if u := h.Get("X-Gitlab-Event-UUID"); u != "" {
		return "event:" + u + ":" + strconv.FormatInt(noteID, 10)
	}
	sum := sha256.Sum256(body)
	return "body:" + hex.EncodeToString(sum[:])
}

// note is what Classify needs from either kind of note event.
type note struct {
	id, projectID, iid, authorID int64
	kind                         string
	projectPath, title, body     string
	authorUsername               string
	discussionID, action         string
	system, confidential         bool
	internal                     bool
}

func noteFrom(event any) (note, bool) {
	switch e := event.(type) {
	case *gitlab.IssueCommentEvent:
		n := note{
			id: e.ObjectAttributes.ID, projectID: e.ProjectID, iid: e.Issue.IID,
			authorID: e.ObjectAttributes.AuthorID, kind: "issue",
			projectPath: e.Project.PathWithNamespace, title: e.Issue.Title, body: e.ObjectAttributes.Note,
			discussionID: e.ObjectAttributes.DiscussionID, action: string(e.ObjectAttributes.Action),
			system: e.ObjectAttributes.System, confidential: e.Issue.Confidential,
		}
		if e.User != nil {
			n.authorUsername = e.User.Username
		}
		return n, true
	case *gitlab.MergeCommentEvent:
		n := note{
			id: e.ObjectAttributes.ID, projectID: e.ProjectID, iid: e.MergeRequest.IID,
			authorID: e.ObjectAttributes.AuthorID, kind: "mr",
			projectPath: e.Project.PathWithNamespace, title: e.MergeRequest.Title, body: e.ObjectAttributes.Note,
			discussionID: e.ObjectAttributes.DiscussionID, action: string(e.ObjectAttributes.Action),
			system: e.ObjectAttributes.System,
		}
		if e.User != nil {
			n.authorUsername = e.User.Username
		}
		return n, true
	}
	return note{}, false
}
