package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/queue"
	"gitlab.com/agentbot/agentbot/internal/webhook"
	"gitlab.com/agentbot/agentbot/webhooks"
)

// memQueue is an in-memory Enqueuer: unique by delivery key, and able to
// fail as a database would.
type memQueue struct {
	mu       sync.Mutex
	fail     bool
	attempts int
	jobs     []queue.RunArgs
	keys     map[string]int64
}

var _ webhook.Enqueuer = (*memQueue)(nil)

func (q *memQueue) Enqueue(_ context.Context, args queue.RunArgs) (queue.Enqueued, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.attempts++
	if q.fail {
		return queue.Enqueued{}, errors.New("insert job: database is locked")
	}
	if id, ok := q.keys[args.DeliveryKey]; ok {
		return queue.Enqueued{ID: id, Duplicate: true}, nil
	}
	if q.keys == nil {
		q.keys = map[string]int64{}
	}
	q.jobs = append(q.jobs, args)
	id := int64(len(q.jobs))
	q.keys[args.DeliveryKey] = id
	return queue.Enqueued{ID: id}, nil
}

// Fuzz modes: which checks the handler is configured with, and whether the
// request carries the right token, a right signature, and so on.
const (
	modeSecret      = 1 << iota // GITLAB_WEBHOOK_SECRET is set
	modeSigning                 // GITLAB_WEBHOOK_SIGNING_TOKEN is set
	modeRightToken              // X-Gitlab-Token is the secret
	modeRightSig                // webhook-signature is a right one
	modeQueueFails              // the enqueuer fails
	modeIdempotency             // Idempotency-Key is sent
)

const (
	fuzzSecret  = "fuzz-webhook-secret-7f3a9c"
	fuzzMaxBody = 64 << 10
)

var (
	fuzzKey = []byte("fuzz-signing-key-0123456789abcdef")
	fuzzNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
)

// The answer's vocabulary: a fixed status, and a reason that is a fixed
// phrase of lower-case words (no digits, paths, quotes or upper case, which
// is what text from the request would bring).
var (
	answerStatuses = []string{"queued", "duplicate", "ignored", "unauthorized", "too large", "unreadable body", "malformed", "queue unavailable"}
	reasonPhrase   = regexp.MustCompile(`^(?:[a-z][a-z' ]{0,79})?$`)
)

// FuzzHandler sends arbitrary bodies and header values to the handler and
// checks that it never panics, answers 5xx only when the queue fails, answers
// 401 and enqueues nothing without the right token or signature, and never
// echoes the request or the secrets, in its answer or its logs.
//
//	go test -run '^$' -fuzz FuzzHandler -fuzztime 30s ./internal/webhook
func FuzzHandler(f *testing.F) {
	all, err := webhooks.All()
	if err != nil {
		f.Fatal(err)
	}
	for _, d := range all {
		id := d.Header.Get("Idempotency-Key")
		for _, mode := range []uint8{
			modeSecret | modeRightToken,
			modeSigning | modeRightSig,
			modeSecret | modeSigning | modeRightToken | modeRightSig | modeIdempotency,
			modeSecret | modeRightToken | modeQueueFails,
			modeSecret,
			modeSigning | modeRightToken,
			modeSecret | modeSigning | modeRightToken,
		} {
			f.Add(d.Body, d.Event(), "wrong-token", id, "", "v1,AAAA", mode)
		}
	}
	f.Add([]byte(`{"object_kind":"note"`), "Note Hook", "", "", "", "", uint8(modeSecret|modeRightToken))
	f.Add([]byte(`[]`), "Confidential Note Hook", fuzzSecret+"x", "", "1", "v1,", uint8(modeSecret|modeSigning))
	f.Add(bytes.Repeat([]byte("x"), fuzzMaxBody+1), "Note Hook", "", "", "", "", uint8(modeSecret|modeSigning|modeRightToken))

	f.Fuzz(func(t *testing.T, body []byte, event, token, id, ts, sig string, mode uint8) {
		if mode&(modeSecret|modeSigning) == 0 {
			mode |= modeSecret // serve refuses to start with neither
		}
		q := &memQueue{fail: mode&modeQueueFails != 0}
		var logs bytes.Buffer
		cfg := webhook.Config{
			MaxBody: fuzzMaxBody,
			Bot:     bot,
			Logger:  slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Now:     func() time.Time { return fuzzNow },
		}
		if mode&modeSecret != 0 {
			cfg.Secret = fuzzSecret
		}
		if mode&modeSigning != 0 {
			cfg.SigningKey = fuzzKey
		}

		req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Gitlab-Event", event)
		req.Header.Set("X-Gitlab-Event-UUID", id)
		if mode&modeIdempotency != 0 {
			req.Header.Set("Idempotency-Key", id)
		}
		if mode&modeRightToken != 0 {
			token = fuzzSecret
		}
		if token != "" {
			req.Header.Set("X-Gitlab-Token", token)
		}
		if mode&modeRightSig != 0 {
			if id == "" {
				id = "msg_fuzz"
			}
			ts = strconv.FormatInt(fuzzNow.Unix(), 10)
			sig = sig + " " + webhook.Sign(fuzzKey, id, ts, body)
		}
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", sig)

		rec := httptest.NewRecorder()
		webhook.New(cfg, q).ServeHTTP(rec, req)
		status, resp := rec.Code, rec.Body.Bytes()

		tokenOK := cfg.Secret == "" || req.Header.Get("X-Gitlab-Token") == fuzzSecret
		sigOK := cfg.SigningKey == nil || mode&modeRightSig != 0
		verified := tokenOK && sigOK

		if status >= 500 && !(q.fail && q.attempts > 0) {
			t.Fatalf("status %d without a queue failure; answer %s", status, resp)
		}
		if !verified {
			tooLarge := tokenOK && len(body) > fuzzMaxBody && status == http.StatusRequestEntityTooLarge
			if status != http.StatusUnauthorized && !tooLarge {
				t.Fatalf("unverified request (token ok %v, signature ok %v) answered %d: %s", tokenOK, sigOK, status, resp)
			}
			if q.attempts != 0 {
				t.Fatalf("unverified request reached the queue")
			}
		}
		if status == http.StatusAccepted && q.attempts != 1 {
			t.Fatalf("202 after %d enqueue attempts", q.attempts)
		}
		for _, j := range q.jobs {
			if j.DeliveryKey == "" {
				t.Fatalf("job without a delivery key: %+v", j)
			}
		}

		// The answer is one of a fixed set of JSON shapes.
		var ans struct {
			Status string `json:"status"`
			Job    int64  `json:"job"`
			Reason string `json:"reason"`
		}
		dec := json.NewDecoder(bytes.NewReader(resp))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ans); err != nil {
			t.Fatalf("answer %q: %v", resp, err)
		}
		if !slices.Contains(answerStatuses, ans.Status) || !reasonPhrase.MatchString(ans.Reason) {
			t.Fatalf("answer %s is outside the fixed vocabulary", resp)
		}
		if len(body) >= 16 && bytes.Contains(resp, body) {
			t.Fatalf("the answer echoes the body: %s", resp)
		}
		if ans.Job != 0 && (ans.Job < 1 || ans.Job > int64(len(q.jobs))) {
			t.Fatalf("answer names job %d; %d jobs exist", ans.Job, len(q.jobs))
		}

		// Secrets stay out of the answer and the logs, unless the request
		// itself carried them somewhere other than X-Gitlab-Token.
		echoed := string(body) + event + id + ts + sig
		for _, secret := range []string{fuzzSecret, string(fuzzKey)} {
			if strings.Contains(string(resp), secret) {
				t.Fatalf("the answer holds a secret: %s", resp)
			}
			if !strings.Contains(echoed, secret) && strings.Contains(logs.String(), secret) {
				t.Fatalf("the logs hold a secret:\n%s", logs.String())
			}
		}
	})
}
