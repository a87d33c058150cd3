package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
