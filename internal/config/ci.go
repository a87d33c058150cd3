package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The variables the pipeline executor sets on the pipeline it creates, which
// `agentbot run --from-env` reads.
const (
	VarCommand     = "AGENTBOT_COMMAND"      // the request, as in a comment: "analyze AAPL"
	VarReplyTo     = "AGENTBOT_REPLY_TO"     // the thread to answer on: issue:7, mr:3, issue:7:<discussion id>
	VarRunID       = "AGENTBOT_RUN_ID"       // the bot's run; names the commit trailer and the note's key
	VarRequestedBy = "AGENTBOT_REQUESTED_BY" // who asked: a GitLab user id, or a username
)

// CI is what `agentbot run` takes from a GitLab CI job: GitLab's predefined
// variables (CI_PROJECT_ID, CI_SERVER_URL, CI_DEFAULT_BRANCH, …), the
// variables the pipeline executor sets (AGENTBOT_COMMAND, …), and how to
// publish (token, commit author, merge request settings). Outside CI the
// CI_… fields are empty.
type CI struct {
	// InCI is GITLAB_CI=true: agentbot runs in a GitLab CI job.
	InCI bool
	// ProjectID is CI_PROJECT_ID (or AGENTBOT_PROJECT_ID outside CI); 0 when
	// neither is set.
	ProjectID   int64
	ProjectPath string // CI_PROJECT_PATH, for messages
	// DefaultBranch is CI_DEFAULT_BRANCH; empty means ask GitLab.
	DefaultBranch string
	JobID         string // CI_JOB_ID
	JobURL        string // CI_JOB_URL
	PipelineURL   string // CI_PIPELINE_URL
	// UserID and UserLogin are GITLAB_USER_ID and GITLAB_USER_LOGIN: who
	// started the pipeline (for the pipeline executor's pipelines, the bot).
	UserID    int64
	UserLogin string
	// JobTokenSet: CI_JOB_TOKEN is set. It cannot push or open merge
	// requests, so publishing needs GITLAB_TOKEN all the same.
	JobTokenSet bool

	// GitLab is GITLAB_URL, else CI_SERVER_URL, else https://gitlab.com, and
	// GITLAB_TOKEN, which LoadCI does not require (see RequireToken).
	GitLab GitLab

	// From the pipeline executor (or set by hand).
	Command     string  // AGENTBOT_COMMAND
	ReplyTo     ReplyTo // AGENTBOT_REPLY_TO; zero when unset
	RunID       string  // AGENTBOT_RUN_ID, else ci-job-<CI_JOB_ID>; empty outside CI
	RequestedBy string  // AGENTBOT_REQUESTED_BY, else GITLAB_USER_ID

	// GitName and GitEmail (AGENTBOT_GIT_NAME, AGENTBOT_GIT_EMAIL) sign the
	// commit, as in serve; empty means the bot's name and GitLab no-reply
	// address.
	GitName  string
	GitEmail string
	// Draft (AGENTBOT_MR_DRAFT) and Labels (AGENTBOT_MR_LABELS,
	// comma-separated, default agentbot) apply to a new merge request.
	Draft  bool
	Labels []string
	// ConfidentialMR is AGENTBOT_ALLOW_CONFIDENTIAL_MR: publish for a
	// command on a confidential issue (the merge request is visible to
	// everyone who can see the project), as in serve.
	ConfidentialMR bool
}

// ReplyTo is a thread to answer on: an issue or a merge request, and
// optionally one discussion in it.
type ReplyTo struct {
	Kind         string // "issue" or "mr"; "" means none
	IID          int64
	DiscussionID string
}

// IsZero reports whether no thread is set.
func (r ReplyTo) IsZero() bool { return r.Kind == "" }

// String is the form ParseReplyTo reads: issue:7, mr:3, issue:7:<discussion id>.
func (r ReplyTo) String() string {
	if r.IsZero() {
		return ""
	}
	s := r.Kind + ":" + strconv.FormatInt(r.IID, 10)
	if r.DiscussionID != "" {
		s += ":" + r.DiscussionID
	}
	return s
}

var discussionRE = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

// ParseReplyTo reads issue:IID, mr:IID (also merge_request:IID) and
// KIND:IID:DISCUSSION_ID.
func ParseReplyTo(s string) (ReplyTo, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, ":")
	bad := fmt.Errorf("%q: want issue:IID or mr:IID (optionally :DISCUSSION_ID), such as issue:7", s)
	if len(parts) < 2 || len(parts) > 3 {
		return ReplyTo{}, bad
	}
	var r ReplyTo
	switch strings.ToLower(parts[0]) {
	case "issue", "issues":
		r.Kind = "issue"
	case "mr", "merge_request", "merge_requests":
		r.Kind = "mr"
	default:
		return ReplyTo{}, bad
	}
	iid, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimPrefix(parts[1], "#"), "!"), 10, 64)
	if err != nil || iid <= 0 {
		return ReplyTo{}, bad
	}
	r.IID = iid
	if len(parts) == 3 {
		if !discussionRE.MatchString(parts[2]) {
			return ReplyTo{}, fmt.Errorf("%q: the discussion id %q is not a GitLab discussion id (hexadecimal)", s, parts[2])
		}
		r.DiscussionID = parts[2]
	}
	return r, nil
}

// runIDRE is what a run id may look like: it goes into a commit trailer and
// an HTML comment.
var runIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidRunID reports whether id can name a run.
func ValidRunID(id string) bool { return runIDRE.MatchString(id) && !strings.Contains(id, "--") }

// LoadCI reads the CI job's variables and the publishing settings.
func LoadCI(get Getenv) (CI, error) {
	r := newReader(get)
	c := CI{
		InCI:           r.bool("GITLAB_CI", false),
		ProjectPath:    r.str("CI_PROJECT_PATH", ""),
		DefaultBranch:  r.str("CI_DEFAULT_BRANCH", ""),
		JobID:          r.str("CI_JOB_ID", ""),
		JobURL:         r.str("CI_JOB_URL", ""),
		PipelineURL:    r.str("CI_PIPELINE_URL", ""),
		UserLogin:      r.str("GITLAB_USER_LOGIN", ""),
		JobTokenSet:    r.str("CI_JOB_TOKEN", "") != "",
		Command:        r.str(VarCommand, ""),
		RunID:          r.str(VarRunID, ""),
		RequestedBy:    strings.TrimPrefix(r.str(VarRequestedBy, ""), "@"),
		GitName:        r.str("AGENTBOT_GIT_NAME", ""),
		GitEmail:       r.str("AGENTBOT_GIT_EMAIL", ""),
		Draft:          r.bool("AGENTBOT_MR_DRAFT", false),
		Labels:         r.list("AGENTBOT_MR_LABELS", []string{"agentbot"}),
		ConfidentialMR: r.bool("AGENTBOT_ALLOW_CONFIDENTIAL_MR", false),
	}
	c.ProjectID = r.positiveID("CI_PROJECT_ID")
	if c.ProjectID == 0 {
		c.ProjectID = r.positiveID("AGENTBOT_PROJECT_ID")
	}
	// GitLab sets GITLAB_USER_ID; a value that is not a user (a local
	// runner's 0) only means nobody is known.
	if id, err := strconv.ParseInt(r.str("GITLAB_USER_ID", ""), 10, 64); err == nil && id > 0 {
		c.UserID = id
	}
	if c.RequestedBy == "" && c.UserID != 0 {
		c.RequestedBy = strconv.FormatInt(c.UserID, 10)
	}
	if c.RunID == "" && c.JobID != "" {
		c.RunID = "ci-job-" + c.JobID
	}
	if c.RunID != "" && !ValidRunID(c.RunID) {
		r.problem("%s=%q: want letters, digits, '.', '_' or '-' (at most 64, no \"--\")", VarRunID, c.RunID)
	}
	if s := r.str(VarReplyTo, ""); s != "" {
		rt, err := ParseReplyTo(s)
		if err != nil {
			r.problem("%s=%v", VarReplyTo, err)
		}
		c.ReplyTo = rt
	}
	if c.GitEmail != "" && !strings.Contains(c.GitEmail, "@") {
		r.problem("AGENTBOT_GIT_EMAIL=%q: want an email address", c.GitEmail)
	}

	c.GitLab = GitLab{
		URL:   strings.TrimRight(r.str("GITLAB_URL", r.str("CI_SERVER_URL", "https://gitlab.com")), "/"),
		Token: r.str("GITLAB_TOKEN", ""),
	}
	if !validEndpointURL(c.GitLab.URL) {
		r.problem("GITLAB_URL=%q (or CI_SERVER_URL): want the instance's base URL, such as https://gitlab.example.com", c.GitLab.URL)
	}
	return c, r.err()
}

// RequireToken is the problem to report when GITLAB_TOKEN is missing and
// the run must write to GitLab (what names the writes, e.g. "--publish").
func (c CI) RequireToken(what string) error {
	if c.GitLab.Token != "" {
		return nil
	}
	msg := "GITLAB_TOKEN is required for " + what + ": a project or group access token with scopes api and " +
		"write_repository and the Developer role, stored as a masked CI/CD variable"
	if c.JobTokenSet {
		msg += " (the job's own CI_JOB_TOKEN cannot push a branch or open a merge request)"
	}
	return Problems{msg}
}

// positiveID reads a positive whole number; 0 when unset.
func (r *reader) positiveID(name string) int64 {
	s := r.str(name, "")
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		r.problem("%s=%q: want a positive whole number", name, s)
		return 0
	}
	return n
}
