package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// LogLevel is AGENTBOT_LOG_LEVEL (debug, info, warn, error; default info).
func LogLevel(get Getenv) string {
	return newReader(get).str("AGENTBOT_LOG_LEVEL", "info")
}

// Server is what `agentbot serve` needs beyond the agent's own settings.
type Server struct {
	ListenAddr    string        // LISTEN_ADDR
	WebhookSecret string        // GITLAB_WEBHOOK_SECRET
	SigningToken  string        // GITLAB_WEBHOOK_SIGNING_TOKEN (whsec_…)
	MaxBody       int64         // AGENTBOT_MAX_BODY
	DrainTimeout  time.Duration // AGENTBOT_DRAIN_TIMEOUT
	Workers       int           // AGENTBOT_WORKERS
	JobTimeout    time.Duration // AGENTBOT_JOB_TIMEOUT
	RescueAfter   time.Duration // AGENTBOT_RESCUE_AFTER: when a run still "running" is taken for killed; default JobTimeout + 5m
	MaxAttempts   int           // AGENTBOT_MAX_ATTEMPTS
	MinAccess     int           // AGENTBOT_MIN_ACCESS_LEVEL, as GitLab's number
	CommandPrefix string        // AGENTBOT_COMMAND_PREFIX
	Executor      string        // AGENTBOT_EXECUTOR: local or pipeline
	ProjectRuns   int           // AGENTBOT_PROJECT_RUNS: runs at once in one project (0: no cap)
	UserRuns      int           // AGENTBOT_USER_RUNS_PER_HOUR: one person's agent runs an hour (0: no limit)
	GitName       string        // AGENTBOT_GIT_NAME: commit author; default the bot's name
	GitEmail      string        // AGENTBOT_GIT_EMAIL: default the bot's GitLab no-reply address
	WorkDir       string        // AGENTBOT_WORKDIR: where workspaces are made; default the system's temp dir
	MRDraft       bool          // AGENTBOT_MR_DRAFT
	MRLabels      []string      // AGENTBOT_MR_LABELS
	// ConfidentialMR is AGENTBOT_ALLOW_CONFIDENTIAL_MR: open merge requests
	// for commands on confidential issues.
	ConfidentialMR bool
	GitLab         GitLab
	Queue          Queue
}

// GitLab is how agentbot reaches GitLab.
type GitLab struct {
	URL   string // GITLAB_URL
	Token string // GITLAB_TOKEN
}

// Queue is where jobs are kept.
type Queue struct {
	SQLitePath  string // AGENTBOT_DB
	DatabaseURL string // DATABASE_URL; PostgreSQL when set
}

// LoadServer reads the settings of `agentbot serve`.
func LoadServer(get Getenv) (Server, error) {
	r := newReader(get)
	s := Server{
		ListenAddr:     r.str("LISTEN_ADDR", ":8080"),
		WebhookSecret:  r.str("GITLAB_WEBHOOK_SECRET", ""),
		SigningToken:   r.str("GITLAB_WEBHOOK_SIGNING_TOKEN", ""),
		MaxBody:        r.bytes("AGENTBOT_MAX_BODY", 5<<20),
		DrainTimeout:   r.duration("AGENTBOT_DRAIN_TIMEOUT", 30*time.Second),
		Workers:        r.int("AGENTBOT_WORKERS", 4, 0),
		JobTimeout:     r.duration("AGENTBOT_JOB_TIMEOUT", 45*time.Minute),
		MaxAttempts:    r.int("AGENTBOT_MAX_ATTEMPTS", 5, 1),
		MinAccess:      r.accessLevel("AGENTBOT_MIN_ACCESS_LEVEL", 30),
		CommandPrefix:  r.str("AGENTBOT_COMMAND_PREFIX", "/agent"),
		Executor:       r.str("AGENTBOT_EXECUTOR", "local"),
		ProjectRuns:    r.int("AGENTBOT_PROJECT_RUNS", 0, 0),
		UserRuns:       r.int("AGENTBOT_USER_RUNS_PER_HOUR", 60, 0),
		GitName:        r.str("AGENTBOT_GIT_NAME", ""),
		GitEmail:       r.str("AGENTBOT_GIT_EMAIL", ""),
		WorkDir:        r.str("AGENTBOT_WORKDIR", ""),
		MRDraft:        r.bool("AGENTBOT_MR_DRAFT", false),
		MRLabels:       r.list("AGENTBOT_MR_LABELS", []string{"agentbot"}),
		ConfidentialMR: r.bool("AGENTBOT_ALLOW_CONFIDENTIAL_MR", false),
		GitLab:         r.gitlab(),
		Queue:          r.queue(),
	}
	s.RescueAfter = r.duration("AGENTBOT_RESCUE_AFTER", s.JobTimeout+5*time.Minute)
	if s.RescueAfter < s.JobTimeout {
		r.problem("AGENTBOT_RESCUE_AFTER=%s: want at least AGENTBOT_JOB_TIMEOUT (%s), or a run still working would be started a second time",
			s.RescueAfter, s.JobTimeout)
	}
	if s.WebhookSecret == "" && s.SigningToken == "" {
		r.problem("GITLAB_WEBHOOK_SECRET or GITLAB_WEBHOOK_SIGNING_TOKEN is required: " +
			"set GITLAB_WEBHOOK_SECRET to the webhook's \"Secret token\" in GitLab " +
			"(Settings > Webhooks), or GITLAB_WEBHOOK_SIGNING_TOKEN to its signing token (whsec_…)")
	}
	if s.SigningToken != "" {
		if _, err := SigningKey(s.SigningToken); err != nil {
			r.problem("GITLAB_WEBHOOK_SIGNING_TOKEN: %v", err)
		}
	}
	if s.Executor != "local" && s.Executor != "pipeline" {
		r.problem("AGENTBOT_EXECUTOR=%q: want local (the agent runs in this process) or pipeline (a CI pipeline runs it)", s.Executor)
	}
	if s.GitEmail != "" && !strings.Contains(s.GitEmail, "@") {
		r.problem("AGENTBOT_GIT_EMAIL=%q: want an email address", s.GitEmail)
	}
	if !strings.HasPrefix(s.CommandPrefix, "/") || strings.ContainsAny(s.CommandPrefix, " \t\n") {
		r.problem("AGENTBOT_COMMAND_PREFIX=%q: want a slash command without spaces, such as /agent", s.CommandPrefix)
	}
	return s, r.err()
}

// LoadQueue reads only the queue's settings (`agentbot migrate`).
func LoadQueue(get Getenv) (Queue, error) {
	r := newReader(get)
	q := r.queue()
	return q, r.err()
}

func (r *reader) queue() Queue {
	q := Queue{
		SQLitePath:  r.str("AGENTBOT_DB", "agentbot.db"),
		DatabaseURL: r.str("DATABASE_URL", ""),
	}
	if q.DatabaseURL != "" {
		u, err := url.Parse(q.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			r.problem("DATABASE_URL: want a PostgreSQL URL such as postgres://user@host:5432/agentbot")
		}
	}
	return q
}

func (r *reader) gitlab() GitLab {
	g := GitLab{
		URL:   strings.TrimRight(r.str("GITLAB_URL", "https://gitlab.com"), "/"),
		Token: r.required("GITLAB_TOKEN", "a project or group access token with scopes api and write_repository"),
	}
	if u, err := url.Parse(g.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		r.problem("GITLAB_URL=%q: want the instance's base URL, such as https://gitlab.example.com", g.URL)
	}
	return g
}

// AccessLevels are GitLab's role names and numbers.
var accessLevels = map[string]int{
	"guest": 10, "planner": 15, "reporter": 20, "developer": 30, "maintainer": 40, "owner": 50,
}

// AccessLevelName is the role name for a GitLab access level number.
func AccessLevelName(level int) string {
	best := "none"
	for name, n := range accessLevels {
		if n == level {
			return name
		}
		if n < level && accessLevels[best] < n {
			best = name
		}
	}
	return best
}

func (r *reader) accessLevel(name string, def int) int {
	s := strings.ToLower(r.str(name, ""))
	if s == "" {
		return def
	}
	if n, ok := accessLevels[s]; ok {
		return n
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return n
	}
	r.problem("%s=%q: want guest, reporter, developer, maintainer or owner", name, s)
	return def
}

// SigningKey decodes a GitLab webhook signing token ("whsec_" + base64).
func SigningKey(token string) ([]byte, error) {
	b64, ok := strings.CutPrefix(token, "whsec_")
	if !ok {
		return nil, fmt.Errorf("want the token as GitLab shows it, starting with whsec_")
	}
	key, err := decodeBase64(b64)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("the part after whsec_ is not valid base64")
	}
	return key, nil
}
