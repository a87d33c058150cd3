// Package cli holds agentbot's sub-commands. It wires the other packages
// together and owns nothing else.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"gitlab.com/agentbot/agentbot/internal/config"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=…".
var Version = "dev"

// env is what every sub-command gets: the process's environment, passed in so
// that tests run the whole program in-process.
type env struct {
	getenv config.Getenv
	stdout io.Writer
	stderr io.Writer
}

// logger builds the process's one logger: JSON on stderr, level from
// AGENTBOT_LOG_LEVEL.
func (e *env) logger() *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(config.LogLevel(e.getenv)))
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

type subcommand struct {
	name  string
	usage string
	run   func(ctx context.Context, e *env, args []string) error
}

func commands() []subcommand {
	return []subcommand{
		{"serve", "run the webhook server and its workers", runServe},
		{"run", "run the agent once in the current directory (CI jobs)", runRun},
		{"demo", "show a whole run offline: simulated GitLab, scripted model", runDemo},
		{"doctor", "check every link: GitLab, AWS, secret, OAuth, MCP, model", runDoctor},
		{"mcp", "list or call the MCP server's tools (mcp tools | mcp call TOOL [JSON])", runMCP},
		{"migrate", "apply the queue database's migrations and exit", runMigrate},
		{"version", "print the version", runVersion},
	}
}

// Run is the whole program: main calls it with the process's arguments and
// environment, tests call it with their own.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage())
		if len(args) == 0 {
			return usageError("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	return usageError(fmt.Sprintf("unknown command %q\n%s", args[0], usage()))
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: agentbot <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.usage)
	}
	b.WriteString("\nSettings come from the environment; see docs/configuration.md.\n")
	return b.String()
}

func runVersion(_ context.Context, e *env, _ []string) error {
	fmt.Fprintln(e.stdout, "agentbot", Version)
	return nil
}

// UsageError is a bad command line or bad configuration: exit code 2.
type UsageError struct{ msg string }

func (u *UsageError) Error() string { return u.msg }

func usageError(msg string) error { return &UsageError{msg: msg} }

// ExitCode maps Run's error to the process's exit status: 0 on success, 2 for
// a usage or configuration error, 1 for anything else (the agent failed or hit
// a limit, a dependency failed).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var u *UsageError
	var p config.Problems
	if errors.As(err, &u) || errors.As(err, &p) {
		return 2
	}
	return 1
}
