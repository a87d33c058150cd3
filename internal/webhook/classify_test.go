package webhook_test

import (
	"encoding/json"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/queue"
	"gitlab.com/agentbot/agentbot/internal/webhook"
	"gitlab.com/agentbot/agentbot/webhooks"
)

var bot = webhook.Bot{UserID: 99, Username: "agentbot"}

func TestClassifyEveryPayload(t *testing.T) {
	type want struct {
		job          bool
		trigger      queue.Trigger // TriggerNote when empty
		kind         string
		iid          int64
		internal     bool
		discussion   bool
		commandKind  command.Kind
		ignoreReason string
	}
	cases := map[string]want{
		"note_issue":                {job: true, kind: "issue", iid: 7, discussion: true, commandKind: command.Analyze},
		"note_issue_help":           {job: true, kind: "issue", iid: 7, discussion: true, commandKind: command.Help},
		"note_mr":                   {job: true, kind: "mr", iid: 3, discussion: true, commandKind: command.Freeform},
		"note_discussion":           {job: true, kind: "issue", iid: 7, discussion: true, commandKind: command.Analyze},
		"note_confidential":         {job: true, kind: "issue", iid: 8, internal: true, discussion: true, commandKind: command.Analyze},
		"note_guest":                {job: true, kind: "issue", iid: 7, discussion: true, commandKind: command.Analyze},
		"note_system":               {ignoreReason: "system note"},
		"note_edited":               {ignoreReason: "edited note"},
		"note_bot_own":              {ignoreReason: "the bot's own note"},
		"note_plain":                {ignoreReason: "not a command"},
		"push":                      {ignoreReason: "event not handled"},
		"mr_reviewer_added":         {job: true, trigger: queue.TriggerReview, kind: "mr", iid: 3, commandKind: command.Review},
		"pipeline_failed":           {job: true, trigger: queue.TriggerPipeline, kind: "mr", iid: 3},
		"pipeline_schedule_success": {job: true, trigger: queue.TriggerPipeline},
		"pipeline_agentbot":         {ignoreReason: "the bot's own pipeline"},
	}
	all, err := webhooks.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		t.Run(d.Name, func(t *testing.T) {
			w, ok := cases[d.Name]
			if !ok {
				t.Fatalf("no expectation for webhooks/%s: add one", d.Name)
			}
			got, err := webhook.Classify(d.Header, d.Body, bot, command.Options{}, time.Now())
			if err != nil {
				t.Fatalf("Classify: %v", err)
			}
			if !w.job {
				if got.Job != nil || got.Ignore != w.ignoreReason {
					t.Fatalf("got job=%v ignore=%q, want ignored as %q", got.Job != nil, got.Ignore, w.ignoreReason)
				}
				return
			}
			j := got.Job
			if j == nil {
				t.Fatalf("no job (ignored: %s)", got.Ignore)
			}
			if w.trigger == "" {
				w.trigger = queue.TriggerNote
			}
			if j.ProjectID != 42 || j.ProjectPath != "acme/research" || j.ThreadKind != w.kind || j.IID != w.iid ||
				j.Internal != w.internal || (j.DiscussionID != "") != w.discussion || j.Command.Kind != w.commandKind ||
				j.Trigger != w.trigger || (j.NoteID != 0) != (w.trigger == queue.TriggerNote) ||
				j.AuthorID == 0 || j.AuthorUsername == "" || j.DeliveryKey == "" {
				t.Fatalf("job = %+v", j)
			}
			switch j.Trigger {
			case queue.TriggerReview:
				if j.HeadSHA != "4f2b8c1e9d7a6b5c3e2f1a0b9c8d7e6f5a4b3c2d" || j.DeliveryKey != "review:42:3:"+j.HeadSHA {
					t.Fatalf("review job = %+v", j)
				}
			case queue.TriggerPipeline:
				if j.PipelineID == 0 || j.PipelineStatus == "" || j.Ref == "" || j.Source == "" || j.HeadSHA == "" {
					t.Fatalf("pipeline job = %+v", j)
				}
			}
		})
	}
}

func TestDeliveryKeyFallbacks(t *testing.T) {
	d, err := webhooks.Load("note_issue")
	if err != nil {
		t.Fatal(err)
	}
	key := func() string {
		got, err := webhook.Classify(d.Header, d.Body, bot, command.Options{}, time.Now())
		if err != nil || got.Job == nil {
			t.Fatalf("Classify = %+v, %v", got, err)
		}
		return got.Job.DeliveryKey
	}
	withIdem := key()
	d.Header.Del("Idempotency-Key")
	withUUID := key()
	d.Header.Del("X-Gitlab-Event-UUID")
	withBody := key()
	if withIdem == withUUID || withUUID == withBody || withIdem == withBody {
		t.Fatalf("keys not distinct: %q %q %q", withIdem, withUUID, withBody)
	}
	if withBody != key() {
		t.Fatal("body key not stable")
	}
}

func TestClassifyMalformed(t *testing.T) {
	d, err := webhooks.Load("note_issue")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := webhook.Classify(d.Header, []byte(`{"object_kind":`), bot, command.Options{}, time.Now()); err == nil {
		t.Fatal("truncated JSON classified without error")
	}
}

// TestClassifyReviewRequests: only adding the bot (not keeping it, not
// adding someone else) asks for a review; the job is keyed by the head.
func TestClassifyReviewRequests(t *testing.T) {
	d, err := webhooks.Load("mr_reviewer_added")
	if err != nil {
		t.Fatal(err)
	}
	classify := func(edit func(m map[string]any)) webhook.Decision {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(d.Body, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		body, _ := json.Marshal(m)
		got, err := webhook.Classify(d.Header, body, bot, command.Options{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	changes := func(m map[string]any) map[string]any {
		return m["changes"].(map[string]any)["reviewers"].(map[string]any)
	}
	alice := map[string]any{"id": 7, "username": "alice"}
	agent := map[string]any{"id": 99, "username": "agentbot"}
	for name, tc := range map[string]struct {
		edit   func(m map[string]any)
		ignore string
	}{
		"bot already a reviewer": {func(m map[string]any) {
			changes(m)["previous"] = []any{agent}
			changes(m)["current"] = []any{agent, alice}
		}, "not a review request"},
		"someone else added": {func(m map[string]any) {
			changes(m)["current"] = []any{alice}
		}, "not a review request"},
		"no reviewer change": {func(m map[string]any) {
			delete(m["changes"].(map[string]any), "reviewers")
		}, "not a review request"},
		"closed": {func(m map[string]any) {
			m["object_attributes"].(map[string]any)["state"] = "closed"
		}, "merge request not open"},
		"by the bot": {func(m map[string]any) {
			m["user"] = agent
		}, "the bot's own change"},
	} {
		if got := classify(tc.edit); got.Job != nil || got.Ignore != tc.ignore {
			t.Errorf("%s: job=%v ignore=%q, want ignored as %q", name, got.Job != nil, got.Ignore, tc.ignore)
		}
	}
	a := classify(func(map[string]any) {})
	b := classify(func(m map[string]any) {
		m["object_attributes"].(map[string]any)["last_commit"].(map[string]any)["id"] = "0123456789012345678901234567890123456789"
	})
	if a.Job == nil || b.Job == nil || a.Job.DeliveryKey == b.Job.DeliveryKey {
		t.Fatalf("a new head must make a new job: %+v %+v", a.Job, b.Job)
	}
}

// TestClassifyBotPipelines: whatever the ref or the user, a pipeline that
// carries the bot's variables starts nothing, and neither does one on an
// agent/ branch.
func TestClassifyBotPipelines(t *testing.T) {
	d, err := webhooks.Load("pipeline_failed")
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(m map[string]any){
		"run variable": func(m map[string]any) {
			m["object_attributes"].(map[string]any)["variables"] = []any{map[string]any{"key": "AGENTBOT_RUN_ID", "value": "12"}}
		},
		"pipeline key": func(m map[string]any) {
			m["object_attributes"].(map[string]any)["variables"] = []any{map[string]any{"key": "AGENTBOT_PIPELINE_KEY", "value": "run-12"}}
		},
		"agent branch": func(m map[string]any) { m["object_attributes"].(map[string]any)["ref"] = "agent/run-58-daily" },
		"bot user":     func(m map[string]any) { m["user"] = map[string]any{"id": 99, "username": "agentbot"} },
	} {
		var m map[string]any
		if err := json.Unmarshal(d.Body, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		body, _ := json.Marshal(m)
		got, err := webhook.Classify(d.Header, body, bot, command.Options{}, time.Now())
		if err != nil || got.Job != nil {
			t.Errorf("%s: job=%+v err=%v, want ignored", name, got.Job, err)
		}
	}
}
