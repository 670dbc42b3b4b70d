package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/haproxystats-go/haproxystats/internal/kafka"
	"github.com/haproxystats-go/haproxystats/internal/snaprecord"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

const testHost = "lb1.test"

// fakeSender records what is produced; fail decides the outcome of the
// n-th attempt (from 1) at a snapshot; with hold, deliveries wait until
// Run's context ends and then fail as the producer's stop fails them.
type fakeSender struct {
	fail func(snapshot string, attempt int) error
	hold bool

	mu       sync.Mutex
	attempts map[string]int
	order    []string // snapshots produced, in order
	values   map[string][]byte
	stopped  chan struct{}
}

func newFake() *fakeSender {
	return &fakeSender{attempts: map[string]int{}, values: map[string][]byte{}, stopped: make(chan struct{})}
}

func (f *fakeSender) Run(ctx context.Context) error {
	<-ctx.Done()
	close(f.stopped)
	return nil
}

type fakeDelivery struct {
	done chan struct{}
	err  error
}

func (d *fakeDelivery) Done() <-chan struct{} { return d.done }
func (d *fakeDelivery) Err() error            { return d.err }

func (f *fakeSender) Produce(ctx context.Context, snapshot string, value []byte) (Delivery, error) {
	f.mu.Lock()
	f.attempts[snapshot]++
	n := f.attempts[snapshot]
	f.order = append(f.order, snapshot)
	f.values[snapshot] = bytes.Clone(value)
	f.mu.Unlock()
	d := &fakeDelivery{done: make(chan struct{})}
	if f.hold {
		go func() {
			<-f.stopped
			d.err = kafka.ErrClosed
			close(d.done)
		}()
		return d, nil
	}
	if f.fail != nil {
		d.err = f.fail(snapshot, n)
	}
	close(d.done)
	return d, nil
}

func (f *fakeSender) value(snapshot string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.values[snapshot]
}

func (f *fakeSender) produced() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.order)
}

// spoolOf copies corpus snapshot directories into a new spool, renamed to
// the given epochs, and returns the spool.
func spoolOf(t testing.TB, epochs ...string) string {
	t.Helper()
	src, err := filepath.Glob("../../testdata/conformance/dev4-two-snapshots/incoming/*")
	if err != nil || len(src) == 0 {
		t.Fatalf("corpus snapshot: %v", err)
	}
	dir := t.TempDir()
	for i, e := range epochs {
		copyDir(t, src[i%len(src)], filepath.Join(dir, e))
	}
	return dir
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dirFiles reads every file of dir.
func dirFiles(t testing.TB, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(data)
	}
	return out
}

// recordFiles decodes a record's value into its files, checking its host
// and epoch.
func recordFiles(t testing.TB, value []byte, host, epoch string) map[string]string {
	t.Helper()
	r, err := snaprecord.Parse(value, snaprecord.Limits{MaxBytes: 1 << 30})
	if err != nil {
		t.Fatalf("record of snapshot %s: %v", epoch, err)
	}
	if r.Host != host || r.Epoch != epoch {
		t.Errorf("record of snapshot %s has host %q, epoch %q; want %q, %q", epoch, r.Host, r.Epoch, host, epoch)
	}
	out := map[string]string{}
	for name, data := range r.All() {
		out[name] = string(data)
	}
	return out
}

func testPublisherConfig(dir string) Config {
	return Config{Dir: dir, Host: testHost, MaxSnapshotBytes: snaprecord.DefaultMaxBytes,
		RetryBackoff: 10 * time.Millisecond, RetryBackoffMax: 40 * time.Millisecond, Topic: "haproxystats-snapshots"}
}

// running is a publisher running until the end of the test.
type running struct {
	p    *Publisher
	bg   *testenv.Running
	logs *testenv.Buffer
}

func startPublisher(t testing.TB, cfg Config, s Sender) *running {
	t.Helper()
	logs := &testenv.Buffer{}
	p, err := New(cfg, s, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &running{p: p, bg: testenv.Background(t, "publisher Run", p.Run), logs: logs}
}

// stop ends Run and waits for it; Run must return nil.
func (r *running) stop(t testing.TB) {
	t.Helper()
	if err := r.bg.Stop(t); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// waitEmpty waits (at most a minute) until the spool holds no snapshot.
func waitEmpty(t testing.TB, dir string, r *running) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		entries, err := os.ReadDir(dir)
		if err == nil && len(entries) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool %s still holds %d entries after a minute; stats %+v; log:\n%s", dir, len(entries), r.p.Stats(), r.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPublishesInOrder: every snapshot of the spool is produced once, in
// timestamp order, as the record of its files, and removed.
func TestPublishesInOrder(t *testing.T) {
	epochs := []string{"1700000003", "1700000001", "1700000010", "1700000002"}
	dir := spoolOf(t, epochs...)
	want := map[string]map[string]string{}
	for _, e := range epochs {
		want[e] = dirFiles(t, filepath.Join(dir, e))
	}
	f := newFake()
	r := startPublisher(t, testPublisherConfig(dir), f)
	waitEmpty(t, dir, r)
	sorted := slices.Clone(epochs)
	slices.Sort(sorted)
	if got := f.produced(); !slices.Equal(got, sorted) {
		t.Errorf("produced %v, want %v", got, sorted)
	}
	for _, e := range epochs {
		got := recordFiles(t, f.value(e), testHost, e)
		if fmt.Sprint(got) != fmt.Sprint(want[e]) {
			t.Errorf("record of %s holds other files than the snapshot's", e)
		}
	}
	if st := r.p.Stats(); st.Published != 4 || st.Failures != 0 || st.Bytes == 0 {
		t.Errorf("Stats() = %+v, want 4 published", st)
	}
}

// TestFailureRetriedBeforeNewer: a snapshot whose delivery fails stays in
// the spool and is tried again before any newer one; the failure is
// logged once, not at every retry.
func TestFailureRetriedBeforeNewer(t *testing.T) {
	dir := spoolOf(t, "1700000001", "1700000002")
	f := newFake()
	f.fail = func(snapshot string, n int) error {
		if snapshot == "1700000001" && n <= 3 {
			return fmt.Errorf("record not acknowledged: %w", kerr.NotEnoughReplicas)
		}
		return nil
	}
	r := startPublisher(t, testPublisherConfig(dir), f)
	waitEmpty(t, dir, r)
	if got, want := f.produced(), []string{"1700000001", "1700000001", "1700000001", "1700000001", "1700000002"}; !slices.Equal(got, want) {
		t.Errorf("produced %v, want %v", got, want)
	}
	if st := r.p.Stats(); st.Published != 2 || st.Failures != 3 {
		t.Errorf("Stats() = %+v, want 2 published, 3 failures", st)
	}
	if n := strings.Count(r.logs.String(), "snapshot record not acknowledged"); n != 1 {
		t.Errorf("the repeated failure was logged %d times, want once; log:\n%s", n, r.logs.String())
	}
}

// TestTooLargeStays: a snapshot above MaxSnapshotBytes is not produced; it
// stays, with an error naming max-snapshot-bytes; so does one the broker
// refuses as too large, with an error naming max.message.bytes.
func TestTooLargeStays(t *testing.T) {
	dir := spoolOf(t, "1700000001")
	cfg := testPublisherConfig(dir)
	cfg.MaxSnapshotBytes = 1000
	f := newFake()
	r := startPublisher(t, cfg, f)
	waitLog(t, r, "max-snapshot-bytes")
	r.stop(t)
	if got := f.produced(); len(got) != 0 {
		t.Errorf("produced %v, want nothing", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "1700000001")); err != nil {
		t.Errorf("the snapshot left the spool: %v", err)
	}

	f = newFake()
	f.fail = func(string, int) error { return fmt.Errorf("produce: %w", kerr.MessageTooLarge) }
	r = startPublisher(t, testPublisherConfig(dir), f)
	waitLog(t, r, "max.message.bytes")
	r.stop(t)
	if _, err := os.Stat(filepath.Join(dir, "1700000001")); err != nil {
		t.Errorf("the snapshot left the spool: %v", err)
	}
}

func waitLog(t testing.TB, r *running, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(r.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within a minute; log:\n%s", want, r.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStopInFlight: at a stop, the snapshot whose record is not
// acknowledged stays in the spool, and Run returns.
func TestStopInFlight(t *testing.T) {
	dir := spoolOf(t, "1700000001", "1700000002")
	f := newFake()
	f.hold = true
	r := startPublisher(t, testPublisherConfig(dir), f)
	deadline := time.Now().Add(time.Minute)
	for len(f.produced()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing produced within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.stop(t)
	for _, e := range []string{"1700000001", "1700000002"} {
		if _, err := os.Stat(filepath.Join(dir, e)); err != nil {
			t.Errorf("snapshot %s left the spool without an acknowledgement: %v", e, err)
		}
	}
	if got := f.produced(); !slices.Equal(got, []string{"1700000001"}) {
		t.Errorf("produced %v, want only the oldest (one in flight at a time)", got)
	}
	if !strings.Contains(r.logs.String(), "not acknowledged before the stop") {
		t.Errorf("the stop with a record in flight was not logged:\n%s", r.logs.String())
	}
}

func TestNewValidates(t *testing.T) {
	cfg := Config{Host: "bad/host", RetryBackoff: 2, RetryBackoffMax: 1}
	_, err := New(cfg, nil, nil)
	for _, want := range []string{"no spool directory", `byte "/"`, "max snapshot bytes 0", "retry backoff", "no sender"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", cfg, err, want)
		}
	}
	p, err := New(testPublisherConfig(filepath.Join(t.TempDir(), "not-yet")), newFake(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.cfg.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New touched the file system: %v", err)
	}
}

// parseRecord parses a record's value, failing the test if it does not.
func parseRecord(t testing.TB, value []byte) *snaprecord.Record {
	t.Helper()
	r, err := snaprecord.Parse(value, snaprecord.Limits{MaxBytes: 1 << 30})
	if err != nil {
		t.Fatalf("parse record: %v", err)
	}
	return r
}
