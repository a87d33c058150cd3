package cli

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/config"
	"gitlab.com/agentbot/agentbot/internal/metrics"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock"
	"gitlab.com/agentbot/agentbot/internal/prompt"
	"gitlab.com/agentbot/agentbot/internal/redact"
	"gitlab.com/agentbot/agentbot/internal/repoconfig"
	"gitlab.com/agentbot/agentbot/internal/run"
	"gitlab.com/agentbot/agentbot/internal/tools"
)

// serveAgent is the worker's run.Agent: Bedrock, the file tools over the
// run's workspace, and the MCP servers' tools, with one model client and one
// MCP token source for the whole process.
type serveAgent struct {
	cfg      config.Agent
	model    agent.Model
	modelID  string
	mcp      *mcpLink
	redactor *redact.Redactor
	log      *slog.Logger
	// metrics, when set, counts tokens, cost and tool calls.
	metrics *metrics.Metrics
}

// newServeAgent builds the model client and the MCP link from the settings.
func newServeAgent(ctx context.Context, e *env, log *slog.Logger, redactor *redact.Redactor) (*serveAgent, error) {
	acfg, aerr := config.LoadAgent(e.getenv)
	awsSet, werr := config.LoadAWS(e.getenv)
	if err := joinProblems(aerr, werr); err != nil {
		return nil, err
	}
	model, modelID, err := newModel(ctx, acfg, awsSet)
	if err != nil {
		return nil, err
	}
	link, err := newMCPLink(e, "", log)
	if err != nil {
		return nil, err
	}
	return &serveAgent{cfg: acfg, model: model, modelID: modelID, mcp: link, redactor: redactor, log: log}, nil
}

// policy is the file tools' write policy; the workspace re-checks it at
// commit time. Nobody is asked for consent in serve.
func (a *serveAgent) policy() tools.Policy {
	return tools.Policy{
		WriteAllow:    a.cfg.WriteAllow,
		MaxFileBytes:  a.cfg.MaxFileBytes,
		MaxTotalBytes: a.cfg.MaxTotalBytes,
		AllowBinary:   a.cfg.AllowBinary,
	}
}

// operator is what bounds a project's .agentbot.yml.
func (a *serveAgent) operator(minAccess int) repoconfig.Operator {
	return repoconfig.Operator{
		WriteAllow:   a.cfg.WriteAllow,
		DefaultModel: a.modelID,
		MaxTurns:     a.cfg.MaxTurns,
		MaxTokens:    a.cfg.MaxTokens,
		Timeout:      a.cfg.RunTimeout,
		MinAccess:    minAccess,
	}
}

func (a *serveAgent) Run(ctx context.Context, fsys tools.FS, task run.Task) (*agent.Result, error) {
	policy := a.policy()
	if len(task.Limits.WriteAllow) > 0 { // the project's, within the operator's
		policy.WriteAllow = task.Limits.WriteAllow
	}
	files := tools.NewFiles(fsys, policy)
	list := files.Tools()
	if task.ReadOnly {
		list = readTools(list)
	}
	builtin := make([]string, len(list))
	for i, t := range list {
		builtin[i] = t.Spec().Name
	}
	remote, closeRemote, err := a.mcp.tools(ctx, builtin, a.log)
	if err != nil {
		return nil, fmt.Errorf("connect to the MCP servers: %w", err)
	}
	defer closeRemote()
	list = append(list, remote...)
	list = append(list, task.Tools...)

	user := task.Prompt
	if user == "" {
		if user, err = userMessage(task.Command); err != nil {
			return nil, run.Permanent(err)
		}
	}
	if task.Context != "" {
		user += "\n\n" + task.Context
	}
	res, err := agent.Run(ctx, a.model, list, agent.Config{
		MaxTurns:           cmp.Or(task.Limits.MaxTurns, a.cfg.MaxTurns),
		MaxTokens:          cmp.Or(task.Limits.MaxTokens, a.cfg.MaxTokens),
		Deadline:           cmp.Or(task.Limits.Timeout, a.cfg.RunTimeout),
		ToolTimeout:        a.cfg.ToolTimeout,
		MaxToolResultBytes: a.cfg.MaxToolResult,
		Parallelism:        a.cfg.Parallelism,
		ModelID:            a.modelID,
		Prices:             prices(a.modelID, a.cfg.Price),
		Redact:             a.redactor.String,
		Logger:             a.log,
		OnEvent:            a.observe(task.OnEvent),
	}, systemPrompt(a.cfg.SystemPrompt, task), user)
	if res != nil && a.metrics != nil {
		a.metrics.Tokens(res.Usage, res.Cost)
	}
	if err != nil && bedrock.Permanent(err) {
		err = run.Permanent(err)
	}
	return res, err
}

// systemPrompt is the system prompt for a task: agentbot's own, what a
// read-only run may do, then the project's instructions (AGENTS.md).
func systemPrompt(override string, task run.Task) string {
	s := prompt.System(override, time.Now())
	if task.ReadOnly {
		s += "\n\nIn this run you can read the project's files but not write any: give your whole answer in your reply."
	}
	if task.Instructions != "" {
		s += "\n\n" + task.Instructions
	}
	return s
}

// readTools keeps the file tools that only read.
func readTools(list []agent.Tool) []agent.Tool {
	var out []agent.Tool
	for _, t := range list {
		switch t.Spec().Name {
		case "file_read", "list_files":
			out = append(out, t)
		}
	}
	return out
}

// observe counts tool calls, then passes the event on.
func (a *serveAgent) observe(next func(agent.Event)) func(agent.Event) {
	return func(e agent.Event) {
		if e.Kind == agent.EventToolFinish && a.metrics != nil {
			a.metrics.ToolCall(e.Tool, e.IsError)
		}
		if next != nil {
			next(e)
		}
	}
}

// userMessage turns a parsed command into the user's message.
func userMessage(c command.Command) (string, error) {
	switch c.Kind {
	case command.Analyze:
		return prompt.Analyze(c.Ticker)
	case command.Freeform:
		return prompt.UserMessage(c.Request)
	}
	return prompt.UserMessage(strings.TrimSpace(c.Verb + " " + strings.Join(c.Args, " ")))
}

// newModel is the Bedrock model the settings name (the region's default
// Claude when MODEL_ID is empty), and its id. `serve` and `run` share it.
func newModel(ctx context.Context, acfg config.Agent, awsSet config.AWS) (*bedrock.Model, string, error) {
	awsCfg, err := awsConfig(ctx, awsSet)
	if err != nil {
		return nil, "", err
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
		return nil, "", config.Problems{err.Error()}
	}
	return model, modelID, nil
}
