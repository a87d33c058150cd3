package webhook

import (
	"strconv"
	"strings"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"gitlab.com/agentbot/agentbot/internal/command"
	"gitlab.com/agentbot/agentbot/internal/queue"
)

// botBranchPrefix starts the branches agentbot pushes (workspace.BranchPrefix).
const botBranchPrefix = "agent/"

// botVariables are the CI variables of the pipelines agentbot starts itself:
// the run id the pipeline executor passes, and the key gitlab.CreatePipeline
// adds.
var botVariables = []string{"AGENTBOT_RUN_ID", "AGENTBOT_PIPELINE_KEY"}

// classifyReview makes a review job when a Merge Request Hook adds the bot
// to the reviewers. The job is keyed by the merge request's head commit, so
// that asking again for the same head is a duplicate, while asking after
// new commits reviews the new head.
func classifyReview(e *gitlab.MergeEvent, bot Bot, now time.Time) Decision {
	a := e.ObjectAttributes
	switch {
	case bot.UserID == 0:
		return Decision{Ignore: "bot user unknown"}
	case e.User != nil && e.User.ID == bot.UserID:
		return Decision{Ignore: "the bot's own change"}
	case !hasUser(e.Changes.Reviewers.Current, bot.UserID) || hasUser(e.Changes.Reviewers.Previous, bot.UserID):
		return Decision{Ignore: "not a review request"}
	case a.State != "" && a.State != "opened":
		return Decision{Ignore: "merge request not open"}
	case a.IID == 0 || e.Project.ID == 0:
		return Decision{Ignore: "merge request not identified"}
	case a.LastCommit.ID == "":
		return Decision{Ignore: "merge request without commits"}
	}
	head := a.LastCommit.ID
	key := "review:" + strconv.FormatInt(e.Project.ID, 10) + ":" + strconv.FormatInt(a.IID, 10) + ":" + head
	job := &queue.RunArgs{
		DeliveryKey: key,
		Trigger:     queue.TriggerReview,
		ProjectID:   e.Project.ID,
		ProjectPath: e.Project.PathWithNamespace,
		ThreadKind:  "mr",
		IID:         a.IID,
		Title:       a.Title,
		Command:     command.Command{Kind: command.Review, Verb: "review", Request: "review"},
		HeadSHA:     head,
		ReceivedAt:  now.UTC(),
	}
	if e.User != nil {
		job.AuthorID, job.AuthorUsername = e.User.ID, e.User.Username
	}
	return Decision{Job: job}
}

// classifyPipeline makes a pipeline job for the worker to match against the
// project's rules (which live in the repository, so only the worker can
// read them). The pipelines agentbot starts, and those on its own branches,
// never make one, so that no rule can start itself again.
func classifyPipeline(e *gitlab.PipelineEvent, bot Bot, now time.Time) Decision {
	a := e.ObjectAttributes
	own := &PipelineStatus{ProjectID: e.Project.ID, PipelineID: a.ID, Status: a.Status}
	if own.ProjectID == 0 || own.PipelineID == 0 || own.Status == "" {
		own = nil
	}
	switch {
	case e.User != nil && bot.UserID != 0 && e.User.ID == bot.UserID:
		return Decision{Ignore: "the bot's own pipeline", Pipeline: own}
	case strings.HasPrefix(strings.TrimPrefix(a.Ref, "refs/heads/"), botBranchPrefix):
		return Decision{Ignore: "pipeline on the bot's branch"}
	case hasBotVariable(a.Variables):
		return Decision{Ignore: "the bot's own pipeline", Pipeline: own}
	case a.ID == 0 || e.Project.ID == 0 || a.Status == "":
		return Decision{Ignore: "pipeline not identified"}
	}
	job := &queue.RunArgs{
		// One job per pipeline and status: GitLab sends a hook on every
		// status change, and may resend each.
		DeliveryKey:    "pipeline:" + strconv.FormatInt(e.Project.ID, 10) + ":" + strconv.FormatInt(a.ID, 10) + ":" + a.Status,
		Trigger:        queue.TriggerPipeline,
		ProjectID:      e.Project.ID,
		ProjectPath:    e.Project.PathWithNamespace,
		HeadSHA:        a.SHA,
		PipelineID:     a.ID,
		PipelineIID:    a.IID,
		PipelineStatus: a.Status,
		Ref:            a.Ref,
		Source:         a.Source,
		ReceivedAt:     now.UTC(),
	}
	if mr := e.MergeRequest; mr.IID != 0 && (mr.TargetProjectID == 0 || mr.TargetProjectID == e.Project.ID) {
		job.ThreadKind, job.IID, job.Title = "mr", mr.IID, mr.Title
	}
	if e.User != nil {
		job.AuthorID, job.AuthorUsername = e.User.ID, e.User.Username
	}
	return Decision{Job: job}
}

func hasUser(users []*gitlab.EventUser, id int64) bool {
	for _, u := range users {
		if u != nil && u.ID == id {
			return true
		}
	}
	return false
}

func hasBotVariable(vars []gitlab.PipelineEventObjectAttributesVariable) bool {
	for _, v := range vars {
		for _, k := range botVariables {
			if v.Key == k {
				return true
			}
		}
	}
	return false
}
