package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

// binary is the haproxystats-process binary built once for the black-box
// tests.
var binary string

func TestMain(m *testing.M) {
	// The WASM stages of these tests (a stage with a timeout) run their
	// modules in a child process: this test binary, started again.
	if wasmstage.IsChild() {
		os.Exit(wasmstage.ChildMain())
	}
	dir, err := os.MkdirTemp("", "haproxystats-process-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "haproxystats-process")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
		// A race-enabled program sleeps 1 s at exit (ThreadSanitizer's
		// atexit_sleep_ms), which the tests of a prompt stop would count.
		if os.Getenv("GORACE") == "" {
			os.Setenv("GORACE", "atexit_sleep_ms=0")
		}
	}
	build := exec.Command("go", append(args, ".")...)
	if !raceEnabled {
		// Static, as make dist and the Debian package build it: a
		// dynamic program pays for the loader at every start (about
		// 4 ms of CPU on a virtual machine, most of it glibc asking the
		// processor for its caches), which BenchmarkE2E would count.
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestConformanceDaemon runs the daemon over every corpus case as the
// corpus README prescribes (§6.1): a scratch copy of the case as working
// directory, its configuration plus a second file setting src-dir and
// Graphite, SIGTERM once the spool is empty, then the comparison rules of
// §6.2-6.3. A snapshot leaves the spool only once Graphite's TCP stack
// acknowledged its lines, and the daemon closes its connection on exit, so
// once the recorder has read every connection to its end it holds
// everything.
func TestConformanceDaemon(t *testing.T) {
	cases, err := enginetest.Find(corpus)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			r := startCase(t, c, "")
			r.finish(t)
			work, before := r.work, r.snapshots
			got, _ := r.graphite.Bytes()
			expected, err := os.ReadFile(filepath.Join(c.Dir, "expected.txt"))
			if err != nil {
				t.Fatal(err)
			}
			failed := strings.Contains(readFile(t, filepath.Join(c.Dir, "outcome.txt")), "worker-crash: yes")
			for _, m := range enginetest.Compare(expected, got, failed) {
				if m.Counted {
					t.Errorf("%s", m)
				}
			}
			if len(before) == 0 {
				t.Fatal("case has no snapshot")
			}
			// Local store: one file per snapshot, compared without
			// TotalWallClockTime (the original wrote it into the next file).
			want, _ := filepath.Glob(filepath.Join(c.Dir, "expected-local-store", "*.txt"))
			for _, w := range want {
				snap := strings.TrimSuffix(filepath.Base(w), ".txt")
				gotFile, err := os.ReadFile(filepath.Join(work, "local-store", snap, "stats"))
				if err != nil {
					t.Errorf("local store: %v", err)
					continue
				}
				if !bytes.Contains(gotFile, []byte(".haproxystats.TotalWallClockTime ")) {
					t.Errorf("local store %s lacks its own TotalWallClockTime", snap)
				}
				for _, m := range enginetest.Compare(dropTotal(readFile(t, w)), dropTotal(string(gotFile)), failed) {
					if m.Counted {
						t.Errorf("local store %s: %s", snap, m)
					}
				}
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(data)
}

func dropTotal(s string) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		if l != "" && !strings.Contains(l, ".TotalWallClockTime ") {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}
