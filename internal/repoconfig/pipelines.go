package repoconfig

import (
	"strings"

	"gitlab.com/agentbot/agentbot/internal/tools"
)

// BotBranchPrefix starts the branches agentbot pushes. Pipelines on them
// never match a rule, so a rule whose run opens a merge request cannot
// start itself again.
const BotBranchPrefix = "agent/"

// Pipeline is what a rule matches against, from a Pipeline Hook's
// object_attributes.
type Pipeline struct {
	Status string // "failed"
	Ref    string // "main", "feature/q3"
	Source string // "push", "schedule", "merge_request_event", …
}

// Match returns the first rule that matches p. Pipelines on agentbot's own
// branches (agent/…) never match. The caller must also drop the pipelines
// agentbot started itself (the pipeline executor), whatever their ref.
func (c *Config) Match(p Pipeline) (Rule, bool) {
	if c == nil || strings.HasPrefix(p.Ref, BotBranchPrefix) || strings.HasPrefix(p.Ref, "refs/heads/"+BotBranchPrefix) {
		return Rule{}, false
	}
	for _, r := range c.Pipelines {
		if r.matches(p) {
			return r, true
		}
	}
	return Rule{}, false
}

func (r Rule) matches(p Pipeline) bool {
	if !contains(r.Status, p.Status) {
		return false
	}
	if len(r.Sources) > 0 && !contains(r.Sources, p.Source) {
		return false
	}
	if len(r.Refs) == 0 {
		return true
	}
	ref := strings.TrimPrefix(p.Ref, "refs/heads/")
	for _, g := range r.Refs {
		if tools.MatchGlob(g, ref) {
			return true
		}
	}
	return false
}
