package cli_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
	"gitlab.com/agentbot/agentbot/webhooks"
)

// The queue settings of the kill test. A killed run stays "running" in the
// database until the queue's rescuer hands it back, once both the job
// timeout and AGENTBOT_RESCUE_AFTER have passed since the attempt began. The
// rescuer runs in the process that leads the queue's maintenance: the new
// process can lead only once the killed one's leadership has lapsed (River:
// 10 to 15 s after the kill). A run must finish within the job timeout on a
// busy machine under the race detector, so the timeout is not shorter.
const (
	killJobTimeout  = 20 * time.Second
	killRescueAfter = 20 * time.Second
	killPoints      = 20
	killBusy        = 8 // processes working at once
)

// TestKillAtTwentyPoints runs `agentbot serve` as a separate process (this
// test binary, see TestMain) on `/agent analyze AAPL`, kills it with SIGKILL
// at twenty points of the run, starts a new process on the same database and
// waits for the answer. A point is the n-th request the run makes to GitLab
// (API or git) or to the model: the process dies right after GitLab has
// answered it, so a write is applied but the process never learns it. Every
// time there must be exactly one progress note (holding the final ✅
// answer), one agent/ branch with one new commit, one merge request from it
// and one ✅ on the command.
func TestKillAtTwentyPoints(t *testing.T) {
	bin := agentbotOnPath(t)
	base := hermeticAWS(t)
	// Every point starts from a copy of one migrated database: twenty
	// processes migrating at once would mostly wait for the disk.
	base["AGENTBOT_DB"] = migratedDB(t, bin)

	// A run without a kill: it checks the rig and lists the run's requests.
	ref := newKillRig(t, bin, base, 0)
	p := startProc(t, bin, ref.env)
	ref.deliver(t, p)
	ref.waitFinal(t, p, 60*time.Second)
	p.stop(t)
	ref.check(t)
	seq := ref.wire.requests()
	if len(seq) < killPoints {
		t.Fatalf("the run made %d requests, fewer than %d points:\n%s", len(seq), killPoints, strings.Join(seq, "\n"))
	}
	points := pickPoints(seq, killPoints)
	t.Logf("a run makes %d requests; killing after each of %v", len(seq), points)

	// The points are independent (each its own fakes and database) and
	// spend most of their time waiting for the rescue: they run side by
	// side, whatever -parallel says, but at most killBusy processes work
	// at once, so that each run finishes well within the job timeout on
	// two cores under the race detector.
	busy := make(chan struct{}, killBusy)
	var wg sync.WaitGroup
	for i, n := range points {
		name := fmt.Sprintf("%02d %s", n, shortRequest(seq[n-1]))
		wg.Go(func() {
			t.Run(name, func(t *testing.T) {
				rig := newKillRig(t, bin, base, n)
				done := hold(busy)
				defer done()
				first := startProc(t, bin, rig.env)
				rig.deliver(t, first)
				select {
				case <-rig.wire.tripped:
				case <-time.After(60 * time.Second):
					t.Fatalf("point %d never came; the run made these requests:\n%s", n, strings.Join(rig.wire.requests(), "\n"))
				}
				done()
				killed := time.Now()
				got := rig.wire.requests()
				t.Logf("killed after %s", got[len(got)-1])

				// The first point restarts at once: the new process waits,
				// polling, until it may lead and rescue. The others restart
				// when the queue takes the killed process for dead, as after
				// a supervisor's restart delay; they spare the machine
				// twenty processes waiting side by side.
				if i > 0 {
					rig.waitPresumedDead(t)
					defer hold(busy)()
				}
				second := startProc(t, bin, rig.env)
				rig.waitFinal(t, second, 120*time.Second)
				t.Logf("answered %s after the kill; the resumed attempt took %s (job timeout %s)",
					time.Since(killed).Round(100*time.Millisecond), rig.lastAttempt(t), killJobTimeout)
				second.stop(t)
				rig.check(t)
			})
		})
	}
	wg.Wait()
}

// hold takes a place in busy and returns what gives it back (once).
func hold(busy chan struct{}) (done func()) {
	busy <- struct{}{}
	return sync.OnceFunc(func() { <-busy })
}

// killRig is one run's world: a fake GitLab behind a counting proxy, a model
// fake, and the environment of the serve processes.
type killRig struct {
	gl   *gitlabtest.Server
	sm   gitlabtest.Sample
	wire *wire
	env  map[string]string
	db   *sql.DB // the queue database, read-only, beside the processes
}

func newKillRig(t *testing.T, bin string, base map[string]string, killAt int) *killRig {
	t.Helper()
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	w := &wire{at: killAt, tripped: make(chan struct{})}
	model := analyzeModel(t, w)
	env := cloneEnv(base)
	for k, v := range map[string]string{
		"AWS_REGION":                       "us-east-1",
		"AWS_ACCESS_KEY_ID":                "AKIDEXAMPLETESTKEY01",
		"AWS_SECRET_ACCESS_KEY":            "test-secret-access-key-value",
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": model.URL(),
		"GITLAB_URL":                       countingProxy(t, gl, w),
		"GITLAB_TOKEN":                     sm.BotToken,
		"GITLAB_WEBHOOK_SECRET":            secret,
		"AGENTBOT_DB":                      copyFile(t, base["AGENTBOT_DB"]),
		"AGENTBOT_WORKDIR":                 t.TempDir(),
		"AGENTBOT_LOG_LEVEL":               "info",
		"AGENTBOT_JOB_TIMEOUT":             killJobTimeout.String(),
		"AGENTBOT_RESCUE_AFTER":            killRescueAfter.String(),
	} {
		env[k] = v
	}
	db, err := sql.Open("sqlite", "file:"+env["AGENTBOT_DB"]+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return &killRig{gl: gl, sm: sm, wire: w, env: env, db: db}
}

// deliver posts note_issue to p and starts counting the run's requests. The
// process may die before it answers (the kill comes right after the
// delivery).
func (r *killRig) deliver(t *testing.T, p *proc) {
	t.Helper()
	d, err := webhooks.Load("note_issue")
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, p.url+"/webhooks/gitlab", bytes.NewReader(d.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = d.Header.Clone()
	req.Header.Set("X-Gitlab-Token", secret)
	r.wire.arm(p.kill)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if r.wire.hasTripped() {
			return
		}
		t.Fatalf("deliver: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deliver: status %d", resp.StatusCode)
	}
}

// waitFinal waits until the run has finished: its job is completed (or has
// failed for good), which comes after the last reaction.
func (r *killRig) waitFinal(t *testing.T, p *proc, d time.Duration) {
	t.Helper()
	pollUntil(t, d, "the run to finish", func() bool {
		select {
		case <-p.exited:
			t.Fatalf("serve exited: %v", p.err)
		default:
		}
		var state string
		err := r.db.QueryRow(`SELECT state FROM river_job`).Scan(&state)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		switch state {
		case "completed":
			return true
		case "cancelled", "discarded":
			t.Fatalf("the job is %s", state)
		}
		return false
	})
}

// lastAttempt is how long the job's last attempt took.
func (r *killRig) lastAttempt(t *testing.T) time.Duration {
	t.Helper()
	var seconds float64
	err := r.db.QueryRow(`SELECT (julianday(finalized_at) - julianday(attempted_at)) * 86400 FROM river_job`).Scan(&seconds)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(seconds * float64(time.Second)).Round(100 * time.Millisecond)
}

// waitPresumedDead waits until the queue would take the killed process for
// dead: no process leads the queue's maintenance any more, and the running
// job began longer than the rescue time ago (times as River keeps them in
// SQLite: UTC text to the millisecond).
func (r *killRig) waitPresumedDead(t *testing.T) {
	t.Helper()
	horizon := fmt.Sprintf("-%d seconds", int((killRescueAfter + time.Second).Seconds()))
	pollUntil(t, 60*time.Second, "the killed process's leadership and run to lapse", func() bool {
		var dead bool
		err := r.db.QueryRow(`SELECT
			NOT EXISTS (SELECT 1 FROM river_leader WHERE expires_at >= datetime('now', 'subsec'))
			AND NOT EXISTS (SELECT 1 FROM river_job WHERE state = 'running' AND attempted_at >= datetime('now', 'subsec', $1))`,
			horizon).Scan(&dead)
		if err != nil {
			t.Fatal(err)
		}
		return dead
	})
}

// check asserts one of each: progress note with the final answer, branch,
// commit, merge request, ✅.
func (r *killRig) check(t *testing.T) {
	t.Helper()
	gl, sm := r.gl, r.sm
	notes := botNotes(gl, sm, "issue", 7)
	if len(notes) != 1 || !strings.HasPrefix(notes[0].Body, "✅") {
		t.Errorf("bot notes = %+v, want one, with the final ✅ answer", notes)
	}
	var branches []string
	for name := range gl.Git().Branches("acme/research") {
		if strings.HasPrefix(name, "agent/") {
			branches = append(branches, name)
		}
	}
	if len(branches) != 1 {
		t.Fatalf("agent branches = %v, want one", branches)
	}
	branch := branches[0]
	if n := len(gl.Git().Log("acme/research", branch)) - len(gl.Git().Log("acme/research", "main")); n != 1 {
		t.Errorf("%s has %d new commits, want 1", branch, n)
	}
	var mrs []gitlabtest.MergeRequest
	for _, mr := range gl.MergeRequests(42) {
		if mr.SourceBranch == branch {
			mrs = append(mrs, mr)
		}
	}
	if len(mrs) != 1 || len(gl.MergeRequests(42)) != 2 {
		t.Errorf("merge requests from %s: %d (of %d in the project), want 1 (of 2)", branch, len(mrs), len(gl.MergeRequests(42)))
	} else if len(notes) == 1 && !strings.Contains(notes[0].Body, "!"+itoa(mrs[0].IID)) {
		t.Errorf("the answer does not link !%d:\n%s", mrs[0].IID, notes[0].Body)
	}
	var names []string
	for _, a := range gl.Awards(sm.NoteIDs["note_issue"]) {
		names = append(names, a.Name)
	}
	if len(names) != 1 || names[0] != "white_check_mark" {
		t.Errorf("reactions on the command = %v, want one ✅", names)
	}
}

// wire counts the requests of a run, from the delivery on, and kills the
// process at the at-th (never when at is 0).
type wire struct {
	at      int
	tripped chan struct{} // closed once the process is dead

	mu    sync.Mutex
	kill  func()
	seen  []string
	dying bool // between the kill and the process's end: drop its requests
}

func (w *wire) arm(kill func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kill = kill
}

// enter counts a request: whether to serve it, and whether to kill the
// process once it has been served.
func (w *wire) enter(what string) (serve, kill bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.dying:
		return false, false
	case w.kill == nil: // not armed, or the process is already gone
		return true, false
	}
	w.seen = append(w.seen, what)
	if len(w.seen) == w.at {
		w.dying = true
		return true, true
	}
	return true, false
}

// trip kills the process and waits until it is gone; later requests (the
// next process's) go through uncounted.
func (w *wire) trip() {
	w.mu.Lock()
	kill := w.kill
	w.mu.Unlock()
	kill()
	w.mu.Lock()
	w.kill, w.dying = nil, false
	w.mu.Unlock()
	close(w.tripped)
}

func (w *wire) hasTripped() bool {
	select {
	case <-w.tripped:
		return true
	default:
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.dying
	}
}

func (w *wire) requests() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen)
}

// countingProxy puts w in front of the fake GitLab and returns the proxy's
// URL. The fake's URLs in its JSON answers (the repository's clone URL
// among them) are rewritten to the proxy's, so that git goes through it too.
func countingProxy(t *testing.T, gl *gitlabtest.Server, w *wire) string {
	t.Helper()
	target, err := url.Parse(gl.URL())
	if err != nil {
		t.Fatal(err)
	}
	var self string
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		ModifyResponse: func(resp *http.Response) error {
			if !strings.Contains(resp.Header.Get("Content-Type"), "json") {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			body = bytes.ReplaceAll(body, []byte(gl.URL()), []byte(self))
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
			return nil
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		serve, kill := w.enter(r.Method + " " + r.URL.Path)
		switch {
		case !serve:
			http.Error(rw, "the process is being killed", http.StatusServiceUnavailable)
		case !kill:
			rp.ServeHTTP(rw, r)
		default:
			// GitLab gets the request (and applies a write); the process
			// dies before it reads the answer.
			rp.ServeHTTP(httptest.NewRecorder(), r)
			w.trip()
		}
	}))
	t.Cleanup(srv.Close)
	self = srv.URL
	return srv.URL
}

// analyzeModel answers as bedrocktest.AnalyzeScript("AAPL") does, from where
// the conversation is (a resumed run asks again from the start); its
// requests count on w, and a kill there comes before the answer.
func analyzeModel(t *testing.T, w *wire) *bedrocktest.Server {
	turns := bedrocktest.AnalyzeScript("AAPL")
	return bedrocktest.NewFunc(t, func(r *bedrocktest.Request) bedrocktest.Turn {
		if _, kill := w.enter("POST bedrock converse"); kill {
			w.trip()
		}
		for _, m := range r.Parsed.Messages {
			for _, b := range m.Content {
				if b.ToolResult != nil {
					return turns[1]
				}
			}
		}
		return turns[0]
	})
}

// pickPoints chooses n of the run's requests (1-based): every one that is
// not a GET (writes, the fetch's pack, the model), then GETs spread evenly.
func pickPoints(seq []string, n int) []int {
	var writes, reads []int
	for i, s := range seq {
		if strings.HasPrefix(s, "GET ") {
			reads = append(reads, i+1)
		} else {
			writes = append(writes, i+1)
		}
	}
	var out []int
	if len(writes) >= n {
		for k := range n {
			out = append(out, writes[k*len(writes)/n])
		}
		return out
	}
	out = append(out, writes...)
	need := n - len(writes)
	for k := range need {
		out = append(out, reads[k*len(reads)/need])
	}
	slices.Sort(out)
	return out
}

// migratedDB runs `agentbot migrate` on a new database and returns its path.
func migratedDB(t *testing.T, bin string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "migrated.db")
	cmd := exec.Command(filepath.Join(bin, "agentbot"), "migrate")
	cmd.Env = []string{"AGENTBOT_DB=" + path}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("agentbot migrate: %v\n%s", err, out)
	}
	return path
}

// copyFile copies a file into a new temporary directory.
func copyFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// shortRequest names a request for a subtest.
func shortRequest(s string) string {
	return strings.NewReplacer("/api/v4/projects/42/", "", "/api/v4/", "", "/acme/research.git/", "git ", "/", "·").Replace(s)
}

// pollUntil checks cond every 250 ms for up to d; the kill test's twenty
// points poll side by side, so less often than eventually does.
func pollUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// proc is `agentbot serve` run as a process of its own.
type proc struct {
	url    string
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
	err    error // once exited is closed
}

// startProc starts serve with exactly env and waits until /healthz answers.
// When the test fails, the log's end is shown.
func startProc(t *testing.T, bin string, env map[string]string) *proc {
	t.Helper()
	env = cloneEnv(env)
	env["LISTEN_ADDR"] = freeAddr(t)
	cmd := exec.Command(filepath.Join(bin, "agentbot"), "serve")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{url: "http://" + env["LISTEN_ADDR"], cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if strings.Contains(p.stderr.String(), "DATA RACE") {
			t.Errorf("the race detector found a race in serve (pid %d)", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("serve (pid %d) log:\n%s", cmd.Process.Pid, lastLines(p.stderr.String(), 30))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("serve exited: %v\n%s", p.err, p.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not healthy within 30s\n%s", p.stderr)
		}
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop sends SIGTERM and checks that serve drains and exits cleanly.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
	if p.err != nil {
		t.Errorf("serve exited with %v after SIGTERM", p.err)
	}
}
