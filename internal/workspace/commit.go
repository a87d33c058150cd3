package workspace

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrNothingToCommit: the overlay holds no change to the base tree; there is
// no commit and nothing to push.
var ErrNothingToCommit = errors.New("nothing to commit")

// ErrNotAllowed: a written path fails the write policy at commit time.
var ErrNotAllowed = errors.New("path not allowed")

// Trailer is one "Key: Value" line at the end of the commit message, such as
// Co-authored-by or Requested-by.
type Trailer struct {
	Key   string
	Value string
}

// CommitInput is what the commit says.
type CommitInput struct {
	// Message names the command; its first line is the subject.
	Message string
	// Trailers follow the message; the Agentbot-Run trailer is added.
	Trailers []Trailer
}

// CommitResult describes the commit.
type CommitResult struct {
	Hash string
	// Files are the paths that differ from the base, sorted.
	Files []string
	// Bytes is the size of those files.
	Bytes int64
	// AlreadyPushed: the branch's head is this run's commit from an earlier
	// attempt and the overlay matches it; Push will find it there. Files
	// then lists the files this attempt wrote (equal to the head's).
	AlreadyPushed bool
}

// change is one overlay file to put in the tree.
type change struct {
	blob plumbing.Hash
	mode filemode.FileMode
}

// node is a directory on the way to changed files.
type node struct {
	files map[string]change
	dirs  map[string]*node
}

func newNode() *node { return &node{files: map[string]change{}, dirs: map[string]*node{}} }

// Commit builds a commit from the base tree plus the overlay: it re-checks
// every overlay path against the policy and the size limits, writes the new
// blobs and only the trees on the paths to them (unchanged subtrees keep
// their hashes), and a commit whose parent is the base commit, authored by
// the bot. It returns ErrNothingToCommit when the overlay changes nothing.
func (w *Workspace) Commit(ctx context.Context, in CommitInput) (CommitResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.overlay
	o.mu.Lock()
	defer o.mu.Unlock()

	msg, err := commitMessage(in, w.opts.RunID)
	if err != nil {
		return CommitResult{}, err
	}

	var names []string
	err = fs.WalkDir(o.root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", name)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > w.opts.MaxFileBytes {
			return fmt.Errorf("%s: %w: %d bytes, the limit per file is %d",
				name, ErrTooLarge, info.Size(), w.opts.MaxFileBytes)
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		return CommitResult{}, fmt.Errorf("commit: list overlay: %w", err)
	}

	root := newNode()
	var res, same CommitResult // same: files written back unchanged
	var newObjs []plumbing.Hash
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return CommitResult{}, fmt.Errorf("commit: %w", err)
		}
		if err := checkName("commit", name, true); err != nil {
			return CommitResult{}, fmt.Errorf("commit: %w", err)
		}
		if err := w.opts.Policy(name); err != nil {
			return CommitResult{}, fmt.Errorf("commit: %s: %w: %w", name, ErrNotAllowed, err)
		}
		if err := o.checkWritable(name); err != nil {
			return CommitResult{}, fmt.Errorf("commit: %s: %w", name, err)
		}
		data, err := o.root.ReadFile(name)
		if err != nil {
			return CommitResult{}, fmt.Errorf("commit: %w", err)
		}
		size := int64(len(data))
		if size > w.opts.MaxFileBytes {
			return CommitResult{}, fmt.Errorf("commit: %s: %w: %d bytes, the limit per file is %d",
				name, ErrTooLarge, size, w.opts.MaxFileBytes)
		}
		mode := filemode.Regular
		var baseHash plumbing.Hash
		if e, err := o.lookup(name); err == nil && e != nil {
			baseHash = e.Hash
			if e.Mode == filemode.Executable {
				mode = filemode.Executable
			}
		}
		blob := plumbing.ComputeHash(plumbing.BlobObject, data)
		if blob == baseHash {
			same.Files = append(same.Files, name)
			same.Bytes += size
			continue
		}
		res.Bytes += size
		if res.Bytes > w.opts.MaxCommitBytes {
			return CommitResult{}, fmt.Errorf("commit: %w: the changed files total more than %d bytes, the limit per commit",
				ErrTooLarge, w.opts.MaxCommitBytes)
		}
		if w.store.HasEncodedObject(blob) != nil {
			obj := w.store.NewEncodedObject()
			obj.SetType(plumbing.BlobObject)
			obj.SetSize(size)
			wr, err := obj.Writer()
			if err != nil {
				return CommitResult{}, fmt.Errorf("commit: %w", err)
			}
			if _, err := wr.Write(data); err != nil {
				return CommitResult{}, fmt.Errorf("commit: %w", err)
			}
			if err := wr.Close(); err != nil {
				return CommitResult{}, fmt.Errorf("commit: %w", err)
			}
			if _, err := w.store.SetEncodedObject(obj); err != nil {
				return CommitResult{}, fmt.Errorf("commit: store blob: %w", err)
			}
			newObjs = append(newObjs, blob)
		}
		res.Files = append(res.Files, name)
		n := root
		parts := strings.Split(name, "/")
		for _, dir := range parts[:len(parts)-1] {
			if n.dirs[dir] == nil {
				n.dirs[dir] = newNode()
			}
			n = n.dirs[dir]
		}
		n.files[parts[len(parts)-1]] = change{blob: blob, mode: mode}
	}

	treeHash, err := w.buildTree(w.baseTree, root, &newObjs)
	if err != nil {
		return CommitResult{}, fmt.Errorf("commit: %w", err)
	}
	if treeHash == w.baseTree {
		if w.AlreadyPushed() {
			// This run's commit is the branch head already (a retry after
			// a crash after the push): report it, with the files that this
			// attempt wrote as they are there.
			w.commit = w.base
			w.newObjs = nil
			same.Hash, same.AlreadyPushed = w.base.String(), true
			return same, nil
		}
		return CommitResult{}, ErrNothingToCommit
	}

	sig := object.Signature{Name: w.opts.Author.Name, Email: w.opts.Author.Email, When: w.opts.Now()}
	c := &object.Commit{
		Author:       sig,
		Committer:    sig,
		Message:      msg,
		TreeHash:     treeHash,
		ParentHashes: []plumbing.Hash{w.base},
	}
	obj := w.store.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return CommitResult{}, fmt.Errorf("commit: encode: %w", err)
	}
	h, err := w.store.SetEncodedObject(obj)
	if err != nil {
		return CommitResult{}, fmt.Errorf("commit: store: %w", err)
	}
	w.commit = h
	w.newObjs = append(newObjs, h)
	res.Hash = h.String()
	slices.Sort(res.Files)
	w.log.Info("committed", "commit", res.Hash, "files", len(res.Files), "bytes", res.Bytes)
	return res, nil
}

// buildTree returns the hash of base (zero: an empty tree) with the changes
// in n applied, storing the new trees. Callers hold the overlay's lock.
func (w *Workspace) buildTree(base plumbing.Hash, n *node, newObjs *[]plumbing.Hash) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !base.IsZero() {
		t, err := w.overlay.tree(base)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = slices.Clone(t.Entries)
	}
	index := make(map[string]int, len(entries))
	for i, e := range entries {
		index[e.Name] = i
	}
	set := func(e object.TreeEntry) {
		if i, ok := index[e.Name]; ok {
			entries[i] = e
			return
		}
		index[e.Name] = len(entries)
		entries = append(entries, e)
	}
	for name, ch := range n.files {
		if i, ok := index[name]; ok && entries[i].Mode == filemode.Dir {
			return plumbing.ZeroHash, fmt.Errorf("%s: %w: a directory in the base tree", name, ErrConflict)
		}
		set(object.TreeEntry{Name: name, Mode: ch.mode, Hash: ch.blob})
	}
	for name, sub := range n.dirs {
		var subBase plumbing.Hash
		if i, ok := index[name]; ok {
			if entries[i].Mode != filemode.Dir {
				return plumbing.ZeroHash, fmt.Errorf("%s: %w: not a directory in the base tree", name, ErrConflict)
			}
			subBase = entries[i].Hash
		}
		h, err := w.buildTree(subBase, sub, newObjs)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		set(object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
	}
	slices.SortFunc(entries, func(a, b object.TreeEntry) int {
		return strings.Compare(sortName(a), sortName(b))
	})
	t := &object.Tree{Entries: entries}
	obj := w.store.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode tree: %w", err)
	}
	h := obj.Hash()
	if h == base {
		return h, nil
	}
	if w.store.HasEncodedObject(h) != nil {
		if _, err := w.store.SetEncodedObject(obj); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("store tree: %w", err)
		}
		*newObjs = append(*newObjs, h)
	}
	return h, nil
}

// sortName is git's tree order key: directories sort as if followed by "/".
func sortName(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// commitMessage joins the message and the trailers, adding Agentbot-Run.
func commitMessage(in CommitInput, runID string) (string, error) {
	msg := strings.TrimSpace(strings.ReplaceAll(in.Message, "\r\n", "\n"))
	if msg == "" {
		return "", errors.New("commit: empty message")
	}
	var b strings.Builder
	b.WriteString(msg)
	b.WriteString("\n\n")
	for _, t := range in.Trailers {
		k, v := strings.TrimSpace(t.Key), strings.TrimSpace(t.Value)
		if k == "" || v == "" || strings.ContainsAny(k, ":\r\n ") || strings.ContainsAny(v, "\r\n") {
			return "", fmt.Errorf("commit: bad trailer %q", t.Key)
		}
		if strings.EqualFold(k, RunTrailer) {
			return "", fmt.Errorf("commit: the %s trailer is set by the workspace", RunTrailer)
		}
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	fmt.Fprintf(&b, "%s: %s\n", RunTrailer, runID)
	return b.String(), nil
}
