package wasmstage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// The benchmarks run on the large snapshot of shared/perf (8 processes x
// 1000 backends x 10 servers, 88,808 rows): $HAPROXYSTATS_LARGE names a
// directory made by gen_large.py, otherwise it is generated with
// python3 and gen_large.py from shared/perf.
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/wasmstage/

var (
	largeOnce  sync.Once
	largeFiles []engine.File
	largeSkip  string
)

func largeSnapshot(b *testing.B) []engine.File {
	b.Helper()
	largeOnce.Do(func() {
		dir := os.Getenv("HAPROXYSTATS_LARGE")
		if dir == "" {
			script := ""
			for _, p := range []string{"../../../shared/perf/gen_large.py", "/work/shared/perf/gen_large.py"} {
				if _, err := os.Stat(p); err == nil {
					script = p
					break
				}
			}
			py, err := exec.LookPath("python3")
			if script == "" || err != nil {
				largeSkip = "SKIPPED: set HAPROXYSTATS_LARGE or provide python3 and shared/perf/gen_large.py"
				return
			}
			dir = filepath.Join(buildDir, "large", "1795507862")
			cmd := exec.Command(py, script, filepath.Join(conformance, "medium-defaults", "incoming", "1795507862"), dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				largeSkip = fmt.Sprintf("gen_large.py: %v\n%s", err, out)
				return
			}
		}
		files, err := engine.ReadDir(dir)
		if err != nil {
			largeSkip = err.Error()
			return
		}
		largeFiles = files
	})
	if largeSkip != "" {
		b.Skip(largeSkip)
	}
	return largeFiles
}

type discard struct{ n int }

func (d *discard) Emit(engine.Metric) { d.n++ }

var goExamples = []string{"errratio", "reqrate", "headroom", "rowcount"}

// BenchmarkProcess times one call of each example stage on the large
// snapshot (already parsed with every column): input encoding, the
// module's work, output decoding. "limits" is the default configuration
// (a timeout, so the module runs in a child process, 64 MiB; 10 s rather
// than the default 1 s so that a loaded machine does not fail the
// benchmark), "trusted" is timeout = 0 (in this process).
func BenchmarkProcess(b *testing.B) {
	files := largeSnapshot(b)
	snap := engine.NewParser(nil).Parse("1795507862", files)
	for _, name := range goExamples {
		for _, mode := range []struct {
			name    string
			timeout time.Duration
		}{{"limits", 10 * time.Second}, {"trusted", 0}} {
			b.Run(name+"/"+mode.name, func(b *testing.B) {
				s := newStage(b, Options{Name: name, Module: example(b, name), Timeout: mode.timeout})
				var d discard
				ts := 1795507862
				call := func() {
					ts++
					snap.Name = strconv.Itoa(ts) // reqrate wants newer snapshots
					if err := s.Process(context.Background(), snap, &d); err != nil {
						b.Fatal(err)
					}
				}
				call() // steady state: buffers grown, reqrate has a previous snapshot
				d.n = 0
				size, _ := s.enc.plan(snap, s.columns)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					call()
				}
				b.ReportMetric(float64(d.n)/float64(b.N), "metrics/op")
			})
		}
	}
}

// BenchmarkEncode times the host side alone: laying the large snapshot out
// in a Go buffer with the columns of the headroom example (2) and of the
// error ratio example (6).
func BenchmarkEncode(b *testing.B) {
	files := largeSnapshot(b)
	snap := engine.NewParser(nil).Parse("1795507862", files)
	for _, cols := range [][]string{
		{"scur", "slim"},
		{"hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"},
	} {
		b.Run(fmt.Sprintf("%dcolumns", len(cols)), func(b *testing.B) {
			var e encoder
			size, err := e.plan(snap, cols)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				size, _ = e.plan(snap, cols)
				e.write(buf[:size], snap)
			}
		})
	}
}

// BenchmarkPipeline times the whole pipeline on the large snapshot, as the
// daemon runs it (parse with the columns the stages need, built-in stages,
// Graphite lines), with the built-in stages alone and with one example
// stage added, alternating the two in the same loop so that noise from
// other processes hits both alike. It reports both times and the stage's
// overhead in percent. "limits" has a 10 s timeout (the module runs in a
// child process; 10 s keeps a loaded machine from failing the benchmark),
// "trusted" is timeout = 0 (in this process).
func BenchmarkPipeline(b *testing.B) {
	files := largeSnapshot(b)
	for _, name := range goExamples {
		for _, mode := range []struct {
			name    string
			timeout time.Duration
		}{{"limits", 10 * time.Second}, {"trusted", 0}} {
			b.Run(name+"/"+mode.name, func(b *testing.B) {
				s := newStage(b, Options{Name: name, Module: example(b, name), Timeout: mode.timeout})
				testenv.StageOverhead(b, files, engine.StageSpec{Name: name, Stage: s}, nil)
			})
		}
	}
}

// BenchmarkNew times start-up (read, check, compile, check the ABI,
// instantiate, _initialize, hs_init) of the Go error-ratio example, with
// its limits (in a child process) and trusted (timeout = 0, in this
// process): without a compilation cache, with a warm cache directory (a
// restart of the daemon); then the re-creation of an instance after a
// failed call, and the replacement of a killed child process (a new
// process loading the compiled module from the cache, instantiation).
func BenchmarkNew(b *testing.B) {
	module := example(b, "errratio")
	for _, mode := range []struct {
		name    string
		timeout time.Duration
	}{{"limits", time.Second}, {"trusted", 0}} {
		b.Run(mode.name+"/nocache", func(b *testing.B) {
			for range b.N {
				s, err := New(context.Background(), Options{Name: "x", Module: module, Timeout: mode.timeout}, nil)
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
		b.Run(mode.name+"/cache", func(b *testing.B) {
			dir := b.TempDir()
			s, err := New(context.Background(), Options{Name: "x", Module: module, Timeout: mode.timeout, CacheDir: dir}, nil)
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
			b.ResetTimer()
			for range b.N {
				s, err := New(context.Background(), Options{Name: "x", Module: module, Timeout: mode.timeout, CacheDir: dir}, nil)
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
		b.Run(mode.name+"/reinstantiate", func(b *testing.B) {
			s := newStage(b, Options{Name: "x", Module: module, Timeout: mode.timeout})
			b.ResetTimer()
			for range b.N {
				if _, err := s.run.instantiate(context.Background(), false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("limits/replace-child", func(b *testing.B) {
		s := newStage(b, Options{Name: "x", Module: module, Timeout: time.Second})
		iso := s.run.(*isolated)
		b.ResetTimer()
		for range b.N {
			iso.stopChild()
			if _, err := iso.start(context.Background()); err != nil {
				b.Fatal(err)
			}
			if _, err := iso.instantiate(context.Background(), false); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkChildMemory runs each example stage (with its limits, so in a
// child process) on the large snapshot and reports what its child process
// holds afterwards, from /proc/<pid>/status: peak RSS (VmHWM), private
// memory (RssAnon: Go runtime, wazero, compiled code) and the module's
// memory (RssShmem: the shared memfd), in MiB. These are the figures of
// docs/ABI.md's memory bound.
//
//	go test -run '^$' -bench ChildMemory -benchtime 5x ./internal/wasmstage/
func BenchmarkChildMemory(b *testing.B) {
	files := largeSnapshot(b)
	snap := engine.NewParser(nil).Parse("1795507862", files)
	for _, name := range goExamples {
		b.Run(name, func(b *testing.B) {
			s := newStage(b, Options{Name: name, Module: example(b, name), Timeout: 10 * time.Second})
			ts := 1795507862
			for range b.N {
				ts++
				snap.Name = strconv.Itoa(ts)
				if err := s.Process(context.Background(), snap, &discard{}); err != nil {
					b.Fatal(err)
				}
			}
			pid := s.run.(*isolated).proc.cmd.Process.Pid
			for _, f := range []struct{ field, unit string }{{"VmHWM", "peak-MiB"}, {"RssAnon", "private-MiB"}, {"RssShmem", "module-MiB"}} {
				b.ReportMetric(float64(procStatus(pid, f.field))/(1<<20), f.unit)
			}
		})
	}
}
