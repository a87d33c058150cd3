package gitlabtest

import (
	"encoding/json"
	"strings"

	"gitlab.com/agentbot/agentbot/webhooks"
)

// Sample is the world the webhooks/ deliveries describe (see
// webhooks/README.md): project 42 acme/research, the bot (user 99), alice
// (7, Developer), gary (8, Guest), issue #7, confidential issue #8, merge
// request !3 from feature/q3, and the notes the deliveries carry, with the
// same ids, so that a test can post a delivery and the run finds its note.
type Sample struct {
	Project          Project
	Bot, Alice, Gary User
	Issue, Secret    Issue
	MergeRequest     MergeRequest
	BotToken         string
	DeveloperAccess  int
	GuestAccess      int
	NoteIDs          map[string]int64 // delivery name → note id
}

// SampleFiles is the sample project's repository.
var SampleFiles = map[string]string{
	"README.md":           "# Research\n\nEquity research notes. Reports live under output/.\n",
	"AGENTS.md":           "Write reports in British English. Cite every figure's source and as-of time.\n",
	"output/.gitkeep":     "",
	"notes/2026-q3.md":    "# Q3 2026\n\n- AAPL: services growth\n- MSFT: Azure\n",
	".gitlab-ci.yml":      "test:\n  script: [echo ok]\n",
	"src/model/dcf.py":    "def dcf(cash_flows, rate):\n    return sum(cf / (1 + rate) ** (i + 1) for i, cf in enumerate(cash_flows))\n",
	"src/model/README.md": "Valuation helpers.\n",
}

// AddSample builds the sample world on a new Server (it must be the first
// thing added, since it takes fixed ids).
func (s *Server) AddSample() Sample {
	s.t.Helper()
	s.mu.Lock()
	if len(s.users) > 0 || len(s.projects) > 0 {
		s.mu.Unlock()
		s.fatalf("AddSample: the server is not empty")
	}
	// Fixed ids below the sequence, which then starts above them.
	s.seq = 100000
	add := func(u User) User {
		if u.Name == "" {
			u.Name = u.Username
		}
		u.Token = "token-" + u.Username
		s.users[u.ID] = &u
		s.tokens[u.Token] = u.ID
		return u
	}
	sm := Sample{
		Bot:             add(User{ID: 99, Username: "agentbot", Name: "agentbot", Bot: true, Email: "agentbot@noreply.gitlab.test"}),
		Alice:           add(User{ID: 7, Username: "alice", Name: "Alice Analyst", PublicEmail: "alice@acme.test", Email: "alice@acme.test"}),
		Gary:            add(User{ID: 8, Username: "gary", Name: "Gary Guest"}),
		DeveloperAccess: 30,
		GuestAccess:     10,
		NoteIDs:         map[string]int64{},
	}
	sm.BotToken = sm.Bot.Token
	s.mu.Unlock()

	s.git.CreateRepo("acme/research", SampleFiles, "main")
	s.mu.Lock()
	p := &project{
		Project: Project{ID: 42, Path: "acme/research", DefaultBranch: "main", Visibility: "private"},
		members: map[int64]member{},
		issues:  map[int64]*Issue{},
		mrs:     map[int64]*MergeRequest{},
	}
	s.projects[p.ID] = p
	s.mu.Unlock()
	sm.Project = p.Project
	s.AddMember(42, 99, 30)
	s.AddMember(42, 7, 30)
	s.AddMember(42, 8, 10)
	sm.Issue = s.AddIssue(42, Issue{IID: 7, Title: "Research note: Apple (AAPL)", AuthorID: 7,
		Description: "Please prepare a short research note on Apple (AAPL): valuation, risks, recent results."})
	sm.Secret = s.AddIssue(42, Issue{IID: 8, Title: "Internal: Tesla position review", AuthorID: 7, Confidential: true,
		Description: "Confidential review of our TSLA position."})
	sm.MergeRequest = s.AddMergeRequest(42, MergeRequest{IID: 3, Title: "Q3 notes", SourceBranch: "feature/q3",
		TargetBranch: "main", AuthorID: 7, Description: "Q3 earnings notes."})

	// The notes the deliveries carry, with their ids and discussions.
	all, err := webhooks.All()
	if err != nil {
		s.fatalf("AddSample: %v", err)
	}
	for _, d := range all {
		if !strings.HasPrefix(d.Name, "note_") || d.Name == "note_edited" {
			continue
		}
		var body struct {
			Attrs struct {
				ID           int64  `json:"id"`
				Note         string `json:"note"`
				AuthorID     int64  `json:"author_id"`
				DiscussionID string `json:"discussion_id"`
				NoteableType string `json:"noteable_type"`
				System       bool   `json:"system"`
				Internal     bool   `json:"internal"`
			} `json:"object_attributes"`
			Issue        struct{ IID int64 } `json:"issue"`
			MergeRequest struct{ IID int64 } `json:"merge_request"`
		}
		if err := json.Unmarshal(d.Body, &body); err != nil {
			s.fatalf("AddSample: %s: %v", d.Name, err)
		}
		a := body.Attrs
		n := &Note{ID: a.ID, ProjectID: 42, DiscussionID: a.DiscussionID, Body: a.Note, AuthorID: a.AuthorID,
			System: a.System, Internal: a.Internal, Kind: "issue", IID: body.Issue.IID}
		if a.NoteableType == "MergeRequest" {
			n.Kind, n.IID = "mr", body.MergeRequest.IID
		}
		s.mu.Lock()
		n.CreatedAt = s.now().UTC()
		n.UpdatedAt = n.CreatedAt
		s.notes[n.ID] = n
		s.mu.Unlock()
		sm.NoteIDs[d.Name] = n.ID
	}
	return sm
}
