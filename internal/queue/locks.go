package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

const lockSchema = `CREATE TABLE IF NOT EXISTS agentbot_lock (
	key        TEXT   PRIMARY KEY,
	job_id     BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
)`

// Locks serialise runs that must not overlap (two commands on one issue
// push to one branch). A lock belongs to a job; it expires, so that a
// process killed while holding one does not block the thread for ever.
type Locks struct {
	db    *sql.DB
	jobID int64
}

// TryLock takes key for this job (or renews it) and reports whether it now
// holds it; when not, holder is the job that does.
func (l *Locks) TryLock(ctx context.Context, key string, ttl time.Duration) (holder int64, ok bool, err error) {
	now := time.Now()
	if _, err := l.db.ExecContext(ctx, `DELETE FROM agentbot_lock WHERE key = $1 AND expires_at < $2`, key, now.Unix()); err != nil {
		return 0, false, fmt.Errorf("lock %s: %w", key, err)
	}
	if _, err := l.db.ExecContext(ctx, `INSERT INTO agentbot_lock (key, job_id, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO NOTHING`, key, l.jobID, now.Add(ttl).Unix()); err != nil {
		return 0, false, fmt.Errorf("lock %s: %w", key, err)
	}
	err = l.db.QueryRowContext(ctx, `SELECT job_id FROM agentbot_lock WHERE key = $1`, key).Scan(&holder)
	if errors.Is(err, sql.ErrNoRows) { // released in between: try again later
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("lock %s: %w", key, err)
	}
	if holder == l.jobID {
		_, err = l.db.ExecContext(ctx, `UPDATE agentbot_lock SET expires_at = $1 WHERE key = $2 AND job_id = $3`,
			now.Add(ttl).Unix(), key, l.jobID)
		return holder, err == nil, err
	}
	return holder, false, nil
}

// Unlock releases key if this job holds it.
func (l *Locks) Unlock(ctx context.Context, key string) error {
	if _, err := l.db.ExecContext(ctx, `DELETE FROM agentbot_lock WHERE key = $1 AND job_id = $2`, key, l.jobID); err != nil {
		return fmt.Errorf("unlock %s: %w", key, err)
	}
	return nil
}

// SnoozeError asks the queue to run the job again after a while, without
// counting an attempt (it waits for a lock, it did not fail).
type SnoozeError struct{ After time.Duration }

func (s *SnoozeError) Error() string { return fmt.Sprintf("snoozed for %s", s.After) }

// Snooze returns a SnoozeError.
func Snooze(d time.Duration) error { return &SnoozeError{After: d} }

// Held counts the unexpired locks whose key starts with prefix (the runs
// going on in one project).
func (l *Locks) Held(ctx context.Context, prefix string) (int, error) {
	var n int
	err := l.db.QueryRowContext(ctx, `SELECT count(*) FROM agentbot_lock WHERE key LIKE $1 ESCAPE '\' AND expires_at >= $2`,
		likePrefix(prefix), time.Now().Unix()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count locks %s: %w", prefix, err)
	}
	return n, nil
}

const usageSchema = `CREATE TABLE IF NOT EXISTS agentbot_usage (
	key    TEXT   NOT NULL,
	job_id BIGINT NOT NULL,
	at     BIGINT NOT NULL,
	PRIMARY KEY (key, job_id)
)`

// Use records that this job counts against key (a user's rate limit) and
// returns how many jobs did within window, this one included. Recording is
// idempotent per job, so a retried run is not counted twice.
func (l *Locks) Use(ctx context.Context, key string, window time.Duration) (int, error) {
	now := time.Now()
	if _, err := l.db.ExecContext(ctx, `DELETE FROM agentbot_usage WHERE key = $1 AND at < $2`, key, now.Add(-window).Unix()); err != nil {
		return 0, fmt.Errorf("rate %s: %w", key, err)
	}
	if _, err := l.db.ExecContext(ctx, `INSERT INTO agentbot_usage (key, job_id, at) VALUES ($1, $2, $3)
		ON CONFLICT (key, job_id) DO NOTHING`, key, l.jobID, now.Unix()); err != nil {
		return 0, fmt.Errorf("rate %s: %w", key, err)
	}
	var n int
	if err := l.db.QueryRowContext(ctx, `SELECT count(*) FROM agentbot_usage WHERE key = $1 AND at >= $2 AND job_id <= $3`,
		key, now.Add(-window).Unix(), l.jobID).Scan(&n); err != nil {
		return 0, fmt.Errorf("rate %s: %w", key, err)
	}
	return n, nil
}

func likePrefix(p string) string {
	return strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(p) + "%"
}

const pipelineSchema = `CREATE TABLE IF NOT EXISTS agentbot_pipeline (
	project_id  BIGINT NOT NULL,
	pipeline_id BIGINT NOT NULL,
	status      TEXT   NOT NULL,
	at          BIGINT NOT NULL,
	PRIMARY KEY (project_id, pipeline_id)
)`

// RecordPipeline keeps the newest status a Pipeline Hook reported for a
// pipeline agentbot started, so that the run following it learns of a
// change at once instead of at its next poll.
func (q *Queue) RecordPipeline(ctx context.Context, projectID, pipelineID int64, status string) error {
	_, err := q.db.ExecContext(ctx, `INSERT INTO agentbot_pipeline (project_id, pipeline_id, status, at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (project_id, pipeline_id) DO UPDATE SET status = excluded.status, at = excluded.at`,
		projectID, pipelineID, status, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("record pipeline %d: %w", pipelineID, err)
	}
	return nil
}

// PipelineStatus is the newest status a hook reported; "" when none did.
func (l *Locks) PipelineStatus(ctx context.Context, projectID, pipelineID int64) (string, error) {
	var status string
	err := l.db.QueryRowContext(ctx, `SELECT status FROM agentbot_pipeline WHERE project_id = $1 AND pipeline_id = $2`,
		projectID, pipelineID).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("pipeline %d status: %w", pipelineID, err)
	}
	return status, nil
}
