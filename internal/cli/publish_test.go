package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/cli"
	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// ciCheckout is what a CI job's working directory holds: the project's files
// at the default branch.
func ciCheckout(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range gitlabtest.SampleFiles {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ciEnv is the environment of a CI job of project 42 against the fakes:
// GitLab's predefined variables, the bot's project access token, and
// Bedrock at the fake.
func ciEnv(t *testing.T, gl *gitlabtest.Server, sm gitlabtest.Sample, model *bedrocktest.Server) map[string]string {
	env := fakeEnv(t, model)
	for k, v := range map[string]string{
		"CI":                "true",
		"GITLAB_CI":         "true",
		"CI_PROJECT_ID":     "42",
		"CI_PROJECT_PATH":   sm.Project.Path,
		"CI_SERVER_URL":     gl.URL(),
		"CI_DEFAULT_BRANCH": "main",
		"CI_JOB_ID":         "5001",
		"CI_JOB_URL":        gl.URL() + "/acme/research/-/jobs/5001",
		"CI_JOB_TOKEN":      "job-token-that-cannot-push",
		"GITLAB_USER_ID":    "7",
		"GITLAB_USER_LOGIN": "alice",
		"GITLAB_TOKEN":      sm.BotToken,
	} {
		env[k] = v
	}
	return env
}

// quoteThenReport calls the finance server's quote tool, writes a report
// with its price, and answers.
func quoteThenReport() []bedrocktest.Turn {
	return []bedrocktest.Turn{
		{Text: "Fetching the quote.", ToolUses: []bedrocktest.ToolUse{{ID: "tooluse_quote", Name: "get_quote", Input: map[string]any{"symbol": "AAPL"}}},
			Usage: bedrocktest.Usage{Input: 900, Output: 60}},
		bedrocktest.Call("file_write", map[string]any{"path": "output/AAPL.md", "content": "# AAPL\n\nLast price 205.17 USD (finance MCP server).\n"}),
		bedrocktest.Reply("Wrote output/AAPL.md with the latest price, 205.17 USD."),
	}
}

func TestRunPublishOpensMergeRequestAndReplies(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.New(t, quoteThenReport()...)
	finance := financeServer(t)
	env := ciEnv(t, gl, sm, model)
	env["FINANCE_MCP_URL"] = finance.URL
	env["AUTH_SERVER_TOKEN_URL"] = finance.TokenURL
	env["MCP_CLIENT_ID"] = clientID
	env["MCP_CLIENT_SECRET"] = clientSecret
	dir := ciCheckout(t)

	stdout, stderr, err := runCLI(t, env, "run", "--dir", dir, "--publish", "--reply-to", "issue:7", "analyze", "AAPL")
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "205.17") {
		t.Errorf("stdout lacks the answer:\n%s", stdout)
	}
	// The MCP tool reached the model, after the file tools.
	reqs := model.Requests()
	if got := strings.Join(reqs[0].ToolNames(), ","); got != "file_read,file_write,editor,list_files,get_fundamentals,get_price_history,get_quote" {
		t.Errorf("tools %s", got)
	}
	if res := reqs[1].ToolResults()["tooluse_quote"]; !strings.Contains(res, "205.17") {
		t.Errorf("get_quote result %q", res)
	}
	// The files stay in the checkout, for the job's artifacts.
	if b, err := os.ReadFile(filepath.Join(dir, "output", "AAPL.md")); err != nil || !strings.Contains(string(b), "205.17") {
		t.Errorf("output/AAPL.md in the checkout: %q, %v", b, err)
	}

	const branch = "agent/issue-7-analyze-aapl"
	files := gl.Git().Files("acme/research", branch)
	if !strings.Contains(files["output/AAPL.md"], "205.17") || files["README.md"] != gitlabtest.SampleFiles["README.md"] {
		t.Fatalf("branch %s files: %v", branch, files)
	}
	head := gl.Git().Log("acme/research", branch)[0]
	if strings.Join(head.Files, ",") != "output/AAPL.md" || head.AuthorName != "agentbot" ||
		!strings.Contains(head.Message, "Co-authored-by: Alice Analyst <alice@acme.test>") ||
		!strings.Contains(head.Message, "Agentbot-Run: ci-job-5001") {
		t.Fatalf("commit %s <%s> files %v:\n%s", head.AuthorName, head.AuthorEmail, head.Files, head.Message)
	}
	mrs := gl.MergeRequests(42)
	if len(mrs) != 2 {
		t.Fatalf("merge requests: %+v", mrs)
	}
	mr := mrs[1]
	if mr.SourceBranch != branch || mr.TargetBranch != "main" || !strings.Contains(mr.Description, "#7") ||
		!strings.Contains(mr.Description, "205.17") || strings.Join(mr.Labels, ",") != "agentbot" {
		t.Fatalf("MR %+v", mr)
	}
	notes := botNotes(gl, sm, "issue", 7)
	if len(notes) != 1 || !strings.HasPrefix(notes[0].Body, "✅ Opened merge request !"+itoa(mr.IID)) ||
		!strings.Contains(notes[0].Body, "`output/AAPL.md` on `"+branch+"`") || !strings.Contains(notes[0].Body, "/-/jobs/5001") {
		t.Fatalf("notes: %+v", notes)
	}
	for _, n := range gl.Notes(42, "issue", 7) {
		if strings.Contains(n.Body, sm.BotToken) || strings.Contains(n.Body, clientSecret) {
			t.Fatalf("a note leaks a secret: %s", n.Body)
		}
	}

	// The same job again (a retry): the same branch, MR and note, found
	// rather than made again.
	model2 := bedrocktest.New(t, quoteThenReport()...)
	env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] = model2.URL()
	if _, stderr, err := runCLI(t, env, "run", "--dir", ciCheckout(t), "--publish", "--reply-to", "issue:7", "analyze", "AAPL"); err != nil {
		t.Fatalf("retry: %v\n%s", err, stderr)
	}
	if n := len(gl.MergeRequests(42)); n != 2 {
		t.Errorf("%d merge requests after the retry", n)
	}
	if n := len(botNotes(gl, sm, "issue", 7)); n != 1 {
		t.Errorf("%d notes after the retry", n)
	}
	if n := len(gl.Git().Log("acme/research", branch)); n != 2 { // the base commit and ours
		t.Errorf("%d commits on the branch after the retry", n)
	}
}

func TestRunFromEnvOnMergeRequestOpensFollowUp(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.New(t, bedrocktest.AnalyzeScript("MSFT")...)
	env := ciEnv(t, gl, sm, model)
	env["AGENTBOT_COMMAND"] = "analyze MSFT"
	env["AGENTBOT_REPLY_TO"] = "mr:3"
	env["AGENTBOT_RUN_ID"] = "77"
	env["AGENTBOT_REQUESTED_BY"] = "7"
	env["GITLAB_USER_ID"] = "99" // the pipeline executor's pipelines are the bot's

	stdout, stderr, err := runCLI(t, env, "run", "--dir", ciCheckout(t), "--from-env", "--publish", "--json")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	for _, want := range []string{`"merge_request": "`, `"branch": "agent/mr-3-analyze-msft"`, `"note": "`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--json lacks %s:\n%s", want, stdout)
		}
	}
	mrs := gl.MergeRequests(42)
	if len(mrs) != 2 || mrs[1].SourceBranch != "agent/mr-3-analyze-msft" || mrs[1].TargetBranch != "feature/q3" {
		t.Fatalf("merge requests: %+v", mrs)
	}
	head := gl.Git().Log("acme/research", "agent/mr-3-analyze-msft")[0]
	if !strings.Contains(head.Message, "Agentbot-Run: 77") || !strings.Contains(head.Message, "Co-authored-by: Alice Analyst") {
		t.Fatalf("commit message:\n%s", head.Message)
	}
	notes := botNotes(gl, sm, "mr", 3)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "!"+itoa(mrs[1].IID)) || !strings.Contains(notes[0].Body, "agentbot:run-77-ci-result") {
		t.Fatalf("notes on !3: %+v", notes)
	}
}

func TestRunReplyWithoutPublishAndAgentWritingNothing(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.New(t, bedrocktest.Reply("AAPL looks fairly valued."))
	env := ciEnv(t, gl, sm, model)
	if _, stderr, err := runCLI(t, env, "run", "--dir", ciCheckout(t), "--publish", "--reply-to", "issue:7", "--prompt", "is AAPL cheap?"); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if n := len(gl.MergeRequests(42)); n != 1 {
		t.Errorf("%d merge requests, want only !3", n)
	}
	for b := range gl.Git().Branches("acme/research") {
		if strings.HasPrefix(b, "agent/") {
			t.Errorf("branch %s pushed for an agent that wrote nothing", b)
		}
	}
	notes := botNotes(gl, sm, "issue", 7)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "wrote no files") || !strings.Contains(notes[0].Body, "> AAPL looks fairly valued.") {
		t.Fatalf("notes: %+v", notes)
	}
}

func TestRunPublishFailureRepliesAndExitsOne(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.NewFunc(t, func(*bedrocktest.Request) bedrocktest.Turn {
		return bedrocktest.Call("list_files", map[string]any{})
	})
	env := ciEnv(t, gl, sm, model)
	env["AGENTBOT_MAX_TURNS"] = "2"
	_, _, err := runCLI(t, env, "run", "--dir", ciCheckout(t), "--publish", "--reply-to", "issue:7", "analyze", "AAPL")
	if cli.ExitCode(err) != 1 {
		t.Fatalf("exit %d: %v", cli.ExitCode(err), err)
	}
	notes := botNotes(gl, sm, "issue", 7)
	if len(notes) != 1 || !strings.HasPrefix(notes[0].Body, "❌ `analyze AAPL` failed on the CI runner") || !strings.Contains(notes[0].Body, "/-/jobs/5001") {
		t.Fatalf("notes: %+v", notes)
	}
	if n := len(gl.MergeRequests(42)); n != 1 {
		t.Errorf("%d merge requests", n)
	}
}

func TestRunPublishNeedsAProjectAccessToken(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.New(t)
	tests := []struct {
		name    string
		env     func(map[string]string)
		args    []string
		mention []string
	}{
		{name: "job token only", env: func(m map[string]string) { delete(m, "GITLAB_TOKEN") },
			mention: []string{"GITLAB_TOKEN is required for --publish", "write_repository", "CI_JOB_TOKEN cannot push"}},
		{name: "no project", env: func(m map[string]string) { delete(m, "CI_PROJECT_ID") }, mention: []string{"CI_PROJECT_ID", "AGENTBOT_PROJECT_ID"}},
		{name: "bad reply target", args: []string{"--reply-to", "epic:4"}, mention: []string{"--reply-to", "issue:IID"}},
		{name: "bad env reply target", env: func(m map[string]string) { m["AGENTBOT_REPLY_TO"] = "issue:x" }, mention: []string{"AGENTBOT_REPLY_TO"}},
		{name: "from env without command", args: []string{"--from-env"}, mention: []string{"AGENTBOT_COMMAND"}},
		{name: "from env and prompt", args: []string{"--from-env", "--prompt", "x"}, mention: []string{"not both"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := ciEnv(t, gl, sm, model)
			if tt.env != nil {
				tt.env(env)
			}
			args := append([]string{"run", "--dir", ciCheckout(t), "--publish"}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--from-env") {
				args = append(args, "analyze", "AAPL")
			}
			_, _, err := runCLI(t, env, args...)
			if cli.ExitCode(err) != 2 {
				t.Fatalf("exit %d: %v", cli.ExitCode(err), err)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error does not mention %q: %v", m, err)
				}
			}
		})
	}
	if n := len(model.Requests()); n != 0 {
		t.Errorf("the model was called %d times before GitLab was checked", n)
	}
}

func TestRunPublishHoldsBackOnAConfidentialIssue(t *testing.T) {
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.New(t, bedrocktest.AnalyzeScript("TSLA")...)
	env := ciEnv(t, gl, sm, model)
	dir := ciCheckout(t)
	if _, stderr, err := runCLI(t, env, "run", "--dir", dir, "--publish", "--reply-to", "issue:8", "analyze", "TSLA"); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if n := len(gl.MergeRequests(42)); n != 1 {
		t.Errorf("%d merge requests for a confidential issue", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "output", "TSLA.md")); err != nil {
		t.Errorf("the report is not in the checkout for the artifacts: %v", err)
	}
	notes := botNotes(gl, sm, "issue", 8)
	if len(notes) != 1 || !notes[0].Internal || !strings.Contains(notes[0].Body, "confidential") {
		t.Fatalf("notes on #8: %+v", notes)
	}
}
