package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Errors callers branch on. Messages never hold the token.
var (
	// ErrAuth: the remote refused the token. Permanent until the token or
	// its scopes change.
	ErrAuth = errors.New("git authentication failed")
	// ErrNotFound: the repository or the base branch does not exist, or the
	// token cannot see it. Permanent.
	ErrNotFound = errors.New("not found")
	// ErrBranchMoved: the branch changed on the remote since the fetch.
	// Retryable: a new run starts from the new head.
	ErrBranchMoved = errors.New("branch moved on the remote")
	// ErrPushRejected: the remote refused the update (a protected branch, a
	// server hook, a ref that changed during the push). Permanent for this
	// commit.
	ErrPushRejected = errors.New("push rejected by the remote")
	// ErrNoFreeBranch: every alternative branch name is taken by someone
	// else. Permanent.
	ErrNoFreeBranch = errors.New("no free branch name")
)

const tokenHint = "check GITLAB_TOKEN and its scopes read_repository and write_repository"

// remoteErr turns a transport error into a message that says what failed and
// what to check, without the token.
func (w *Workspace) remoteErr(op string, err error) error {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		err = fmt.Errorf("%s %s: %w (%s)", op, w.project, ErrAuth, tokenHint)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		err = fmt.Errorf("%s %s: repository %w or the token cannot see it (%s)", op, w.project, ErrNotFound, tokenHint)
	default:
		err = fmt.Errorf("%s %s: %w", op, w.project, err)
	}
	return w.redact(err)
}

// redact removes the token from an error's message. When it had to, the
// result keeps only the classification, not the wrapped chain (which still
// holds the token).
func (w *Workspace) redact(err error) error {
	if err == nil || w.opts.Token == "" || !strings.Contains(err.Error(), w.opts.Token) {
		return err
	}
	r := &redactedError{msg: strings.ReplaceAll(err.Error(), w.opts.Token, "[REDACTED]")}
	for _, kind := range []error{ErrAuth, ErrNotFound, ErrBranchMoved, ErrPushRejected, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, kind) {
			r.kind = kind
			break
		}
	}
	return r
}

type redactedError struct {
	msg  string
	kind error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.kind }

// fetch lists the remote's branches, picks the branch to push to, and fetches
// the commit to start from (depth 1) into the store.
func (w *Workspace) fetch(ctx context.Context) error {
	start := time.Now()
	sess, err := w.client.NewUploadPackSession(w.ep, w.auth)
	if err != nil {
		return w.remoteErr("fetch", err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return w.remoteErr("fetch", err)
	}
	refs, err := ar.AllReferences()
	if err != nil {
		return w.remoteErr("fetch", err)
	}
	baseRef, err := refs.Reference(plumbing.NewBranchReferenceName(w.opts.BaseBranch))
	if err != nil {
		return fmt.Errorf("fetch %s: base branch %q %w", w.project, w.opts.BaseBranch, ErrNotFound)
	}

	for n := 1; n <= maxAlternatives && w.branch == ""; n++ {
		name := AlternativeName(w.opts.Branch, n)
		if checkPushTarget(name, &w.opts) != nil {
			continue
		}
		ref, err := refs.Reference(plumbing.NewBranchReferenceName(name))
		if err != nil {
			w.branch = name
			break
		}
		head, err := w.remoteHead(ctx, sess, ar, ref.Hash())
		if err != nil {
			return err
		}
		if !BranchOwnedByAgent(head, w.opts.Author.Email) {
			w.log.Info("branch exists but agentbot did not make it; trying another name",
				"branch", name, "head", head.Hash)
			continue
		}
		w.branch, w.branchExisted, w.branchHead = name, true, head
	}
	if w.branch == "" {
		return fmt.Errorf("fetch %s: %w: %s and its alternatives are taken", w.project, ErrNoFreeBranch, w.opts.Branch)
	}

	w.base = baseRef.Hash()
	if w.branchExisted {
		w.base = plumbing.NewHash(w.branchHead.Hash)
	}
	// A server that filters and serves any reachable object (GitLab does)
	// sends the commit and its trees only; the overlay fetches the few blobs
	// the agent reads. Otherwise the whole tree comes at once.
	w.caps = ar.Capabilities
	w.partial = ar.Capabilities.Supports(capability.Filter) &&
		ar.Capabilities.Supports(capability.AllowReachableSHA1InWant)
	if w.store.HasEncodedObject(w.base) != nil {
		var filter packp.Filter
		if w.partial {
			filter = packp.FilterBlobNone()
		}
		if err := w.fetchPack(ctx, sess, w.caps, w.store, []plumbing.Hash{w.base}, 1, filter); err != nil {
			return err
		}
	}
	w.log.Info("fetched", "branch", w.branch, "existed", w.branchExisted, "base", w.base.String(),
		"blobs_on_demand", w.partial, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// blobFetchTimeout bounds one on-demand blob fetch (the file tools' calls
// carry no context).
const blobFetchTimeout = time.Minute

// fetchBlobs fetches blobs the overlay needs, in one request.
func (w *Workspace) fetchBlobs(hashes []plumbing.Hash) error {
	if !w.partial {
		return fmt.Errorf("%d objects missing from a full fetch", len(hashes))
	}
	ctx, cancel := context.WithTimeout(context.Background(), blobFetchTimeout)
	defer cancel()
	start := time.Now()
	sess, err := w.client.NewUploadPackSession(w.ep, w.auth)
	if err != nil {
		return w.remoteErr("fetch", err)
	}
	defer sess.Close()
	if err := w.fetchPack(ctx, sess, w.caps, w.store, hashes, 0, ""); err != nil {
		return err
	}
	w.log.Debug("fetched blobs", "count", len(hashes), "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// remoteHead reads a remote commit without its tree when the server allows
// filters, else with a depth-1 fetch into the store.
func (w *Workspace) remoteHead(ctx context.Context, sess transport.UploadPackSession, ar *packp.AdvRefs, h plumbing.Hash) (Head, error) {
	var s storage.Storer = w.store
	if ar.Capabilities.Supports(capability.Filter) {
		s = memory.NewStorage()
		if err := w.fetchPack(ctx, sess, ar.Capabilities, s, []plumbing.Hash{h}, 1, packp.FilterTreeDepth(0)); err != nil {
			return Head{}, err
		}
	} else if w.store.HasEncodedObject(h) != nil {
		if err := w.fetchPack(ctx, sess, ar.Capabilities, s, []plumbing.Hash{h}, 1, ""); err != nil {
			return Head{}, err
		}
	}
	c, err := object.GetCommit(s, h)
	if err != nil {
		return Head{}, fmt.Errorf("fetch %s: read commit %s: %w", w.project, h, err)
	}
	return headOf(c), nil
}

func headOf(c *object.Commit) Head {
	return Head{
		Hash:        c.Hash.String(),
		AuthorName:  c.Author.Name,
		AuthorEmail: c.Author.Email,
		RunID:       trailerValue(c.Message, RunTrailer),
	}
}

// fetchPack fetches wants into s: commits at depth (0: no limit, for
// blobs), optionally filtered.
func (w *Workspace) fetchPack(ctx context.Context, sess transport.UploadPackSession, caps *capability.List,
	s storage.Storer, wants []plumbing.Hash, depth int, filter packp.Filter) (err error) {
	req := packp.NewUploadPackRequestFromCapabilities(caps)
	// A thin pack needs objects we do not have; we send no haves anyway.
	req.Capabilities.Delete(capability.ThinPack)
	if caps.Supports(capability.NoProgress) {
		_ = req.Capabilities.Set(capability.NoProgress)
	}
	if depth > 0 {
		_ = req.Capabilities.Set(capability.Shallow)
		req.Depth = packp.DepthCommits(depth)
	}
	req.Wants = wants
	if filter != "" {
		_ = req.Capabilities.Set(capability.Filter)
		req.Filter = filter
	}
	resp, err := sess.UploadPack(ctx, req)
	if err != nil {
		return w.remoteErr("fetch", err)
	}
	defer func() {
		if cerr := resp.Close(); err == nil && cerr != nil {
			err = w.remoteErr("fetch", cerr)
		}
	}()
	if len(resp.Shallows) > 0 {
		old, err := s.Shallow()
		if err != nil {
			return fmt.Errorf("fetch %s: %w", w.project, err)
		}
		if err := s.SetShallow(append(old, resp.Shallows...)); err != nil {
			return fmt.Errorf("fetch %s: %w", w.project, err)
		}
	}
	var r io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		r = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		r = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	if err := packfile.UpdateObjectStorage(s, r); err != nil {
		return w.remoteErr("fetch", err)
	}
	return nil
}

// Push pushes the commit made by Commit to the workspace's branch, without
// force: the remote branch must still be where it was at the fetch (or still
// absent), else ErrBranchMoved. It is idempotent: when the branch already
// holds this commit, or an equal one (same tree, same parent) that a crashed
// earlier attempt pushed, Push succeeds without pushing again. It refuses the
// default branch, protected branches and any branch outside agent/.
func (w *Workspace) Push(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.commit.IsZero() {
		return errors.New("push: nothing committed")
	}
	if err := checkPushTarget(w.branch, &w.opts); err != nil {
		return fmt.Errorf("push %s: %w", w.project, err)
	}
	start := time.Now()
	sess, err := w.client.NewReceivePackSession(w.ep, w.auth)
	if err != nil {
		return w.remoteErr("push", err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return w.remoteErr("push", err)
	}
	refs, err := ar.AllReferences()
	if err != nil {
		return w.remoteErr("push", err)
	}
	refName := plumbing.NewBranchReferenceName(w.branch)
	var current, expected plumbing.Hash
	if ref, err := refs.Reference(refName); err == nil {
		current = ref.Hash()
	}
	if w.branchExisted {
		expected = plumbing.NewHash(w.branchHead.Hash)
	}
	switch {
	case current == w.commit:
		w.log.Info("branch already holds the commit", "branch", w.branch, "commit", w.commit.String())
		return nil
	case current != expected:
		if !current.IsZero() {
			same, err := w.sameCommit(ctx, current)
			if err != nil {
				return err
			}
			if same {
				w.log.Info("branch already holds an equal commit", "branch", w.branch, "commit", current.String())
				w.commit = current
				return nil
			}
		}
		return fmt.Errorf("push %s: %w: %s is at %s, expected %s; retry the run",
			w.project, ErrBranchMoved, w.branch, shortHash(current), shortHash(expected))
	}

	var pack bytes.Buffer
	if _, err := packfile.NewEncoder(&pack, w.store, false).Encode(w.newObjs, 0); err != nil {
		return fmt.Errorf("push %s: encode pack: %w", w.project, err)
	}
	packBytes := pack.Len()
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	req.Commands = []*packp.Command{{Name: refName, Old: expected, New: w.commit}}
	req.Packfile = io.NopCloser(&pack)
	// The server's messages ("You are not allowed to push code to protected
	// branches") come on the side band; keep the start of them for errors.
	remoteMsg := &capWriter{limit: 2048}
	if ar.Capabilities.Supports(capability.Sideband64k) {
		_ = req.Capabilities.Set(capability.Sideband64k)
		req.Progress = remoteMsg
	}
	rs, err := sess.ReceivePack(ctx, req)
	if rs != nil && rs.Error() != nil {
		err = fmt.Errorf("push %s to %s: %w: %w", w.project, w.branch, ErrPushRejected, rs.Error())
		if msg := remoteMsg.String(); msg != "" {
			err = fmt.Errorf("%w (remote: %s)", err, msg)
		}
		return w.redact(err)
	}
	if err != nil {
		return w.remoteErr("push", err)
	}
	w.log.Info("pushed", "branch", w.branch, "commit", w.commit.String(), "objects", len(w.newObjs),
		"pack_bytes", packBytes, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// sameCommit reports whether remote commit h has our commit's tree and
// parent: an earlier attempt of this push that succeeded.
func (w *Workspace) sameCommit(ctx context.Context, h plumbing.Hash) (bool, error) {
	ours, err := object.GetCommit(w.store, w.commit)
	if err != nil {
		return false, fmt.Errorf("push %s: read commit: %w", w.project, err)
	}
	sess, err := w.client.NewUploadPackSession(w.ep, w.auth)
	if err != nil {
		return false, w.remoteErr("push", err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return false, w.remoteErr("push", err)
	}
	var s storer.EncodedObjectStorer = w.store
	if w.store.HasEncodedObject(h) != nil {
		mem := memory.NewStorage()
		filter := packp.Filter("")
		if ar.Capabilities.Supports(capability.Filter) {
			filter = packp.FilterTreeDepth(0)
		}
		if err := w.fetchPack(ctx, sess, ar.Capabilities, mem, []plumbing.Hash{h}, 1, filter); err != nil {
			return false, err
		}
		s = mem
	}
	theirs, err := object.GetCommit(s, h)
	if err != nil {
		return false, fmt.Errorf("push %s: read remote commit %s: %w", w.project, h, err)
	}
	return theirs.TreeHash == ours.TreeHash && len(theirs.ParentHashes) == 1 &&
		theirs.ParentHashes[0] == w.base, nil
}

func shortHash(h plumbing.Hash) string {
	if h.IsZero() {
		return "nothing (absent)"
	}
	return h.String()[:12]
}

// capWriter keeps the first limit bytes written to it.
type capWriter struct {
	limit int
	buf   []byte
}

func (c *capWriter) Write(p []byte) (int, error) {
	if room := c.limit - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// String returns the kept text on one line.
func (c *capWriter) String() string {
	return strings.Join(strings.Fields(string(c.buf)), " ")
}
