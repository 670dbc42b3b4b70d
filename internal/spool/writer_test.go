package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func newWriter(t *testing.T) (*Writer, string, string) {
	t.Helper()
	base := t.TempDir()
	dir, tmp := filepath.Join(base, "incoming"), filepath.Join(base, "incoming.tmp")
	w, err := NewWriter(dir, tmp, nil)
	if err != nil {
		t.Fatalf("NewWriter = %v", err)
	}
	return w, dir, tmp
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestNewWriterValidates(t *testing.T) {
	for _, tt := range []struct{ dir, tmp, want string }{
		{"", "/t", "empty directory"},
		{"/d", "", "empty temporary"},
		{"/d", "/d/", "must differ"},
	} {
		if _, err := NewWriter(tt.dir, tt.tmp, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewWriter(%q, %q) = %v, want an error containing %q", tt.dir, tt.tmp, err, tt.want)
		}
	}
}

// Files written concurrently land in the spool only at Commit, complete.
func TestWriterCommit(t *testing.T) {
	w, dir, tmp := newWriter(t)
	if err := w.Prepare(); err != nil {
		t.Fatal(err)
	}
	p, err := w.Begin("1700000000")
	if err != nil {
		t.Fatalf("Begin = %v", err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := p.Write(fmt.Sprintf("s%d_stat", i), func(w io.Writer) error {
				_, err := io.WriteString(w, strings.Repeat("x", 1000))
				return err
			}); err != nil {
				t.Errorf("Write = %v", err)
			}
		})
	}
	wg.Wait()
	if got := entries(t, dir); len(got) != 0 {
		t.Fatalf("spool holds %v before Commit", got)
	}
	if p.Bytes() != 8000 {
		t.Errorf("Bytes = %d, want 8000", p.Bytes())
	}
	if err := p.Commit(); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	p.Abort() // no-op after Commit
	if got := entries(t, filepath.Join(dir, "1700000000")); len(got) != 8 {
		t.Errorf("snapshot holds %v, want 8 files", got)
	}
	if got := entries(t, tmp); len(got) != 0 {
		t.Errorf("temporary directory holds %v after Commit", got)
	}
	if _, err := p.Write("late_info", func(io.Writer) error { return nil }); err == nil {
		t.Error("Write after Commit = nil error")
	}
	if n, err := w.Count(); n != 1 || err != nil {
		t.Errorf("Count = %d, %v, want 1", n, err)
	}
}

// A failing fill leaves no file behind; Abort leaves nothing at all; bad
// names are refused.
func TestWriterWriteFailsAndAbort(t *testing.T) {
	w, dir, tmp := newWriter(t)
	p, err := w.Begin("1")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	n, err := p.Write("a_info", func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) || n != 7 {
		t.Errorf("Write = %d, %v, want 7, boom", n, err)
	}
	if got := entries(t, filepath.Join(tmp, "1")); len(got) != 0 {
		t.Errorf("failed Write left %v", got)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a\x00"} {
		if _, err := p.Write(bad, func(io.Writer) error { return nil }); err == nil {
			t.Errorf("Write(%q) = nil error", bad)
		}
	}
	if _, err := p.Write("a_info", func(io.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write("a_info", func(io.Writer) error { return nil }); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Write of a_info = %v, want fs.ErrExist", err)
	}
	p.Abort()
	if got := entries(t, tmp); len(got) != 0 {
		t.Errorf("temporary directory holds %v after Abort", got)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("spool holds %v after Abort", got)
	}
	if err := p.Commit(); err == nil {
		t.Error("Commit after Abort = nil error")
	}
	if _, err := w.Begin("17x"); err == nil {
		t.Error(`Begin("17x") = nil error`)
	}
}

// An existing entry, even an empty directory (which rename(2) would
// replace) or a dangling symlink, is never replaced.
func TestWriterNeverReplaces(t *testing.T) {
	w, dir, tmp := newWriter(t)
	if err := w.Prepare(); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "5"))
	if _, err := w.Begin("5"); !errors.Is(err, ErrSnapshotExists) {
		t.Errorf("Begin over a dangling symlink = %v, want ErrSnapshotExists", err)
	}
	p, err := w.Begin("6")
	if err != nil {
		t.Fatal(err)
	}
	p.Write("x_info", func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err })
	// Another writer commits the same second meanwhile: an empty directory.
	if err := os.Mkdir(filepath.Join(dir, "6"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(); !errors.Is(err, ErrSnapshotExists) {
		t.Fatalf("Commit onto an empty directory = %v, want ErrSnapshotExists", err)
	}
	if got := entries(t, filepath.Join(dir, "6")); len(got) != 0 {
		t.Errorf("existing snapshot was replaced: it holds %v", got)
	}
	if got := entries(t, tmp); len(got) != 0 {
		t.Errorf("temporary directory holds %v after a refused Commit", got)
	}
}

// Prepare removes the leftovers of an interrupted run (a symlink itself,
// never what it points to) and keeps other entries; Begin recreates a
// missing spool with a warning.
func TestWriterPrepareAndRecreate(t *testing.T) {
	var log bytes.Buffer
	base := t.TempDir()
	dir, tmp := filepath.Join(base, "incoming"), filepath.Join(base, "incoming.tmp")
	w, err := NewWriter(dir, tmp, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(base, "precious")
	mkdir(t, target)
	os.WriteFile(filepath.Join(target, "keep"), nil, 0o644)
	os.MkdirAll(filepath.Join(tmp, "1699999999"), 0o755)
	os.Symlink(target, filepath.Join(tmp, "1699999998"))
	os.WriteFile(filepath.Join(tmp, "notes"), nil, 0o644)
	if err := w.Prepare(); err != nil {
		t.Fatalf("Prepare = %v", err)
	}
	if got := entries(t, tmp); !slices.Equal(got, []string{"notes"}) {
		t.Errorf("temporary directory holds %v after Prepare, want [notes]", got)
	}
	if got := entries(t, target); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("Prepare removed through a symlink: %s holds %v", target, got)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	p, err := w.Begin("1700000000")
	if err != nil {
		t.Fatalf("Begin with the spool removed = %v", err)
	}
	p.Abort()
	if !strings.Contains(log.String(), "recreated") || !strings.Contains(log.String(), "dir="+dir) {
		t.Errorf("no warning naming %s; log:\n%s", dir, log.String())
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o644)
	w2, _ := NewWriter(filepath.Join(file, "incoming"), tmp, nil)
	if err := w2.Prepare(); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("Prepare under a file = %v, want an error naming it", err)
	}
}

// The backlog the writer counts is what the reader queues: directories and
// symlinks to directories with an all-digit name.
func TestWriterCountIsWhatTheWatcherSees(t *testing.T) {
	w, dir, _ := newWriter(t)
	if err := w.Prepare(); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	mkdir(t, filepath.Join(dir, "10"))
	mkdir(t, filepath.Join(dir, "11"))
	mkdir(t, filepath.Join(dir, "x12"))
	os.WriteFile(filepath.Join(dir, "13"), nil, 0o644)
	os.Symlink(other, filepath.Join(dir, "14"))
	os.Symlink(filepath.Join(other, "missing"), filepath.Join(dir, "15"))
	n, err := w.Count()
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := startWatcher(t, dir)
	var seen []string
	for range n {
		name := next(t, wt)
		seen = append(seen, name)
		wt.Done(name, false)
	}
	expectNothing(t, wt, 100*time.Millisecond)
	if n != 3 || !slices.Equal(seen, []string{"10", "11", "14"}) {
		t.Errorf("Count = %d, the watcher handed out %v", n, seen)
	}
}

// CloneInto gives another spool the same files, hard links on one file
// system and copies across two (/dev/shm is a tmpfs when it exists), each
// committed on its own; it refuses an existing snapshot and a snapshot
// already committed.
func TestWriterCloneInto(t *testing.T) {
	otherFS := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		otherFS = "/dev/shm"
	}
	for _, tt := range []struct {
		name string
		base string // where the second spool lives
		link bool
	}{
		{"same file system", "", true},
		{"another file system", otherFS, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "another file system" && otherFS == "" {
				t.Skip("no /dev/shm: cannot test a copy across file systems")
			}
			w, dir, _ := newWriter(t)
			base := tt.base
			if base == "" {
				base = t.TempDir()
			} else {
				d, err := os.MkdirTemp(base, "spool-test-")
				if err != nil {
					t.Skipf("cannot use %s: %v", base, err)
				}
				t.Cleanup(func() { os.RemoveAll(d) })
				base = d
			}
			w2, err := NewWriter(filepath.Join(base, "kafka"), filepath.Join(base, "kafka.tmp"), nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := w.Begin("1700000000")
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"a_info", "a_stat"} {
				if _, err := p.Write(f, func(w io.Writer) error { _, err := io.WriteString(w, f+" content"); return err }); err != nil {
					t.Fatal(err)
				}
			}
			c, err := p.CloneInto(w2)
			if err != nil {
				t.Fatalf("CloneInto = %v", err)
			}
			if c.Bytes() != p.Bytes() || c.Name() != "1700000000" {
				t.Errorf("clone %s of %d bytes, want %s of %d", c.Name(), c.Bytes(), p.Name(), p.Bytes())
			}
			if err := c.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"a_info", "a_stat"} {
				a, _ := os.Stat(filepath.Join(dir, "1700000000", f))
				b, err := os.Stat(filepath.Join(w2.Dir(), "1700000000", f))
				if err != nil {
					t.Fatal(err)
				}
				data, _ := os.ReadFile(filepath.Join(w2.Dir(), "1700000000", f))
				if string(data) != f+" content" || os.SameFile(a, b) != tt.link {
					t.Errorf("%s in the second spool: %q, same file as the first's: %v, want %v", f, data, os.SameFile(a, b), tt.link)
				}
			}
			if _, err := p.CloneInto(w2); err == nil {
				t.Error("CloneInto after Commit succeeded")
			}
			q, err := w.Begin("1700000001")
			if err != nil {
				t.Fatal(err)
			}
			defer q.Abort()
			os.Mkdir(filepath.Join(w2.Dir(), "1700000001"), 0o755)
			if _, err := q.CloneInto(w2); !errors.Is(err, ErrSnapshotExists) {
				t.Errorf("CloneInto over an existing snapshot = %v, want ErrSnapshotExists", err)
			}
		})
	}
}
