package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestRunPullStopDuringStartup: a stop while the one daemon's start-up
// takes long (here compiling a WebAssembly stage for seconds) ends it at
// once, exit 0 with a log line, as a stop afterwards does.
func TestRunPullStopDuringStartup(t *testing.T) {
	base := t.TempDir()
	conf := filepath.Join(base, "haproxystats.conf")
	text := "[paths]\nbase-dir = " + base + "\n[pull]\nsocket-dir = " + t.TempDir() + "\n" + testenv.SlowStage(t)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.StopsDuringStartup(t, "run --pull", func(ctx context.Context, stdout, stderr io.Writer) int {
		return run(ctx, []string{"run", "--pull", "-f", conf}, stdout, stderr)
	})
}

// TestCheckStopped: a stop ends check at once, exit 1: nothing was
// validated.
func TestCheckStopped(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "haproxystats.conf")
	if err := os.WriteFile(conf, []byte("[paths]\nbase-dir = "+t.TempDir()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"check", "-f", conf}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "stopped during start-up") {
		t.Errorf("check after a stop: exit %d, stdout %q, stderr %q; want 1 and the stop named", code, out.String(), errb.String())
	}
}

// TestRunRefusesNonEpochDir: the snapshot directory's name is the
// timestamp of every line, so run refuses one that is not digits only,
// naming it, before reading anything.
func TestRunRefusesNonEpochDir(t *testing.T) {
	c := filepath.Join(corpus, "dots-defaults")
	for _, name := range []string{"snapshot", "1700000000.bak", "17e8", "-1", " 1700000000"} {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.CopyFS(dir, os.DirFS(caseSnapshotDir(t, c))); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"run", "-f", filepath.Join(c, "haproxystats.conf"), dir}, &out, &errb)
		if code != 2 || out.Len() != 0 || !strings.Contains(errb.String(), dir) || !strings.Contains(errb.String(), "not an epoch second") {
			t.Errorf("run %q: exit %d, %d bytes out, stderr %q; want 2, nothing printed, an error naming it", dir, code, out.Len(), errb.String())
		}
	}
	// A trailing slash is fine.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"run", "-f", filepath.Join(c, "haproxystats.conf"), caseSnapshotDir(t, c) + "/"}, &out, &errb); code != 0 {
		t.Errorf("run with a trailing slash: exit %d, %s", code, errb.String())
	}
}

func caseSnapshotDir(t *testing.T, caseDir string) string {
	t.Helper()
	snaps, _ := filepath.Glob(filepath.Join(caseDir, "incoming", "*"))
	if len(snaps) != 1 {
		t.Fatalf("%s: %d snapshots, want 1", caseDir, len(snaps))
	}
	return snaps[0]
}
