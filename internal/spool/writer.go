package spool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
)

// ErrSnapshotExists is returned (wrapped) by [Writer.Begin] and
// [Pending.Commit] when the spool already holds an entry of the
// snapshot's name; that entry is left untouched.
var ErrSnapshotExists = errors.New("snapshot already exists")

// Writer publishes snapshots into a spool directory. A snapshot is written
// into a directory of the same name in a temporary directory on the same
// file system, every file fsynced, and then renamed into the spool without
// replacing anything: the rename is the commit point, so the spool never
// holds a partial snapshot, and an existing entry is never replaced.
type Writer struct {
	dir, tmp string
	log      *slog.Logger
}

// NewWriter returns a writer into dir through tmpDir, two different
// directories of one file system. It touches neither; see
// [Writer.Prepare]. A nil logger discards the log.
func NewWriter(dir, tmpDir string, logger *slog.Logger) (*Writer, error) {
	switch {
	case dir == "":
		return nil, errors.New("spool: empty directory name")
	case tmpDir == "":
		return nil, errors.New("spool: empty temporary directory name")
	case filepath.Clean(dir) == filepath.Clean(tmpDir):
		return nil, fmt.Errorf("spool: temporary directory %s must differ from the spool directory", tmpDir)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{dir: filepath.Clean(dir), tmp: filepath.Clean(tmpDir), log: logger}, nil
}

// Dir returns the spool directory.
func (w *Writer) Dir() string { return w.dir }

// Prepare creates both directories and removes the snapshot directories
// that an interrupted run left in the temporary one (never committed, so
// never complete); other entries there are left alone.
func (w *Writer) Prepare() error {
	for _, d := range []string{w.dir, w.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("spool: create %s: %w", d, err)
		}
	}
	entries, err := os.ReadDir(w.tmp)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, e := range entries {
		if !IsSnapshotName(e.Name()) {
			continue
		}
		path := filepath.Join(w.tmp, e.Name())
		if err := os.RemoveAll(path); err != nil { // a symlink itself, never its target
			return fmt.Errorf("spool: remove leftover %s: %w", path, err)
		}
		w.log.Info("removed uncommitted snapshot left by an earlier run", "dir", path)
	}
	return nil
}

// Count returns the number of snapshots in the spool, counted as the
// reader ([Watcher]) sees them: see [Count].
func (w *Writer) Count() (int, error) { return Count(w.dir) }

// Begin starts snapshot name (all digits, see [IsSnapshotName]): it
// creates the spool and temporary directories again if they disappeared
// (with a warning), fails with [ErrSnapshotExists] when the spool holds an
// entry of that name (even a dangling symlink), and creates an empty
// temporary directory for it. The caller must Commit or Abort it.
func (w *Writer) Begin(name string) (*Pending, error) {
	if !IsSnapshotName(name) {
		return nil, fmt.Errorf("spool: begin snapshot %q: not a snapshot name", name)
	}
	if err := w.Ensure(); err != nil {
		return nil, err
	}
	final := filepath.Join(w.dir, name)
	if _, err := os.Lstat(final); err == nil {
		return nil, fmt.Errorf("spool: snapshot %s: %w", final, ErrSnapshotExists)
	}
	tmp := filepath.Join(w.tmp, name)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("spool: empty %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("spool: snapshot %s: %w", name, err)
	}
	return &Pending{w: w, name: name, tmp: tmp, final: final}, nil
}

// Ensure creates the spool and temporary directories again if they
// disappeared, with a warning: the spool may be removed under a running
// writer. Begin calls it.
func (w *Writer) Ensure() error {
	for _, d := range []string{w.dir, w.tmp} {
		if err := w.ensureDir(d); err != nil {
			return err
		}
	}
	return nil
}

// ensureDir creates dir when it is missing, saying so: the spool may be
// removed under a running writer.
func (w *Writer) ensureDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("spool: recreate %s: %w", dir, err)
	}
	w.log.Warn("spool directory was missing; recreated it", "dir", dir)
	return nil
}

// Pending is a snapshot being written, from [Writer.Begin] to
// [Pending.Commit] or [Pending.Abort]. Write may be called from many
// goroutines at once (one per file); Commit and Abort must not run
// concurrently with a Write.
type Pending struct {
	w                *Writer
	name, tmp, final string
	bytes            atomic.Int64
	mu               sync.Mutex
	closed           bool
}

// Name returns the snapshot's name.
func (p *Pending) Name() string { return p.name }

// Bytes returns the number of bytes written into the snapshot's files so
// far.
func (p *Pending) Bytes() int64 { return p.bytes.Load() }

// Write creates file in the snapshot (it must not exist yet, and be a plain
// name: no "/"), lets fill write its content, and fsyncs it. When fill or
// the file system fails, the file is removed and the error returned, so the
// snapshot never keeps a partial file. It returns the number of bytes
// written.
func (p *Pending) Write(file string, fill func(io.Writer) error) (int64, error) {
	if !validFileName(file) {
		return 0, fmt.Errorf("spool: snapshot %s: invalid file name %q", p.name, file)
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return 0, fmt.Errorf("spool: snapshot %s: write %s after commit or abort", p.name, file)
	}
	path := filepath.Join(p.tmp, file)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	cw := &countingWriter{w: f}
	err = fill(cw)
	p.bytes.Add(cw.n)
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("spool: fsync %s: %w", path, err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("spool: %w", cerr)
	}
	if err != nil {
		os.Remove(path)
		return cw.n, err
	}
	return cw.n, nil
}

// Commit renames the snapshot into the spool, unless an entry of its name
// appeared there meanwhile ([ErrSnapshotExists]; on Linux the rename itself
// refuses to replace, so this holds against a concurrent writer too), and
// fsyncs the spool directory. Whether it succeeds or not, the temporary
// directory is gone afterwards.
func (p *Pending) Commit() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("spool: snapshot %s: commit after commit or abort", p.name)
	}
	p.closed = true
	if err := renameNoReplace(p.tmp, p.final); err != nil {
		p.remove()
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("spool: snapshot %s: %w", p.final, ErrSnapshotExists)
		}
		return fmt.Errorf("spool: commit snapshot %s: %w", p.name, err)
	}
	if err := syncDir(p.w.dir); err != nil {
		p.w.log.Warn("cannot fsync the spool directory", "dir", p.w.dir, "err", err)
	}
	return nil
}

// CloneInto begins the same snapshot in another spool, w, and fills it with
// hard links to this snapshot's files, or with fsynced copies when w's
// temporary directory is on another file system: one round committed into
// two spools (haproxystats-pull's destination = both) is written once. Call
// it after the last Write and before Commit or Abort; the clone is then
// committed or aborted on its own. It fails with [ErrSnapshotExists] as
// Begin does. The files of a committed snapshot are never written again, so
// the two spools sharing them is safe: each consumer removes its own
// directory.
func (p *Pending) CloneInto(w *Writer) (*Pending, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("spool: snapshot %s: clone after commit or abort", p.name)
	}
	c, err := w.Begin(p.name)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(p.tmp)
	if err != nil {
		c.Abort()
		return nil, fmt.Errorf("spool: clone snapshot %s: %w", p.name, err)
	}
	for _, e := range entries {
		if err := LinkOrCopy(filepath.Join(p.tmp, e.Name()), filepath.Join(c.tmp, e.Name())); err != nil {
			c.Abort()
			return nil, fmt.Errorf("spool: clone snapshot %s into %s: %w", p.name, w.dir, err)
		}
	}
	c.bytes.Store(p.bytes.Load())
	return c, nil
}

// LinkOrCopy makes dst, which must not exist, a hard link to the file src,
// or an fsynced copy of it when the two are on different file systems.
func LinkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if errors.Is(err, syscall.EXDEV) {
		err = copyFile(src, dst)
	}
	return err
}

// copyFile copies src into a new file dst and fsyncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// Abort removes the temporary directory of a snapshot not committed. It
// does nothing after Commit or Abort, so it can be deferred.
func (p *Pending) Abort() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.remove()
}

func (p *Pending) remove() {
	if err := os.RemoveAll(p.tmp); err != nil {
		p.w.log.Error("cannot remove uncommitted snapshot", "dir", p.tmp, "err", err)
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
