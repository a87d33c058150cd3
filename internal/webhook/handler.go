// Package webhook receives GitLab webhook deliveries: it verifies them,
// limits their size, parses and classifies them with client-go, enqueues a
// job for the ones that ask the bot for something, and answers. Nothing of
// the request is echoed back.
package webhook

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/queue"
)

// Enqueuer stores a job durably; it returns once the insert has committed.
type Enqueuer interface {
	Enqueue(ctx context.Context, args queue.RunArgs) (queue.Enqueued, error)
}

// PipelineRecorder, when the Enqueuer has it, keeps the status Pipeline
// Hooks report for the pipelines agentbot started.
type PipelineRecorder interface {
	RecordPipeline(ctx context.Context, projectID, pipelineID int64, status string) error
}

// Config is the handler's settings.
type Config struct {
	Secret     string // GITLAB_WEBHOOK_SECRET; checked when set
	SigningKey []byte // decoded GITLAB_WEBHOOK_SIGNING_TOKEN; checked when set
	MaxBody    int64
	Bot        Bot
	Command    command.Options
	Logger     *slog.Logger
	Now        func() time.Time // time.Now when nil
	// Observe, when set, is told each delivery's event and outcome (metrics).
	Observe func(event, outcome string)
}

// Outcomes of a delivery, as logged and counted.
const (
	OutcomeQueued       = "queued"
	OutcomeDuplicate    = "duplicate"
	OutcomeIgnored      = "ignored"
	OutcomeUnauthorized = "unauthorized"
	OutcomeTooLarge     = "too_large"
	OutcomeMalformed    = "malformed"
	OutcomeError        = "error"
)

type handler struct {
	cfg Config
	q   Enqueuer
}

// New returns the handler for POST /webhooks/gitlab.
func New(cfg Config, q Enqueuer) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 5 << 20
	}
	return &handler{cfg: cfg, q: q}
}

type answer struct {
	Status string `json:"status"`
	Job    int64  `json:"job,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event := r.Header.Get("X-Gitlab-Event")
	log := h.cfg.Logger.With("event", event, "delivery", r.Header.Get("X-Gitlab-Event-UUID"))
	outcome, status, ans := h.handle(r, log)
	if h.cfg.Observe != nil {
		h.cfg.Observe(eventLabel(event), outcome)
	}
	writeJSON(w, status, ans)
}

func (h *handler) handle(r *http.Request, log *slog.Logger) (outcome string, status int, ans answer) {
	// The shared secret is checked before the body is read.
	if h.cfg.Secret != "" {
		if err := CheckToken(r.Header, h.cfg.Secret); err != nil {
			log.Warn("webhook rejected", "reason", err.Error())
			return OutcomeUnauthorized, http.StatusUnauthorized, answer{Status: "unauthorized"}
		}
	}
	if r.ContentLength > h.cfg.MaxBody {
		log.Warn("webhook rejected", "reason", "body too large", "bytes", r.ContentLength)
		return OutcomeTooLarge, http.StatusRequestEntityTooLarge, answer{Status: "too large"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, h.cfg.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			log.Warn("webhook rejected", "reason", "body too large")
			return OutcomeTooLarge, http.StatusRequestEntityTooLarge, answer{Status: "too large"}
		}
		log.Warn("webhook rejected", "reason", "reading body", "err", err)
		return OutcomeMalformed, http.StatusBadRequest, answer{Status: "unreadable body"}
	}
	if h.cfg.SigningKey != nil {
		if err := CheckSignature(r.Header, body, h.cfg.SigningKey, h.cfg.Now()); err != nil {
			log.Warn("webhook rejected", "reason", err.Error())
			return OutcomeUnauthorized, http.StatusUnauthorized, answer{Status: "unauthorized"}
		}
	}
	d, err := Classify(r.Header, body, h.cfg.Bot, h.cfg.Command, h.cfg.Now())
	if err != nil {
		log.Warn("webhook rejected", "reason", err.Error())
		return OutcomeMalformed, http.StatusBadRequest, answer{Status: "malformed"}
	}
	if p := d.Pipeline; p != nil {
		if rec, ok := h.q.(PipelineRecorder); ok {
			// Best effort: the run following the pipeline polls it anyway.
			if err := rec.RecordPipeline(r.Context(), p.ProjectID, p.PipelineID, p.Status); err != nil {
				log.Warn("pipeline status not recorded", "err", err)
			}
		}
	}
	if d.Job == nil {
		log.Debug("webhook ignored", "reason", d.Ignore)
		return OutcomeIgnored, http.StatusOK, answer{Status: "ignored", Reason: d.Ignore}
	}
	log = log.With("project", d.Job.ProjectPath, "iid", d.Job.IID, "kind", d.Job.ThreadKind)
	res, err := h.q.Enqueue(r.Context(), *d.Job)
	if err != nil {
		log.Error("webhook not queued", "err", err)
		return OutcomeError, http.StatusServiceUnavailable, answer{Status: "queue unavailable"}
	}
	if res.Duplicate {
		log.Info("webhook redelivered", "job", res.ID)
		return OutcomeDuplicate, http.StatusAccepted, answer{Status: "duplicate", Job: res.ID}
	}
	log.Info("webhook queued", "job", res.ID, "command", d.Job.Command.Kind.String())
	return OutcomeQueued, http.StatusAccepted, answer{Status: "queued", Job: res.ID}
}

// eventLabel bounds the metric label's values to GitLab's event names.
func eventLabel(event string) string {
	switch event {
	case "Note Hook", "Confidential Note Hook", "Merge Request Hook", "Pipeline Hook",
		"Issue Hook", "Confidential Issue Hook", "Push Hook", "Tag Push Hook", "Job Hook",
		"Wiki Page Hook", "Deployment Hook", "Release Hook", "Emoji Hook", "System Hook":
		return event
	case "":
		return "none"
	}
	return "other"
}
