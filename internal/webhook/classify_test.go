package webhook_test

import (
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/webhook"
	"gitlab.com/agentbot/agentbot/webhooks"
)

var bot = webhook.Bot{UserID: 99, Username: "agentbot"}

func TestClassifyEveryPayload(t *testing.T) {
	type want struct {
		job          bool
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
		"mr_reviewer_added":         {ignoreReason: "event not handled"},
		"pipeline_failed":           {ignoreReason: "event not handled"},
		"pipeline_schedule_success": {ignoreReason: "event not handled"},
		"pipeline_agentbot":         {ignoreReason: "event not handled"},
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
			if j.ProjectID != 42 || j.ProjectPath != "acme/research" || j.ThreadKind != w.kind || j.IID != w.iid ||
				j.Internal != w.internal || (j.DiscussionID != "") != w.discussion || j.Command.Kind != w.commandKind ||
				j.NoteID == 0 || j.AuthorID == 0 || j.AuthorUsername == "" || j.DeliveryKey == "" {
				t.Fatalf("job = %+v", j)
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
