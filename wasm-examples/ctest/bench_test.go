package ctest

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/builtin"
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
// concurrently with the built-in stages. "limits" has a 10 s timeout
// (wazero's checks in every loop cost the same whatever the timeout),
// "trusted" is timeout = 0.
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
	ts := 1795507862
	run := func(b *testing.B, p *engine.Pipeline) time.Duration {
		ts++
		start := time.Now()
		out, err := p.ProcessFiles(context.Background(), strconv.Itoa(ts), files)
		if err != nil {
			b.Fatal(err)
		}
		if len(out.Problems) > 0 {
			b.Fatal(out.Problems)
		}
		out.Release()
		return time.Since(start)
	}
	newPipeline := func(b *testing.B, extra ...engine.StageSpec) *engine.Pipeline {
		specs := append(builtin.Stages(builtin.Options{}), extra...)
		p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "loadbalancers.haproxy"}}, specs...)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	base := newPipeline(b)
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
				with := newPipeline(b, engine.StageSpec{Name: name, Stage: s})
				var d discard
				call := func() time.Duration {
					start := time.Now()
					if err := s.Process(context.Background(), snap, &d); err != nil {
						b.Fatal(err)
					}
					return time.Since(start)
				}
				run(b, base)
				run(b, with) // steady state: buffers grown
				call()
				d.n = 0
				var tBase, tWith, tCall time.Duration
				b.ResetTimer()
				for range b.N {
					tCall += call()
					tBase += run(b, base)
					tWith += run(b, with)
				}
				n := float64(b.N)
				b.ReportMetric(tCall.Seconds()*1e3/n, "stage-ms/op")
				b.ReportMetric(float64(d.n)/n, "metrics/op")
				b.ReportMetric(tBase.Seconds()*1e3/n, "builtin-ms/op")
				b.ReportMetric(tWith.Seconds()*1e3/n, "with-stage-ms/op")
				b.ReportMetric(100*(tWith-tBase).Seconds()/tBase.Seconds(), "overhead-%")
			})
		}
	}
}

type discard struct{ n int }

func (d *discard) Emit(engine.Metric) { d.n++ }
