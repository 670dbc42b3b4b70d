package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// fwdRig is Debian's HAProxy in master-worker mode (haproxy -W -S, nbthread
// 2) with frontend "fwd" and backend "be_fwd" in front of an HTTP server of
// the test, a Graphite recorder, and `haproxystats-engine run --pull` with
// [pull] masters, started and stopped as the test asks, on one base-dir
// (spool and counters state).
type fwdRig struct {
	t       *testing.T
	mw      *testenv.MasterWorker
	master  string // the master CLI socket
	fwd     string // frontend fwd's address
	rec     *testenv.Recorder
	base    string
	sent    atomic.Int64 // requests answered 200 through fwd
	running *oneDaemonRun
}

type oneDaemonRun struct {
	cancel context.CancelFunc
	done   chan int
	stderr *testenv.Buffer
}

func newFwdRig(t *testing.T) *fwdRig {
	testenv.HAProxyBinary(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r := &fwdRig{t: t, base: t.TempDir()}
	r.master = filepath.Join(testenv.ShortDir(t), "m.sock")
	r.fwd = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	r.mw = testenv.StartMasterWorker(t, testenv.MasterWorkerConfig{
		MasterSockets: []string{r.master},
		Body: fmt.Sprintf(`frontend fwd
    mode http
    bind %s
    default_backend be_fwd

backend be_fwd
    mode http
    server s1 %s
`, r.fwd, ln.Addr()),
	})
	r.rec = testenv.StartRecorder(t, testenv.RecorderOptions{})
	return r
}

// get sends n requests through frontend fwd, each on its own connection,
// counting those answered 200.
func (r *fwdRig) get(n int) {
	r.t.Helper()
	for range n {
		c, err := net.DialTimeout("tcp", r.fwd, 5*time.Second)
		if err != nil {
			r.t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
		status, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200 ") {
			r.t.Fatalf("GET through fwd: %q, %v", status, err)
		}
		r.sent.Add(1)
	}
}

// start runs the one daemon with monotonic-counters set as mono; extra
// holds more [pull] masters (space-separated URLs).
func (r *fwdRig) start(mono bool, extra string) {
	r.t.Helper()
	if r.running != nil {
		r.t.Fatal("start: already running")
	}
	conf := filepath.Join(r.base, "haproxystats.conf")
	masters := "unix://" + r.master
	if extra != "" {
		masters += " " + extra
	}
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[paths]
base-dir = %s
[pull]
masters = %s
pull-interval = 1
pull-timeout = 1
[process]
workers = 2
per-process-metrics = true
aggr-server-metrics = true
monotonic-counters = %v
[graphite]
server = 127.0.0.1
port = %d
prefix-hostname = false
interval = 0.1
delay = 0.2
connect-timeout = 0.5
`, r.base, masters, mono, r.rec.Port())), 0o644); err != nil {
		r.t.Fatal(err)
	}
	// The puller names a snapshot after its second: a daemon restarted
	// within the second of the last round would pull a second snapshot of
	// that name once the first left the spool.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
	ctx, cancel := context.WithCancel(context.Background())
	run := &oneDaemonRun{cancel: cancel, done: make(chan int, 1), stderr: &testenv.Buffer{}}
	go func() { run.done <- runDaemonCmd(ctx, conf, run.stderr) }()
	r.running = run
	r.t.Cleanup(func() { r.stop() })
}

func runDaemonCmd(ctx context.Context, conf string, stderr io.Writer) int {
	return run(ctx, []string{"run", "--pull", "-f", conf}, stderr, stderr)
}

// stop stops the one daemon and waits for it (at most 30 s).
func (r *fwdRig) stop() {
	if r.running == nil {
		return
	}
	run := r.running
	r.running = nil
	run.cancel()
	select {
	case code := <-run.done:
		if code != 0 {
			r.t.Errorf("run --pull exited %d\n%s", code, run.stderr.String())
		}
	case <-time.After(30 * time.Second):
		r.t.Errorf("run --pull did not stop within 30s\n%s", run.stderr.String())
	}
}

func (r *fwdRig) log() string {
	if r.running == nil {
		return ""
	}
	return r.running.stderr.String()
}

// series returns, per path, the values received in timestamp order (one
// per timestamp); a timestamp sent twice with different values fails the
// test (a snapshot processed again must give the same values).
func (r *fwdRig) series() map[string][]float64 {
	r.t.Helper()
	lines, _ := r.rec.Lines(0)
	byPath := map[string]map[int64]float64{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 {
			r.t.Fatalf("malformed line %q", l)
		}
		v, err1 := strconv.ParseFloat(f[1], 64)
		ts, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			r.t.Fatalf("malformed line %q", l)
		}
		m := byPath[f[0]]
		if m == nil {
			m = map[int64]float64{}
			byPath[f[0]] = m
		}
		if old, ok := m[ts]; ok && old != v && !strings.Contains(f[0], "WallClockTime") && !strings.Contains(f[0], ".haproxystats.") {
			r.t.Errorf("%s at %d sent as %v and as %v", f[0], ts, old, v)
		}
		m[ts] = v
	}
	out := map[string][]float64{}
	for path, m := range byPath {
		for _, ts := range slices.Sorted(mapKeys(m)) {
			out[path] = append(out[path], m[ts])
		}
	}
	return out
}

func mapKeys(m map[int64]float64) func(func(int64) bool) {
	return func(yield func(int64) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// last returns the last value received for path, or -1.
func (r *fwdRig) last(path string) float64 {
	s := r.series()[path]
	if len(s) == 0 {
		return -1
	}
	return s[len(s)-1]
}

// waitLast waits (at most 30 s) until the last value of path is want.
func (r *fwdRig) waitLast(what, path string, want float64) {
	r.t.Helper()
	if !waitFor(30*time.Second, func() bool { return r.last(path) == want }) {
		r.t.Fatalf("%s: %s = %v, want %v\n%s", what, path, r.last(path), want, r.log())
	}
}

// waitFresh waits until the recorder has lines of a snapshot pulled after
// now, and returns the timestamp of the newest.
func (r *fwdRig) waitFresh(what string) {
	r.t.Helper()
	now := time.Now().Unix()
	if !waitFor(30*time.Second, func() bool {
		lines, _ := r.rec.Lines(0)
		for _, l := range slices.Backward(lines) {
			f := strings.Fields(l)
			if ts, err := strconv.ParseInt(f[len(f)-1], 10, 64); err == nil && ts > now && strings.Contains(l, ".frontend.fwd.req_tot ") {
				return true
			}
		}
		return false
	}) {
		r.t.Fatalf("%s: no snapshot pulled after %d reached Graphite\n%s", what, now, r.log())
	}
}

// The counters the client side counts: every request went through frontend
// fwd, backend be_fwd and its server s1 on a connection of its own.
var fwdCounters = []string{
	"loadbalancers.haproxy.frontend.fwd.req_tot",
	"loadbalancers.haproxy.frontend.fwd.stot",
	"loadbalancers.haproxy.frontend.fwd.hrsp_2xx",
	"loadbalancers.haproxy.backend.be_fwd.stot",
	"loadbalancers.haproxy.backend.be_fwd.req_tot",
	"loadbalancers.haproxy.backend.be_fwd.hrsp_2xx",
	"loadbalancers.haproxy.backend.be_fwd.server.s1.stot",
	"loadbalancers.haproxy.backend.be_fwd.server.s1.hrsp_2xx",
	"loadbalancers.haproxy.server.s1.stot",
}

const leavingLine = "loadbalancers.haproxy.daemon.process.m_sock_leaving1.CpuUsagePct"

// reloadHeld reloads HAProxy while a held connection keeps the old worker,
// sends n requests to the new worker, checks that snapshots hold both
// workers while the old one lives (its per-process lines, named
// m_sock_leaving1), then releases the old worker and waits until it exited
// and a snapshot without it reached Graphite.
func (r *fwdRig) reloadHeld(n int, total func() float64) {
	r.t.Helper()
	hold := r.mw.Hold()
	old, _, err := r.mw.Workers()
	if err != nil {
		r.t.Fatal(err)
	}
	r.mw.Reload()
	r.get(n)
	r.waitFresh("after the reload")
	if !waitFor(30*time.Second, func() bool { return len(r.series()[leavingLine]) > 0 }) {
		r.t.Fatalf("no snapshot held the leaving worker (no %s line)\n%s", leavingLine, r.log())
	}
	// While both live, the sums are what the client sent.
	r.waitLast("both workers alive", fwdCounters[0], total())
	hold.Close()
	if !r.mw.WaitWorkerGone(old[0], 30*time.Second) {
		r.t.Fatalf("old worker %d did not exit", old[0])
	}
	r.waitFresh("after the old worker exited")
}

// TestMasterWorkerMonotonicCounters runs the one daemon against a real
// HAProxy in master-worker mode with monotonic-counters through two held
// reloads, a restart of the daemon between them, and a master that does
// not answer: the frontend, backend and server counters sent never go
// down and, once the old workers have exited, equal the requests the
// client sent; per-process paths never hold a PID.
func TestMasterWorkerMonotonicCounters(t *testing.T) {
	r := newFwdRig(t)
	total := func() float64 { return float64(r.sent.Load()) }
	r.start(true, "")
	r.get(5)
	r.waitLast("first worker", fwdCounters[0], total())

	r.reloadHeld(3, total)
	for _, p := range fwdCounters {
		r.waitLast("after the first reload, the old worker gone", p, total())
	}

	// A restart of the daemon between reloads: the state survives in
	// counters-dir, so the first worker's 5 requests stay counted.
	r.stop()
	r.start(true, "")
	r.get(4)
	for _, p := range fwdCounters {
		r.waitLast("after the daemon's restart", p, total())
	}

	r.reloadHeld(2, total)
	for _, p := range fwdCounters {
		r.waitLast("after the second reload, the old worker gone", p, total())
	}

	// A master that does not answer: every round fails, nothing is sent.
	r.stop()
	silent := filepath.Join(testenv.ShortDir(t), "silent.sock")
	testenv.ServeUnix(t, silent, func(c net.Conn) { io.Copy(io.Discard, c) })
	_, before, _ := r.rec.Counts()
	r.start(true, "unix://"+silent)
	if !waitFor(20*time.Second, func() bool { return strings.Count(r.log(), "silent.sock") >= 2 }) {
		t.Fatalf("no failed round naming silent.sock logged\n%s", r.log())
	}
	time.Sleep(1500 * time.Millisecond) // one more round
	if _, after, _ := r.rec.Counts(); after != before {
		t.Errorf("%d lines sent while a master did not answer, want none", after-before)
	}
	r.stop()
	r.start(true, "")
	r.get(1)
	for _, p := range fwdCounters {
		r.waitLast("after the silent master", p, total())
	}
	r.stop()

	series := r.series()
	for _, p := range append(slices.Clone(fwdCounters), "loadbalancers.haproxy.daemon.CumConns", "loadbalancers.haproxy.daemon.CumReq") {
		s := series[p]
		if len(s) < 5 {
			t.Errorf("%s: %d values, want one per snapshot", p, len(s))
		}
		for i := 1; i < len(s); i++ {
			if s[i] < s[i-1] {
				t.Errorf("%s went down: %v", p, s)
				break
			}
		}
	}
	for path := range series {
		for _, pid := range r.pids() {
			if strings.Contains(path, strconv.Itoa(pid)) {
				t.Errorf("path %s holds PID %d", path, pid)
			}
		}
	}
}

// pids returns the PIDs of the master and of its current workers.
func (r *fwdRig) pids() []int {
	cur, old, _ := r.mw.Workers()
	return append(append(cur, old...), r.mw.MasterPID())
}

// TestMasterWorkerPlainSums runs the same reload without monotonic
// counters: the original's behaviour, the sum over the workers present,
// which drops to the new worker's count when the old one exits.
func TestMasterWorkerPlainSums(t *testing.T) {
	r := newFwdRig(t)
	total := func() float64 { return float64(r.sent.Load()) }
	r.start(false, "")
	r.get(5)
	r.waitLast("first worker", fwdCounters[0], total())
	r.reloadHeld(3, total)
	for _, p := range fwdCounters {
		r.waitLast("the old worker gone", p, 3)
	}
	r.stop()
}
