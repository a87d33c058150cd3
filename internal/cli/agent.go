package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/config"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock"
	"gitlab.com/agentbot/agentbot/internal/prompt"
	"gitlab.com/agentbot/agentbot/internal/redact"
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
	// onResult, when set, sees every finished loop (metrics).
	onResult func(*agent.Result)
}

// newServeAgent builds the model client and the MCP link from the settings.
func newServeAgent(ctx context.Context, e *env, log *slog.Logger, redactor *redact.Redactor) (*serveAgent, error) {
	acfg, aerr := config.LoadAgent(e.getenv)
	awsSet, werr := config.LoadAWS(e.getenv)
	if err := joinProblems(aerr, werr); err != nil {
		return nil, err
	}
	awsCfg, err := awsConfig(ctx, awsSet)
	if err != nil {
		return nil, err
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
		return nil, config.Problems{err.Error()}
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

func (a *serveAgent) Run(ctx context.Context, fsys tools.FS, task run.Task) (*agent.Result, error) {
	files := tools.NewFiles(fsys, a.policy())
	list := files.Tools()
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

	user, err := userMessage(task.Command)
	if err != nil {
		return nil, run.Permanent(err)
	}
	if task.Context != "" {
		user += "\n\n" + task.Context
	}
	res, err := agent.Run(ctx, a.model, list, agent.Config{
		MaxTurns:           a.cfg.MaxTurns,
		MaxTokens:          a.cfg.MaxTokens,
		Deadline:           a.cfg.RunTimeout,
		ToolTimeout:        a.cfg.ToolTimeout,
		MaxToolResultBytes: a.cfg.MaxToolResult,
		Parallelism:        a.cfg.Parallelism,
		ModelID:            a.modelID,
		Prices:             prices(a.modelID, a.cfg.Price),
		Redact:             a.redactor.String,
		Logger:             a.log,
		OnEvent:            task.OnEvent,
	}, prompt.System(a.cfg.SystemPrompt, time.Now()), user)
	if res != nil && a.onResult != nil {
		a.onResult(res)
	}
	if err != nil && bedrock.Permanent(err) {
		err = run.Permanent(err)
	}
	return res, err
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
