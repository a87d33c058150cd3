package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/awsx"
	"gitlab.com/agentbot/agentbot/internal/config"
	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/mcp"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock"
	"gitlab.com/agentbot/agentbot/internal/redact"
)

const doctorUsage = `usage: agentbot doctor [--skip-model]

Checks each link agentbot depends on, in order, and prints ✓ or ✗ with the
fix for each ✗: settings; GitLab (reachable, token valid, its user); AWS
identity (STS GetCallerIdentity); the Secrets Manager secret; the OAuth
token; each MCP server and its tools; the model (a one-token call, skipped
with --skip-model). Secrets and tokens are never printed.

Exit status: 0 when every check passed, 1 otherwise.
`

// checkTimeout bounds each check.
const checkTimeout = 30 * time.Second

func runDoctor(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	skipModel := fs.Bool("skip-model", false, "do not call the model")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, doctorUsage)
			return nil
		}
		return usageError(err.Error() + "\n" + doctorUsage)
	}
	if fs.NArg() > 0 {
		return usageError("doctor takes no arguments\n" + doctorUsage)
	}
	d := &doctor{w: e.stdout, redact: redact.New(secretValues(e.getenv)...)}
	d.run(ctx, e, *skipModel)
	if d.failed > 0 {
		return fmt.Errorf("doctor: %d of %d checks failed", d.failed, d.checks)
	}
	return nil
}

// doctor prints one line per check; everything it prints goes through the
// redactor, which also learns each secret and token as it is read.
type doctor struct {
	w      io.Writer
	redact *redact.Redactor
	checks int
	failed int
}

func (d *doctor) ok(name, format string, args ...any) {
	d.checks++
	fmt.Fprintln(d.w, d.redact.String(fmt.Sprintf("✓ %s: %s", name, fmt.Sprintf(format, args...))))
}

func (d *doctor) fail(name string, err error, fix string) {
	d.checks++
	d.failed++
	fmt.Fprintln(d.w, d.redact.String(fmt.Sprintf("✗ %s: %v", name, err)))
	if fix != "" {
		fmt.Fprintln(d.w, d.redact.String("    fix: "+fix))
	}
}

func (d *doctor) skip(name, why string) {
	fmt.Fprintln(d.w, d.redact.String(fmt.Sprintf("– %s: skipped (%s)", name, why)))
}

func (d *doctor) note(text string) {
	fmt.Fprintln(d.w, d.redact.String("  "+text))
}

func (d *doctor) run(ctx context.Context, e *env, skipModel bool) {
	// 1. Settings, every area at once.
	agentSet, agentErr := config.LoadAgent(e.getenv)
	awsSet, awsErr := config.LoadAWS(e.getenv)
	logger := e.logger()
	link, mcpErr := newMCPLink(e, "", logger)
	gl, glProblems, serveOnly := gitlabSettings(e.getenv)
	var problems []string
	for _, err := range []error{agentErr, awsErr, mcpErr} {
		var p config.Problems
		if errors.As(err, &p) {
			problems = append(problems, p...)
		} else if err != nil {
			problems = append(problems, err.Error())
		}
	}
	problems = append(problems, glProblems...)
	if len(problems) == 0 {
		n := 0
		if link != nil {
			n = len(link.servers)
		}
		d.ok("settings", "valid (GitLab %s, AWS region %s, %d MCP server(s))", gl.URL, awsSet.Region, n)
	} else {
		d.fail("settings", errors.New(strings.Join(problems, "; ")), "set or correct the variables named above; see docs/configuration.md and docs/mcp.md")
	}
	for _, p := range serveOnly {
		d.note("(agentbot serve only) " + p)
	}

	// 2. GitLab.
	if len(glProblems) > 0 {
		d.skip("GitLab", "its settings are invalid")
	} else {
		d.checkGitLab(ctx, gl)
	}

	// 3. AWS identity.
	var awsCfg aws.Config
	awsOK := false
	if awsErr != nil {
		d.skip("AWS identity", "the AWS settings are invalid")
	} else {
		awsCfg, awsOK = d.checkAWS(ctx, awsSet)
	}

	// 4–6. Secret, OAuth token, MCP servers.
	if mcpErr != nil {
		d.skip("MCP", "the MCP settings are invalid")
	} else {
		if awsOK {
			link.secrets.use(awsCfg, awsSet)
		}
		d.checkMCP(ctx, link, awsOK)
	}

	// 7. Model.
	switch {
	case skipModel:
		d.skip("model", "--skip-model")
	case agentErr != nil || !awsOK:
		d.skip("model", "needs valid agent settings and a working AWS identity")
	default:
		d.checkModel(ctx, agentSet, awsCfg)
	}
}

// gitlabSettings reads GITLAB_URL and GITLAB_TOKEN through serve's
// settings, separating their problems from serve-only ones (a CI job
// needs no webhook secret).
func gitlabSettings(getenv config.Getenv) (config.GitLab, []string, []string) {
	s, err := config.LoadServer(getenv)
	var p config.Problems
	if !errors.As(err, &p) && err != nil {
		return s.GitLab, []string{err.Error()}, nil
	}
	var mine, others []string
	for _, problem := range p {
		if strings.HasPrefix(problem, "GITLAB_URL") || strings.HasPrefix(problem, "GITLAB_TOKEN") {
			mine = append(mine, problem)
		} else {
			others = append(others, problem)
		}
	}
	return s.GitLab, mine, others
}

func (d *doctor) checkGitLab(ctx context.Context, s config.GitLab) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	client, err := gitlab.New(s.URL, s.Token, gitlab.Options{MaxRetries: 1, Timeout: checkTimeout})
	if err == nil {
		var me gitlab.User
		if me, err = client.CurrentUser(ctx); err == nil {
			kind := "a bot user (project or group access token)"
			if !me.Bot {
				kind = "a regular user; a project or group access token's bot user is safer"
			}
			d.ok("GitLab", "%s answers; the token belongs to @%s, %s", s.URL, me.Username, kind)
			return
		}
	}
	fix := "check GITLAB_URL (the instance's base URL) and GITLAB_TOKEN (an access token with scopes api and write_repository, not expired or revoked)"
	var ge *gitlab.Error
	if errors.As(err, &ge) && ge.Status == 0 {
		fix = "GitLab did not answer: check GITLAB_URL and that this machine can reach it (proxy, firewall, DNS)"
	}
	d.fail("GitLab", err, fix)
}

func (d *doctor) checkAWS(ctx context.Context, s config.AWS) (aws.Config, bool) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	cfg, err := awsx.Load(ctx, s)
	if err == nil {
		var id awsx.Identity
		if id, err = awsx.CallerIdentity(ctx, cfg, s); err == nil {
			how := "the default credential chain"
			switch {
			case s.WebIdentity():
				how = "GitLab OIDC web identity (" + s.SessionName + ")"
			case s.AccessKeyID != "":
				how = "AWS_ACCESS_KEY_ID"
			case s.Profile != "":
				how = "profile " + s.Profile
			}
			d.ok("AWS identity", "%s (account %s, region %s, via %s)", id.ARN, id.Account, s.Region, how)
			return cfg, true
		}
	}
	fix := "give agentbot AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance or task role, or in GitLab CI AWS_ROLE_ARN with GITLAB_OIDC_TOKEN (id_tokens)"
	var tp *awsx.TrustPolicyError
	if errors.As(err, &tp) {
		err = tp // its own message says it all; the SDK's wrapping only adds noise
		fix = "edit the trust policy of " + tp.RoleARN + ": its sub condition must match this job's project and ref, its aud the id_tokens aud (see docs/mcp.md, Troubleshooting)"
	}
	d.fail("AWS identity", err, fix)
	return cfg, false
}

func (d *doctor) checkMCP(ctx context.Context, link *mcpLink, awsOK bool) {
	if len(link.servers) == 0 {
		d.fail("MCP", errors.New("no MCP server is configured"), "set FINANCE_MCP_URL to the finance MCP server's URL (or list servers in AGENTBOT_MCP_CONFIG)")
		return
	}
	// Secrets.
	badSecret := map[string]bool{}
	for _, name := range link.secretNames() {
		check := "secret " + name
		if !awsOK {
			d.skip(check, "needs a working AWS identity")
			badSecret[name] = true
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, checkTimeout)
		secrets, err := link.secrets.get(sctx)
		if err == nil {
			var id, secret string
			if id, secret, err = secrets.ClientCredentials(sctx, name); err == nil {
				d.redact.Add(secret)
				d.ok(check, "readable; holds a client id (%s) and a client secret", id)
			}
		}
		cancel()
		if err != nil {
			badSecret[name] = true
			d.fail(check, err, "check SECRET_NAME and AWS_REGION, the identity's secretsmanager:GetSecretValue permission, and that the secret is JSON with client_id and client_secret")
		}
	}
	// Tokens, then servers.
	badToken := map[*mcp.TokenSource]bool{}
	for _, lt := range link.tokens {
		ts, s := lt.ts, lt.server
		check := "OAuth token (" + s.Name + ")"
		if s.Auth.SecretName != "" && badSecret[s.Auth.SecretName] && (s.Auth.ClientID == "" || s.Auth.ClientSecret == "") {
			d.skip(check, "its secret is not readable")
			badToken[ts] = true
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, checkTimeout)
		tok, err := ts.Token(tctx)
		cancel()
		if err != nil {
			badToken[ts] = true
			d.fail(check, err, "check AUTH_SERVER_TOKEN_URL (or that the MCP server publishes OAuth metadata), the client id and secret, MCP_SCOPES and MCP_TOKEN_AUTH_STYLE (basic or post)")
			continue
		}
		d.redact.Add(tok.AccessToken)
		expiry := "no expiry given"
		if !tok.Expiry.IsZero() {
			expiry = fmt.Sprintf("expires in %s (%s)", time.Until(tok.Expiry).Round(time.Second), tok.Expiry.UTC().Format("15:04:05 MST"))
		}
		d.ok(check, "obtained from %s; %s", ts.TokenURL(), expiry)
	}
	for _, srv := range link.servers {
		check := "MCP " + srv.Name
		if srv.Auth != nil && badToken[srv.Auth] {
			d.skip(check, "no OAuth token")
			continue
		}
		session, err := mcp.Connect(ctx, []mcp.Server{srv}, mcp.Options{Version: Version})
		if err != nil {
			d.fail(check, err, "check the server's URL (FINANCE_MCP_URL) or command, that it is running and reachable, and AGENTBOT_MCP_TIMEOUT")
			continue
		}
		where := srv.URL
		if where == "" {
			where = srv.Command
		}
		d.ok(check, "%s answers; %d tools", where, len(session.Tools()))
		_ = session.Close()
	}
}

func (d *doctor) checkModel(ctx context.Context, a config.Agent, cfg aws.Config) {
	ctx, cancel := context.WithTimeout(ctx, 2*checkTimeout)
	defer cancel()
	modelID := a.ModelID
	if modelID == "" {
		modelID = bedrock.DefaultModelID(cfg.Region)
	}
	model, err := bedrock.New(cfg, bedrock.Options{ModelID: modelID, MaxOutputTokens: 1, BaseEndpoint: a.BedrockEndpoint, MaxAttempts: 2})
	if err == nil {
		_, err = model.Converse(ctx, &agent.Request{Messages: []agent.Message{{Role: agent.RoleUser, Content: []agent.Block{{Text: "Say OK."}}}}})
	}
	if err != nil {
		d.fail("model", err, "check MODEL_ID and AWS_REGION, that the model is enabled in the Bedrock console for this account, and bedrock:InvokeModel permission; or run with --skip-model")
		return
	}
	d.ok("model", "%s answers in %s", modelID, cfg.Region)
}
