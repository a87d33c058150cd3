package queue

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Backend is "sqlite" or "postgres".
func (q *Queue) Backend() string { return q.backend }

// Migrate applies River's migrations and agentbot's own tables. It is safe to
// run on every start and from several processes.
func (q *Queue) Migrate(ctx context.Context) error {
	if err := q.migrateRiver(ctx); err != nil {
		return fmt.Errorf("migrate queue database: %w", err)
	}
	for _, schema := range []string{checkpointSchema, lockSchema, usageSchema, pipelineSchema} {
		if _, err := q.db.ExecContext(ctx, schema); err != nil {
			return fmt.Errorf("migrate queue database: %w", err)
		}
	}
	return nil
}

// ErrNotMigrated means the database is reachable but its schema is behind.
var ErrNotMigrated = errors.New("queue database has migrations to apply (run agentbot migrate)")

// Ready reports whether the database is reachable and migrated.
func (q *Queue) Ready(ctx context.Context) error {
	if err := q.db.PingContext(ctx); err != nil {
		return fmt.Errorf("queue database unreachable: %w", err)
	}
	pending, err := q.riverPending(ctx)
	if err != nil {
		return fmt.Errorf("queue database: %w", err)
	}
	if pending {
		return ErrNotMigrated
	}
	return nil
}

// Start starts the workers (a no-op without workers, which makes an
// intake-only process).
func (q *Queue) Start(ctx context.Context) error {
	if q.workers == 0 {
		return nil
	}
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	return nil
}

// Stop lets running jobs finish until ctx is done, then cancels them: River
// marks a cancelled job retryable, so it goes back to the queue for the next
// start (or another replica) instead of being lost.
func (q *Queue) Stop(ctx context.Context) error {
	if q.workers == 0 {
		return nil
	}
	err := q.client.Stop(ctx)
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// Give cancelled jobs a moment to return and be marked retryable.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return q.client.StopAndCancel(cctx)
	}
	return err
}

// Close releases the database.
func (q *Queue) Close() { q.close() }
