package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/config"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock"
	"gitlab.com/agentbot/agentbot/internal/prompt"
	"gitlab.com/agentbot/agentbot/internal/redact"
	"gitlab.com/agentbot/agentbot/internal/tools"
)

const runUsage = `usage: agentbot run [--dir DIR] [--json] (--prompt "TEXT" | analyze TICKER | TEXT...)

Runs the agent once in DIR (default: the current directory), as a GitLab CI
job does: progress on stderr, the answer on stdout. Files are written only
under AGENTBOT_WRITE_ALLOW (default output/**).

Exit status: 0 done, 1 the agent failed or hit a limit, 2 bad usage or configuration.
`

// runJSON is the --json result.
type runJSON struct {
	Answer          string        `json:"answer"`
	StopReason      agent.Outcome `json:"stop_reason"`
	Message         string        `json:"message"`
	Error           string        `json:"error,omitempty"`
	Files           []string      `json:"files"`
	Model           string        `json:"model"`
	Usage           usageJSON     `json:"usage"`
	CostUSD         float64       `json:"cost_usd"`
	Turns           int           `json:"turns"`
	ToolCalls       int           `json:"tool_calls"`
	DurationSeconds float64       `json:"duration_seconds"`
}

type usageJSON struct {
	InputTokens      int `json:"input_tokens"`
	OutputTokens     int `json:"output_tokens"`
	CacheReadTokens  int `json:"cache_read_tokens"`
	CacheWriteTokens int `json:"cache_write_tokens"`
}

func runRun(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", ".", "the workspace: a checkout of the repository")
	text := fs.String("prompt", "", "the request, free-form or analyze TICKER")
	asJSON := fs.Bool("json", false, "print a JSON result on stdout instead of the answer")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, runUsage)
			return nil
		}
		return usageError(err.Error() + "\n" + runUsage)
	}
	request := strings.Join(fs.Args(), " ")
	switch {
	case *text != "" && request != "":
		return usageError("give the request either with --prompt or as arguments, not both\n" + runUsage)
	case *text != "":
		request = *text
	case request == "":
		return usageError("no request: give --prompt \"…\" or analyze TICKER\n" + runUsage)
	}
	userMessage, err := prompt.UserMessage(request)
	if err != nil {
		return usageError(err.Error())
	}

	acfg, aerr := config.LoadAgent(e.getenv)
	awsSet, werr := config.LoadAWS(e.getenv)
	if err := joinProblems(aerr, werr); err != nil {
		return err
	}
	workspace, err := tools.OpenDir(*dir)
	if err != nil {
		return usageError(fmt.Sprintf("--dir %s: %v", *dir, err))
	}
	defer workspace.Close()

	awsCfg, err := awsConfig(ctx, awsSet, acfg.IMDSDisabled)
	if err != nil {
		return err
	}
	modelID := acfg.ModelID
	if modelID == "" {
		modelID = bedrock.DefaultModelID(awsCfg.Region)
	}
	model, err := bedrock.New(awsCfg, bedrock.Options{
		ModelID:         modelID,
		MaxOutputTokens: acfg.MaxOutputTokens,
		PromptCache:     acfg.PromptCache,
		BaseEndpoint:    acfg.BedrockEndpoint,
	})
	if err != nil {
		return config.Problems{err.Error()}
	}

	files := tools.NewFiles(workspace, tools.Policy{
		WriteAllow:    acfg.WriteAllow,
		MaxFileBytes:  acfg.MaxFileBytes,
		MaxTotalBytes: acfg.MaxTotalBytes,
		AllowBinary:   acfg.AllowBinary,
		Consent:       terminalConsent(acfg.BypassToolConsent, e.stderr),
	})
	agentToolList, closeTools, err := agentTools(ctx, e, files)
	if err != nil {
		return err
	}
	defer closeTools()

	redactor := redact.New(secretValues(e.getenv)...)
	progress := &progressPrinter{w: e.stderr}
	fmt.Fprintf(e.stderr, "agentbot: %s in %s, %d tools, writing under %s\n",
		modelID, awsCfg.Region, len(agentToolList), strings.Join(acfg.WriteAllow, ", "))

	res, runErr := agent.Run(ctx, model, agentToolList, agent.Config{
		MaxTurns:           acfg.MaxTurns,
		MaxTokens:          acfg.MaxTokens,
		Deadline:           acfg.RunTimeout,
		ToolTimeout:        acfg.ToolTimeout,
		MaxToolResultBytes: acfg.MaxToolResult,
		Parallelism:        acfg.Parallelism,
		ModelID:            modelID,
		Prices:             prices(modelID, acfg.Price),
		Redact:             redactor.String,
		Logger:             e.logger(),
		OnEvent:            progress.event,
	}, prompt.System(acfg.SystemPrompt, time.Now()), userMessage)
	if res == nil {
		return runErr
	}

	written := files.Written()
	fmt.Fprintf(e.stderr, "agentbot: %s after %s and %s; %s tokens, ~$%.4f; files: %s\n",
		res.Message, plural(res.Turns, "turn"), plural(res.ToolCalls, "tool call"), tokens(res.Usage), res.Cost, listOrNone(written))
	if *asJSON {
		out := runJSON{
			Answer: res.Answer, StopReason: res.Outcome, Message: res.Message, Files: written, Model: modelID,
			Usage:   usageJSON{res.Usage.InputTokens, res.Usage.OutputTokens, res.Usage.CacheReadTokens, res.Usage.CacheWriteTokens},
			CostUSD: res.Cost, Turns: res.Turns, ToolCalls: res.ToolCalls, DurationSeconds: res.Duration.Seconds(),
		}
		if out.Files == nil {
			out.Files = []string{}
		}
		if runErr != nil {
			out.Error = redactor.String(runErr.Error())
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	} else if res.Answer != "" {
		fmt.Fprintln(e.stdout, res.Answer)
	}

	if runErr != nil {
		if bedrock.Permanent(runErr) {
			// Credentials, permissions, model id or region: configuration.
			return config.Problems{redactor.String(runErr.Error())}
		}
		return fmt.Errorf("agent stopped (%s): %s", res.Outcome, redactor.String(runErr.Error()))
	}
	return nil
}

// agentTools is the tool list of `agentbot run`: the file tools, and the
// remote tools appended here as they are wired in. The returned func
// releases what the tools hold.
func agentTools(_ context.Context, _ *env, files *tools.Files) ([]agent.Tool, func(), error) {
	list := files.Tools()
	return list, func() {}, nil
}

// awsConfig builds the AWS configuration from settings read through getenv,
// so that tests stay off the host's ~/.aws: shared files, profile, static
// keys and IMDS come from config.AWS rather than from the SDK reading the
// process environment. (The SDK still reads a few variables by itself, such
// as AWS_CONTAINER_CREDENTIALS_*; in production getenv is os.Getenv so the
// two agree.) A missing or unusable credential is a configuration problem.
func awsConfig(ctx context.Context, a config.AWS, imdsDisabled bool) (aws.Config, error) {
	if !regionRE.MatchString(a.Region) {
		return aws.Config{}, config.Problems{fmt.Sprintf("AWS_REGION (or AWS_DEFAULT_REGION)=%q: want an AWS region such as us-east-1 or eu-central-1", a.Region)}
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(a.Region),
		awsconfig.WithSharedConfigFiles(append([]string{}, a.ConfigFiles...)),
		awsconfig.WithSharedCredentialsFiles(append([]string{}, a.CredentialsFiles...)),
	}
	if a.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(a.Profile))
	}
	if a.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(a.AccessKeyID, a.SecretAccessKey, a.SessionToken)))
	}
	if imdsDisabled {
		opts = append(opts, awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, config.Problems{fmt.Sprintf("AWS configuration (AWS_PROFILE=%q, AWS_CONFIG_FILE): %v", a.Profile, err)}
	}
	if a.WebIdentity() {
		client := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if a.STSEndpoint != "" {
				o.BaseEndpoint = aws.String(a.STSEndpoint)
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(client, a.RoleARN,
			staticToken(a.WebIdentityToken), func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = a.SessionName }))
	}
	if cfg.Credentials == nil {
		return aws.Config{}, missingCredentials(errors.New("no credential source"))
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		return aws.Config{}, missingCredentials(err)
	}
	return cfg, nil
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

func missingCredentials(err error) error {
	return config.Problems{"no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, " +
		"or AWS_ROLE_ARN with GITLAB_OIDC_TOKEN in a GitLab CI job (" + err.Error() + ")"}
}

// staticToken hands the GitLab OIDC token (held in memory) to the SDK.
type staticToken string

func (t staticToken) GetIdentityToken() ([]byte, error) { return []byte(t), nil }

func joinProblems(errs ...error) error {
	var all config.Problems
	for _, err := range errs {
		var p config.Problems
		switch {
		case err == nil:
		case errors.As(err, &p):
			all = append(all, p...)
		default:
			return err
		}
	}
	if len(all) == 0 {
		return nil
	}
	return all
}

// secretValues are the secrets in the environment that must never reach
// the model, the output or the logs.
func secretValues(getenv config.Getenv) []string {
	var out []string
	for _, name := range []string{
		"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GITLAB_OIDC_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN",
		"AGENTBOT_WEBHOOK_SECRET", "GITLAB_WEBHOOK_SECRET", "MCP_CLIENT_SECRET", "MCP_TOKEN",
	} {
		if v := getenv(name); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// prices is the default table with the configured override for modelID.
func prices(modelID string, o config.Price) agent.Prices {
	p := agent.DefaultPrices()
	if !o.Set() {
		return p
	}
	base, _ := p.Lookup(modelID)
	for _, f := range []struct {
		v   float64
		dst *float64
	}{{o.Input, &base.Input}, {o.Output, &base.Output}, {o.CacheRead, &base.CacheRead}, {o.CacheWrite, &base.CacheWrite}} {
		if f.v >= 0 {
			*f.dst = f.v
		}
	}
	p[modelID] = base
	return p
}

// terminalConsent asks on the terminal before a write outside the
// allowlist, or allows it without asking when BYPASS_TOOL_CONSENT is set.
// Without a terminal on stdin (CI, serve) there is no consent: such writes
// are refused.
func terminalConsent(bypass bool, stderr io.Writer) func(string) bool {
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	if bypass {
		return func(string) bool { return true }
	}
	in := bufio.NewReader(os.Stdin)
	return func(path string) bool {
		fmt.Fprintf(stderr, "agentbot: the agent wants to write %s, outside AGENTBOT_WRITE_ALLOW. Allow? [y/N] ", path)
		line, _ := in.ReadString('\n')
		answer := strings.ToLower(strings.TrimSpace(line))
		return answer == "y" || answer == "yes"
	}
}

// progressPrinter writes one line per step to stderr.
type progressPrinter struct{ w io.Writer }

func (p *progressPrinter) event(ev agent.Event) {
	switch ev.Kind {
	case agent.EventText:
		fmt.Fprintf(p.w, "[turn %d] %s\n", ev.Turn, ev.Text)
	case agent.EventToolStart:
		fmt.Fprintf(p.w, "[turn %d] → %s %s\n", ev.Turn, ev.Tool, ev.Text)
	case agent.EventToolFinish:
		mark := "✓"
		if ev.IsError {
			mark = "✗"
		}
		fmt.Fprintf(p.w, "[turn %d] %s %s (%s) %s\n", ev.Turn, mark, ev.Tool, ev.Duration.Round(time.Millisecond), ev.Text)
	}
}

func tokens(u agent.Usage) string {
	total := u.InputTokens + u.OutputTokens + u.CacheReadTokens + u.CacheWriteTokens
	return fmt.Sprintf("%d (%d in, %d out, %d cache read, %d cache write)", total, u.InputTokens, u.OutputTokens, u.CacheReadTokens, u.CacheWriteTokens)
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
