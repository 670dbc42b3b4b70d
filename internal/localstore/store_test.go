package localstore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestNewCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "local-store")
	s, err := New(dir)
	if err != nil {
		t.Fatalf("New(%q) = %v", dir, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("New(%q) did not create the directory: %v", dir, err)
	}
	if s.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", s.Dir(), dir)
	}
}

func TestNewRefusesFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "sub"), ""} {
		if _, err := New(dir); err == nil || (dir != "" && !strings.Contains(err.Error(), dir)) {
			t.Errorf("New(%q) = %v, want an error naming it", dir, err)
		}
	}
}

func TestWriteExactContent(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lines := []byte("lb.host.haproxy.daemon.CurrConns 12 1700000000\nlb.host.haproxy.daemon.Idle_pct 0.5 1700000000\n")
	if err := s.Write("1700000000", lines); err != nil {
		t.Fatalf("Write = %v", err)
	}
	path := filepath.Join(s.Dir(), "1700000000", "stats")
	if s.Path("1700000000") != path {
		t.Errorf("Path = %q, want %q", s.Path("1700000000"), path)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, lines) {
		t.Errorf("%s = %q, want %q", path, got, lines)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o644 {
		t.Errorf("mode of %s = %v, want 0644", path, m)
	}
	// Empty input makes an empty file.
	if err := s.Write("1700000010", nil); err != nil {
		t.Fatalf("Write(empty) = %v", err)
	}
	if got, err := os.ReadFile(s.Path("1700000010")); err != nil || len(got) != 0 {
		t.Errorf("empty snapshot file = %q, %v, want empty", got, err)
	}
}

func TestWriteReplacesOnReplay(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	long := bytes.Repeat([]byte("a.b.c 1 1700000000\n"), 1000)
	short := []byte("a.b.c 2 1700000000\n")
	for _, lines := range [][]byte{long, short} {
		if err := s.Write("1700000000", lines); err != nil {
			t.Fatalf("Write = %v", err)
		}
	}
	got, err := os.ReadFile(s.Path("1700000000"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, short) {
		t.Errorf("after replay file = %q, want %q", got, short)
	}
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "1700000000"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "stats" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("snapshot directory holds %q, want only stats (no temporary files)", names)
	}
}

func TestWriteErrorNamesPath(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A regular file where the snapshot directory should be: fails even
	// for root.
	blocker := filepath.Join(s.Dir(), "1700000000")
	if err := os.WriteFile(blocker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = s.Write("1700000000", []byte("a 1 1\n"))
	if err == nil || !strings.Contains(err.Error(), blocker) {
		t.Errorf("Write over a regular file = %v, want an error naming %s", err, blocker)
	}

	// The store's directory itself replaced by a file.
	dir := t.TempDir()
	s2, err := New(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s2.Dir()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s2.Dir(), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(s2.Dir(), "1700000000")
	if err := s2.Write("1700000000", []byte("a 1 1\n")); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Write under a regular file = %v, want an error naming %s", err, want)
	}

	// A directory where the stats file should be.
	if err := os.MkdirAll(filepath.Join(s.Dir(), "1700000010", "stats", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	want = filepath.Join(s.Dir(), "1700000010", "stats")
	if err := s.Write("1700000010", []byte("a 1 1\n")); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Write over a directory = %v, want an error naming %s", err, want)
	}

	t.Run("not writable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: permissions do not stop writes; the cases above cover the error path")
		}
		dir := t.TempDir()
		s, err := New(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		want := filepath.Join(dir, "1700000000")
		if err := s.Write("1700000000", []byte("a 1 1\n")); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Write in a read-only directory = %v, want an error naming %s", err, want)
		}
	})
}

func TestWriteRejectsBadNames(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", ".", "..", "a/b", "../x"} {
		if err := s.Write(name, nil); err == nil {
			t.Errorf("Write(%q) = nil, want an error", name)
		}
	}
}

func TestConcurrentWrites(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprint(1700000000 + i%8*10) // four writers per snapshot
			lines := bytes.Repeat([]byte(name+" "+fmt.Sprint(i)+" 1\n"), 100)
			if err := s.Write(name, lines); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for k := range 8 {
		name := fmt.Sprint(1700000000 + k*10)
		got, err := os.ReadFile(s.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		// One writer's content, whole.
		first := got[:bytes.IndexByte(got, '\n')+1]
		if len(got) != 100*len(first) || !bytes.Equal(got, bytes.Repeat(first, 100)) {
			t.Errorf("%s holds a mix of writes or a partial one (%d bytes)", s.Path(name), len(got))
		}
	}
}

// TestWriteDoesNotFollowLinks: a symbolic link placed at <dir>/<snapshot>
// or at <dir>/<snapshot>/stats never makes the store write outside its
// directory.
func TestWriteDoesNotFollowLinks(t *testing.T) {
	s, err := New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()

	// <dir>/<snapshot> -> a directory outside the store.
	link := filepath.Join(s.Dir(), "1700000000")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	err = s.Write("1700000000", []byte("a 1 1\n"))
	if err == nil || !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Write through a linked snapshot directory = %v, want an error naming %s as a symbolic link", err, link)
	}
	if entries, err := os.ReadDir(outside); err != nil || len(entries) != 0 {
		t.Errorf("the link's target holds %d entries (%v), want none", len(entries), err)
	}

	// <dir>/<snapshot>/stats -> a file outside the store.
	target := filepath.Join(outside, "victim")
	if err := os.WriteFile(target, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(s.Dir(), "1700000010"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, s.Path("1700000010")); err != nil {
		t.Fatal(err)
	}
	if err := s.Write("1700000010", []byte("a 1 1\n")); err != nil {
		t.Fatalf("Write over a linked stats = %v", err)
	}
	if got, _ := os.ReadFile(target); string(got) != "precious\n" {
		t.Errorf("the link's target = %q, want it untouched", got)
	}
	if fi, err := os.Lstat(s.Path("1700000010")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("%s after Write: %v, %v, want a regular file", s.Path("1700000010"), fi, err)
	}
}
