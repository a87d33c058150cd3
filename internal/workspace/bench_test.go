package workspace_test

// The workspace benchmark: fetch, write one new file, commit and push against
// a synthetic repository from the shared make-repo.sh, served by git
// http-backend, with agentbot's workspace and, in the same run, with the git
// CLI as peers do it (clone --depth 1 --single-branch --no-tags, add, commit,
// push) on the machine's normal disk.
//
// agentbot runs twice: against the repository served as GitLab serves it
// (upload-pack allows filters, so the workspace fetches the commit and its
// trees and only the blobs it reads), and against a plain git http-backend
// (no filters: the whole tree at depth 1, the "nofilter" metrics). A go-git
// shallow fetch into in-memory storage is timed too ("memstore"), the
// alternative to the workspace's on-disk object store.
//
// Run from the repository root:
//
//	go test ./internal/workspace -run '^$' -bench FetchCommitPush -benchtime 5x
//	go test ./internal/workspace -run '^$' -bench FetchCommitPush -benchtime 2x -args -workspace.files=5000,50000
//
// Repositories are generated once (minutes at 50,000 files) and cached under
// -workspace.bench-cache (default: the user cache directory). The script is
// found at ../shared/bench/make-repo.sh beside the repository root, or
// -workspace.make-repo. The benchmark skips, saying why, without bash, git or
// the script.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/workspace"
)

var (
	benchMakeRepo = flag.String("workspace.make-repo", filepath.Join("..", "..", "..", "shared", "bench", "make-repo.sh"),
		"path of make-repo.sh (default: ../shared/bench/make-repo.sh from the repository root)")
	benchCache = flag.String("workspace.bench-cache", "", "directory caching generated repositories (default: <user cache dir>/agentbot-bench)")
	benchFiles = flag.String("workspace.files", "5000", "comma-separated file counts of the repositories to benchmark")
)

func BenchmarkFetchCommitPush(b *testing.B) {
	for _, tool := range []string{"bash", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("the workspace benchmark needs %s on PATH: %v", tool, err)
		}
	}
	script, err := filepath.Abs(*benchMakeRepo)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		b.Skipf("make-repo.sh not found at %s (give its path with -args -workspace.make-repo=PATH): %v", script, err)
	}
	cache := *benchCache
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			b.Skipf("no cache directory for the generated repositories (set -workspace.bench-cache): %v", err)
		}
		cache = filepath.Join(dir, "agentbot-bench")
	}
	for _, field := range strings.Split(*benchFiles, ",") {
		files, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || files <= 0 {
			b.Fatalf("-workspace.files: bad count %q", field)
		}
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) {
			benchRepo(b, script, cache, files)
		})
	}
}

// cachedRepo returns the packed bare repository of make-repo.sh for files,
// generating it once.
func cachedRepo(b *testing.B, script, cache string, files int) string {
	b.Helper()
	work := filepath.Join(cache, fmt.Sprintf("files-%d", files))
	bare, done := work+".git", work+".ok"
	if _, err := os.Stat(done); err == nil {
		return bare
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Logf("generating %s with make-repo.sh (once; minutes for large repositories)", bare)
	start := time.Now()
	cmd := exec.Command("bash", script, work, strconv.Itoa(files))
	cmd.Env = append(gitEnv(b.TempDir()), "GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.invalid",
		"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.invalid")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("make-repo.sh: %v\n%s", err, out)
	} else {
		b.Logf("%s(%s)", out, time.Since(start).Round(time.Second))
	}
	// Only the packed bare copy is served; the work tree is not needed.
	if err := os.RemoveAll(work); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return bare
}

func benchRepo(b *testing.B, script, cache string, files int) {
	cached := cachedRepo(b, script, cache, files)
	if isTmpfs(os.TempDir()) {
		b.Logf("note: %s is a tmpfs; the git CLI's checkout is cheaper here than on disk", os.TempDir())
	}
	// Serve copies (the pushes must not grow the cached repository): one as
	// GitLab serves it (filters allowed, as Gitaly configures upload-pack),
	// one as a plain git http-backend does.
	srv := gitlabtest.NewGitServer(b, token)
	var packed int64
	for _, name := range []string{"gitlab", "plain"} {
		bare := filepath.Join(b.TempDir(), name+".git")
		if out, err := exec.Command("cp", "-a", cached, bare).CombinedOutput(); err != nil {
			b.Fatalf("copy %s: %v: %s", cached, err, out)
		}
		if name == "gitlab" {
			cmd := exec.Command("git", "--git-dir="+bare, "config", "uploadpack.allowFilter", "true")
			cmd.Env = gitEnv(b.TempDir())
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("git config: %v: %s", err, out)
			}
		}
		srv.ServeRepoDir("bench/"+name, bare)
		packed = dirSize(b, filepath.Join(bare, "objects"))
	}
	gitlabURL, plainURL := srv.URL("bench/gitlab"), srv.URL("bench/plain")
	ctx := context.Background()
	home := b.TempDir()

	var agentTime, fullTime, cliTime, memTime time.Duration
	var agentPeak, fullPeak, memPeak uint64
	b.ResetTimer()
	for i := range b.N {
		order := []func(){
			func() { // (a) agentbot's workspace against GitLab-like serving
				d, peak := measure(func() { agentbotRun(b, ctx, gitlabURL, i) })
				agentTime += d
				agentPeak = max(agentPeak, peak)
			},
			func() { // (b) the git CLI, as peers do
				dir, err := os.MkdirTemp("", "gitcli-bench-")
				if err != nil {
					b.Fatal(err)
				}
				d, _ := measure(func() { cliRun(b, plainURL, home, dir, i) })
				cliTime += d
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
			},
			func() { // (a') agentbot's workspace against a server without filters
				d, peak := measure(func() { agentbotRun(b, ctx, plainURL, i) })
				fullTime += d
				fullPeak = max(fullPeak, peak)
			},
			func() { // (c) reference: go-git fetch into in-memory storage
				d, peak := measure(func() { memoryFetch(b, ctx, plainURL) })
				memTime += d
				memPeak = max(memPeak, peak)
			},
		}
		if i%2 == 1 { // alternate who goes first (warm caches)
			order[0], order[1] = order[1], order[0]
		}
		for _, run := range order {
			run()
		}
	}
	b.StopTimer()
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	const mib = 1 << 20
	b.ReportMetric(ms(agentTime), "agentbot-ms/op")
	b.ReportMetric(ms(cliTime), "gitcli-ms/op")
	b.ReportMetric(float64(agentTime)/float64(cliTime), "time-ratio")
	b.ReportMetric(float64(agentPeak)/mib, "agentbot-peak-heap-MiB")
	b.ReportMetric(float64(packed)/mib, "packed-MiB")
	b.ReportMetric(float64(agentPeak)/float64(packed), "peak-heap/packed")
	b.ReportMetric(ms(fullTime), "nofilter-ms/op")
	b.ReportMetric(float64(fullTime)/float64(cliTime), "nofilter-time-ratio")
	b.ReportMetric(float64(fullPeak)/float64(packed), "nofilter-peak-heap/packed")
	b.ReportMetric(ms(memTime), "memstore-fetch-ms/op")
	b.ReportMetric(float64(memPeak)/float64(packed), "memstore-peak-heap/packed")
}

// measure times f and samples the Go heap while it runs; it returns the time
// and the peak heap above the level before f.
func measure(f func()) (time.Duration, uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	before := read()
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		peak := before
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-stop:
				done <- max(peak, read())
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	f()
	d := time.Since(start)
	close(stop)
	return d, <-done - before
}

func agentbotRun(b *testing.B, ctx context.Context, url string, i int) {
	ws, err := workspace.Open(ctx, workspace.Options{
		RemoteURL:  url,
		Token:      token,
		BaseBranch: "main",
		Branch:     fmt.Sprintf("agent/bench-%d-%d", os.Getpid(), i),
		Author:     workspace.Signature{Name: "agentbot", Email: botEmail},
		RunID:      fmt.Sprintf("bench-%d", i),
		Policy:     allowOutput,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	if err := ws.FS().WriteFile("output/report.md", []byte("# report\n")); err != nil {
		b.Fatal(err)
	}
	if _, err := ws.Commit(ctx, workspace.CommitInput{Message: "agent: bench"}); err != nil {
		b.Fatal(err)
	}
	if err := ws.Push(ctx); err != nil {
		b.Fatal(err)
	}
}

// cliRun is what peers do, in dir (removed by the caller, untimed).
func cliRun(b *testing.B, url, home, dir string, i int) {
	auth := strings.Replace(url, "http://", "http://oauth2:"+token+"@", 1)
	work := filepath.Join(dir, "w")
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if _, err := os.Stat(work); err == nil {
			cmd.Dir = work
		}
		cmd.Env = append(gitEnv(home), "GIT_AUTHOR_NAME=peer", "GIT_AUTHOR_EMAIL=peer@example.invalid",
			"GIT_COMMITTER_NAME=peer", "GIT_COMMITTER_EMAIL=peer@example.invalid")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %s: %v\n%s", args[0], err, out)
		}
	}
	git("clone", "--quiet", "--depth", "1", "--single-branch", "--no-tags", auth, "w")
	if err := os.MkdirAll(filepath.Join(work, "output"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "output", "report.md"), []byte("# report\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	git("add", "output/report.md")
	git("commit", "--quiet", "-m", "peer: bench")
	git("push", "--quiet", "origin", fmt.Sprintf("HEAD:refs/heads/cli/bench-%d-%d", os.Getpid(), i))
}

// memoryFetch is go-git's shallow clone into in-memory storage (no
// worktree), the alternative to the workspace's on-disk object store.
func memoryFetch(b *testing.B, ctx context.Context, url string) {
	_, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{
		URL:          url,
		Auth:         &githttp.BasicAuth{Username: "oauth2", Password: token},
		Depth:        1,
		SingleBranch: true,
		Tags:         git.NoTags,
		NoCheckout:   true,
	})
	if err != nil {
		b.Fatal(err)
	}
}

// gitEnv isolates the git CLI from the machine's configuration.
func gitEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_TERMINAL_PROMPT=0")
}

func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
