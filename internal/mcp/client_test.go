package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"gitlab.com/agentbot/agentbot/internal/mcp"
	"gitlab.com/agentbot/agentbot/internal/mcp/financedemo"
	"gitlab.com/agentbot/agentbot/internal/mcp/mcptest"
)

const stdioSentinel = "mcptest-stdio-finance-server"

// TestMain lets the test binary double as a stdio MCP server: the stdio
// test starts it again with the sentinel argument.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[len(os.Args)-1] == stdioSentinel {
		if err := financedemo.NewServer().Run(context.Background(), &sdk.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var creds = mcp.Credentials{ClientID: "agentbot", ClientSecret: "s3cret-value"}

func staticCreds(context.Context) (mcp.Credentials, error) { return creds, nil }

func issuerOptions(clock *mcptest.Clock, life time.Duration) mcptest.IssuerOptions {
	return mcptest.IssuerOptions{ClientID: creds.ClientID, ClientSecret: creds.ClientSecret, Lifetime: life, Clock: clock}
}

func connect(t *testing.T, servers []mcp.Server, builtin ...string) *mcp.Session {
	t.Helper()
	s, err := mcp.Connect(t.Context(), servers, mcp.Options{Builtin: builtin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func call(t *testing.T, s *mcp.Session, name, input string) string {
	t.Helper()
	tool, ok := s.Lookup(name)
	if !ok {
		t.Fatalf("no tool %q", name)
	}
	out, isErr := tool.Call(t.Context(), json.RawMessage(input))
	if isErr {
		t.Fatalf("%s(%s) failed: %s", name, input, out)
	}
	return out
}

// Tokens live 100 s and are replaced 25 s before expiry (a quarter of
// their life), so at 75 s and 150 s: calls over 170 s of clock time need
// exactly three tokens, shared by two runs, and no call is ever refused.
func TestTokenRefreshedExactlyWhenNeeded(t *testing.T) {
	clock := mcptest.NewClock(time.Date(2025, 6, 30, 9, 0, 0, 0, time.UTC))
	srv := mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{Issuer: issuerOptions(clock, 100*time.Second)})
	ts := mcp.NewTokenSource(mcp.TokenSourceOptions{TokenURL: srv.TokenURL, Resource: srv.URL, Credentials: staticCreds, Now: clock.Now})
	servers := []mcp.Server{{Name: "finance", URL: srv.URL, Auth: ts}}

	run1 := connect(t, servers)
	run2 := connect(t, servers) // a second run of the same process
	want := map[time.Duration]int{0: 1, 70 * time.Second: 1, 75 * time.Second: 2, 145 * time.Second: 2, 150 * time.Second: 3, 170 * time.Second: 3}
	var elapsed time.Duration
	for _, step := range []time.Duration{0, 10, 20, 20, 20, 5, 40, 30, 5, 20} {
		clock.Advance(step * time.Second)
		elapsed += step * time.Second
		for _, run := range []*mcp.Session{run1, run2} {
			if out := call(t, run, "get_quote", `{"symbol":"AAPL"}`); !strings.Contains(out, `"price":205.17`) {
				t.Fatalf("quote: %s", out)
			}
		}
		if n, ok := want[elapsed]; ok && srv.Issuer.Issued() != n {
			t.Errorf("after %s: %d tokens issued, want %d", elapsed, srv.Issuer.Issued(), n)
		}
	}
	if got := srv.Issuer.Issued(); got != 3 {
		t.Errorf("tokens issued: %d, want 3", got)
	}
	if n := srv.Unauthorized(); n != 0 {
		t.Errorf("the server refused %d requests; the token should be replaced before it expires", n)
	}
	for _, r := range srv.Issuer.Requests() {
		if r.Style != mcptest.StyleBasic {
			t.Errorf("token request used %s, want client_secret_basic by default", r.Style)
		}
	}
}

// The authorization server revokes every token mid-run: the next call gets
// a 401, fetches one new token and succeeds.
func TestUnauthorizedMidRunRecovers(t *testing.T) {
	srv := mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{Issuer: issuerOptions(nil, time.Hour)})
	ts := mcp.NewTokenSource(mcp.TokenSourceOptions{TokenURL: srv.TokenURL, Resource: srv.URL, Credentials: staticCreds})
	s := connect(t, []mcp.Server{{Name: "finance", URL: srv.URL, Auth: ts}})
	call(t, s, "get_quote", `{"symbol":"MSFT"}`)
	srv.Issuer.RevokeAll()

	// Several calls at once: one refusal or many, one new token.
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			tool, _ := s.Lookup("get_fundamentals")
			if out, isErr := tool.Call(t.Context(), json.RawMessage(`{"symbol":"NVDA"}`)); isErr {
				errs <- out
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("call failed after revocation: %s", e)
	}
	if got := srv.Issuer.Issued(); got != 2 {
		t.Errorf("tokens issued: %d, want 2", got)
	}
	if srv.Unauthorized() == 0 {
		t.Error("the server never refused a token; the test proves nothing")
	}
}

// With no token URL, the client follows the 401's resource_metadata (served
// at a non-well-known path, so only the challenge leads there) to the
// authorization server's metadata and its token endpoint.
func TestDiscoveryFromChallenge(t *testing.T) {
	for _, pkce := range []bool{false, true} {
		t.Run(fmt.Sprintf("pkce=%v", pkce), func(t *testing.T) {
			o := issuerOptions(nil, time.Hour)
			o.PKCE = pkce
			srv := mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{Issuer: o, MetadataPath: "/metadata/finance"})
			ts := mcp.NewTokenSource(mcp.TokenSourceOptions{Resource: srv.URL, Credentials: staticCreds})
			s := connect(t, []mcp.Server{{Name: "finance", URL: srv.URL, Auth: ts}})
			if out := call(t, s, "get_quote", `{"symbol":"TSLA"}`); !strings.Contains(out, "Tesla") {
				t.Fatalf("quote: %s", out)
			}
			if ts.TokenURL() != srv.TokenURL {
				t.Errorf("discovered %q, want %q", ts.TokenURL(), srv.TokenURL)
			}
			if srv.Issuer.Issued() != 1 || srv.Unauthorized() != 1 {
				t.Errorf("issued %d tokens after %d refusals, want 1 after 1", srv.Issuer.Issued(), srv.Unauthorized())
			}
		})
	}
}

// Token() alone (what doctor does) discovers through the well-known path,
// without a 401 to start from.
func TestDiscoveryWellKnown(t *testing.T) {
	srv := mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{Issuer: issuerOptions(nil, time.Hour)})
	ts := mcp.NewTokenSource(mcp.TokenSourceOptions{Resource: srv.URL, Credentials: staticCreds})
	tok, err := ts.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Expiry.IsZero() || ts.TokenURL() != srv.TokenURL {
		t.Errorf("token expiry %v, token URL %q", tok.Expiry, ts.TokenURL())
	}
}

func TestTokenAuthStyles(t *testing.T) {
	o := issuerOptions(nil, time.Hour)
	o.Style = mcptest.StylePost
	srv := mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{Issuer: o})

	post := mcp.NewTokenSource(mcp.TokenSourceOptions{TokenURL: srv.TokenURL, Credentials: staticCreds, PostSecret: true})
	if _, err := post.Token(t.Context()); err != nil {
		t.Fatalf("client_secret_post: %v", err)
	}
	basic := mcp.NewTokenSource(mcp.TokenSourceOptions{TokenURL: srv.TokenURL, Credentials: staticCreds})
	_, err := basic.Token(t.Context())
	if err == nil || !strings.Contains(err.Error(), "invalid_client") || !strings.Contains(err.Error(), "MCP_TOKEN_AUTH_STYLE") {
		t.Fatalf("basic against a post-only server: %v", err)
	}
	if strings.Contains(err.Error(), creds.ClientSecret) {
		t.Errorf("the error shows the client secret: %v", err)
	}
}

func TestMissingClientID(t *testing.T) {
	ts := mcp.NewTokenSource(mcp.TokenSourceOptions{TokenURL: "http://127.0.0.1:1/token",
		Credentials: func(context.Context) (mcp.Credentials, error) { return mcp.Credentials{}, nil }})
	if _, err := ts.Token(t.Context()); err == nil || !strings.Contains(err.Error(), "MCP_CLIENT_ID is required") {
		t.Fatalf("got %v", err)
	}
}

// The server forgets the session (restart, idle timeout): the client
// starts a new one and the call succeeds.
func TestExpiredSessionReestablished(t *testing.T) {
	srv := mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{NoAuth: true})
	s := connect(t, []mcp.Server{{Name: "finance", URL: srv.URL}})
	call(t, s, "get_quote", `{"symbol":"AAPL"}`)
	if n := srv.ExpireSessions(); n != 1 {
		t.Fatalf("expired %d sessions, want 1", n)
	}
	if out := call(t, s, "get_quote", `{"symbol":"BRK.B"}`); !strings.Contains(out, "Berkshire") {
		t.Fatalf("after expiry: %s", out)
	}
}

func TestToolsAndResults(t *testing.T) {
	srv := mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{NoAuth: true})
	s := connect(t, []mcp.Server{{Name: "finance", URL: srv.URL}}, "get_quote", "write_file")

	var names []string
	for _, tool := range s.Tools() {
		names = append(names, tool.Spec().Name)
		if tool.Spec().InputSchema["type"] != "object" {
			t.Errorf("%s: schema %v", tool.Spec().Name, tool.Spec().InputSchema)
		}
	}
	if got := strings.Join(names, ","); got != "get_fundamentals,get_price_history,finance_get_quote" {
		t.Errorf("tools: %s (a clash with a built-in gets the server's prefix)", got)
	}
	q, _ := s.Lookup("finance_get_quote")
	if q.RemoteName() != "get_quote" || q.Server() != "finance" {
		t.Errorf("%s is %s on %s", q.Spec().Name, q.RemoteName(), q.Server())
	}

	// Structured content and its JSON text are one value: shown once.
	out := call(t, s, "finance_get_quote", `{"symbol":"nvda"}`)
	var quote financedemo.Quote
	if err := json.Unmarshal([]byte(out), &quote); err != nil || quote.Symbol != "NVDA" {
		t.Errorf("quote %q: %v", out, err)
	}
	hist := call(t, s, "get_price_history", `{"symbol":"AAPL","days":5}`)
	var h financedemo.PriceHistory
	if err := json.Unmarshal([]byte(hist), &h); err != nil || len(h.Points) != 5 || h.Points[4].Close != 205.17 {
		t.Errorf("history %s: %v", hist, err)
	}

	// A tool's own failure is an error result for the model.
	res, isErr := q.Call(t.Context(), json.RawMessage(`{"symbol":"ZZZZ"}`))
	if !isErr || !strings.Contains(res, "unknown symbol") {
		t.Errorf("unknown symbol: %v %q", isErr, res)
	}
	// Bad input never reaches the server.
	if res, isErr := q.Call(t.Context(), json.RawMessage(`[1]`)); !isErr || !strings.Contains(res, "JSON object") {
		t.Errorf("array input: %v %q", isErr, res)
	}
}

func TestUnreachableServerNamed(t *testing.T) {
	srv := mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{NoAuth: true})
	url := srv.URL
	srv.Close()
	_, err := mcp.Connect(t.Context(), []mcp.Server{{Name: "finance", URL: url, Timeout: 5 * time.Second}}, mcp.Options{})
	if err == nil || !strings.Contains(err.Error(), "mcp server finance") || !strings.Contains(err.Error(), ": connect:") {
		t.Fatalf("got %v", err)
	}
}

func TestTokenRequiredHint(t *testing.T) {
	srv := mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{Issuer: issuerOptions(nil, time.Hour)})
	_, err := mcp.Connect(t.Context(), []mcp.Server{{Name: "finance", URL: srv.URL}}, mcp.Options{})
	if err == nil || !strings.Contains(err.Error(), "MCP_CLIENT_ID") {
		t.Fatalf("got %v", err)
	}
}

// A call that gets no answer ends at the server's deadline with an error
// result that says so.
func TestCallDeadline(t *testing.T) {
	server := sdk.NewServer(&sdk.Implementation{Name: "slow"}, nil)
	release := make(chan struct{})
	sdk.AddTool(server, &sdk.Tool{Name: "wait"}, func(ctx context.Context, _ *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, struct{}, error) {
		select {
		case <-ctx.Done():
		case <-release:
		}
		return nil, struct{}{}, nil
	})
	srv := mcptest.StartServer(t, server, mcptest.ServerOptions{NoAuth: true})
	s := connect(t, []mcp.Server{{Name: "slow", URL: srv.URL, Timeout: 300 * time.Millisecond}})
	t.Cleanup(func() { close(release) }) // before the session's and server's cleanups
	tool, _ := s.Lookup("wait")
	out, isErr := tool.Call(t.Context(), json.RawMessage(`{}`))
	if !isErr || !strings.Contains(out, "mcp server slow") || !strings.Contains(out, "call wait") || !strings.Contains(out, "no answer within 300ms") {
		t.Fatalf("got %v %q", isErr, out)
	}
}

// A local command server over stdio, next to a remote one whose tool
// names it shares.
func TestStdioServer(t *testing.T) {
	srv := mcptest.StartServer(t, financedemo.NewServer(), mcptest.ServerOptions{NoAuth: true})
	s := connect(t, []mcp.Server{
		{Name: "finance", URL: srv.URL},
		{Name: "local", Command: os.Args[0], Args: []string{"-test.run=^$", stdioSentinel}},
	})
	if n := len(s.Tools()); n != 6 {
		t.Fatalf("%d tools, want 6", n)
	}
	if out := call(t, s, "local_get_fundamentals", `{"symbol":"MSFT"}`); !strings.Contains(out, "Microsoft") {
		t.Fatalf("stdio call: %s", out)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// The reference server from the MCP project, over streamable HTTP.
func TestServerEverything(t *testing.T) {
	url := mcptest.StartEverything(t, os.Getenv)
	s := connect(t, []mcp.Server{{Name: "everything", URL: url, HTTPClient: &http.Client{}}})
	if len(s.Tools()) < 5 {
		t.Fatalf("only %d tools", len(s.Tools()))
	}
	if out := call(t, s, "echo", `{"message":"hi"}`); out != "Echo: hi" {
		t.Errorf("echo: %q", out)
	}
	add := "add"
	if _, ok := s.Lookup(add); !ok {
		add = "get-sum" // its name in newer releases
	}
	if out := call(t, s, add, `{"a":2,"b":3}`); !strings.Contains(out, "5") {
		t.Errorf("%s: %q", add, out)
	}
	valid := regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	for _, tool := range s.Tools() {
		if !valid.MatchString(tool.Spec().Name) {
			t.Errorf("tool name %q is not valid for the model", tool.Spec().Name)
		}
	}
}

// One tool call over streamable HTTP with a cached token, in process.
func BenchmarkCallQuote(b *testing.B) {
	srv := mcptest.StartServer(b, financedemo.NewServer(), mcptest.ServerOptions{Issuer: issuerOptions(nil, time.Hour)})
	ts := mcp.NewTokenSource(mcp.TokenSourceOptions{TokenURL: srv.TokenURL, Resource: srv.URL, Credentials: staticCreds})
	s, err := mcp.Connect(b.Context(), []mcp.Server{{Name: "finance", URL: srv.URL, Auth: ts}}, mcp.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tool, _ := s.Lookup("get_quote")
	input := json.RawMessage(`{"symbol":"AAPL"}`)
	b.ReportAllocs()
	for b.Loop() {
		if out, isErr := tool.Call(b.Context(), input); isErr {
			b.Fatal(out)
		}
	}
}
