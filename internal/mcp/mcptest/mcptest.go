// Package mcptest holds in-process stand-ins for the organisation's side of
// the MCP link: an OAuth2 authorization server that issues short-lived
// client-credentials tokens and counts requests, and a go-sdk MCP server
// behind a bearer-token check, with the metadata documents (RFC 9728 and
// RFC 8414) a client needs to discover the token endpoint.
package mcptest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Clock is a clock that moves only when told to; safe for concurrent use.
// A nil *Clock reads the real time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Token auth styles an Issuer may insist on.
const (
	StyleBasic = "basic" // client_secret_basic
	StylePost  = "post"  // client_secret_post
)

// IssuerOptions configure an [Issuer].
type IssuerOptions struct {
	ClientID     string
	ClientSecret string
	// Lifetime of each token (default one hour), by Clock.
	Lifetime time.Duration
	Clock    *Clock
	// Style, when set, is the only client authentication accepted.
	Style string
	// PKCE advertises code_challenge_methods_supported, as an authorization
	// server that also serves the authorization-code grant does.
	PKCE bool
}

// TokenRequest is one request the token endpoint answered.
type TokenRequest struct {
	Style string // basic or post
	Scope string
	OK    bool
}

// Issuer is an OAuth2 authorization server for the client-credentials
// grant. Its Verify method checks the tokens it issued.
type Issuer struct {
	o IssuerOptions

	mu       sync.Mutex
	base     string // issuer URL, known once served
	issued   map[string]time.Time
	requests []TokenRequest
}

// NewIssuer returns an Issuer; mount it with [Issuer.Routes].
func NewIssuer(o IssuerOptions) *Issuer {
	if o.Lifetime <= 0 {
		o.Lifetime = time.Hour
	}
	return &Issuer{o: o, issued: map[string]time.Time{}}
}

// TokenPath is where the token endpoint is served.
const TokenPath = "/oauth/token"

// Routes registers the token endpoint and the authorization-server metadata
// on mux; base is the issuer's URL (scheme://host, no path).
func (i *Issuer) Routes(mux *http.ServeMux, base string) {
	i.mu.Lock()
	i.base = base
	i.mu.Unlock()
	mux.HandleFunc("POST "+TokenPath, i.serveToken)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", i.serveMetadata)
}

func (i *Issuer) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	i.mu.Lock()
	base := i.base
	i.mu.Unlock()
	methods := []string{"client_secret_basic", "client_secret_post"}
	switch i.o.Style {
	case StyleBasic:
		methods = methods[:1]
	case StylePost:
		methods = methods[1:]
	}
	meta := &oauthex.AuthServerMeta{
		Issuer:                            base,
		TokenEndpoint:                     base + TokenPath,
		GrantTypesSupported:               []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported: methods,
		ResponseTypesSupported:            []string{"token"},
	}
	if i.o.PKCE {
		meta.CodeChallengeMethodsSupported = []string{"S256"}
	}
	writeJSON(w, http.StatusOK, meta)
}

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	req := TokenRequest{Scope: r.PostForm.Get("scope")}
	id, secret, basic := r.BasicAuth()
	req.Style = StyleBasic
	if !basic {
		id, secret, req.Style = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), StylePost
	}
	fail := func(code int, e string) {
		i.mu.Lock()
		i.requests = append(i.requests, req)
		i.mu.Unlock()
		writeJSON(w, code, map[string]string{"error": e})
	}
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		fail(http.StatusBadRequest, "unsupported_grant_type")
		return
	case i.o.Style != "" && req.Style != i.o.Style:
		fail(http.StatusUnauthorized, "invalid_client")
		return
	case id != i.o.ClientID || secret != i.o.ClientSecret:
		fail(http.StatusUnauthorized, "invalid_client")
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := "tok-" + hex.EncodeToString(b)
	req.OK = true
	i.mu.Lock()
	i.issued[token] = i.o.Clock.Now().Add(i.o.Lifetime)
	i.requests = append(i.requests, req)
	i.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int(i.o.Lifetime / time.Second),
	})
}

// Requests returns the token requests answered so far.
func (i *Issuer) Requests() []TokenRequest {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]TokenRequest(nil), i.requests...)
}

// Issued counts the tokens issued so far.
func (i *Issuer) Issued() int {
	n := 0
	for _, r := range i.Requests() {
		if r.OK {
			n++
		}
	}
	return n
}

// Tokens returns every token issued so far (for tests asserting that none
// leaks).
func (i *Issuer) Tokens() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	var out []string
	for t := range i.issued {
		out = append(out, t)
	}
	return out
}

// RevokeAll makes every issued token invalid, as an authorization server
// rotating its keys would.
func (i *Issuer) RevokeAll() {
	i.mu.Lock()
	defer i.mu.Unlock()
	clear(i.issued)
}

// Verify is an auth.TokenVerifier for the tokens this Issuer issued; expiry
// is judged by the Issuer's clock.
func (i *Issuer) Verify(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	i.mu.Lock()
	exp, ok := i.issued[token]
	i.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: unknown token", auth.ErrInvalidToken)
	}
	if !i.o.Clock.Now().Before(exp) {
		return nil, fmt.Errorf("%w: token expired", auth.ErrInvalidToken)
	}
	// No Expiration: RequireBearerToken would judge it by the real clock.
	return &auth.TokenInfo{}, nil
}

// ServerOptions configure a [Server].
type ServerOptions struct {
	Issuer IssuerOptions
	// MetadataPath is where the protected-resource metadata is served; it is
	// advertised in every 401's WWW-Authenticate. Default: the well-known
	// path for /mcp. A path elsewhere proves that a client followed the
	// challenge.
	MetadataPath string
	// NoAuth serves the MCP server without a token check.
	NoAuth bool
}

// MCPPath is where the MCP endpoint is served.
const MCPPath = "/mcp"

// Server is an MCP server behind a bearer-token check, with its token
// issuer and metadata, on one loopback HTTP server.
type Server struct {
	URL      string // the MCP endpoint
	TokenURL string
	Issuer   *Issuer
	MCP      *mcp.Server

	http *httptest.Server

	mu           sync.Mutex
	unauthorized int
	requests     int
}

// NewServer serves s on a new loopback port; Close stops it.
func NewServer(s *mcp.Server, o ServerOptions) *Server {
	srv := &Server{Issuer: NewIssuer(o.Issuer), MCP: s}
	mux := http.NewServeMux()
	srv.http = httptest.NewUnstartedServer(mux) // on a loopback port
	base := "http://" + srv.http.Listener.Addr().String()
	srv.URL, srv.TokenURL = base+MCPPath, base+TokenPath
	if o.MetadataPath == "" {
		o.MetadataPath = "/.well-known/oauth-protected-resource" + MCPPath
	}
	srv.Issuer.Routes(mux, base)
	prm := &oauthex.ProtectedResourceMetadata{Resource: srv.URL, AuthorizationServers: []string{base}}
	mux.Handle("GET "+o.MetadataPath, auth.ProtectedResourceMetadataHandler(prm))

	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	if !o.NoAuth {
		h = auth.RequireBearerToken(srv.Issuer.Verify, &auth.RequireBearerTokenOptions{
			ResourceMetadataURL:    base + o.MetadataPath,
			AllowMissingExpiration: true,
		})(h)
	}
	mux.Handle(MCPPath, srv.count(h))
	srv.http.Start()
	return srv
}

// StartServer is NewServer, closed when the test ends.
func StartServer(t testing.TB, s *mcp.Server, o ServerOptions) *Server {
	t.Helper()
	srv := NewServer(s, o)
	t.Cleanup(srv.Close)
	return srv
}

func (s *Server) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		s.mu.Lock()
		s.requests++
		if rec.status == http.StatusUnauthorized {
			s.unauthorized++
		}
		s.mu.Unlock()
	})
}

// Unauthorized counts the 401s the MCP endpoint answered.
func (s *Server) Unauthorized() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unauthorized
}

// Requests counts the requests the MCP endpoint answered.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// ExpireSessions ends every MCP session, as a server restart or an idle
// timeout would: a client's next request in one gets 404.
func (s *Server) ExpireSessions() int {
	n := 0
	for ss := range s.MCP.Sessions() {
		_ = ss.Close()
		n++
	}
	return n
}

// Close stops the server.
func (s *Server) Close() { s.http.Close() }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush keeps server-sent events streaming through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// HasToken reports whether s contains any of the tokens (a leak check).
func HasToken(s string, tokens []string) bool {
	for _, t := range tokens {
		if t != "" && strings.Contains(s, t) {
			return true
		}
	}
	return false
}
