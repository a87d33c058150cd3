package workspace

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"gitlab.com/agentbot/agentbot/internal/tools"
)

var _ tools.FS = (*Overlay)(nil)

// maxReadBytes bounds one read of a base-tree file into memory.
const maxReadBytes = 32 << 20

// Errors the overlay returns inside *fs.PathError.
var (
	// ErrSymlink: the base tree holds a symbolic link there; it is never
	// followed, read or written through.
	ErrSymlink = errors.New("symbolic link in the base tree (not followed)")
	// ErrTooLarge: a file or the commit exceeds its size limit (the file
	// tools' sentinel, so callers branch on one).
	ErrTooLarge = tools.ErrTooLarge
	// ErrConflict: the write would turn a base-tree file, link or submodule
	// into a directory or the reverse.
	ErrConflict = errors.New("conflicts with the base tree")
)

var (
	errIsDir     = errors.New("is a directory")
	errNotDir    = errors.New("not a directory")
	errSubmodule = errors.New("submodule (not readable)")
	errBadName   = errors.New("invalid name")
)

// Overlay is the agent's file system in a workspace: the base commit's tree,
// read lazily through go-git's object storage, under a write overlay
// directory (opened as an os.Root). Writes never touch the object store; the
// commit is built from both by Workspace.Commit. It is safe for concurrent
// use.
type Overlay struct {
	mu       sync.Mutex
	store    *filesystem.Storage
	root     *os.Root
	baseTree plumbing.Hash
	modTime  time.Time
	trees    map[plumbing.Hash]*object.Tree // decoded base trees, by hash
	maxFile  int64
	maxTotal int64
	sizes    map[string]int64 // overlay files and their sizes
	total    int64
	// fetch brings blobs missing from the store (a fetch without blobs).
	fetch func([]plumbing.Hash) error
}

func newOverlay(store *filesystem.Storage, baseTree plumbing.Hash, dir string, maxFile, maxTotal int64,
	modTime time.Time, fetch func([]plumbing.Hash) error) (*Overlay, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open overlay: %w", err)
	}
	return &Overlay{
		store:    store,
		root:     root,
		baseTree: baseTree,
		modTime:  modTime,
		trees:    map[plumbing.Hash]*object.Tree{},
		maxFile:  maxFile,
		maxTotal: maxTotal,
		sizes:    map[string]int64{},
		fetch:    fetch,
	}, nil
}

// maxBlobBatch bounds the blobs fetched in one request.
const maxBlobBatch = 256

// ensureBlobs fetches the blobs of hashes that the store lacks, in batches.
// Callers hold o.mu.
func (o *Overlay) ensureBlobs(hashes ...plumbing.Hash) error {
	var missing []plumbing.Hash
	for _, h := range hashes {
		if o.store.HasEncodedObject(h) != nil {
			missing = append(missing, h)
		}
	}
	for len(missing) > 0 {
		n := min(len(missing), maxBlobBatch)
		if err := o.fetch(missing[:n]); err != nil {
			return fmt.Errorf("fetch file contents: %w", err)
		}
		missing = missing[n:]
	}
	return nil
}

func (o *Overlay) close() error { return o.root.Close() }

// checkName refuses names that are not clean, slash-separated and relative,
// and, for writes, any ".git" component.
func checkName(op, name string, write bool) error {
	if !fs.ValidPath(name) || strings.Contains(name, `\`) {
		return &fs.PathError{Op: op, Path: name, Err: errBadName}
	}
	if write {
		if name == "." {
			return &fs.PathError{Op: op, Path: name, Err: errIsDir}
		}
		for part := range strings.SplitSeq(name, "/") {
			if strings.EqualFold(part, ".git") {
				return &fs.PathError{Op: op, Path: name, Err: errBadName}
			}
		}
	}
	return nil
}

// tree returns a decoded base tree, caching it. Callers hold o.mu.
func (o *Overlay) tree(h plumbing.Hash) (*object.Tree, error) {
	if t, ok := o.trees[h]; ok {
		return t, nil
	}
	t, err := object.GetTree(o.store, h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	o.trees[h] = t
	return t, nil
}

// lookup finds name in the base tree. It returns the entry (nil for the root)
// or an error wrapping fs.ErrNotExist, errNotDir or ErrSymlink when a parent
// is not a directory. Callers hold o.mu.
func (o *Overlay) lookup(name string) (*object.TreeEntry, error) {
	if name == "." {
		return nil, nil
	}
	h := o.baseTree
	parts := strings.Split(name, "/")
	for i, part := range parts {
		t, err := o.tree(h)
		if err != nil {
			return nil, err
		}
		e, err := t.FindEntry(part)
		if err != nil {
			return nil, fs.ErrNotExist
		}
		if i == len(parts)-1 {
			return e, nil
		}
		switch e.Mode {
		case filemode.Dir:
			h = e.Hash
		case filemode.Symlink:
			return nil, ErrSymlink
		default:
			return nil, errNotDir
		}
	}
	panic("unreachable")
}

// overlayStat returns the overlay's own entry for name, or nil.
func (o *Overlay) overlayStat(name string) fs.FileInfo {
	fi, err := o.root.Lstat(name)
	if err != nil {
		return nil
	}
	return fi
}

// ReadFile returns a file from the overlay, else from the base tree.
func (o *Overlay) ReadFile(name string) ([]byte, error) {
	if err := checkName("read", name, false); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if fi := o.overlayStat(name); fi != nil {
		if !fi.Mode().IsRegular() {
			return nil, &fs.PathError{Op: "read", Path: name, Err: errIsDir}
		}
		return o.root.ReadFile(name)
	}
	e, err := o.lookup(name)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if e == nil || e.Mode == filemode.Dir {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errIsDir}
	}
	switch e.Mode {
	case filemode.Symlink:
		return nil, &fs.PathError{Op: "read", Path: name, Err: ErrSymlink}
	case filemode.Submodule:
		return nil, &fs.PathError{Op: "read", Path: name, Err: errSubmodule}
	}
	data, err := o.readBlob(e.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return data, nil
}

// readBlob reads a blob from the object store. Callers hold o.mu.
func (o *Overlay) readBlob(h plumbing.Hash) ([]byte, error) {
	if err := o.ensureBlobs(h); err != nil {
		return nil, err
	}
	size, err := o.store.EncodedObjectSize(h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	if size > maxReadBytes {
		return nil, fmt.Errorf("%w to read: %d bytes (limit %d)", ErrTooLarge, size, maxReadBytes)
	}
	obj, err := o.store.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	defer r.Close()
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	return data, nil
}

// Stat describes a file or directory of the overlay or the base tree. A
// symbolic link in the base tree is reported with fs.ModeSymlink and is not
// followed; a submodule with fs.ModeIrregular.
func (o *Overlay) Stat(name string) (fs.FileInfo, error) {
	if err := checkName("stat", name, false); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if fi := o.overlayStat(name); fi != nil {
		return fi, nil
	}
	e, err := o.lookup(name)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if e == nil {
		return &entryInfo{name: ".", mode: filemode.Dir, modTime: o.modTime}, nil
	}
	fi, err := o.entryInfo(*e)
	if err != nil {
		return nil, err
	}
	return fi, nil
}

// entryInfo describes a base-tree entry. Callers hold o.mu.
func (o *Overlay) entryInfo(e object.TreeEntry) (*entryInfo, error) {
	fi := &entryInfo{name: e.Name, mode: e.Mode, modTime: o.modTime}
	if e.Mode.IsFile() {
		if err := o.ensureBlobs(e.Hash); err != nil {
			return nil, &fs.PathError{Op: "stat", Path: e.Name, Err: err}
		}
		size, err := o.store.EncodedObjectSize(e.Hash)
		if err != nil {
			return nil, &fs.PathError{Op: "stat", Path: e.Name, Err: err}
		}
		fi.size = size
	}
	return fi, nil
}

// ReadDir lists a directory of the base tree merged with the overlay (the
// overlay wins), sorted by name.
func (o *Overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := checkName("readdir", name, false); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	merged := map[string]fs.DirEntry{}
	found := false
	e, err := o.lookup(name)
	switch {
	case err == nil && (e == nil || e.Mode == filemode.Dir):
		h := o.baseTree
		if e != nil {
			h = e.Hash
		}
		t, err := o.tree(h)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
		}
		for _, te := range t.Entries {
			merged[te.Name] = &treeDirEntry{o: o, e: te, tree: h}
		}
		found = true
	case err == nil:
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	if fi := o.overlayStat(name); fi != nil && fi.IsDir() {
		entries, err := fs.ReadDir(o.root.FS(), name)
		if err != nil {
			return nil, err
		}
		for _, de := range entries {
			merged[de.Name()] = de
		}
		found = true
	}
	if !found {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	out := make([]fs.DirEntry, 0, len(merged))
	for _, de := range merged {
		out = append(out, de)
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// WriteFile writes a file into the overlay, creating its parent directories.
// It refuses a name with a ".git" component, a file over the per-file limit,
// a total over the per-commit limit, and a path that conflicts with the base
// tree (a file, link or submodule where a directory is needed, or the
// reverse).
func (o *Overlay) WriteFile(name string, data []byte) error {
	if err := checkName("write", name, true); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	size := int64(len(data))
	if size > o.maxFile {
		return &fs.PathError{Op: "write", Path: name,
			Err: fmt.Errorf("%w: %d bytes, the limit per file is %d", ErrTooLarge, size, o.maxFile)}
	}
	if total := o.total - o.sizes[name] + size; total > o.maxTotal {
		return &fs.PathError{Op: "write", Path: name,
			Err: fmt.Errorf("%w: the files written would total %d bytes, the limit per commit is %d", ErrTooLarge, total, o.maxTotal)}
	}
	if err := o.checkWritable(name); err != nil {
		return &fs.PathError{Op: "write", Path: name, Err: err}
	}
	if dir := path.Dir(name); dir != "." {
		if err := o.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := o.root.WriteFile(name, data, 0o644); err != nil {
		return err
	}
	o.total += size - o.sizes[name]
	o.sizes[name] = size
	return nil
}

// checkWritable refuses a write that the base tree cannot take. Callers hold
// o.mu.
func (o *Overlay) checkWritable(name string) error {
	h := o.baseTree
	parts := strings.Split(name, "/")
	for i, part := range parts {
		t, err := o.tree(h)
		if err != nil {
			return err
		}
		e, err := t.FindEntry(part)
		if err != nil {
			return nil // new from here down
		}
		last := i == len(parts)-1
		switch {
		case e.Mode == filemode.Symlink:
			return fmt.Errorf("%w: %s is a symbolic link", ErrConflict, strings.Join(parts[:i+1], "/"))
		case e.Mode == filemode.Submodule:
			return fmt.Errorf("%w: %s is a submodule", ErrConflict, strings.Join(parts[:i+1], "/"))
		case last && e.Mode == filemode.Dir:
			return fmt.Errorf("%w: %s is a directory", ErrConflict, name)
		case !last && e.Mode != filemode.Dir:
			return fmt.Errorf("%w: %s is a file", ErrConflict, strings.Join(parts[:i+1], "/"))
		}
		h = e.Hash
	}
	return nil
}

// Changed lists the files written to the overlay, sorted.
func (o *Overlay) Changed() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.sizes))
	for name := range o.sizes {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// entryInfo is the fs.FileInfo of a base-tree entry.
type entryInfo struct {
	name    string
	mode    filemode.FileMode
	size    int64
	modTime time.Time
}

func (fi *entryInfo) Name() string       { return fi.name }
func (fi *entryInfo) Size() int64        { return fi.size }
func (fi *entryInfo) ModTime() time.Time { return fi.modTime }
func (fi *entryInfo) IsDir() bool        { return fi.mode == filemode.Dir }
func (fi *entryInfo) Sys() any           { return nil }
func (fi *entryInfo) Mode() fs.FileMode {
	switch fi.mode {
	case filemode.Dir:
		return fs.ModeDir | 0o755
	case filemode.Executable:
		return 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Submodule:
		return fs.ModeIrregular
	default:
		return 0o644
	}
}

// treeDirEntry is a base-tree entry in a directory listing; its size is read
// only when Info is called (which fetches the directory's missing blobs at
// once, as a listing with sizes asks for all of them).
type treeDirEntry struct {
	o    *Overlay
	e    object.TreeEntry
	tree plumbing.Hash // the directory's tree
}

func (d *treeDirEntry) Name() string      { return d.e.Name }
func (d *treeDirEntry) IsDir() bool       { return d.e.Mode == filemode.Dir }
func (d *treeDirEntry) Type() fs.FileMode { return (&entryInfo{mode: d.e.Mode}).Mode().Type() }
func (d *treeDirEntry) Info() (fs.FileInfo, error) {
	d.o.mu.Lock()
	defer d.o.mu.Unlock()
	if d.e.Mode.IsFile() && d.o.store.HasEncodedObject(d.e.Hash) != nil {
		t, err := d.o.tree(d.tree)
		if err != nil {
			return nil, err
		}
		var blobs []plumbing.Hash
		for _, e := range t.Entries {
			if e.Mode.IsFile() {
				blobs = append(blobs, e.Hash)
			}
		}
		if err := d.o.ensureBlobs(blobs...); err != nil {
			return nil, &fs.PathError{Op: "stat", Path: d.e.Name, Err: err}
		}
	}
	fi, err := d.o.entryInfo(d.e)
	if err != nil {
		return nil, err
	}
	return fi, nil
}
