package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// BenchmarkE2EOneDaemon runs the real `haproxystats-engine run --pull`
// against 8 HAProxy instances of 1000 backends of 10 servers each (the
// large snapshot's shape: 8 x 2.8 MB of `show stat` per round), pulling
// every second and delivering to a loopback sink that counts lines, for
// rounds rounds (`make bench-e2e`). It reports the process's peak resident
// set (VmHWM), its CPU per round (user and system, start-up included, over
// the rounds delivered) and the lines per round.
func BenchmarkE2EOneDaemon(b *testing.B) {
	if testing.Short() {
		b.Skip("8 large HAProxy instances: not in -short")
	}
	bin := filepath.Join(b.TempDir(), "haproxystats-engine")
	// Static, as make dist and the Debian package build it.
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	socketDir := testenv.ShortDir(b)
	closed := testenv.FreePort(b) // nothing listens there; no health checks
	for i := range 8 {
		testenv.StartHAProxy(b, testenv.HAProxyConfig{
			StatsSockets: []string{filepath.Join(socketDir, fmt.Sprintf("admin%d.sock", i+1))},
			Body:         testenv.Proxies(testenv.FreePort(b), 1000, 10, closed),
		})
	}
	var lines atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1<<20)
				for {
					n, err := c.Read(buf)
					lines.Add(int64(bytes.Count(buf[:n], []byte{'\n'})))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	const rounds = 5
	for range b.N {
		lines.Store(0)
		base := b.TempDir()
		conf := filepath.Join(base, "haproxystats.conf")
		text := fmt.Sprintf("[paths]\nbase-dir = %s\n[pull]\nsocket-dir = %s\npull-interval = 1\npull-timeout = 5\n"+
			"[process]\nstage-cache-dir = %s\n[graphite]\nserver = 127.0.0.1\nport = %d\nprefix-hostname = false\n",
			base, socketDir, filepath.Join(base, "cache"), ln.Addr().(*net.TCPAddr).Port)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin, "run", "--pull", "-f", conf)
		var logs testenv.Buffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		// The sink counts lines: a round is about 337,000 (the
		// snapshot's self-metrics vary little).
		deadline := time.Now().Add(2 * time.Minute)
		for lines.Load() < rounds*330_000 {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				b.Fatalf("%d lines after 2 minutes, want %d rounds:\n%s", lines.Load(), rounds, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		hwm := testenv.PeakRSS(b, cmd.Process.Pid)
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("run --pull: %v\n%s", err, logs.String())
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		b.ReportMetric(float64(hwm)/(1<<20), "peak-rss-MiB")
		b.ReportMetric(float64(cpu.Microseconds())/1e3/rounds, "cpu-ms/round")
		b.ReportMetric(float64(lines.Load())/rounds, "lines/round")
	}
}
