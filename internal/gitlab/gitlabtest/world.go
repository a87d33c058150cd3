package gitlabtest

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

// User is a GitLab account. Token is its personal access token.
type User struct {
	ID          int64
	Username    string
	Name        string
	PublicEmail string // shown to everyone (GET /users/:id)
	Email       string // shown only to the user itself (GET /user)
	Bot         bool
	Token       string
}

// Project is a GitLab project and its repository.
type Project struct {
	ID            int64
	Path          string // "acme/research"
	DefaultBranch string
	Visibility    string // "private" (default), "internal" or "public"
}

// Issue is an issue of a project.
type Issue struct {
	ID, IID, ProjectID int64
	Title, Description string
	Confidential       bool
	AuthorID           int64
	State              string // "opened" (default) or "closed"
	Labels             []string
}

// MergeRequest is a merge request of a project. Its commits are those of its
// source branch in the git repository.
type MergeRequest struct {
	ID, IID, ProjectID         int64
	Title, Description         string
	SourceBranch, TargetBranch string
	State                      string // "opened" (default), "closed" or "merged"
	Draft                      bool   // from the title's "Draft:" prefix
	Labels                     []string
	ReviewerIDs                []int64
	AuthorID                   int64
	CreatedAt, UpdatedAt       time.Time
	Updates                    int // PUTs applied
}

// Note is a comment on an issue or a merge request.
type Note struct {
	ID, ProjectID        int64
	Kind                 string // "issue" or "mr"
	IID                  int64
	DiscussionID         string
	Body                 string
	AuthorID             int64
	Internal, System     bool
	Position             *gitlab.NotePosition // inline (diff) comments
	CreatedAt, UpdatedAt time.Time
	Edits                int // PUTs applied
}

// Award is an emoji reaction on a note.
type Award struct {
	ID, ProjectID int64
	Kind          string // "issue" or "mr"
	IID, NoteID   int64
	Name          string // "eyes", "white_check_mark", …
	UserID        int64
}

// Pipeline is a CI pipeline.
type Pipeline struct {
	ID, IID, ProjectID int64
	Ref, SHA           string
	Status             string // "created" when made through the API
	Source             string // "api" when made through the API
	Variables          map[string]string
	UserID             int64
	CreatedAt          time.Time
}

// Job is a CI job of a pipeline; Trace is its log.
type Job struct {
	ID, ProjectID, PipelineID int64
	Name, Stage, Status       string
	FailureReason             string
	Trace                     string
}

type member struct {
	level     int
	inherited bool // from a group: listed by members/all only
}

type project struct {
	Project
	members   map[int64]member
	issues    map[int64]*Issue
	mrs       map[int64]*MergeRequest
	protected []protectedRule
	issueIID  int64
	mrIID     int64
	pipeIID   int64
}

// AddUser adds an account. Name defaults to the username, Token to
// "token-<username>".
func (s *Server) AddUser(u User) User {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Username == "" {
		s.fatalf("AddUser: username is required")
	}
	for _, o := range s.users {
		if o.Username == u.Username {
			s.fatalf("AddUser: user %s exists already", u.Username)
		}
	}
	u.ID = s.nextID()
	if u.Name == "" {
		u.Name = u.Username
	}
	if u.Token == "" {
		u.Token = "token-" + u.Username
	}
	s.users[u.ID] = &u
	s.tokens[u.Token] = u.ID
	return u
}

// AddProject adds a private project whose repository holds one commit with
// files on defaultBranch. As in GitLab, the default branch is protected.
func (s *Server) AddProject(path, defaultBranch string, files map[string]string) Project {
	s.t.Helper()
	s.git.CreateRepo(path, files, defaultBranch)
	p := s.addProject(path, defaultBranch)
	s.ProtectBranch(p.ID, defaultBranch)
	return p
}

// AddProjectFromDir adds a project served from an existing bare repository
// (left unchanged); its default branch is the repository's HEAD.
func (s *Server) AddProjectFromDir(path, bareDir string) Project {
	s.t.Helper()
	s.git.ServeRepoDir(path, bareDir)
	return s.addProject(path, s.git.DefaultBranch(path))
}

func (s *Server) addProject(path, defaultBranch string) Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &project{
		Project: Project{ID: s.nextID(), Path: strings.Trim(path, "/"), DefaultBranch: defaultBranch, Visibility: "private"},
		members: map[int64]member{},
		issues:  map[int64]*Issue{},
		mrs:     map[int64]*MergeRequest{},
	}
	s.projects[p.ID] = p
	return p.Project
}

// SetVisibility sets a project's visibility: "private", "internal" or
// "public".
func (s *Server) SetVisibility(projectID int64, visibility string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustProject(projectID).Visibility = visibility
}

// AddMember gives a user a role on a project (Guest … Owner).
func (s *Server) AddMember(projectID, userID int64, accessLevel int) {
	s.addMember(projectID, userID, accessLevel, false)
}

// AddInheritedMember gives a user a role on a project through its group:
// GET members/all shows it, GET members does not.
func (s *Server) AddInheritedMember(projectID, userID int64, accessLevel int) {
	s.addMember(projectID, userID, accessLevel, true)
}

func (s *Server) addMember(projectID, userID int64, level int, inherited bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	if s.users[userID] == nil {
		s.fatalf("AddMember: no user %d", userID)
	}
	p.members[userID] = member{level: level, inherited: inherited}
}

// AddIssue adds an issue; IID is assigned when zero, AuthorID must be a user.
func (s *Server) AddIssue(projectID int64, is Issue) Issue {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	if is.IID == 0 {
		is.IID = p.issueIID + 1
	}
	if p.issues[is.IID] != nil {
		s.fatalf("AddIssue: issue #%d exists already", is.IID)
	}
	p.issueIID = max(p.issueIID, is.IID)
	is.ID, is.ProjectID = s.nextID(), projectID
	if is.State == "" {
		is.State = "opened"
	}
	p.issues[is.IID] = &is
	return is
}

// AddMergeRequest adds a merge request as if a person had opened it; IID is
// assigned when zero. A missing source branch is created at the target's head.
func (s *Server) AddMergeRequest(projectID int64, mr MergeRequest) MergeRequest {
	s.t.Helper()
	s.mu.Lock()
	p := s.mustProject(projectID)
	path := p.Path
	s.mu.Unlock()
	if mr.TargetBranch == "" {
		mr.TargetBranch = p.DefaultBranch
	}
	branches := s.git.Branches(path)
	if _, ok := branches[mr.SourceBranch]; !ok {
		target, ok := branches[mr.TargetBranch]
		if !ok {
			s.fatalf("AddMergeRequest: no branch %s", mr.TargetBranch)
		}
		s.git.git(s.git.Dir(path), "update-ref", "refs/heads/"+mr.SourceBranch, target)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if mr.IID == 0 {
		mr.IID = p.mrIID + 1
	}
	if p.mrs[mr.IID] != nil {
		s.fatalf("AddMergeRequest: merge request !%d exists already", mr.IID)
	}
	p.mrIID = max(p.mrIID, mr.IID)
	mr.ID, mr.ProjectID = s.nextID(), projectID
	if mr.State == "" {
		mr.State = "opened"
	}
	mr.Draft = isDraft(mr.Title)
	mr.CreatedAt = s.now().UTC()
	mr.UpdatedAt = mr.CreatedAt
	p.mrs[mr.IID] = &mr
	return mr
}

// ProtectBranch protects a branch name or wildcard pattern ("release/*"):
// the protected-branches API lists it and git pushes to it are refused.
func (s *Server) ProtectBranch(projectID int64, pattern string) {
	s.t.Helper()
	s.mu.Lock()
	p := s.mustProject(projectID)
	p.protected = append(p.protected, protectedRule{ID: s.nextID(), Pattern: pattern})
	path := p.Path
	s.mu.Unlock()
	s.git.ProtectBranch(path, pattern)
}

// AddNote adds a comment as a person would write it: on an issue (kind
// "issue") or a merge request ("mr"); in discussion n.DiscussionID when set
// (a new discussion is started when no note has that id yet).
func (s *Server) AddNote(projectID int64, kind string, iid int64, n Note) Note {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	if !s.noteableExists(p, kind, iid) {
		s.fatalf("AddNote: no %s %d", kind, iid)
	}
	n.ProjectID, n.Kind, n.IID = projectID, kind, iid
	return *s.insertNote(&n)
}

// AddPipeline adds a pipeline as if GitLab had started it (a push, a
// schedule…); Status defaults to "created", SHA to the ref's head.
func (s *Server) AddPipeline(projectID int64, pl Pipeline) Pipeline {
	s.t.Helper()
	s.mu.Lock()
	p := s.mustProject(projectID)
	path := p.Path
	s.mu.Unlock()
	if pl.SHA == "" {
		pl.SHA = s.git.Branches(path)[pl.Ref]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.insertPipeline(p, &pl)
}

// SetPipelineStatus changes a pipeline's status ("running", "success",
// "failed", "canceled", …).
func (s *Server) SetPipelineStatus(pipelineID int64, status string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	pl := s.pipelines[pipelineID]
	if pl == nil {
		s.fatalf("SetPipelineStatus: no pipeline %d", pipelineID)
	}
	pl.Status = status
}

// AddJob adds a job to a pipeline; Status defaults to "created".
func (s *Server) AddJob(pipelineID int64, j Job) Job {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	pl := s.pipelines[pipelineID]
	if pl == nil {
		s.fatalf("AddJob: no pipeline %d", pipelineID)
	}
	j.ID, j.ProjectID, j.PipelineID = s.nextID(), pl.ProjectID, pipelineID
	if j.Status == "" {
		j.Status = "created"
	}
	s.jobs[j.ID] = &j
	return j
}

// SetJob replaces a job's status, failure reason and trace.
func (s *Server) SetJob(jobID int64, status, failureReason, trace string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[jobID]
	if j == nil {
		s.fatalf("SetJob: no job %d", jobID)
	}
	j.Status, j.FailureReason, j.Trace = status, failureReason, trace
}

// Notes returns the notes of an issue ("issue") or merge request ("mr"),
// oldest first.
func (s *Server) Notes(projectID int64, kind string, iid int64) []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Note
	for _, n := range s.sortedNotes() {
		if n.ProjectID == projectID && n.Kind == kind && n.IID == iid {
			out = append(out, *n)
		}
	}
	return out
}

// Awards returns the emoji awarded on a note, oldest first.
func (s *Server) Awards(noteID int64) []Award {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Award
	for _, a := range s.awards {
		if a.NoteID == noteID {
			out = append(out, *a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// MergeRequests returns a project's merge requests by IID.
func (s *Server) MergeRequests(projectID int64) []MergeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []MergeRequest
	for _, mr := range s.mustProject(projectID).mrs {
		c := *mr
		c.Labels, c.ReviewerIDs = slices.Clone(mr.Labels), slices.Clone(mr.ReviewerIDs)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IID < out[j].IID })
	return out
}

// Pipelines returns a project's pipelines, oldest first.
func (s *Server) Pipelines(projectID int64) []Pipeline {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Pipeline
	for _, pl := range s.pipelines {
		if pl.ProjectID == projectID {
			c := *pl
			c.Variables = maps.Clone(pl.Variables)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// HTTPURLToRepo is a project's clone URL.
func (s *Server) HTTPURLToRepo(projectID int64) string {
	s.mu.Lock()
	p := s.mustProject(projectID)
	s.mu.Unlock()
	return s.git.URL(p.Path)
}

// mustProject finds a project for a builder; the lock is held.
func (s *Server) mustProject(id int64) *project {
	s.t.Helper()
	p := s.projects[id]
	if p == nil {
		s.fatalf("no project %d", id)
	}
	return p
}

// accessLevel is a user's role on a project (0 for none); the lock is held.
func (p *project) accessLevel(userID int64) int {
	return p.members[userID].level
}

// canRead reports whether a user sees a project at all.
func (p *project) canRead(u *User) bool {
	return p.Visibility != "private" || p.accessLevel(u.ID) >= Guest
}

// findProject resolves the {id} path parameter (a number or a
// namespace/project path) for a user who can see it; the lock is held.
func (q *request) project() (*project, bool) {
	id := q.r.PathValue("id")
	var p *project
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		p = q.s.projects[n]
	} else {
		for _, c := range q.s.projects {
			if c.Path == id {
				p = c
				break
			}
		}
	}
	if p == nil || !p.canRead(q.user) {
		return nil, false
	}
	return p, true
}

func (s *Server) noteableExists(p *project, kind string, iid int64) bool {
	if kind == "issue" {
		return p.issues[iid] != nil
	}
	return p.mrs[iid] != nil
}

// authorizeGit decides git access for the mounted git server: a known token
// of a user who can read the project; Developer to push.
func (s *Server) authorizeGit(repoPath, token string, write bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[s.tokens[token]]
	if u == nil {
		return false
	}
	for _, p := range s.projects {
		if p.Path == repoPath {
			if write {
				return p.accessLevel(u.ID) >= Developer
			}
			return p.canRead(u)
		}
	}
	return false
}

// Users' JSON.

func (s *Server) getCurrentUser(q *request) (int, any) {
	u := q.user
	return http.StatusOK, &gitlab.User{
		ID: u.ID, Username: u.Username, Name: u.Name, State: "active",
		PublicEmail: u.PublicEmail, Email: u.Email, Bot: u.Bot,
		WebURL: q.s.srv.URL + "/" + u.Username,
	}
}

func (s *Server) getUser(q *request) (int, any) {
	id, _ := q.pathInt("uid")
	u := s.users[id]
	if u == nil {
		return notFound("User")
	}
	return http.StatusOK, &gitlab.User{
		ID: u.ID, Username: u.Username, Name: u.Name, State: "active",
		PublicEmail: u.PublicEmail, Bot: u.Bot, WebURL: s.srv.URL + "/" + u.Username,
	}
}

func (s *Server) basicUser(id int64) *gitlab.BasicUser {
	u := s.users[id]
	if u == nil {
		return &gitlab.BasicUser{ID: id, Username: fmt.Sprintf("user%d", id), State: "active"}
	}
	return &gitlab.BasicUser{ID: u.ID, Username: u.Username, Name: u.Name, State: "active", WebURL: s.srv.URL + "/" + u.Username}
}

func (s *Server) getProject(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	i := strings.LastIndex(p.Path, "/")
	ns, name := p.Path[:i], p.Path[i+1:]
	return http.StatusOK, &gitlab.Project{
		ID: p.ID, Name: name, Path: name, PathWithNamespace: p.Path,
		NameWithNamespace: strings.ReplaceAll(p.Path, "/", " / "),
		DefaultBranch:     p.DefaultBranch,
		HTTPURLToRepo:     s.git.URL(p.Path),
		WebURL:            s.webURL(p, ""),
		Visibility:        gitlab.VisibilityValue(p.Visibility),
		Namespace:         &gitlab.ProjectNamespace{Name: ns, Path: ns, FullPath: ns, Kind: "group"},
	}
}

func (s *Server) getMember(all bool) func(*request) (int, any) {
	return func(q *request) (int, any) {
		p, ok := q.project()
		if !ok {
			return notFound("Project")
		}
		uid, _ := q.pathInt("uid")
		m, ok := p.members[uid]
		if !ok || (m.inherited && !all) {
			return notFound("Member")
		}
		u := s.users[uid]
		return http.StatusOK, &gitlab.ProjectMember{
			ID: u.ID, Username: u.Username, Name: u.Name, State: "active",
			AccessLevel: gitlab.AccessLevelValue(m.level), WebURL: s.srv.URL + "/" + u.Username,
		}
	}
}

func (s *Server) getIssue(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	iid, _ := q.pathInt("iid")
	is := p.issues[iid]
	if is == nil || !canSeeIssue(p, is, q.user) {
		return notFound("Issue")
	}
	a := s.basicUser(is.AuthorID)
	return http.StatusOK, &gitlab.Issue{
		ID: is.ID, IID: is.IID, ProjectID: p.ID, Title: is.Title, Description: is.Description,
		State: is.State, Confidential: is.Confidential, Labels: gitlab.Labels(slices.Clone(is.Labels)),
		Author: &gitlab.IssueAuthor{ID: a.ID, Username: a.Username, Name: a.Name, State: a.State},
		WebURL: s.webURL(p, fmt.Sprintf("/-/issues/%d", is.IID)),
	}
}

// canSeeIssue: confidential issues are for Reporters and their author.
func canSeeIssue(p *project, is *Issue, u *User) bool {
	return !is.Confidential || is.AuthorID == u.ID || p.accessLevel(u.ID) >= Reporter
}

type eventsKey struct{}

func withEvents(ctx context.Context, events *[]Event) context.Context {
	return context.WithValue(ctx, eventsKey{}, events)
}

func eventsFrom(ctx context.Context) *[]Event {
	e, _ := ctx.Value(eventsKey{}).(*[]Event)
	return e
}
