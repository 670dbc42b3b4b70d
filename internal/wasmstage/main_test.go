package wasmstage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/haproxystats-go/haproxystats/engine"
)

// The test modules are built once per test binary into buildDir: the WAT
// modules of testdata/ with wat2wasm (Debian package wabt), the examples of
// wasm-examples/ with `go build` (GOOS=wasip1) and wat2wasm. A missing tool
// skips the tests that need it, loudly.
var buildDir string

const examplesDir = "../../wasm-examples"

func TestMain(m *testing.M) {
	if IsChild() {
		os.Exit(ChildMain())
	}
	dir, err := os.MkdirTemp("", "wasmstage-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		fmt.Fprintln(os.Stderr, "wasmstage: wat2wasm not found, the tests of WAT modules are SKIPPED (apt-get install -y wabt)")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var builds sync.Map // output path -> *buildResult

type buildResult struct {
	once sync.Once
	err  error
	skip string
}

// build runs make once per output path and skips or fails t on error.
func build(t testing.TB, out string, make func() (skip string, err error)) string {
	t.Helper()
	v, _ := builds.LoadOrStore(out, &buildResult{})
	r := v.(*buildResult)
	r.once.Do(func() { r.skip, r.err = make() })
	if r.skip != "" {
		t.Skip(r.skip)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return out
}

// wat compiles testdata/<name>.wat and returns the .wasm path.
func wat(t testing.TB, name string) string {
	return watFile(t, filepath.Join("testdata", name+".wat"), filepath.Join(buildDir, "testdata", name+".wasm"))
}

func watFile(t testing.TB, src, out string) string {
	t.Helper()
	return build(t, out, func() (string, error) {
		tool, err := exec.LookPath("wat2wasm")
		if err != nil {
			return "SKIPPED: wat2wasm not found; install it with `apt-get install -y wabt`", nil
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return "", err
		}
		cmd := exec.Command(tool, src, "-o", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("wat2wasm %s: %v\n%s", src, err, b)
		}
		return "", nil
	})
}

// goExample builds wasm-examples/<name> for wasip1 and returns the path.
func goExample(t testing.TB, name string) string {
	out := filepath.Join(buildDir, name, name+".wasm")
	return goBuild(t, out, examplesDir, []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0"}, "-buildmode=c-shared", "-trimpath", "./"+name)
}

// goBuild runs `go build -o out args...` in dir with env added, once per
// out, and returns out; without a go command it skips t.
func goBuild(t testing.TB, out, dir string, env []string, args ...string) string {
	t.Helper()
	return build(t, out, func() (string, error) {
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			if gobin, err = exec.LookPath("go"); err != nil {
				return "SKIPPED: no go command to build " + out, nil
			}
		}
		cmd := exec.Command(gobin, append([]string{"build", "-o", out}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "GOTOOLCHAIN=local"), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return "", nil
	})
}

// example builds any example: a Go one, or a WAT one (<name>/<name>.wat).
func example(t testing.TB, name string) string {
	src := filepath.Join(examplesDir, name, name+".wat")
	if _, err := os.Stat(src); err == nil {
		return watFile(t, src, filepath.Join(buildDir, name, name+".wasm"))
	}
	return goExample(t, name)
}

// newStage creates a stage and closes it at the end of the test.
func newStage(t testing.TB, opts Options) *Stage {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "test"
	}
	s, err := New(context.Background(), opts, nil)
	if err != nil {
		t.Fatalf("New(%s) = %v", opts.Module, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s
}

// recorder is an Emitter that keeps the metrics.
type recorder struct{ metrics []engine.Metric }

func (r *recorder) Emit(m engine.Metric) { r.metrics = append(r.metrics, m) }

func (r *recorder) String() string {
	var b strings.Builder
	for _, m := range r.metrics {
		fmt.Fprintf(&b, "%s %q %q %q %v\n", m.Scope, m.Object, m.Server, m.Name, m.Value)
	}
	return b.String()
}

// loadSnapshot parses a snapshot directory with every column.
func loadSnapshot(t testing.TB, dir string) *engine.Snapshot {
	t.Helper()
	files, err := engine.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return engine.NewParser(nil).Parse(filepath.Base(dir), files)
}

// osReadDir lists the subdirectories of dir, sorted.
func osReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, err
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// procStatus returns a field of /proc/<pid>/status in bytes, 0 when the
// process is gone.
func procStatus(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}
