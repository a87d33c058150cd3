package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MCP is the set of MCP servers whose tools the agent gets. The simple path
// is the finance server from FINANCE_MCP_URL and its OAuth settings; more
// servers (remote, or local stdio commands) can be listed in the file named
// by AGENTBOT_MCP_CONFIG.
type MCP struct {
	// Servers lists every server: the finance one from the environment first
	// (named "finance"), then the file's, in file order.
	Servers []MCPServer
	// Timeout (AGENTBOT_MCP_TIMEOUT, default 60s) bounds each connect, list
	// and call, unless a server sets its own.
	Timeout time.Duration
}

// MCPServer is one MCP server: remote (URL) or a local command (Command).
type MCPServer struct {
	Name    string
	URL     string
	Command string
	Args    []string
	// Env is the command's whole environment: PATH and HOME from agentbot's
	// own, plus the server's env entries. Nothing else is passed on, so
	// agentbot's tokens never reach the child.
	Env     []string
	Auth    MCPAuth
	Timeout time.Duration
}

// Remote reports whether the server is reached over streamable HTTP.
func (s MCPServer) Remote() bool { return s.URL != "" }

// MCPAuth is how agentbot gets an OAuth2 token for a remote server with the
// client-credentials grant.
type MCPAuth struct {
	// None: the server needs no token (MCP_AUTH=none, or auth: none).
	None bool
	// TokenURL is the token endpoint; empty means discover it from the MCP
	// server (RFC 9728 then RFC 8414).
	TokenURL string
	// SecretName is the Secrets Manager secret holding the client id and
	// secret; ClientID and ClientSecret, when set, are used instead of the
	// secret's values.
	SecretName   string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// Style is how the client authenticates at the token endpoint:
	// "basic" (client_secret_basic, the default) or "post" (client_secret_post).
	Style string
}

// The token endpoint client authentication styles.
const (
	TokenAuthBasic = "basic"
	TokenAuthPost  = "post"
)

// FinanceServerName names the server configured by FINANCE_MCP_URL.
const FinanceServerName = "finance"

const credentialsHelp = "set SECRET_NAME (a Secrets Manager secret holding JSON with client_id and client_secret), " +
	"or MCP_CLIENT_ID and MCP_CLIENT_SECRET; MCP_AUTH=none if the server needs no token"

var serverNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// LoadMCP reads the MCP settings. A non-empty url replaces FINANCE_MCP_URL
// and the servers file is not read: that is `agentbot mcp --url URL`,
// which talks to one server with the finance server's auth settings.
func LoadMCP(get Getenv, url string) (MCP, error) {
	r := newReader(get)
	m := MCP{Timeout: r.duration("AGENTBOT_MCP_TIMEOUT", 60*time.Second)}
	envAuth, envAuthProblem := mcpEnvAuth(r)

	fileName := r.str("AGENTBOT_MCP_CONFIG", "")
	if url == "" {
		url = r.str("FINANCE_MCP_URL", "")
	} else {
		fileName = ""
	}
	if url != "" {
		if !validEndpointURL(url) {
			r.problem("FINANCE_MCP_URL=%q: want the MCP server's http(s) URL, such as https://finance.example.com/mcp", url)
		}
		if envAuthProblem != "" {
			r.problem("%s", envAuthProblem)
		}
		m.Servers = append(m.Servers, MCPServer{Name: FinanceServerName, URL: url, Auth: envAuth, Timeout: m.Timeout})
	}
	if fileName != "" {
		servers, err := readMCPFile(fileName)
		if err != nil {
			r.problem("AGENTBOT_MCP_CONFIG=%q: %v", fileName, err)
		}
		for i, fs := range servers {
			s, problems := fs.server(i, envAuth, envAuthProblem, m.Timeout, get)
			for _, p := range problems {
				r.problem("AGENTBOT_MCP_CONFIG %s: %s", fs.label(i), p)
			}
			m.Servers = append(m.Servers, s)
		}
	}
	seen := map[string]bool{}
	for _, s := range m.Servers {
		if seen[s.Name] {
			r.problem("AGENTBOT_MCP_CONFIG: server name %q is used twice (FINANCE_MCP_URL is named %q)", s.Name, FinanceServerName)
		}
		seen[s.Name] = true
	}
	return m, r.err()
}

// mcpEnvAuth reads the environment's OAuth settings. The problem it returns
// only matters when a server uses them.
func mcpEnvAuth(r *reader) (MCPAuth, string) {
	a := MCPAuth{
		TokenURL:     r.str("AUTH_SERVER_TOKEN_URL", ""),
		SecretName:   r.str("SECRET_NAME", ""),
		ClientID:     r.str("MCP_CLIENT_ID", ""),
		ClientSecret: r.str("MCP_CLIENT_SECRET", ""),
		Scopes:       strings.FieldsFunc(r.str("MCP_SCOPES", ""), func(c rune) bool { return c == ',' || c == ' ' }),
		Style:        TokenAuthBasic,
	}
	switch mode := strings.ToLower(r.str("MCP_AUTH", "oauth")); mode {
	case "oauth":
	case "none":
		a.None = true
	default:
		r.problem("MCP_AUTH=%q: want oauth (the default) or none", mode)
	}
	if style, ok := tokenAuthStyle(r.str("MCP_TOKEN_AUTH_STYLE", TokenAuthBasic)); ok {
		a.Style = style
	} else {
		r.problem("MCP_TOKEN_AUTH_STYLE=%q: want basic (client_secret_basic) or post (client_secret_post)", r.str("MCP_TOKEN_AUTH_STYLE", ""))
	}
	if a.TokenURL != "" && !validEndpointURL(a.TokenURL) {
		r.problem("AUTH_SERVER_TOKEN_URL=%q: want the token endpoint's http(s) URL", a.TokenURL)
	}
	if a.None {
		return a, ""
	}
	switch {
	case a.SecretName != "":
	case a.ClientID == "":
		return a, "MCP_CLIENT_ID is required: " + credentialsHelp
	case a.ClientSecret == "":
		return a, "MCP_CLIENT_SECRET is required with MCP_CLIENT_ID: " + credentialsHelp
	}
	return a, ""
}

func tokenAuthStyle(s string) (string, bool) {
	switch strings.ToLower(s) {
	case "basic", "client_secret_basic":
		return TokenAuthBasic, true
	case "post", "client_secret_post":
		return TokenAuthPost, true
	}
	return "", false
}

// mcpFileServer is one entry of the AGENTBOT_MCP_CONFIG file.
type mcpFileServer struct {
	Name    string            `json:"name" yaml:"name"`
	URL     string            `json:"url" yaml:"url"`
	Command string            `json:"command" yaml:"command"`
	Args    []string          `json:"args" yaml:"args"`
	Env     map[string]string `json:"env" yaml:"env"`
	Timeout string            `json:"timeout" yaml:"timeout"`

	// Auth is "oauth" (the default for remote servers) or "none".
	Auth            string   `json:"auth" yaml:"auth"`
	TokenURL        string   `json:"token_url" yaml:"token_url"`
	SecretName      string   `json:"secret_name" yaml:"secret_name"`
	ClientID        string   `json:"client_id" yaml:"client_id"`
	ClientSecretEnv string   `json:"client_secret_env" yaml:"client_secret_env"`
	Scopes          []string `json:"scopes" yaml:"scopes"`
	TokenAuthStyle  string   `json:"token_auth_style" yaml:"token_auth_style"`
}

type mcpFile struct {
	Servers []mcpFileServer `json:"servers" yaml:"servers"`
}

// readMCPFile reads the servers file: JSON when it starts with '{', YAML
// otherwise. Unknown keys are errors, so that a typo does not go unnoticed.
func readMCPFile(name string) ([]mcpFileServer, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var f mcpFile
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(&f)
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		err = dec.Decode(&f)
	}
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if len(f.Servers) == 0 {
		return nil, fmt.Errorf("no servers listed (want a top-level servers: list)")
	}
	return f.Servers, nil
}

func (fs mcpFileServer) label(i int) string {
	if fs.Name != "" {
		return fmt.Sprintf("servers[%d] (%s)", i, fs.Name)
	}
	return fmt.Sprintf("servers[%d]", i)
}

// server turns a file entry into an MCPServer. A remote server with no
// credentials of its own uses the environment's auth settings as a whole.
func (fs mcpFileServer) server(i int, envAuth MCPAuth, envAuthProblem string, timeout time.Duration, get Getenv) (MCPServer, []string) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	s := MCPServer{Name: fs.Name, URL: fs.URL, Command: fs.Command, Args: fs.Args, Timeout: timeout}
	if !serverNameRE.MatchString(fs.Name) {
		bad("name %q: want lower-case letters, digits, _ or -, starting with a letter (it prefixes clashing tool names)", fs.Name)
	}
	if fs.Timeout != "" {
		d, err := time.ParseDuration(fs.Timeout)
		if err != nil || d <= 0 {
			bad("timeout %q: want a positive duration such as 30s", fs.Timeout)
		} else {
			s.Timeout = d
		}
	}
	switch {
	case fs.URL != "" && fs.Command != "":
		bad("set url (a remote server) or command (a local stdio server), not both")
	case fs.URL == "" && fs.Command == "":
		bad("set url (a remote server) or command (a local stdio server)")
	case fs.Command != "":
		if fs.Auth != "" || fs.TokenURL != "" || fs.SecretName != "" || fs.ClientID != "" {
			bad("auth settings apply to remote (url) servers only")
		}
		s.Auth.None = true
		s.Env = commandEnv(get, fs.Env)
		return s, problems
	}
	if !validEndpointURL(fs.URL) {
		bad("url %q: want an http(s) URL", fs.URL)
	}
	if len(fs.Env) > 0 || len(fs.Args) > 0 {
		bad("args and env apply to command servers only")
	}
	switch strings.ToLower(fs.Auth) {
	case "none":
		s.Auth.None = true
		return s, problems
	case "", "oauth":
	default:
		bad("auth %q: want oauth (the default) or none", fs.Auth)
	}
	if fs.SecretName == "" && fs.ClientID == "" {
		if envAuth.None {
			bad("no credentials: set secret_name, or client_id and client_secret_env, or auth: none (MCP_AUTH=none does not cover file servers)")
		} else if envAuthProblem != "" {
			bad("no credentials of its own, so it uses the environment's, and %s; or set secret_name, or client_id and client_secret_env, or auth: none", envAuthProblem)
		}
		s.Auth = envAuth
		if fs.TokenURL != "" {
			s.Auth.TokenURL = fs.TokenURL
		}
		return s, problems
	}
	s.Auth = MCPAuth{TokenURL: fs.TokenURL, SecretName: fs.SecretName, ClientID: fs.ClientID, Scopes: fs.Scopes, Style: TokenAuthBasic}
	if fs.ClientSecretEnv != "" {
		s.Auth.ClientSecret = strings.TrimSpace(get(fs.ClientSecretEnv))
		if s.Auth.ClientSecret == "" {
			bad("client_secret_env names %s, which is not set", fs.ClientSecretEnv)
		}
	}
	if fs.SecretName == "" && fs.ClientSecretEnv == "" {
		bad("client_id needs client_secret_env (the variable holding the secret) or secret_name")
	}
	if fs.TokenURL != "" && !validEndpointURL(fs.TokenURL) {
		bad("token_url %q: want an http(s) URL", fs.TokenURL)
	}
	if fs.TokenAuthStyle != "" {
		if style, ok := tokenAuthStyle(fs.TokenAuthStyle); ok {
			s.Auth.Style = style
		} else {
			bad("token_auth_style %q: want basic or post", fs.TokenAuthStyle)
		}
	}
	return s, problems
}

// commandEnv is a stdio server's environment: PATH and HOME, then its own.
func commandEnv(get Getenv, extra map[string]string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME"} {
		if v := get(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		env = append(env, k+"="+extra[k])
	}
	return env
}
