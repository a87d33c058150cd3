package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/webhook"
)

func TestCheckToken(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		ok           bool
	}{
		{"match", "s3cret", true},
		{"wrong", "s3cret!", false},
		{"prefix", "s3cre", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("X-Gitlab-Token", tc.header)
			}
			err := webhook.CheckToken(h, "s3cret")
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, webhook.ErrUnauthorized)) {
				t.Fatalf("CheckToken = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestCheckSignature(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"object_kind":"note"}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	good := webhook.Sign(key, "msg_1", ts, body)
	for _, tc := range []struct {
		name        string
		id, ts, sig string
		body        []byte
		ok          bool
	}{
		{"good", "msg_1", ts, good, body, true},
		{"rotation: second signature matches", "msg_1", ts, webhook.Sign(other, "msg_1", ts, body) + " " + good, body, true},
		{"other key", "msg_1", ts, webhook.Sign(other, "msg_1", ts, body), body, false},
		{"body changed", "msg_1", ts, good, []byte(`{"object_kind":"push"}`), false},
		{"id changed", "msg_2", ts, good, body, false},
		{"old timestamp", "msg_1", strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10),
			webhook.Sign(key, "msg_1", strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10), body), body, false},
		{"future timestamp", "msg_1", strconv.FormatInt(now.Add(6*time.Minute).Unix(), 10),
			webhook.Sign(key, "msg_1", strconv.FormatInt(now.Add(6*time.Minute).Unix(), 10), body), body, false},
		{"4 minutes old is fine", "msg_1", strconv.FormatInt(now.Add(-4*time.Minute).Unix(), 10),
			webhook.Sign(key, "msg_1", strconv.FormatInt(now.Add(-4*time.Minute).Unix(), 10), body), body, true},
		{"timestamp not a number", "msg_1", "yesterday", good, body, false},
		{"unknown version", "msg_1", ts, "v2," + good[3:], body, false},
		{"not base64", "msg_1", ts, "v1,!!!", body, false},
		{"missing signature", "msg_1", ts, "", body, false},
		{"missing id", "", ts, good, body, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range map[string]string{"webhook-id": tc.id, "webhook-timestamp": tc.ts, "webhook-signature": tc.sig} {
				if v != "" {
					h.Set(k, v)
				}
			}
			err := webhook.CheckSignature(h, tc.body, key, now)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, webhook.ErrUnauthorized)) {
				t.Fatalf("CheckSignature = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
