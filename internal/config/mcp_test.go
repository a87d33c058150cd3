package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/config"
)

func mapEnv(m map[string]string) config.Getenv { return func(k string) string { return m[k] } }

func TestMCPFinanceFromEnv(t *testing.T) {
	m, err := config.LoadMCP(mapEnv(map[string]string{
		"FINANCE_MCP_URL":      "https://finance.example.com/mcp",
		"SECRET_NAME":          "agentbot/mcp",
		"MCP_SCOPES":           "quotes:read, fundamentals:read",
		"MCP_TOKEN_AUTH_STYLE": "client_secret_post",
		"AGENTBOT_MCP_TIMEOUT": "20s",
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Servers) != 1 {
		t.Fatalf("servers: %+v", m.Servers)
	}
	s := m.Servers[0]
	if s.Name != "finance" || s.Auth.SecretName != "agentbot/mcp" || s.Auth.Style != config.TokenAuthPost ||
		strings.Join(s.Auth.Scopes, " ") != "quotes:read fundamentals:read" || s.Timeout != 20*time.Second || s.Auth.TokenURL != "" {
		t.Errorf("server %+v", s)
	}
}

func TestMCPMissingCredentials(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"FINANCE_MCP_URL": "https://f.example.com/mcp"}, "MCP_CLIENT_ID is required: set SECRET_NAME"},
		{map[string]string{"FINANCE_MCP_URL": "https://f.example.com/mcp", "MCP_CLIENT_ID": "x"}, "MCP_CLIENT_SECRET is required"},
		{map[string]string{"FINANCE_MCP_URL": "f.example.com", "MCP_AUTH": "none"}, "FINANCE_MCP_URL=\"f.example.com\""},
		{map[string]string{"FINANCE_MCP_URL": "https://f.example.com/mcp", "MCP_AUTH": "none", "MCP_TOKEN_AUTH_STYLE": "jwt"}, "MCP_TOKEN_AUTH_STYLE"},
	} {
		_, err := config.LoadMCP(mapEnv(tc.env), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.env, err, tc.want)
		}
	}
	// Nothing configured: no servers, no problem.
	if m, err := config.LoadMCP(mapEnv(nil), ""); err != nil || len(m.Servers) != 0 {
		t.Errorf("empty: %+v %v", m, err)
	}
	// --url with credentials from the environment.
	m, err := config.LoadMCP(mapEnv(map[string]string{"MCP_CLIENT_ID": "id", "MCP_CLIENT_SECRET": "s"}), "http://127.0.0.1:9/mcp")
	if err != nil || len(m.Servers) != 1 || m.Servers[0].Auth.ClientSecret != "s" {
		t.Errorf("--url: %+v %v", m, err)
	}
}

func TestMCPServersFile(t *testing.T) {
	dir := t.TempDir()
	yamlFile := filepath.Join(dir, "mcp.yaml")
	os.WriteFile(yamlFile, []byte(`
servers:
  - name: research
    url: https://research.example.com/mcp
    token_url: https://auth.example.com/token
    client_id: research-bot
    client_secret_env: RESEARCH_SECRET
    token_auth_style: post
    timeout: 5s
  - name: shared
    url: https://shared.example.com/mcp
  - name: files
    command: npx
    args: [-y, some-server]
    env: {LOG_LEVEL: debug}
`), 0o600)
	env := map[string]string{
		"FINANCE_MCP_URL": "https://finance.example.com/mcp", "SECRET_NAME": "agentbot/mcp",
		"AUTH_SERVER_TOKEN_URL": "https://auth.example.com/oauth/token",
		"AGENTBOT_MCP_CONFIG":   yamlFile, "RESEARCH_SECRET": "rs", "PATH": "/usr/bin", "GITLAB_TOKEN": "glpat-x",
	}
	m, err := config.LoadMCP(mapEnv(env), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Servers) != 4 {
		t.Fatalf("servers %+v", m.Servers)
	}
	r, sh, f := m.Servers[1], m.Servers[2], m.Servers[3]
	if r.Auth.ClientSecret != "rs" || r.Auth.Style != config.TokenAuthPost || r.Timeout != 5*time.Second {
		t.Errorf("research %+v", r)
	}
	if sh.Auth.SecretName != "agentbot/mcp" || sh.Auth.TokenURL != "https://auth.example.com/oauth/token" {
		t.Errorf("shared should use the environment's auth: %+v", sh)
	}
	if f.Remote() || !f.Auth.None || strings.Join(f.Env, " ") != "PATH=/usr/bin LOG_LEVEL=debug" {
		t.Errorf("files %+v", f)
	}

	// JSON, with a typo and a duplicate name.
	jsonFile := filepath.Join(dir, "mcp.json")
	os.WriteFile(jsonFile, []byte(`{"servers": [{"name": "finance", "url": "https://x.example.com/mcp", "auth": "none"}]}`), 0o600)
	env["AGENTBOT_MCP_CONFIG"] = jsonFile
	if _, err := config.LoadMCP(mapEnv(env), ""); err == nil || !strings.Contains(err.Error(), `"finance" is used twice`) {
		t.Errorf("duplicate: %v", err)
	}
	os.WriteFile(jsonFile, []byte(`{"servers": [{"name": "x", "ur": "https://x.example.com/mcp"}]}`), 0o600)
	if _, err := config.LoadMCP(mapEnv(env), ""); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("typo: %v", err)
	}
}
