package assemble

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/counters"
)

// TestCountersStore checks that [process] monotonic-counters opens the
// counters store in counters-dir (its state written once a snapshot is
// done), in memory when asked (engine run, check, test), and that a
// counters-dir that cannot be created is an error naming the option.
func TestCountersStore(t *testing.T) {
	dir := t.TempDir()
	load := func(conf string) *config.Config {
		t.Helper()
		file := filepath.Join(dir, "haproxystats.conf")
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.LoadFiles(nil, file)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	state := filepath.Join(dir, "state-dir")
	cfg := load("[process]\nmonotonic-counters = true\ncounters-dir = " + state + "\n")

	mem, err := New(cfg, Options{StageCacheDir: "-", CountersInMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	if mem.Counters == nil {
		t.Fatal("no counters store with monotonic-counters = true")
	}
	mem.Close()
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("CountersInMemory touched counters-dir: %v", err)
	}

	built, err := New(cfg, Options{StageCacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "1700000000")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snap, "a.sock_stat"), []byte("# pxname,svname,stot,type,\nfe,FRONTEND,7,0,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	built.Counters.Pending(1700000000)
	var out bytes.Buffer
	if _, err := built.Pipeline.ProcessDir(context.Background(), snap, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "frontend.fe.stot 7 1700000000\n") {
		t.Errorf("output lacks fe.stot 7:\n%s", out.String())
	}
	if err := built.Counters.Done(1700000000); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(state, counters.StateFile)); err != nil || fi.Size() == 0 {
		t.Errorf("state file after Done: %v, %v", fi, err)
	}
	built.Close()

	if built, err := New(load("[process]\nmonotonic-counters = false\n"), Options{StageCacheDir: "-"}); err != nil || built.Counters != nil {
		t.Errorf("monotonic-counters = false: store %v, error %v, want none", built.Counters, err)
	}

	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = New(load("[process]\nmonotonic-counters = true\ncounters-dir = "+filepath.Join(blocker, "sub")+"\n"), Options{StageCacheDir: "-"})
	if err == nil || !strings.Contains(err.Error(), "counters-dir") {
		t.Errorf("counters-dir under a file: %v, want an error naming counters-dir", err)
	}
}
