package workspace

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// BranchPrefix starts every branch agentbot pushes to; it refuses any other.
const BranchPrefix = "agent/"

// RunTrailer is the commit trailer that marks a commit as agentbot's and
// names the run that made it. A branch whose head commit lacks it (or whose
// author is not the bot) is someone else's.
const RunTrailer = "Agentbot-Run"

// maxSlug bounds the slug part of a branch name.
const maxSlug = 40

// BranchName returns agentbot's deterministic branch name for a command:
// BranchName("issue", 7, "analyze AAPL") is "agent/issue-7-analyze-aapl".
// The slug keeps lower-case ASCII letters and digits, turns every other run of
// characters into one "-", and is cut to a bounded length.
func BranchName(kind string, iid int64, slugSource string) string {
	k := slug(kind, maxSlug)
	if k == "" {
		k = "item"
	}
	name := BranchPrefix + k + "-" + strconv.FormatInt(iid, 10)
	if s := slug(slugSource, maxSlug); s != "" {
		name += "-" + s
	}
	return name
}

// AlternativeName returns the n-th alternative to a branch name that is taken
// by someone else: AlternativeName(name, 1) is name itself, n >= 2 appends
// "-n".
func AlternativeName(name string, n int) string {
	if n <= 1 {
		return name
	}
	return name + "-" + strconv.Itoa(n)
}

func slug(s string, limit int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= limit {
			break
		}
	}
	out := b.String()
	if len(out) > limit {
		out = out[:limit]
	}
	return strings.Trim(out, "-")
}

// Head describes the head commit of an existing branch.
type Head struct {
	Hash        string
	AuthorName  string
	AuthorEmail string
	// RunID is the value of the Agentbot-Run trailer; "" when absent.
	RunID string
}

// BranchOwnedByAgent reports whether a branch whose head is h was made by
// agentbot: the head's author is the bot (botEmail, case-insensitive) and the
// message carries an Agentbot-Run trailer. A person who pushes on top of an
// agentbot branch makes it theirs, and agentbot then picks another name.
func BranchOwnedByAgent(h Head, botEmail string) bool {
	return h.RunID != "" && botEmail != "" && strings.EqualFold(h.AuthorEmail, botEmail)
}

// trailerValue returns the value of the last "key: value" line of a commit
// message's final paragraph, or "".
func trailerValue(message, key string) string {
	msg := strings.TrimRight(message, "\n")
	if i := strings.LastIndex(msg, "\n\n"); i >= 0 {
		msg = msg[i+2:]
	}
	value := ""
	for line := range strings.SplitSeq(msg, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) {
			value = strings.TrimSpace(v)
		}
	}
	return value
}

// ErrRefusedBranch means agentbot will not push to that branch: it is the
// default or base branch, matches a protected pattern, or is not an agent/
// branch. It is permanent.
var ErrRefusedBranch = errors.New("refused branch")

// checkPushTarget refuses branches agentbot must never push to.
func checkPushTarget(branch string, o *Options) error {
	switch {
	case !strings.HasPrefix(branch, BranchPrefix) || len(branch) == len(BranchPrefix):
		return fmt.Errorf("%w %q: agentbot pushes only to %s… branches", ErrRefusedBranch, branch, BranchPrefix)
	case branch == o.BaseBranch || branch == o.DefaultBranch:
		return fmt.Errorf("%w %q: it is the base or default branch", ErrRefusedBranch, branch)
	}
	for _, p := range o.Protected {
		if globMatch(p, branch) {
			return fmt.Errorf("%w %q: it matches protected branch %q", ErrRefusedBranch, branch, p)
		}
	}
	if err := plumbing.NewBranchReferenceName(branch).Validate(); err != nil {
		return fmt.Errorf("%w %q: not a valid branch name", ErrRefusedBranch, branch)
	}
	return nil
}

// globMatch matches GitLab protected-branch patterns, where "*" stands for
// any run of characters, "/" included.
func globMatch(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return strings.HasSuffix(name, last)
}
