package metrics_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/metrics"
)

// scrape GETs /metrics from the handler over real HTTP and returns the
// samples ("name{labels}" → value) and the families' types.
func scrape(t *testing.T, m *metrics.Metrics) (samples map[string]float64, types map[string]string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	samples, types = map[string]float64{}, map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			types[name] = typ
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return samples, types
}

func TestEveryFamilyAfterOneObservationEach(t *testing.T) {
	m := metrics.New(metrics.Options{KnownTools: []string{"write_file"}})
	m.Delivery("Note Hook", "queued")
	done := m.RunStarted("analyze")
	m.QueueWait(1500 * time.Millisecond)
	m.Tokens(agent.Usage{InputTokens: 1000, OutputTokens: 200, CacheReadTokens: 50, CacheWriteTokens: 7}, 0.0125)
	m.ToolCall("write_file", false)

	gitlab := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
	}))
	defer gitlab.Close()
	client := &http.Client{Transport: m.InstrumentTransport(nil)}
	for _, code := range []string{"200", "200", "429", "500"} {
		resp, err := client.Post(gitlab.URL+"/"+code, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	// One run in progress now.
	samples, types := scrape(t, m)
	if v := samples["agentbot_runs_in_progress"]; v != 1 {
		t.Errorf("runs in progress = %v, want 1", v)
	}
	done("ok")
	done("failed") // ignored: a run ends once
	samples, types = scrape(t, m)

	wantTypes := map[string]string{
		metrics.NameDeliveries: "counter", metrics.NameRuns: "counter", metrics.NameRunDuration: "histogram",
		metrics.NameQueueWait: "histogram", metrics.NameTokens: "counter", metrics.NameCost: "counter",
		metrics.NameToolCalls: "counter", metrics.NameGitLabRequests: "counter", metrics.NameRunsInProgress: "gauge",
	}
	if len(wantTypes) != len(metrics.Families()) {
		t.Fatalf("Families() has %d names, the test knows %d", len(metrics.Families()), len(wantTypes))
	}
	for _, name := range metrics.Families() {
		if types[name] != wantTypes[name] {
			t.Errorf("family %s: type %q, want %q", name, types[name], wantTypes[name])
		}
	}
	for sample, want := range map[string]float64{
		`agentbot_webhook_deliveries_total{event="Note Hook",outcome="queued"}`:    1,
		`agentbot_runs_total{kind="analyze",outcome="ok"}`:                         1,
		`agentbot_runs_total{kind="analyze",outcome="failed"}`:                     0,
		`agentbot_run_duration_seconds_count{kind="analyze"}`:                      1,
		`agentbot_runs_in_progress`:                                                0,
		`agentbot_queue_wait_seconds_count`:                                        1,
		`agentbot_queue_wait_seconds_bucket{le="1"}`:                               0,
		`agentbot_queue_wait_seconds_bucket{le="2.5"}`:                             1,
		`agentbot_queue_wait_seconds_bucket{le="3600"}`:                            1,
		`agentbot_model_tokens_total{type="input"}`:                                1000,
		`agentbot_model_tokens_total{type="output"}`:                               200,
		`agentbot_model_tokens_total{type="cache_read"}`:                           50,
		`agentbot_model_tokens_total{type="cache_write"}`:                          7,
		`agentbot_model_cost_usd_total`:                                            0.0125,
		`agentbot_tool_calls_total{outcome="ok",tool="write_file"}`:                1,
		`agentbot_gitlab_api_requests_total{method="POST",status="200"}`:           2,
		`agentbot_gitlab_api_requests_total{method="POST",status="429"}`:           1,
		`agentbot_gitlab_api_requests_total{method="POST",status="500"}`:           1,
		`agentbot_run_duration_seconds_bucket{kind="analyze",le="3600"}`:           1,
		`agentbot_run_duration_seconds_bucket{kind="analyze",le="+Inf"}`:           1,
		`agentbot_webhook_deliveries_total{event="Note Hook",outcome="duplicate"}`: 0,
	} {
		if got := samples[sample]; got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
	if _, ok := types["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if runtime.GOOS == "linux" {
		if _, ok := types["process_resident_memory_bytes"]; !ok {
			t.Error("no process metrics")
		}
	}
}

func TestToolLabelIsBounded(t *testing.T) {
	m := metrics.New(metrics.Options{KnownTools: []string{"write_file", "read_file"}, MaxOtherTools: 2})
	for _, name := range []string{"write_file", "get_quote", "get_news", "third", "fourth", "read_file", "get_quote", strings.Repeat("x", 200), ""} {
		m.ToolCall(name, name == "get_news")
	}
	samples, _ := scrape(t, m)
	for sample, want := range map[string]float64{
		`agentbot_tool_calls_total{outcome="ok",tool="write_file"}`:  1,
		`agentbot_tool_calls_total{outcome="ok",tool="read_file"}`:   1,
		`agentbot_tool_calls_total{outcome="ok",tool="get_quote"}`:   2,
		`agentbot_tool_calls_total{outcome="error",tool="get_news"}`: 1,
		`agentbot_tool_calls_total{outcome="ok",tool="other"}`:       4,
	} {
		if got := samples[sample]; got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
	n := 0
	for s := range samples {
		if strings.HasPrefix(s, "agentbot_tool_calls_total{") {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d tool-call series, want 5", n)
	}
}

func TestTransportCountsErrorsAndBoundsMethods(t *testing.T) {
	m := metrics.New(metrics.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	client := &http.Client{Transport: m.InstrumentTransport(srv.Client().Transport)}
	req, _ := http.NewRequest("PROPFIND", url, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	srv.Close()
	if _, err := client.Get(url); err == nil {
		t.Fatal("GET on a closed server succeeded")
	}
	samples, _ := scrape(t, m)
	for sample, want := range map[string]float64{
		`agentbot_gitlab_api_requests_total{method="OTHER",status="200"}`: 1,
		`agentbot_gitlab_api_requests_total{method="GET",status="error"}`: 1,
	} {
		if got := samples[sample]; got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
}

func TestSeparateRegistries(t *testing.T) {
	// Two instances (two servers in one test process) do not collide,
	// and neither touches the global registry.
	a, b := metrics.New(metrics.Options{}), metrics.New(metrics.Options{})
	a.Delivery("Note Hook", "queued")
	sa, _ := scrape(t, a)
	sb, _ := scrape(t, b)
	key := `agentbot_webhook_deliveries_total{event="Note Hook",outcome="queued"}`
	if sa[key] != 1 || sb[key] != 0 {
		t.Fatalf("a=%v b=%v, want 1 and 0", sa[key], sb[key])
	}
}

func TestNilMetricsDoNothing(t *testing.T) {
	var m *metrics.Metrics
	m.Delivery("Note Hook", "queued")
	m.RunStarted("analyze")("ok")
	m.QueueWait(time.Second)
	m.Tokens(agent.Usage{InputTokens: 1}, 1)
	m.ToolCall("x", true)
	if rt := m.InstrumentTransport(nil); rt != http.DefaultTransport {
		t.Errorf("InstrumentTransport on nil metrics = %T, want the transport unchanged", rt)
	}
	if m.Registry() != nil {
		t.Error("Registry() on nil metrics is not nil")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("Handler() on nil metrics: %d, want 404", rec.Code)
	}
}
