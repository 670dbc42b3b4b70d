package engine_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/engine"
)

// largeSnapshot returns the files of the large benchmark snapshot, from
// $HAPROXYSTATS_LARGE (a directory made by shared/perf/gen_large.py) or
// generated in Go from the medium conformance capture.
func largeSnapshot(b *testing.B) []engine.File {
	b.Helper()
	dir := os.Getenv("HAPROXYSTATS_LARGE")
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "1795507862")
		if err := generateLarge(filepath.Join("..", "testdata", "conformance", "medium-defaults", "incoming", "1795507862"), dir); err != nil {
			b.Fatal(err)
		}
	}
	files, err := engine.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	return files
}

func size(files []engine.File) int64 {
	var n int64
	for _, f := range files {
		n += int64(len(f.Data))
	}
	return n
}

// lineCounter is the output of the benchmarks: it counts lines, as a
// Graphite sink that only counts would.
type lineCounter struct{ lines, bytes int }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines += bytes.Count(p, []byte{'\n'})
	c.bytes += len(p)
	return len(p), nil
}

func newLargePipeline(b *testing.B) *engine.Pipeline {
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "loadbalancers.haproxy"}}, builtin.Stages(builtin.Options{})...)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPipelineLarge processes the large snapshot from memory into a
// writer that counts lines: reading, folding and formatting, in a warm
// pipeline (the state of the previous snapshot reused).
func BenchmarkPipelineLarge(b *testing.B) {
	files := largeSnapshot(b)
	p := newLargePipeline(b)
	for range 3 {
		if _, err := p.ProcessFiles(context.Background(), "1795507862", files, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(size(files))
	b.ReportAllocs()
	runtime.GC() // the generator's garbage is not the pipeline's
	peak := watchHeap()
	cpu := processCPU()
	b.ResetTimer()
	var out lineCounter
	for range b.N {
		out = lineCounter{}
		if _, err := p.ProcessFiles(context.Background(), "1795507862", files, &out); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu)/1e6/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(out.lines), "lines/op")
	b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
}

// processCPU returns the CPU time (user and system) of the process so far:
// the benchmarks report it per snapshot, a figure that a busy machine
// inflates less than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPipelineLargeDir is BenchmarkPipelineLarge reading the files
// from a directory, as the daemon does.
func BenchmarkPipelineLargeDir(b *testing.B) {
	files := largeSnapshot(b)
	dir := filepath.Join(b.TempDir(), "1795507862")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	files = nil
	p := newLargePipeline(b)
	if _, err := p.ProcessDir(context.Background(), dir, io.Discard); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	runtime.GC()
	peak := watchHeap()
	cpu := processCPU()
	b.ResetTimer()
	for range b.N {
		if _, err := p.ProcessDir(context.Background(), dir, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu)/1e6/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
}

// BenchmarkPipelineLargeCold is a first snapshot: a new pipeline every
// time, so nothing is reused (what one snapshot after a start costs).
func BenchmarkPipelineLargeCold(b *testing.B) {
	files := largeSnapshot(b)
	b.SetBytes(size(files))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p := newLargePipeline(b)
		if _, err := p.ProcessFiles(context.Background(), "1795507862", files, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// watchHeap samples the heap (live objects and garbage not yet collected,
// the input files included) every millisecond until the returned function
// is called, which reports the largest size seen.
func watchHeap() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var (
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}
