package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/cli"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// hermeticAWS keeps the AWS SDK off this machine's settings: the test's env
// map goes to agentbot through getenv, and the few variables the SDK reads
// from the process environment by itself are blanked (an empty value counts
// as unset for the SDK).
func hermeticAWS(t *testing.T) map[string]string {
	t.Helper()
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
		"AWS_BEARER_TOKEN_BEDROCK",
	} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	home := t.TempDir()
	return map[string]string{
		"HOME":                        home,
		"AWS_CONFIG_FILE":             filepath.Join(home, "no-such-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "no-such-credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
}

func runCLI(t *testing.T, envMap map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = cli.Run(context.Background(), args, func(k string) string { return envMap[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func fakeEnv(t *testing.T, fake *bedrocktest.Server) map[string]string {
	env := hermeticAWS(t)
	env["AWS_REGION"] = "us-east-1"
	env["AWS_ACCESS_KEY_ID"] = "AKIDEXAMPLETESTKEY01"
	env["AWS_SECRET_ACCESS_KEY"] = "test-secret-access-key-value"
	env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] = fake.URL()
	return env
}

func TestRunAnalyzeWritesTheReport(t *testing.T) {
	fake := bedrocktest.New(t, bedrocktest.AnalyzeScript("AAPL")...)
	fake.ExpectCache(true)
	dir := t.TempDir()

	stdout, stderr, err := runCLI(t, fakeEnv(t, fake), "run", "--dir", dir, "analyze", "AAPL")
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr)
	}
	if code := cli.ExitCode(err); code != 0 {
		t.Errorf("exit code %d", code)
	}
	report, rerr := os.ReadFile(filepath.Join(dir, "output", "AAPL.md"))
	if rerr != nil || !strings.HasPrefix(string(report), "# AAPL") {
		t.Errorf("output/AAPL.md: %q, %v", report, rerr)
	}
	if !strings.Contains(stdout, "Wrote output/AAPL.md") {
		t.Errorf("stdout lacks the answer:\n%s", stdout)
	}
	for _, want := range []string{"us.anthropic.claude-sonnet-4-6 in us-east-1", "→ file_write", "✓ file_write", "files: output/AAPL.md"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests", len(reqs))
	}
	if reqs[0].ModelID != "us.anthropic.claude-sonnet-4-6" {
		t.Errorf("model %s", reqs[0].ModelID)
	}
	if got := strings.Join(reqs[0].ToolNames(), ","); got != "file_read,file_write,editor,list_files" {
		t.Errorf("tools %s", got)
	}
	if first := reqs[0].LastText(); !strings.Contains(first, "Analyze AAPL") {
		t.Errorf("user message %q", first)
	}
	if res := reqs[1].ToolResults()["tooluse_write_report"]; !strings.HasPrefix(res, "wrote ") {
		t.Errorf("file_write result %q", res)
	}
}

func TestRunJSON(t *testing.T) {
	fake := bedrocktest.New(t, bedrocktest.AnalyzeScript("MSFT")...)
	dir := t.TempDir()
	stdout, stderr, err := runCLI(t, fakeEnv(t, fake), "run", "--dir", dir, "--json", "--prompt", "analyze msft")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	var res struct {
		Answer     string   `json:"answer"`
		StopReason string   `json:"stop_reason"`
		Files      []string `json:"files"`
		Usage      struct {
			InputTokens     int `json:"input_tokens"`
			CacheReadTokens int `json:"cache_read_tokens"`
		} `json:"usage"`
		CostUSD float64 `json:"cost_usd"`
		Turns   int     `json:"turns"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if res.StopReason != "done" || len(res.Files) != 1 || res.Files[0] != "output/MSFT.md" ||
		res.Usage.InputTokens != 2170 || res.Usage.CacheReadTokens != 1600 || res.CostUSD <= 0 || res.Turns != 2 ||
		!strings.Contains(res.Answer, "output/MSFT.md") {
		t.Errorf("result %+v", res)
	}
}

func TestRunLimitExitsOne(t *testing.T) {
	fake := bedrocktest.NewFunc(t, func(*bedrocktest.Request) bedrocktest.Turn {
		return bedrocktest.Call("list_files", map[string]any{})
	})
	env := fakeEnv(t, fake)
	env["AGENTBOT_MAX_TURNS"] = "2"
	_, _, err := runCLI(t, env, "run", "--dir", t.TempDir(), "--prompt", "look around forever")
	if cli.ExitCode(err) != 1 || !strings.Contains(err.Error(), "AGENTBOT_MAX_TURNS") {
		t.Errorf("exit %d: %v", cli.ExitCode(err), err)
	}
}

func TestRunConfigurationErrorsExitTwo(t *testing.T) {
	fake := bedrocktest.New(t, bedrocktest.AccessDenied())
	tests := []struct {
		name    string
		env     func(map[string]string)
		args    []string
		mention []string
	}{
		{name: "no credentials", env: func(m map[string]string) {
			delete(m, "AWS_ACCESS_KEY_ID")
			delete(m, "AWS_SECRET_ACCESS_KEY")
		}, mention: []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ROLE_ARN"}},
		{name: "half the key", env: func(m map[string]string) { delete(m, "AWS_SECRET_ACCESS_KEY") },
			mention: []string{"AWS_SECRET_ACCESS_KEY"}},
		{name: "bad region", env: func(m map[string]string) { m["AWS_REGION"] = "moon" }, mention: []string{"AWS_REGION", "moon"}},
		{name: "unknown profile", env: func(m map[string]string) {
			delete(m, "AWS_ACCESS_KEY_ID")
			delete(m, "AWS_SECRET_ACCESS_KEY")
			m["AWS_PROFILE"] = "nosuch"
		}, mention: []string{"AWS_PROFILE", "nosuch"}},
		{name: "bad setting", env: func(m map[string]string) { m["AGENTBOT_MAX_TURNS"] = "many" }, mention: []string{"AGENTBOT_MAX_TURNS"}},
		{name: "access denied", mention: []string{"bedrock:InvokeModel"}},
		{name: "no request", args: []string{"run"}, mention: []string{"no request"}},
		{name: "both forms", args: []string{"run", "--prompt", "x", "analyze", "AAPL"}, mention: []string{"not both"}},
		{name: "bad ticker", args: []string{"run", "analyze", "../../etc"}, mention: []string{"not a ticker"}},
		{name: "no such dir", args: []string{"run", "--dir", "/nonexistent/agentbot", "analyze", "AAPL"}, mention: []string{"--dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := fakeEnv(t, fake)
			if tt.env != nil {
				tt.env(env)
			}
			args := tt.args
			if args == nil {
				args = []string{"run", "--dir", t.TempDir(), "analyze", "AAPL"}
			}
			_, _, err := runCLI(t, env, args...)
			if cli.ExitCode(err) != 2 {
				t.Fatalf("exit %d: %v", cli.ExitCode(err), err)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error does not mention %q: %v", m, err)
				}
			}
			if strings.Contains(err.Error(), "test-secret-access-key-value") {
				t.Errorf("error leaks the secret key: %v", err)
			}
		})
	}
}
