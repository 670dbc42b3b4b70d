package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
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

func BenchmarkParseLarge(b *testing.B) {
	files := largeSnapshot(b)
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "loadbalancers.haproxy"}}, builtin.Stages(builtin.Options{})...)
	if err != nil {
		b.Fatal(err)
	}
	parser := engine.NewParser(p.Columns())
	parser.Release(parser.Parse("1795507862", files)) // steady state: memory recycled
	b.SetBytes(size(files))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		parser.Release(parser.Parse("1795507862", files))
	}
}

func BenchmarkPipelineLarge(b *testing.B) {
	files := largeSnapshot(b)
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "loadbalancers.haproxy"}}, builtin.Stages(builtin.Options{})...)
	if err != nil {
		b.Fatal(err)
	}
	// Steady state: a daemon's pipeline has processed snapshots before,
	// and its buffers have grown to their size (in a few snapshots).
	for range 3 {
		out, err := p.ProcessFiles(context.Background(), "1795507862", files)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
	b.SetBytes(size(files))
	b.ReportAllocs()
	runtime.GC() // the generator's garbage is not the pipeline's
	peak := watchHeap()
	b.ResetTimer()
	var lines int
	for range b.N {
		out, err := p.ProcessFiles(context.Background(), "1795507862", files)
		if err != nil {
			b.Fatal(err)
		}
		lines = out.Count
		out.Release()
	}
	b.StopTimer()
	b.ReportMetric(float64(lines), "lines/op")
	b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
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

// BenchmarkStagesLarge runs the built-in stages and the formatting over an
// already parsed large snapshot: the pipeline without the parser.
func BenchmarkStagesLarge(b *testing.B) {
	files := largeSnapshot(b)
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "loadbalancers.haproxy"}}, builtin.Stages(builtin.Options{})...)
	if err != nil {
		b.Fatal(err)
	}
	snap := engine.NewParser(p.Columns()).Parse("1795507862", files)
	for range 3 { // steady state, as in BenchmarkPipelineLarge
		out, err := p.Run(context.Background(), snap)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		out, err := p.Run(context.Background(), snap)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
}
