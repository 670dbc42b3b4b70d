package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// The Kafka tests run the daemon with Graphite (a recorder) and Kafka
// (franz-go's kfake as its own process, testenv.StartKafka) both
// configured, and read Kafka back with kcat, a client independent of the
// producer.

// kafkaTopic is the topic testenv.StartKafka creates (one partition).
const kafkaTopic = "haproxystats-metrics"

// kafkaSelfNames are the self-metrics the daemon adds with [kafka].
var kafkaSelfNames = []string{"KafkaRecords", "KafkaBytes", "KafkaLines", "KafkaErrors"}

// addKafka writes a conf.d file, read after run.conf, with the [kafka]
// section reaching k (topic) and extra lines for it.
func (s *scratch) addKafka(t *testing.T, k *testenv.Kafka, topic, extra string) {
	t.Helper()
	s.addKafkaSection(t, k.ConfigSection(topic)+extra)
}

// addKafkaSection writes section, a whole [kafka] section, to conf.d.
func (s *scratch) addKafkaSection(t *testing.T, section string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.confDir, "zz-kafka.conf"), []byte(section), 0o644); err != nil {
		t.Fatal(err)
	}
}

// hostname is the key of every record: the host name, as the daemon gets
// it.
func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkKafkaRecords checks the record rules on what kcat read: the key is
// the host name, every record ends with a newline (no line split), is at
// most limit bytes, is in partition 0 (the topic has one), and holds the
// lines of one snapshot (one timestamp). It returns the lines, record
// after record.
func checkKafkaRecords(t *testing.T, recs []testenv.KafkaRecord, limit int) []byte {
	t.Helper()
	host := hostname(t)
	for _, r := range recs {
		where := fmt.Sprintf("record %d/%d", r.Partition, r.Offset)
		if r.Key != host {
			t.Errorf("%s has key %q, want the host name %q", where, r.Key, host)
		}
		if r.Partition != 0 {
			t.Errorf("%s is not in the topic's only partition", where)
		}
		if !strings.HasSuffix(r.Value, "\n") {
			t.Errorf("%s does not end with a newline: a line was split; value ends %q", where, r.Value[max(0, len(r.Value)-60):])
			continue
		}
		if len(r.Value) > limit {
			t.Errorf("%s has %d bytes, more than max-record-bytes %d", where, len(r.Value), limit)
		}
		stamps := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSuffix(r.Value, "\n"), "\n") {
			stamps[l[strings.LastIndexByte(l, ' ')+1:]] = true
		}
		if len(stamps) != 1 {
			t.Errorf("%s holds lines of %d snapshots, want one", where, len(stamps))
		}
	}
	return testenv.KafkaLines(recs)
}

// kafkaCounters are the Kafka self-metrics sent with one snapshot.
type kafkaCounters map[string]int64

// splitKafkaSelf separates the Kafka self-metric lines (PREFIX.haproxystats.
// Kafka*) from the others: it returns the others, and the values of the
// self-metrics by timestamp, each name with every value it was sent with.
// A value that is not a non-negative integer fails the test.
func splitKafkaSelf(t *testing.T, data []byte) (rest []byte, self map[string]map[string][]int64) {
	t.Helper()
	self = map[string]map[string][]int64{}
	var b bytes.Buffer
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, " ")
		name := ""
		if len(f) == 3 {
			if i := strings.LastIndex(f[0], ".haproxystats."); i >= 0 && slices.Contains(kafkaSelfNames, f[0][i+len(".haproxystats."):]) {
				name = f[0][i+len(".haproxystats."):]
			}
		}
		if name == "" {
			if l != "" {
				b.WriteString(l + "\n")
			}
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || v < 0 {
			t.Errorf("self-metric line %q: the value is not a count", l)
			continue
		}
		if self[f[2]] == nil {
			self[f[2]] = map[string][]int64{}
		}
		self[f[2]][name] = append(self[f[2]][name], v)
	}
	return b.Bytes(), self
}

// onePerSnapshot checks that every snapshot of stamps was sent with each
// Kafka self-metric exactly once, and no other timestamp with any, and
// returns them.
func onePerSnapshot(t *testing.T, self map[string]map[string][]int64, stamps []string) map[string]kafkaCounters {
	t.Helper()
	out := map[string]kafkaCounters{}
	for ts := range self {
		if !slices.Contains(stamps, ts) {
			t.Errorf("Kafka self-metrics with timestamp %s, not a snapshot of the run (%v)", ts, stamps)
		}
	}
	for _, ts := range stamps {
		c := kafkaCounters{}
		for _, name := range kafkaSelfNames {
			vs := self[ts][name]
			if len(vs) != 1 {
				t.Errorf("snapshot %s: %s sent %d times (%v), want once", ts, name, len(vs), vs)
				continue
			}
			c[name] = vs[0]
		}
		out[ts] = c
	}
	return out
}

// atLeastOncePerSnapshot checks that every snapshot of stamps was sent
// with each Kafka self-metric at least once (a snapshot sent again has its
// own, later, values).
func atLeastOncePerSnapshot(t *testing.T, self map[string]map[string][]int64, stamps []string) {
	t.Helper()
	for _, ts := range stamps {
		for _, name := range kafkaSelfNames {
			if len(self[ts][name]) == 0 {
				t.Errorf("snapshot %s: no %s line", ts, name)
			}
		}
	}
}

// checkCountersPrefix checks the Kafka self-metrics of every snapshot
// against the records read back, when one daemon process produced the whole
// topic, without failures. The counters are what the brokers had
// acknowledged when the snapshot's self-metrics were computed, and one
// partition acknowledges in offset order, so KafkaRecords = k,
// KafkaBytes and KafkaLines must be the bytes and lines of the first k
// records of the topic, KafkaErrors 0; and k cannot reach the record that
// carries these very lines. It returns k by timestamp.
func checkCountersPrefix(t *testing.T, recs []testenv.KafkaRecord, counters map[string]kafkaCounters) map[string]int {
	t.Helper()
	cumBytes := make([]int64, len(recs)+1)
	cumLines := make([]int64, len(recs)+1)
	carrier := map[string]int{} // timestamp -> first record holding its KafkaRecords line
	for i, r := range recs {
		cumBytes[i+1] = cumBytes[i] + int64(len(r.Value))
		cumLines[i+1] = cumLines[i] + int64(strings.Count(r.Value, "\n"))
		for _, l := range strings.Split(r.Value, "\n") {
			if f := strings.Split(l, " "); len(f) == 3 && strings.HasSuffix(f[0], ".haproxystats.KafkaRecords") {
				if _, ok := carrier[f[2]]; !ok {
					carrier[f[2]] = i
				}
			}
		}
	}
	ks := map[string]int{}
	for ts, c := range counters {
		k := int(c["KafkaRecords"])
		at, ok := carrier[ts]
		switch {
		case !ok:
			t.Errorf("snapshot %s: its KafkaRecords line is in no record", ts)
		case k > at:
			t.Errorf("snapshot %s: KafkaRecords = %d, yet its own line is in record %d: it counts records not acknowledged yet", ts, k, at)
		case c["KafkaBytes"] != cumBytes[k] || c["KafkaLines"] != cumLines[k]:
			t.Errorf("snapshot %s: KafkaRecords %d, KafkaBytes %d, KafkaLines %d; the first %d records of the topic hold %d bytes and %d lines",
				ts, k, c["KafkaBytes"], c["KafkaLines"], k, cumBytes[k], cumLines[k])
		}
		if c["KafkaErrors"] != 0 {
			t.Errorf("snapshot %s: KafkaErrors = %d, want 0 (nothing failed)", ts, c["KafkaErrors"])
		}
		ks[ts] = k
	}
	return ks
}

// sameSelf checks that Graphite got the same Kafka self-metric lines as
// Kafka: they are lines of the snapshot like the others.
func sameSelf(t *testing.T, graphite, kafka map[string]map[string][]int64) {
	t.Helper()
	g, _ := json.Marshal(graphite)
	k, _ := json.Marshal(kafka)
	if !bytes.Equal(g, k) {
		t.Errorf("Kafka self-metrics differ between Graphite and Kafka:\ngraphite %s\nkafka    %s", g, k)
	}
}

// TestKafkaConformance runs the daemon over every corpus case with
// Graphite and Kafka both configured (one broker, a topic per case): what
// each receives, without the Kafka self-metrics, must match expected.txt
// by the corpus rules (exactly once: nothing failed); the records must
// follow the record rules (host name key, whole lines, one snapshot per
// record); every snapshot must carry KafkaRecords, KafkaBytes, KafkaLines
// and KafkaErrors once, the same to both destinations, with values that
// are the totals of the records the topic had acknowledged then.
func TestKafkaConformance(t *testing.T) {
	testenv.KcatBinary(t)
	cases, err := enginetest.Find(corpus)
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, c := range cases {
		topics = append(topics, c.Name)
	}
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: topics})
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			r := startCase(t, c, k.ConfigSection(c.Name))
			if len(r.snapshots) == 0 {
				t.Fatal("case has no snapshot")
			}
			r.finish(t)

			expected, err := os.ReadFile(filepath.Join(c.Dir, "expected.txt"))
			if err != nil {
				t.Fatal(err)
			}
			failed := strings.Contains(readFile(t, filepath.Join(c.Dir, "outcome.txt")), "worker-crash: yes")
			recs := testenv.KcatConsume(t, k.Addr(), c.Name)
			fromKafka, kafkaSelf := splitKafkaSelf(t, checkKafkaRecords(t, recs, 65536))
			got, _ := r.graphite.Bytes()
			fromGraphite, graphiteSelf := splitKafkaSelf(t, got)
			for _, dst := range []struct {
				name string
				got  []byte
			}{{"kafka", fromKafka}, {"graphite", fromGraphite}} {
				for _, m := range enginetest.Compare(expected, dst.got, failed) {
					if m.Counted {
						t.Errorf("%s: %s", dst.name, m)
					}
				}
			}
			sameSelf(t, graphiteSelf, kafkaSelf)
			ks := checkCountersPrefix(t, recs, onePerSnapshot(t, kafkaSelf, r.snapshots))
			t.Logf("%d records, %d bytes; acknowledged records counted per snapshot: %v", len(recs), len(testenv.KafkaLines(recs)), ks)
		})
	}
}

// TestKafkaSelfMetrics renders four snapshots into the spool one at a
// time, each once the one before has left it (then Kafka had acknowledged
// its records), and checks the Kafka self-metrics exactly: a small snapshot
// is one record, produced when its stream finishes, after its self-metrics
// were computed, so snapshot i reports the records, bytes and lines of
// snapshots 0..i-1 as read back by kcat, and no error.
func TestKafkaSelfMetrics(t *testing.T) {
	t.Parallel()
	const caseName = "dots-defaults"
	k := testenv.StartKafka(t)
	st := testenv.NewRecorder(t, 0)
	s := newScratch(t, caseName, st.Port(), "workers = 1\n", "")
	s.addKafka(t, k, kafkaTopic, "")
	p := s.start(t)
	eps := epochs(1795600000, 4)
	for _, e := range eps {
		s.put(t, caseSnapshot(t, caseName), e)
		waitFor(t, 30*time.Second, fmt.Sprintf("snapshot %d to leave the spool", e), func() bool { return len(s.left(t)) == 0 })
	}
	p.term(t, 30*time.Second)
	drain(t, st, 10*time.Second)

	recs := testenv.KcatConsume(t, k.Addr(), kafkaTopic)
	if len(recs) != len(eps) {
		t.Fatalf("kcat read %d records, want one per snapshot (%d): each fits in max-record-bytes", len(recs), len(eps))
	}
	fromKafka, self := splitKafkaSelf(t, checkKafkaRecords(t, recs, 65536))
	counters := onePerSnapshot(t, self, names(eps))
	var want kafkaCounters = kafkaCounters{"KafkaRecords": 0, "KafkaBytes": 0, "KafkaLines": 0, "KafkaErrors": 0}
	for i, e := range eps {
		ts := strconv.FormatInt(e, 10)
		if got := counters[ts]; !maps.Equal(got, want) {
			t.Errorf("snapshot %d (the %d-th): Kafka self-metrics %v, want %v", e, i+1, got, want)
		}
		want = kafkaCounters{
			"KafkaRecords": want["KafkaRecords"] + 1,
			"KafkaBytes":   want["KafkaBytes"] + int64(len(recs[i].Value)),
			"KafkaLines":   want["KafkaLines"] + int64(strings.Count(recs[i].Value, "\n")),
			"KafkaErrors":  0,
		}
	}
	got, _ := st.Bytes()
	fromGraphite, graphiteSelf := splitKafkaSelf(t, got)
	sameSelf(t, graphiteSelf, self)
	exp := loadExpectation(t, caseName)
	for dst, lines := range map[string][]byte{"kafka": fromKafka, "graphite": fromGraphite} {
		for _, m := range enginetest.Compare(exp.text(eps...), lines, false) {
			if m.Counted {
				t.Errorf("%s: %s", dst, m)
			}
		}
	}
}

// kafkaWatch is kcat consuming the topic's only partition as records
// arrive, feeding the lines of each record to a tally as it is read: the
// spool audits check, as each snapshot leaves the spool, that its lines
// are in Kafka. kcat gives up when its only broker is down; the watch
// then starts it again, from the offset after the last record read.
type kafkaWatch struct {
	stop, done chan struct{}

	mu      sync.Mutex
	cmd     *exec.Cmd // the kcat running now
	stopped bool

	// Written by the watch's goroutine, read once it is done.
	lastErr string   // the last kcat that failed, and what it wrote
	bad     []string // records that are not whole lines
}

// watchKafka starts watching topic at addr; it stops at cleanup, killing
// kcat by PID.
func watchKafka(t *testing.T, addr, topic string, ta *tally) *kafkaWatch {
	t.Helper()
	bin := testenv.KcatBinary(t)
	w := &kafkaWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		next := int64(0)
		for {
			next = w.consume(bin, addr, topic, next, ta)
			select {
			case <-w.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		w.mu.Lock()
		w.stopped = true
		if w.cmd != nil {
			w.cmd.Process.Kill()
		}
		w.mu.Unlock()
		close(w.stop)
		select {
		case <-w.done:
		case <-time.After(10 * time.Second):
			t.Errorf("kcat still running 10s after SIGKILL")
			return
		}
		if len(w.bad) > 0 {
			t.Errorf("kcat read %d records that are not whole lines, e.g. %.300s", len(w.bad), w.bad[0])
		}
		if t.Failed() && w.lastErr != "" {
			t.Logf("the last kcat that failed: %s", w.lastErr)
		}
	})
	return w
}

// consume runs kcat from offset next until it exits (the broker down) or
// the watch stops, and returns the offset after the last record read.
func (w *kafkaWatch) consume(bin, addr, topic string, next int64, ta *tally) int64 {
	cmd := exec.Command(bin, "-C", "-J", "-u", "-q", "-p", "0", "-o", strconv.FormatInt(next, 10), "-b", addr, "-t", topic)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		w.lastErr = err.Error()
		return next
	}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return next
	}
	if err := cmd.Start(); err != nil {
		w.mu.Unlock()
		w.lastErr = err.Error()
		return next
	}
	w.cmd = cmd
	w.mu.Unlock()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		var m struct {
			Offset  int64  `json:"offset"`
			Payload string `json:"payload"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			break // cut short by its exit: read again from next
		}
		if m.Offset != next {
			continue
		}
		next++
		if !strings.HasSuffix(m.Payload, "\n") {
			w.bad = append(w.bad, m.Payload)
			continue
		}
		ta.add([]byte(m.Payload))
	}
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		w.lastErr = fmt.Sprintf("kcat from offset %d: %v\n%s", next, err, tail(stderr.String(), 20))
	}
	return next
}

// awaitKafka waits at most 30s for every key to be in the tally of a
// kafkaWatch; on a timeout it reports how many are missing and how many
// records kcat reads from the beginning.
func awaitKafka(t *testing.T, k *testenv.Kafka, kt *tally, keys []string) {
	t.Helper()
	awaitAll(t, kt, 30*time.Second, "every line in Kafka", keys, func() string {
		return fmt.Sprintf("kcat reads %d records from the beginning", len(testenv.KcatConsume(t, k.Addr(), kafkaTopic)))
	})
}

// kafkaOnly returns Graphite's or Kafka's lines without the Kafka
// self-metrics, as strings for checkAtLeastOnce, and checks that every
// snapshot of eps has them at least once.
func kafkaOnly(t *testing.T, data []byte, eps []int64) []string {
	t.Helper()
	rest, self := splitKafkaSelf(t, data)
	atLeastOncePerSnapshot(t, self, names(eps))
	return strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n")
}

// TestKafkaBrokerDownAtStart starts the daemon with three snapshots waiting
// while the broker is down (nothing listens on its port) and Graphite is
// up: Graphite gets every line, yet the snapshots must stay in the spool,
// for Kafka has not acknowledged them; the broker comes up on that port
// 3s later, and every line must arrive in Kafka and the spool empty. No
// connection failed after a line was sent: each line must arrive once at
// each destination.
func TestKafkaBrokerDownAtStart(t *testing.T) {
	t.Parallel()
	testenv.KcatBinary(t)
	const caseName = "medium-defaults"
	exp := loadExpectation(t, caseName)
	k := testenv.NewKafka(t, testenv.KafkaConfig{Topics: []string{kafkaTopic}})
	gt := newTally()
	st := testenv.StartRecorder(t, testenv.RecorderOptions{OnLines: gt.add})
	s := newScratch(t, caseName, st.Port(), "", patientWrites)
	s.addKafka(t, k, kafkaTopic, "")
	eps := epochs(1795507862, 3)
	s.putCopies(t, caseSnapshot(t, caseName), eps)
	p := s.start(t)
	awaitAll(t, gt, 60*time.Second, "Graphite to receive every line", allKeys(exp, eps), nil)
	time.Sleep(3 * time.Second)
	if left := s.left(t); len(left) != len(eps) {
		t.Errorf("with the broker down, the spool holds %v, want all of %v: a snapshot left before Kafka had it", left, names(eps))
	}
	k.Start()
	up := time.Now()
	kt := newTally()
	watchKafka(t, k.Addr(), kafkaTopic, kt)
	waitFor(t, 60*time.Second, "the spool to empty", func() bool { return len(s.left(t)) == 0 })
	awaitKafka(t, k, kt, allKeys(exp, eps))
	t.Logf("all %d snapshots delivered %v after the broker came up", len(eps), time.Since(up).Round(time.Millisecond))
	got := stopAndCollect(t, p, st)
	checkExactlyOnce(t, exp, eps, received{lines: kafkaOnly(t, []byte(strings.Join(got.lines, "\n")), eps), conns: got.conns, truncated: got.truncated})
	recs := testenv.KcatConsume(t, k.Addr(), kafkaTopic)
	lines := kafkaOnly(t, checkKafkaRecords(t, recs, 65536), eps)
	if dups := checkAtLeastOnce(t, exp, eps, lines); dups != 0 {
		t.Errorf("Kafka holds %d duplicate lines; nothing was sent before the broker came up, want none", dups)
	}
	if !strings.Contains(p.log.String(), "kafka: cannot connect to broker") {
		t.Errorf("the daemon did not log the broker down:\n%s", p.stderr())
	}
}

// auditBoth checks, as each snapshot of eps leaves the spool, that its
// lines have all arrived in Graphite (gt) and in Kafka (kt) within grace.
func auditBoth(s *scratch, exp *expectation, eps []int64, gt, kt *tally, grace time.Duration) *spoolAudit {
	return auditSpoolExplained(s.incoming, names(eps), grace, func(n string) bool {
		e, _ := strconv.ParseInt(n, 10, 64)
		return gt.hasAll(exp.keys(e)) && kt.hasAll(exp.keys(e))
	}, func(n string) string {
		e, _ := strconv.ParseInt(n, 10, 64)
		keys := exp.keys(e)
		return fmt.Sprintf("Graphite lacks %d of its %d lines, Kafka %d", len(keys)-gt.countArrived(keys), len(keys), len(keys)-kt.countArrived(keys))
	})
}

// TestKafkaBrokerKilledMidRun kills the broker (SIGKILL) while the daemon
// delivers 30 snapshots, renames 5 more into the spool (earlier epochs: they
// are taken next), keeps the broker down 4 s and starts it again on the same
// port and data directory. None of the 5 may leave the spool while the
// broker is down (none of their records can have been acknowledged; the
// first 30 may: records acknowledged before the kill, Graphite behind); no
// snapshot may leave before all its lines are in Kafka and Graphite
// (checked as each one leaves); every line must arrive; duplicates are
// counted.
func TestKafkaBrokerKilledMidRun(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	exp := loadExpectation(t, caseName)
	k := testenv.StartKafka(t)
	gt, kt := newTally(), newTally()
	// A Graphite that reads slowly (3 MB/s, small buffers and queue) keeps
	// the run going while the broker is down, and paces the processing.
	st := testenv.StartRecorder(t, testenv.RecorderOptions{ReadSize: 64 << 10, ReadPause: 20 * time.Millisecond, RcvBuf: 256 << 10, OnLines: gt.add})
	watchKafka(t, k.Addr(), kafkaTopic, kt)
	s := newScratch(t, caseName, st.Port(), "", "queue-size = 20000\n"+patientWrites)
	s.addKafka(t, k, kafkaTopic, "")
	eps := epochs(1795500100, 30)
	late := epochs(1795500000, 5)
	all := append(late, eps...)
	s.putCopies(t, caseSnapshot(t, caseName), eps)
	// The grace covers the broker's down time: nothing can be read then.
	audit := auditBoth(s, exp, eps, gt, kt, 30*time.Second)
	p := s.start(t)
	waitFor(t, 60*time.Second, "3 snapshots to be delivered", func() bool { return audit.removed() >= 3 })
	k.Kill()
	killed := len(s.left(t))
	if killed == 0 {
		t.Fatal("every snapshot was delivered before the broker was killed: the test did not kill in the middle")
	}
	s.putCopies(t, caseSnapshot(t, caseName), late)
	lateAudit := auditBoth(s, exp, late, gt, kt, 30*time.Second)
	time.Sleep(4 * time.Second)
	for _, n := range names(late) {
		if _, err := os.Stat(filepath.Join(s.incoming, n)); err != nil {
			t.Errorf("snapshot %s, renamed in with the broker down, left the spool before the broker came back (%v)", n, err)
		}
	}
	k.Start()
	waitFor(t, 60*time.Second, "the spool to empty", func() bool { return len(s.left(t)) == 0 })
	awaitKafka(t, k, kt, allKeys(exp, all))
	got := stopAndCollect(t, p, st)
	for _, v := range append(audit.finish(), lateAudit.finish()...) {
		t.Error(v)
	}
	gdups := checkAtLeastOnce(t, exp, all, kafkaOnly(t, []byte(strings.Join(got.lines, "\n")), all))
	recs := testenv.KcatConsume(t, k.Addr(), kafkaTopic)
	kdups := checkAtLeastOnce(t, exp, all, kafkaOnly(t, checkKafkaRecords(t, recs, 65536), all))
	t.Logf("broker killed with %d of %d snapshots in the spool, %d more renamed in; %d records; duplicates: Kafka %d lines, Graphite %d lines",
		killed, len(eps), len(late), len(recs), kdups, gdups)
}

// TestKafkaDaemonKill9 queues 30 snapshots, delivers them to Kafka and to a
// Graphite that reads slowly, kills the daemon with SIGKILL once a few have
// left the spool, and starts it again: every line must arrive at both
// destinations, no snapshot may leave the spool before all its lines are
// in both (checked as each one leaves), and the restarted daemon may send
// again only the snapshots still in the spool at the kill, to either
// destination. Duplicates are counted.
func TestKafkaDaemonKill9(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	exp := loadExpectation(t, caseName)
	k := testenv.StartKafka(t)
	gt, kt := newTally(), newTally()
	st := testenv.StartRecorder(t, testenv.RecorderOptions{ReadSize: 128 << 10, ReadPause: 10 * time.Millisecond, OnLines: gt.add})
	watchKafka(t, k.Addr(), kafkaTopic, kt)
	s := newScratch(t, caseName, st.Port(), "", quickRetries+patientWrites)
	s.addKafka(t, k, kafkaTopic, "")
	eps := epochs(1795500000, 30)
	s.putCopies(t, caseSnapshot(t, caseName), eps)
	// The grace is the readers' lag behind what the destinations
	// acknowledged (kcat, the recorder, the tallies: the test's own
	// process, under the race detector, on a machine the daemons, brokers
	// and other tests load too); a snapshot removed before its records
	// were acknowledged loses them with the killed daemon, and they never
	// arrive, whatever the grace.
	audit := auditBoth(s, exp, eps, gt, kt, 30*time.Second)
	p := s.start(t)
	left := killMidway(t, s, p, audit)
	drain(t, st, 10*time.Second)
	_, _, connsBefore := st.Counts()
	recsBefore := len(testenv.KcatConsume(t, k.Addr(), kafkaTopic))

	p2 := s.start(t)
	s.awaitDelivery(t, 60*time.Second, gt, allKeys(exp, eps))
	awaitKafka(t, k, kt, allKeys(exp, eps))
	got := stopAndCollect(t, p2, st)
	for _, v := range audit.finish() {
		t.Error(v)
	}
	gdups := checkAtLeastOnce(t, exp, eps, kafkaOnly(t, []byte(strings.Join(got.lines, "\n")), eps))
	recs := testenv.KcatConsume(t, k.Addr(), kafkaTopic)
	kdups := checkAtLeastOnce(t, exp, eps, kafkaOnly(t, checkKafkaRecords(t, recs, 65536), eps))
	t.Logf("SIGKILL with %d of %d snapshots removed, %d records in Kafka; in the end %d records; duplicates: Kafka %d lines (%.1f snapshots' worth), Graphite %d lines",
		len(eps)-len(left), len(eps), recsBefore, len(recs), kdups, float64(kdups)/float64(len(exp.lines)), gdups)

	resent := map[string]int{}
	after, _ := st.Lines(connsBefore)
	for _, l := range after {
		if ts := l[strings.LastIndexByte(l, ' ')+1:]; !left[ts] {
			resent["graphite "+ts]++
		}
	}
	for _, r := range recs[min(recsBefore, len(recs)):] {
		for _, l := range strings.Split(strings.TrimSuffix(r.Value, "\n"), "\n") {
			if ts := l[strings.LastIndexByte(l, ' ')+1:]; !left[ts] {
				resent["kafka "+ts]++
			}
		}
	}
	for what, n := range resent {
		t.Errorf("the restarted daemon sent %d lines to %s, a snapshot removed from the spool before the kill", n, what)
	}
}

// TestKafkaStopBrokerUnreachable points the daemon at a broker that
// refuses connections (nothing listens) or that accepts them and never
// answers, with Graphite up: Graphite gets every line, the snapshots stay in
// the spool; SIGTERM must make the daemon exit 0 within 2 s (nothing can be
// delivered: the stop timeout, 10 s, does not apply), leaving them there.
func TestKafkaStopBrokerUnreachable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		broker func(t *testing.T) int // returns the port
	}{
		{"refused", func(t *testing.T) int { return testenv.FreePort(t) }},
		{"silent", func(t *testing.T) int {
			return testenv.StartRecorder(t, testenv.RecorderOptions{NoRead: true}).Port()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const caseName = "medium-defaults"
			exp := loadExpectation(t, caseName)
			gt := newTally()
			st := testenv.StartRecorder(t, testenv.RecorderOptions{OnLines: gt.add})
			s := newScratch(t, caseName, st.Port(), "", "")
			s.addKafkaSection(t, fmt.Sprintf("[kafka]\nbrokers = 127.0.0.1:%d\ntopic = %s\ndial-timeout = 1\nretry-backoff = 0.05\nretry-backoff-max = 0.5\n",
				tt.broker(t), kafkaTopic))
			eps := epochs(1795500000, 3)
			s.putCopies(t, caseSnapshot(t, caseName), eps)
			p := s.start(t)
			awaitAll(t, gt, 60*time.Second, "Graphite to receive every line", allKeys(exp, eps), nil)
			time.Sleep(2 * time.Second)
			if left := s.left(t); len(left) != len(eps) {
				t.Errorf("with the broker unreachable, the spool holds %v, want %v", left, names(eps))
			}
			took := p.term(t, 28*time.Second)
			t.Logf("exit 0 %v after SIGTERM", took.Round(time.Millisecond))
			// The daemon sees the stall at once (the records have waited
			// for more than 1.5 s), and the producer does not wait for
			// them again.
			checkStopLeft(t, s, p, eps, took, 2*time.Second)
		})
	}
}

// TestKafkaGraphiteHoldsSnapshot: a snapshot leaves the spool only when
// Graphite has it too. Graphite is first down (nothing listens: the
// snapshots wait unread, Kafka gets nothing), then accepts connections and
// never reads (Kafka gets every line; the snapshots must stay in the
// spool, Graphite has acknowledged nothing), then resets the connections
// and comes back reading: every line must arrive in Graphite, once, and in
// Kafka (the snapshots processed again: duplicates counted), and the spool
// empty.
func TestKafkaGraphiteHoldsSnapshot(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	exp := loadExpectation(t, caseName)
	k := testenv.StartKafka(t)
	kt := newTally()
	watchKafka(t, k.Addr(), kafkaTopic, kt)
	port := testenv.FreePort(t)
	s := newScratch(t, caseName, port, "", quickRetries+patientWrites)
	s.addKafka(t, k, kafkaTopic, "")
	eps := epochs(1795507862, 3)
	s.putCopies(t, caseSnapshot(t, caseName), eps)
	p := s.start(t)

	time.Sleep(2 * time.Second)
	if left := s.left(t); len(left) != len(eps) {
		t.Errorf("with Graphite down, the spool holds %v, want all of %v", left, names(eps))
	}
	if recs := testenv.KcatConsume(t, k.Addr(), kafkaTopic); len(recs) != 0 {
		t.Errorf("with Graphite down, Kafka got %d records, want none (the snapshots wait unread)", len(recs))
	}

	t.Run("graphite never reads", func(t *testing.T) {
		// The recorder lives as long as this subtest: its end resets the
		// connections, with the lines unread.
		st := testenv.StartRecorder(t, testenv.RecorderOptions{Port: port, NoRead: true, RcvBuf: 32 << 10})
		awaitKafka(t, k, kt, allKeys(exp, eps))
		time.Sleep(time.Second)
		if left := s.left(t); len(left) != len(eps) {
			t.Errorf("Kafka has every line and Graphite none, yet the spool holds %v, want all of %v", left, names(eps))
		}
		if _, _, conns := st.Counts(); conns == 0 {
			t.Error("the daemon never connected to Graphite")
		}
	})

	gt := newTally()
	st := testenv.StartRecorder(t, testenv.RecorderOptions{Port: port, OnLines: gt.add})
	s.awaitDelivery(t, 60*time.Second, gt, allKeys(exp, eps))
	got := stopAndCollect(t, p, st)
	checkExactlyOnce(t, exp, eps, received{lines: kafkaOnly(t, []byte(strings.Join(got.lines, "\n")), eps), conns: got.conns, truncated: got.truncated})
	recs := testenv.KcatConsume(t, k.Addr(), kafkaTopic)
	dups := checkAtLeastOnce(t, exp, eps, kafkaOnly(t, checkKafkaRecords(t, recs, 65536), eps))
	t.Logf("Kafka: %d records, %d duplicate lines (the snapshots were processed again once Graphite reset)", len(recs), dups)
}

// TestKafkaLineTooLong gives a backend a 1,100-byte name, so that its lines
// do not fit in a record (max-record-bytes = 1024): the daemon treats that
// as permanent. Those lines are not produced to Kafka, and every other line
// is; the refusal is logged, naming the line, and counted in KafkaErrors;
// Graphite gets every line, once, and the snapshots leave the spool instead
// of being processed again and again.
func TestKafkaLineTooLong(t *testing.T) {
	t.Parallel()
	const caseName = "dots-defaults"
	long := "static_cdn_" + strings.Repeat("x", 1100) // no dot: a path name as written
	snap := filepath.Join(t.TempDir(), "snap")
	if err := os.CopyFS(snap, os.DirFS(caseSnapshot(t, caseName))); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(snap, "*_stat"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, bytes.ReplaceAll(data, []byte("static.cdn,"), []byte(long+",")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k := testenv.StartKafka(t)
	st := testenv.NewRecorder(t, 0)
	s := newScratch(t, caseName, st.Port(), "workers = 1\n", patientWrites)
	s.addKafka(t, k, kafkaTopic, "max-record-bytes = 1024\n")
	p := s.start(t)
	// Two snapshots with the long lines, one at a time, then a third
	// without, once both have left the spool: its KafkaErrors counts
	// both snapshots' refused lines.
	eps := epochs(1795600000, 3)
	for i, e := range eps {
		src := snap
		if i == 2 {
			src = caseSnapshot(t, caseName)
		}
		s.put(t, src, e)
		waitFor(t, 30*time.Second, fmt.Sprintf("snapshot %d to leave the spool", e), func() bool { return len(s.left(t)) == 0 })
	}
	got := stopAndCollect(t, p, st)

	graphite := []byte(strings.Join(got.lines, "\n") + "\n")
	fromGraphite, self := splitKafkaSelf(t, graphite)
	// Graphite has every line once: expected.txt, the backend renamed in
	// the first two snapshots.
	exp := loadExpectation(t, caseName)
	want := strings.ReplaceAll(string(exp.text(eps[:2]...)), ".static_cdn.", "."+long+".") + string(exp.text(eps[2]))
	if !strings.Contains(want, long) {
		t.Fatal("the renamed backend is in no expected line")
	}
	for _, m := range enginetest.Compare([]byte(want), fromGraphite, false) {
		t.Errorf("graphite: %s", m)
	}
	var short bytes.Buffer
	perSnapshot := map[string]int{}
	for _, l := range got.lines {
		if len(l)+1 > 1024 {
			perSnapshot[l[strings.LastIndexByte(l, ' ')+1:]]++
			continue
		}
		short.WriteString(l + "\n")
	}
	first, third := names(eps)[0], names(eps)[2]
	if perSnapshot[first] == 0 || perSnapshot[first] != perSnapshot[names(eps)[1]] || perSnapshot[third] != 0 {
		t.Fatalf("lines longer than 1024 bytes per snapshot in Graphite: %v, want the same number > 0 in the first two, none in %s", perSnapshot, third)
	}
	// Kafka has Graphite's lines but the long ones, each once, the Kafka
	// self-metrics included.
	recs := testenv.KcatConsume(t, k.Addr(), kafkaTopic)
	for _, m := range enginetest.Compare(short.Bytes(), checkKafkaRecords(t, recs, 1024), false) {
		t.Errorf("kafka, compared with Graphite's lines up to 1024 bytes: %s", m)
	}
	counters := onePerSnapshot(t, self, names(eps))
	if got, want := counters[third]["KafkaErrors"], int64(2*perSnapshot[first]); got != want {
		t.Errorf("KafkaErrors of %s = %d, want %d: the long lines of the two snapshots before it", third, got, want)
	}
	log := p.log.String()
	if !strings.Contains(log, "max-record-bytes") || !strings.Contains(log, "static_cdn_xxxx") {
		t.Errorf("the daemon did not log the refused line, naming it:\n%s", p.stderr())
	}
	if strings.Contains(log, "sent again") {
		t.Errorf("a snapshot was processed again for its long lines:\n%s", p.stderr())
	}
}

// TestKafkaRefusesBadFiles: a [kafka] TLS file that cannot be read is found
// when the daemon starts, which then refuses to run (exit 1), naming the
// option and the file.
func TestKafkaRefusesBadFiles(t *testing.T) {
	t.Parallel()
	s := newScratch(t, "dots-defaults", testenv.FreePort(t), "", "")
	missing := filepath.Join(t.TempDir(), "no-such-ca.pem")
	s.addKafkaSection(t, fmt.Sprintf("[kafka]\nbrokers = 127.0.0.1:%d\ntls-ca-file = %s\n", testenv.FreePort(t), missing))
	p := s.start(t)
	if !p.wait(30 * time.Second) {
		t.Fatal("the daemon did not exit within 30s with an unreadable tls-ca-file")
	}
	if p.err == nil {
		t.Fatalf("the daemon exited 0 with an unreadable tls-ca-file:\n%s", p.stderr())
	}
	if log := p.log.String(); !strings.Contains(log, "tls-ca-file") || !strings.Contains(log, missing) {
		t.Errorf("the refusal does not name tls-ca-file and %s:\n%s", missing, p.stderr())
	}
}
