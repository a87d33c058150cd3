package cli_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/cli"
	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// gitlabCILocal is the gitlab-ci-local executable (.ci/install-test-tools
// installs it, .ci/run sets the variable). Without it the component test is
// skipped, except in CI, where it fails.
func gitlabCILocal(t *testing.T) string {
	t.Helper()
	path := os.Getenv("AGENTBOT_TEST_GITLAB_CI_LOCAL")
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("AGENTBOT_TEST_GITLAB_CI_LOCAL is not set in CI: .ci/run must install gitlab-ci-local (.ci/install-test-tools) and export it")
		}
		t.Skip("AGENTBOT_TEST_GITLAB_CI_LOCAL is not set: run .ci/install-test-tools and export AGENTBOT_TEST_GITLAB_CI_LOCAL=$PWD/.ci/node_modules/.bin/gitlab-ci-local")
	}
	return path
}

// TestMain lets this test binary stand in for the agentbot binary: run
// under the name agentbot (agentbotOnPath's symlink), it is cmd/agentbot's
// main. The component test runs it so, which spares it a second build of the
// whole module on a busy machine.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "agentbot" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "agentbot:", err)
		}
		os.Exit(cli.ExitCode(err))
	}
	os.Exit(m.Run())
}

// agentbotOnPath returns a directory holding an agentbot executable (this
// test binary, see TestMain), to put first on PATH.
func agentbotOnPath(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(self, filepath.Join(bin, "agentbot")); err != nil {
		t.Fatal(err)
	}
	return bin
}

// componentProject is a git repository holding the sample project's files
// and a .gitlab-ci.yml that includes this repository's component, as a
// project using it would (a local include with inputs: gitlab-ci-local
// resolves `component:` only from a remote, or from this very project at
// its current commit).
func componentProject(t *testing.T) string {
	t.Helper()
	dir := ciCheckout(t)
	component, err := os.ReadFile(filepath.Join("..", "..", "templates", "agent.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "templates", "agent.yml"), component, 0o644); err != nil {
		t.Fatal(err)
	}
	ci := `include:
  - local: templates/agent.yml
    inputs:
      region: us-east-1
      publish: true
      artifacts_expire_in: 1 day

test:
  script: [echo ok]
`
	if err := os.WriteFile(filepath.Join(dir, ".gitlab-ci.yml"), []byte(ci), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "-A"},
		{"-c", "user.name=alice", "-c", "user.email=alice@acme.test", "commit", "-q", "-m", "research project"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// TestComponentJobUnderGitlabCILocal runs the component's job with
// gitlab-ci-local's shell executor, as serve's pipeline executor would start
// it, against the fakes: agentbot on PATH, Bedrock at bedrocktest,
// GitLab at gitlabtest. The job keeps output/ as artifacts and publishes
// the branch and the merge request.
func TestComponentJobUnderGitlabCILocal(t *testing.T) {
	gcl := gitlabCILocal(t)
	bin := agentbotOnPath(t)
	project := componentProject(t)
	gl := gitlabtest.New(t)
	sm := gl.AddSample()
	model := bedrocktest.New(t, bedrocktest.AnalyzeScript("AAPL")...)

	vars := map[string]string{
		// What the pipeline executor sets.
		"AGENTBOT_COMMAND":      "analyze AAPL",
		"AGENTBOT_REPLY_TO":     "issue:7",
		"AGENTBOT_RUN_ID":       "4242",
		"AGENTBOT_REQUESTED_BY": "7",
		// GitLab's predefined variables, pointed at the fake.
		"CI_PROJECT_ID": "42",
		"CI_SERVER_URL": gl.URL(),
		// Masked CI/CD variables of the project.
		"GITLAB_TOKEN":                     sm.BotToken,
		"AWS_ACCESS_KEY_ID":                "AKIDEXAMPLETESTKEY01",
		"AWS_SECRET_ACCESS_KEY":            "test-secret-access-key-value",
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": model.URL(),
	}
	args := []string{"--force-shell-executor", "--shell-isolation", "--no-color",
		"--ignore-predefined-vars", "CI_PROJECT_ID,CI_SERVER_URL"}
	for k, v := range vars {
		args = append(args, "--variable", k+"="+v)
	}
	args = append(args, "agentbot")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gcl, args...)
	cmd.Dir = project
	home := t.TempDir()
	// The job inherits this environment: nothing of the machine's AWS or
	// GitLab settings.
	cmd.Env = []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"GIT_CONFIG_NOSYSTEM=1",
	}
	out, err := cmd.CombinedOutput()
	log := string(out)
	if err != nil || !strings.Contains(log, "PASS") {
		t.Fatalf("gitlab-ci-local: %v\n%s", err, log)
	}
	for _, want := range []string{"agentbot dev", "→ file_write", "opened merge request !"} {
		if !strings.Contains(log, want) {
			t.Errorf("the job's log lacks %q:\n%s", want, log)
		}
	}
	// The job's own output (gitlab-ci-local prefixes it with the job's
	// name) never holds the token.
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "agentbot ") && strings.Contains(line, sm.BotToken) {
			t.Errorf("the job printed the token: %s", line)
		}
	}

	// The artifacts: output/ as the job left it.
	report, err := os.ReadFile(filepath.Join(project, ".gitlab-ci-local", "artifacts", "agentbot", "output", "AAPL.md"))
	if err != nil || !strings.HasPrefix(string(report), "# AAPL") {
		t.Fatalf("artifact output/AAPL.md: %q, %v", report, err)
	}
	// The branch, the merge request and the answer on #7.
	const branch = "agent/issue-7-analyze-aapl"
	if got := gl.Git().Files("acme/research", branch)["output/AAPL.md"]; got != string(report) {
		t.Fatalf("output/AAPL.md on %s differs from the artifact", branch)
	}
	mrs := gl.MergeRequests(42)
	if len(mrs) != 2 || mrs[1].SourceBranch != branch {
		t.Fatalf("merge requests: %+v", mrs)
	}
	notes := botNotes(gl, sm, "issue", 7)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "!"+itoa(mrs[1].IID)) {
		t.Fatalf("notes: %+v", notes)
	}
}
