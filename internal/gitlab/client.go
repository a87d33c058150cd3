// Package gitlab holds the few GitLab API calls agentbot makes, over
// client-go, with writes that are safe to retry.
//
// client-go re-sends requests after a 5xx; for a POST that can post a comment
// twice, because GitLab may have applied it before the error (a proxy timing
// out, say). This client lets client-go retry only idempotent methods (and
// 429s, which GitLab rejects before doing anything), and makes each create
// idempotent itself: a note carries an invisible marker with a key and is
// looked up by it before it is posted and after a failed attempt; a merge
// request is looked up by its source branch; an award emoji is looked up in
// the note's awards; a pipeline carries its key in a variable.
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// Options tune a Client; the zero value is usable.
type Options struct {
	Timeout    time.Duration // per HTTP attempt; default 30s
	UserAgent  string        // default "agentbot"
	Logger     *slog.Logger  // default: discard
	HTTPClient *http.Client  // default: a pooled client; its Timeout is set to Timeout when zero

	// Automatic retries of idempotent requests (and of 429s) inside
	// client-go, with exponential backoff between RetryWaitMin and
	// RetryWaitMax, and Retry-After honoured up to MaxRetryAfter.
	MaxRetries    int           // default 4
	RetryWaitMin  time.Duration // default 250ms
	RetryWaitMax  time.Duration // default 10s
	MaxRetryAfter time.Duration // default 60s

	// WriteAttempts bounds the attempts of one create (a note, an MR, …)
	// that fails with a transient error; before each new attempt the client
	// checks whether an earlier one was applied. Default 4.
	WriteAttempts int

	// SearchPages bounds the pages of 100 notes (newest first) searched for
	// a note's marker. Default 5.
	SearchPages int
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Timeout, 30*time.Second)
	def(&o.RetryWaitMin, 250*time.Millisecond)
	def(&o.RetryWaitMax, 10*time.Second)
	def(&o.MaxRetryAfter, time.Minute)
	if o.UserAgent == "" {
		o.UserAgent = "agentbot"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 4
	}
	if o.WriteAttempts <= 0 {
		o.WriteAttempts = 4
	}
	if o.SearchPages <= 0 {
		o.SearchPages = 5
	}
}

// Client makes agentbot's GitLab calls. It is safe for concurrent use.
type Client struct {
	gl    *gl.Client
	opt   Options
	log   *slog.Logger
	token string // only to redact it from error messages

	mu sync.Mutex
	me *User // the token's user, once known
}

// New makes a client for the GitLab at baseURL ("https://gitlab.com") that
// authenticates with token (a personal, project or group access token).
func New(baseURL, token string, opt Options) (*Client, error) {
	opt.defaults()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	if opt.HTTPClient != nil {
		c := *opt.HTTPClient
		hc = &c
	}
	if hc.Timeout == 0 {
		hc.Timeout = opt.Timeout
	}
	c := &Client{opt: opt, log: opt.Logger, token: token}
	g, err := gl.NewClient(token,
		gl.WithBaseURL(baseURL),
		gl.WithHTTPClient(hc),
		gl.WithUserAgent(opt.UserAgent),
		gl.WithOnlyIdempotentRetries(),
		gl.WithCustomRetryMax(opt.MaxRetries),
		gl.WithCustomRetryWaitMinMax(opt.RetryWaitMin, opt.RetryWaitMax),
		gl.WithCustomBackoff(c.backoff),
		gl.WithCustomLeveledLogger(opt.Logger),
		gl.WithURLWarningLogger(opt.Logger),
	)
	if err != nil {
		return nil, fmt.Errorf("gitlab client for %s: %w", baseURL, err)
	}
	c.gl = g
	return c, nil
}

// backoff is client-go's wait before retry attempt n: Retry-After (or
// RateLimit-Reset) when GitLab sends one, else exponential with jitter.
func (c *Client) backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if d, ok := retryAfter(resp.Header, time.Now()); ok {
			return min(d, c.opt.MaxRetryAfter)
		}
	}
	return expBackoff(lo, hi, attempt)
}

func expBackoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo << min(attempt, 20)
	if d <= 0 || d > hi {
		d = hi
	}
	// Full jitter in the upper half, so that concurrent workers spread out.
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads how long GitLab asks a client to wait.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	if v := h.Get("RateLimit-Reset"); v != "" {
		if unix, err := strconv.ParseInt(v, 10, 64); err == nil && unix > 0 {
			return max(time.Unix(unix, 0).Sub(now), 0), true
		}
	}
	return 0, false
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// createOnce runs create until it succeeds or fails for good. After a
// transient failure it waits, then asks find whether the failed attempt was
// applied after all, and returns what find found instead of creating again.
func createOnce[T any](ctx context.Context, c *Client, op string, find func(context.Context) (T, bool, error), create func(context.Context) (T, error)) (T, error) {
	var zero T
	for attempt := 1; ; attempt++ {
		v, err := create(ctx)
		if err == nil {
			return v, nil
		}
		if !IsTransient(err) || attempt >= c.opt.WriteAttempts || ctx.Err() != nil {
			return zero, err
		}
		c.log.WarnContext(ctx, "gitlab write failed; checking whether it was applied before retrying",
			"op", op, "attempt", attempt, "err", err)
		if err := sleep(ctx, expBackoff(c.opt.RetryWaitMin, c.opt.RetryWaitMax, attempt-1)); err != nil {
			return zero, c.wrap(op, err)
		}
		v, ok, err := find(ctx)
		if err != nil {
			return zero, err
		}
		if ok {
			return v, nil
		}
	}
}

// Errors callers branch on. Every error the client returns is an *Error
// that matches one of these with errors.Is when GitLab answered 404, 401,
// 403 or 409.
var (
	ErrNotFound     = errors.New("not found")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrConflict     = errors.New("conflict")
)

// Error is a failed GitLab call.
type Error struct {
	Op     string // what was being done: "create note on project 12 issue 7"
	Status int    // the HTTP status GitLab answered; 0 when there was no answer
	msg    string // the cause's text, token redacted
	err    error  // the cause
}

func (e *Error) Error() string {
	s := "gitlab: " + e.Op + ": " + e.msg
	switch e.Status {
	case http.StatusUnauthorized:
		s += " (check GITLAB_TOKEN is valid and has not expired)"
	case http.StatusForbidden:
		s += " (check GITLAB_TOKEN has scope api and role Developer on the project)"
	}
	return s
}

// Unwrap gives the cause and the sentinel the status maps to.
func (e *Error) Unwrap() []error {
	errs := []error{e.err}
	switch e.Status {
	case http.StatusNotFound:
		errs = append(errs, ErrNotFound)
	case http.StatusUnauthorized:
		errs = append(errs, ErrUnauthorized)
	case http.StatusForbidden:
		errs = append(errs, ErrForbidden)
	case http.StatusConflict:
		errs = append(errs, ErrConflict)
	}
	return errs
}

// wrap turns a client-go error into an *Error naming op.
func (c *Client) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	status := 0
	var er *gl.ErrorResponse
	if errors.As(err, &er) {
		status = er.StatusCode
	}
	text := err.Error()
	if status == http.StatusNotFound {
		text = "404 Not Found"
	}
	if c.token != "" {
		text = strings.ReplaceAll(text, c.token, "[REDACTED]")
	}
	return &Error{Op: op, Status: status, msg: text, err: err}
}

// IsTransient reports whether err may go away by itself: GitLab answered
// 5xx or 429, or the call timed out or lost its connection. Permanent errors
// (4xx: not found, forbidden, invalid) and a cancelled context are not
// transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var e *Error
	if errors.As(err, &e) && e.Status != 0 {
		return e.Status == http.StatusTooManyRequests || e.Status >= 500
	}
	var er *gl.ErrorResponse
	if errors.As(err, &er) {
		return er.StatusCode == http.StatusTooManyRequests || er.StatusCode >= 500 || er.StatusCode == 0
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

func (c *Client) ctxOpt(ctx context.Context) gl.RequestOptionFunc { return gl.WithContext(ctx) }

// User is a GitLab account.
type User struct {
	ID          int64
	Username    string
	Name        string
	PublicEmail string // empty when the user keeps it private
	Bot         bool
}

func userFrom(u *gl.User) User {
	return User{ID: u.ID, Username: u.Username, Name: u.Name, PublicEmail: u.PublicEmail, Bot: u.Bot}
}

// CurrentUser is the token's own user (GET /user).
func (c *Client) CurrentUser(ctx context.Context) (User, error) {
	u, _, err := c.gl.Users.CurrentUser(c.ctxOpt(ctx))
	if err != nil {
		return User{}, c.wrap("get current user", err)
	}
	me := userFrom(u)
	c.mu.Lock()
	c.me = &me
	c.mu.Unlock()
	return me, nil
}

// self is the token's user, asked once.
func (c *Client) self(ctx context.Context) (User, error) {
	c.mu.Lock()
	me := c.me
	c.mu.Unlock()
	if me != nil {
		return *me, nil
	}
	return c.CurrentUser(ctx)
}

// User looks up an account (for its public email).
func (c *Client) User(ctx context.Context, id int64) (User, error) {
	u, _, err := c.gl.Users.GetUser(id, nil, c.ctxOpt(ctx))
	if err != nil {
		return User{}, c.wrap(fmt.Sprintf("get user %d", id), err)
	}
	return userFrom(u), nil
}

// AccessLevel is a user's role on a project, inherited ones included
// (10 Guest, 20 Reporter, 30 Developer, 40 Maintainer, 50 Owner); 0 when the
// user is not a member or is blocked.
func (c *Client) AccessLevel(ctx context.Context, projectID, userID int64) (int, error) {
	m, _, err := c.gl.ProjectMembers.GetInheritedProjectMember(projectID, userID, c.ctxOpt(ctx))
	if errors.Is(err, gl.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, c.wrap(fmt.Sprintf("get access level of user %d on project %d", userID, projectID), err)
	}
	if m.State != "" && m.State != "active" {
		return 0, nil
	}
	return int(m.AccessLevel), nil
}

// Project is what agentbot needs of a project.
type Project struct {
	ID                int64
	PathWithNamespace string
	DefaultBranch     string
	HTTPURLToRepo     string
	WebURL            string
	Visibility        string
}

// Project looks up a project by id.
func (c *Client) Project(ctx context.Context, id int64) (Project, error) {
	p, _, err := c.gl.Projects.GetProject(id, nil, c.ctxOpt(ctx))
	if err != nil {
		return Project{}, c.wrap(fmt.Sprintf("get project %d", id), err)
	}
	return Project{ID: p.ID, PathWithNamespace: p.PathWithNamespace, DefaultBranch: p.DefaultBranch,
		HTTPURLToRepo: p.HTTPURLToRepo, WebURL: p.WebURL, Visibility: string(p.Visibility)}, nil
}

// Issue is what agentbot needs of an issue.
type Issue struct {
	ID, IID, ProjectID int64
	Title, Description string
	State              string
	Confidential       bool
	AuthorID           int64
	AuthorUsername     string
	Labels             []string
	WebURL             string
}

// Issue looks up an issue by its IID.
func (c *Client) Issue(ctx context.Context, projectID, iid int64) (Issue, error) {
	is, _, err := c.gl.Issues.GetIssue(projectID, iid, c.ctxOpt(ctx))
	if err != nil {
		return Issue{}, c.wrap(fmt.Sprintf("get issue %d of project %d", iid, projectID), err)
	}
	out := Issue{ID: is.ID, IID: is.IID, ProjectID: is.ProjectID, Title: is.Title, Description: is.Description,
		State: is.State, Confidential: is.Confidential, Labels: is.Labels, WebURL: is.WebURL}
	if is.Author != nil {
		out.AuthorID, out.AuthorUsername = is.Author.ID, is.Author.Username
	}
	return out, nil
}
