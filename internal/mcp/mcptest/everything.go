package mcptest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EverythingEnv names the variable that points at an installed
// @modelcontextprotocol/server-everything (its mcp-server-everything
// executable, e.g. node_modules/.bin/mcp-server-everything).
const EverythingEnv = "AGENTBOT_TEST_SERVER_EVERYTHING"

// StartEverything starts the reference MCP server, server-everything, over
// streamable HTTP on a free loopback port and returns its MCP endpoint. It
// skips the test when EverythingEnv is unset, unless CI is set, where that
// is a failure: CI must install it. getenv is os.Getenv.
func StartEverything(t testing.TB, getenv func(string) string) string {
	t.Helper()
	bin := getenv(EverythingEnv)
	if bin == "" {
		if getenv("CI") != "" {
			t.Fatalf("%s is not set, and CI must run this test: install the server with npm and point %s at node_modules/.bin/mcp-server-everything", EverythingEnv, EverythingEnv)
		}
		t.Skipf("%s is not set: install @modelcontextprotocol/server-everything with npm and set it to node_modules/.bin/mcp-server-everything to run this test", EverythingEnv)
	}
	port := freePort(t)
	cmd := exec.Command(bin, "streamableHttp")
	cmd.Env = []string{"PORT=" + strconv.Itoa(port), "PATH=" + getenv("PATH"), "HOME=" + t.TempDir()}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// The server says on stderr when it listens; wait for that line.
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var seen []string
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(strings.ToLower(line), "listening on port") {
				ready <- nil
				_, _ = io.Copy(io.Discard, stderr)
				return
			}
			seen = append(seen, line)
		}
		ready <- fmt.Errorf("server-everything exited before listening: %s", strings.Join(seen, "\n"))
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server-everything did not start listening within 30s")
	}
	return fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
