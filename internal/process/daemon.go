package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
)

// Queue hands out snapshot names, each the path of its directory relative
// to Dir (its base name is the snapshot's epoch); spool.Watcher and the
// Kafka source implement it.
type Queue interface {
	Run(ctx context.Context) error
	Next(ctx context.Context) (string, error)
	// Done reports what became of a snapshot handed out by Next:
	// delivered = true once every destination has its lines (the queue
	// removes it), false when it was not delivered (a stop, a failure to
	// be retried with Retry after Done): the queue keeps it.
	Done(name string, delivered bool)
	// Retry hands a snapshot out again, after Done(name, false).
	Retry(name string)
	Dir() string
}

// Failer is implemented by a Queue that must not keep a snapshot the
// pipeline cannot process (the Kafka source: it would hold its partition
// back forever): the daemon calls Failed instead of Done(name, false), and
// the queue sets the snapshot aside and moves on. The spool keeps such a
// snapshot until the next start.
type Failer interface {
	Failed(name string, err error)
}

// Processor is implemented by a Queue whose snapshots are not all
// processed alike (the Kafka source: each load balancer's with its own
// prefix, a cluster's with the cluster's): the daemon calls Process
// instead of Config.Pipeline.ProcessDir. It is called concurrently.
type Processor interface {
	Process(ctx context.Context, name, dir string, w io.Writer) (*engine.Result, error)
}

// Destination is where the lines of every snapshot go: Graphite, Kafka,
// the local store.
type Destination interface {
	// Name names the destination in logs.
	Name() string
	// Run owns the destination's connections until ctx is done.
	Run(ctx context.Context) error
	// Open starts the delivery of one snapshot. It may wait until the
	// destination can take lines (a connection is up), and returns ctx's
	// error if ctx ends first.
	Open(ctx context.Context, snapshot string) (Stream, error)
}

// Stream carries one snapshot's lines to a destination; its methods are
// called from one goroutine at a time.
type Stream interface {
	// Write takes one or more whole lines; p is not kept.
	Write(p []byte) (int, error)
	// Finish says every line was written; the Waiter reports when they
	// are all delivered, or why not.
	Finish() Waiter
	// Abort abandons the stream: the snapshot stays in the spool.
	Abort()
}

// Waiter reports the delivery of a finished stream.
type Waiter interface {
	Wait(ctx context.Context) error
}

// Staller is implemented by destinations that can tell that nothing can be
// delivered now (no connection, or nothing acknowledged for d): a stopping
// daemon then leaves its snapshots in the spool at once instead of waiting
// out its stop timeout.
type Staller interface {
	Stalled(d time.Duration) bool
}

// Config wires the daemon.
type Config struct {
	Pipeline *engine.Pipeline
	Queue    Queue
	// Destinations receive every snapshot's lines; a snapshot is removed
	// from the spool once every one of them has it.
	Destinations []Destination
	Workers      int
	// StopTimeout bounds how long Run waits, after ctx is cancelled, for
	// snapshots in flight to be delivered while bytes are still being
	// acknowledged.
	StopTimeout time.Duration
	// StallTimeout is how long a destination may acknowledge nothing (or
	// stay unconnected) during a stop before the snapshots in flight are
	// left in the spool; 0 means 1.5 s.
	StallTimeout time.Duration
	// RetryDelay is how long a snapshot whose delivery failed waits before
	// it is taken again (its destination retries its connection meanwhile).
	RetryDelay time.Duration
	// Release, when set, is called once Run is done with the pipeline (it
	// closes the WebAssembly stages' runtimes and child processes).
	Release func() error
	// Sequencer, when set, is told the time of every snapshot handed out,
	// in hand-out order, and when its processing ended: the state of
	// [process] monotonic-counters (*counters.Store). nil when no stage
	// keeps state across snapshots.
	Sequencer Sequencer
	Logger    *slog.Logger
}

// Sequencer orders the snapshots for stages that keep state across them
// and advance it in time order (internal/counters.Store).
//
// Pending(t) is called with a snapshot's time (its name) when a worker
// takes it from the queue, under one lock held across Queue.Next and
// Pending, so that the calls come in hand-out order. Done(t) is called
// once the pipeline returned for it, successfully or not, or once the
// snapshot was given up before the pipeline ran; always before its
// directory is removed from the spool. A Done error (the state could not
// be written) keeps the snapshot in the spool: it is processed again later.
//
// With a Sequencer, a snapshot enters the pipeline only once the one
// handed out before it has its working memory (the pipeline's Started
// hook, wired to Daemon.Started) or has left the pipeline: a stage of a
// later snapshot that waits for an earlier one can then never hold the
// memory budget the earlier one waits for. Without Started wired, a
// snapshot waits until the previous one's pipeline returned.
type Sequencer interface {
	Pending(t int64)
	Done(t int64) error
}

// Stats counts what the daemon did.
type Stats struct {
	Processed, Delivered, Failed, Panics, Retried int64
}

// Daemon is haproxystats-process.
type Daemon struct {
	cfg   Config
	log   *slog.Logger
	stats struct{ processed, delivered, failed, panics, retried atomic.Int64 }

	// With a Sequencer: seqMu is held across Queue.Next and Pending (hand-
	// out order) and guards last, the turn of the last snapshot handed
	// out; turnsMu guards turns, the snapshots handed out and not settled,
	// by name (Started must not wait for a worker blocked in Next).
	seqMu   sync.Mutex
	last    *turn
	turnsMu sync.Mutex
	turns   map[string]*turn
}

// turn is a snapshot's place in the hand-out order (with a Sequencer).
type turn struct {
	t       int64 // its time; 0 when the name is not one (Pending not called)
	prev    <-chan struct{}
	entered chan struct{} // closed once it holds its working memory or left
	once    sync.Once
	done    sync.Once
}

// enter opens the way to the next snapshot.
func (tn *turn) enter() { tn.once.Do(func() { close(tn.entered) }) }

// New validates cfg.
func New(cfg Config) (*Daemon, error) {
	var errs []error
	if cfg.Pipeline == nil {
		errs = append(errs, errors.New("process: no pipeline"))
	}
	if cfg.Queue == nil {
		errs = append(errs, errors.New("process: no queue"))
	}
	if len(cfg.Destinations) == 0 {
		errs = append(errs, errors.New("process: no destination"))
	}
	if cfg.Workers < 1 {
		errs = append(errs, fmt.Errorf("process: workers = %d, want at least 1", cfg.Workers))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 1500 * time.Millisecond
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 2 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Daemon{cfg: cfg, log: logger, turns: make(map[string]*turn)}, nil
}

// Started is the pipeline's Started hook (engine.Config.Started): the
// snapshot named name holds its working memory, so the next one may enter
// the pipeline. Safe for concurrent use; a no-op without a Sequencer.
func (d *Daemon) Started(name string) {
	d.turnsMu.Lock()
	tn := d.turns[name]
	d.turnsMu.Unlock()
	if tn != nil {
		tn.enter()
	}
}

// next takes a snapshot from the queue; with a Sequencer it also calls
// Pending and returns the snapshot's turn, in hand-out order.
func (d *Daemon) next(ctx context.Context) (string, *turn, error) {
	if d.cfg.Sequencer == nil {
		name, err := d.cfg.Queue.Next(ctx)
		return name, nil, err
	}
	d.seqMu.Lock()
	defer d.seqMu.Unlock()
	name, err := d.cfg.Queue.Next(ctx)
	if err != nil {
		return "", nil, err
	}
	tn := &turn{entered: make(chan struct{})}
	if d.last != nil {
		tn.prev = d.last.entered
	}
	if t, err := strconv.ParseInt(name, 10, 64); err == nil && t > 0 {
		tn.t = t
		d.cfg.Sequencer.Pending(t)
	}
	d.last = tn
	d.turnsMu.Lock()
	d.turns[name] = tn
	d.turnsMu.Unlock()
	return name, tn, nil
}

// settle tells the Sequencer that the snapshot's processing ended (once,
// whatever the path) and forgets its turn. nil without a Sequencer.
func (d *Daemon) settle(name string, tn *turn) error {
	if tn == nil {
		return nil
	}
	var err error
	tn.done.Do(func() {
		tn.enter()
		d.turnsMu.Lock()
		if d.turns[name] == tn {
			delete(d.turns, name)
		}
		d.turnsMu.Unlock()
		if tn.t != 0 {
			if err = d.cfg.Sequencer.Done(tn.t); err != nil {
				err = fmt.Errorf("counters state after snapshot %s: %w", name, err)
			}
		}
	})
	return err
}

// Stats reports the counters so far.
func (d *Daemon) Stats() Stats {
	return Stats{
		Processed: d.stats.processed.Load(), Delivered: d.stats.delivered.Load(),
		Failed: d.stats.failed.Load(), Panics: d.stats.panics.Load(), Retried: d.stats.retried.Load(),
	}
}

// Run processes snapshots until ctx is cancelled (see the package doc).
func (d *Daemon) Run(ctx context.Context) error {
	// The destinations outlive ctx: they deliver what is in flight while
	// stopping.
	dctx, dcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer dcancel()
	var dests sync.WaitGroup
	for _, dst := range d.cfg.Destinations {
		dests.Go(func() {
			if err := dst.Run(dctx); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Error("destination stopped", "destination", dst.Name(), "error", err)
			}
		})
	}
	qctx, qcancel := context.WithCancel(ctx)
	defer qcancel()
	qdone := make(chan error, 1)
	go func() { qdone <- d.cfg.Queue.Run(qctx) }()

	// work bounds the processing and delivery of the snapshots in flight:
	// it ends StopTimeout after ctx, or as soon as the destinations stall.
	work, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer wcancel()
	stopWatch := context.AfterFunc(ctx, func() { d.stopping(work, wcancel) })
	defer stopWatch()

	var inflight sync.WaitGroup
	var workers sync.WaitGroup
	for range d.cfg.Workers {
		workers.Go(func() { d.worker(ctx, work, &inflight) })
	}
	var qerr error
	qended := false // qdone's only value has been received
	select {
	case qerr = <-qdone:
		// The watcher failed (the spool directory vanished), or ctx was
		// cancelled and the watcher saw it first: stop as for a signal;
		// an error is Run's.
		qended = true
		qcancel()
	case <-ctx.Done():
	}
	workers.Wait()
	inflight.Wait()
	wcancel()
	dcancel()
	dests.Wait()
	if d.cfg.Release != nil {
		if err := d.cfg.Release(); err != nil {
			d.log.Error("release the pipeline", "error", err)
		}
	}
	if !qended {
		qcancel()
		qerr = <-qdone
	}
	if qerr != nil && !errors.Is(qerr, context.Canceled) {
		return fmt.Errorf("spool %s: %w", d.cfg.Queue.Dir(), qerr)
	}
	return nil
}

// stopping runs once ctx is cancelled: it ends work after StopTimeout, or
// earlier when a destination can deliver nothing.
func (d *Daemon) stopping(work context.Context, end context.CancelFunc) {
	d.log.Info("stopping: no new snapshots; waiting for those in flight", "timeout", d.cfg.StopTimeout)
	deadline := time.NewTimer(d.cfg.StopTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-work.Done():
			return
		case <-deadline.C:
			d.log.Warn("stop timeout reached: snapshots in flight left in the spool", "timeout", d.cfg.StopTimeout)
			end()
			return
		case <-tick.C:
			for _, dst := range d.cfg.Destinations {
				if s, ok := dst.(Staller); ok && s.Stalled(d.cfg.StallTimeout) {
					d.log.Warn("stopping: nothing can be delivered; snapshots in flight left in the spool", "destination", dst.Name())
					end()
					return
				}
			}
		}
	}
}

// worker takes snapshots until take is cancelled; their processing and
// delivery are bounded by work.
func (d *Daemon) worker(take, work context.Context, inflight *sync.WaitGroup) {
	for {
		name, tn, err := d.next(take)
		if err != nil {
			return
		}
		d.snapshot(take, work, name, tn, inflight)
	}
}

// snapshot processes one snapshot of the spool, streaming its lines to
// every destination, and settles it once they all have it (on another
// goroutine, so that the worker goes on while they acknowledge).
func (d *Daemon) snapshot(take, work context.Context, name string, tn *turn, inflight *sync.WaitGroup) {
	dir := filepath.Join(d.cfg.Queue.Dir(), name)
	log := d.log.With("snapshot", name)
	// A path that gives the snapshot up settles it too (a no-op when
	// settled already).
	defer func() {
		if err := d.settle(name, tn); err != nil {
			log.Error("monotonic counters: state not written", "error", err)
		}
	}()
	streams := make([]Stream, 0, len(d.cfg.Destinations))
	abort := func() {
		for _, s := range streams {
			s.Abort()
		}
	}
	// Wait for every destination before reading anything: while one is
	// down, snapshots wait in the spool, unread. A stop ends the wait as
	// soon as a destination stalls (see stopping).
	for _, dst := range d.cfg.Destinations {
		s, err := dst.Open(work, name)
		if err != nil {
			abort()
			if take.Err() == nil {
				log.Error("destination refused the snapshot; retrying", "destination", dst.Name(), "error", err, "retry_in", d.cfg.RetryDelay)
				d.retryLater(work, name)
				return
			}
			d.cfg.Queue.Done(name, false) // stopping: left in the spool
			return
		}
		streams = append(streams, s)
	}
	res, err := d.process(func() (*engine.Result, error) {
		if tn != nil && tn.prev != nil {
			// In hand-out order: see Sequencer.
			select {
			case <-tn.prev:
			case <-work.Done():
				return nil, work.Err()
			}
		}
		if _, err := os.Stat(dir); err != nil {
			return nil, err
		}
		if p, ok := d.cfg.Queue.(Processor); ok {
			return p.Process(work, name, dir, fanout(streams))
		}
		return d.cfg.Pipeline.ProcessDir(work, dir, fanout(streams))
	})
	if serr := d.settle(name, tn); serr != nil {
		if err == nil {
			// The state on disk would be behind the snapshot once it is
			// removed: keep it in the spool, process it again later.
			abort()
			log.Error("monotonic counters: state not written; the snapshot will be processed again", "error", serr, "retry_in", d.cfg.RetryDelay)
			d.retryLater(work, name)
			return
		}
		log.Error("monotonic counters: state not written", "error", serr)
	}
	var werr *writeError
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		abort()
		log.Warn("snapshot vanished before it was processed")
		d.failed(name, err)
		return
	case take.Err() != nil:
		abort()
		log.Info("snapshot not delivered before the stop; left in the spool", "error", err)
		d.cfg.Queue.Done(name, false)
		return
	case errors.As(err, &werr):
		abort()
		log.Warn("snapshot not delivered; it will be sent again", "error", err, "retry_in", d.cfg.RetryDelay)
		d.retryLater(work, name)
		return
	default:
		abort()
		d.stats.failed.Add(1)
		log.Error("snapshot not processed; left in the spool until the next start", "error", err)
		d.failed(name, err)
		return
	}
	d.stats.processed.Add(1)
	for _, p := range res.Problems {
		log.Debug("snapshot processed with a problem", "problem", p)
	}
	waiters := make([]Waiter, len(streams))
	for i, s := range streams {
		waiters[i] = s.Finish()
	}
	inflight.Add(1)
	go func() {
		defer inflight.Done()
		var errs []error
		for i, w := range waiters {
			if err := w.Wait(work); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", d.cfg.Destinations[i].Name(), err))
			}
		}
		switch err := errors.Join(errs...); {
		case err == nil:
			d.stats.delivered.Add(1)
			log.Debug("snapshot delivered", "lines", res.Lines)
			d.cfg.Queue.Done(name, true) // removes it
		case take.Err() != nil:
			log.Info("snapshot not delivered before the stop; left in the spool", "error", err)
			d.cfg.Queue.Done(name, false)
		default:
			log.Warn("snapshot not delivered; it will be sent again", "error", err, "retry_in", d.cfg.RetryDelay)
			d.retryLater(work, name)
		}
	}()
}

// retryLater queues name again after RetryDelay, unless work ends first
// (then it stays in the spool for the next start).
func (d *Daemon) retryLater(work context.Context, name string) {
	d.stats.retried.Add(1)
	d.cfg.Queue.Done(name, false)
	// One goroutine per retry, for RetryDelay at most: a destination that
	// keeps failing retries for hours, and nothing of a retry outlives it
	// (a watch registered on work would, until the stop).
	t := time.NewTimer(d.cfg.RetryDelay)
	go func() {
		defer t.Stop()
		select {
		case <-t.C:
			if work.Err() == nil {
				d.cfg.Queue.Retry(name)
			}
		case <-work.Done():
			d.log.Info("snapshot not delivered before the stop; left in the spool", "snapshot", name)
		}
	}()
}

// failed gives up a snapshot the pipeline cannot process: the queue's
// Failed when it has one (Failer), else Done(name, false).
func (d *Daemon) failed(name string, err error) {
	if f, ok := d.cfg.Queue.(Failer); ok {
		f.Failed(name, err)
		return
	}
	d.cfg.Queue.Done(name, false)
}

// writeError is the error of a destination's Write: the snapshot could not
// be handed over in full, and is sent again later.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// fanout writes every chunk to every stream.
type fanout []Stream

func (f fanout) Write(p []byte) (int, error) {
	for _, s := range f {
		if _, err := s.Write(p); err != nil {
			return 0, &writeError{err}
		}
	}
	return len(p), nil
}

// process runs the pipeline, turning a panic into an error.
func (d *Daemon) process(run func() (*engine.Result, error)) (res *engine.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			d.stats.panics.Add(1)
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	res, err = run()
	var perr *engine.PanicError
	if errors.As(err, &perr) {
		d.stats.panics.Add(1)
		return nil, fmt.Errorf("%w\n%s", perr, perr.Stack)
	}
	return res, err
}
