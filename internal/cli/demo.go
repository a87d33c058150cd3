package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/mcp/financedemo"
	"gitlab.com/agentbot/agentbot/internal/mcp/mcptest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
	"gitlab.com/agentbot/agentbot/webhooks"
)

// runDemo is `agentbot demo`: a whole run with no network and no
// credentials. It starts `serve` in-process on its embedded SQLite default
// against a simulated GitLab (a fake API and a real git server), the sample
// finance MCP server behind an OAuth2 client-credentials token, and a
// scripted model on Bedrock's wire protocol (no LLM is called); posts
// `/agent analyze AAPL` as a webhook; and prints what a user would see.
func runDemo(ctx context.Context, e *env, args []string) (err error) {
	if len(args) > 0 {
		return usageError("usage: agentbot demo (no flags: it needs nothing but git on PATH)")
	}
	out := e.stdout
	tb := newDemoTB()
	defer tb.cleanup()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("demo: %v", r)
		}
	}()

	say := func(format string, args ...any) { fmt.Fprintf(out, "▶ "+format+"\n", args...) }
	say("starting a simulated GitLab (API and git over smart HTTP) with project acme/research and issue #7")
	gl := gitlabtest.New(tb)
	sm := gl.AddSample()

	say("starting the sample finance MCP server behind an OAuth2 client-credentials token endpoint")
	clientSecret := randomHex(16)
	finance := mcptest.NewServer(financedemo.NewServer(), mcptest.ServerOptions{
		Issuer: mcptest.IssuerOptions{ClientID: "agentbot-demo", ClientSecret: clientSecret},
	})
	defer finance.Close()

	say("starting a SCRIPTED model on Bedrock's Converse wire protocol: no LLM is called, the answers are canned")
	model := bedrocktest.StartFunc(bedrocktest.QuoteScript("AAPL"))
	defer model.Close()

	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	webhookSecret := randomHex(16)
	home := tb.TempDir()
	serveEnv := map[string]string{
		"LISTEN_ADDR":                      addr,
		"GITLAB_URL":                       gl.URL(),
		"GITLAB_TOKEN":                     sm.BotToken,
		"GITLAB_WEBHOOK_SECRET":            webhookSecret,
		"AGENTBOT_DB":                      filepath.Join(tb.TempDir(), "agentbot.db"),
		"AGENTBOT_WORKDIR":                 tb.TempDir(),
		"AGENTBOT_LOG_LEVEL":               "info",
		"AWS_REGION":                       "us-east-1",
		"AWS_ACCESS_KEY_ID":                "AKIDDEMODEMODEMODEMO",
		"AWS_SECRET_ACCESS_KEY":            "demo-secret-access-key",
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": model.URL(),
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_CONFIG_FILE":                  filepath.Join(home, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE":      filepath.Join(home, "no-credentials"),
		"FINANCE_MCP_URL":                  finance.URL,
		"AUTH_SERVER_TOKEN_URL":            finance.TokenURL,
		"MCP_CLIENT_ID":                    "agentbot-demo",
		"MCP_CLIENT_SECRET":                clientSecret,
	}
	logs := &lockedBuffer{}
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- Run(serveCtx, []string{"serve"}, func(k string) string { return serveEnv[k] }, io.Discard, logs)
	}()
	defer func() {
		stopServe()
		if serr := <-served; serr != nil && err == nil {
			err = fmt.Errorf("serve: %w", serr)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "\nagentbot serve's log:\n%s", logs.String())
		}
	}()
	base := "http://" + addr
	if err := waitHealthy(ctx, base, served); err != nil {
		return err
	}
	say("agentbot serve is listening on %s (queue: SQLite file, as by default)", base)

	d, err := webhooks.Load("note_issue")
	if err != nil {
		return err
	}
	say("alice comments on acme/research#7: %q — GitLab sends the Note Hook", "/agent analyze AAPL")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/webhooks/gitlab", bytes.NewReader(d.Body))
	if err != nil {
		return err
	}
	req.Header = d.Header.Clone()
	req.Header.Set("X-Gitlab-Token", webhookSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("post the webhook: %w", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	say("agentbot answered the webhook: %d %s", resp.StatusCode, strings.TrimSpace(string(answer)))
	if resp.StatusCode != http.StatusAccepted {
		return errors.New("the webhook was not accepted")
	}

	reply, err := waitForAnswer(ctx, gl, sm)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n━━━ The reply on issue #7 ━━━\n\n%s\n", stripMarker(reply))
	mrs := gl.MergeRequests(sm.Project.ID)
	var mr *gitlabtest.MergeRequest
	for i := range mrs {
		if strings.HasPrefix(mrs[i].SourceBranch, "agent/") {
			mr = &mrs[i]
		}
	}
	if mr == nil {
		return errors.New("no merge request was opened")
	}
	fmt.Fprintf(out, "\n━━━ Merge request !%d: %s (%s → %s) ━━━\n\n%s\n", mr.IID, mr.Title, mr.SourceBranch, mr.TargetBranch, mr.Description)
	fmt.Fprintf(out, "\n━━━ The diff ━━━\n\n%s", newFilesDiff(gl, sm.Project.Path, mr.TargetBranch, mr.SourceBranch))
	head := gl.Git().Log(sm.Project.Path, mr.SourceBranch)[0]
	fmt.Fprintf(out, "\n━━━ The commit ━━━\n\ncommit %s\nAuthor: %s <%s>\n\n%s\n", head.SHA, head.AuthorName, head.AuthorEmail, indent(head.Message))
	fmt.Fprintf(out, "\nThat is the whole loop: webhook → durable queue → fetch without checkout → model ⇄ tools (MCP + files) → commit → push → merge request → reply.\n"+
		"Run it for real with `agentbot serve` (see README.md).\n")
	return nil
}

// waitForAnswer polls the simulated GitLab until the bot's progress note
// holds the final answer.
func waitForAnswer(ctx context.Context, gl *gitlabtest.Server, sm gitlabtest.Sample) (string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range gl.Notes(sm.Project.ID, "issue", sm.Issue.IID) {
			if n.AuthorID == sm.Bot.ID && (strings.HasPrefix(n.Body, "✅") || strings.HasPrefix(n.Body, "❌")) {
				return n.Body, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", errors.New("no answer on the issue within 60s")
}

func waitHealthy(ctx context.Context, base string, served <-chan error) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-served:
			return fmt.Errorf("serve stopped: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("serve did not become healthy within 20s")
}

// newFilesDiff renders the branch's changes against the base as a unified
// diff (the demo's agent only adds files).
func newFilesDiff(gl *gitlabtest.Server, project, base, branch string) string {
	before, after := gl.Git().Files(project, base), gl.Git().Files(project, branch)
	var names []string
	for name, content := range after {
		if before[name] != content {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		lines := strings.Split(strings.TrimSuffix(after[name], "\n"), "\n")
		fmt.Fprintf(&b, "diff --git a/%[1]s b/%[1]s\nnew file mode 100644\n--- /dev/null\n+++ b/%[1]s\n@@ -0,0 +1,%[2]d @@\n", name, len(lines))
		for _, l := range lines {
			b.WriteString("+" + l + "\n")
		}
	}
	return b.String()
}

func stripMarker(s string) string {
	if i := strings.Index(s, "<!-- agentbot:"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// demoTB gives the simulated GitLab what it needs from a test outside one:
// temporary directories and cleanups; a fatal problem panics (and runDemo
// recovers it into an error).
type demoTB struct {
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

func newDemoTB() *demoTB { return &demoTB{} }

func (t *demoTB) Helper()                           {}
func (t *demoTB) Logf(string, ...any)               {}
func (t *demoTB) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *demoTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (t *demoTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *demoTB) TempDir() string {
	dir, err := os.MkdirTemp("", "agentbot-demo-")
	if err != nil {
		panic(fmt.Sprintf("temporary directory: %v", err))
	}
	t.mu.Lock()
	t.dirs = append(t.dirs, dir)
	t.mu.Unlock()
	return dir
}

func (t *demoTB) cleanup() {
	t.mu.Lock()
	cleanups, dirs := t.cleanups, t.dirs
	t.cleanups, t.dirs = nil, nil
	t.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
}
