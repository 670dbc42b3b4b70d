package ctest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

// BenchmarkPipeline times the C and Rust examples on the large snapshot
// (8 processes x 1000 backends x 10 servers, 88,808 rows), as
// internal/wasmstage's BenchmarkProcess and BenchmarkPipeline do for the
// Go ones, in one loop so that noise from other processes hits all three
// alike: one call of the stage alone on the parsed snapshot (input
// encoding, the module's work, output decoding), and the whole pipeline
// (parse, built-in stages, lines) without and with the stage, which runs
// concurrently with the built-in stages. "limits" has a 10 s timeout (the
// module runs in a child process), "trusted" is timeout = 0 (in this
// process).
//
//	go test -run '^$' -bench . -benchtime 20x ./wasm-examples/ctest/
func BenchmarkPipeline(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "1795507862")
	if err := testenv.GenerateLarge(filepath.Join(conformance, "medium-defaults/incoming/1795507862"), dir); err != nil {
		b.Fatal(err)
	}
	files, err := engine.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	snap := engine.NewParser(nil).Parse("1795507862", files)
	for _, name := range []string{"cqueue", "rsavail"} {
		for _, mode := range []struct {
			name    string
			timeout time.Duration
		}{{"limits", 10 * time.Second}, {"trusted", 0}} {
			b.Run(name+"/"+mode.name, func(b *testing.B) {
				s, err := wasmstage.New(context.Background(), wasmstage.Options{
					Name: name, Module: built(b, name), Timeout: mode.timeout,
				}, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var d discard
				var tCall time.Duration
				call := func() {
					start := time.Now()
					if err := s.Process(context.Background(), snap, &d); err != nil {
						b.Fatal(err)
					}
					tCall += time.Since(start)
				}
				call()
				d.n, tCall = 0, 0
				testenv.StageOverhead(b, files, engine.StageSpec{Name: name, Stage: s}, call)
				b.ReportMetric(tCall.Seconds()*1e3/float64(b.N), "stage-ms/op")
				b.ReportMetric(float64(d.n)/float64(b.N), "metrics/op")
			})
		}
	}
}

type discard struct{ n int }

func (d *discard) Emit(engine.Metric) { d.n++ }
