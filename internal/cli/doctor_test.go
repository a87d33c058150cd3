package cli_test

import (
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/awsx/awstest"
	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/mcp/mcptest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

type doctorWorld struct {
	env    map[string]string
	aws    *awstest.Fake
	mcp    *mcptest.Server
	gitlab *gitlabtest.Server
	bot    gitlabtest.User
}

// newDoctorWorld is every link agentbot depends on, working: GitLab with a
// bot user, AWS (STS and Secrets Manager) holding the OAuth client, the
// finance MCP server behind its token, and the model.
func newDoctorWorld(t *testing.T, model *bedrocktest.Server) *doctorWorld {
	w := &doctorWorld{env: isolatedEnv(t), aws: awstest.New(t), mcp: financeServer(t), gitlab: gitlabtest.New(t)}
	w.bot = w.gitlab.AddUser(gitlabtest.User{Username: "agentbot", Bot: true, Token: "glpat-doctor-test-token"})
	w.aws.SetSecret("agentbot/finance", `{"client_id":"`+clientID+`","client_secret":"`+clientSecret+`"}`)
	for k, v := range w.aws.Env() {
		w.env[k] = v
	}
	w.env["GITLAB_URL"] = w.gitlab.URL()
	w.env["GITLAB_TOKEN"] = w.bot.Token
	w.env["FINANCE_MCP_URL"] = w.mcp.URL
	w.env["SECRET_NAME"] = "agentbot/finance"
	if model != nil {
		w.env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] = model.URL()
		w.env["MODEL_ID"] = "us.anthropic.claude-sonnet-4-6"
	}
	return w
}

// secretsIn reports any secret or token that shows in s.
func (w *doctorWorld) secretsIn(s string) []string {
	var found []string
	for _, v := range append([]string{clientSecret, w.bot.Token, awstest.SecretAccessKey}, w.mcp.Issuer.Tokens()...) {
		if v != "" && strings.Contains(s, v) {
			found = append(found, v)
		}
	}
	return found
}

func TestDoctorAllGreen(t *testing.T) {
	model := bedrocktest.New(t, bedrocktest.Reply("OK"))
	w := newDoctorWorld(t, model)
	w.env["AGENTBOT_LOG_LEVEL"] = "debug"
	out, errOut, code := agentbotCLI(t, w.env, "doctor")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"✓ settings: valid",
		"✓ GitLab: " + w.gitlab.URL() + " answers; the token belongs to @agentbot, a bot user",
		"✓ AWS identity: " + awstest.UserARN + " (account 123456789012, region eu-west-1, via AWS_ACCESS_KEY_ID)",
		"✓ secret agentbot/finance: readable; holds a client id (agentbot-finance) and a client secret",
		"✓ OAuth token (finance): obtained from " + w.mcp.TokenURL + "; expires in ",
		"✓ MCP finance: " + w.mcp.URL + " answers; 3 tools",
		"✓ model: us.anthropic.claude-sonnet-4-6 answers in eu-west-1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "✗") {
		t.Errorf("a check failed:\n%s", out)
	}
	if w.mcp.Issuer.Issued() == 0 {
		t.Fatal("no token was issued; the leak check below proves nothing")
	}
	if leaked := w.secretsIn(out + errOut); len(leaked) > 0 {
		t.Errorf("doctor's output or logs show %q:\n%s\n%s", leaked, out, errOut)
	}
}

// In GitLab CI with a role whose trust policy does not match: the AWS check
// explains the sub condition, what needs AWS is skipped, and the exit is 1.
func TestDoctorExplainsTrustPolicy(t *testing.T) {
	w := newDoctorWorld(t, nil)
	delete(w.env, "AWS_ACCESS_KEY_ID")
	delete(w.env, "AWS_SECRET_ACCESS_KEY")
	token := awstest.OIDCToken("project_path:group/project:ref_type:branch:ref:feature", "https://gitlab.example.com")
	w.env["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/agentbot-ci"
	w.env["GITLAB_OIDC_TOKEN"] = token
	w.env["CI_JOB_ID"] = "77"
	w.aws.DenyAssumeRole(true)

	out, errOut, code := agentbotCLI(t, w.env, "doctor", "--skip-model")
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"✓ GitLab",
		"✗ AWS identity: assume arn:aws:iam::123456789012:role/agentbot-ci with the GitLab OIDC token (GITLAB_OIDC_TOKEN): AccessDenied",
		"project_path:group/project:ref_type:branch:ref:main",
		`This token has sub "project_path:group/project:ref_type:branch:ref:feature"`,
		"    fix: edit the trust policy of arn:aws:iam::123456789012:role/agentbot-ci",
		"– secret agentbot/finance: skipped (needs a working AWS identity)",
		"– OAuth token (finance): skipped (its secret is not readable)",
		"– MCP finance: skipped (no OAuth token)",
		"– model: skipped (--skip-model)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, token) {
		t.Error("doctor shows the OIDC token")
	}
}

func TestDoctorNamesEachBrokenLink(t *testing.T) {
	w := newDoctorWorld(t, nil)
	w.env["GITLAB_TOKEN"] = "glpat-revoked"
	w.env["SECRET_NAME"] = "agentbot/missing"
	w.env["MCP_CLIENT_ID"] = clientID
	w.env["MCP_CLIENT_SECRET"] = "wrong-" + clientSecret

	out, errOut, code := agentbotCLI(t, w.env, "doctor", "--skip-model")
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"✗ GitLab: ", "401", "fix: check GITLAB_URL",
		"✓ AWS identity",
		"✗ OAuth token (finance): get an OAuth token from " + w.mcp.TokenURL + ": 401 Unauthorized: invalid_client",
		"– MCP finance: skipped (no OAuth token)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor's output lacks %q:\n%s", want, out)
		}
	}
	// Both id and secret come from the environment: the secret is not read.
	if strings.Contains(out, "secret agentbot/missing") || w.aws.Count("GetSecretValue") != 0 {
		t.Errorf("the secret was checked though MCP_CLIENT_ID and MCP_CLIENT_SECRET are set:\n%s", out)
	}
	if leaked := w.secretsIn(out + errOut); len(leaked) > 0 {
		t.Errorf("doctor shows %q", leaked)
	}
	if strings.Contains(out+errOut, "wrong-"+clientSecret) || strings.Contains(out+errOut, "glpat-revoked") {
		t.Error("doctor shows a configured secret")
	}
}
