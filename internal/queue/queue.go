// Package queue keeps agentbot's jobs durably with River: in an embedded
// SQLite file by default, in PostgreSQL when DATABASE_URL is set. It owns the
// job kinds, the migrations and the run checkpoints, and hides River's
// generic client behind a small concrete type.
package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Options configures Open.
type Options struct {
	SQLitePath  string // used when DatabaseURL is empty
	DatabaseURL string // PostgreSQL
	Workers     int    // concurrent runs; 0 means intake only (no worker)
	JobTimeout  time.Duration
	// RescueAfter is how long a job may stay running before River takes
	// its process for dead and hands it back (a process killed hard leaves
	// it "running"). At least JobTimeout; default JobTimeout + 5m.
	RescueAfter time.Duration
	MaxAttempts int
	Logger      *slog.Logger
	// Handler works each run. Required when Workers > 0.
	Handler Handler
	// PollInterval is how often an idle worker looks for new jobs when the
	// database cannot notify it (SQLite). Default 1s.
	PollInterval time.Duration
}

// Handler works one run. An error whose Permanent() method returns true is
// not retried; any other error is retried with backoff until MaxAttempts.
type Handler interface {
	Work(ctx context.Context, job Job) error
}

// Job is one run as the handler sees it.
type Job struct {
	ID          int64
	Attempt     int
	MaxAttempts int
	Args        RunArgs
	// Checkpoints records what each finished step created, so that a retry
	// after a crash finds it instead of doing it again.
	Checkpoints *Checkpoints
	// Locks serialise runs on one thread.
	Locks *Locks
}

// riverClient is the part of river.Client[TTx] we use; both drivers'
// clients satisfy it.
type riverClient interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

// Queue is an open job queue.
type Queue struct {
	client  riverClient
	db      *sql.DB // checkpoints, readiness
	close   func()
	backend string
	workers int

	requests    chan enqueueReq
	stopBatcher func()

	migrateRiver func(ctx context.Context) error
	riverPending func(ctx context.Context) (bool, error)
}

// Open connects to the database and builds the River client. It does not run
// migrations (Migrate does) nor start workers (Start does).
func Open(ctx context.Context, opt Options) (*Queue, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Workers > 0 && opt.Handler == nil {
		return nil, errors.New("queue: a Handler is required when Workers > 0")
	}
	if opt.DatabaseURL != "" {
		return openPostgres(ctx, opt)
	}
	return openSQLite(ctx, opt)
}

func riverConfig(opt Options, q *Queue) *river.Config {
	cfg := &river.Config{
		Logger:      opt.Logger.With("component", "river"),
		MaxAttempts: max(opt.MaxAttempts, 1),
		JobTimeout:  opt.JobTimeout,
		// A run killed hard stays "running" in the database; River hands it
		// back once this has passed, which must exceed the job timeout.
		RescueStuckJobsAfter: cmpOr(opt.RescueAfter, opt.JobTimeout+5*time.Minute),
		// Completed jobs are what makes a redelivered webhook a duplicate.
		CompletedJobRetentionPeriod: 7 * 24 * time.Hour,
		FetchPollInterval:           cmpOr(opt.PollInterval, time.Second),
		FetchCooldown:               50 * time.Millisecond,
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 45 * time.Minute
		cfg.RescueStuckJobsAfter = max(opt.RescueAfter, cfg.JobTimeout+5*time.Minute)
	}
	if opt.Workers > 0 {
		workers := river.NewWorkers()
		river.AddWorker(workers, &worker{handler: opt.Handler, timeout: cfg.JobTimeout, queue: q})
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opt.Workers}}
	}
	return cfg
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func openSQLite(ctx context.Context, opt Options) (*Queue, error) {
	// WAL keeps readers off the writer's back; synchronous=FULL makes every
	// committed insert survive a power cut, not only a crash; busy_timeout
	// covers the instant another process (agentbot migrate) holds the lock.
	dsn := "file:" + opt.SQLitePath + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open queue database %s: %w", opt.SQLitePath, err)
	}
	// SQLite allows one writer; River's parallel internals want one connection.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open queue database %s: %w (check AGENTBOT_DB names a writable file)", opt.SQLitePath, err)
	}
	q, err := newQueue(riversqlite.New(db), opt)
	if err != nil {
		db.Close()
		return nil, err
	}
	q.db, q.backend = db, "sqlite"
	q.start(func() { db.Close() })
	return q, nil
}

func openPostgres(ctx context.Context, opt Options) (*Queue, error) {
	pool, err := pgxpool.New(ctx, opt.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open queue database: %w (check DATABASE_URL)", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open queue database: %w (check DATABASE_URL and that PostgreSQL is reachable)", err)
	}
	q, err := newQueue(riverpgxv5.New(pool), opt)
	if err != nil {
		pool.Close()
		return nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	q.db, q.backend = db, "postgres"
	q.start(func() { db.Close(); pool.Close() })
	return q, nil
}

// newQueue builds the River client and migrator for either driver.
func newQueue[TTx any](driver riverdriver.Driver[TTx], opt Options) (*Queue, error) {
	q := &Queue{workers: opt.Workers, requests: make(chan enqueueReq, maxBatch)}
	client, err := river.NewClient(driver, riverConfig(opt, q))
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: opt.Logger.With("component", "migrate")})
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q.client = client
	q.migrateRiver = func(ctx context.Context) error {
		_, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
		return err
	}
	q.riverPending = func(ctx context.Context) (bool, error) {
		res, err := migrator.Validate(ctx, nil)
		if err != nil {
			return false, err
		}
		return !res.OK, nil
	}
	return q, nil
}

// start runs the batcher; close stops it, then releases the database.
func (q *Queue) start(release func()) {
	stop, done := make(chan struct{}), make(chan struct{})
	go q.batcher(stop, done)
	q.close = func() {
		close(stop)
		<-done
		release()
	}
}

// insertTimeout bounds one batch insert.
const insertTimeout = 30 * time.Second
