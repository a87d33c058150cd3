package awsx_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/awsx"
	"gitlab.com/agentbot/agentbot/internal/awsx/awstest"
	"gitlab.com/agentbot/agentbot/internal/config"
)

func settings(t *testing.T, env map[string]string) config.AWS {
	t.Helper()
	s, err := config.LoadAWS(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRegion(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "us-east-1"},
		{map[string]string{"AWS_DEFAULT_REGION": "eu-central-1"}, "eu-central-1"},
		{map[string]string{"AWS_DEFAULT_REGION": "eu-central-1", "AWS_REGION": "ap-south-1"}, "ap-south-1"},
	} {
		if got := settings(t, tc.env).Region; got != tc.want {
			t.Errorf("%v: region %s, want %s", tc.env, got, tc.want)
		}
	}
}

// What the test's environment says counts, not the process's: other keys,
// region and endpoint in the real environment change nothing.
func TestLoadIsHermetic(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/aws/config")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFROMTHEPROCESS00")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "process-secret")
	t.Setenv("AWS_REGION", "sa-east-1")
	fake := awstest.New(t)
	s := settings(t, fake.Env())
	cfg, err := awsx.Load(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	id, err := awsx.CallerIdentity(t.Context(), cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	if id.ARN != awstest.UserARN || id.Account != awstest.Account {
		t.Errorf("identity %+v", id)
	}
	r := fake.Requests()[0]
	if r.AccessKeyID != awstest.AccessKeyID || r.Region != "eu-west-1" {
		t.Errorf("signed with %s in %s, want the test's key in eu-west-1", r.AccessKeyID, r.Region)
	}
}

func webIdentityEnv(fake *awstest.Fake, token string) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":  fake.URL,
		"AWS_ROLE_ARN":      "arn:aws:iam::123456789012:role/agentbot-ci",
		"GITLAB_OIDC_TOKEN": token,
		"CI_JOB_ID":         "4242",
	}
}

func TestGitLabOIDCWebIdentity(t *testing.T) {
	fake := awstest.New(t)
	token := awstest.OIDCToken("project_path:group/project:ref_type:branch:ref:main", "https://gitlab.example.com")
	s := settings(t, webIdentityEnv(fake, token))
	cfg, err := awsx.Load(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		id, err := awsx.CallerIdentity(t.Context(), cfg, s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(id.ARN, "assumed-role/agentbot-ci") {
			t.Fatalf("identity %+v, want the assumed role", id)
		}
	}
	if n := fake.Count("AssumeRoleWithWebIdentity"); n != 1 {
		t.Errorf("assumed the role %d times, want once (credentials are cached)", n)
	}
	for _, r := range fake.Requests() {
		switch r.Action {
		case "AssumeRoleWithWebIdentity":
			if r.Params["WebIdentityToken"] != token || r.Params["RoleSessionName"] != "agentbot-4242" || r.AccessKeyID != "" {
				t.Errorf("assume request %+v", r)
			}
		case "GetCallerIdentity":
			if r.AccessKeyID != awstest.AssumedKeyID {
				t.Errorf("GetCallerIdentity signed by %q, want the assumed role's key", r.AccessKeyID)
			}
		}
	}
}

func TestAccessDeniedExplainsTrustPolicy(t *testing.T) {
	fake := awstest.New(t)
	fake.DenyAssumeRole(true)
	token := awstest.OIDCToken("project_path:group/project:ref_type:branch:ref:feature-x", "https://gitlab.example.com")
	s := settings(t, webIdentityEnv(fake, token))
	cfg, err := awsx.Load(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = awsx.CallerIdentity(t.Context(), cfg, s)
	var tp *awsx.TrustPolicyError
	if !errors.As(err, &tp) {
		t.Fatalf("got %v, want a TrustPolicyError", err)
	}
	msg := err.Error()
	for _, want := range []string{"AccessDenied", "trust policy", "project_path:group/project:ref_type:branch:ref:main",
		`sub "project_path:group/project:ref_type:branch:ref:feature-x"`, "aud", "arn:aws:iam::123456789012:role/agentbot-ci"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, token) {
		t.Error("the error shows the OIDC token")
	}
}

func TestSecretsCachedForTTL(t *testing.T) {
	fake := awstest.New(t)
	fake.SetSecret("agentbot/mcp", `{"client_id":"agentbot","client_secret":"s3cret-value"}`)
	env := fake.Env()
	env["AGENTBOT_SECRET_TTL"] = "10m"
	s := settings(t, env)
	cfg, err := awsx.Load(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2025, 6, 30, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	secrets := awsx.NewSecrets(cfg, s, clock)
	for range 3 {
		id, secret, err := secrets.ClientCredentials(t.Context(), "agentbot/mcp")
		if err != nil || id != "agentbot" || secret != "s3cret-value" {
			t.Fatalf("got %q %q %v", id, secret, err)
		}
	}
	mu.Lock()
	now = now.Add(11 * time.Minute)
	mu.Unlock()
	if _, _, err := secrets.ClientCredentials(t.Context(), "agentbot/mcp"); err != nil {
		t.Fatal(err)
	}
	if n := fake.Count("GetSecretValue"); n != 2 {
		t.Errorf("read the secret %d times, want 2 (once, then once after the TTL)", n)
	}
}

func TestSecretErrors(t *testing.T) {
	fake := awstest.New(t)
	fake.SetSecret("upper", `{"MCP_CLIENT_ID":"id","MCP_CLIENT_SECRET":"value-1"}`)
	fake.SetSecret("no-id", `{"client_secret":"value-2"}`)
	fake.SetSecret("not-json", `value-3`)
	s := settings(t, fake.Env())
	cfg, err := awsx.Load(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	secrets := awsx.NewSecrets(cfg, s, nil)
	ctx := context.Background()
	if id, secret, err := secrets.ClientCredentials(ctx, "upper"); err != nil || id != "id" || secret != "value-1" {
		t.Errorf("MCP_ keys: %q %q %v", id, secret, err)
	}
	for name, want := range map[string]string{
		"no-id":    "MCP_CLIENT_ID is required",
		"not-json": "not a JSON object",
		"missing":  "not found in region eu-west-1 (check SECRET_NAME",
	} {
		_, _, err := secrets.ClientCredentials(ctx, name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "value-") {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}
