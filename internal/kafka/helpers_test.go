package kafka_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/kafka"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// The daemon's view of a destination (owned by internal/process). The
// producer's methods return concrete types, and Go has no covariant return
// types, so the daemon plugs the producer in through an adapter like
// destinationAdapter; the tests use it, so this shape is checked here.
type (
	destination interface {
		Name() string
		Run(ctx context.Context) error
		Open(ctx context.Context, snapshot string) (stream, error)
	}
	stream interface {
		Write(p []byte) (int, error)
		Finish() waiter
		Abort()
	}
	waiter interface {
		Wait(ctx context.Context) error
	}
)

type destinationAdapter struct{ *kafka.Producer }

func (a destinationAdapter) Open(ctx context.Context, snapshot string) (stream, error) {
	s, err := a.Producer.Open(ctx, snapshot)
	if err != nil {
		return nil, err
	}
	return streamAdapter{s}, nil
}

type streamAdapter struct{ *kafka.Stream }

func (s streamAdapter) Finish() waiter { return s.Stream.Finish() }

var _ destination = destinationAdapter{}

// testKey is the record key the tests give: a host name.
const testKey = "lb1.example.com"

// testConfig is a producer configuration for a broker at addr, with short
// backoffs and records of at most 4 KiB.
func testConfig(addr, topic string) kafka.Config {
	return kafka.Config{
		Brokers:          []string{addr},
		Topic:            topic,
		ClientID:         "haproxystats-test",
		Compression:      "snappy",
		DialTimeout:      time.Second,
		RequestTimeout:   5 * time.Second,
		ProduceTimeout:   5 * time.Second,
		RetryBackoff:     20 * time.Millisecond,
		RetryBackoffMax:  250 * time.Millisecond,
		MaxRecordBytes:   4096,
		MaxBufferedBytes: 1 << 20,
		Key:              testKey,
		FlushTimeout:     20 * time.Second,
	}
}

// running is a producer whose Run goroutine the test owns.
type running struct {
	p      destination
	prod   *kafka.Producer
	cancel context.CancelFunc
	done   chan error
	logs   *testenv.Buffer
}

// start creates the producer and runs it until stop or the end of the
// test.
func start(t testing.TB, cfg kafka.Config) *running {
	t.Helper()
	logs := &testenv.Buffer{}
	p, err := kafka.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	return run(t, p, logs)
}

func run(t testing.TB, p *kafka.Producer, logs *testenv.Buffer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: destinationAdapter{p}, prod: p, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() { r.stop(t, time.Minute) })
	return r
}

// stop cancels Run's context and waits at most within for Run to return;
// it returns how long that took.
func (r *running) stop(t testing.TB, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(within):
		t.Fatalf("Run did not return within %v of its context's end; log:\n%s", within, r.logs.String())
	}
	return time.Since(began)
}

// send writes lines to a new stream of snapshot in writes of chunk lines,
// finishes it and returns its waiter.
func send(t *testing.T, d destination, snapshot string, lines []string, chunk int) waiter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := d.Open(ctx, snapshot)
	if err != nil {
		t.Fatalf("Open(%s): %v", snapshot, err)
	}
	for i := 0; i < len(lines); i += chunk {
		var b bytes.Buffer
		for _, l := range lines[i:min(i+chunk, len(lines))] {
			b.WriteString(l + "\n")
		}
		if n, err := s.Write(b.Bytes()); err != nil || n != b.Len() {
			t.Fatalf("Write of %d bytes (snapshot %s, line %d) = %d, %v", b.Len(), snapshot, i, n, err)
		}
	}
	return s.Finish()
}

// wait waits for w, at most within.
func wait(t *testing.T, w waiter, within time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	err := w.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait did not return within %v", within)
	}
	return err
}

// mustDeliver waits for w and fails the test unless it reports success.
func (r *running) mustDeliver(t *testing.T, w waiter) {
	t.Helper()
	if err := wait(t, w, time.Minute); err != nil {
		t.Fatalf("Wait() = %v, want nil; stats %+v; log:\n%s", err, r.prod.Stats(), r.logs.String())
	}
}

// checkRecords checks the record rules on what kcat read: every record
// has the key, ends with a newline, is at most limit bytes, and all the
// records of the key are in one partition. It returns the values joined
// in partition-offset order.
func checkRecords(t *testing.T, recs []testenv.KafkaRecord, limit int) []byte {
	t.Helper()
	partitions := map[int32]bool{}
	for _, r := range recs {
		partitions[r.Partition] = true
		if r.Key != testKey {
			t.Errorf("record %d/%d has key %q, want %q", r.Partition, r.Offset, r.Key, testKey)
		}
		if !strings.HasSuffix(r.Value, "\n") {
			t.Errorf("record %d/%d does not end with a newline: a line was split; value ends %q", r.Partition, r.Offset, r.Value[max(0, len(r.Value)-60):])
		}
		if len(r.Value) > limit {
			t.Errorf("record %d/%d has %d bytes, more than the limit %d", r.Partition, r.Offset, len(r.Value), limit)
		}
	}
	if len(partitions) > 1 {
		t.Errorf("records of one key in %d partitions, want 1", len(partitions))
	}
	return testenv.KafkaLines(recs)
}

// corpusCase is one conformance case's expected output, as lines to send:
// the `*` of the WallClockTime values replaced by a number.
type corpusCase struct {
	name     string
	expected []byte
	lines    []string
}

func loadCorpus(t testing.TB) []corpusCase {
	t.Helper()
	files, err := filepath.Glob("../../testdata/conformance/*/expected.txt")
	if err != nil || len(files) < 20 {
		t.Fatalf("conformance corpus: %d expected.txt files (%v)", len(files), err)
	}
	var out []corpusCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := corpusCase{name: filepath.Base(filepath.Dir(f)), expected: data}
		for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if l == "" {
				continue
			}
			f := strings.Split(l, " ")
			if f[1] == "*" {
				l = fmt.Sprintf("%s 0.0125 %s", f[0], f[2])
			}
			c.lines = append(c.lines, l)
		}
		out = append(out, c)
	}
	return out
}

// numbered returns n distinct lines of the snapshot tag.
func numbered(tag string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("test.%s.metric%05d %d 1795507862", tag, i, i)
	}
	return out
}

// runLocked runs fn for i in [0, n) on n goroutines and waits.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}
