package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/assemble"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// BenchmarkE2E measures the real binary, end to end, on the large snapshot
// (8 processes x 1000 backends x 10 servers + 100 frontends, 22 MB in,
// 337,435 lines / 25 MB out), delivering to a loopback sink that only
// counts newlines (`make bench-e2e`):
//
//   - floor: the sink's own floor, the precomputed output of one snapshot
//     sent to it by a trivial writer (wall-ms);
//   - one/workers=N: one snapshot waiting at start; wall-ms from the
//     process start until the sink has every line, peak-rss-MiB of the
//     process (the kernel's maximum resident set), cpu-ms/snapshot (the
//     process's CPU, user and system, minus what a start and stop with an
//     empty spool costs);
//   - backlog6/workers=N: six snapshots waiting at start (after a Graphite
//     outage, say): the same figures, CPU per snapshot over the six.
//   - running6/workers=N: a running daemon (one snapshot delivered
//     since its start) given six snapshots at once, renamed into its
//     spool as the puller does: wall-ms from then until the sink has
//     them all, cpu-ms/snapshot over the six (the process's CPU clock,
//     from its idle state after the first snapshot), peak-rss-MiB of the
//     whole run.
//
// Every iteration starts a new process. Run it without -race; the CPU is
// that of a 2-core machine of this project's image when the figures in
// README were taken.
func BenchmarkE2E(b *testing.B) {
	if raceEnabled {
		b.Skip("the end-to-end figures are measured without -race: make bench-e2e")
	}
	large := filepath.Join(b.TempDir(), "large")
	if err := testenv.GenerateLarge(caseSnapshot(b, "medium-defaults"), large); err != nil {
		b.Fatal(err)
	}
	sink := startSink(b)
	conf := filepath.Join(b.TempDir(), "haproxystats.conf")
	output := expectedOutput(b, large)
	lines := int64(bytes.Count(output, []byte{'\n'}))

	b.Run("floor", func(b *testing.B) {
		var wall time.Duration
		for range b.N {
			start := time.Now()
			sink.expect(lines)
			c, err := net.Dial("tcp", sink.addr())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Write(output); err != nil {
				b.Fatal(err)
			}
			c.Close()
			wall += sink.wait(b, start)
		}
		b.ReportMetric(float64(wall.Microseconds())/1e3/float64(b.N), "wall-ms")
	})

	for _, workers := range []int{1, 4} {
		text := fmt.Sprintf("[process]\nworkers = %d\n[graphite]\nserver = 127.0.0.1\nport = %d\nprefix-hostname = false\n", workers, sink.port())
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
		// What a start and a stop cost, with nothing to do.
		idle := runE2E(b, conf, large, 0, sink, 0)
		for _, n := range []int{1, 6} {
			name := fmt.Sprintf("one/workers=%d", workers)
			if n > 1 {
				name = fmt.Sprintf("backlog%d/workers=%d", n, workers)
			}
			b.Run(name, func(b *testing.B) {
				var wall, cpu time.Duration
				var rss int64
				for range b.N {
					r := runE2E(b, conf, large, n, sink, lines)
					wall += r.wall
					cpu += r.cpu - idle.cpu
					rss = max(rss, r.maxRSS)
				}
				report(b, wall, cpu, rss, n)
			})
		}
		b.Run(fmt.Sprintf("running6/workers=%d", workers), func(b *testing.B) {
			const n = 6
			var wall, cpu time.Duration
			var rss int64
			for range b.N {
				r := runRunning(b, conf, large, n, sink, lines)
				wall += r.wall
				cpu += r.cpu
				rss = max(rss, r.maxRSS)
			}
			report(b, wall, cpu, rss, n)
		})
	}
}

// report reports the figures summed over b.N runs of n snapshots each:
// wall time per run, CPU time per snapshot, and the largest peak RSS.
func report(b *testing.B, wall, cpu time.Duration, rss int64, n int) {
	b.ReportMetric(float64(wall.Microseconds())/1e3/float64(b.N), "wall-ms")
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N*n), "cpu-ms/snapshot")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
}

// newSpool returns a new directory name holding n copies of snapshot,
// named as the snapshots of consecutive seconds from the first'th.
func newSpool(b *testing.B, name, snapshot string, first, n int) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := first; i < first+n; i++ {
		if err := os.CopyFS(filepath.Join(dir, strconv.Itoa(1795507862+i)), os.DirFS(snapshot)); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// runRunning starts the binary with one copy of snapshot in a new spool,
// waits until it is delivered, then renames n more copies into the spool
// at once and returns the figures of those n: the wall time until the
// sink has their lines, and the process's CPU time meanwhile; maxRSS is
// the peak of the whole run.
func runRunning(b *testing.B, conf, snapshot string, n int, sink *sink, lines int64) e2eResult {
	b.Helper()
	spool := newSpool(b, "incoming", snapshot, 0, 1)
	staging := newSpool(b, "staging", snapshot, 1, n) // the same file system
	sink.expect(lines)
	d := startBenchDaemon(b, conf, spool)
	pid := d.cmd.Process.Pid
	sink.wait(b, time.Now())
	waitEmpty(b, spool, d.log)
	before := settleCPU(b, pid)
	sink.expect(int64(n) * lines)
	start := time.Now()
	for i := 1; i <= n; i++ {
		name := strconv.Itoa(1795507862 + i)
		if err := os.Rename(filepath.Join(staging, name), filepath.Join(spool, name)); err != nil {
			b.Fatal(err)
		}
	}
	wall := sink.wait(b, start)
	waitEmpty(b, spool, d.log)
	cpu := testenv.ProcessCPU(b, pid) - before
	hwm := testenv.PeakRSS(b, pid)
	d.term(b, time.Minute)
	return e2eResult{wall: wall, cpu: cpu, maxRSS: hwm}
}

// settleCPU waits (a second at most) until the CPU time of process pid
// stops moving, the tail of its last snapshot done, and returns it.
func settleCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	last := testenv.ProcessCPU(b, pid)
	for range 20 {
		time.Sleep(50 * time.Millisecond)
		now := testenv.ProcessCPU(b, pid)
		if now-last < time.Millisecond {
			return now
		}
		last = now
	}
	return last
}

// startBenchDaemon starts the binary with configuration conf and spool as
// its src-dir (a second configuration file); the benchmark's cleanup kills
// it if it was not stopped.
func startBenchDaemon(b *testing.B, conf, spool string) *daemon {
	b.Helper()
	extra := filepath.Join(b.TempDir(), "conf.d")
	if err := os.Mkdir(extra, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(extra, "spool.conf"), []byte("[process]\nsrc-dir = "+spool+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return startDaemon(b, "", "-f", conf, "-d", extra)
}

// waitEmpty waits (a minute at most) until the spool is empty: its
// snapshots' lines were acknowledged.
func waitEmpty(b *testing.B, spool string, logs *testenv.Buffer) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		entries, _ := os.ReadDir(spool)
		if len(entries) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the spool still holds %d snapshots a minute after delivery:\n%s", len(entries), logs.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// expectedOutput is the output of the large snapshot, computed in the
// test's own process, for the floor and the line count.
func expectedOutput(b *testing.B, snapshot string) []byte {
	cfg, err := config.LoadSources(nil, config.Source{Name: "bench", Data: []byte("[graphite]\nprefix-hostname = false\n")})
	if err != nil {
		b.Fatal(err)
	}
	built, err := assemble.New(cfg, assemble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer built.Close()
	dir := filepath.Join(b.TempDir(), "1795507862")
	if err := os.CopyFS(dir, os.DirFS(snapshot)); err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := built.Pipeline.ProcessDir(context.Background(), dir, &out); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}

type e2eResult struct {
	wall, cpu time.Duration
	maxRSS    int64 // bytes
}

// runE2E starts the binary with n copies of snapshot in a new spool, waits
// until the sink has n*lines lines, stops it and returns its figures.
func runE2E(b *testing.B, conf, snapshot string, n int, sink *sink, lines int64) e2eResult {
	b.Helper()
	spool := newSpool(b, "incoming", snapshot, 0, n)
	sink.expect(int64(n) * lines)
	start := time.Now()
	d := startBenchDaemon(b, conf, spool)
	var wall time.Duration
	if n > 0 {
		wall = sink.wait(b, start)
		// Delivered: the spool empties once the lines are acknowledged.
		waitEmpty(b, spool, d.log)
	} else {
		deadline := time.Now().Add(time.Minute)
		for !bytes.Contains([]byte(d.log.String()), []byte("haproxystats-process started")) {
			if time.Now().After(deadline) {
				b.Fatalf("no start within a minute:\n%s", d.log.String())
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The peak resident set of the process's own memory (VmHWM: the
	// rusage maximum would include the test's memory, which the child
	// shared until its exec).
	hwm := testenv.PeakRSS(b, d.cmd.Process.Pid)
	d.term(b, time.Minute)
	ru := d.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return e2eResult{
		wall:   wall,
		cpu:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		maxRSS: hwm,
	}
}

// sink is a loopback Graphite that counts the newlines it receives, in
// bulk, and tells when a count is reached.
type sink struct {
	ln    net.Listener
	lines atomic.Int64
	mu    sync.Mutex
	want  int64
	done  chan time.Time
}

func startSink(b *testing.B) *sink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &sink{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.read(c)
		}
	}()
	b.Cleanup(func() { ln.Close() })
	return s
}

func (s *sink) addr() string { return s.ln.Addr().String() }
func (s *sink) port() int    { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *sink) read(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 1<<20)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			got := s.lines.Add(int64(bytes.Count(buf[:n], []byte{'\n'})))
			s.mu.Lock()
			if s.done != nil && got >= s.want {
				s.done <- time.Now()
				s.done = nil
			}
			s.mu.Unlock()
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// expect resets the count and waits for n lines.
func (s *sink) expect(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines.Store(0)
	s.want = n
	s.done = make(chan time.Time, 1)
	if n == 0 {
		s.done = nil
	}
}

// wait returns how long after start the expected lines had all arrived.
func (s *sink) wait(b *testing.B, start time.Time) time.Duration {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return 0
	}
	select {
	case at := <-done:
		return at.Sub(start)
	case <-time.After(2 * time.Minute):
		b.Fatalf("the sink has %d of %d lines after 2 minutes", s.lines.Load(), s.want)
		return 0
	}
}
