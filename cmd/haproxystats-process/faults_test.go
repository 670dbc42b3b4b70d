package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// quickRetries makes the daemon retry Graphite every fraction of a second.
const quickRetries = "retries = 2\ninterval = 0.2\nbackoff = 1\ndelay = 0.5\nconnect-timeout = 0.5\n"

// patientWrites raises the write timeout from its default of 1s: on a
// loaded 2-core test machine (go test -race, other tests in parallel) a
// stub can fail to read for a second, and the daemon then rightly drops the
// connection and sends every unconfirmed batch again, which the tests that
// count duplicates would have to allow.
const patientWrites = "write-timeout = 10\n"

// allKeys returns the keys of every epoch that must arrive.
func allKeys(exp *expectation, eps []int64) []string {
	var ks []string
	for _, e := range eps {
		ks = append(ks, exp.keys(e)...)
	}
	return ks
}

// TestFaultGraphiteDownAtStart starts the daemon with three snapshots
// waiting while nothing listens on the Graphite port, checks that they stay
// in the spool, then starts Graphite on that port 2s later: every line of
// every snapshot must arrive, exactly once (nothing was ever written before
// Graphite came up, so no line needs to be sent twice), and the spool must
// empty.
func TestFaultGraphiteDownAtStart(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	exp := loadExpectation(t, caseName)
	port := testenv.FreePort(t)
	s := newScratch(t, caseName, port, "", quickRetries+patientWrites)
	eps := epochs(1795507862, 3)
	s.putCopies(t, caseSnapshot(t, caseName), eps)
	p := s.start(t)
	time.Sleep(2 * time.Second)
	if left := s.left(t); len(left) != len(eps) {
		t.Errorf("with Graphite down for 2s, the spool holds %v, want all of %v", left, names(eps))
	}
	ta := newTally()
	st := testenv.StartRecorder(t, testenv.RecorderOptions{Port: port, OnLines: ta.add})
	up := time.Now()
	s.awaitDelivery(t, 30*time.Second, ta, allKeys(exp, eps))
	t.Logf("all %d snapshots delivered %v after Graphite came up", len(eps), time.Since(up).Round(time.Millisecond))
	// Nothing was written before Graphite came up and no connection failed
	// after: no line needs to be sent twice.
	checkExactlyOnce(t, exp, eps, stopAndCollect(t, p, st))
}

// TestFaultGraphiteKilledMidSnapshot delivers a big generated snapshot (a
// quarter of the large one: 4 processes x 250 backends x 10 servers) to a
// Graphite that dies after reading 2 MB of it: it resets the connection,
// losing what it had not read, and stops listening. Its receive buffer is
// small, so that the bytes it acknowledged without reading cannot reach the
// end of the snapshot. The snapshot must still be in the spool then and 1s
// later; Graphite comes back on the same port, and every line of the
// snapshot must arrive at least once before the snapshot directory is
// removed. The expected lines come from a first, undisturbed run of the
// daemon over the same snapshot.
func TestFaultGraphiteKilledMidSnapshot(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	big := filepath.Join(t.TempDir(), "big")
	if err := testenv.Generate(caseSnapshot(t, caseName), big, 4, 250, 10, 5); err != nil {
		t.Fatal(err)
	}
	const epoch = 1795507862

	// Reference run.
	refStub := testenv.StartRecorder(t, testenv.RecorderOptions{})
	ref := newScratch(t, caseName, refStub.Port(), "", patientWrites)
	ref.put(t, big, epoch)
	rp := ref.start(t)
	waitFor(t, 60*time.Second, "the reference run to empty its spool", func() bool { return len(ref.left(t)) == 0 })
	refLines := stopAndCollect(t, rp, refStub).lines
	exp := parseExpectation(t, enginetest.Normalize([]byte(strings.Join(refLines, "\n"))))
	keys := exp.keys(epoch)
	refBytes, _, _ := refStub.Counts()
	t.Logf("reference run: %d lines, %d bytes", len(exp.lines), refBytes)

	port := testenv.FreePort(t)
	ta := newTally()
	const cutAfter = 2 << 20
	if refBytes < 2*cutAfter {
		t.Fatalf("the snapshot is %d bytes, too small to cut after %d", refBytes, cutAfter)
	}
	st1 := testenv.StartRecorder(t, testenv.RecorderOptions{Port: port, CutAfter: cutAfter, ReadSize: 16 << 10, RcvBuf: 32 << 10, OnLines: ta.add})
	s := newScratch(t, caseName, port, "", quickRetries+patientWrites)
	s.put(t, big, epoch)
	audit := auditSpool(s.incoming, names([]int64{epoch}), 10*time.Second, func(string) bool { return ta.hasAll(keys) })
	p := s.start(t)
	select {
	case <-st1.Died():
	case <-time.After(60 * time.Second):
		t.Fatalf("Graphite did not read %d bytes within 60s", cutAfter)
	}
	if left := s.left(t); len(left) != 1 {
		t.Errorf("Graphite died after reading %d of the snapshot's bytes, yet the spool holds %v", cutAfter, left)
	}
	time.Sleep(time.Second) // reconnects are refused meanwhile
	if left := s.left(t); len(left) != 1 {
		t.Errorf("with Graphite down, the spool holds %v, want the snapshot", left)
	}
	st2 := testenv.StartRecorder(t, testenv.RecorderOptions{Port: port, OnLines: ta.add})
	s.awaitDelivery(t, 60*time.Second, ta, keys)
	stopAndCollect(t, p, st2)
	for _, v := range audit.finish() {
		t.Error(v)
	}

	l1, tr1 := st1.Lines(0)
	l2, tr2 := st2.Lines(0)
	dups := checkAtLeastOnce(t, exp, []int64{epoch}, append(l1, l2...))
	t.Logf("killed Graphite received %d whole lines (%d connection(s) cut mid-line); the restarted one %d lines; %d duplicates",
		len(l1), tr1, len(l2), dups)
	if tr2 != 0 {
		t.Errorf("the restarted Graphite got %d connections that ended mid-line", tr2)
	}
	// Necessary duplicates: what the killed Graphite had read is sent again
	// with the rest of the batch.
	if dups > len(l1) {
		t.Errorf("%d duplicate lines, more than the %d the killed Graphite had received", dups, len(l1))
	}
}

// TestFaultGraphiteKilledWithSnapshotsInFlight makes Graphite die while
// three medium snapshots sit, written but unacknowledged, in the daemon's
// socket send queue: it accepts, reads nothing for 1.5s (the daemon's
// write()s have long returned: Linux queues about 4 MB, while Graphite's
// receive buffer, 32 KiB, cannot hold a snapshot), then resets the
// connection and stops listening. The reset discards the queued bytes, so
// none of the snapshots may have left the spool; Graphite comes back on the
// same port and every line must arrive, exactly once (nothing was read
// before the reset).
func TestFaultGraphiteKilledWithSnapshotsInFlight(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	exp := loadExpectation(t, caseName)
	port := testenv.FreePort(t)
	ta := newTally()
	st1 := testenv.StartRecorder(t, testenv.RecorderOptions{Port: port, DieAfter: 1500 * time.Millisecond, RcvBuf: 32 << 10})
	s := newScratch(t, caseName, port, "", quickRetries+patientWrites)
	eps := epochs(1795507862, 3)
	s.putCopies(t, caseSnapshot(t, caseName), eps)
	p := s.start(t)
	select {
	case <-st1.Died():
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not connect within 30s")
	}
	if left := s.left(t); len(left) != len(eps) {
		t.Errorf("Graphite read nothing and reset the connection, yet the spool holds %v, want %v: "+
			"snapshots were removed once written, not once acknowledged", left, names(eps))
	}
	time.Sleep(time.Second)
	st2 := testenv.StartRecorder(t, testenv.RecorderOptions{Port: port, OnLines: ta.add})
	s.awaitDelivery(t, 30*time.Second, ta, allKeys(exp, eps))
	checkExactlyOnce(t, exp, eps, stopAndCollect(t, p, st2))
}

// TestFaultKill9 queues 30 copies of a medium snapshot, delivers them to a
// Graphite that reads slowly, kills the daemon with SIGKILL once a few
// snapshots were removed, and starts it again. Every snapshot's lines must
// arrive at least once, the spool must end empty, no snapshot directory may
// vanish before all its lines arrived (checked as each one vanishes), and
// the restarted daemon must send again only the snapshots still in the
// spool at the kill: the ones removed before were delivered.
func TestFaultKill9(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	exp := loadExpectation(t, caseName)
	ta := newTally()
	st := testenv.StartRecorder(t, testenv.RecorderOptions{ReadSize: 128 << 10, ReadPause: 10 * time.Millisecond, OnLines: ta.add})
	s := newScratch(t, caseName, st.Port(), "", quickRetries+patientWrites)
	eps := epochs(1795500000, 30)
	s.putCopies(t, caseSnapshot(t, caseName), eps)
	audit := auditSpool(s.incoming, names(eps), 10*time.Second, func(n string) bool {
		e, _ := strconv.ParseInt(n, 10, 64)
		return ta.hasAll(exp.keys(e))
	})
	p := s.start(t)
	left := killMidway(t, s, p, audit)
	// What the killed daemon had written reaches Graphite before its
	// connection ends.
	drain(t, st, 10*time.Second)
	before, _ := st.Lines(0)
	_, _, connsBefore := st.Counts()
	t.Logf("SIGKILL with %d of %d snapshots removed; %d lines received", len(eps)-len(left), len(eps), len(before))

	p2 := s.start(t)
	s.awaitDelivery(t, 60*time.Second, ta, allKeys(exp, eps))
	got := stopAndCollect(t, p2, st)
	for _, v := range audit.finish() {
		t.Error(v)
	}
	dups := checkAtLeastOnce(t, exp, eps, got.lines)
	// A connection may end mid-line: SIGKILL can stop a write half-way,
	// and the kernel then sends the part it had; that line is sent again
	// whole by the restarted daemon (checked above).
	t.Logf("received %d lines on %d connections; %d duplicates (%.1f snapshots' worth), %d cut mid-line",
		len(got.lines), got.conns, dups, float64(dups)/float64(len(exp.lines)), got.truncated)
	after, _ := st.Lines(connsBefore)
	resent := map[string]int{}
	for _, l := range after {
		if ts := l[strings.LastIndexByte(l, ' ')+1:]; !left[ts] {
			resent[ts]++
		}
	}
	for ts, n := range resent {
		t.Errorf("the restarted daemon sent %d lines of snapshot %s, which was removed from the spool before the kill", n, ts)
	}
}

// TestFaultSnapshotArrivesWhileBusy renames a new snapshot directory into
// the spool while the daemon is delivering ten others to a slow Graphite
// with a small queue (workers wait for room): it must be processed too,
// and no line may arrive twice.
func TestFaultSnapshotArrivesWhileBusy(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	exp := loadExpectation(t, caseName)
	ta := newTally()
	st := testenv.StartRecorder(t, testenv.RecorderOptions{ReadSize: 64 << 10, ReadPause: 10 * time.Millisecond, OnLines: ta.add})
	s := newScratch(t, caseName, st.Port(), "", "queue-size = 20000\n"+patientWrites)
	eps := epochs(1795500000, 10)
	s.putCopies(t, caseSnapshot(t, caseName), eps)
	p := s.start(t)
	waitFor(t, 30*time.Second, "delivery to start", func() bool { b, _, _ := st.Counts(); return b > 0 })
	busy := len(s.left(t))
	late := eps[len(eps)-1] + 100
	s.put(t, caseSnapshot(t, caseName), late)
	t.Logf("renamed %d in while %d snapshots were in the spool", late, busy)
	if busy < 2 {
		t.Errorf("only %d snapshots left when the new one arrived: the daemon was not busy", busy)
	}
	all := append(eps, late)
	s.awaitDelivery(t, 60*time.Second, ta, allKeys(exp, all))
	checkExactlyOnce(t, exp, all, stopAndCollect(t, p, st))
}

// TestFaultThousandSnapshots starts the daemon with 1,000 snapshot
// directories (copies of dots-defaults) already waiting: all must be
// processed and delivered, each once, and the spool must empty within a
// minute.
func TestFaultThousandSnapshots(t *testing.T) {
	t.Parallel()
	const caseName = "dots-defaults"
	exp := loadExpectation(t, caseName)
	ta := newTally()
	st := testenv.StartRecorder(t, testenv.RecorderOptions{OnLines: ta.add})
	s := newScratch(t, caseName, st.Port(), "", patientWrites)
	eps := epochs(1795000000, 1000)
	s.putCopies(t, caseSnapshot(t, caseName), eps)
	start := time.Now()
	p := s.start(t)
	s.awaitDelivery(t, 60*time.Second, ta, allKeys(exp, eps))
	took := time.Since(start)
	t.Logf("1,000 snapshots delivered in %v (%.0f snapshots/s)", took.Round(time.Millisecond), 1000/took.Seconds())
	checkExactlyOnce(t, exp, eps, stopAndCollect(t, p, st))
}

// TestFaultGraphiteNeverReads points the daemon at a Graphite that accepts
// connections and never reads (its 32 KiB receive buffer fills): the
// snapshots must stay in the spool; SIGTERM must make it exit 0 within 2 s
// (nothing is being acknowledged: the stop timeout does not apply), leaving
// them there for the next start.
func TestFaultGraphiteNeverReads(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	st := testenv.StartRecorder(t, testenv.RecorderOptions{NoRead: true, RcvBuf: 32 << 10})
	s := newScratch(t, caseName, st.Port(), "", quickRetries+"write-timeout = 1\n")
	eps := epochs(1795500000, 3)
	s.putCopies(t, caseSnapshot(t, caseName), eps)
	p := s.start(t)
	time.Sleep(3 * time.Second)
	if left := s.left(t); len(left) != len(eps) {
		t.Errorf("Graphite never read, yet the spool holds %v, want %v", left, names(eps))
	}
	_, _, conns := st.Counts()
	took := p.term(t, 28*time.Second)
	t.Logf("exit 0 %v after SIGTERM; %d connection(s) accepted", took.Round(time.Millisecond), conns)
	if conns == 0 {
		t.Error("the daemon never connected")
	}
	// Within 2 s, and 2 s of slack.
	checkStopLeft(t, s, p, eps, took, 4*time.Second)
}

// TestSIGHUPStopsLikeSIGTERM: the original stopped on SIGHUP as on
// SIGTERM, and units and scripts rely on it.
func TestSIGHUPStopsLikeSIGTERM(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	exp := loadExpectation(t, caseName)
	ta := newTally()
	st := testenv.StartRecorder(t, testenv.RecorderOptions{OnLines: ta.add})
	s := newScratch(t, caseName, st.Port(), "", "")
	eps := epochs(1795600000, 2)
	s.putCopies(t, caseSnapshot(t, caseName), eps)
	p := s.start(t)
	s.awaitDelivery(t, 30*time.Second, ta, allKeys(exp, eps))
	waitFor(t, 10*time.Second, "the spool to empty", func() bool { return len(s.left(t)) == 0 })
	took := p.stop(t, syscall.SIGHUP, 10*time.Second)
	t.Logf("exit 0 %v after SIGHUP", took.Round(time.Millisecond))
}
