package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v5"

	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/config"
	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/metrics"
	"gitlab.com/agentbot/agentbot/internal/queue"
	"gitlab.com/agentbot/agentbot/internal/redact"
	"gitlab.com/agentbot/agentbot/internal/repoconfig"
	"gitlab.com/agentbot/agentbot/internal/run"
	"gitlab.com/agentbot/agentbot/internal/webhook"
	"gitlab.com/agentbot/agentbot/internal/workspace"
)

// runServe is `agentbot serve`: the webhook server and its workers, until
// ctx is cancelled (SIGTERM, SIGINT). Then it stops accepting, lets running
// jobs finish within AGENTBOT_DRAIN_TIMEOUT, hands the rest back to the
// queue, and returns nil.
func runServe(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usageError("usage: agentbot serve (settings come from the environment)")
	}
	cfg, err := config.LoadServer(e.getenv)
	if err != nil {
		return err
	}
	log := e.logger()

	m := metrics.New(metrics.Options{})
	gl, err := gitlab.New(cfg.GitLab.URL, cfg.GitLab.Token, gitlab.Options{
		Logger:     log,
		HTTPClient: &http.Client{Transport: m.InstrumentTransport(http.DefaultTransport.(*http.Transport).Clone())},
	})
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	bot, err := gl.CurrentUser(startCtx)
	if err != nil {
		return fmt.Errorf("find the bot's own user (GET /user on %s; check GITLAB_URL and GITLAB_TOKEN): %w", cfg.GitLab.URL, err)
	}
	log.Info("gitlab user", "username", bot.Username, "id", bot.ID)

	redactor := redact.New(secretValues(e.getenv)...)
	var agentImpl run.Agent
	var policy func(string) error
	maxTurns := 0
	operator := repoconfig.Operator{MinAccess: cfg.MinAccess} // bounds .agentbot.yml
	if cfg.Executor == "local" {
		a, err := newServeAgent(startCtx, e, log, redactor)
		if err != nil {
			return err
		}
		a.metrics = m
		agentImpl, policy, maxTurns = a, a.policy().Check, a.cfg.MaxTurns
		operator = a.operator(cfg.MinAccess)
	}
	runner := run.New(run.Config{
		MinAccess: cfg.MinAccess,
		Command:   command.Options{Prefix: cfg.CommandPrefix, BotUsername: bot.Username},
		Logger:    log,
		Executor:  cfg.Executor,
		Agent:     agentImpl,
		Git: run.GitSettings{
			Token:   cfg.GitLab.Token,
			Author:  botSignature(cfg, bot),
			TempDir: cfg.WorkDir,
			Policy:  policy,
		},
		Draft:           cfg.MRDraft,
		Labels:          cfg.MRLabels,
		ConfidentialMR:  cfg.ConfidentialMR,
		Redact:          redactor.String,
		MaxTurns:        maxTurns,
		Operator:        operator,
		LockTTL:         cfg.JobTimeout + 5*time.Minute,
		ProjectRuns:     cfg.ProjectRuns,
		UserRunsPerHour: cfg.UserRuns,
		Metrics:         m,
	}, gl)
	q, err := queue.Open(startCtx, queue.Options{
		SQLitePath:  cfg.Queue.SQLitePath,
		DatabaseURL: cfg.Queue.DatabaseURL,
		Workers:     cfg.Workers,
		JobTimeout:  cfg.JobTimeout,
		RescueAfter: cfg.RescueAfter,
		MaxAttempts: cfg.MaxAttempts,
		Logger:      log,
		Handler:     runner,
	})
	if err != nil {
		return err
	}
	defer q.Close()
	if err := q.Migrate(startCtx); err != nil {
		return err
	}
	// Workspaces of a process killed mid-run are left behind; anything older
	// than the longest run is nobody's.
	if n, err := workspace.RemoveStale(cfg.WorkDir, cfg.JobTimeout+10*time.Minute); err != nil {
		log.Warn("remove stale workspaces", "err", err)
	} else if n > 0 {
		log.Info("removed stale workspaces", "count", n)
	}
	if err := q.Start(ctx); err != nil {
		return err
	}

	var key []byte
	if cfg.SigningToken != "" {
		key, _ = config.SigningKey(cfg.SigningToken) // validated by LoadServer
	}
	hook := webhook.New(webhook.Config{
		Secret:     cfg.WebhookSecret,
		SigningKey: key,
		MaxBody:    cfg.MaxBody,
		Bot:        webhook.Bot{UserID: bot.ID, Username: bot.Username},
		Command:    command.Options{Prefix: cfg.CommandPrefix, BotUsername: bot.Username},
		Logger:     log,
		Observe:    m.Delivery,
	}, q)

	srv := echo.StartConfig{
		Address:         cfg.ListenAddr,
		HideBanner:      true,
		HidePort:        true,
		GracefulTimeout: 10 * time.Second,
		ListenerAddrFunc: func(addr net.Addr) {
			log.Info("listening", "addr", addr.String(), "queue", q.Backend(), "workers", cfg.Workers)
		},
		BeforeServeFunc: func(s *http.Server) error {
			s.ReadHeaderTimeout = 10 * time.Second
			s.ReadTimeout = 30 * time.Second
			s.WriteTimeout = 30 * time.Second
			s.IdleTimeout = 120 * time.Second
			return nil
		},
	}
	serveErr := srv.Start(ctx, routes(log, hook, q, m.Handler()))
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		log.Error("http server", "err", serveErr)
	}

	log.Info("draining", "timeout", cfg.DrainTimeout.String())
	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancelDrain()
	if err := q.Stop(drainCtx); err != nil {
		log.Warn("drain", "err", err)
	}
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("listen on %s: %w (check LISTEN_ADDR)", cfg.ListenAddr, serveErr)
	}
	return nil
}

// botSignature is the commits' author: the settings, else the bot's GitLab
// name and its no-reply address.
func botSignature(cfg config.Server, bot gitlab.User) workspace.Signature {
	sig := workspace.Signature{Name: cfg.GitName, Email: cfg.GitEmail}
	if sig.Name == "" {
		sig.Name = cmp.Or(bot.Name, bot.Username)
	}
	if sig.Email == "" {
		host := "gitlab.com"
		if u, err := url.Parse(cfg.GitLab.URL); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
		sig.Email = fmt.Sprintf("%d-%s@users.noreply.%s", bot.ID, bot.Username, host)
	}
	return sig
}

// routes is every endpoint of `agentbot serve`.
func routes(log *slog.Logger, hook http.Handler, q *queue.Queue, metrics http.Handler) http.Handler {
	e := echo.New()
	e.Logger = log
	e.POST("/webhooks/gitlab", echo.WrapHandler(hook))
	e.GET("/metrics", echo.WrapHandler(metrics))
	e.GET("/healthz", func(c *echo.Context) error {
		return c.String(http.StatusOK, "ok\n")
	})
	e.GET("/readyz", func(c *echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
		defer cancel()
		if err := q.Ready(ctx); err != nil {
			log.Warn("not ready", "err", err)
			return c.String(http.StatusServiceUnavailable, "not ready: queue database\n")
		}
		return c.String(http.StatusOK, "ready\n")
	})
	return e
}

// runMigrate is `agentbot migrate`: apply the queue database's migrations.
func runMigrate(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usageError("usage: agentbot migrate (AGENTBOT_DB or DATABASE_URL says which database)")
	}
	cfg, err := config.LoadQueue(e.getenv)
	if err != nil {
		return err
	}
	q, err := queue.Open(ctx, queue.Options{SQLitePath: cfg.SQLitePath, DatabaseURL: cfg.DatabaseURL, Logger: e.logger()})
	if err != nil {
		return err
	}
	defer q.Close()
	if err := q.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "queue database migrated (%s)\n", q.Backend())
	return nil
}
