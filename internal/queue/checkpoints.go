package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

const checkpointSchema = `CREATE TABLE IF NOT EXISTS agentbot_checkpoint (
	job_id  BIGINT NOT NULL,
	step    TEXT   NOT NULL,
	data    TEXT   NOT NULL,
	PRIMARY KEY (job_id, step)
)`

// Checkpoints stores what each step of one run created (a note id, a commit,
// an MR), committed as soon as the step has done it. A retried run reads them
// and skips what is done.
type Checkpoints struct {
	db    *sql.DB
	jobID int64
}

// Get loads step's record into v; false when the step has not finished.
func (c *Checkpoints) Get(ctx context.Context, step string, v any) (bool, error) {
	var data string
	err := c.db.QueryRowContext(ctx,
		`SELECT data FROM agentbot_checkpoint WHERE job_id = $1 AND step = $2`, c.jobID, step).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read checkpoint %s: %w", step, err)
	}
	if err := json.Unmarshal([]byte(data), v); err != nil {
		return false, fmt.Errorf("read checkpoint %s: %w", step, err)
	}
	return true, nil
}

// Put records step's result, replacing an earlier one.
func (c *Checkpoints) Put(ctx context.Context, step string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", step, err)
	}
	_, err = c.db.ExecContext(ctx, `INSERT INTO agentbot_checkpoint (job_id, step, data) VALUES ($1, $2, $3)
		ON CONFLICT (job_id, step) DO UPDATE SET data = excluded.data`, c.jobID, step, string(data))
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", step, err)
	}
	return nil
}
