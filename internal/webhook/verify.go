package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrUnauthorized is a delivery whose token or signature is wrong or missing.
// The reason is logged, never sent back.
var ErrUnauthorized = errors.New("unauthorized")

// MaxClockSkew is how far a signed delivery's timestamp may be from now.
const MaxClockSkew = 5 * time.Minute

// CheckToken compares X-Gitlab-Token with the secret in constant time.
func CheckToken(h http.Header, secret string) error {
	got := h.Get("X-Gitlab-Token")
	if got == "" {
		return errors.Join(ErrUnauthorized, errors.New("no X-Gitlab-Token header"))
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
		return errors.Join(ErrUnauthorized, errors.New("X-Gitlab-Token does not match GITLAB_WEBHOOK_SECRET"))
	}
	return nil
}

// CheckSignature verifies GitLab's signing token (Standard Webhooks): the
// webhook-signature header holds one or more space-separated "v1,<base64
// HMAC-SHA256 of id.timestamp.body>"; one match is enough, so that a key
// rotation works. The timestamp must be within MaxClockSkew of now.
func CheckSignature(h http.Header, body, key []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.Join(ErrUnauthorized, errors.New("missing webhook-id, webhook-timestamp or webhook-signature header"))
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.Join(ErrUnauthorized, errors.New("webhook-timestamp is not a Unix time"))
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > MaxClockSkew || skew < -MaxClockSkew {
		return errors.Join(ErrUnauthorized, errors.New("webhook-timestamp is more than 5 minutes off (replay, or a wrong clock)"))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.Join(ErrUnauthorized, errors.New("no webhook-signature matches GITLAB_WEBHOOK_SIGNING_TOKEN"))
}

// Sign returns a webhook-signature value for body; tests and the demo use it
// to sign deliveries as GitLab does.
func Sign(key []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
