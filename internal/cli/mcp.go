package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"

	"gitlab.com/agentbot/agentbot/internal/agent"
	"gitlab.com/agentbot/agentbot/internal/awsx"
	"gitlab.com/agentbot/agentbot/internal/config"
	"gitlab.com/agentbot/agentbot/internal/mcp"
)

const mcpUsage = `usage: agentbot mcp tools [--url URL]
       agentbot mcp call [--url URL] TOOL [JSON]

tools lists the MCP servers' tools: name, required parameters, description.
call calls one tool with JSON arguments (default {}) and prints its result;
the exit status is 1 when the tool reports an error.

Both use the agent's own settings, OAuth token and client. --url talks to
that one server instead, with the finance server's auth settings
(FINANCE_MCP_URL's); MCP_AUTH=none for a server that needs no token.
`

func runMCP(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageError("mcp: want a sub-command, tools or call\n" + mcpUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("mcp "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("url", "", "the MCP server's URL (default: the configured servers)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, mcpUsage)
			return nil
		}
		return usageError(err.Error() + "\n" + mcpUsage)
	}
	rest := fs.Args()
	switch sub {
	case "tools":
		if len(rest) != 0 {
			return usageError("mcp tools takes no arguments\n" + mcpUsage)
		}
	case "call":
		if len(rest) < 1 || len(rest) > 2 {
			return usageError("mcp call wants TOOL and optionally its JSON arguments\n" + mcpUsage)
		}
		if len(rest) == 2 && !json.Valid([]byte(rest[1])) {
			return usageError(fmt.Sprintf("mcp call %s: the arguments are not valid JSON: %s", rest[0], rest[1]))
		}
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, mcpUsage)
		return nil
	default:
		return usageError(fmt.Sprintf("mcp: unknown sub-command %q\n%s", sub, mcpUsage))
	}

	logger := e.logger()
	link, err := newMCPLink(e, *url, logger)
	if err != nil {
		return err
	}
	if len(link.servers) == 0 {
		return config.Problems{"no MCP server is configured: set FINANCE_MCP_URL (or AGENTBOT_MCP_CONFIG), or give --url"}
	}
	session, err := link.connect(ctx, nil, logger)
	if err != nil {
		return err
	}
	defer session.Close()

	if sub == "tools" {
		return printTools(e.stdout, session, len(link.servers) > 1)
	}
	tool, ok := session.Lookup(rest[0])
	if !ok {
		var names []string
		for _, t := range session.Tools() {
			names = append(names, t.Spec().Name)
		}
		return usageError(fmt.Sprintf("mcp call: no tool %q; the servers have: %s", rest[0], strings.Join(names, ", ")))
	}
	input := "{}"
	if len(rest) == 2 {
		input = rest[1]
	}
	out, isErr := tool.Call(ctx, json.RawMessage(input))
	fmt.Fprintln(e.stdout, out)
	if isErr {
		return fmt.Errorf("mcp call %s: the tool reported an error", rest[0])
	}
	return nil
}

func printTools(w io.Writer, s *mcp.Session, withServer bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if withServer {
		fmt.Fprintln(tw, "SERVER\tTOOL\tREQUIRED\tDESCRIPTION")
	} else {
		fmt.Fprintln(tw, "TOOL\tREQUIRED\tDESCRIPTION")
	}
	for _, t := range s.Tools() {
		spec := t.Spec()
		required := strings.Join(requiredParams(spec.InputSchema), ",")
		if required == "" {
			required = "-"
		}
		desc, _, _ := strings.Cut(strings.TrimSpace(spec.Description), "\n")
		if len(desc) > 100 {
			desc = desc[:97] + "..."
		}
		if withServer {
			server := ""
			if mt, ok := t.(*mcp.Tool); ok {
				server = mt.Server()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", server, spec.Name, required, desc)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", spec.Name, required, desc)
		}
	}
	return tw.Flush()
}

func requiredParams(schema map[string]any) []string {
	var out []string
	if req, ok := schema["required"].([]any); ok {
		for _, r := range req {
			if s, ok := r.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// mcpTools connects to the configured MCP servers for one `agentbot run`
// and returns their tools, renamed <server>_<name> where a name clashes with
// one of builtin. close ends the sessions. With no server configured it
// returns no tools. (serve builds one mcpLink at start instead, so that all
// its runs share the token sources, and calls link.connect per run.)
func mcpTools(ctx context.Context, e *env, builtin []string) ([]agent.Tool, func(), error) {
	logger := e.logger()
	link, err := newMCPLink(e, "", logger)
	if err != nil {
		return nil, func() {}, err
	}
	return link.tools(ctx, builtin, logger)
}

// mcpLink is the process's MCP wiring: the servers, each with its token
// source, and the Secrets Manager cache their credentials come from. Build
// it once per process; every run connects through it, so all runs share one
// token per auth server and client.
type mcpLink struct {
	cfg     config.MCP
	servers []mcp.Server
	secrets *lazySecrets
	tokens  []linkToken // for doctor, in server order
}

// linkToken is one token source and the first server that uses it.
type linkToken struct {
	ts     *mcp.TokenSource
	server config.MCPServer
}

// newMCPLink reads the MCP settings (url, when set, replaces
// FINANCE_MCP_URL and the servers file) and builds the token sources. It
// makes no request.
func newMCPLink(e *env, url string, logger *slog.Logger) (*mcpLink, error) {
	cfg, err := config.LoadMCP(e.getenv, url)
	if err != nil {
		return nil, err
	}
	l := &mcpLink{cfg: cfg, secrets: &lazySecrets{getenv: e.getenv}}
	shared := map[string]*mcp.TokenSource{}
	for _, s := range cfg.Servers {
		srv := mcp.Server{Name: s.Name, URL: s.URL, Command: s.Command, Args: s.Args, Env: s.Env, Timeout: s.Timeout}
		if s.Remote() && !s.Auth.None {
			a := s.Auth
			// Servers with the same auth server and client share a token; with
			// discovery the token endpoint depends on the server.
			key := strings.Join([]string{a.TokenURL, a.SecretName, a.ClientID, strings.Join(a.Scopes, " "), a.Style}, "\x00")
			if a.TokenURL == "" {
				key += "\x00" + s.URL
			}
			ts, ok := shared[key]
			if !ok {
				ts = mcp.NewTokenSource(mcp.TokenSourceOptions{
					TokenURL:    a.TokenURL,
					Resource:    s.URL,
					Scopes:      a.Scopes,
					PostSecret:  a.Style == config.TokenAuthPost,
					Credentials: l.credentials(a),
					Timeout:     s.Timeout,
					Logger:      logger.With("mcp_server", s.Name),
				})
				shared[key] = ts
				l.tokens = append(l.tokens, linkToken{ts, s})
			}
			srv.Auth = ts
		}
		l.servers = append(l.servers, srv)
	}
	return l, nil
}

// connect opens one run's sessions.
func (l *mcpLink) connect(ctx context.Context, builtin []string, logger *slog.Logger) (*mcp.Session, error) {
	return mcp.Connect(ctx, l.servers, mcp.Options{Builtin: builtin, Logger: logger, Version: Version})
}

// tools connects one run's sessions and returns their tools and the func
// that closes them; no servers, no tools.
func (l *mcpLink) tools(ctx context.Context, builtin []string, logger *slog.Logger) ([]agent.Tool, func(), error) {
	if len(l.servers) == 0 {
		return nil, func() {}, nil
	}
	session, err := l.connect(ctx, builtin, logger)
	if err != nil {
		return nil, func() {}, err
	}
	return session.Tools(), func() { _ = session.Close() }, nil
}

// credentials returns the client id and secret: MCP_CLIENT_ID and
// MCP_CLIENT_SECRET (or the file's) when set, else the Secrets Manager
// secret's.
func (l *mcpLink) credentials(a config.MCPAuth) func(context.Context) (mcp.Credentials, error) {
	return func(ctx context.Context) (mcp.Credentials, error) {
		c := mcp.Credentials{ClientID: a.ClientID, ClientSecret: a.ClientSecret}
		if a.SecretName == "" || (c.ClientID != "" && c.ClientSecret != "") {
			return c, nil
		}
		secrets, err := l.secrets.get(ctx)
		if err != nil {
			return c, err
		}
		id, secret, err := secrets.ClientCredentials(ctx, a.SecretName)
		if err != nil {
			return c, err
		}
		if c.ClientID == "" {
			c.ClientID = id
		}
		if c.ClientSecret == "" {
			c.ClientSecret = secret
		}
		return c, nil
	}
}

// secretNames lists the Secrets Manager secrets the servers read.
func (l *mcpLink) secretNames() []string {
	var names []string
	for _, s := range l.cfg.Servers {
		a := s.Auth
		if s.Remote() && !a.None && a.SecretName != "" && (a.ClientID == "" || a.ClientSecret == "") && !slices.Contains(names, a.SecretName) {
			names = append(names, a.SecretName)
		}
	}
	return names
}

// lazySecrets builds the AWS configuration and Secrets Manager client on
// first use, so that settings without SECRET_NAME need no AWS at all.
type lazySecrets struct {
	getenv config.Getenv

	mu      sync.Mutex
	secrets *awsx.Secrets
}

func (l *lazySecrets) get(ctx context.Context) (*awsx.Secrets, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.secrets != nil {
		return l.secrets, nil
	}
	s, err := config.LoadAWS(l.getenv)
	if err != nil {
		return nil, err
	}
	cfg, err := awsx.Load(ctx, s)
	if err != nil {
		return nil, err
	}
	l.secrets = awsx.NewSecrets(cfg, s, nil)
	return l.secrets, nil
}

// use sets the AWS configuration already built (doctor) instead of loading
// another.
func (l *lazySecrets) use(cfg aws.Config, s config.AWS) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.secrets = awsx.NewSecrets(cfg, s, nil)
}
