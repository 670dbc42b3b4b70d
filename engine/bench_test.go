package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
	out, err := p.ProcessFiles(context.Background(), "1795507862", files)
	if err != nil {
		b.Fatal(err)
	}
	out.Release() // steady state: a daemon's pipeline has processed snapshots before
	b.SetBytes(size(files))
	b.ReportAllocs()
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
	b.ReportMetric(float64(lines), "lines/op")
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
	out, err := p.Run(context.Background(), snap)
	if err != nil {
		b.Fatal(err)
	}
	out.Release()
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
