package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// This file holds what the black-box tests share: the daemon process, a
// scratch spool and configuration, the expected lines of a corpus case at
// any epoch, and the checks. Graphite is testenv.Recorder (or a real relay).

const corpus = "../../testdata/conformance"

// scratch is a working directory for one daemon: the case's
// haproxystats.conf, a conf.d with the test's settings, an incoming/ spool
// and a staging/ directory on the same file system to rename snapshots in
// from.
type scratch struct {
	dir, conf, confDir, incoming, staging string
}

// newScratch prepares a scratch directory for case caseName with Graphite
// at 127.0.0.1:port. process and graphite are extra lines for those
// sections ("workers = 1\n").
func newScratch(t *testing.T, caseName string, port int, process, graphite string) *scratch {
	t.Helper()
	dir := t.TempDir()
	s := &scratch{
		dir:      dir,
		conf:     filepath.Join(dir, "haproxystats.conf"),
		confDir:  filepath.Join(dir, "conf.d"),
		incoming: filepath.Join(dir, "incoming"),
		staging:  filepath.Join(dir, "staging"),
	}
	for _, d := range []string{s.confDir, s.incoming, s.staging} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf, err := os.ReadFile(filepath.Join(corpus, caseName, "haproxystats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.conf, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	run := fmt.Sprintf("[process]\nsrc-dir = %s\n%s[graphite]\nserver = 127.0.0.1\nport = %d\n%s",
		s.incoming, process, port, graphite)
	if err := os.WriteFile(filepath.Join(s.confDir, "run.conf"), []byte(run), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// caseSnapshot returns the directory of the only snapshot of a corpus case.
func caseSnapshot(t testing.TB, caseName string) string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(corpus, caseName, "incoming", "*"))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("case %s: want exactly one snapshot, got %v (%v)", caseName, dirs, err)
	}
	return dirs[0]
}

// put copies the snapshot directory src into the spool as <epoch>: into
// staging first, then renamed in, as haproxystats-pull does.
func (s *scratch) put(t testing.TB, src string, epoch int64) {
	t.Helper()
	name := strconv.FormatInt(epoch, 10)
	tmp := filepath.Join(s.staging, name)
	if err := os.CopyFS(tmp, os.DirFS(src)); err != nil {
		t.Fatalf("copy snapshot %s: %v", src, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.incoming, name)); err != nil {
		t.Fatalf("rename snapshot into the spool: %v", err)
	}
}

// left returns the snapshot directories still in the spool.
func (s *scratch) left(t *testing.T) []string { return snapshots(t, s.incoming) }

// start starts the daemon on the scratch directory.
func (s *scratch) start(t *testing.T) *daemon {
	t.Helper()
	return startDaemon(t, s.dir, "-f", s.conf, "-d", s.confDir)
}

// snapshots lists the snapshot directories in dir.
func snapshots(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// daemon is a running haproxystats-process binary. It is never left
// running: the test's cleanup kills it if it has not exited, and logs what
// it wrote when the test failed.
type daemon struct {
	cmd    *exec.Cmd
	log    *testenv.Buffer
	done   chan error
	exited bool
	err    error
}

// startDaemon starts the binary in workdir with args.
func startDaemon(t testing.TB, workdir string, args ...string) *daemon {
	t.Helper()
	return startProgram(t, binary, workdir, args...)
}

// startProgram starts the program bin (haproxystats-process, or another
// one the test built) in workdir with args, stopped as startDaemon's.
func startProgram(t testing.TB, bin, workdir string, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(bin, args...), log: &testenv.Buffer{}, done: make(chan error, 1)}
	d.cmd.Dir = workdir
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if !d.exited {
			d.cmd.Process.Kill()
			d.wait(10 * time.Second)
		}
		if t.Failed() {
			t.Logf("daemon pid %d in %s logged:\n%s", d.cmd.Process.Pid, workdir, d.stderr())
		}
	})
	return d
}

// wait waits at most timeout for the process to exit.
func (d *daemon) wait(timeout time.Duration) bool {
	if d.exited {
		return true
	}
	select {
	case d.err = <-d.done:
		d.exited = true
		return true
	case <-time.After(timeout):
		return false
	}
}

// kill9 kills the daemon with SIGKILL and reaps it.
func (d *daemon) kill9(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGKILL)
	if !d.wait(10 * time.Second) {
		t.Fatalf("daemon pid %d still running 10s after SIGKILL", d.cmd.Process.Pid)
	}
}

// term sends SIGTERM and waits at most timeout; it fails the test unless
// the daemon exits 0 in time, and returns how long the exit took.
func (d *daemon) term(t testing.TB, timeout time.Duration) time.Duration {
	t.Helper()
	return d.stop(t, syscall.SIGTERM, timeout)
}

// stop is term with another signal.
func (d *daemon) stop(t testing.TB, sig syscall.Signal, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	d.cmd.Process.Signal(sig)
	if !d.wait(timeout) {
		d.cmd.Process.Kill()
		d.wait(10 * time.Second)
		t.Fatalf("daemon did not exit within %v of %v", timeout, sig)
	}
	if d.err != nil {
		t.Fatalf("daemon exit after %v: %v", sig, d.err)
	}
	return time.Since(start)
}

// stderr is the end of what the daemon logged.
func (d *daemon) stderr() string { return tail(d.log.String(), 40) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... %d lines before", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond every 20ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expectation is the expected.txt of a corpus case, whose lines all carry
// the timestamp of its only snapshot, re-stamped for any epoch.
type expectation struct {
	lines [][3]string // path, value, timestamp
}

func loadExpectation(t testing.TB, caseName string) *expectation {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpus, caseName, "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return parseExpectation(t, data)
}

// parseExpectation reads lines in expected.txt form.
func parseExpectation(t testing.TB, data []byte) *expectation {
	t.Helper()
	e := &expectation{}
	for _, l := range strings.Split(string(data), "\n") {
		if l == "" {
			continue
		}
		f := strings.Split(l, " ")
		if len(f) != 3 {
			t.Fatalf("expected line %q is not PATH VALUE TIMESTAMP", l)
		}
		e.lines = append(e.lines, [3]string{f[0], f[1], f[2]})
	}
	if len(e.lines) == 0 {
		t.Fatal("no expected lines")
	}
	return e
}

// text returns the expected lines of every epoch given.
func (e *expectation) text(epochs ...int64) []byte {
	var b bytes.Buffer
	for _, ep := range epochs {
		ts := strconv.FormatInt(ep, 10)
		for _, l := range e.lines {
			b.WriteString(l[0] + " " + l[1] + " " + ts + "\n")
		}
	}
	return b.Bytes()
}

// keys returns "PATH TIMESTAMP" of every line of epoch that must arrive
// (all but the NaN ones, which may be absent).
func (e *expectation) keys(epoch int64) []string {
	ts := strconv.FormatInt(epoch, 10)
	var ks []string
	for _, l := range e.lines {
		if !strings.EqualFold(l[1], "nan") {
			ks = append(ks, l[0]+" "+ts)
		}
	}
	return ks
}

// numbers is the count of lines that must arrive per snapshot.
func (e *expectation) numbers() int { return len(e.keys(0)) }

// epochs returns n consecutive epochs from first.
func epochs(first int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = first + int64(i)
	}
	return out
}

// checkAtLeastOnce compares the lines received with the expected lines of
// every epoch by the corpus rules (enginetest.Compare), one epoch at a
// time, counting a key received more often than expected as a duplicate
// instead of an extra line: replay after a failure is allowed. It reports
// the mismatches as test errors and returns the number of duplicate lines.
func checkAtLeastOnce(t *testing.T, exp *expectation, eps []int64, got []string) (dups int) {
	t.Helper()
	byEpoch := map[string][]string{}
	for _, ep := range eps {
		byEpoch[strconv.FormatInt(ep, 10)] = nil
	}
	var counted []enginetest.Mismatch
	for _, l := range got {
		ts := l[strings.LastIndexByte(l, ' ')+1:]
		if _, ok := byEpoch[ts]; !ok {
			counted = append(counted, enginetest.Mismatch{Kind: enginetest.Extra, Got: l, Counted: true})
			continue
		}
		byEpoch[ts] = append(byEpoch[ts], l)
	}
	wantCount := map[string]int{}
	for _, l := range exp.lines {
		wantCount[l[0]]++
	}
	for _, ep := range eps {
		seen := make(map[string]int, len(wantCount))
		var uniq bytes.Buffer
		for _, l := range byEpoch[strconv.FormatInt(ep, 10)] {
			path, _, _ := strings.Cut(l, " ")
			if seen[path] >= max(wantCount[path], 1) {
				dups++
				continue
			}
			seen[path]++
			uniq.WriteString(l)
			uniq.WriteByte('\n')
		}
		for _, m := range enginetest.Compare(exp.text(ep), uniq.Bytes(), false) {
			if m.Counted {
				counted = append(counted, m)
			}
		}
	}
	for i, m := range counted {
		if i == 20 {
			t.Errorf("... and %d more mismatches", len(counted)-20)
			break
		}
		t.Errorf("%s", m)
	}
	return dups
}

// tally counts the lines received by one or more stubs, by "PATH
// TIMESTAMP", as they arrive.
type tally struct {
	mu   sync.Mutex
	keys map[string]int
}

func newTally() *tally { return &tally{keys: map[string]int{}} }

func (ta *tally) add(lines []byte) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		l := lines[:i]
		lines = lines[i+1:]
		a, b := bytes.IndexByte(l, ' '), bytes.LastIndexByte(l, ' ')
		if a <= 0 || b <= a {
			continue
		}
		ta.keys[string(l[:a])+string(l[b:])]++
	}
}

// hasAll reports whether every key has arrived at least once.
func (ta *tally) hasAll(keys []string) bool { return ta.firstMissing(keys, 0) == len(keys) }

// firstMissing returns the index of the first of keys[from:] that has not
// arrived, len(keys) when all have. It holds the lock for at most
// tallyChunk keys at a time, so that a check of hundreds of thousands of
// keys does not keep out, for its whole length, the goroutine adding the
// lines it waits for.
func (ta *tally) firstMissing(keys []string, from int) int {
	for i := from; i < len(keys); {
		end := min(i+tallyChunk, len(keys))
		ta.mu.Lock()
		for ; i < end; i++ {
			if ta.keys[keys[i]] == 0 {
				ta.mu.Unlock()
				return i
			}
		}
		ta.mu.Unlock()
	}
	return len(keys)
}

// tallyChunk is how many keys firstMissing checks under one lock.
const tallyChunk = 4096

// awaitAll waits at most within for every key to be in ta, failing the
// test with what, the keys missing and detail() (when not nil)
// otherwise. A key counted stays counted, so each check resumes at the
// first key missing at the last one: polling every 20 ms costs the keys
// that arrived since, not all of them again (a full check of a run's
// 350,000 keys every 20 ms, under the race detector on a loaded machine,
// held the lock most of the time and starved the reader adding the last
// lines, which fell tens of seconds behind).
func awaitAll(t *testing.T, ta *tally, within time.Duration, what string, keys []string, detail func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for i := 0; ; time.Sleep(20 * time.Millisecond) {
		if i = ta.firstMissing(keys, i); i == len(keys) {
			return
		}
		if time.Now().After(deadline) {
			more := ""
			if detail != nil {
				more = "; " + detail()
			}
			t.Fatalf("timed out after %v waiting for %s: %d of %d missing, e.g. %q%s",
				within, what, len(keys)-i-ta.countArrived(keys[i:]), len(keys), keys[i], more)
		}
	}
}

// countArrived returns how many of keys have arrived.
func (ta *tally) countArrived(keys []string) int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	n := 0
	for _, k := range keys {
		if ta.keys[k] > 0 {
			n++
		}
	}
	return n
}

// killMidway kills p with SIGKILL once audit saw 3 snapshots delivered,
// and returns the snapshots still in s's spool; it fails the test if none
// is left (the kill was not in the middle).
func killMidway(t *testing.T, s *scratch, p *daemon, audit *spoolAudit) map[string]bool {
	t.Helper()
	waitFor(t, 60*time.Second, "3 snapshots to be delivered", func() bool { return audit.removed() >= 3 })
	p.kill9(t)
	left := map[string]bool{}
	for _, n := range s.left(t) {
		left[n] = true
	}
	if len(left) == 0 {
		t.Fatal("every snapshot was delivered before the kill: the test did not kill in the middle")
	}
	return left
}

// spoolAudit watches the spool and checks that a snapshot directory is
// removed only once all its lines have arrived: when a directory vanishes,
// its lines must all be in the tally within grace (acknowledged bytes may
// still sit unread in the stub's receive buffer for a moment).
type spoolAudit struct {
	dir   string
	grace time.Duration
	ok    func(name string) bool
	// explain, when not nil, says what is missing in a violation.
	explain func(name string) string
	stop    chan struct{}
	done    chan struct{}

	mu         sync.Mutex
	present    map[string]bool
	vanished   map[string]time.Time
	pending    map[string]bool
	violations []string
}

func auditSpool(dir string, names []string, grace time.Duration, ok func(name string) bool) *spoolAudit {
	return auditSpoolExplained(dir, names, grace, ok, nil)
}

// auditSpoolExplained is auditSpool with explain(name) added to each
// violation's message.
func auditSpoolExplained(dir string, names []string, grace time.Duration, ok func(name string) bool, explain func(name string) string) *spoolAudit {
	a := &spoolAudit{
		dir: dir, grace: grace, ok: ok, explain: explain,
		stop: make(chan struct{}), done: make(chan struct{}),
		present: map[string]bool{}, vanished: map[string]time.Time{}, pending: map[string]bool{},
	}
	for _, n := range names {
		a.present[n] = true
	}
	go a.run()
	return a
}

func (a *spoolAudit) run() {
	defer close(a.done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		a.poll(false)
		select {
		case <-a.stop:
			a.poll(true)
			return
		case <-tick.C:
		}
	}
}

func (a *spoolAudit) poll(final bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for n := range a.present {
		if _, err := os.Stat(filepath.Join(a.dir, n)); errors.Is(err, fs.ErrNotExist) {
			delete(a.present, n)
			a.vanished[n] = now
			a.pending[n] = true
		}
	}
	for n := range a.pending {
		switch {
		case a.ok(n):
			delete(a.pending, n)
		case final || now.Sub(a.vanished[n]) > a.grace:
			delete(a.pending, n)
			v := fmt.Sprintf("snapshot %s was removed from the spool but its lines had not all arrived %v later",
				n, now.Sub(a.vanished[n]).Round(time.Millisecond))
			if a.explain != nil {
				v += ": " + a.explain(n)
			}
			a.violations = append(a.violations, v)
		}
	}
}

// removed returns how many of the watched snapshots have vanished.
func (a *spoolAudit) removed() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.vanished)
}

// finish stops the audit and returns its violations.
func (a *spoolAudit) finish() []string {
	close(a.stop)
	<-a.done
	return a.violations
}

// names returns the directory names of epochs.
func names(eps []int64) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = strconv.FormatInt(e, 10)
	}
	return out
}

// putCopies renames a copy of the snapshot directory src into the spool
// for every epoch.
func (s *scratch) putCopies(t testing.TB, src string, eps []int64) {
	t.Helper()
	for _, e := range eps {
		s.put(t, src, e)
	}
}

// awaitDelivery waits at most timeout for the spool to empty, then for
// every key to arrive in ta (acknowledged bytes may still wait a moment in
// the recorder's receive buffer).
func (s *scratch) awaitDelivery(t *testing.T, timeout time.Duration, ta *tally, keys []string) {
	t.Helper()
	waitFor(t, timeout, "the spool to empty", func() bool { return len(s.left(t)) == 0 })
	awaitAll(t, ta, 10*time.Second, "every line to arrive", keys, nil)
}

// received is what recorders got.
type received struct {
	lines []string
	// truncated counts the connections that ended in the middle of a line.
	truncated int
	conns     int
}

// stopAndCollect stops the daemon with SIGTERM, waits until the recorders
// have read every connection to its end, and returns what they received.
func stopAndCollect(t *testing.T, d *daemon, recs ...*testenv.Recorder) received {
	t.Helper()
	d.term(t, 30*time.Second)
	var got received
	for _, r := range recs {
		if err := r.Drain(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		lines, truncated := r.Lines(0)
		_, _, conns := r.Counts()
		got.lines = append(got.lines, lines...)
		got.truncated += truncated
		got.conns += conns
	}
	return got
}

// checkExactlyOnce checks that got holds every line of every epoch once,
// none twice and no connection cut mid-line: for runs in which no
// connection failed after a line was written.
func checkExactlyOnce(t *testing.T, exp *expectation, eps []int64, got received) {
	t.Helper()
	dups := checkAtLeastOnce(t, exp, eps, got.lines)
	t.Logf("received %d lines on %d connection(s): %d duplicates, %d connections cut mid-line",
		len(got.lines), got.conns, dups, got.truncated)
	if dups != 0 || got.truncated != 0 {
		t.Errorf("%d lines arrived more than once and %d connections ended mid-line; want none", dups, got.truncated)
	}
}

// drain waits until the recorder has read every connection to its end.
func drain(t *testing.T, r *testenv.Recorder, timeout time.Duration) {
	t.Helper()
	if err := r.Drain(timeout); err != nil {
		t.Fatal(err)
	}
}

// caseRun is the daemon running over a scratch copy of a corpus case.
type caseRun struct {
	work      string   // the scratch copy: the daemon's working directory
	incoming  string   // its spool
	snapshots []string // the snapshots in it at the start
	graphite  *testenv.Recorder
	daemon    *daemon
}

// startCase runs the daemon over corpus case c as the corpus README
// prescribes (§6.1): a scratch copy of the case as working directory, its
// configuration plus a second file setting src-dir and Graphite (a new
// recorder), followed by extra (more sections).
func startCase(t *testing.T, c enginetest.Case, extra string) *caseRun {
	t.Helper()
	r := &caseRun{work: filepath.Join(t.TempDir(), c.Name), graphite: testenv.NewRecorder(t, 0)}
	r.incoming = filepath.Join(r.work, "incoming")
	if err := os.CopyFS(r.work, os.DirFS(c.Dir)); err != nil {
		t.Fatal(err)
	}
	confDir := filepath.Join(t.TempDir(), "conf.d")
	if err := os.Mkdir(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "run.conf"), []byte(fmt.Sprintf(
		"[process]\nsrc-dir = %s\n[graphite]\nserver = 127.0.0.1\nport = %d\n%s",
		r.incoming, r.graphite.Port(), extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.snapshots = snapshots(t, r.incoming)
	r.daemon = startDaemon(t, r.work, "-f", "haproxystats.conf", "-d", confDir)
	return r
}

// finish waits for the spool to empty, stops the daemon with SIGTERM and
// waits until the recorder has read every connection to its end: a
// snapshot leaves the spool only once Graphite's TCP stack acknowledged its
// lines, and the daemon closes its connection on exit, so the recorder then
// holds everything.
func (r *caseRun) finish(t *testing.T) {
	t.Helper()
	waitFor(t, 60*time.Second, "the spool to empty", func() bool { return len(snapshots(t, r.incoming)) == 0 })
	r.daemon.term(t, 30*time.Second)
	drain(t, r.graphite, 10*time.Second)
}

// checkStopLeft checks what a stop with nothing deliverable must leave:
// an exit within bound of SIGTERM (took), every snapshot of eps still in
// the spool, and a log line saying so.
func checkStopLeft(t *testing.T, s *scratch, p *daemon, eps []int64, took, bound time.Duration) {
	t.Helper()
	if took > bound {
		t.Errorf("exit %v after SIGTERM with nothing acknowledged, want within %v", took.Round(time.Millisecond), bound)
	}
	if left := s.left(t); len(left) != len(eps) {
		t.Errorf("after the stop, the spool holds %v, want %v", left, names(eps))
	}
	if !strings.Contains(p.log.String(), "left in the spool") {
		t.Errorf("the daemon did not log that the snapshots were left in the spool:\n%s", p.stderr())
	}
}
