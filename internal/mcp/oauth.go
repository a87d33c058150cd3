package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Credentials are an OAuth2 client's id and secret.
type Credentials struct {
	ClientID     string
	ClientSecret string
}

// TokenSourceOptions configure a [TokenSource].
type TokenSourceOptions struct {
	// TokenURL is the authorization server's token endpoint. When empty it
	// is discovered from the MCP server at Resource: its protected-resource
	// metadata (RFC 9728, found through the 401's WWW-Authenticate
	// resource_metadata or the well-known path), then its authorization
	// server's metadata (RFC 8414).
	TokenURL string
	// Resource is the MCP server's URL, used for discovery.
	Resource string
	Scopes   []string
	// PostSecret sends the client secret in the form body
	// (client_secret_post) instead of HTTP Basic (client_secret_basic).
	PostSecret bool
	// Credentials returns the client id and secret. It is called for every
	// token request, so a source that caches (Secrets Manager) decides how
	// fresh they are.
	Credentials func(ctx context.Context) (Credentials, error)

	// HTTPClient talks to the token and metadata endpoints; nil means a
	// client with a 30 s timeout.
	HTTPClient *http.Client
	// Timeout bounds one token request, discovery included (default 30 s).
	Timeout time.Duration
	// RefreshBefore is how long before its expiry a token is replaced
	// (default 60 s, at most a quarter of the token's lifetime).
	RefreshBefore time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// TokenSource gets OAuth2 access tokens with the client-credentials grant
// and caches them until shortly before they expire. One TokenSource serves
// every run of the process: build it once (per server's auth settings) and
// hand it to every [Connect]. It is safe for concurrent use; concurrent
// callers share one token request.
type TokenSource struct {
	o TokenSourceOptions

	// sem is held while fetching; a channel so that waiting respects ctx.
	sem chan struct{}

	mu       sync.Mutex
	tokenURL string // configured or discovered
	scopes   []string
	token    *oauth2.Token
	refresh  time.Time // when token is to be replaced
}

// NewTokenSource returns a TokenSource; it makes no request until a token
// is needed.
func NewTokenSource(o TokenSourceOptions) *TokenSource {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.RefreshBefore <= 0 {
		o.RefreshBefore = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &TokenSource{o: o, sem: make(chan struct{}, 1), tokenURL: o.TokenURL, scopes: o.Scopes}
}

// Token returns a valid access token: the cached one, or a new one when it
// is close to expiry or was invalidated. Its Expiry is by the source's clock.
func (s *TokenSource) Token(ctx context.Context) (*oauth2.Token, error) {
	if t := s.cached(); t != nil {
		return t, nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the OAuth token: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	if t := s.cached(); t != nil { // another caller fetched it meanwhile
		return t, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	return s.fetch(ctx, nil)
}

// TokenURL returns the token endpoint, configured or discovered ("" before
// discovery).
func (s *TokenSource) TokenURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenURL
}

// Invalidate drops the cached token if it is accessToken (the one a server
// just refused), so that the next Token call fetches a new one. Comparing
// the token keeps concurrent refusals of one token to one refresh.
func (s *TokenSource) Invalidate(accessToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != nil && s.token.AccessToken == accessToken {
		s.token = nil
	}
}

func (s *TokenSource) cached() *oauth2.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != nil && s.o.Now().Before(s.refresh) {
		return s.token
	}
	return nil
}

// fetch gets a new token, discovering the token endpoint first if needed;
// challenges are the WWW-Authenticate challenges of a 401, if any.
// The caller holds sem.
func (s *TokenSource) fetch(ctx context.Context, challenges []oauthex.Challenge) (*oauth2.Token, error) {
	tokenURL := s.TokenURL()
	if tokenURL == "" {
		var err error
		if tokenURL, err = s.discover(ctx, challenges); err != nil {
			return nil, fmt.Errorf("discover the token endpoint from %s (AUTH_SERVER_TOKEN_URL is not set): %w", s.o.Resource, err)
		}
	}
	creds, err := s.o.Credentials(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the OAuth client credentials: %w", err)
	}
	if creds.ClientID == "" || creds.ClientSecret == "" {
		return nil, errors.New("OAuth client credentials are incomplete: MCP_CLIENT_ID is required (set SECRET_NAME to a secret holding client_id and client_secret, or MCP_CLIENT_ID and MCP_CLIENT_SECRET)")
	}
	style := oauth2.AuthStyleInHeader
	if s.o.PostSecret {
		style = oauth2.AuthStyleInParams
	}
	s.mu.Lock()
	scopes := s.scopes
	s.mu.Unlock()
	cfg := clientcredentials.Config{
		ClientID:     creds.ClientID,
		ClientSecret: creds.ClientSecret,
		TokenURL:     tokenURL,
		Scopes:       scopes,
		AuthStyle:    style,
	}
	now := s.o.Now()
	tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, s.o.HTTPClient))
	if err != nil {
		return nil, fmt.Errorf("get an OAuth token from %s: %w", tokenURL, tokenError(err))
	}
	// Expiry by our own clock, from expires_in; no expires_in means the
	// token is kept until a server refuses it.
	refresh := time.Time{}.AddDate(9999, 0, 0)
	if life := lifetime(tok); life > 0 {
		tok.Expiry = now.Add(life)
		refresh = tok.Expiry.Add(-min(s.o.RefreshBefore, life/4))
	} else {
		tok.Expiry = time.Time{}
	}
	s.mu.Lock()
	s.token, s.refresh = tok, refresh
	s.mu.Unlock()
	s.o.Logger.DebugContext(ctx, "oauth token obtained", "token_url", tokenURL, "expires", tok.Expiry)
	return tok, nil
}

// lifetime is the token's expires_in. clientcredentials leaves ExpiresIn
// empty and computes Expiry by the real clock, so read the raw answer.
func lifetime(tok *oauth2.Token) time.Duration {
	if tok.ExpiresIn > 0 {
		return time.Duration(tok.ExpiresIn) * time.Second
	}
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case string:
		secs, _ = strconv.ParseFloat(v, 64)
	case json.Number:
		secs, _ = v.Float64()
	}
	if secs > 0 {
		return time.Duration(secs * float64(time.Second))
	}
	if !tok.Expiry.IsZero() {
		return time.Until(tok.Expiry)
	}
	return 0
}

// tokenError keeps the token endpoint's answer but never the request.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		hint := ""
		switch re.Response.StatusCode {
		case http.StatusUnauthorized, http.StatusBadRequest:
			hint = " (check the client id and secret, and MCP_TOKEN_AUTH_STYLE: basic or post)"
		}
		if re.ErrorCode != "" {
			return fmt.Errorf("%s: %s %s%s", re.Response.Status, re.ErrorCode, re.ErrorDescription, hint)
		}
		return fmt.Errorf("%s%s", re.Response.Status, hint)
	}
	return err
}

// discover finds the token endpoint: protected-resource metadata (from the
// challenge's resource_metadata, then the well-known paths), then the
// authorization server's metadata. Without a challenge it probes the MCP
// server for one when the well-known paths have nothing.
func (s *TokenSource) discover(ctx context.Context, challenges []oauthex.Challenge) (string, error) {
	prm, err := s.resourceMetadata(ctx, challenges)
	if err != nil && challenges == nil {
		var probeErr error
		if challenges, probeErr = s.probe(ctx); probeErr == nil && challenges != nil {
			prm, err = s.resourceMetadata(ctx, challenges)
		}
	}
	if err != nil {
		return "", err
	}
	issuer := prm.AuthorizationServers[0]
	asm, err := auth.GetAuthServerMetadata(ctx, issuer, s.o.HTTPClient)
	if err != nil && strings.Contains(err.Error(), "PKCE") {
		// go-sdk insists on PKCE, which only the authorization-code grant
		// uses; a server for client credentials need not offer it.
		asm, err = authServerMetadata(ctx, issuer, s.o.HTTPClient)
	}
	if err != nil {
		return "", fmt.Errorf("authorization server metadata of %s: %w", issuer, err)
	}
	if asm == nil || asm.TokenEndpoint == "" {
		return "", fmt.Errorf("authorization server %s publishes no metadata with a token_endpoint (RFC 8414); set AUTH_SERVER_TOKEN_URL", issuer)
	}
	s.mu.Lock()
	s.tokenURL = asm.TokenEndpoint
	if len(s.scopes) == 0 {
		s.scopes = scopesFromChallenges(challenges)
		if len(s.scopes) == 0 {
			s.scopes = prm.ScopesSupported
		}
	}
	s.mu.Unlock()
	s.o.Logger.InfoContext(ctx, "oauth token endpoint discovered", "resource", s.o.Resource, "token_url", asm.TokenEndpoint)
	return asm.TokenEndpoint, nil
}

func (s *TokenSource) resourceMetadata(ctx context.Context, challenges []oauthex.Challenge) (*oauthex.ProtectedResourceMetadata, error) {
	var tried []string
	for _, c := range metadataCandidates(challenges, s.o.Resource) {
		prm, err := oauthex.GetProtectedResourceMetadata(ctx, c.url, c.resource, s.o.HTTPClient)
		if err != nil || prm == nil {
			tried = append(tried, c.url)
			continue
		}
		if len(prm.AuthorizationServers) == 0 {
			return nil, fmt.Errorf("protected resource metadata at %s lists no authorization_servers", c.url)
		}
		return prm, nil
	}
	return nil, fmt.Errorf("no protected resource metadata (RFC 9728) at %s", strings.Join(tried, ", "))
}

// probe sends an unauthenticated request to the MCP server to read its
// WWW-Authenticate challenge.
func (s *TokenSource) probe(ctx context.Context) ([]oauthex.Challenge, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.Resource, strings.NewReader(`{"jsonrpc":"2.0","id":0,"method":"ping"}`))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := s.o.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
}

type metadataCandidate struct{ url, resource string }

// metadataCandidates lists where protected-resource metadata may be: the
// challenge's resource_metadata, the path-specific well-known URL, the root
// well-known URL (RFC 9728 section 3.1, as the MCP authorization spec says).
func metadataCandidates(challenges []oauthex.Challenge, resource string) []metadataCandidate {
	var out []metadataCandidate
	for _, c := range challenges {
		if u := c.Params["resource_metadata"]; u != "" {
			out = append(out, metadataCandidate{u, resource})
			break
		}
	}
	ru, err := url.Parse(resource)
	if err != nil {
		return out
	}
	mu := *ru
	mu.RawQuery, mu.Fragment = "", ""
	if p := strings.Trim(ru.Path, "/"); p != "" {
		mu.Path = "/.well-known/oauth-protected-resource/" + p
		out = append(out, metadataCandidate{mu.String(), resource})
	}
	mu.Path = "/.well-known/oauth-protected-resource"
	root := *ru
	root.Path, root.RawQuery, root.Fragment = "", "", ""
	out = append(out, metadataCandidate{mu.String(), root.String()})
	return out
}

func scopesFromChallenges(cs []oauthex.Challenge) []string {
	for _, c := range cs {
		if c.Scheme == "bearer" && c.Params["scope"] != "" {
			return strings.Fields(c.Params["scope"])
		}
	}
	return nil
}

// oauthHandler plugs a TokenSource into go-sdk's streamable transport: the
// transport asks it for a token on every request, and calls Authorize when
// the server answers 401 or 403, then retries the request once.
type oauthHandler struct {
	ts *TokenSource
}

var _ auth.OAuthHandler = oauthHandler{}

// TokenSource gives the transport the cached token. Before the token
// endpoint is known (discovery pending) it returns nil, so the first request
// goes out without a token and the server's 401 drives discovery.
func (h oauthHandler) TokenSource(ctx context.Context) (oauth2.TokenSource, error) {
	if h.ts.TokenURL() == "" {
		return nil, nil
	}
	return ctxTokenSource{ctx: ctx, ts: h.ts}, nil
}

// Authorize handles a refusal: on 401 the token the request carried is
// dropped and a new one fetched (discovering the endpoint from the
// challenge if needed); a 403 means the token lacks a scope and is final.
func (h oauthHandler) Authorize(ctx context.Context, req *http.Request, resp *http.Response) error {
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("the MCP server refused the token (403 Forbidden): the client may lack a scope (MCP_SCOPES)")
	}
	challenges, _ := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	used := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	h.ts.Invalidate(used)
	select {
	case h.ts.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.ts.sem }()
	if t := h.ts.cached(); t != nil { // refreshed by a concurrent refusal
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.ts.o.Timeout)
	defer cancel()
	_, err := h.ts.fetch(ctx, challenges)
	return err
}

// ctxTokenSource adapts TokenSource to oauth2.TokenSource, whose Token takes
// no context: ctx is the connection's.
type ctxTokenSource struct {
	ctx context.Context
	ts  *TokenSource
}

func (c ctxTokenSource) Token() (*oauth2.Token, error) { return c.ts.Token(c.ctx) }

// authServerMetadata reads RFC 8414 metadata (or OpenID Connect discovery)
// for issuer without go-sdk's PKCE requirement. It returns nil, nil when no
// well-known URL has a document.
func authServerMetadata(ctx context.Context, issuer string, c *http.Client) (*oauthex.AuthServerMeta, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, err
	}
	p := strings.Trim(u.Path, "/")
	var urls []string
	for _, wk := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		m := *u
		m.Path = wk
		if p != "" {
			m.Path += "/" + p
		}
		urls = append(urls, m.String())
	}
	if p != "" {
		m := *u
		m.Path = "/" + p + "/.well-known/openid-configuration"
		urls = append(urls, m.String())
	}
	for _, mu := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, mu, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		var asm oauthex.AuthServerMeta
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&asm)
		resp.Body.Close()
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			continue
		}
		if resp.StatusCode != http.StatusOK || err != nil {
			return nil, fmt.Errorf("GET %s: %s %v", mu, resp.Status, err)
		}
		if strings.TrimRight(asm.Issuer, "/") != strings.TrimRight(issuer, "/") {
			return nil, fmt.Errorf("metadata issuer %q does not match issuer URL %q", asm.Issuer, issuer)
		}
		if err := checkEndpoint(asm.TokenEndpoint); err != nil {
			return nil, fmt.Errorf("token_endpoint: %w", err)
		}
		return &asm, nil
	}
	return nil, nil
}

// checkEndpoint accepts https URLs, and http ones on a loopback host.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("%q: want https (http only on a loopback address)", s)
}
