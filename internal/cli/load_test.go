package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
	"gitlab.com/agentbot/agentbot/webhooks"
)

// noteDelivery is note_issue with another note: text, note id and issue.
func noteDelivery(t *testing.T, noteID, issueID, iid int64, discussionID, text, idem string) (http.Header, []byte) {
	t.Helper()
	d, err := webhooks.Load("note_issue")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(d.Body, &body); err != nil {
		t.Fatal(err)
	}
	attrs := body["object_attributes"].(map[string]any)
	attrs["id"], attrs["note"], attrs["noteable_id"] = noteID, text, issueID
	attrs["discussion_id"] = discussionID
	issue := body["issue"].(map[string]any)
	issue["iid"], issue["id"], issue["title"] = iid, issueID, fmt.Sprintf("Load issue %d", iid)
	out, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	h := d.Header.Clone()
	h.Set("Idempotency-Key", idem)
	h.Set("X-Gitlab-Token", secret)
	return h, out
}

func postRaw(t *testing.T, url string, h http.Header, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, url+"/webhooks/gitlab", strings.NewReader(string(body)))
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLoad: 200 commands across 20 issues, a model that takes 2 s a turn,
// 4 workers: every command finishes, runs on one issue never overlap, and
// memory stays bounded. It takes about two minutes, so it runs when
// AGENTBOT_LOAD_TEST=1 (.ci/run sets it).
func TestLoad(t *testing.T) {
	if os.Getenv("AGENTBOT_LOAD_TEST") == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("AGENTBOT_LOAD_TEST is not set in CI (see .ci/run)")
		}
		t.Skip("load test skipped: set AGENTBOT_LOAD_TEST=1 to run it (about two minutes)")
	}
	const issues, perIssue, turn = 20, 10, 2 * time.Second
	gl := gitlabtest.New(t)
	sm := gl.AddSample()

	var mu sync.Mutex
	active, maxActive, overlaps := map[string]int{}, 0, 0
	model := bedrocktest.NewFunc(t, func(r *bedrocktest.Request) bedrocktest.Turn {
		title := ""
		if m := r.Parsed.Messages; len(m) > 0 && len(m[0].Content) > 0 && m[0].Content[0].Text != nil {
			if i := strings.Index(*m[0].Content[0].Text, "Load issue "); i >= 0 {
				title = strings.Fields((*m[0].Content[0].Text)[i+len("Load issue "):])[0]
			}
		}
		mu.Lock()
		active[title]++
		if active[title] > 1 {
			overlaps++
		}
		total := 0
		for _, n := range active {
			total += n
		}
		maxActive = max(maxActive, total)
		mu.Unlock()
		time.Sleep(turn)
		mu.Lock()
		active[title]--
		mu.Unlock()
		return bedrocktest.Reply("Done: issue " + title + ".")
	})
	env := serveEnvWithModel(t, gl, sm, model)
	env["AGENTBOT_WORKERS"] = "4"
	env["AGENTBOT_LOG_LEVEL"] = "warn"
	s := startServe(t, env)

	var peak uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stopSampling:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	start := time.Now()
	var iids []int64
	for i := range issues {
		is := gl.AddIssue(42, gitlabtest.Issue{IID: int64(100 + i), Title: fmt.Sprintf("Load issue %d", 100+i), AuthorID: sm.Alice.ID})
		iids = append(iids, is.IID)
		for j := range perIssue {
			n := gl.AddNote(42, "issue", is.IID, gitlabtest.Note{Body: "/agent what changed today?", AuthorID: sm.Alice.ID})
			h, body := noteDelivery(t, n.ID, is.ID, is.IID, n.DiscussionID, "/agent what changed today?", fmt.Sprintf("load-%d-%d", i, j))
			if got := postRaw(t, s.url, h, body); got != http.StatusAccepted {
				t.Fatalf("delivery %d/%d: status %d", i, j, got)
			}
		}
	}
	eventuallyWithin(t, 10*time.Minute, "200 answers", func() bool {
		done := 0
		for _, iid := range iids {
			for _, n := range botNotes(gl, sm, "issue", iid) {
				if strings.HasPrefix(n.Body, "✅") {
					done++
				}
			}
		}
		return done == issues*perIssue
	})
	elapsed := time.Since(start)
	// Every run's wait in the queue was measured once (its first attempt).
	eventually(t, "200 queue waits in /metrics", func() bool {
		resp, err := http.Get(s.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "agentbot_queue_wait_seconds_count 200\n")
	})
	s.shutdown(t)
	close(stopSampling)
	<-sampled
	t.Logf("200 runs in %s, at most %d model calls at once, peak heap in use %.1f MiB", elapsed.Round(time.Second), maxActive, float64(peak)/(1<<20))
	if overlaps != 0 {
		t.Fatalf("%d times two runs of one issue called the model at once", overlaps)
	}
	if maxActive > 4 {
		t.Fatalf("%d runs at once with 4 workers", maxActive)
	}
	for _, iid := range iids {
		if n := len(botNotes(gl, sm, "issue", iid)); n != perIssue {
			t.Fatalf("issue %d has %d bot notes, want %d", iid, n, perIssue)
		}
	}
}
