// Package mcp gives the agent the tools of remote MCP servers (streamable
// HTTP, with OAuth2 client-credentials tokens) and of local stdio command
// servers, as agent.Tool values.
//
// A [TokenSource] lives as long as the process and is shared by every run;
// a [Session] lives for one run: it connects to each server, lists its tools
// once (all pages), and closes at the end of the run.
package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"gitlab.com/agentbot/agentbot/internal/agent"
)

// Server is one MCP server: remote (URL) or a local command (Command).
type Server struct {
	// Name identifies the server in errors and logs, and prefixes a tool
	// name that clashes with another tool's.
	Name string

	// URL is a streamable HTTP endpoint.
	URL string
	// Auth gets the server's tokens; nil sends none.
	Auth *TokenSource
	// HTTPClient is used for the MCP requests; nil means a default client.
	// It must not have a short Timeout: call deadlines come from Timeout.
	HTTPClient *http.Client

	// Command, Args and Env start a local server spoken to over stdin and
	// stdout. Env is its whole environment.
	Command string
	Args    []string
	Env     []string

	// Timeout bounds each connect, list and call (default 60 s).
	Timeout time.Duration
}

// Options configure [Connect].
type Options struct {
	// Builtin lists the agent's own tool names: an MCP tool with one of
	// these names is renamed <server>_<name>.
	Builtin []string
	Logger  *slog.Logger
	// Version is reported to servers as the client's version.
	Version string
	// MaxResultBytes bounds what one call returns to the model (default
	// 256 KiB); longer results are cut with a note.
	MaxResultBytes int
}

// DefaultTimeout bounds each MCP request when a Server sets none.
const DefaultTimeout = 60 * time.Second

const maxToolsPerServer = 1000

// Session is one run's connections to its MCP servers.
type Session struct {
	conns []*conn
	tools []*Tool
}

// Connect connects to every server and lists its tools. An unreachable
// server fails the whole call with an error that names it and the step
// (connect or list); what is already open is closed.
func Connect(ctx context.Context, servers []Server, o Options) (*Session, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 256 << 10
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	taken := map[string]bool{}
	for _, b := range o.Builtin {
		taken[b] = true
	}
	s := &Session{}
	for _, srv := range servers {
		if srv.Timeout <= 0 {
			srv.Timeout = DefaultTimeout
		}
		c := &conn{srv: srv, logger: o.Logger.With("mcp_server", srv.Name),
			client: sdk.NewClient(&sdk.Implementation{Name: "agentbot", Version: o.Version}, nil)}
		if _, err := c.reconnect(ctx, 0); err != nil {
			s.Close()
			return nil, err
		}
		s.conns = append(s.conns, c)
		tools, err := c.list(ctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		for _, t := range tools {
			s.tools = append(s.tools, newTool(c, t, taken, o.MaxResultBytes))
		}
		c.logger.InfoContext(ctx, "mcp server connected", "tools", len(tools))
	}
	return s, nil
}

// Tools returns every server's tools, in server order then the servers'
// own order.
func (s *Session) Tools() []agent.Tool {
	out := make([]agent.Tool, len(s.tools))
	for i, t := range s.tools {
		out[i] = t
	}
	return out
}

// Lookup finds a tool by the name the model sees or the server's own name.
func (s *Session) Lookup(name string) (*Tool, bool) {
	for _, t := range s.tools {
		if t.spec.Name == name {
			return t, true
		}
	}
	for _, t := range s.tools {
		if t.remote == name {
			return t, true
		}
	}
	return nil, false
}

// Close ends every server session (a stdio server's process exits).
func (s *Session) Close() error {
	var errs []error
	for _, c := range s.conns {
		errs = append(errs, c.close())
	}
	return errors.Join(errs...)
}

// conn is one server's session, re-established when the server expired it.
type conn struct {
	srv    Server
	client *sdk.Client
	logger *slog.Logger

	mu      sync.Mutex
	session *sdk.ClientSession
	gen     int // incremented by every (re)connect
}

func (c *conn) current() (*sdk.ClientSession, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session, c.gen
}

// reconnect replaces the session that had generation gen; if another call
// has replaced it already, that newer session is returned.
func (c *conn) reconnect(ctx context.Context, gen int) (*sdk.ClientSession, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen && c.session != nil {
		return c.session, nil
	}
	if c.session != nil {
		_ = c.session.Close()
		c.session = nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.srv.Timeout)
	defer cancel()
	cs, err := c.client.Connect(ctx, c.transport(), nil)
	if err != nil {
		return nil, c.errorf("connect", err)
	}
	c.session = cs
	c.gen++
	return cs, nil
}

func (c *conn) transport() sdk.Transport {
	if c.srv.URL == "" {
		cmd := exec.Command(c.srv.Command, c.srv.Args...)
		cmd.Env = c.srv.Env
		if cmd.Env == nil {
			cmd.Env = []string{} // never the parent's environment
		}
		cmd.Stderr = &stderrLog{logger: c.logger}
		return &sdk.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}
	}
	t := &sdk.StreamableClientTransport{
		Endpoint:   c.srv.URL,
		HTTPClient: c.srv.HTTPClient,
		MaxRetries: 2,
		// agentbot only calls tools: no server-initiated messages needed,
		// and no long-lived GET to keep alive.
		DisableStandaloneSSE: true,
	}
	if c.srv.Auth != nil {
		t.OAuthHandler = oauthHandler{ts: c.srv.Auth}
	}
	return t
}

// list reads every page of the server's tools.
func (c *conn) list(ctx context.Context) ([]*sdk.Tool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.srv.Timeout)
	defer cancel()
	var tools []*sdk.Tool
	for attempt := 0; ; attempt++ {
		cs, gen := c.current()
		tools = tools[:0]
		var err error
		for t, e := range cs.Tools(ctx, nil) {
			if e != nil {
				err = e
				break
			}
			if len(tools) == maxToolsPerServer {
				return nil, c.errorf("list tools", fmt.Errorf("more than %d tools", maxToolsPerServer))
			}
			tools = append(tools, t)
		}
		if err == nil {
			return tools, nil
		}
		if attempt > 0 || !errors.Is(err, sdk.ErrSessionMissing) {
			return nil, c.errorf("list tools", err)
		}
		if _, err := c.reconnect(ctx, gen); err != nil {
			return nil, err
		}
	}
}

// call calls a tool, re-establishing the session once if the server
// expired it.
func (c *conn) call(ctx context.Context, name string, args json.RawMessage) (*sdk.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.srv.Timeout)
	defer cancel()
	cs, gen := c.current()
	if cs == nil {
		var err error
		if cs, err = c.reconnect(ctx, gen); err != nil {
			return nil, err
		}
	}
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil && errors.Is(err, sdk.ErrSessionMissing) {
		c.logger.InfoContext(ctx, "mcp session expired by the server; reconnecting")
		if cs, err = c.reconnect(ctx, gen); err != nil {
			return nil, err
		}
		res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	}
	if err != nil {
		return nil, c.errorf("call "+name, err)
	}
	return res, nil
}

func (c *conn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return nil
	}
	err := c.session.Close()
	c.session = nil
	if err != nil && !errors.Is(err, sdk.ErrConnectionClosed) {
		return c.errorf("close", err)
	}
	return nil
}

// errorf names the server and the step, and adds the likely fix.
func (c *conn) errorf(step string, err error) error {
	where := c.srv.URL
	if where == "" {
		where = c.srv.Command
	}
	hint := ""
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		hint = fmt.Sprintf(" (no answer within %s; AGENTBOT_MCP_TIMEOUT sets the limit)", c.srv.Timeout)
	case c.srv.URL != "" && c.srv.Auth == nil && (strings.Contains(msg, "401") || strings.Contains(msg, "Unauthorized")):
		hint = " (the server wants a token: set SECRET_NAME, or MCP_CLIENT_ID and MCP_CLIENT_SECRET)"
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host"):
		hint = " (is the server running, and is the URL right?)"
	}
	return fmt.Errorf("mcp server %s (%s): %s: %w%s", c.srv.Name, where, step, err, hint)
}

// stderrLog logs a stdio server's stderr, one debug record per write.
type stderrLog struct{ logger *slog.Logger }

func (w *stderrLog) Write(p []byte) (int, error) {
	w.logger.Debug("mcp server stderr", "text", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Tool is one MCP tool as the agent sees it.
type Tool struct {
	conn     *conn
	remote   string // the server's name for it
	spec     agent.ToolSpec
	maxBytes int
}

var _ agent.Tool = (*Tool)(nil)

// Bedrock's rule for tool names.
var invalidToolChars = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

func toolName(s string) string {
	s = invalidToolChars.ReplaceAllString(s, "_")
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func newTool(c *conn, t *sdk.Tool, taken map[string]bool, maxBytes int) *Tool {
	name := toolName(t.Name)
	if taken[name] {
		name = toolName(c.srv.Name + "_" + t.Name)
	}
	for i := 2; taken[name]; i++ {
		name = toolName(fmt.Sprintf("%s_%s_%d", c.srv.Name, t.Name, i))
	}
	taken[name] = true
	desc := t.Description
	if desc == "" {
		desc = t.Title
	}
	return &Tool{
		conn:     c,
		remote:   t.Name,
		spec:     agent.ToolSpec{Name: name, Description: desc, InputSchema: inputSchema(t.InputSchema)},
		maxBytes: maxBytes,
	}
}

// inputSchema turns the server's schema into a plain JSON object with
// "type": "object", which is what the model API accepts.
func inputSchema(s any) map[string]any {
	out := map[string]any{}
	if s != nil {
		if b, err := json.Marshal(s); err == nil {
			_ = json.Unmarshal(b, &out)
		}
	}
	if out == nil {
		out = map[string]any{}
	}
	if _, ok := out["type"]; !ok {
		out["type"] = "object"
	}
	return out
}

// Spec describes the tool to the model.
func (t *Tool) Spec() agent.ToolSpec { return t.spec }

// Server names the server the tool belongs to.
func (t *Tool) Server() string { return t.conn.srv.Name }

// RemoteName is the server's own name for the tool.
func (t *Tool) RemoteName() string { return t.remote }

// Call calls the tool. A tool's own failure (IsError) and a failed request
// both come back as error results, never as a panic.
func (t *Tool) Call(ctx context.Context, input json.RawMessage) (string, bool) {
	args, err := toolArguments(input)
	if err != nil {
		return err.Error(), true
	}
	res, err := t.conn.call(ctx, t.remote, args)
	if err != nil {
		return err.Error(), true
	}
	return resultText(res, t.maxBytes), res.IsError
}

func toolArguments(input json.RawMessage) (json.RawMessage, error) {
	trimmed := strings.TrimSpace(string(input))
	if trimmed == "" || trimmed == "null" {
		return json.RawMessage(`{}`), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(trimmed), &obj); err != nil {
		return nil, fmt.Errorf("tool input must be a JSON object: %v", err)
	}
	return json.RawMessage(trimmed), nil
}
