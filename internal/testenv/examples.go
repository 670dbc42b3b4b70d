package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
)

// ExampleCase runs the test case of the WASM example name, kept in
// srcDir/testcase, as `haproxystats-engine test` does, with the module
// built at module: the case refers to ../<name>.wasm, so it runs on a copy
// next to the module. It fails t when the output differs from
// expected.txt or lacks the `Stage<name>Errors 0` line. With update it
// rewrites srcDir/testcase/expected.txt from the output instead.
func ExampleCase(t *testing.T, name, srcDir, module string, build enginetest.Build, update bool) {
	t.Helper()
	dir := filepath.Join(filepath.Dir(module), "testcase")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(srcDir, "testcase"))); err != nil {
		t.Fatal(err)
	}
	if update {
		// An empty expected file lets the run produce the output.
		if err := os.WriteFile(filepath.Join(dir, "expected.txt"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := enginetest.Run(context.Background(), enginetest.Case{Name: name, Dir: dir}, build)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if update {
		if err := os.WriteFile(filepath.Join(srcDir, "testcase", "expected.txt"), r.Output, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !r.Passed() {
		var b strings.Builder
		enginetest.Report(&b, r, true)
		t.Errorf("case %s:\n%s", name, b.String())
	}
	if !strings.Contains(string(r.Output), ".haproxystats.Stage"+name+"Errors 0 ") {
		t.Errorf("case %s: no Stage%sErrors 0 line", name, name)
	}
}
