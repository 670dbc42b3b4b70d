package localstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// Write stores lines as the file of snapshot (a directory base name such as
// "1700000000"), replacing what an earlier write stored. It returns once the
// file and its directory entry are on disk. Every error names the path.
func (s *Store) Write(snapshot string, lines []byte) error {
	if snapshot == "" || snapshot == "." || snapshot == ".." || filepath.Base(snapshot) != snapshot {
		return fmt.Errorf("local store: invalid snapshot name %q", snapshot)
	}
	dir := filepath.Join(s.dir, snapshot)
	created, err := mkdir(dir)
	if err != nil {
		return fmt.Errorf("local store: create %s: %w", dir, err)
	}
	if created {
		// Make the new directory's own entry durable.
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("local store: sync %s: %w", s.dir, err)
		}
	}
	path := filepath.Join(dir, FileName)
	if err := writeFile(dir, path, lines); err != nil {
		return fmt.Errorf("local store: write %s: %w", path, err)
	}
	return nil
}

// mkdir creates dir unless it exists, and reports whether it created it.
func mkdir(dir string) (bool, error) {
	err := os.Mkdir(dir, 0o755)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrExist) {
		fi, serr := os.Stat(dir)
		if serr != nil {
			return false, serr
		}
		if !fi.IsDir() {
			return false, errors.New("exists and is not a directory")
		}
		return false, nil
	}
	return false, err
}

// writeFile writes data to a temporary file in dir, syncs it, renames it to
// path and syncs dir.
func writeFile(dir, path string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+FileName+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so that entries created or renamed in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}
