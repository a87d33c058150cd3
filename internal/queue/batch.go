package queue

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
)

// Group commit: every webhook delivery must be committed before it is
// answered, and a commit costs a disk sync. Enqueue calls that arrive while
// one commit is in flight are inserted together in the next transaction, so
// that the syncs per second, not the deliveries, are what the disk bounds.

// maxBatch bounds one transaction.
const maxBatch = 256

type enqueueReq struct {
	ctx   context.Context
	args  RunArgs
	reply chan enqueueRes
}

type enqueueRes struct {
	res Enqueued
	err error
}

// batcher is the one goroutine that inserts; it exits when stop is closed.
func (q *Queue) batcher(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		var first enqueueReq
		select {
		case <-stop:
			return
		case first = <-q.requests:
		}
		batch := []enqueueReq{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-q.requests:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		q.insertBatch(batch)
	}
}

func (q *Queue) insertBatch(batch []enqueueReq) {
	// Drop requests whose caller has gone; answer the same delivery twice in
	// one batch from its first insert (a unique conflict inside one
	// statement is an error on PostgreSQL).
	first := map[string]int{}
	var params []river.InsertManyParams
	var owners [][]enqueueReq
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.reply <- enqueueRes{err: r.ctx.Err()}
			continue
		}
		if i, ok := first[r.args.DeliveryKey]; ok {
			owners[i] = append(owners[i], r)
			continue
		}
		first[r.args.DeliveryKey] = len(params)
		params = append(params, river.InsertManyParams{Args: r.args})
		owners = append(owners, []enqueueReq{r})
	}
	if len(params) == 0 {
		return
	}
	// The callers' contexts may end during the insert; the insert itself is
	// bounded by its own deadline so that one slow caller cannot fail others.
	ctx, cancel := context.WithTimeout(context.Background(), insertTimeout)
	defer cancel()
	results, err := q.client.InsertMany(ctx, params)
	for i, rs := range owners {
		for j, r := range rs {
			if err != nil {
				r.reply <- enqueueRes{err: fmt.Errorf("enqueue run: %w", err)}
				continue
			}
			r.reply <- enqueueRes{res: Enqueued{
				ID:        results[i].Job.ID,
				Duplicate: results[i].UniqueSkippedAsDuplicate || j > 0,
			}}
		}
	}
}
