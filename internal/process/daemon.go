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
	// Queued reports how many snapshots wait to be handed out.
	Queued() int
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
	Logger  *slog.Logger
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
}

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
	return &Daemon{cfg: cfg, log: logger}, nil
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
		name, err := d.cfg.Queue.Next(take)
		if err != nil {
			return
		}
		d.snapshot(take, work, name, inflight)
	}
}

// snapshot processes one snapshot of the spool, streaming its lines to
// every destination, and settles it once they all have it (on another
// goroutine, so that the worker goes on while they acknowledge).
func (d *Daemon) snapshot(take, work context.Context, name string, inflight *sync.WaitGroup) {
	dir := filepath.Join(d.cfg.Queue.Dir(), name)
	log := d.log.With("snapshot", name)
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
		if _, err := os.Stat(dir); err != nil {
			return nil, err
		}
		if p, ok := d.cfg.Queue.(Processor); ok {
			return p.Process(work, name, dir, fanout(streams))
		}
		return d.cfg.Pipeline.ProcessDir(work, dir, fanout(streams))
	})
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
	t := time.AfterFunc(d.cfg.RetryDelay, func() {
		if work.Err() == nil {
			d.cfg.Queue.Retry(name)
		}
	})
	context.AfterFunc(work, func() {
		if t.Stop() {
			d.log.Info("snapshot not delivered before the stop; left in the spool", "snapshot", name)
		}
	})
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
