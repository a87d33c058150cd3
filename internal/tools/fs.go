// Package tools holds the agent's built-in tools: sandboxed file tools and
// progress updates.
package tools

import "io/fs"

// FS is the workspace the file tools work in. Names are slash-separated,
// relative to the workspace root, and already cleaned and checked against the
// allowlist by the tools; implementations must still refuse anything that
// would leave the root (they sit on os.Root).
//
// There are two implementations: DirFS, a real directory (agentbot run in a
// CI checkout), and workspace.Overlay, the base commit's tree plus a write
// overlay (agentbot serve, no checkout).
type FS interface {
	// ReadFile returns the file's contents; fs.ErrNotExist when absent.
	ReadFile(name string) ([]byte, error)
	// WriteFile creates or replaces the file, creating parent directories.
	WriteFile(name string, data []byte) error
	// Stat describes a file or directory; fs.ErrNotExist when absent.
	Stat(name string) (fs.FileInfo, error)
	// ReadDir lists a directory ("." is the root), sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
}
