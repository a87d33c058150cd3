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

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/awsx"
	"gitlab.com/agentbot/agentbot/internal/config"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock"
	"gitlab.com/agentbot/agentbot/internal/prompt"
	"gitlab.com/agentbot/agentbot/internal/redact"
	"gitlab.com/agentbot/agentbot/internal/tools"
)

const runUsage = `usage: agentbot run [--dir DIR] [--json] [--publish] [--reply-to issue:IID|mr:IID]
                   (--prompt "TEXT" | --from-env | analyze TICKER | TEXT...)

Runs the agent once in DIR (default: the current directory), as a GitLab CI
job does: progress on stderr, the answer on stdout. Files are written only
under AGENTBOT_WRITE_ALLOW (default output/**).

  --publish         commit the files the agent wrote to an agent/… branch,
                    push it and open (or update) its merge request, as serve
                    does; needs GITLAB_TOKEN (CI_JOB_TOKEN cannot push)
  --reply-to T      post the result on issue:IID or mr:IID
  --from-env        take the request from AGENTBOT_COMMAND and the thread
                    from AGENTBOT_REPLY_TO (set by serve's pipeline executor)

Inside GitLab CI the project, server and default branch come from
CI_PROJECT_ID, CI_SERVER_URL (unless GITLAB_URL is set) and CI_DEFAULT_BRANCH.

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
	Branch          string        `json:"branch,omitempty"`
	Commit          string        `json:"commit,omitempty"`
	MergeRequest    string        `json:"merge_request,omitempty"`
	Note            string        `json:"note,omitempty"`
}

type usageJSON struct {
	InputTokens      int `json:"input_tokens"`
	OutputTokens     int `json:"output_tokens"`
	CacheReadTokens  int `json:"cache_read_tokens"`
	CacheWriteTokens int `json:"cache_write_tokens"`
}

// runOptions is the parsed command line of `agentbot run`.
type runOptions struct {
	dir     string
	request string
	asJSON  bool
	publish bool
	replyTo config.ReplyTo
	ci      config.CI
}

// parseRun reads the flags; help is true when --help was asked (and
// printed).
func parseRun(e *env, args []string) (o runOptions, help bool, err error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", ".", "the workspace: a checkout of the repository")
	text := fs.String("prompt", "", "the request, free-form or analyze TICKER")
	asJSON := fs.Bool("json", false, "print a JSON result on stdout instead of the answer")
	publishFlag := fs.Bool("publish", false, "commit, push and open a merge request")
	replyTo := fs.String("reply-to", "", "post the result on issue:IID or mr:IID")
	fromEnv := fs.Bool("from-env", false, "take the request and thread from AGENTBOT_COMMAND and AGENTBOT_REPLY_TO")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, runUsage)
			return o, true, nil
		}
		return o, false, usageError(err.Error() + "\n" + runUsage)
	}
	o = runOptions{dir: *dir, asJSON: *asJSON, publish: *publishFlag}
	request := strings.Join(fs.Args(), " ")
	forms := 0
	for _, set := range []bool{*text != "", request != "", *fromEnv} {
		if set {
			forms++
		}
	}
	switch {
	case forms > 1:
		return o, false, usageError("give the request one way, not both: --prompt, --from-env or as arguments\n" + runUsage)
	case *text != "":
		request = *text
	case forms == 0:
		return o, false, usageError("no request: give --prompt \"…\", --from-env or analyze TICKER\n" + runUsage)
	}

	ci, err := config.LoadCI(e.getenv)
	if err != nil {
		return o, false, err
	}
	o.ci = ci
	if *fromEnv {
		if ci.Command == "" {
			return o, false, usageError("--from-env: " + config.VarCommand + " is empty; the pipeline executor sets it, or set it yourself (e.g. \"analyze AAPL\")")
		}
		request = ci.Command
		o.replyTo = ci.ReplyTo
	}
	if *replyTo != "" {
		if o.replyTo, err = config.ParseReplyTo(*replyTo); err != nil {
			return o, false, usageError("--reply-to " + err.Error())
		}
	}
	o.request = request
	return o, false, nil
}

func runRun(ctx context.Context, e *env, args []string) error {
	o, help, err := parseRun(e, args)
	if err != nil || help {
		return err
	}
	userMessage, err := prompt.UserMessage(o.request)
	if err != nil {
		return usageError(err.Error())
	}
	acfg, aerr := config.LoadAgent(e.getenv)
	awsSet, werr := config.LoadAWS(e.getenv)
	if err := joinProblems(aerr, werr); err != nil {
		return err
	}
	redactor := redact.New(secretValues(e.getenv)...)

	// GitLab first: a token that cannot publish should fail the job before
	// the model is paid for.
	var pub *publisher
	if o.publish || !o.replyTo.IsZero() {
		pub, err = newPublisher(ctx, e, o, acfg, redactor)
		if err != nil {
			return err
		}
	}

	out, runErr := runAgent(ctx, e, o, acfg, awsSet, userMessage, redactor)
	var res publishResult
	if pub != nil && out.res != nil {
		res, runErr = pub.finish(ctx, out, runErr)
	}
	if out.res == nil {
		if pub != nil {
			pub.failed(ctx, runErr)
		}
		return runErr
	}
	if o.asJSON {
		if err := writeRunJSON(e.stdout, out, res, runErr, redactor); err != nil {
			return err
		}
	} else if out.res.Answer != "" {
		fmt.Fprintln(e.stdout, out.res.Answer)
	}
	if runErr != nil {
		if bedrock.Permanent(runErr) {
			// Credentials, permissions, model id or region: configuration.
			return config.Problems{redactor.String(runErr.Error())}
		}
		if out.res.Outcome != agent.OutcomeDone {
			return fmt.Errorf("agent stopped (%s): %s", out.res.Outcome, redactor.String(runErr.Error()))
		}
		return errors.New(redactor.String(runErr.Error()))
	}
	return nil
}

// agentRun is what one agent run produced.
type agentRun struct {
	res     *agent.Result
	modelID string
	written []string
	// contents holds the written files, read back for publishing.
	contents map[string][]byte
}

// runAgent runs the model and tools in o.dir. Its result is nil when the
// run could not start.
func runAgent(ctx context.Context, e *env, o runOptions, acfg config.Agent, awsSet config.AWS, userMessage string,
	redactor *redact.Redactor) (agentRun, error) {
	workspace, err := tools.OpenDir(o.dir)
	if err != nil {
		return agentRun{}, usageError(fmt.Sprintf("--dir %s: %v", o.dir, err))
	}
	defer workspace.Close()

	model, modelID, err := newModel(ctx, acfg, awsSet)
	if err != nil {
		return agentRun{}, err
	}

	consent := terminalConsent(acfg.BypassToolConsent, e.stderr)
	if o.publish {
		// Publishing re-checks the allowlist at commit time: a write the
		// terminal allowed would only fail there.
		consent = nil
	}
	files := tools.NewFiles(workspace, tools.Policy{
		WriteAllow:    acfg.WriteAllow,
		MaxFileBytes:  acfg.MaxFileBytes,
		MaxTotalBytes: acfg.MaxTotalBytes,
		AllowBinary:   acfg.AllowBinary,
		Consent:       consent,
	})
	agentToolList, closeTools, err := agentTools(ctx, e, files)
	if err != nil {
		return agentRun{}, err
	}
	defer closeTools()

	progress := &progressPrinter{w: e.stderr}
	fmt.Fprintf(e.stderr, "agentbot: %s in %s, %d tools, writing under %s\n",
		modelID, awsSet.Region, len(agentToolList), strings.Join(acfg.WriteAllow, ", "))

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
		return agentRun{}, runErr
	}

	out := agentRun{res: res, modelID: modelID, written: files.Written()}
	fmt.Fprintf(e.stderr, "agentbot: %s after %s and %s; %s tokens, ~$%.4f; files: %s\n",
		res.Message, plural(res.Turns, "turn"), plural(res.ToolCalls, "tool call"), tokens(res.Usage), res.Cost, listOrNone(out.written))
	if o.publish && runErr == nil {
		out.contents = map[string][]byte{}
		for _, name := range out.written {
			b, err := workspace.ReadFile(name)
			if err != nil {
				return out, fmt.Errorf("read back %s for publishing: %w", name, err)
			}
			out.contents[name] = b
		}
	}
	return out, runErr
}

func writeRunJSON(w io.Writer, out agentRun, p publishResult, runErr error, redactor *redact.Redactor) error {
	res := out.res
	j := runJSON{
		Answer: res.Answer, StopReason: res.Outcome, Message: res.Message, Files: out.written, Model: out.modelID,
		Usage:   usageJSON{res.Usage.InputTokens, res.Usage.OutputTokens, res.Usage.CacheReadTokens, res.Usage.CacheWriteTokens},
		CostUSD: res.Cost, Turns: res.Turns, ToolCalls: res.ToolCalls, DurationSeconds: res.Duration.Seconds(),
		Branch: p.Branch, Commit: p.Commit, MergeRequest: p.MergeRequestURL, Note: p.NoteURL,
	}
	if j.Files == nil {
		j.Files = []string{}
	}
	if runErr != nil {
		j.Error = redactor.String(runErr.Error())
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// agentTools is the tool list of `agentbot run`: the file tools, then the
// tools of the MCP servers when FINANCE_MCP_URL or AGENTBOT_MCP_CONFIG is
// set (a name that clashes with a file tool gets its server's prefix). The
// returned func closes the MCP sessions.
func agentTools(ctx context.Context, e *env, files *tools.Files) ([]agent.Tool, func(), error) {
	list := files.Tools()
	builtin := make([]string, len(list))
	for i, t := range list {
		builtin[i] = t.Spec().Name
	}
	remote, closeRemote, err := mcpTools(ctx, e, builtin)
	if err != nil {
		return nil, func() {}, err
	}
	return append(list, remote...), closeRemote, nil
}

// awsConfig builds the AWS configuration with awsx.Load from settings read
// through getenv, so that tests stay off the host's ~/.aws (shared files,
// profile and static keys come from config.AWS; the SDK reads a few
// variables such as AWS_EC2_METADATA_DISABLED from the process itself, and
// in production getenv is os.Getenv so the two agree), and so that in a
// GitLab CI job the OIDC token is exchanged for AWS_ROLE_ARN natively, with
// a refused trust policy explained. It fetches the credentials once: a
// missing or unusable credential is a configuration problem, reported before
// the model is called.
func awsConfig(ctx context.Context, a config.AWS) (aws.Config, error) {
	if !regionRE.MatchString(a.Region) {
		return aws.Config{}, config.Problems{fmt.Sprintf("AWS_REGION (or AWS_DEFAULT_REGION)=%q: want an AWS region such as us-east-1 or eu-central-1", a.Region)}
	}
	cfg, err := awsx.Load(ctx, a)
	if err != nil {
		return aws.Config{}, config.Problems{fmt.Sprintf("AWS configuration (AWS_PROFILE=%q, AWS_CONFIG_FILE): %v", a.Profile, err)}
	}
	if cfg.Credentials == nil {
		return aws.Config{}, missingCredentials(errors.New("no credential source"))
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		var trust *awsx.TrustPolicyError
		if errors.As(err, &trust) {
			return aws.Config{}, config.Problems{trust.Error()}
		}
		return aws.Config{}, missingCredentials(err)
	}
	return cfg, nil
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

func missingCredentials(err error) error {
	return config.Problems{"no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, " +
		"or AWS_ROLE_ARN with GITLAB_OIDC_TOKEN in a GitLab CI job (" + err.Error() + ")"}
}

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
