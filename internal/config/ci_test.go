package config_test

import (
	"strings"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/config"
)

func TestLoadCIFromGitLabVariables(t *testing.T) {
	c, err := config.LoadCI(mapEnv(map[string]string{
		"GITLAB_CI":             "true",
		"CI_PROJECT_ID":         "42",
		"CI_SERVER_URL":         "https://gitlab.example.com/",
		"CI_DEFAULT_BRANCH":     "main",
		"CI_JOB_ID":             "5001",
		"CI_JOB_TOKEN":          "x",
		"GITLAB_USER_ID":        "99",
		"AGENTBOT_COMMAND":      "analyze AAPL",
		"AGENTBOT_REPLY_TO":     "issue:7",
		"AGENTBOT_REQUESTED_BY": "@alice",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.InCI || c.ProjectID != 42 || c.DefaultBranch != "main" || c.GitLab.URL != "https://gitlab.example.com" ||
		c.GitLab.Token != "" || !c.JobTokenSet || c.RunID != "ci-job-5001" || c.Command != "analyze AAPL" ||
		c.ReplyTo != (config.ReplyTo{Kind: "issue", IID: 7}) || c.RequestedBy != "alice" || strings.Join(c.Labels, ",") != "agentbot" {
		t.Fatalf("%+v", c)
	}
	if err := c.RequireToken("--publish"); err == nil || !strings.Contains(err.Error(), "CI_JOB_TOKEN cannot push") {
		t.Fatalf("RequireToken: %v", err)
	}

	// GITLAB_URL wins over CI_SERVER_URL; AGENTBOT_RUN_ID over CI_JOB_ID;
	// the pipeline's user is who asked when nobody else is named.
	c, err = config.LoadCI(mapEnv(map[string]string{
		"CI_SERVER_URL": "https://gitlab.example.com", "GITLAB_URL": "http://gitlab.internal:8080",
		"CI_JOB_ID": "5001", "AGENTBOT_RUN_ID": "12", "GITLAB_USER_ID": "7", "GITLAB_TOKEN": "t",
	}))
	if err != nil || c.GitLab.URL != "http://gitlab.internal:8080" || c.RunID != "12" || c.RequestedBy != "7" || c.RequireToken("x") != nil {
		t.Fatalf("%+v, %v", c, err)
	}
}

func TestLoadCIProblems(t *testing.T) {
	_, err := config.LoadCI(mapEnv(map[string]string{
		"CI_PROJECT_ID":      "acme/research",
		"AGENTBOT_REPLY_TO":  "epic:3",
		"AGENTBOT_RUN_ID":    "a--b",
		"GITLAB_URL":         "gitlab.example.com",
		"AGENTBOT_GIT_EMAIL": "nobody",
	}))
	for _, want := range []string{"CI_PROJECT_ID", "AGENTBOT_REPLY_TO", "AGENTBOT_RUN_ID", "GITLAB_URL", "AGENTBOT_GIT_EMAIL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %s: %v", want, err)
		}
	}
}

func TestParseReplyTo(t *testing.T) {
	good := map[string]config.ReplyTo{
		"issue:7":  {Kind: "issue", IID: 7},
		"mr:3":     {Kind: "mr", IID: 3},
		"MR:!3":    {Kind: "mr", IID: 3},
		"issue:#7": {Kind: "issue", IID: 7},
		"merge_request:3:6a9c1750b37d513a43987b574953fceb50b03ce7": {Kind: "mr", IID: 3, DiscussionID: "6a9c1750b37d513a43987b574953fceb50b03ce7"},
	}
	for in, want := range good {
		got, err := config.ParseReplyTo(in)
		if err != nil || got != want {
			t.Errorf("ParseReplyTo(%q) = %+v, %v", in, got, err)
		}
		if again, err := config.ParseReplyTo(got.String()); err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", in, again, err)
		}
	}
	for _, in := range []string{"", "issue", "issue:", "issue:0", "issue:-1", "epic:2", "issue:7:not-hex!", "issue:7:abc:def"} {
		if r, err := config.ParseReplyTo(in); err == nil {
			t.Errorf("ParseReplyTo(%q) = %+v, want an error", in, r)
		}
	}
}
