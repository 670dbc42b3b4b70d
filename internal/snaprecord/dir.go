package snaprecord

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// dirFile is a file of a snapshot directory to encode.
type dirFile struct {
	name string
	size int64
}

// EncodeDir encodes the snapshot directory dir (a spool snapshot: its base
// name is the epoch) of origin o into one record's value (version 1
// without a cluster, 2 with one). It takes the regular
// files (or links to one) named <socket>_info and <socket>_stat, in name
// order, and ignores every other entry. It computes the record's exact
// size from the files' sizes first and fails with a *TooLargeError, before
// reading any file, when it is above maxBytes; then it allocates the value
// once and reads each file straight into it. A file that is not a regular
// file once opened, or whose size changes while it is read, fails the
// encoding. A FIFO is never waited on (opened non-blocking).
func EncodeDir(dir string, o Origin, maxBytes int64) ([]byte, error) {
	epoch := filepath.Base(dir)
	if err := checkEpoch(epoch); err != nil {
		return nil, fmt.Errorf("encode snapshot %s: %w", dir, err)
	}
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("encode snapshot %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	var files []dirFile
	size := HeaderSize(o, epoch) + TrailerSize
	for _, e := range entries {
		if checkName(e.Name()) != nil {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("encode snapshot: %w", err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		files = append(files, dirFile{name: e.Name(), size: fi.Size()})
		size += EntrySize(e.Name(), fi.Size())
	}
	if size > maxBytes {
		return nil, &TooLargeError{Snapshot: dir, Size: size, Limit: maxBytes}
	}
	slices.SortFunc(files, func(a, b dirFile) int { return strings.Compare(a.name, b.name) })
	buf := bytes.NewBuffer(make([]byte, 0, size))
	enc, err := NewEncoder(buf, o, epoch, len(files))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := addFile(enc, filepath.Join(dir, f.name), f); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	if int64(buf.Len()) != size {
		return nil, fmt.Errorf("encode snapshot %s: %d bytes encoded, %d computed", dir, buf.Len(), size)
	}
	return buf.Bytes(), nil
}

// addFile opens path without blocking, checks that it is still the regular
// file of the size listed, and adds it.
func addFile(enc *Encoder, path string, f dirFile) error {
	fd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	defer fd.Close()
	fi, err := fd.Stat()
	switch {
	case err != nil:
		return fmt.Errorf("encode snapshot: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("encode snapshot: %s is no longer a regular file", path)
	case fi.Size() != f.size:
		return fmt.Errorf("encode snapshot: %s changed size while being encoded (%d, then %d bytes)", path, f.size, fi.Size())
	}
	return enc.Add(f.name, f.size, fd)
}
