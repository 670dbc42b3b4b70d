//go:build !linux

package spool

// renameNoReplace renames oldpath to newpath, failing with an error that
// matches fs.ErrExist when newpath exists. Without renameat2 there is a
// window between the check and the rename.
func renameNoReplace(oldpath, newpath string) error {
	return renameCheckFirst(oldpath, newpath)
}
