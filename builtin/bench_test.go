package builtin_test

import (
	"context"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/counters"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// cpuTime returns the CPU time (user and system) of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMonotonicCounters processes the large snapshot (8 processes,
// 1000 backends of 10 servers, aggregated servers on) with the built-in
// stages, without and with monotonic counters (state in memory, a new
// snapshot time every round so that every part advances): the time per
// snapshot, and retained-MiB, the heap kept between snapshots (the folds,
// their samples and the counters' state) after a garbage collection, and
// cpu-ms/op, the process's CPU time per snapshot (less noisy than the wall
// time on a shared machine).
func BenchmarkMonotonicCounters(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "1795507862")
	if err := testenv.GenerateLarge(filepath.Join("..", "testdata", "conformance", "medium-defaults", "incoming", "1795507862"), dir); err != nil {
		b.Fatal(err)
	}
	files, err := engine.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for _, f := range files {
		size += int64(len(f.Data))
	}
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			opts := builtin.Options{AggrServerMetrics: true}
			if on {
				store, err := counters.Open(counters.Options{})
				if err != nil {
					b.Fatal(err)
				}
				opts.Counters = store
			}
			p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "lb.haproxy"}}, builtin.Stages(opts)...)
			if err != nil {
				b.Fatal(err)
			}
			t := int64(1795507862)
			process := func() {
				t += 10
				if _, err := p.ProcessFiles(context.Background(), strconv.FormatInt(t, 10), files, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			for range 3 {
				process()
			}
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				process()
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
			runtime.GC()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "retained-MiB")
			runtime.KeepAlive(p)
		})
	}
}
