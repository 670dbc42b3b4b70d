package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// DefaultMaxFileSize is the default of Config.MaxFileSize: far above any
// HAProxy answer (the `show stat` of 1000 backends of 10 servers is about
// 2.8 MB), low enough that a runaway file cannot keep a worker reading.
const DefaultMaxFileSize = 256 << 20

// File is one file of a snapshot held in memory: the answer of one HAProxy
// process to `show info` (Name ends in InfoSuffix) or `show stat`
// (StatSuffix). Other names are ignored.
type File struct {
	Name string
	Data []byte
}

// errSkipFile is wrapped by the problems of files that are not read at all:
// not a regular file, or too large.
var errSkipFile = errors.New("file skipped")

// snapshotFile is one `*_info` or `*_stat` file of a snapshot, in a
// directory or in memory.
type snapshotFile struct {
	index int // in the snapshot's files, in name order (set by readAll)
	name  string
	path  string // in a directory
	data  []byte // in memory
}

func isSnapshotFile(name string) bool {
	return strings.HasSuffix(name, InfoSuffix) || strings.HasSuffix(name, StatSuffix)
}

// dirFiles lists the `*_info` and `*_stat` entries of dir in name order.
// Subdirectories are ignored; other kinds of files are refused when they
// are opened.
func dirFiles(dir string) ([]snapshotFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", dir, err)
	}
	var files []snapshotFile
	for _, e := range entries {
		if e.IsDir() || !isSnapshotFile(e.Name()) {
			continue
		}
		files = append(files, snapshotFile{name: e.Name(), path: filepath.Join(dir, e.Name())})
	}
	return files, nil
}

// memFiles returns the snapshot files of files in name order.
func memFiles(files []File) []snapshotFile {
	var out []snapshotFile
	for _, f := range files {
		if isSnapshotFile(f.Name) {
			out = append(out, snapshotFile{name: f.Name, data: f.Data})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// openFile opens a snapshot file for reading. Only a regular file (or a
// symbolic link to one) is opened: a FIFO would block the reader forever
// and a device such as /dev/zero never ends; both are refused with an
// error wrapping errSkipFile, as is a file larger than max. The open does
// not block on a FIFO (O_NONBLOCK). The caller reads at most max bytes.
func openFile(path string, max int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) && errno == syscall.ENXIO { // a UNIX socket
			return nil, fmt.Errorf("not a regular file (a socket): %w", errSkipFile)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("not a regular file (%s): %w", fi.Mode().Type(), errSkipFile)
	}
	if fi.Size() > max {
		f.Close()
		return nil, fmt.Errorf("%d bytes, above the limit of %d bytes (max-file-size): %w", fi.Size(), max, errSkipFile)
	}
	return f, nil
}

// ReadDir reads every `*_info` and `*_stat` file of a snapshot directory
// into memory, with the rules the pipeline applies (regular files only, at
// most DefaultMaxFileSize bytes each; other files are skipped). It is for
// tests and tools; the pipeline itself streams the files.
func ReadDir(dir string) ([]File, error) {
	entries, err := dirFiles(dir)
	if err != nil {
		return nil, err
	}
	var files []File
	for _, e := range entries {
		f, err := openFile(e.path, DefaultMaxFileSize)
		if errors.Is(err, errSkipFile) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read snapshot file: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(f, DefaultMaxFileSize))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read snapshot file %s: %w", e.path, err)
		}
		files = append(files, File{Name: e.name, Data: data})
	}
	return files, nil
}
