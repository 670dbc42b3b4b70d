package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestThroughput measures sustained snapshots per second: the daemon starts
// with n copies of a snapshot waiting in the spool and delivers them to a
// Graphite stand-in that reads as fast as it can. "Sustained" is the rate
// between the moments 10% and 90% of them had left the spool (start-up and
// the last stragglers excluded); "overall" counts from the daemon's start to
// an empty spool.
// The daemon's CPU time (user + system, from its exit status) is reported
// too: it depends less on what else the machine runs. It runs only with
// HAPROXYSTATS_THROUGHPUT=1, without -race:
//
//	HAPROXYSTATS_THROUGHPUT=1 go test -count=1 -run TestThroughput -v ./cmd/haproxystats-process/
func TestThroughput(t *testing.T) {
	if os.Getenv("HAPROXYSTATS_THROUGHPUT") != "1" {
		t.Skip("set HAPROXYSTATS_THROUGHPUT=1 to measure sustained snapshots per second")
	}
	large := filepath.Join(t.TempDir(), "large")
	if err := testenv.GenerateLarge(caseSnapshot(t, "medium-defaults"), large); err != nil {
		t.Fatal(err)
	}
	loadavg, _ := os.ReadFile("/proc/loadavg")
	t.Logf("load average before: %s", strings.TrimSpace(string(loadavg)))
	for _, c := range []struct {
		name string
		src  string
		n    int
	}{
		{"medium", caseSnapshot(t, "medium-defaults"), 500},
		{"large", large, 30},
	} {
		for _, workers := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/workers=%d", c.name, workers), func(t *testing.T) {
				st := testenv.StartRecorder(t, testenv.RecorderOptions{Discard: true, ReadSize: 1 << 20})
				s := newScratch(t, "medium-defaults", st.Port(), fmt.Sprintf("workers = %d\n", workers), "")
				s.putCopies(t, c.src, epochs(1795000000, c.n))
				start := time.Now()
				p := s.start(t)
				lo, hi := c.n/10, c.n-c.n/10 // removed counts that bound "sustained"
				var tLo, tHi time.Time
				deadline := start.Add(10 * time.Minute)
				for {
					left := len(s.left(t))
					removed := c.n - left
					if removed >= lo && tLo.IsZero() {
						tLo = time.Now()
					}
					if removed >= hi && tHi.IsZero() {
						tHi = time.Now()
					}
					if left == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d of %d snapshots still in the spool after 10 minutes", left, c.n)
					}
					time.Sleep(5 * time.Millisecond)
				}
				last := time.Now()
				b, lines, conns := st.Counts()
				p.term(t, 30*time.Second)
				total := last.Sub(start)
				sustained := float64(hi-lo) / tHi.Sub(tLo).Seconds()
				cpu := p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
				t.Logf("%s workers=%d: %d snapshots (%d lines, %.1f MB, %d connection(s)) in %v from start: "+
					"%.1f snapshots/s sustained, %.1f snapshots/s overall, %.0f lines/s; daemon CPU %v (%v per snapshot)",
					c.name, workers, c.n, lines, float64(b)/1e6, conns, total.Round(time.Millisecond),
					sustained, float64(c.n)/total.Seconds(), float64(lines)/total.Seconds(),
					cpu.Round(time.Millisecond), (cpu / time.Duration(c.n)).Round(10*time.Microsecond))
			})
		}
	}
	loadavg, _ = os.ReadFile("/proc/loadavg")
	t.Logf("load average after: %s", strings.TrimSpace(string(loadavg)))
}
