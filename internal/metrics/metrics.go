// Package metrics holds agentbot's Prometheus metrics on a registry of its
// own (never the global default one) and serves them for GET /metrics.
//
// All methods are safe for concurrent use, and safe on a nil *Metrics,
// where they do nothing: code that is handed no metrics need not check.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gitlab.com/agentbot/agentbot/internal/agent"
)

// Metric family names, as scraped.
const (
	NameDeliveries     = "agentbot_webhook_deliveries_total"
	NameRuns           = "agentbot_runs_total"
	NameRunDuration    = "agentbot_run_duration_seconds"
	NameQueueWait      = "agentbot_queue_wait_seconds"
	NameTokens         = "agentbot_model_tokens_total"
	NameCost           = "agentbot_model_cost_usd_total"
	NameToolCalls      = "agentbot_tool_calls_total"
	NameGitLabRequests = "agentbot_gitlab_api_requests_total"
	NameRunsInProgress = "agentbot_runs_in_progress"
)

// Families lists every agentbot family name.
func Families() []string {
	return []string{NameDeliveries, NameRuns, NameRunDuration, NameQueueWait, NameTokens,
		NameCost, NameToolCalls, NameGitLabRequests, NameRunsInProgress}
}

// OtherTool is the tool label of calls to tools beyond the label budget.
const OtherTool = "other"

// Options tunes New.
type Options struct {
	// KnownTools always get a tool label of their own (the built-in file
	// and progress tools, the MCP tools listed at start-up).
	KnownTools []string
	// MaxOtherTools is how many further distinct tool names get a label
	// of their own before the rest are counted as "other". Default 32.
	MaxOtherTools int
}

// Metrics records agentbot's metrics.
type Metrics struct {
	reg *prometheus.Registry

	deliveries     *prometheus.CounterVec
	runs           *prometheus.CounterVec
	runDuration    *prometheus.HistogramVec
	queueWait      prometheus.Histogram
	tokens         *prometheus.CounterVec
	cost           prometheus.Counter
	toolCalls      *prometheus.CounterVec
	gitlabRequests *prometheus.CounterVec
	inProgress     prometheus.Gauge

	now func() time.Time

	mu       sync.Mutex
	known    map[string]bool
	others   map[string]bool
	maxOther int
}

// Buckets of the duration histograms, in seconds: from a second (help
// replies) to an hour (River's job timeout for long agent runs).
var (
	runBuckets  = []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600}
	waitBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600}
)

// New builds the metrics on a fresh registry that also holds the Go runtime
// and process collectors.
func New(opt Options) *Metrics {
	if opt.MaxOtherTools <= 0 {
		opt.MaxOtherTools = 32
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameDeliveries,
			Help: "GitLab webhook deliveries by event (X-Gitlab-Event) and outcome (queued, duplicate, ignored, unauthorized, too_large, malformed, error).",
		}, []string{"event", "outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRuns,
			Help: "Finished runs by kind and outcome.",
		}, []string{"kind", "outcome"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameRunDuration,
			Help:    "Duration of one run attempt, from start to outcome, by kind.",
			Buckets: runBuckets,
		}, []string{"kind"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    NameQueueWait,
			Help:    "Time from a job's enqueueing to the start of its run.",
			Buckets: waitBuckets,
		}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameTokens,
			Help: "Model tokens by type (input, output, cache_read, cache_write).",
		}, []string{"type"}),
		cost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameCost,
			Help: "Estimated model cost in US dollars, from the configured prices.",
		}),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameToolCalls,
			Help: "Tool calls by tool and outcome (ok, error); tools beyond the label budget count as \"other\".",
		}, []string{"tool", "outcome"}),
		gitlabRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameGitLabRequests,
			Help: "HTTP requests to the GitLab API by method and status code (\"error\" when no response came), retries included.",
		}, []string{"method", "status"}),
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameRunsInProgress,
			Help: "Runs executing now in this process.",
		}),
		now:      time.Now,
		known:    map[string]bool{},
		others:   map[string]bool{},
		maxOther: opt.MaxOtherTools,
	}
	for _, t := range opt.KnownTools {
		m.known[t] = true
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.deliveries, m.runs, m.runDuration, m.queueWait, m.tokens, m.cost,
		m.toolCalls, m.gitlabRequests, m.inProgress,
	)
	// Token types are known in advance: show them at zero from the start.
	for _, t := range []string{"input", "output", "cache_read", "cache_write"} {
		m.tokens.WithLabelValues(t)
	}
	return m
}

// Registry is the registry the metrics are on, for collectors of other
// packages (queue depth, database pool statistics).
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the metrics in Prometheus' text (or OpenMetrics) format,
// for GET /metrics.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Delivery counts one webhook delivery; it fits webhook.Config.Observe.
func (m *Metrics) Delivery(event, outcome string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(event, outcome).Inc()
}

// RunStarted marks a run of kind as started; call the returned func once
// with its outcome ("ok", "failed", "refused", "retry", …) when it ends.
// Later calls of the returned func do nothing.
func (m *Metrics) RunStarted(kind string) (finished func(outcome string)) {
	if m == nil {
		return func(string) {}
	}
	start := m.now()
	m.inProgress.Inc()
	var once sync.Once
	return func(outcome string) {
		once.Do(func() {
			m.inProgress.Dec()
			m.runs.WithLabelValues(kind, outcome).Inc()
			m.runDuration.WithLabelValues(kind).Observe(m.now().Sub(start).Seconds())
		})
	}
}

// QueueWait records the time a job waited between its enqueueing and the
// start of its run.
func (m *Metrics) QueueWait(d time.Duration) {
	if m == nil {
		return
	}
	m.queueWait.Observe(max(d, 0).Seconds())
}

// Tokens adds one model call's (or one run's) usage and estimated cost.
func (m *Metrics) Tokens(u agent.Usage, cost float64) {
	if m == nil {
		return
	}
	add := func(t string, n int) {
		if n > 0 {
			m.tokens.WithLabelValues(t).Add(float64(n))
		}
	}
	add("input", u.InputTokens)
	add("output", u.OutputTokens)
	add("cache_read", u.CacheReadTokens)
	add("cache_write", u.CacheWriteTokens)
	if cost > 0 {
		m.cost.Add(cost)
	}
}

// ToolCall counts one tool call and whether it failed.
func (m *Metrics) ToolCall(name string, isError bool) {
	if m == nil {
		return
	}
	outcome := "ok"
	if isError {
		outcome = "error"
	}
	m.toolCalls.WithLabelValues(m.toolLabel(name), outcome).Inc()
}

// toolLabel bounds the tool label's values: known tools, then the first
// MaxOtherTools other names (of sensible length), then "other".
func (m *Metrics) toolLabel(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.known[name] || m.others[name]:
		return name
	case len(name) == 0 || len(name) > 128 || len(m.others) >= m.maxOther:
		return OtherTool
	}
	m.others[name] = true
	return name
}

// InstrumentTransport wraps rt (http.DefaultTransport when nil) so that
// every request through it is counted by method and status, e.g. for the
// GitLab client:
//
//	gitlab.Options{HTTPClient: &http.Client{Transport: m.InstrumentTransport(nil)}}
//
// Each retry is a request of its own. On a nil *Metrics it returns rt.
func (m *Metrics) InstrumentTransport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if m == nil {
		return rt
	}
	return roundTripper{next: rt, m: m}
}

type roundTripper struct {
	next http.RoundTripper
	m    *Metrics
}

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	t.m.gitlabRequests.WithLabelValues(methodLabel(req.Method), status).Inc()
	return resp, err
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case "":
		return http.MethodGet
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
