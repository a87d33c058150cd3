package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/webhooks"
)

// The world the deliveries describe (see README.md).
const (
	projectID   = 42
	projectPath = "acme/research"
	botID       = 99
	aliceID     = 7
	garyID      = 8
	instance    = "https://gitlab.test"
)

// want describes one delivery: its event header, the client-go type it
// parses to, and the command its note text holds (Ignore for non-notes).
var want = map[string]struct {
	event string
	typ   any
	kind  command.Kind
}{
	"note_issue":                {"Note Hook", &gitlab.IssueCommentEvent{}, command.Analyze},
	"note_issue_help":           {"Note Hook", &gitlab.IssueCommentEvent{}, command.Help},
	"note_mr":                   {"Note Hook", &gitlab.MergeCommentEvent{}, command.Freeform},
	"note_discussion":           {"Note Hook", &gitlab.IssueCommentEvent{}, command.Analyze},
	"note_confidential":         {"Confidential Note Hook", &gitlab.IssueCommentEvent{}, command.Analyze},
	"note_system":               {"Note Hook", &gitlab.IssueCommentEvent{}, command.Ignore},
	"note_edited":               {"Note Hook", &gitlab.IssueCommentEvent{}, command.Analyze},
	"note_bot_own":              {"Note Hook", &gitlab.IssueCommentEvent{}, command.Analyze},
	"note_plain":                {"Note Hook", &gitlab.IssueCommentEvent{}, command.Ignore},
	"note_guest":                {"Note Hook", &gitlab.IssueCommentEvent{}, command.Analyze},
	"mr_reviewer_added":         {"Merge Request Hook", &gitlab.MergeEvent{}, command.Ignore},
	"pipeline_failed":           {"Pipeline Hook", &gitlab.PipelineEvent{}, command.Ignore},
	"pipeline_schedule_success": {"Pipeline Hook", &gitlab.PipelineEvent{}, command.Ignore},
	"pipeline_agentbot":         {"Pipeline Hook", &gitlab.PipelineEvent{}, command.Ignore},
	"push":                      {"Push Hook", &gitlab.PushEvent{}, command.Ignore},
}

func TestEveryDeliveryParsesWithClientGo(t *testing.T) {
	all, err := webhooks.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Errorf("%d deliveries, want %d", len(all), len(want))
	}
	for _, d := range all {
		t.Run(d.Name, func(t *testing.T) {
			w, ok := want[d.Name]
			if !ok {
				t.Fatalf("delivery %q is not described in this test (nor, probably, in README.md)", d.Name)
			}
			req, err := d.NewRequest(context.Background(), "http://127.0.0.1/webhooks/gitlab")
			if err != nil {
				t.Fatal(err)
			}
			if got := gitlab.HookEventType(req); string(got) != w.event {
				t.Fatalf("HookEventType = %q, want %q", got, w.event)
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := gitlab.ParseWebhook(gitlab.HookEventType(req), body)
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if reflect.TypeOf(ev) != reflect.TypeOf(w.typ) {
				t.Fatalf("ParseWebhook gave %T, want %T", ev, w.typ)
			}
			checkEvent(t, d.Name, ev)
		})
	}
}

// checkEvent checks the facts each delivery stands for, as client-go sees them.
func checkEvent(t *testing.T, name string, ev any) {
	t.Helper()
	switch e := ev.(type) {
	case *gitlab.IssueCommentEvent:
		if e.ProjectID != projectID || e.Project.PathWithNamespace != projectPath || e.Project.DefaultBranch != "main" {
			t.Errorf("project %d %q %q", e.ProjectID, e.Project.PathWithNamespace, e.Project.DefaultBranch)
		}
		a := e.ObjectAttributes
		if a.AuthorID != e.User.ID || a.DiscussionID == "" || a.ID == 0 {
			t.Errorf("author %d user %d discussion %q id %d", a.AuthorID, e.User.ID, a.DiscussionID, a.ID)
		}
		wantIID, confidential := int64(7), false
		if name == "note_confidential" {
			wantIID, confidential = 8, true
		}
		if e.Issue.IID != wantIID || e.Issue.Confidential != confidential {
			t.Errorf("issue iid %d confidential %v, want %d %v", e.Issue.IID, e.Issue.Confidential, wantIID, confidential)
		}
		wantAuthor := int64(aliceID)
		switch name {
		case "note_bot_own":
			wantAuthor = botID
		case "note_guest":
			wantAuthor = garyID
		}
		if a.AuthorID != wantAuthor {
			t.Errorf("author %d, want %d", a.AuthorID, wantAuthor)
		}
		if a.System != (name == "note_system") {
			t.Errorf("system = %v", a.System)
		}
		wantAction := gitlab.CommentEventAction("create")
		if name == "note_edited" {
			wantAction = "update"
		}
		if a.Action != wantAction {
			t.Errorf("action %q, want %q", a.Action, wantAction)
		}
	case *gitlab.MergeCommentEvent:
		if e.ProjectID != projectID || e.MergeRequest.IID != 3 || e.MergeRequest.SourceBranch != "feature/q3" || e.MergeRequest.TargetBranch != "main" {
			t.Errorf("project %d MR !%d %s→%s", e.ProjectID, e.MergeRequest.IID, e.MergeRequest.SourceBranch, e.MergeRequest.TargetBranch)
		}
		if e.ObjectAttributes.AuthorID != aliceID || e.ObjectAttributes.Action != "create" {
			t.Errorf("author %d action %q", e.ObjectAttributes.AuthorID, e.ObjectAttributes.Action)
		}
	case *gitlab.MergeEvent:
		if e.Project.ID != projectID || e.ObjectAttributes.IID != 3 || e.ObjectAttributes.Action != "update" {
			t.Errorf("project %d MR !%d action %q", e.Project.ID, e.ObjectAttributes.IID, e.ObjectAttributes.Action)
		}
		added := e.Changes.Reviewers.Current
		if len(e.Changes.Reviewers.Previous) != 0 || len(added) != 1 || added[0].ID != botID || added[0].Username != "agentbot" {
			t.Errorf("changes.reviewers = %+v → %+v, want the bot added", e.Changes.Reviewers.Previous, added)
		}
		if e.ObjectAttributes.LastCommit.ID == "" {
			t.Error("no last_commit.id (the head a review is for)")
		}
	case *gitlab.PipelineEvent:
		if e.Project.ID != projectID {
			t.Errorf("project %d", e.Project.ID)
		}
		a := e.ObjectAttributes
		switch name {
		case "pipeline_failed":
			if a.Status != "failed" || a.Source != "merge_request_event" || a.Ref != "feature/q3" || e.MergeRequest.IID != 3 {
				t.Errorf("status %q source %q ref %q MR !%d", a.Status, a.Source, a.Ref, e.MergeRequest.IID)
			}
			failed := 0
			for _, b := range e.Builds {
				if b.Status == "failed" && b.FailureReason != "" {
					failed++
				}
			}
			if failed != 1 {
				t.Errorf("%d failed builds, want 1", failed)
			}
		case "pipeline_schedule_success":
			if a.Status != "success" || a.Source != "schedule" || a.Ref != "main" || e.MergeRequest.IID != 0 {
				t.Errorf("status %q source %q ref %q MR !%d", a.Status, a.Source, a.Ref, e.MergeRequest.IID)
			}
		case "pipeline_agentbot":
			if e.User.ID != botID || !strings.HasPrefix(a.Ref, "agent/") {
				t.Errorf("user %d ref %q, want the bot's own pipeline", e.User.ID, a.Ref)
			}
		}
	case *gitlab.PushEvent:
		if e.ProjectID != projectID || e.Ref != "refs/heads/main" {
			t.Errorf("project %d ref %q", e.ProjectID, e.Ref)
		}
	default:
		t.Errorf("no checks for %T", ev)
	}
}

// client-go does not expose object_attributes.internal nor event_type, so
// they are checked from the JSON, as the intake must read them.
func TestConfidentialNoteIsInternal(t *testing.T) {
	for _, name := range []string{"note_confidential", "note_issue"} {
		d, err := webhooks.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			EventType string `json:"event_type"`
			Attrs     struct {
				Internal bool `json:"internal"`
			} `json:"object_attributes"`
		}
		if err := json.Unmarshal(d.Body, &v); err != nil {
			t.Fatal(err)
		}
		internal := name == "note_confidential"
		if v.Attrs.Internal != internal || (v.EventType == "confidential_note") != internal {
			t.Errorf("%s: internal %v event_type %q", name, v.Attrs.Internal, v.EventType)
		}
	}
}

func TestNotesHoldTheDocumentedCommands(t *testing.T) {
	opt := command.Options{BotUsername: "agentbot"}
	for name, w := range want {
		d, err := webhooks.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Kind  string `json:"object_kind"`
			Attrs struct {
				Note string `json:"note"`
			} `json:"object_attributes"`
		}
		if err := json.Unmarshal(d.Body, &v); err != nil {
			t.Fatal(err)
		}
		if v.Kind != "note" {
			continue
		}
		if got := command.Parse(v.Attrs.Note, opt).Kind; got != w.kind {
			t.Errorf("%s: note %q parses as %v, want %v", name, v.Attrs.Note, got, w.kind)
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestHeaders(t *testing.T) {
	all, err := webhooks.All()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, d := range all {
		h := d.Header
		for _, k := range []string{"Content-Type", "User-Agent", "Idempotency-Key", "X-Gitlab-Event", "X-Gitlab-Webhook-UUID", "X-Gitlab-Instance", "X-Gitlab-Event-UUID"} {
			if len(h.Values(k)) != 1 {
				t.Errorf("%s: header %s appears %d times, want once", d.Name, k, len(h.Values(k)))
			}
		}
		if h.Get("X-Gitlab-Token") != "" || h.Get("Webhook-Signature") != "" {
			t.Errorf("%s: carries a secret header; tests add their own", d.Name)
		}
		if h.Get("Content-Type") != "application/json" || !strings.HasPrefix(h.Get("User-Agent"), "GitLab/18.") || h.Get("X-Gitlab-Instance") != instance {
			t.Errorf("%s: Content-Type %q User-Agent %q X-Gitlab-Instance %q", d.Name, h.Get("Content-Type"), h.Get("User-Agent"), h.Get("X-Gitlab-Instance"))
		}
		for _, k := range []string{"Idempotency-Key", "X-Gitlab-Webhook-UUID", "X-Gitlab-Event-UUID"} {
			v := h.Get(k)
			if !uuidRE.MatchString(v) {
				t.Errorf("%s: %s %q is not a version 4 UUID", d.Name, k, v)
			}
			if other, dup := seen[v]; dup {
				t.Errorf("%s: %s %q also used by %s", d.Name, k, v, other)
			}
			seen[v] = d.Name
		}
		if !json.Valid(d.Body) {
			t.Errorf("%s: body is not valid JSON", d.Name)
		}
		for _, u := range regexp.MustCompile(`https?://[^/"]+`).FindAllString(string(d.Body), -1) {
			if u != instance {
				t.Errorf("%s: URL host %q, want every URL on %s", d.Name, u, instance)
			}
		}
	}
}

func TestLoad(t *testing.T) {
	d, err := webhooks.Load("note_issue")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "note_issue" || d.Event() != "Note Hook" || len(d.Body) == 0 {
		t.Errorf("Load(note_issue) = %q %q %d bytes", d.Name, d.Event(), len(d.Body))
	}
	// Each Load is a fresh copy.
	d.Header.Set("X-Gitlab-Token", "secret")
	d.Body[0] = 'x'
	again, err := webhooks.Load("note_issue")
	if err != nil {
		t.Fatal(err)
	}
	if again.Header.Get("X-Gitlab-Token") != "" || again.Body[0] != '{' {
		t.Error("a change to one Load's result leaked into the next")
	}
	for _, bad := range []string{"", "nope", "note_issue.json", "../webhooks/note_issue", "/note_issue", "note_issue/"} {
		if _, err := webhooks.Load(bad); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("Load(%q) error = %v, want ErrNotFound", bad, err)
		}
	}
}

func TestNewRequest(t *testing.T) {
	d, err := webhooks.Load("pipeline_failed")
	if err != nil {
		t.Fatal(err)
	}
	req, err := d.NewRequest(context.Background(), "http://127.0.0.1:8080/webhooks/gitlab")
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Gitlab-Token", "s3cret")
	body, _ := io.ReadAll(req.Body)
	if req.Method != http.MethodPost || string(body) != string(d.Body) || req.Header.Get("X-Gitlab-Event") != "Pipeline Hook" {
		t.Errorf("request %s %q with %d-byte body", req.Method, req.Header.Get("X-Gitlab-Event"), len(body))
	}
	if d.Header.Get("X-Gitlab-Token") != "" {
		t.Error("NewRequest shares its header with the delivery")
	}
}
