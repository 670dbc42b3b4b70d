package spool

import (
	"io/fs"
	"os"
)

// renameCheckFirst fails with fs.ErrExist when newpath exists, and renames
// otherwise.
func renameCheckFirst(oldpath, newpath string) error {
	if _, err := os.Lstat(newpath); err == nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrExist}
	}
	return os.Rename(oldpath, newpath)
}
