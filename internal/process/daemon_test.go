package process

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// stoppingQueue is an empty queue whose Run returns err as soon as ctx is
// done, or at once when early is set.
type stoppingQueue struct {
	early  bool
	err    error
	closed chan struct{}
}

func (q *stoppingQueue) Run(ctx context.Context) error {
	defer close(q.closed)
	if !q.early {
		<-ctx.Done()
	}
	return q.err
}

func (q *stoppingQueue) Next(ctx context.Context) (string, error) {
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-q.closed:
		return "", errors.New("queue closed")
	}
}
func (q *stoppingQueue) Done(string, bool) {}
func (q *stoppingQueue) Retry(string)      {}
func (q *stoppingQueue) Dir() string       { return "/spool" }

// fakeDest is a destination that keeps what it is sent. Its waiters
// settle with the result of settle (nil: delivered at once; a channel
// value: when the test sends on it); stalled is what Stalled reports.
type fakeDest struct {
	name    string
	mu      sync.Mutex
	got     map[string]*bytes.Buffer
	settle  chan error // nil: deliver at once
	stalled bool
	opens   int
	// onOpen, when set, is called by Open first (outside the lock); an
	// error refuses the snapshot.
	onOpen func(snapshot string) error
}

func (f *fakeDest) Name() string { return f.name }
func (f *fakeDest) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (f *fakeDest) Open(_ context.Context, snapshot string) (Stream, error) {
	if f.onOpen != nil {
		if err := f.onOpen(snapshot); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens++
	if f.got == nil {
		f.got = map[string]*bytes.Buffer{}
	}
	b := &bytes.Buffer{}
	f.got[snapshot] = b
	return &fakeStream{f: f, b: b}, nil
}
func (f *fakeDest) Stalled(time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stalled
}
func (f *fakeDest) lines(snapshot string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b := f.got[snapshot]; b != nil {
		return b.String()
	}
	return ""
}

type fakeStream struct {
	f *fakeDest
	b *bytes.Buffer
}

func (s *fakeStream) Write(p []byte) (int, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.b.Write(p)
}
func (s *fakeStream) Finish() Waiter { return chanWaiter(s.f.settle) }
func (s *fakeStream) Abort()         {}

type chanWaiter chan error

func (w chanWaiter) Wait(ctx context.Context) error {
	if w == nil {
		return nil
	}
	select {
	case err := <-w:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func builtinPipeline(t *testing.T) *engine.Pipeline {
	t.Helper()
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "p"}}, builtin.Stages(builtin.Options{})...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runDaemon runs a daemon over q until stop returns, and returns Run's
// error; it fails t if Run does not return within 5 s.
func runDaemon(t *testing.T, q Queue, stop func(cancel context.CancelFunc)) error {
	t.Helper()
	d, err := New(Config{Pipeline: builtinPipeline(t), Queue: q, Destinations: []Destination{&fakeDest{name: "idle"}}, Workers: 2, StopTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stop(cancel)
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s: the daemon hangs on stop")
		return nil
	}
}

func TestRunStopsWhenTheWatcherReturns(t *testing.T) {
	// Run used to take the watcher's nil result in its select and then
	// wait for a second one, forever: a SIGTERM that the watcher saw
	// first hung the daemon. Both orders, many times.
	for i := range 200 {
		q := &stoppingQueue{closed: make(chan struct{})}
		if err := runDaemon(t, q, func(cancel context.CancelFunc) { cancel() }); err != nil {
			t.Fatalf("round %d: Run = %v, want nil after a stop", i, err)
		}
	}
	// Deterministically: the watcher returns nil before any signal.
	q := &stoppingQueue{early: true, closed: make(chan struct{})}
	if err := runDaemon(t, q, func(context.CancelFunc) {}); err != nil {
		t.Fatalf("Run = %v, want nil when the watcher stopped", err)
	}
}

func TestRunReturnsTheWatcherError(t *testing.T) {
	q := &stoppingQueue{early: true, err: errors.New("directory vanished"), closed: make(chan struct{})}
	err := runDaemon(t, q, func(context.CancelFunc) {})
	if err == nil || !strings.Contains(err.Error(), "spool /spool: directory vanished") {
		t.Fatalf("Run = %v, want the watcher's error naming the spool", err)
	}
}

// spoolWith returns a spool directory holding the snapshots names, each
// a copy of the corpus case's first snapshot.
func spoolWith(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("..", "..", "testdata", "conformance", "dots-defaults", "incoming")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.ReadDir(filepath.Join(src, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, n, f.Name), f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// startDaemon runs a daemon over the spool dir with dests; the returned
// function stops it and returns Run's error and how long the stop took.
func startDaemon(t *testing.T, dir string, cfg Config) func() (error, time.Duration) {
	t.Helper()
	w, err := spool.NewWatcher(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pipeline, cfg.Queue, cfg.Workers = builtinPipeline(t), w, 2
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	var res error
	var took time.Duration
	stop := func() (error, time.Duration) {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case res = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return within 30s of the stop")
			}
			took = time.Since(start)
		})
		return res, took
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSnapshotRemovedOnlyWhenEveryDestinationHasIt(t *testing.T) {
	// Two destinations; the second acknowledges only when told: the
	// snapshot stays in the spool until both have it, whole.
	dir := spoolWith(t, "1700000000")
	a := &fakeDest{name: "a"}
	b := &fakeDest{name: "b", settle: make(chan error)}
	startDaemon(t, dir, Config{Destinations: []Destination{a, b}, StopTimeout: 5 * time.Second})
	waitFor(t, "both destinations to be sent the lines", func() bool {
		return strings.Contains(a.lines("1700000000"), "TotalWallClockTime") && strings.Contains(b.lines("1700000000"), "TotalWallClockTime")
	})
	time.Sleep(50 * time.Millisecond)
	if !exists(filepath.Join(dir, "1700000000")) {
		t.Fatal("snapshot removed before the second destination acknowledged it")
	}
	if a.lines("1700000000") != b.lines("1700000000") {
		t.Error("the destinations were sent different lines")
	}
	b.settle <- nil
	waitFor(t, "the snapshot to be removed", func() bool { return !exists(filepath.Join(dir, "1700000000")) })
}

func TestFailedDeliveryIsSentAgain(t *testing.T) {
	// A destination that fails the first delivery: the snapshot stays and
	// is processed and sent again.
	dir := spoolWith(t, "1700000000")
	b := &fakeDest{name: "b", settle: make(chan error, 2)}
	b.settle <- errors.New("connection lost")
	b.settle <- nil
	startDaemon(t, dir, Config{Destinations: []Destination{b}, RetryDelay: 10 * time.Millisecond})
	waitFor(t, "the snapshot to be removed", func() bool { return !exists(filepath.Join(dir, "1700000000")) })
	b.mu.Lock()
	opens := b.opens
	b.mu.Unlock()
	if opens != 2 {
		t.Errorf("the destination was opened %d times, want 2 (the failed delivery, then again)", opens)
	}
}

func TestStopIsPromptWhenNothingCanBeDelivered(t *testing.T) {
	// A destination that never acknowledges and says it is stalled: a stop
	// leaves the snapshot in the spool and returns within 2 s, not after
	// the stop timeout.
	dir := spoolWith(t, "1700000000")
	b := &fakeDest{name: "b", settle: make(chan error), stalled: true}
	stop := startDaemon(t, dir, Config{Destinations: []Destination{b}, StopTimeout: 20 * time.Second, StallTimeout: 500 * time.Millisecond})
	waitFor(t, "the lines to be sent", func() bool { return strings.Contains(b.lines("1700000000"), "TotalWallClockTime") })
	err, took := stop()
	if err != nil || took > 2*time.Second {
		t.Fatalf("Run = %v after %s, want nil within 2s", err, took)
	}
	if !exists(filepath.Join(dir, "1700000000")) {
		t.Error("an undelivered snapshot was removed")
	}
}

func TestStopWaitsWhileDelivering(t *testing.T) {
	// Not stalled: the stop waits for the delivery in flight, within the
	// stop timeout, and the delivered snapshot is removed.
	dir := spoolWith(t, "1700000000")
	b := &fakeDest{name: "b", settle: make(chan error)}
	stop := startDaemon(t, dir, Config{Destinations: []Destination{b}, StopTimeout: 5 * time.Second})
	waitFor(t, "the lines to be sent", func() bool { return strings.Contains(b.lines("1700000000"), "TotalWallClockTime") })
	time.AfterFunc(300*time.Millisecond, func() { b.settle <- nil })
	err, took := stop()
	if err != nil || took < 250*time.Millisecond || took > 5*time.Second {
		t.Fatalf("Run = %v after %s, want nil once the delivery completed", err, took)
	}
	if exists(filepath.Join(dir, "1700000000")) {
		t.Error("the snapshot delivered during the stop was left in the spool")
	}
}

func TestStopTimeoutBoundsTheWait(t *testing.T) {
	dir := spoolWith(t, "1700000000")
	b := &fakeDest{name: "b", settle: make(chan error)}
	stop := startDaemon(t, dir, Config{Destinations: []Destination{b}, StopTimeout: 700 * time.Millisecond})
	waitFor(t, "the lines to be sent", func() bool { return strings.Contains(b.lines("1700000000"), "TotalWallClockTime") })
	err, took := stop()
	if err != nil || took < 600*time.Millisecond || took > 3*time.Second {
		t.Fatalf("Run = %v after %s, want nil after about the stop timeout (700ms)", err, took)
	}
	if !exists(filepath.Join(dir, "1700000000")) {
		t.Error("an undelivered snapshot was removed")
	}
}
