package ctest

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/cases"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

var update = flag.Bool("update", false, "rewrite the expected.txt of the C and Rust example cases (check the new values by hand)")

// examples lists the C and Rust examples: the directories <name> of
// wasm-examples/ that hold <name>.c or <name>.rs.
func examples(t *testing.T) []string {
	entries, err := os.ReadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		for _, ext := range []string{".c", ".rs"} {
			if _, err := os.Stat(filepath.Join(examplesDir, e.Name(), e.Name()+ext)); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	if len(names) < 2 {
		t.Fatalf("found C and Rust examples %v, want at least 2", names)
	}
	return names
}

// TestExamples builds every C and Rust example and runs its test case as
// `haproxystats-engine test` does: the built-in stages plus the stages of
// `[process] stages`, the output compared with expected.txt.
func TestExamples(t *testing.T) {
	for _, name := range examples(t) {
		t.Run(name, func(t *testing.T) {
			module := built(t, name)
			testenv.ExampleCase(t, name, filepath.Join(examplesDir, name), module, cases.Build, *update)
		})
	}
}

// TestExampleFiles checks that every C and Rust example has what the
// house style asks for: a README with the exact build command, its
// source, a test case with an expected output.
func TestExampleFiles(t *testing.T) {
	for _, name := range examples(t) {
		dir := filepath.Join(examplesDir, name)
		readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !strings.Contains(string(readme), "-o "+name+"/"+name+".wasm") {
			t.Errorf("%s/README.md does not give the build command producing %s/%s.wasm", name, name, name)
		}
		for _, f := range []string{"testcase/haproxystats.conf", "testcase/expected.txt"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

// metricLines runs one snapshot of an example's test case through s and
// returns the stage's metrics as lines (see lines).
func metricLines(t *testing.T, s *wasmstage.Stage, snap *engine.Snapshot) []string {
	t.Helper()
	var rec recorder
	if err := s.Process(context.Background(), snap, &rec); err != nil {
		t.Fatalf("Process(%s) = %v", snap.Name, err)
	}
	return lines(rec.metrics)
}

// TestExampleOptions checks the options of the examples' sections: a bad
// value or an unknown option stops the stage at start-up with a reason
// naming it, and a good value changes what the stage sends (the test
// cases run with the defaults).
func TestExampleOptions(t *testing.T) {
	for _, tt := range []struct {
		example string
		params  map[string]string
		wantErr string
	}{
		// The host quotes the module's reason with %q.
		{"cqueue", map[string]string{"min-queue": "0"}, `min-queue = \"0\": want a number of requests`},
		{"cqueue", map[string]string{"min-queue": "2x"}, `min-queue = \"2x\"`},
		{"cqueue", map[string]string{"min_queue": "2"}, `unknown option \"min_queue\"`},
		{"rsavail", map[string]string{"degraded-below": "101"}, `degraded-below = \"101\": want a percentage`},
		{"rsavail", map[string]string{"top": "3"}, `unknown option \"top\"`},
	} {
		_, err := newStage(t, tt.example, built(t, tt.example), tt.params, nil)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s with %v: New = %v, want an error containing %s", tt.example, tt.params, err, tt.wantErr)
		}
	}

	// min-queue = 2: backend_proc2, one queued request, is left out of
	// the backends but counted in the requests.
	s, err := newStage(t, "cqueue", built(t, "cqueue"), map[string]string{"min-queue": "2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := metricLines(t, s, loadSnapshot(t, filepath.Join(examplesDir, "cqueue/testcase/incoming/1795507785")))
	want := []string{
		`backend "backend1_proc34" "" "QueueMaxPct" 40`,
		`backend "backend1_proc34" "" "QueueTotal" 12`,
		`path "" "" "queue.backends_queued" 1`,
		`path "" "" "queue.requests" 13`,
		`server "backend1_proc34" "bck1_proc34_srv1" "QueueSharePct" 16.666666666666668`,
		`server "backend1_proc34" "bck1_proc34_srv2" "QueueSharePct" 33.333333333333336`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("cqueue min-queue = 2:\n%s", diff(got, want))
	}

	// degraded-below = 50: backend_proc1 (4 of 6 active servers up) is no
	// longer degraded, backend_proc2 (none up) still is.
	s, err = newStage(t, "rsavail", built(t, "rsavail"), map[string]string{"degraded-below": "50"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got = metricLines(t, s, loadSnapshot(t, filepath.Join(examplesDir, "rsavail/testcase/incoming/1795507783")))
	for _, line := range []string{`path "" "" "availability.backends_degraded" 1`, `path "" "" "availability.backends_down" 1`} {
		if !slices.Contains(got, line) {
			t.Errorf("rsavail degraded-below = 50: no %s in\n%s", line, strings.Join(got, "\n"))
		}
	}
}

// TestRsavailTransitions checks the state rsavail keeps between snapshots:
// the first snapshot logs nothing (no previous state), a backend that
// changes state is logged once, at info when it recovers and at warn when
// it degrades.
func TestRsavailTransitions(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := newStage(t, "rsavail", built(t, "rsavail"), nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(examplesDir, "rsavail/testcase/incoming")
	first := loadSnapshot(t, filepath.Join(dir, "1795507783"))
	metricLines(t, s, first) // backend_proc1 degraded, backend_proc2 down
	if logs.Len() != 0 {
		t.Errorf("first snapshot logged:\n%s", logs.String())
	}

	// Every server of backend_proc1 up; one of backend1_proc34's six down
	// (its BACKEND row on admin3 reports 2 up instead of 3).
	second := loadSnapshot(t, filepath.Join(dir, "1795507784"))
	st, act := &second.Stats, second.Stats.Column("act")
	for i := range st.Rows() {
		switch {
		case st.Kind[i] == engine.KindBackend && st.PxName[i] == "backend_proc1":
			act.Values[i] = 3
		case st.Kind[i] == engine.KindBackend && st.PxName[i] == "backend1_proc34" && st.Procs[st.Proc[i]] == "admin3.sock":
			act.Values[i] = 2
		}
	}
	got := metricLines(t, s, second)
	for _, line := range []string{
		`backend "backend_proc1" "" "ActiveServersUpPct" 100`,
		`backend "backend1_proc34" "" "ActiveServersDown" 1`,
		`path "" "" "availability.backends_degraded" 2`,
	} {
		if !slices.Contains(got, line) {
			t.Errorf("second snapshot: no %s in\n%s", line, strings.Join(got, "\n"))
		}
	}
	log := logs.String()
	for _, want := range []string{
		`level=INFO msg="module log" stage=rsavail message="backend backend_proc1: recovered (6 of 6 active servers up)" snapshot=1795507784`,
		`level=WARN msg="module log" stage=rsavail message="backend backend1_proc34: degraded (5 of 6 active servers up)" snapshot=1795507784`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	if n := strings.Count(log, "module log"); n != 2 {
		t.Errorf("%d log lines, want 2:\n%s", n, log)
	}
}
