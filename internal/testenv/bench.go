package testenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/engine"
)

// StageOverhead measures what one extra stage costs the whole pipeline
// (parse, built-in stages with their defaults, Graphite lines) on files:
// it runs a pipeline without and one with the stage alternately in one
// loop, so that noise from other processes hits both alike, and reports
// builtin-ms/op, with-stage-ms/op and overhead-% (of the sums), and
// overhead-median-%: the median over the loop's pairs of the pair's
// overhead, which one slow run (a collection, another process) moves
// less. Every run gets a newer snapshot name, as stateful stages expect.
// each, when not nil, runs in the loop too (timed by the caller).
func StageOverhead(b *testing.B, files []engine.File, stage engine.StageSpec, each func()) {
	b.Helper()
	newPipeline := func(extra ...engine.StageSpec) *engine.Pipeline {
		p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "loadbalancers.haproxy"}},
			append(builtin.Stages(builtin.Options{}), extra...)...)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	ts := 1795507862
	run := func(p *engine.Pipeline) time.Duration {
		ts++
		start := time.Now()
		res, err := p.ProcessFiles(context.Background(), strconv.Itoa(ts), files, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Problems) > 0 {
			b.Fatal(res.Problems)
		}
		return time.Since(start)
	}
	base, with := newPipeline(), newPipeline(stage)
	for range 3 { // steady state: buffers grown, stateful stages primed
		run(base)
		run(with)
	}
	var tBase, tWith time.Duration
	pairs := make([]float64, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if each != nil {
			each()
		}
		db, dw := run(base), run(with)
		tBase += db
		tWith += dw
		pairs = append(pairs, 100*(dw-db).Seconds()/db.Seconds())
	}
	n := float64(b.N)
	b.ReportMetric(tBase.Seconds()*1e3/n, "builtin-ms/op")
	b.ReportMetric(tWith.Seconds()*1e3/n, "with-stage-ms/op")
	b.ReportMetric(100*(tWith-tBase).Seconds()/tBase.Seconds(), "overhead-%")
	b.ReportMetric(median(pairs), "overhead-median-%")
}

// median returns the median of xs (sorting them), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if m := len(xs) / 2; len(xs)%2 == 0 {
		return (xs[m-1] + xs[m]) / 2
	}
	return xs[len(xs)/2]
}

// PeakRSS returns the peak resident set size of process pid (VmHWM), in
// bytes, failing t if it cannot be read: the figure the end-to-end
// benchmarks report.
func PeakRSS(t testing.TB, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/status: VmHWM: %v", pid, err)
			}
			return n << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// ProcessCPU returns the CPU time (user and system, every thread) process
// pid has used so far, from the kernel's CPU clock of that process
// (clock_gettime of its process clock), to the nanosecond, failing t if
// it cannot be read (Linux only).
func ProcessCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED): every thread's time.
	clock := int32(^pid<<3 | 2)
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		t.Fatalf("the CPU clock of process %d: %v", pid, err)
	}
	return time.Duration(ts.Nano())
}
