// Package workspace gives the agent a project to work in without a checkout:
// a shallow fetch (go-git, depth 1, one branch, no tags) into a temporary
// object store, the base commit's tree read lazily through that store, a write
// overlay under os.Root, and a commit built from the base tree plus the
// overlay with go-git's object API, pushed to an agent/… branch.
//
// When the server allows filters (GitLab does), the fetch brings the commit
// and its trees only, and the overlay fetches the blobs the agent reads, so a
// run costs what it touches, not the size of the repository. Against a
// server without filters the whole tree comes at depth 1.
//
// The token lives in memory only: it is sent as HTTP basic auth and never
// written to the store, a config file, a log line or an error.
package workspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Defaults for the size limits.
const (
	DefaultMaxFileBytes   = 1 << 20
	DefaultMaxCommitBytes = 10 << 20
)

// maxAlternatives bounds the names tried when a branch is someone else's.
const maxAlternatives = 20

// objectCacheBytes bounds go-git's decoded-object cache; reads are few and
// the base tree is never walked whole.
const objectCacheBytes = 8 * cache.MiByte

// Signature names the commit author (the bot).
type Signature struct {
	Name  string
	Email string
}

// Options configure Open.
type Options struct {
	// RemoteURL is the project's http(s) clone URL, without credentials.
	RemoteURL string
	// Token is sent as HTTP basic auth (user "oauth2"); it is kept in memory
	// only.
	Token string
	// BaseBranch is where a new branch starts: the default branch, or the
	// source branch of the merge request the command was given on.
	BaseBranch string
	// DefaultBranch is the project's default branch; never pushed to.
	DefaultBranch string
	// Protected lists protected branch names or patterns ("release/*");
	// never pushed to.
	Protected []string
	// Branch is the preferred agent/… branch (see BranchName). When it exists
	// and agentbot made it, the workspace starts from it; when someone else
	// made it, the next free AlternativeName is used.
	Branch string
	// Author is the bot identity, author and committer of the commit.
	Author Signature
	// RunID identifies the run; it is written as the Agentbot-Run trailer and
	// lets a retried run find the commit it already pushed.
	RunID string
	// TempDir is where the workspace's temporary directory is made; "" means
	// os.TempDir().
	TempDir string
	// Policy re-checks every written path at commit time (the file tools'
	// allowlist, e.g. a tools.Policy's Check method). Required.
	Policy func(path string) error
	// MaxFileBytes and MaxCommitBytes bound one file and one commit; zero
	// means the defaults.
	MaxFileBytes   int64
	MaxCommitBytes int64
	// HTTPClient carries the git traffic; nil means a client with dial, TLS
	// and response-header timeouts. Deadlines come from the context.
	HTTPClient *http.Client
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
	// Now stamps the commit; nil means time.Now.
	Now func() time.Time
}

// Workspace is one shallow fetch of a project with a write overlay. Close it
// when done; its temporary files are removed.
type Workspace struct {
	opts    Options
	project string // path of the remote URL, for messages
	log     *slog.Logger
	client  transport.Transport
	ep      *transport.Endpoint
	auth    *githttp.BasicAuth

	dir     string
	store   *filesystem.Storage
	overlay *Overlay

	branch        string
	branchExisted bool
	branchHead    Head
	base          plumbing.Hash // the commit the overlay reads; the commit's parent
	baseTree      plumbing.Hash
	caps          *capability.List // the upload-pack capabilities seen at Open
	partial       bool             // blobs are fetched on demand

	mu        sync.Mutex
	commit    plumbing.Hash   // made by Commit, zero before
	newObjs   []plumbing.Hash // objects Commit wrote, pushed by Push
	closeOnce sync.Once
	closeErr  error
}

// Open fetches the project shallowly into a new temporary directory and
// prepares the overlay. It starts from Options.Branch when agentbot's branch
// exists on the remote, else from Options.BaseBranch.
func Open(ctx context.Context, o Options) (_ *Workspace, err error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.MaxCommitBytes <= 0 {
		o.MaxCommitBytes = DefaultMaxCommitBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ep, err := transport.NewEndpoint(o.RemoteURL)
	if err != nil {
		return nil, fmt.Errorf("open workspace: parse remote URL: %w", err)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	w := &Workspace{
		opts:    o,
		project: projectPath(o.RemoteURL),
		log:     log,
		client:  githttp.NewClient(hc),
		ep:      ep,
		auth:    &githttp.BasicAuth{Username: "oauth2", Password: o.Token},
	}
	w.log = log.With("project", w.project)

	w.dir, err = os.MkdirTemp(o.TempDir, "agentbot-ws-")
	if err != nil {
		return nil, fmt.Errorf("open workspace: make temp dir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = w.Close()
		}
	}()
	gitDir := filepath.Join(w.dir, "git")
	overlayDir := filepath.Join(w.dir, "overlay")
	for _, d := range []string{gitDir, overlayDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("open workspace: %w", err)
		}
	}
	w.store = filesystem.NewStorageWithOptions(osfs.New(gitDir), cache.NewObjectLRU(objectCacheBytes),
		// Not ExclusiveAccess: with it, go-git's HasEncodedObject misses
		// packed objects.
		filesystem.Options{KeepDescriptors: true})
	if err := w.store.Init(); err != nil {
		return nil, fmt.Errorf("open workspace: init object store: %w", err)
	}

	if err := w.fetch(ctx); err != nil {
		return nil, err
	}
	base, err := object.GetCommit(w.store, w.base)
	if err != nil {
		return nil, fmt.Errorf("open workspace: read base commit %s: %w", w.base, err)
	}
	w.baseTree = base.TreeHash
	w.overlay, err = newOverlay(w.store, base.TreeHash, overlayDir, o.MaxFileBytes, o.MaxCommitBytes, base.Committer.When, w.fetchBlobs)
	if err != nil {
		return nil, fmt.Errorf("open workspace: %w", err)
	}
	return w, nil
}

func (o *Options) validate() error {
	var problems []error
	u, err := url.Parse(o.RemoteURL)
	switch {
	case o.RemoteURL == "":
		problems = append(problems, errors.New("RemoteURL is empty"))
	case err != nil:
		problems = append(problems, errors.New("RemoteURL does not parse"))
	case u.Scheme != "https" && u.Scheme != "http":
		problems = append(problems, errors.New("RemoteURL must be http(s)"))
	case u.User != nil:
		problems = append(problems, errors.New("RemoteURL must not hold credentials (pass Token)"))
	}
	if o.BaseBranch == "" {
		problems = append(problems, errors.New("BaseBranch is empty"))
	}
	if o.Author.Name == "" || o.Author.Email == "" {
		problems = append(problems, errors.New("Author name and email are required"))
	}
	if o.RunID == "" || strings.ContainsAny(o.RunID, "\r\n") {
		problems = append(problems, errors.New("RunID is empty or has a line break"))
	}
	if o.Policy == nil {
		problems = append(problems, errors.New("Policy is required"))
	}
	if err := checkPushTarget(o.Branch, o); err != nil {
		problems = append(problems, err)
	}
	if len(problems) == 0 {
		return nil
	}
	format := "open workspace: %w" + strings.Repeat("; %w", len(problems)-1)
	args := make([]any, len(problems))
	for i, p := range problems {
		args[i] = p
	}
	return fmt.Errorf(format, args...)
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   2,
	}}
}

// projectPath returns "group/proj" for messages.
func projectPath(remote string) string {
	u, err := url.Parse(remote)
	if err != nil {
		return "project"
	}
	return strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
}

// FS is the workspace's file system for the file tools: the base tree plus
// the write overlay.
func (w *Workspace) FS() *Overlay { return w.overlay }

// Branch is the branch the workspace will push to (Options.Branch or an
// alternative when that one is someone else's).
func (w *Workspace) Branch() string { return w.branch }

// BranchExisted reports whether Branch existed on the remote at Open, made by
// agentbot; the workspace then started from its head.
func (w *Workspace) BranchExisted() bool { return w.branchExisted }

// BranchHead describes the existing branch's head; zero when it did not exist.
func (w *Workspace) BranchHead() Head { return w.branchHead }

// BaseCommit is the commit the overlay reads and the new commit's parent: the
// existing branch's head, or the base branch's head.
func (w *Workspace) BaseCommit() string { return w.base.String() }

// AlreadyPushed reports whether this run (Options.RunID) already pushed the
// branch's head: a retried run after a crash after the push. The caller
// should then skip to publishing the merge request instead of running the
// agent again.
func (w *Workspace) AlreadyPushed() bool {
	return w.branchExisted && w.branchHead.RunID == w.opts.RunID
}

// Dir is the workspace's temporary directory (removed by Close).
func (w *Workspace) Dir() string { return w.dir }

// Close removes the workspace's temporary files. It is safe to call more than
// once.
func (w *Workspace) Close() error {
	w.closeOnce.Do(func() {
		var errs []error
		if w.overlay != nil {
			errs = append(errs, w.overlay.close())
		}
		if w.store != nil {
			errs = append(errs, w.store.Close())
		}
		if w.dir != "" {
			errs = append(errs, os.RemoveAll(w.dir))
		}
		if err := errors.Join(errs...); err != nil {
			w.closeErr = fmt.Errorf("close workspace: %w", err)
		}
	})
	return w.closeErr
}

// RemoveStale removes workspaces under dir (os.TempDir() when "") that are
// older than age: those of a process that was killed before it could clean
// up. Run it at start-up with an age past the longest run. It returns how
// many it removed.
func RemoveStale(dir string, age time.Duration) (int, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", dir, err)
	}
	removed := 0
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "agentbot-ws-") {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < age {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return removed, fmt.Errorf("remove %s: %w", e.Name(), err)
		}
		removed++
	}
	return removed, nil
}
