package localstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// FileName is the name of the file holding a snapshot's lines.
const FileName = "stats"

// Store writes snapshots' lines under one directory.
type Store struct {
	dir string
}

// New returns a Store writing under dir, which it creates (with its
// parents) if missing.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("local store: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("local store: create %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local store: %s is not a directory", dir)
	}
	return &Store{dir: dir}, nil
}

// Dir returns the directory the store writes under.
func (s *Store) Dir() string { return s.dir }

// Path returns the file that holds snapshot's lines.
func (s *Store) Path(snapshot string) string {
	return filepath.Join(s.dir, snapshot, FileName)
}

// Name reports "local-store", the destination's name in logs.
func (s *Store) Name() string { return "local-store" }

// Run does nothing but wait for ctx: the store has no connection to own.
// It lets the Store be one of the daemon's destinations.
func (s *Store) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Open starts writing the file of snapshot (a directory base name such as
// "1700000000"): its lines go to a new temporary file in <dir>/<snapshot>,
// which Stream.Finish renames over stats. Every error names the path.
//
// Nothing is written outside the store's directory: <dir>/<snapshot> is
// created or opened without following a symbolic link (a link placed there
// is an error), and the file is created under a fresh name in that
// directory and renamed over stats, so a link named stats is replaced, never
// written through.
func (s *Store) Open(_ context.Context, snapshot string) (*Stream, error) {
	if snapshot == "" || snapshot == "." || snapshot == ".." || filepath.Base(snapshot) != snapshot {
		return nil, fmt.Errorf("local store: invalid snapshot name %q", snapshot)
	}
	dirPath := filepath.Join(s.dir, snapshot)
	dir, err := s.openSnapshotDir(snapshot)
	if err != nil {
		return nil, fmt.Errorf("local store: create %s: %w", dirPath, err)
	}
	f, tmp, err := createTemp(dir)
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("local store: write %s: %w", filepath.Join(dirPath, FileName), err)
	}
	return &Stream{dir: dir, f: f, tmp: tmp, path: filepath.Join(dirPath, FileName)}, nil
}

// Stream writes one snapshot's file. Its methods are called from one
// goroutine at a time.
type Stream struct {
	dir  *os.File
	f    *os.File
	tmp  string
	path string
	err  error
	done bool
}

// Write appends p to the temporary file.
func (st *Stream) Write(p []byte) (int, error) {
	if st.err != nil {
		return 0, st.err
	}
	n, err := st.f.Write(p)
	if err != nil {
		st.err = fmt.Errorf("local store: write %s: %w", st.path, err)
	}
	return n, st.err
}

// Finish makes the file durable in place: fsync, rename over stats (the
// old content, if any, replaced in full), fsync of the directory. The
// returned Waiter reports the outcome at once.
func (st *Stream) Finish() Waiter {
	if st.done {
		return doneWaiter{errors.New("local store: stream finished twice")}
	}
	st.done = true
	defer st.dir.Close()
	err := st.err
	if err == nil {
		if err = commit(st.dir, st.f, st.tmp); err != nil {
			err = fmt.Errorf("local store: write %s: %w", st.path, err)
		}
	}
	if err != nil {
		st.f.Close()
		unix.Unlinkat(int(st.dir.Fd()), st.tmp, 0)
	}
	return doneWaiter{err}
}

// Abort removes the temporary file; the snapshot's stats file, if any, is
// unchanged.
func (st *Stream) Abort() {
	if st.done {
		return
	}
	st.done = true
	st.f.Close()
	unix.Unlinkat(int(st.dir.Fd()), st.tmp, 0)
	st.dir.Close()
}

// Waiter reports a finished stream's outcome.
type Waiter interface {
	Wait(ctx context.Context) error
}

type doneWaiter struct{ err error }

func (w doneWaiter) Wait(context.Context) error { return w.err }

// Write stores lines as the file of snapshot at once (Open, Write,
// Finish), replacing what an earlier write stored.
func (s *Store) Write(snapshot string, lines []byte) error {
	st, err := s.Open(context.Background(), snapshot)
	if err != nil {
		return err
	}
	if _, err := st.Write(lines); err != nil {
		st.Abort()
		return err
	}
	return st.Finish().Wait(context.Background())
}

// openSnapshotDir creates <dir>/<snapshot> unless it exists and opens it,
// refusing a symbolic link (O_NOFOLLOW) or anything but a directory. The
// store's own directory is opened as configured, a link included. When it
// creates the directory it fsyncs the store's directory so that the new
// entry is durable. The caller closes the returned directory.
func (s *Store) openSnapshotDir(snapshot string) (*os.File, error) {
	parent, err := openDir(unix.AT_FDCWD, s.dir, 0)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	created := true
	if err := unix.Mkdirat(int(parent.Fd()), snapshot, 0o755); err != nil {
		if !errors.Is(err, unix.EEXIST) {
			return nil, err
		}
		created = false
	}
	dir, err := openDir(int(parent.Fd()), snapshot, unix.O_NOFOLLOW)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		// Linux says ENOTDIR for a link opened with O_DIRECTORY|O_NOFOLLOW.
		var st unix.Stat_t
		if unix.Fstatat(int(parent.Fd()), snapshot, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return nil, errors.New("is a symbolic link, which the local store does not follow")
		}
		return nil, errors.New("exists and is not a directory")
	}
	if err != nil {
		return nil, err
	}
	if created {
		if err := parent.Sync(); err != nil {
			dir.Close()
			return nil, fmt.Errorf("sync %s: %w", s.dir, err)
		}
	}
	return dir, nil
}

// openDir opens name, relative to the directory at, as a directory; flags
// are added to the open flags (O_NOFOLLOW).
func openDir(at int, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(at, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// maxTempTries bounds the search for an unused temporary file name.
const maxTempTries = 100

// createTemp creates a new temporary file in dir, with O_EXCL and
// O_NOFOLLOW under a random name, and returns it and its name.
func createTemp(dir *os.File) (*os.File, string, error) {
	dfd := int(dir.Fd())
	for i := 0; ; i++ {
		tmp := "." + FileName + "." + strconv.FormatUint(rand.Uint64(), 36) + ".tmp"
		fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			return os.NewFile(uintptr(fd), tmp), tmp, nil
		}
		if !errors.Is(err, unix.EEXIST) || i == maxTempTries {
			return nil, "", fmt.Errorf("create a temporary file: %w", err)
		}
	}
}

// commit syncs and closes f, renames it (tmp in dir) to FileName and syncs
// dir. The rename replaces a link named FileName rather than following it.
func commit(dir, f *os.File, tmp string) error {
	if err := f.Chmod(0o644); err != nil { // whatever the umask
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	dfd := int(dir.Fd())
	if err := unix.Renameat(dfd, tmp, dfd, FileName); err != nil {
		return err
	}
	return dir.Sync()
}
