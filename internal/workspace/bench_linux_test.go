package workspace_test

import "syscall"

// isTmpfs reports whether dir is on a tmpfs (memory, not the normal disk).
func isTmpfs(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == 0x01021994 // TMPFS_MAGIC
}
