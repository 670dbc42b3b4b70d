package kafka_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/kafka"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestCorpusArrives sends every line of every conformance case's
// expected.txt, one stream per case, each case to its own topic of three
// partitions, and reads the topics back with kcat: each case's lines arrive
// as written (compared by the corpus rules, duplicates allowed and
// counted), in records of whole lines keyed by the host name, all in one
// partition.
func TestCorpusArrives(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{AutoCreateTopics: true, Partitions: 3})
	corpus := loadCorpus(t)
	lines := 0
	for _, c := range corpus {
		lines += len(c.lines)
		if len(c.lines) == 0 {
			continue // no-zlib-info: the reference sent nothing
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(k.Addr(), "corpus-"+c.name)
			r := start(t, cfg)
			r.mustDeliver(t, send(t, r.p, c.name, c.lines, 37))
			got := checkRecords(t, testenv.KcatConsume(t, k.Addr(), cfg.Topic), cfg.MaxRecordBytes)
			mismatches, dups := testenv.CompareAtLeastOnce(c.expected, got)
			for i, m := range mismatches {
				if i == 10 {
					t.Errorf("... %d mismatches in all", len(mismatches))
					break
				}
				t.Errorf("%s", m)
			}
			if dups > 0 {
				t.Logf("%d duplicate lines", dups)
			}
			if st := r.prod.Stats(); st.Lines != uint64(len(c.lines)) || st.Errors != 0 || st.BufferedBytes != 0 {
				t.Errorf("Stats() = %+v, want %d lines acknowledged, no error, nothing buffered", st, len(c.lines))
			}
		})
	}
	t.Logf("%d cases, %d lines", len(corpus), lines)
}

// TestRecordsPackWholeLines checks the packing rules on one stream: lines
// in the order written, several per record up to the limit (a record ends
// only because the next line would not fit), never a line split, a line of
// exactly the limit in a record of its own.
func TestRecordsPackWholeLines(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafka(t)
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	cfg.MaxRecordBytes = 1024
	r := start(t, cfg)
	var lines []string
	for i := range 300 {
		// Lengths from 20 to about 400 bytes.
		lines = append(lines, fmt.Sprintf("a.%s.m%d %d 1795507862", strings.Repeat("x", (i*37)%380), i, i))
	}
	exact := "b." + strings.Repeat("y", 1024-len("b. 1 1795507862\n")) + " 1 1795507862"
	lines = append(lines[:150], append([]string{exact}, lines[150:]...)...)
	r.mustDeliver(t, send(t, r.p, "1795507862", lines, 7))

	recs := testenv.KcatConsume(t, k.Addr(), cfg.Topic)
	got := checkRecords(t, recs, cfg.MaxRecordBytes)
	if want := strings.Join(lines, "\n") + "\n"; string(got) != want {
		t.Fatalf("records joined differ from the lines written (%d bytes, want %d)", len(got), len(want))
	}
	for i, rec := range recs[:len(recs)-1] {
		next := recs[i+1].Value[:strings.IndexByte(recs[i+1].Value, '\n')+1]
		if len(rec.Value)+len(next) <= cfg.MaxRecordBytes {
			t.Errorf("record %d has %d bytes and the next line %d: it could have held it", rec.Offset, len(rec.Value), len(next))
		}
	}
	found := false
	for _, rec := range recs {
		found = found || rec.Value == exact+"\n"
	}
	if !found {
		t.Errorf("the line of exactly %d bytes is not a record of its own", cfg.MaxRecordBytes)
	}
	st := r.prod.Stats()
	if st.Records != uint64(len(recs)) || st.Lines != uint64(len(lines)) || st.Bytes != uint64(len(got)) {
		t.Errorf("Stats() = %+v, want %d records, %d lines, %d bytes", st, len(recs), len(lines), len(got))
	}
	t.Logf("%d lines in %d records of at most %d bytes", len(lines), len(recs), cfg.MaxRecordBytes)
}

// TestLineTooLongLeftOut: a line longer than the limit is left out of the
// records, never split; the stream goes on with the lines around it, its
// delivery succeeds (sending the snapshot again would not change it), the
// line counts in Stats().Errors and is logged, naming it, once per path
// every 30 s.
func TestLineTooLongLeftOut(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafka(t)
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	cfg.MaxRecordBytes = 1024
	r := start(t, cfg)
	ctx := context.Background()
	s, err := r.p.Open(ctx, "1795507862")
	if err != nil {
		t.Fatal(err)
	}
	before := "ok.before 1 1795507862\n"
	long := "too.long." + strings.Repeat("z", 1100) + " 2 1795507862\n"
	after := "ok.after 3 1795507862\n"
	// A record already filling up, then the long line: the record is
	// produced without it.
	filler := strings.Repeat("ok.filler 5 1795507862\n", 30)
	chunk := before + filler + long + after
	if n, err := s.Write([]byte(chunk)); err != nil || n != len(chunk) {
		t.Fatalf("Write with a line of %d bytes = %d, %v, want %d, nil", len(long), n, err, len(chunk))
	}
	later := long + "ok.later 4 1795507862\n"
	if n, err := s.Write([]byte(later)); err != nil || n != len(later) {
		t.Errorf("Write starting with the long line again = %d, %v, want %d, nil", n, err, len(later))
	}
	r.mustDeliver(t, s.Finish())
	if st := r.prod.Stats(); st.Errors != 2 {
		t.Errorf("Stats().Errors = %d, want 2 (the long line, twice)", st.Errors)
	}
	got := checkRecords(t, testenv.KcatConsume(t, k.Addr(), cfg.Topic), cfg.MaxRecordBytes)
	if want := before + filler + after + "ok.later 4 1795507862\n"; string(got) != want {
		t.Errorf("kcat read %q, want %q", got, want)
	}
	logs := r.logs.String()
	if n := strings.Count(logs, "line left out of the records"); n != 1 {
		t.Errorf("the long line was logged %d times, want once (throttled):\n%s", n, logs)
	}
	if !strings.Contains(logs, "too.long.zzz") || !strings.Contains(logs, "max-record-bytes (1024)") || !strings.Contains(logs, "1795507862") {
		t.Errorf("the log does not name the line, the limit and the snapshot:\n%s", logs)
	}
}

// TestStalledCountsFromTheWait: Stalled(d) holds only once records have
// waited d with nothing finished, counted from when they started waiting,
// not from the last record acknowledged long before (an idle producer's
// first records are not stalled); once stalled, the final flush does not
// wait StallTimeout again.
func TestStalledCountsFromTheWait(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafka(t)
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	cfg.FlushTimeout = 10 * time.Minute
	r := start(t, cfg)
	r.mustDeliver(t, send(t, r.p, "1795507862", numbered("first", 10), 10))
	const d = 500 * time.Millisecond
	time.Sleep(2 * d)
	if r.prod.Stalled(d) {
		t.Error("Stalled with nothing waiting")
	}
	k.Stop()
	w := send(t, r.p, "1795507872", numbered("second", 10), 10)
	if r.prod.Stalled(d) {
		t.Errorf("Stalled(%v) as soon as records wait, the last acknowledgement %v before", d, 2*d)
	}
	waitFor(t, 10*time.Second, "Stalled once the records waited", func() bool { return r.prod.Stalled(d) })
	time.Sleep(kafka.DefaultStallTimeout)
	took := r.stop(t, time.Minute)
	t.Logf("Run returned %v after its context ended, the records waiting for more than %v", took.Round(time.Millisecond), kafka.DefaultStallTimeout)
	if took >= kafka.DefaultStallTimeout {
		t.Errorf("Run took %v to give up records that had waited %v already, want less than the stall timeout", took, kafka.DefaultStallTimeout)
	}
	if err := wait(t, w, time.Second); err == nil {
		t.Error("the delivery of records never acknowledged succeeded")
	}
}

// TestWriteNeedsWholeLines: a write that does not end with a newline is
// refused before anything of it is taken.
func TestWriteNeedsWholeLines(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafka(t)
	r := start(t, testConfig(k.Addr(), "haproxystats-metrics"))
	s, err := r.p.Open(context.Background(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Write([]byte("a 1 1\nb 2")); err == nil || n != 0 || !strings.Contains(err.Error(), "newline") {
		t.Errorf("Write of a partial line = %d, %v, want 0 and an error about the newline", n, err)
	}
	s.Abort()
	if _, err := s.Write([]byte("a 1 1\n")); err == nil {
		t.Error("Write after Abort succeeded")
	}
}

// TestBrokerDownAtOpen: with the broker down, Open succeeds and the lines
// wait in the producer (the delivery does not report success); once the
// broker is up they are delivered.
func TestBrokerDownAtOpen(t *testing.T) {
	t.Parallel()
	k := testenv.NewKafka(t, testenv.KafkaConfig{Topics: []string{"haproxystats-metrics"}})
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	r := start(t, cfg)
	lines := numbered("down", 500)
	w := send(t, r.p, "1795507862", lines, 50)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := w.Wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with the broker down = %v, want the context's deadline", err)
	}
	if st := r.prod.Stats(); st.Records != 0 || st.BufferedBytes == 0 {
		t.Errorf("Stats() with the broker down = %+v, want nothing acknowledged, bytes buffered", st)
	}
	k.Start()
	r.mustDeliver(t, w)
	got := checkRecords(t, testenv.KcatConsume(t, k.Addr(), cfg.Topic), cfg.MaxRecordBytes)
	requireLines(t, got, lines)
	if !strings.Contains(r.logs.String(), "kafka: cannot connect to broker") || !strings.Contains(r.logs.String(), "connected to broker again") {
		t.Errorf("the client's connection failures were not logged:\n%s", r.logs.String())
	}
}

// TestBrokerRestartMidStream stops the broker (SIGTERM, or SIGKILL: a
// crash) in the middle of a stream, its data directory kept, writes the
// rest while it is down, and starts it again: every line arrives,
// duplicates counted.
func TestBrokerRestartMidStream(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		stop func(*testenv.Kafka)
	}{
		{"sigterm", (*testenv.Kafka).Stop},
		{"sigkill", (*testenv.Kafka).Kill},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := testenv.StartKafka(t)
			cfg := testConfig(k.Addr(), "haproxystats-metrics")
			r := start(t, cfg)
			lines := numbered("restart", 4000)
			s, err := r.p.Open(context.Background(), "1795507862")
			if err != nil {
				t.Fatal(err)
			}
			write := func(ls []string) {
				t.Helper()
				if _, err := s.Write([]byte(strings.Join(ls, "\n") + "\n")); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			write(lines[:2000])
			waitFor(t, time.Minute, "a record acknowledged", func() bool { return r.prod.Stats().Records > 0 })
			tt.stop(k)
			write(lines[2000:])
			w := s.Finish()
			time.Sleep(500 * time.Millisecond) // let the producer fail against the stopped broker
			k.Start()
			r.mustDeliver(t, w)
			got := checkRecords(t, testenv.KcatConsume(t, k.Addr(), cfg.Topic), cfg.MaxRecordBytes)
			dups := requireLines(t, got, lines)
			t.Logf("%d lines, %d duplicates; stats %+v", len(lines), dups, r.prod.Stats())
		})
	}
}

// TestStopBrokerUnreachable: Run returns soon after its context ends when
// nothing can be delivered, although FlushTimeout is long: the stall bound
// ends the final flush; every open delivery fails, Open and Write then
// fail with ErrClosed.
func TestStopBrokerUnreachable(t *testing.T) {
	t.Parallel()
	k := testenv.NewKafka(t, testenv.KafkaConfig{Topics: []string{"haproxystats-metrics"}})
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	cfg.FlushTimeout = 10 * time.Minute
	r := start(t, cfg)
	w := send(t, r.p, "1795507862", numbered("stop", 300), 100)
	open, err := r.p.Open(context.Background(), "1795507872")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.Write([]byte("open.stream 1 1795507872\n")); err != nil {
		t.Fatal(err)
	}
	// Bound far below FlushTimeout: only the stall rule can meet it.
	took := r.stop(t, time.Minute)
	t.Logf("Run returned %v after its context ended (stall timeout %v)", took.Round(time.Millisecond), kafka.DefaultStallTimeout)
	if err := wait(t, w, 10*time.Second); err == nil {
		t.Error("the delivery of a stream never acknowledged succeeded")
	} else {
		t.Logf("delivery error: %v", err)
	}
	if _, err := r.p.Open(context.Background(), "1795507882"); !errors.Is(err, kafka.ErrClosed) {
		t.Errorf("Open after the stop = %v, want ErrClosed", err)
	}
	if err := wait(t, open.Finish(), 10*time.Second); !errors.Is(err, kafka.ErrClosed) {
		t.Errorf("Finish of a stream open at the stop: Wait = %v, want ErrClosed", err)
	}
	if !strings.Contains(r.logs.String(), "nothing acknowledged at stop") {
		t.Errorf("no log line about giving up:\n%s", r.logs.String())
	}
}

// TestStopFlushes: at the stop, records produced but not yet acknowledged
// are delivered before Run returns.
func TestStopFlushes(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafka(t)
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	r := start(t, cfg)
	lines := numbered("flush", 3000)
	w := send(t, r.p, "1795507862", lines, 3000)
	r.stop(t, time.Minute)
	if err := wait(t, w, time.Second); err != nil {
		t.Fatalf("Wait after the stop = %v, want nil: the final flush delivers", err)
	}
	requireLines(t, checkRecords(t, testenv.KcatConsume(t, k.Addr(), cfg.Topic), cfg.MaxRecordBytes), lines)
}

// TestBufferBound: with the broker down, Write waits once MaxBufferedBytes
// are held, until Open's context ends; the bytes held stay within the
// bound.
func TestBufferBound(t *testing.T) {
	t.Parallel()
	k := testenv.NewKafka(t, testenv.KafkaConfig{Topics: []string{"haproxystats-metrics"}})
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	cfg.MaxRecordBytes = 1024
	cfg.MaxBufferedBytes = 16 << 10
	r := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := r.p.Open(ctx, "1795507862")
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	written := 0
	for i := 0; i < 10000 && werr == nil; i++ {
		var n int
		n, werr = s.Write([]byte(fmt.Sprintf("bound.metric%05d %d 1795507862\n", i, i)))
		written += n
	}
	if !errors.Is(werr, context.DeadlineExceeded) {
		t.Fatalf("Write with the broker down and a full buffer = %v, want the context's deadline", werr)
	}
	st := r.prod.Stats()
	if st.BufferedBytes > int64(cfg.MaxBufferedBytes) || st.BufferedBytes < int64(cfg.MaxBufferedBytes)/2 {
		t.Errorf("Stats().BufferedBytes = %d, want at most MaxBufferedBytes (%d) and near it", st.BufferedBytes, cfg.MaxBufferedBytes)
	}
	t.Logf("%d bytes written before Write waited; %d buffered", written, st.BufferedBytes)
}

// TestConcurrentStreams: many streams at once (one per worker), under
// -race: every line arrives, a record holds the lines of one stream only,
// and each stream's lines are in order in the partition.
func TestConcurrentStreams(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafka(t)
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	cfg.MaxRecordBytes = 2048
	cfg.MaxBufferedBytes = 64 << 10
	r := start(t, cfg)
	const streams, perStream = 8, 2000
	errs := make([]error, streams)
	parallel(streams, func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := r.p.Open(ctx, fmt.Sprint(i))
		if err != nil {
			errs[i] = err
			return
		}
		lines := numbered(fmt.Sprintf("s%d", i), perStream)
		for j := 0; j < len(lines); j += 13 {
			if _, err := s.Write([]byte(strings.Join(lines[j:min(j+13, len(lines))], "\n") + "\n")); err != nil {
				errs[i] = err
				return
			}
		}
		errs[i] = s.Finish().Wait(ctx)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("stream %d: %v", i, err)
		}
	}
	recs := testenv.KcatConsume(t, k.Addr(), cfg.Topic)
	checkRecords(t, recs, cfg.MaxRecordBytes)
	next := map[string]int{}
	for _, rec := range recs {
		tag := ""
		for _, l := range strings.Split(strings.TrimSuffix(rec.Value, "\n"), "\n") {
			var s string
			var n int
			if _, err := fmt.Sscanf(strings.ReplaceAll(l[len("test."):], ".metric", " "), "%s %d", &s, &n); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			if tag == "" {
				tag = s
			} else if s != tag {
				t.Fatalf("record %d mixes streams %s and %s", rec.Offset, tag, s)
			}
			if n != next[s] {
				t.Fatalf("stream %s: line %d after line %d: out of order or missing", s, n, next[s]-1)
			}
			next[s]++
		}
	}
	for i := range streams {
		if got := next[fmt.Sprintf("s%d", i)]; got != perStream {
			t.Errorf("stream s%d: %d lines arrived, want %d", i, got, perStream)
		}
	}
}

// TestAbortKeepsProduced: after Abort nothing more is produced, but the
// records produced before still arrive.
func TestAbortKeepsProduced(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafka(t)
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	cfg.MaxRecordBytes = 1024
	r := start(t, cfg)
	s, err := r.p.Open(context.Background(), "1795507862")
	if err != nil {
		t.Fatal(err)
	}
	lines := numbered("abort", 100) // about 3.5 KiB: three full records and a partial one
	if _, err := s.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		t.Fatal(err)
	}
	s.Abort()
	if _, err := s.Write([]byte("x 1 1\n")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	waitFor(t, time.Minute, "the produced records", func() bool { return r.prod.Stats().Records == 3 })
	got := checkRecords(t, testenv.KcatConsume(t, k.Addr(), cfg.Topic), cfg.MaxRecordBytes)
	if n := bytes.Count(got, []byte{'\n'}); n == 0 || n >= len(lines) || !bytes.HasPrefix([]byte(strings.Join(lines, "\n")+"\n"), got) {
		t.Errorf("after Abort kcat read %d lines, want the first full records only", n)
	}
}

// TestNameAndRunOnce covers the small parts of the contract.
func TestNameAndRunOnce(t *testing.T) {
	k := testenv.StartKafka(t)
	r := start(t, testConfig(k.Addr(), "haproxystats-metrics"))
	if r.p.Name() != "kafka" {
		t.Errorf("Name() = %q", r.p.Name())
	}
	s, err := r.p.Open(context.Background(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(t, s.Finish(), time.Second); err != nil {
		t.Errorf("an empty stream's delivery = %v, want nil at once", err)
	}
	if err := r.prod.Run(context.Background()); err == nil {
		t.Error("a second Run succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p, err := kafka.New(testConfig(k.Addr(), "t"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Open(ctx, "1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Open before Run with a canceled context = %v, want context.Canceled", err)
	}
}

// requireLines fails the test unless got holds every line of want, in
// any order, duplicates allowed; it returns the number of duplicates.
func requireLines(t *testing.T, got []byte, want []string) (dups int) {
	t.Helper()
	count := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
		count[l]++
	}
	missing := 0
	for _, l := range want {
		switch count[l] {
		case 0:
			if missing < 5 {
				t.Errorf("line %q did not arrive", l)
			}
			missing++
		default:
			dups += count[l] - 1
		}
		delete(count, l)
	}
	if missing > 0 {
		t.Errorf("%d of %d lines did not arrive", missing, len(want))
	}
	for l := range count {
		if l != "" {
			t.Errorf("unexpected line %q", l)
		}
	}
	return dups
}

// waitFor polls cond every 20 ms for at most within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCanceledStreamSparesOthers: the end of one stream's context (its
// worker gave up) does not fail the records of the other streams, although
// they share a partition (one key): franz-go fails every buffered record
// of a partition when the first record's context ends, so records are not
// produced with the stream's context.
func TestCanceledStreamSparesOthers(t *testing.T) {
	t.Parallel()
	k := testenv.NewKafka(t, testenv.KafkaConfig{Topics: []string{"haproxystats-metrics"}})
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	cfg.MaxRecordBytes = 1024
	r := start(t, cfg)
	ctxA, cancelA := context.WithCancel(context.Background())
	a, err := r.p.Open(ctxA, "1795507862")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte(strings.Join(numbered("a", 100), "\n") + "\n")); err != nil {
		t.Fatal(err)
	}
	wb := send(t, r.p, "1795507872", numbered("b", 100), 10)
	// Worker A gives up on its snapshot while the broker is down.
	a.Abort()
	cancelA()
	k.Start()
	r.mustDeliver(t, wb)
	got := checkRecords(t, testenv.KcatConsume(t, k.Addr(), cfg.Topic), cfg.MaxRecordBytes)
	if !bytes.Contains(got, []byte("test.b.metric00099 99 1795507862\n")) {
		t.Error("stream b's last line did not arrive")
	}
}

// TestMissingTopicFails: a topic that does not exist, on a broker that does
// not create topics, fails the delivery (its snapshot stays in the spool)
// instead of waiting forever.
func TestMissingTopicFails(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafka(t)
	r := start(t, testConfig(k.Addr(), "no-such-topic"))
	err := wait(t, send(t, r.p, "1795507862", numbered("missing", 10), 10), time.Minute)
	if err == nil || !strings.Contains(err.Error(), "no-such-topic") {
		t.Fatalf("Wait for a missing topic = %v, want an error naming the topic", err)
	}
	t.Logf("delivery error: %v", err)
	if st := r.prod.Stats(); st.Errors != 1 || st.Records != 0 {
		t.Errorf("Stats() = %+v, want 1 error, no record", st)
	}
}
