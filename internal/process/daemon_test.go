package process

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/graphite"
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

func (q *stoppingQueue) Done(string)  {}
func (q *stoppingQueue) Retry(string) {}
func (q *stoppingQueue) Dir() string  { return "/spool" }
func (q *stoppingQueue) Queued() int  { return 0 }

// idleSender is a Graphite connection that is never sent anything.
type idleSender struct{}

func (idleSender) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (idleSender) Send(context.Context, []byte, int) (*graphite.Delivery, error) {
	return nil, errors.New("idleSender: unexpected Send")
}

// runDaemon runs a daemon over q until stop returns, and returns Run's
// error; it fails t if Run does not return within 5 s.
func runDaemon(t *testing.T, q Queue, stop func(cancel context.CancelFunc)) error {
	t.Helper()
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Pipeline: p, Queue: q, Graphite: idleSender{}, Workers: 2, StopTimeout: time.Second})
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
