package ctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

// examplesDir is wasm-examples/, where build-c-rust.sh and the examples are.
const examplesDir = ".."

// conformance holds the recorded snapshots the SDK tests read.
const conformance = "../../testdata/conformance"

var buildDir string

func TestMain(m *testing.M) {
	// The WASM stages of these tests run their modules in a child process:
	// this test binary, started again.
	if wasmstage.IsChild() {
		os.Exit(wasmstage.ChildMain())
	}
	dir, err := os.MkdirTemp("", "ctest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildOut  string
	buildErr  error
)

// built runs build-c-rust.sh once for the examples and the SDK test
// modules and returns the path of OUT/<name>/<name>.wasm. When the module
// was not built because its toolchain is missing, it skips t with the
// script's SKIP line; when the build failed, it fails t.
func built(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		cs, _ := filepath.Glob(filepath.Join("testdata", "*.c"))
		rs, _ := filepath.Glob(filepath.Join("testdata", "*.rs"))
		srcs := append(cs, rs...)
		script, err := filepath.Abs(filepath.Join(examplesDir, "build-c-rust.sh"))
		if err != nil {
			buildErr = err
			return
		}
		// The examples, then the SDK test modules.
		for _, args := range [][]string{{"-o", buildDir}, append([]string{"-o", buildDir}, srcs...)} {
			cmd := exec.Command(script, args...)
			out, err := cmd.CombinedOutput()
			buildOut += string(out)
			if err != nil {
				buildErr = fmt.Errorf("build-c-rust.sh %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	module := filepath.Join(buildDir, name, name+".wasm")
	if _, err := os.Stat(module); err != nil {
		for _, line := range strings.Split(buildOut, "\n") {
			if strings.Contains(line, "SKIP") && strings.Contains(line, " "+name) {
				testenv.Missing(t, line)
			}
		}
		t.Fatalf("%s was not built and build-c-rust.sh said nothing about it:\n%s", module, buildOut)
	}
	return module
}
