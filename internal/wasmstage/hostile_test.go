package wasmstage

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
)

func TestNewRejects(t *testing.T) {
	notWasm := filepath.Join(t.TempDir(), "notwasm.wasm")
	if err := os.WriteFile(notWasm, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo.wasm")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		module func(t *testing.T) string
		opts   Options
		want   string
	}{
		{"missing file", func(*testing.T) string { return filepath.Join(t.TempDir(), "nothere.wasm") }, Options{}, "no such file"},
		{"not wasm", func(*testing.T) string { return notWasm }, Options{}, "not a WebAssembly module"},
		{"a FIFO", func(*testing.T) string { return fifo }, Options{}, "not a regular file"},
		{"wrong ABI version", func(t *testing.T) string { return wat(t, "abi2") }, Options{}, "ABI version 2"},
		{"missing export", func(t *testing.T) string { return wat(t, "noprocess") }, Options{}, "missing export hs_process"},
		{"wrong signature", func(t *testing.T) string { return wat(t, "badsig") }, Options{}, "hs_process has signature (i32, i32) -> (i32)"},
		{"unknown import", func(t *testing.T) string { return wat(t, "badimport") }, Options{}, "imports env.open"},
		{"no memory export", func(t *testing.T) string { return wat(t, "nomemory") }, Options{}, `missing export "memory"`},
		{"memory over limit", func(t *testing.T) string { return wat(t, "bigmemory") }, Options{}, "over limit"},
		{"_initialize loops", func(t *testing.T) string { return wat(t, "initloop") }, Options{Timeout: 100 * time.Millisecond}, "timeout"},
		{"hs_init fails", func(t *testing.T) string { return wat(t, "initfail") }, Options{}, "hs_init returned 7"},
		{"params without hs_init", func(t *testing.T) string { return wat(t, "abi2") }, Options{Params: map[string]string{"top": "5"}}, "does not export hs_init"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Name = "hostile"
			opts.Module = tt.module(t)
			start := time.Now()
			s, err := New(context.Background(), opts, nil)
			if err == nil {
				s.Close()
				t.Fatalf("New(%s) succeeded, want an error containing %q", opts.Module, tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, "stage hostile") || !strings.Contains(msg, opts.Module) {
				t.Errorf("New(%s) = %q, want the stage, the file and %q", opts.Module, msg, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("New took %v", d)
			}
		})
	}
}

// snap returns an empty snapshot whose name selects the behaviour of
// testdata/hostile.wat.
func snap(mode int) *engine.Snapshot { return &engine.Snapshot{Name: strconv.Itoa(mode)} }

// calls runs mode 0 of hostile.wat and returns the number of calls the
// instance has seen.
func calls(t *testing.T, s *Stage) float64 {
	t.Helper()
	var r recorder
	if err := s.Process(context.Background(), snap(0), &r); err != nil {
		t.Fatalf("Process(mode 0) = %v", err)
	}
	if len(r.metrics) != 1 || r.metrics[0].Name != "calls" || r.metrics[0].Scope != engine.ScopeDaemon {
		t.Fatalf("Process(mode 0) emitted %s, want one daemon metric calls", r.String())
	}
	return r.metrics[0].Value
}

func TestHostile(t *testing.T) {
	const timeout = time.Second
	s := newStage(t, Options{
		Module:         wat(t, "hostile"),
		Timeout:        timeout,
		MemoryLimitMiB: 16,
		MaxMetrics:     1000,
	})
	if got := s.Columns(); strings.Join(got, " ") != "scur stot" {
		t.Errorf("Columns() = %q, want [scur stot]", got)
	}
	// State persists between calls.
	if c1, c2 := calls(t, s), calls(t, s); c1 != 1 || c2 != 2 {
		t.Fatalf("calls = %v, %v; want 1, 2", c1, c2)
	}
	tests := []struct {
		mode int
		name string
		want error
		msg  string
	}{
		{1, "infinite loop", ErrTimeout, "did not return within 1s"},
		{3, "trap", ErrTrap, "unreachable"},
		{4, "output pointer outside memory", ErrMalformed, "outside memory"},
		{5, "a billion metrics", ErrTooManyMetrics, "1000000000 metrics, limit 1000"},
		{6, "newline in a name", ErrMalformed, `"evil\nline" contains a space or control character`},
		{7, "space in a name", ErrMalformed, `"evil name" contains a space`},
		{8, "output length outside memory", ErrMalformed, "outside memory"},
		{9, "bad magic", ErrMalformed, "magic"},
		{10, "trailing bytes", ErrMalformed, "3 bytes after the last metric"},
		{11, "module error", ErrGuest, `"boom"`},
		{12, "unknown scope", ErrMalformed, "unknown scope 9"},
		{13, "empty path segment", ErrMalformed, "empty segment"},
		{15, "truncated", ErrMalformed, "2 metrics do not fit in 33 bytes"},
		{19, "reserved header field", ErrMalformed, "reserved header field 1 is not 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			start := time.Now()
			err := s.Process(context.Background(), snap(tt.mode), &r)
			elapsed := time.Since(start)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Process(mode %d) = %v, want %v containing %q", tt.mode, err, tt.want, tt.msg)
			}
			if tt.want == ErrTimeout && elapsed > timeout+2*time.Second {
				t.Errorf("Process(infinite loop) returned after %v, timeout %v", elapsed, timeout)
			}
			// The instance was re-created: its call counter starts again.
			if c := calls(t, s); c != 1 {
				t.Errorf("after %s: calls = %v, want 1 (fresh instance)", tt.name, c)
			}
		})
	}
}

// TestMemoryGrowth grows memory without end; it has its own stage with a
// generous timeout because growing to the limit copies the memory many
// times, which is slow under the race detector.
func TestMemoryGrowth(t *testing.T) {
	s := newStage(t, Options{Module: wat(t, "hostile"), Timeout: 30 * time.Second, MemoryLimitMiB: 16})
	err := s.Process(context.Background(), snap(2), &recorder{})
	if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "of 16 MiB") {
		t.Fatalf("Process(memory growth) = %v, want ErrMemoryLimit", err)
	}
	if c := calls(t, s); c != 1 {
		t.Errorf("calls = %v after running out of memory, want 1", c)
	}
}

func TestHostileNoMetrics(t *testing.T) {
	s := newStage(t, Options{Module: wat(t, "hostile")})
	var r recorder
	if err := s.Process(context.Background(), snap(17), &r); err != nil || len(r.metrics) != 0 {
		t.Fatalf("Process(no metrics) = %v, %s; want nil and nothing", err, r.String())
	}
}

func TestGuestLogRateLimit(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New(context.Background(), Options{Name: "noisy", Module: wat(t, "hostile")}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var r recorder
	if err := s.Process(context.Background(), snap(14), &r); err != nil {
		t.Fatalf("Process(log flood) = %v", err)
	}
	out := logs.String()
	if n := strings.Count(out, `msg="module log"`); n != maxLogLines {
		t.Errorf("%d guest lines logged, want %d:\n%s", n, maxLogLines, out)
	}
	if !strings.Contains(out, "dropped=980") || !strings.Contains(out, "stage=noisy") || !strings.Contains(out, "snapshot=14") {
		t.Errorf("log lacks the dropped count, stage or snapshot:\n%s", out)
	}
	// A log call with a pointer outside memory is dropped, not fatal.
	if err := s.Process(context.Background(), snap(16), &r); err != nil {
		t.Fatalf("Process(bad log pointer) = %v", err)
	}
}

// TestDroppedLogsCountedOnce: the log lines a module drops in one call,
// here in hs_alloc (20 logged, 5 dropped), are counted once, whether the
// module runs in the daemon or in a child process, whose every reply of
// the call (instantiate, alloc, process) carries the count so far.
func TestDroppedLogsCountedOnce(t *testing.T) {
	for _, tt := range []struct {
		name    string
		timeout time.Duration
	}{{"in the daemon", 0}, {"in a child process", time.Minute}} {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			s, err := New(context.Background(), Options{Name: "noisy", Module: wat(t, "hostile"), Timeout: tt.timeout, childExec: containedChild(t)}, logger)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var r recorder
			if err := s.Process(context.Background(), snap(14|1<<16), &r); err != nil {
				t.Fatalf("Process(log flood, then hs_alloc logs) = %v", err)
			}
			before := len(logs.String())
			if err := s.Process(context.Background(), snap(0), &r); err != nil {
				t.Fatalf("Process(mode 0) = %v", err)
			}
			out := logs.String()[before:]
			if n := strings.Count(out, `msg="module log"`); n != maxLogLines {
				t.Errorf("%d guest lines logged, want %d:\n%s", n, maxLogLines, out)
			}
			if !strings.Contains(out, "dropped=5 ") {
				t.Errorf("want dropped=5 for the 25 lines of hs_alloc:\n%s", out)
			}
		})
	}
}

func TestCanceledContext(t *testing.T) {
	s := newStage(t, Options{Module: wat(t, "hostile"), Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Process(ctx, snap(1), &recorder{})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Errorf("Process(canceled) = %v, want the context's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Process(canceled) returned after %v", d)
	}
	if c := calls(t, s); c != 1 {
		t.Errorf("calls = %v after cancellation, want 1", c)
	}
}

func TestTrusted(t *testing.T) {
	s := newStage(t, Options{Module: wat(t, "hostile"), Timeout: 0})
	if c1, c2 := calls(t, s), calls(t, s); c1 != 1 || c2 != 2 {
		t.Fatalf("calls = %v, %v; want 1, 2", c1, c2)
	}
	if err := s.Process(context.Background(), snap(3), &recorder{}); !errors.Is(err, ErrTrap) {
		t.Fatalf("Process(trap) = %v, want ErrTrap", err)
	}
	if c := calls(t, s); c != 1 {
		t.Errorf("calls = %v after trap, want 1", c)
	}
}

func TestClosed(t *testing.T) {
	s, err := New(context.Background(), Options{Name: "x", Module: wat(t, "hostile")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Process(context.Background(), snap(0), &recorder{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Process after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestHammer calls one stage from many goroutines, correct and failing
// calls mixed; run it with -race.
func TestHammer(t *testing.T) {
	s := newStage(t, Options{Module: wat(t, "hostile"), Timeout: 5 * time.Second, MaxMetrics: 10})
	const goroutines, perG = 16, 40
	modes := []int{0, 0, 0, 3, 5, 6, 0, 11}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, failed := 0, 0
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				mode := modes[(g+i)%len(modes)]
				var r recorder
				err := s.Process(context.Background(), snap(mode), &r)
				mu.Lock()
				if mode == 0 {
					if err != nil || len(r.metrics) != 1 || r.metrics[0].Value < 1 {
						t.Errorf("mode 0: %v, %s", err, r.String())
					}
					ok++
				} else {
					if err == nil || len(r.metrics) != 0 && mode != 6 {
						t.Errorf("mode %d: %v, %s", mode, err, r.String())
					}
					failed++
				}
				mu.Unlock()
				_ = s.Columns()
			}
		}(g)
	}
	wg.Wait()
	if ok+failed != goroutines*perG {
		t.Errorf("%d calls, want %d", ok+failed, goroutines*perG)
	}
}

// TestPipelineContainsFailure runs a real pipeline: a built-in-like stage,
// then the hostile stage. A failing call loses only the hostile stage's
// lines and is counted.
func TestPipelineContainsFailure(t *testing.T) {
	s := newStage(t, Options{Name: "hostile", Module: wat(t, "hostile"), Timeout: 200 * time.Millisecond, MemoryLimitMiB: 16})
	builtin := engine.StageFunc(func(ctx context.Context, snap *engine.Snapshot, emit engine.Emitter) error {
		emit.Emit(engine.Metric{Scope: engine.ScopeBackend, Object: "app.example", Name: "scur", Value: 7})
		return nil
	})
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "lb.haproxy"}},
		engine.StageSpec{Name: "backends", Stage: builtin, TimeMetric: "WallClockTimeBackends"},
		engine.StageSpec{Name: "hostile", Stage: s},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		mode   int
		errors string
		calls  bool
	}{
		{0, "0", true}, {1, "1", false}, {3, "1", false}, {5, "1", false},
		{6, "1", false}, {7, "1", false}, {4, "1", false}, {0, "0", true},
	} {
		name := strconv.Itoa(tt.mode)
		var out bytes.Buffer
		res, err := p.ProcessFiles(context.Background(), name, nil, &out)
		if err != nil {
			t.Fatalf("mode %d: ProcessFiles = %v", tt.mode, err)
		}
		lines := out.String()
		for _, want := range []string{
			"lb.haproxy.backend.app_example.scur 7 " + name + "\n",
			"lb.haproxy.haproxystats.StagehostileErrors " + tt.errors + " " + name + "\n",
			"lb.haproxy.haproxystats.StagehostileWallClockTime ",
			"lb.haproxy.haproxystats.WallClockTimeBackends ",
		} {
			if !strings.Contains(lines, want) {
				t.Errorf("mode %d: output lacks %q:\n%s", tt.mode, want, lines)
			}
		}
		if got := strings.Contains(lines, "lb.haproxy.daemon.calls "); got != tt.calls {
			t.Errorf("mode %d: daemon.calls present = %v, want %v:\n%s", tt.mode, got, tt.calls, lines)
		}
		if strings.Contains(lines, "evil") {
			t.Errorf("mode %d: injected line in output:\n%s", tt.mode, lines)
		}
		if tt.errors == "1" && len(res.Problems) == 0 {
			t.Errorf("mode %d: no problem reported", tt.mode)
		}
	}
}
