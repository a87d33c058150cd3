package tools

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// DirFS is a real directory, opened as an os.Root: no name can leave it,
// through ".." or a symlink. Writes go further: they refuse any symlink on
// the way (even one that stays inside) and replace files by rename, so a
// write never goes through a link to somewhere else.
type DirFS struct {
	root *os.Root
}

var _ FS = (*DirFS)(nil)

// OpenDir opens dir as the workspace.
func OpenDir(dir string) (*DirFS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open workspace %s: %w", dir, err)
	}
	return &DirFS{root: r}, nil
}

// Close releases the directory.
func (d *DirFS) Close() error { return d.root.Close() }

// ReadFile reads a file; symlinks inside the root are followed.
func (d *DirFS) ReadFile(name string) ([]byte, error) { return d.root.ReadFile(name) }

// Stat describes a file; symlinks inside the root are followed.
func (d *DirFS) Stat(name string) (fs.FileInfo, error) { return d.root.Stat(name) }

// ReadDir lists a directory, sorted by name.
func (d *DirFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := d.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

// WriteFile creates or replaces name (and its parent directories). It
// refuses a symlink anywhere on the path.
func (d *DirFS) WriteFile(name string, data []byte) error {
	dir := path.Dir(name)
	if err := d.noSymlinks(dir); err != nil {
		return err
	}
	if dir != "." {
		if err := d.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if fi, err := d.root.Lstat(name); err == nil {
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("write %s: %w: it is a symbolic link", name, ErrBadPath)
		}
		if fi.IsDir() {
			return fmt.Errorf("write %s: it is a directory", name)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", name, err)
	}

	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	tmp := path.Join(dir, ".agentbot-tmp-"+hex.EncodeToString(suffix[:]))
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = d.root.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := d.root.Rename(tmp, name); err != nil {
		_ = d.root.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// noSymlinks refuses a symlink at any prefix of dir.
func (d *DirFS) noSymlinks(dir string) error {
	if dir == "." {
		return nil
	}
	p := ""
	for _, seg := range strings.Split(dir, "/") {
		p = path.Join(p, seg)
		fi, err := d.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("write into %s: %w", dir, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("write into %s: %w: %s is a symbolic link", dir, ErrBadPath, p)
		}
		if !fi.IsDir() {
			return fmt.Errorf("write into %s: %s is a file", dir, p)
		}
	}
	return nil
}
