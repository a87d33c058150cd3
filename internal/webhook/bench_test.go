package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/queue"
	"gitlab.com/agentbot/agentbot/internal/webhook"
	"gitlab.com/agentbot/agentbot/webhooks"
)

// BenchmarkIntake posts verified Note Hooks from concurrent clients over
// loopback to the real handler on a real SQLite queue (each answered 202
// only after its insert committed), and in the same run to a no-op handler
// that only reads the body. It reports durable deliveries per second and
// p50/p99 latency for both, and the ratio.
//
//	go test -run '^$' -bench BenchmarkIntake -benchtime 4000x ./internal/webhook
func BenchmarkIntake(b *testing.B) {
	d, err := webhooks.Load("note_issue")
	if err != nil {
		b.Fatal(err)
	}
	const clients = 32
	ctx := context.Background()
	q, err := queue.Open(ctx, queue.Options{SQLitePath: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	if err := q.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	real := httptest.NewServer(webhook.New(webhook.Config{Secret: "s3cret", Bot: bot, Command: command.Options{}}, q))
	defer real.Close()
	noop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer noop.Close()

	var seq atomic.Int64
	run := func(url string, n int) (perSec float64, p50, p99 time.Duration) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		lat := make([]time.Duration, n)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.Body))
					req.Header = d.Header.Clone()
					req.Header.Set("X-Gitlab-Token", "s3cret")
					req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d", seq.Add(1)))
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					lat[i] = time.Since(t0)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		slices.Sort(lat)
		return float64(n) / elapsed.Seconds(), lat[n/2], lat[n*99/100]
	}

	n := max(b.N, 200)
	b.ResetTimer()
	rate, p50, p99 := run(real.URL, n)
	b.StopTimer()
	noopRate, noopP50, noopP99 := run(noop.URL, n)
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(noopRate, "noop-req/s")
	b.ReportMetric(float64(noopP50.Microseconds())/1000, "noop-p50-ms")
	b.ReportMetric(float64(noopP99.Microseconds())/1000, "noop-p99-ms")
	b.ReportMetric(rate/noopRate, "ratio")
}
