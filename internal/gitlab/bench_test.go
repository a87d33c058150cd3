package gitlab_test

import (
	"context"
	"fmt"
	"testing"

	"gitlab.com/agentbot/agentbot/internal/gitlab"
	"gitlab.com/agentbot/agentbot/internal/gitlab/gitlabtest"
)

// BenchmarkPostNote measures one idempotent reply against the fake over
// loopback: the marker search (GET) and the create (POST), on a fresh issue
// each time, as a run's reply is.
func BenchmarkPostNote(b *testing.B) {
	s := gitlabtest.New(b)
	bot := s.AddUser(gitlabtest.User{Username: "agentbot"})
	p := s.AddProject("acme/research", "main", map[string]string{"README.md": "x"})
	s.AddMember(p.ID, bot.ID, gitlabtest.Developer)
	c, err := gitlab.New(s.URL(), bot.Token, gitlab.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		is := s.AddIssue(p.ID, gitlabtest.Issue{Title: "t"})
		t := gitlab.Thread{ProjectID: p.ID, Kind: gitlab.KindIssue, IID: is.IID}
		if _, err := c.PostNote(ctx, t, fmt.Sprint("run-", i), "Accepted."); err != nil {
			b.Fatal(err)
		}
	}
}
