//go:build !linux

package workspace_test

// isTmpfs is only known on Linux.
func isTmpfs(string) bool { return false }
