package cli_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
	"gitlab.com/agentbot/agentbot/internal/model/bedrock/bedrocktest"
)

// BenchmarkIdleServeRSS builds agentbot, starts `agentbot serve` as its own
// process against the fake GitLab and Bedrock, lets it idle, and reports its
// resident memory (VmRSS) and, as the baseline, that of an idle `sleep`.
//
//	go test -run '^$' -bench BenchmarkIdleServeRSS -benchtime 1x ./internal/cli
func BenchmarkIdleServeRSS(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc (Linux)")
	}
	bin := filepath.Join(b.TempDir(), "agentbot")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/agentbot").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	gl := gitlabtest.New(b)
	sm := gl.AddSample()
	model := bedrocktest.New(b)
	for range b.N {
		addr := freeAddrTB(b)
		cmd := exec.Command(bin, "serve")
		cmd.Env = []string{
			"LISTEN_ADDR=" + addr, "GITLAB_URL=" + gl.URL(), "GITLAB_TOKEN=" + sm.BotToken,
			"GITLAB_WEBHOOK_SECRET=" + secret, "AGENTBOT_DB=" + filepath.Join(b.TempDir(), "a.db"),
			"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDEXAMPLETESTKEY01", "AWS_SECRET_ACCESS_KEY=x",
			"AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + model.URL(), "AWS_EC2_METADATA_DISABLED=true",
			"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "HOME=" + b.TempDir(),
			"AGENTBOT_LOG_LEVEL=warn",
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				b.Fatal("serve not ready")
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(3 * time.Second) // idle: River's maintenance runs, nothing else
		rss := vmRSS(b, cmd.Process.Pid)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()

		sleep := exec.CommandContext(context.Background(), "sleep", "5")
		sleep.Start()
		time.Sleep(200 * time.Millisecond)
		base := vmRSS(b, sleep.Process.Pid)
		sleep.Process.Kill()
		sleep.Wait()
		b.ReportMetric(float64(rss)/1024, "serve-rss-MB")
		b.ReportMetric(float64(base)/1024, "sleep-rss-MB")
	}
}

func vmRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func freeAddrTB(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
