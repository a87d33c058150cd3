package gitlab

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// KeyVariable is the pipeline variable that carries CreatePipeline's key.
const KeyVariable = "AGENTBOT_PIPELINE_KEY"

// Pipeline is what agentbot follows of a pipeline.
type Pipeline struct {
	ID, IID, ProjectID int64
	Status             string // created, pending, running, success, failed, canceled, skipped, manual…
	Ref, SHA           string
	Source             string
	WebURL             string
}

func pipelineFrom(p *gl.Pipeline) Pipeline {
	return Pipeline{ID: p.ID, IID: p.IID, ProjectID: p.ProjectID, Status: p.Status, Ref: p.Ref, SHA: p.SHA,
		Source: string(p.Source), WebURL: p.WebURL}
}

// searchedPipelines is how many of the newest API pipelines on a ref
// FindPipeline looks at.
const searchedPipelines = 20

// CreatePipeline runs the project's CI on ref with vars, once per key: the
// key goes in the variable KeyVariable, and after a failed attempt the
// newest API pipelines on ref are searched for it before trying again.
func (c *Client) CreatePipeline(ctx context.Context, projectID int64, ref, key string, vars map[string]string) (Pipeline, error) {
	if err := checkKey(key); err != nil {
		return Pipeline{}, err
	}
	find := func(ctx context.Context) (Pipeline, bool, error) { return c.FindPipeline(ctx, projectID, ref, key) }
	if p, ok, err := find(ctx); err != nil || ok {
		return p, err
	}
	all := maps.Clone(vars)
	if all == nil {
		all = map[string]string{}
	}
	all[KeyVariable] = key
	var list []*gl.PipelineVariableOptions
	for _, k := range slices.Sorted(maps.Keys(all)) {
		list = append(list, &gl.PipelineVariableOptions{Key: gl.Ptr(k), Value: gl.Ptr(all[k]), VariableType: gl.Ptr(gl.EnvVariableType)})
	}
	op := fmt.Sprintf("create pipeline on %s in project %d", ref, projectID)
	return createOnce(ctx, c, op, find, func(ctx context.Context) (Pipeline, error) {
		p, _, err := c.gl.Pipelines.CreatePipeline(projectID, &gl.CreatePipelineOptions{Ref: &ref, Variables: &list}, c.ctxOpt(ctx))
		if err != nil {
			return Pipeline{}, c.wrap(op, err)
		}
		return pipelineFrom(p), nil
	})
}

// FindPipeline finds the pipeline CreatePipeline made for key, among the
// newest pipelines started through the API on ref.
func (c *Client) FindPipeline(ctx context.Context, projectID int64, ref, key string) (Pipeline, bool, error) {
	op := fmt.Sprintf("find pipeline %s on %s in project %d", key, ref, projectID)
	list, _, err := c.gl.Pipelines.ListProjectPipelines(projectID, &gl.ListProjectPipelinesOptions{
		ListOptions: gl.ListOptions{PerPage: searchedPipelines},
		Ref:         &ref, Source: gl.Ptr("api"), OrderBy: gl.Ptr("id"), Sort: gl.Ptr("desc"),
	}, c.ctxOpt(ctx))
	if err != nil {
		return Pipeline{}, false, c.wrap(op, err)
	}
	for _, info := range list {
		vars, _, err := c.gl.Pipelines.GetPipelineVariables(projectID, info.ID, c.ctxOpt(ctx))
		if err != nil {
			return Pipeline{}, false, c.wrap(op, err)
		}
		for _, v := range vars {
			if v.Key == KeyVariable && v.Value == key {
				p, err := c.Pipeline(ctx, projectID, info.ID)
				return p, err == nil, err
			}
		}
	}
	return Pipeline{}, false, nil
}

// Pipeline looks up a pipeline.
func (c *Client) Pipeline(ctx context.Context, projectID, id int64) (Pipeline, error) {
	p, _, err := c.gl.Pipelines.GetPipeline(projectID, id, c.ctxOpt(ctx))
	if err != nil {
		return Pipeline{}, c.wrap(fmt.Sprintf("get pipeline %d of project %d", id, projectID), err)
	}
	return pipelineFrom(p), nil
}

// Job is one CI job.
type Job struct {
	ID            int64
	Name, Stage   string
	Status        string
	FailureReason string
	WebURL        string
}

// maxJobPages bounds PipelineJobs: 10 pages of 100.
const maxJobPages = 10

// PipelineJobs lists a pipeline's jobs, only those with the given statuses
// ("failed", …) when any are given.
func (c *Client) PipelineJobs(ctx context.Context, projectID, pipelineID int64, statuses ...string) ([]Job, error) {
	opt := &gl.ListJobsOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	if len(statuses) > 0 {
		scope := make([]gl.BuildStateValue, len(statuses))
		for i, s := range statuses {
			scope[i] = gl.BuildStateValue(s)
		}
		opt.Scope = &scope
	}
	var out []Job
	for range maxJobPages {
		jobs, resp, err := c.gl.Jobs.ListPipelineJobs(projectID, pipelineID, opt, c.ctxOpt(ctx))
		if err != nil {
			return nil, c.wrap(fmt.Sprintf("list jobs of pipeline %d of project %d", pipelineID, projectID), err)
		}
		for _, j := range jobs {
			out = append(out, Job{ID: j.ID, Name: j.Name, Stage: j.Stage, Status: j.Status, FailureReason: j.FailureReason, WebURL: j.WebURL})
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return out, nil
}

// JobTrace returns the last maxBytes of a job's log (the whole log when
// maxBytes <= 0), reading the rest without keeping it.
func (c *Client) JobTrace(ctx context.Context, projectID, jobID, maxBytes int64) (string, error) {
	op := fmt.Sprintf("get log of job %d of project %d", jobID, projectID)
	req, err := c.gl.NewRequest(http.MethodGet, fmt.Sprintf("projects/%d/jobs/%d/trace", projectID, jobID), nil,
		[]gl.RequestOptionFunc{c.ctxOpt(ctx)})
	if err != nil {
		return "", c.wrap(op, err)
	}
	tail := &tailWriter{max: maxBytes}
	if _, err := c.gl.Do(req, tail); err != nil {
		return "", c.wrap(op, err)
	}
	return string(tail.bytes()), nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	max int64
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.max > 0 && int64(len(p)) >= w.max {
		w.buf = append(w.buf[:0], p[int64(len(p))-w.max:]...)
		return n, nil
	}
	w.buf = append(w.buf, p...)
	if w.max > 0 && int64(len(w.buf)) > 2*w.max {
		w.buf = append(w.buf[:0], w.buf[int64(len(w.buf))-w.max:]...)
	}
	return n, nil
}

func (w *tailWriter) bytes() []byte {
	if w.max > 0 && int64(len(w.buf)) > w.max {
		return w.buf[int64(len(w.buf))-w.max:]
	}
	return w.buf
}
