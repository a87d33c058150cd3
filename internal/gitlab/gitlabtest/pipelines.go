package gitlabtest

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

// insertPipeline stores a new pipeline; the lock is held.
func (s *Server) insertPipeline(p *project, pl *Pipeline) *Pipeline {
	p.pipeIID++
	pl.ID, pl.IID, pl.ProjectID = s.nextID(), p.pipeIID, p.ID
	if pl.Status == "" {
		pl.Status = "created"
	}
	if pl.Source == "" {
		pl.Source = "push"
	}
	if pl.CreatedAt.IsZero() {
		pl.CreatedAt = s.now().UTC()
	}
	if pl.Variables == nil {
		pl.Variables = map[string]string{}
	}
	s.pipelines[pl.ID] = pl
	return pl
}

func (s *Server) pipelineJSON(p *project, pl *Pipeline) *gitlab.Pipeline {
	created := pl.CreatedAt
	return &gitlab.Pipeline{
		ID: pl.ID, IID: pl.IID, ProjectID: p.ID, Status: pl.Status, Source: gitlab.PipelineSource(pl.Source),
		Ref: pl.Ref, SHA: pl.SHA, User: s.basicUser(pl.UserID), CreatedAt: &created, UpdatedAt: &created,
		WebURL: s.webURL(p, fmt.Sprintf("/-/pipelines/%d", pl.ID)),
	}
}

// createPipeline runs a pipeline on a branch with variables, as
// POST /projects/:id/pipeline does; it stays "created" until the test
// changes it.
func (s *Server) createPipeline(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	if p.accessLevel(q.user.ID) < Developer {
		return forbidden()
	}
	ref := q.str("ref")
	if ref == "" {
		return badRequest("ref is missing")
	}
	heads, err := s.git.branchHeads(p.Path)
	if err != nil {
		return http.StatusInternalServerError, msg(err.Error())
	}
	if heads[ref] == "" {
		return http.StatusBadRequest, map[string]any{"message": map[string][]string{"base": {"Reference not found"}}}
	}
	vars := map[string]string{}
	if list, ok := q.decode()["variables"].([]any); ok {
		for _, x := range list {
			v, _ := x.(map[string]any)
			k, _ := v["key"].(string)
			val, _ := v["value"].(string)
			if k == "" {
				return badRequest("variables key is missing")
			}
			vars[k] = val
		}
	}
	pl := s.insertPipeline(p, &Pipeline{Ref: ref, SHA: heads[ref], Source: "api", Variables: vars, UserID: q.user.ID})
	q.emit(Event{Kind: "pipeline.create", ProjectID: p.ID, ID: pl.ID})
	return http.StatusCreated, s.pipelineJSON(p, pl)
}

func (q *request) pipeline(p *project) (*Pipeline, bool) {
	id, _ := q.pathInt("pid")
	pl := q.s.pipelines[id]
	return pl, pl != nil && pl.ProjectID == p.ID
}

func (s *Server) getPipeline(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	pl, ok := q.pipeline(p)
	if !ok {
		return notFound("Pipeline")
	}
	return http.StatusOK, s.pipelineJSON(p, pl)
}

func (s *Server) listPipelines(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	q.checkQuery("ref", "status", "source", "sha", "order_by", "sort")
	v := q.r.URL.Query()
	var list []*Pipeline
	for _, pl := range s.pipelines {
		switch {
		case pl.ProjectID != p.ID,
			v.Get("ref") != "" && pl.Ref != v.Get("ref"),
			v.Get("status") != "" && pl.Status != v.Get("status"),
			v.Get("source") != "" && pl.Source != v.Get("source"),
			v.Get("sha") != "" && pl.SHA != v.Get("sha"):
			continue
		}
		list = append(list, pl)
	}
	asc := v.Get("sort") == "asc"
	sort.Slice(list, func(i, j int) bool { return (list[i].ID < list[j].ID) == asc })
	out := []*gitlab.PipelineInfo{}
	for _, pl := range paginate(q, list) {
		j := s.pipelineJSON(p, pl)
		out = append(out, &gitlab.PipelineInfo{ID: j.ID, IID: j.IID, ProjectID: j.ProjectID, Status: j.Status,
			Source: pl.Source, Ref: j.Ref, SHA: j.SHA, WebURL: j.WebURL, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt})
	}
	return http.StatusOK, out
}

func (s *Server) jobJSON(p *project, j *Job) *gitlab.Job {
	pl := s.pipelines[j.PipelineID]
	return &gitlab.Job{
		ID: j.ID, Name: j.Name, Stage: j.Stage, Status: j.Status, FailureReason: j.FailureReason, Ref: pl.Ref,
		Pipeline: gitlab.JobPipeline{ID: pl.ID, ProjectID: p.ID, Ref: pl.Ref, Sha: pl.SHA, Status: pl.Status},
		WebURL:   s.webURL(p, fmt.Sprintf("/-/jobs/%d", j.ID)),
	}
}

// listJobs lists a pipeline's jobs, filtered by scope (statuses).
func (s *Server) listJobs(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	pl, ok := q.pipeline(p)
	if !ok {
		return notFound("Pipeline")
	}
	q.checkQuery("scope[]", "scope", "include_retried")
	scope := append(q.r.URL.Query()["scope[]"], q.r.URL.Query()["scope"]...)
	var jobs []*Job
	for _, j := range s.jobs {
		if j.PipelineID == pl.ID && (len(scope) == 0 || slices.Contains(scope, j.Status)) {
			jobs = append(jobs, j)
		}
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].ID < jobs[j].ID })
	out := []*gitlab.Job{}
	for _, j := range paginate(q, jobs) {
		out = append(out, s.jobJSON(p, j))
	}
	return http.StatusOK, out
}

func (q *request) job(p *project) (*Job, bool) {
	id, _ := q.pathInt("jid")
	j := q.s.jobs[id]
	return j, j != nil && j.ProjectID == p.ID
}

func (s *Server) getJob(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	j, ok := q.job(p)
	if !ok {
		return notFound("Job")
	}
	return http.StatusOK, s.jobJSON(p, j)
}

// jobTrace answers a job's log as plain text; Reporter needed on a private
// project.
func (s *Server) jobTrace(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	j, ok := q.job(p)
	if !ok {
		return notFound("Job")
	}
	if p.Visibility == "private" && p.accessLevel(q.user.ID) < Reporter {
		return forbidden()
	}
	return http.StatusOK, plainText(j.Trace)
}

// pipelineVariables lists the variables a pipeline was created with.
func (s *Server) pipelineVariables(q *request) (int, any) {
	p, ok := q.project()
	if !ok {
		return notFound("Project")
	}
	pl, ok := q.pipeline(p)
	if !ok {
		return notFound("Pipeline")
	}
	if p.accessLevel(q.user.ID) < Developer {
		return forbidden()
	}
	keys := slices.Sorted(maps.Keys(pl.Variables))
	out := []*gitlab.PipelineVariable{}
	for _, k := range keys {
		out = append(out, &gitlab.PipelineVariable{Key: k, Value: pl.Variables[k], VariableType: "env_var"})
	}
	return http.StatusOK, out
}
