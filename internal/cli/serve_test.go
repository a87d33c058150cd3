package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/cli"
	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
	"gitlab.com/agentbot/agentbot/internal/queue/queuetest"
	"gitlab.com/agentbot/agentbot/internal/webhook"
	"gitlab.com/agentbot/agentbot/webhooks"
)

const secret = "webhook-secret-for-tests"

// server is one `agentbot serve` started in-process through cli.Run.
type server struct {
	url    string
	stop   context.CancelFunc
	done   chan struct{} // closed when serve has returned err
	err    error
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serveEnv is the environment of a serve process against the fake GitLab
// and a Bedrock fake that answers nothing (runs that call the model give
// serveEnvWithModel their own).
func serveEnv(t *testing.T, gl *gitlabtest.Server, sm gitlabtest.Sample) map[string]string {
	return serveEnvWithModel(t, gl, sm, bedrocktest.New(t))
}

func serveEnvWithModel(t *testing.T, gl *gitlabtest.Server, sm gitlabtest.Sample, model *bedrocktest.Server) map[string]string {
	env := fakeEnv(t, model)
	for k, v := range map[string]string{
		"GITLAB_URL":            gl.URL(),
		"GITLAB_TOKEN":          sm.BotToken,
		"GITLAB_WEBHOOK_SECRET": secret,
		"AGENTBOT_DB":           filepath.Join(t.TempDir(), "agentbot.db"),
		"AGENTBOT_WORKDIR":      t.TempDir(),
		"AGENTBOT_LOG_LEVEL":    "debug",
		// Tests post many commands as alice; TestLimits checks the limit.
		"AGENTBOT_USER_RUNS_PER_HOUR": "0",
	} {
		env[k] = v
	}
	return env
}

// startServe runs serve until the test ends or stop is called, and waits
// until /healthz answers.
func startServe(t *testing.T, env map[string]string) *server {
	t.Helper()
	env = cloneEnv(env)
	env["LISTEN_ADDR"] = freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{url: "http://" + env["LISTEN_ADDR"], stop: cancel, done: make(chan struct{}), stderr: &syncBuffer{}}
	go func() {
		defer close(s.done)
		s.err = cli.Run(ctx, []string{"serve"}, func(k string) string { return env[k] }, io.Discard, s.stderr)
	}()
	t.Cleanup(func() { s.shutdown(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("serve exited: %v\n%s", s.err, s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not healthy within 20s\n%s", s.stderr)
		}
	}
}

// shutdown stops serve as SIGTERM does and checks that it exits cleanly.
func (s *server) shutdown(t *testing.T) {
	t.Helper()
	if s.stop == nil {
		return
	}
	s.stop()
	s.stop = nil
	select {
	case <-s.done:
		if s.err != nil {
			t.Errorf("serve returned %v after shutdown\n%s", s.err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("serve did not stop within 30s")
	}
}

func cloneEnv(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// post sends a sample delivery with its headers; mutate may change them.
func post(t *testing.T, url, name string, mutate func(h http.Header, body []byte) []byte) int {
	t.Helper()
	d, err := webhooks.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	body := d.Body
	h := d.Header.Clone()
	h.Set("X-Gitlab-Token", secret)
	if mutate != nil {
		body = mutate(h, body)
	}
	req, err := http.NewRequest(http.MethodPost, url+"/webhooks/gitlab", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if bytes.Contains(answer, []byte(secret)) || (len(body) > 40 && bytes.Contains(answer, body[:40])) {
		t.Errorf("answer echoes the request: %s", answer)
	}
	return resp.StatusCode
}

func jobCount(t *testing.T, dbPath string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM river_job`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// botNotes are the notes the bot wrote on an issue or MR (not the sample's
// own note_bot_own).
func botNotes(gl *gitlabtest.Server, sm gitlabtest.Sample, kind string, iid int64) []gitlabtest.Note {
	var out []gitlabtest.Note
	for _, n := range gl.Notes(sm.Project.ID, kind, iid) {
		if n.AuthorID == sm.Bot.ID && n.ID != sm.NoteIDs["note_bot_own"] {
			out = append(out, n)
		}
	}
	return out
}

// eventually polls cond for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 20*time.Second, what, cond)
}

func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeVerifiesEveryDelivery(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	env := serveEnv(t, gl, sm)
	env["AGENTBOT_WORKERS"] = "0" // intake only: count jobs, run none
	key := []byte("0123456789abcdef0123456789abcdef")
	env["GITLAB_WEBHOOK_SIGNING_TOKEN"] = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	s := startServe(t, env)

	sign := func(ts time.Time) func(h http.Header, body []byte) []byte {
		return func(h http.Header, body []byte) []byte {
			stamp := strconv.FormatInt(ts.Unix(), 10)
			h.Set("webhook-id", "msg_"+h.Get("X-Gitlab-Event-UUID"))
			h.Set("webhook-timestamp", stamp)
			h.Set("webhook-signature", webhook.Sign(key, "msg_"+h.Get("X-Gitlab-Event-UUID"), stamp, body))
			return body
		}
	}
	all, err := webhooks.All()
	if err != nil {
		t.Fatal(err)
	}
	wantJobs := map[string]bool{"note_issue": true, "note_issue_help": true, "note_mr": true,
		"note_discussion": true, "note_confidential": true, "note_guest": true,
		"mr_reviewer_added": true, "pipeline_failed": true, "pipeline_schedule_success": true}
	jobs := 0
	for _, d := range all {
		for _, tc := range []struct {
			name   string
			mutate func(h http.Header, body []byte) []byte
			status int
		}{
			{"wrong secret", func(h http.Header, b []byte) []byte {
				sign(time.Now())(h, b)
				h.Set("X-Gitlab-Token", "wrong")
				return b
			}, http.StatusUnauthorized},
			{"no secret", func(h http.Header, b []byte) []byte {
				sign(time.Now())(h, b)
				h.Del("X-Gitlab-Token")
				return b
			}, http.StatusUnauthorized},
			{"bad HMAC", func(h http.Header, b []byte) []byte {
				sign(time.Now())(h, b)
				return append(b, ' ')
			}, http.StatusUnauthorized},
			{"old timestamp", sign(time.Now().Add(-10 * time.Minute)), http.StatusUnauthorized},
			{"no signature", nil, http.StatusUnauthorized},
			{"good", sign(time.Now()), map[bool]int{true: http.StatusAccepted, false: http.StatusOK}[wantJobs[d.Name]]},
		} {
			if got := post(t, s.url, d.Name, tc.mutate); got != tc.status {
				t.Errorf("%s, %s: status %d, want %d", d.Name, tc.name, got, tc.status)
			}
		}
		if wantJobs[d.Name] {
			jobs++
		}
		if got := jobCount(t, env["AGENTBOT_DB"]); got != jobs {
			t.Fatalf("after %s: %d jobs, want %d", d.Name, got, jobs)
		}
	}
	big := func(h http.Header, b []byte) []byte {
		sign(time.Now())(h, b)
		return bytes.Repeat([]byte(" "), 6<<20)
	}
	if got := post(t, s.url, "note_issue", big); got != http.StatusRequestEntityTooLarge {
		t.Errorf("6 MiB body: status %d, want 413", got)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.url + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %v, %v", path, resp, err)
		}
	}
}

func TestServeHelpOnceEvenWhenRedeliveredAndAfterA5xx(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	// The reply's POST is applied, then answered 502: a naive retry would
	// post it twice.
	gl.FailAfterApply(http.MethodPost, "/api/v4/projects/42/issues/7/discussions/*/notes", http.StatusBadGateway, 1)
	s := startServe(t, serveEnv(t, gl, sm))
	for range 5 {
		if got := post(t, s.url, "note_issue_help", nil); got != http.StatusAccepted {
			t.Fatalf("status %d", got)
		}
	}
	eventually(t, "the help reply", func() bool { return len(botNotes(gl, sm, "issue", 7)) > 0 })
	s.shutdown(t) // drains: whatever was going on has finished
	notes := botNotes(gl, sm, "issue", 7)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "analyze") {
		t.Fatalf("bot notes = %+v, want one help reply", notes)
	}
	if awards := gl.Awards(sm.NoteIDs["note_issue_help"]); len(awards) != 1 || awards[0].Name != "eyes" {
		t.Fatalf("awards = %+v, want one 👀", awards)
	}
}

func TestServeGuestGetsOneRefusalAndNothingElse(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	s := startServe(t, serveEnv(t, gl, sm))
	if got := post(t, s.url, "note_guest", nil); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	eventually(t, "the refusal", func() bool { return len(botNotes(gl, sm, "issue", 7)) > 0 })
	s.shutdown(t)
	notes := botNotes(gl, sm, "issue", 7)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "gary") || !strings.Contains(notes[0].Body, "developer") {
		t.Fatalf("bot notes = %+v, want one polite refusal", notes)
	}
	if awards := gl.Awards(sm.NoteIDs["note_guest"]); len(awards) != 0 {
		t.Fatalf("awards = %+v, want none", awards)
	}
	if n := len(gl.Git().Branches("acme/research")); n != 2 { // main and feature/q3
		t.Fatalf("branches = %v", gl.Git().Branches("acme/research"))
	}
	if mrs := gl.MergeRequests(42); len(mrs) != 1 {
		t.Fatalf("merge requests = %+v", mrs)
	}
}

func TestServeRestartBetweenInsertAndRun(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	env := serveEnv(t, gl, sm)
	intake := cloneEnv(env)
	intake["AGENTBOT_WORKERS"] = "0"
	s := startServe(t, intake)
	if got := post(t, s.url, "note_issue_help", nil); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	s.shutdown(t) // the job is committed, not yet run
	if n := len(botNotes(gl, sm, "issue", 7)); n != 0 {
		t.Fatalf("%d notes before any worker ran", n)
	}
	s = startServe(t, env)
	eventually(t, "the reply after restart", func() bool { return len(botNotes(gl, sm, "issue", 7)) > 0 })
	s.shutdown(t)
	s = startServe(t, env) // a third start finds nothing left to do
	post(t, s.url, "note_issue_help", nil)
	s.shutdown(t)
	if n := len(botNotes(gl, sm, "issue", 7)); n != 1 {
		t.Fatalf("%d replies, want 1", n)
	}
}

func TestServeTwoReplicasOnPostgres(t *testing.T) {
	dbURL := queuetest.PostgresURL(t)
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	env := serveEnv(t, gl, sm)
	env["DATABASE_URL"] = dbURL
	env["AGENTBOT_LOG_LEVEL"] = "warn"
	a, b := startServe(t, env), startServe(t, env)
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		url := a.url
		if i%2 == 1 {
			url = b.url
		}
		wg.Go(func() {
			status := post(t, url, "note_issue_help", func(h http.Header, body []byte) []byte {
				h.Set("Idempotency-Key", fmt.Sprintf("delivery-%d", i))
				return body
			})
			if status != http.StatusAccepted {
				t.Errorf("delivery %d: status %d", i, status)
			}
		})
	}
	wg.Wait()
	start := time.Now()
	eventuallyWithin(t, 60*time.Second, "200 replies", func() bool {
		got := len(botNotes(gl, sm, "issue", 7))
		if got < n && time.Since(start) > 50*time.Second {
			for _, line := range strings.Split(a.stderr.String()+b.stderr.String(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) {
					t.Log(line)
				}
			}
			t.Fatalf("%d replies so far", got)
		}
		return got >= n
	})
	t.Logf("200 runs took %s", time.Since(start))
	a.shutdown(t)
	b.shutdown(t)
	notes := botNotes(gl, sm, "issue", 7)
	seen := map[string]bool{}
	for _, note := range notes {
		if seen[note.Body] {
			t.Fatalf("note posted twice: %q", note.Body)
		}
		seen[note.Body] = true
	}
	if len(notes) != n {
		t.Fatalf("%d replies, want %d", len(notes), n)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
