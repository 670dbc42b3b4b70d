package wasmstage

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the expected.txt of the wasm-examples test cases")

// exampleNames lists the directories of wasm-examples/ that hold a Go or
// WAT example (a test case directory and main.go or <name>.wat); the C and
// Rust examples are tested by wasm-examples/ctest.
func exampleNames(t *testing.T) []string {
	entries, err := os.ReadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		dir := filepath.Join(examplesDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "testcase", "haproxystats.conf")); err != nil {
			continue
		}
		for _, src := range []string{"main.go", e.Name() + ".wat"} {
			if _, err := os.Stat(filepath.Join(dir, src)); err == nil {
				names = append(names, e.Name())
				break
			}
		}
	}
	if len(names) < 4 {
		t.Fatalf("found examples %v, want at least 4", names)
	}
	return names
}

// TestExamples builds every example and runs its test case, as
// `haproxystats-engine test` does: built-in stages plus the stages of
// `[process] stages`, output compared with expected.txt.
func TestExamples(t *testing.T) {
	for _, name := range exampleNames(t) {
		t.Run(name, func(t *testing.T) {
			module := example(t, name)
			testenv.ExampleCase(t, name, filepath.Join(examplesDir, name), module, caseBuilder(t), *update)
		})
	}
}

// TestReqrateIgnoredSnapshot checks that a snapshot reqrate ignores (not
// newer than the last one) changes nothing, even when its rows differ and
// the next snapshot has the same rows as it (the host then says SameRows,
// relative to the ignored call): A, then C, gives the rates of C against
// A whether or not B came between them.
func TestReqrateIgnoredSnapshot(t *testing.T) {
	module := example(t, "reqrate")
	incoming := filepath.Join(examplesDir, "reqrate", "testcase", "incoming")
	read := func(name string, drop string) []engine.File {
		files, err := engine.ReadDir(filepath.Join(incoming, name))
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(files, func(f engine.File) bool { return strings.HasPrefix(f.Name, drop) })
	}
	a := read("1795507783", "-")
	c := read("1795507785", "admin1") // other rows than A's: one process fewer
	run := func(names []string, seq ...[]engine.File) string {
		s := newStage(t, Options{Name: "reqrate", Module: module})
		p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "p"}}, engine.StageSpec{Name: "reqrate", Stage: s})
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		for i, files := range seq {
			if _, err := p.ProcessFiles(context.Background(), names[i], files, &out); err != nil {
				t.Fatal(err)
			}
		}
		var rates []string
		for l := range strings.Lines(out.String()) {
			if strings.Contains(l, "_rate ") && strings.HasSuffix(l, " 1795507785\n") {
				rates = append(rates, l)
			}
		}
		slices.Sort(rates)
		return strings.Join(rates, "")
	}
	want := run([]string{"1795507783", "1795507785"}, a, c)
	if strings.Count(want, "\n") < 4 {
		t.Fatalf("A then C: %q, want rates", want)
	}
	// B: C's rows, named older than A (ignored), so C has the same rows as
	// the call before it.
	if got := run([]string{"1795507783", "1795507700", "1795507785"}, a, c, c); got != want {
		t.Errorf("A, B (ignored, C's rows), C:\n%s\nwant (A, C):\n%s", got, want)
	}
}

// TestReqrateChurn checks that reqrate's slots, compacted when objects
// churn (a configuration of 4100 frontends reloaded with 10), lose no
// interval: every snapshot after the first has the rates of the 10.
func TestReqrateChurn(t *testing.T) {
	s := newStage(t, Options{Name: "reqrate", Module: example(t, "reqrate")})
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "p"}}, engine.StageSpec{Name: "reqrate", Stage: s})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		objects := 4100
		if i > 0 {
			objects = 10
		}
		var b strings.Builder
		b.WriteString("# pxname,svname,req_tot,stot,type\n")
		for o := range objects {
			fmt.Fprintf(&b, "f%d,FRONTEND,%d,%d,0\n", o, 100+10*i, 200+20*i)
		}
		name := strconv.Itoa(1795507000 + 10*i)
		var out strings.Builder
		if _, err := p.ProcessFiles(context.Background(), name, []engine.File{{Name: "a_stat", Data: []byte(b.String())}}, &out); err != nil {
			t.Fatal(err)
		}
		var rates []string
		for l := range strings.Lines(out.String()) {
			if strings.Contains(l, "_rate ") {
				rates = append(rates, l)
			}
		}
		want := 20
		if i == 0 {
			want = 0 // no previous snapshot
		}
		if len(rates) != want {
			t.Fatalf("snapshot %d: %d rates, want %d:\n%s", i, len(rates), want, strings.Join(rates, ""))
		}
		for _, l := range rates {
			if !strings.HasSuffix(l, "_rate 1 "+name+"\n") && !strings.HasSuffix(l, "_rate 2 "+name+"\n") {
				t.Errorf("snapshot %d: %q, want a rate of 1 (req_tot) or 2 (stot)", i, l)
			}
		}
	}
}

// caseBuilder builds the pipeline of a case: the built-in stages with
// their defaults (the example cases set nothing else) and the WASM stages
// of `[process] stages`, configured from their `[stage.<name>]` sections.
func caseBuilder(t *testing.T) enginetest.Build {
	return func(caseDir, confFile string) (*enginetest.Setup, error) {
		cfg, err := config.Load(confFile, "", nil)
		if err != nil {
			return nil, err
		}
		ns, err := cfg.Get("graphite", "namespace")
		if err != nil {
			return nil, err
		}
		specs := builtin.Stages(builtin.Options{})
		list, err := cfg.Get("process", "stages")
		if err != nil && !errors.Is(err, config.ErrNoOption) {
			return nil, err
		}
		for _, name := range strings.Fields(list) {
			section := "stage." + name
			raw := map[string]string{}
			for _, opt := range cfg.OwnOptions(section) {
				if raw[opt], err = cfg.Get(section, opt); err != nil {
					return nil, err
				}
			}
			opts, err := ParseOptions(name, raw, filepath.Dir(confFile))
			if err != nil {
				return nil, err
			}
			// The module is compiled in a child process that is this test
			// binary: under -race it takes about 18 s of CPU for a Go
			// example on a quiet 2-core machine, and more than the
			// default minute when other packages' tests load it (seen
			// once). The cases test the examples' output, not that bound
			// (TestCompileCanceled and TestCompileBombs do).
			opts.CompileTimeout = max(opts.CompileTimeout, 10*time.Minute)
			s, err := New(context.Background(), opts, nil)
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { s.Close() })
			specs = append(specs, engine.StageSpec{Name: name, Stage: s})
		}
		p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: ns + ".haproxy"}}, specs...)
		if err != nil {
			return nil, err
		}
		return &enginetest.Setup{Pipeline: p}, nil
	}
}

// TestExampleFiles checks that every example has what the house style
// asks for: a README with the exact build command, its source, a test case
// with an expected output.
func TestExampleFiles(t *testing.T) {
	for _, name := range exampleNames(t) {
		dir := filepath.Join(examplesDir, name)
		readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !strings.Contains(string(readme), name+"/"+name+".wasm") {
			t.Errorf("%s/README.md does not give the build command producing %s/%s.wasm", name, name, name)
		}
		var sources int
		_ = fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && (strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".wat")) {
				sources++
			}
			return nil
		})
		if sources == 0 {
			t.Errorf("%s: no source", name)
		}
		if _, err := os.Stat(filepath.Join(dir, "testcase", "expected.txt")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
