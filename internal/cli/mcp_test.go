package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/awsx/awstest"
	"gitlab.com/agentbot/agentbot/internal/cli"
	"gitlab.com/agentbot/agentbot/internal/mcp/financedemo"
	"gitlab.com/agentbot/agentbot/internal/mcp/mcptest"
)

// agentbotCLI runs the whole program in-process with env as its
// environment.
func agentbotCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cli.Run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	if err != nil {
		errOut.WriteString("agentbot: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), cli.ExitCode(err)
}

// isolatedEnv is an environment without this machine's AWS settings: the
// SDK reads a few variables from the process by itself, so those are
// blanked (empty counts as unset).
func isolatedEnv(t *testing.T) map[string]string {
	t.Helper()
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	home := t.TempDir()
	return map[string]string{"HOME": home, "AWS_CONFIG_FILE": filepath.Join(home, "none"), "AWS_EC2_METADATA_DISABLED": "true"}
}

const (
	clientID     = "agentbot-finance"
	clientSecret = "client-secret-0123456789"
)

func financeServer(t *testing.T) *mcptest.Server {
	return mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{
		Issuer: mcptest.IssuerOptions{ClientID: clientID, ClientSecret: clientSecret, Lifetime: time.Hour},
	})
}

func TestMCPToolsAndCall(t *testing.T) {
	srv := financeServer(t)
	env := isolatedEnv(t)
	env["FINANCE_MCP_URL"] = srv.URL
	env["AUTH_SERVER_TOKEN_URL"] = srv.TokenURL
	env["MCP_CLIENT_ID"] = clientID
	env["MCP_CLIENT_SECRET"] = clientSecret

	out, errOut, code := agentbotCLI(t, env, "mcp", "tools")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"TOOL", "REQUIRED", "get_quote", "get_fundamentals", "get_price_history", "symbol", "Latest price of a stock"} {
		if !strings.Contains(out, want) {
			t.Errorf("mcp tools lacks %q:\n%s", want, out)
		}
	}

	out, errOut, code = agentbotCLI(t, env, "mcp", "call", "get_quote", `{"symbol":"AAPL"}`)
	if code != 0 || !strings.Contains(out, `"price":205.17`) {
		t.Fatalf("exit %d, out %q, err %s", code, out, errOut)
	}
	out, _, code = agentbotCLI(t, env, "mcp", "call", "get_quote", `{"symbol":"NOPE"}`)
	if code != 1 || !strings.Contains(out, "unknown symbol") {
		t.Errorf("tool error: exit %d, %q", code, out)
	}
	if _, errOut, code := agentbotCLI(t, env, "mcp", "call", "no_such_tool"); code != 2 || !strings.Contains(errOut, "get_quote") {
		t.Errorf("unknown tool: exit %d, %s", code, errOut)
	}
	if _, _, code := agentbotCLI(t, env, "mcp", "call", "get_quote", `{bad`); code != 2 {
		t.Errorf("bad JSON: exit %d", code)
	}
	for _, s := range []string{out, errOut} {
		if strings.Contains(s, clientSecret) || mcptest.HasToken(s, srv.Issuer.Tokens()) {
			t.Errorf("output shows the secret or a token:\n%s", s)
		}
	}
}

// The credentials come from Secrets Manager and the token endpoint from
// discovery: only FINANCE_MCP_URL and SECRET_NAME are set.
func TestMCPWithSecretAndDiscovery(t *testing.T) {
	srv := financeServer(t)
	fake := awstest.New(t)
	fake.SetSecret("agentbot/finance", `{"client_id":"`+clientID+`","client_secret":"`+clientSecret+`"}`)
	env := isolatedEnv(t)
	for k, v := range fake.Env() {
		env[k] = v
	}
	env["FINANCE_MCP_URL"] = srv.URL
	env["SECRET_NAME"] = "agentbot/finance"

	out, errOut, code := agentbotCLI(t, env, "mcp", "call", "get_fundamentals", `{"symbol":"MSFT"}`)
	if code != 0 || !strings.Contains(out, "Microsoft") {
		t.Fatalf("exit %d, out %q, err %s", code, out, errOut)
	}
	if n := fake.Count("GetSecretValue"); n != 1 {
		t.Errorf("read the secret %d times", n)
	}
	if strings.Contains(out+errOut, clientSecret) {
		t.Error("the output shows the client secret")
	}
}

func TestMCPMissingClientID(t *testing.T) {
	env := isolatedEnv(t)
	env["FINANCE_MCP_URL"] = "https://finance.example.com/mcp"
	_, errOut, code := agentbotCLI(t, env, "mcp", "tools")
	if code != 2 || !strings.Contains(errOut, "MCP_CLIENT_ID is required: set SECRET_NAME") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// `agentbot mcp` against the reference server from the MCP project.
func TestMCPCommandsAgainstServerEverything(t *testing.T) {
	url := mcptest.StartEverything(t, os.Getenv)
	env := isolatedEnv(t)
	env["MCP_AUTH"] = "none"

	out, errOut, code := agentbotCLI(t, env, "mcp", "tools", "--url", url)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var echo string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "echo ") {
			echo = line
		}
	}
	if !strings.Contains(echo, "message") || !strings.Contains(echo, "Echoes back the input") {
		t.Errorf("no echo line with its required parameter and description:\n%s", out)
	}

	out, errOut, code = agentbotCLI(t, env, "mcp", "call", "--url", url, "echo", `{"message":"hi"}`)
	if code != 0 || out != "Echo: hi\n" {
		t.Errorf("exit %d, out %q, err %s", code, out, errOut)
	}
}
