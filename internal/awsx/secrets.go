package awsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"gitlab.com/agentbot/agentbot/internal/config"
)

// Secrets reads Secrets Manager secrets and keeps each for a while
// (AGENTBOT_SECRET_TTL), so that a busy process reads a secret once per
// period, and a rotated secret is picked up within one. Safe for concurrent
// use; build one per process.
type Secrets struct {
	client *secretsmanager.Client
	region string
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cachedSecret
}

type cachedSecret struct {
	value string
	read  time.Time
}

// NewSecrets returns a Secrets over cfg, at AWS_ENDPOINT_URL_SECRETS_MANAGER
// when set. now is the clock; nil means time.Now.
func NewSecrets(cfg aws.Config, s config.AWS, now func() time.Time) *Secrets {
	if now == nil {
		now = time.Now
	}
	client := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		if s.SecretsManagerEndpoint != "" {
			o.BaseEndpoint = aws.String(s.SecretsManagerEndpoint)
		}
	})
	return &Secrets{client: client, region: cfg.Region, ttl: s.SecretTTL, now: now, cache: map[string]cachedSecret{}}
}

// Get returns the secret's string value, from the cache while it is fresh.
func (s *Secrets) Get(ctx context.Context, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock() // one read per secret at a time; the SDK call has ctx
	if c, ok := s.cache[name]; ok && s.now().Sub(c.read) < s.ttl {
		return c.value, nil
	}
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return "", s.explain(name, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("read secret %s: it holds binary data; want a JSON string", name)
	}
	s.cache[name] = cachedSecret{value: *out.SecretString, read: s.now()}
	return *out.SecretString, nil
}

func (s *Secrets) explain(name string, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ResourceNotFoundException":
			return fmt.Errorf("read secret %s: not found in region %s (check SECRET_NAME and AWS_REGION): %w", name, s.region, err)
		case "AccessDeniedException":
			return fmt.Errorf("read secret %s: access denied: the AWS identity needs secretsmanager:GetSecretValue on it (and kms:Decrypt on its key if it uses a customer managed key): %w", name, err)
		case "DecryptionFailure":
			return fmt.Errorf("read secret %s: cannot decrypt it: the AWS identity needs kms:Decrypt on the secret's key: %w", name, err)
		}
	}
	return fmt.Errorf("read secret %s: %w", name, err)
}

// ClientCredentials reads an OAuth2 client id and secret from a secret
// holding JSON, under client_id/client_secret or MCP_CLIENT_ID/
// MCP_CLIENT_SECRET. Errors never show the secret's value.
func (s *Secrets) ClientCredentials(ctx context.Context, name string) (id, secret string, err error) {
	v, err := s.Get(ctx, name)
	if err != nil {
		return "", "", err
	}
	return ParseClientCredentials(name, v)
}

// ParseClientCredentials reads a client id and secret from the JSON value of
// the secret called name.
func ParseClientCredentials(name, value string) (id, secret string, err error) {
	var m map[string]any
	if json.Unmarshal([]byte(value), &m) != nil {
		return "", "", fmt.Errorf("secret %s is not a JSON object; want {\"client_id\": \"…\", \"client_secret\": \"…\"}", name)
	}
	pick := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := m[k].(string); ok && v != "" {
				return v
			}
		}
		return ""
	}
	id = pick("client_id", "MCP_CLIENT_ID")
	secret = pick("client_secret", "MCP_CLIENT_SECRET")
	switch {
	case id == "":
		return "", "", fmt.Errorf("MCP_CLIENT_ID is required: secret %s has no client_id (or MCP_CLIENT_ID) key; add it, or set MCP_CLIENT_ID", name)
	case secret == "":
		return "", "", fmt.Errorf("MCP_CLIENT_SECRET is required: secret %s has no client_secret (or MCP_CLIENT_SECRET) key; add it, or set MCP_CLIENT_SECRET", name)
	}
	return id, secret, nil
}
