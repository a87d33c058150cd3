package queue_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/queue"
	"gitlab.com/agentbot/agentbot/internal/queue/queuetest"
)

// recorder is a Handler that records the jobs it works and lets a test
// script what each attempt returns.
type recorder struct {
	mu   sync.Mutex
	jobs []queue.Job
	done chan queue.Job
	work func(ctx context.Context, job queue.Job) error
}

func newRecorder() *recorder { return &recorder{done: make(chan queue.Job, 100)} }

func (r *recorder) Work(ctx context.Context, job queue.Job) error {
	var err error
	if r.work != nil {
		err = r.work(ctx, job)
	}
	r.mu.Lock()
	r.jobs = append(r.jobs, job)
	r.mu.Unlock()
	r.done <- job
	return err
}

func (r *recorder) wait(t *testing.T) queue.Job {
	t.Helper()
	select {
	case j := <-r.done:
		return j
	case <-time.After(15 * time.Second):
		t.Fatal("no job worked within 15s")
		return queue.Job{}
	}
}

type backend struct {
	name string
	opts func(t *testing.T) queue.Options
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) queue.Options {
			return queue.Options{SQLitePath: filepath.Join(t.TempDir(), "q.db")}
		}},
		{"postgres", func(t *testing.T) queue.Options {
			return queue.Options{DatabaseURL: queuetest.PostgresURL(t)}
		}},
	}
}

func open(t *testing.T, opt queue.Options) *queue.Queue {
	t.Helper()
	ctx := context.Background()
	opt.PollInterval = 50 * time.Millisecond
	q, err := queue.Open(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	if err := q.Ready(ctx); !errors.Is(err, queue.ErrNotMigrated) {
		t.Fatalf("Ready before migrating = %v, want ErrNotMigrated", err)
	}
	if err := q.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if err := q.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	return q
}

func TestEnqueueIsUniquePerDeliveryAndWorked(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			rec := newRecorder()
			opt := b.opts(t)
			opt.Workers, opt.Handler = 2, rec
			q := open(t, opt)

			args := queue.RunArgs{DeliveryKey: "delivery-1", ProjectID: 42, ThreadKind: "issue", IID: 7}
			first, err := q.Enqueue(ctx, args)
			if err != nil || first.Duplicate {
				t.Fatalf("first Enqueue = %+v, %v", first, err)
			}
			for range 4 {
				again, err := q.Enqueue(ctx, args)
				if err != nil || !again.Duplicate || again.ID != first.ID {
					t.Fatalf("redelivery = %+v, %v; want duplicate of %d", again, err, first.ID)
				}
			}
			other, err := q.Enqueue(ctx, queue.RunArgs{DeliveryKey: "delivery-2"})
			if err != nil || other.Duplicate || other.ID == first.ID {
				t.Fatalf("other delivery = %+v, %v", other, err)
			}

			if err := q.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { q.Stop(context.Background()) })
			seen := map[string]int{}
			for range 2 {
				seen[rec.wait(t).Args.DeliveryKey]++
			}
			if seen["delivery-1"] != 1 || seen["delivery-2"] != 1 {
				t.Fatalf("worked %v, want each delivery once", seen)
			}
			// A completed job still makes its redelivery a duplicate.
			again, err := q.Enqueue(ctx, args)
			if err != nil || !again.Duplicate {
				t.Fatalf("redelivery after completion = %+v, %v", again, err)
			}
		})
	}
}

type permanent struct{ error }

func (permanent) Permanent() bool { return true }

func TestRetriesTransientNotPermanentAndKeepsCheckpoints(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			rec := newRecorder()
			rec.work = func(ctx context.Context, job queue.Job) error {
				type note struct{ ID int64 }
				var n note
				found, err := job.Checkpoints.Get(ctx, "reply", &n)
				if err != nil {
					return err
				}
				switch job.Args.DeliveryKey {
				case "transient":
					if !found {
						if err := job.Checkpoints.Put(ctx, "reply", note{ID: 99}); err != nil {
							return err
						}
						return errors.New("gitlab answered 502")
					}
					if n.ID != 99 {
						return permanent{errors.New("checkpoint lost")}
					}
					return nil
				default:
					return permanent{errors.New("not allowed")}
				}
			}
			opt := b.opts(t)
			opt.Workers, opt.Handler, opt.MaxAttempts = 1, rec, 3
			q := open(t, opt)
			if _, err := q.Enqueue(ctx, queue.RunArgs{DeliveryKey: "permanent"}); err != nil {
				t.Fatal(err)
			}
			if _, err := q.Enqueue(ctx, queue.RunArgs{DeliveryKey: "transient"}); err != nil {
				t.Fatal(err)
			}
			if err := q.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { q.Stop(context.Background()) })
			attempts := map[string]int{}
			for range 3 { // permanent once, transient twice (River retries after ~1s)
				attempts[rec.wait(t).Args.DeliveryKey]++
			}
			if attempts["permanent"] != 1 || attempts["transient"] != 2 {
				t.Fatalf("attempts %v, want permanent 1 and transient 2", attempts)
			}
		})
	}
}

func TestLocksAndUsage(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			rec := newRecorder()
			results := make(chan string, 10)
			rec.work = func(ctx context.Context, job queue.Job) error {
				switch job.Args.DeliveryKey {
				case "a":
					_, ok, err := job.Locks.TryLock(ctx, "thread/42/issue/7", time.Minute)
					n, _ := job.Locks.Held(ctx, "thread/42/")
					m, _ := job.Locks.Held(ctx, "thread/4_/")
					used, _ := job.Locks.Use(ctx, "user/7", time.Hour)
					again, _ := job.Locks.Use(ctx, "user/7", time.Hour)
					results <- fmt.Sprint(ok, err, n, m, used, again)
				case "b":
					holder, ok, err := job.Locks.TryLock(ctx, "thread/42/issue/7", time.Minute)
					used, _ := job.Locks.Use(ctx, "user/7", time.Hour)
					results <- fmt.Sprint(holder > 0, ok, err, used)
					if err := job.Locks.Unlock(ctx, "thread/42/issue/7"); err != nil {
						return err
					}
				}
				return nil
			}
			opt := b.opts(t)
			opt.Workers, opt.Handler = 1, rec
			q := open(t, opt)
			for _, k := range []string{"a", "b"} {
				if _, err := q.Enqueue(ctx, queue.RunArgs{DeliveryKey: k}); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { q.Stop(context.Background()) })
			if got := <-results; got != "true <nil> 1 0 1 1" {
				t.Fatalf("first job: %s", got)
			}
			if got := <-results; got != "true false <nil> 2" {
				t.Fatalf("second job: %s", got)
			}
		})
	}
}
