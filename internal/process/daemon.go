package process

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/graphite"
)

// Queue hands out snapshot names; spool.Watcher implements it.
type Queue interface {
	Run(ctx context.Context) error
	Next(ctx context.Context) (string, error)
	Done(name string)
	Retry(name string)
	Dir() string
	// Queued reports how many snapshots wait to be handed out.
	Queued() int
}

// Sender delivers lines to Graphite; graphite.Client implements it.
type Sender interface {
	Run(ctx context.Context) error
	Send(ctx context.Context, lines []byte, n int) (*graphite.Delivery, error)
}

// Store keeps a copy of every snapshot's lines; localstore.Store
// implements it.
type Store interface {
	Write(snapshot string, lines []byte) error
}

// Config wires the daemon.
type Config struct {
	Pipeline *engine.Pipeline
	Queue    Queue
	Graphite Sender
	// LocalStore is nil when [local-store] is not configured.
	LocalStore Store
	Workers    int
	// StopTimeout bounds how long Run waits, after ctx is cancelled, for
	// snapshots in flight to be delivered.
	StopTimeout time.Duration
	// RetryDelay is how long a snapshot waits before it is tried again
	// after a failure that may pass (the local store could not be written).
	RetryDelay time.Duration
	// Spill, when set, enables Offer (the one-daemon mode): it writes a
	// snapshot taken in memory into the spool when it cannot be handed on
	// at once or in full, so that nothing is lost.
	Spill func(name string, files []engine.File) error
	// SpillAfter is how long an in-memory snapshot may wait for its
	// delivery before it is also written to the spool (0: until the stop).
	// If the delivery completes later, the spooled copy is sent again:
	// Graphite overwrites the same points, and a crash loses nothing.
	SpillAfter time.Duration
	Logger     *slog.Logger
}

// Stats counts what the daemon did.
type Stats struct {
	Processed, Delivered, Failed, Panics, Retried int64
	// Spilled counts in-memory snapshots written to the spool because they
	// could not be delivered in full.
	Spilled int64
}

// Daemon is haproxystats-process.
type Daemon struct {
	cfg Config
	log *slog.Logger
	mem chan memSnapshot // unbuffered: a send succeeds only to an idle worker
	// memSlots bounds the in-memory snapshots not yet delivered or spilled.
	memSlots chan struct{}
	stats    struct{ processed, delivered, failed, panics, retried, spilled atomic.Int64 }
}

// memSnapshot is a snapshot handed over in memory by Offer.
type memSnapshot struct {
	name  string
	files []engine.File
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
	if cfg.Graphite == nil {
		errs = append(errs, errors.New("process: no graphite sender"))
	}
	if cfg.Workers < 1 {
		errs = append(errs, fmt.Errorf("process: workers = %d, want at least 1", cfg.Workers))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 5 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Daemon{cfg: cfg, log: logger, mem: make(chan memSnapshot), memSlots: make(chan struct{}, cfg.Workers)}, nil
}

// Offer hands a snapshot over in memory, without the disk round trip. It
// returns false, and the caller must write the snapshot to the spool, when
// the daemon is falling behind: snapshots wait in the spool, Workers
// in-memory snapshots are not delivered yet, no worker is idle, or Run is
// not running. Offer needs Config.Spill.
func (d *Daemon) Offer(name string, files []engine.File) bool {
	if d.cfg.Spill == nil || d.cfg.Queue.Queued() > 0 {
		return false
	}
	select {
	case d.memSlots <- struct{}{}:
	default:
		return false
	}
	select {
	case d.mem <- memSnapshot{name, files}:
		return true
	default:
		<-d.memSlots
		return false
	}
}

// Stats reports the counters so far.
func (d *Daemon) Stats() Stats {
	return Stats{
		Processed: d.stats.processed.Load(), Delivered: d.stats.delivered.Load(),
		Failed: d.stats.failed.Load(), Panics: d.stats.panics.Load(), Retried: d.stats.retried.Load(),
		Spilled: d.stats.spilled.Load(),
	}
}

// Run processes snapshots until ctx is cancelled (see the package doc).
func (d *Daemon) Run(ctx context.Context) error {
	// The connection outlives ctx: it must flush what the workers still
	// hand over while stopping.
	gctx, gcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer gcancel()
	gdone := make(chan error, 1)
	go func() { gdone <- d.cfg.Graphite.Run(gctx) }()

	qctx, qcancel := context.WithCancel(ctx)
	defer qcancel()
	qdone := make(chan error, 1)
	go func() { qdone <- d.cfg.Queue.Run(qctx) }()

	// work bounds processing and delivery of snapshots in flight: it ends
	// StopTimeout after ctx.
	work, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer wcancel()
	stopTimer := context.AfterFunc(ctx, func() {
		d.log.Info("stopping: no new snapshots; waiting for those in flight", "timeout", d.cfg.StopTimeout)
		t := time.AfterFunc(d.cfg.StopTimeout, wcancel)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stopTimer()

	var inflight sync.WaitGroup
	var workers sync.WaitGroup
	for range d.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			d.worker(ctx, work, &inflight)
		}()
		if d.cfg.Spill != nil {
			workers.Add(1)
			go func() {
				defer workers.Done()
				d.memWorker(ctx, work, &inflight)
			}()
		}
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
	gcancel()
	if err := <-gdone; err != nil && !errors.Is(err, context.Canceled) {
		d.log.Error("graphite connection", "error", err)
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

// worker takes snapshots until take is cancelled; their processing and
// delivery are bounded by work.
func (d *Daemon) worker(take, work context.Context, inflight *sync.WaitGroup) {
	for {
		name, err := d.cfg.Queue.Next(take)
		if err != nil {
			return
		}
		inflight.Add(1)
		d.snapshot(work, name, inflight)
	}
}

// snapshot processes one snapshot of the spool and hands its lines on.
func (d *Daemon) snapshot(ctx context.Context, name string, inflight *sync.WaitGroup) {
	dir := filepath.Join(d.cfg.Queue.Dir(), name)
	log := d.log.With("snapshot", name)
	out, err := d.process(func() (*engine.Output, error) {
		if _, err := os.Stat(dir); err != nil {
			return nil, err
		}
		return d.cfg.Pipeline.ProcessDir(ctx, dir)
	})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Warn("snapshot vanished before it was processed")
		d.cfg.Queue.Done(name)
		inflight.Done()
		return
	case ctx.Err() != nil:
		d.cfg.Queue.Done(name) // left in the spool for the next start
		inflight.Done()
		return
	case err != nil:
		d.stats.failed.Add(1)
		log.Error("snapshot not processed; left in the spool until the next start", "error", err)
		d.cfg.Queue.Done(name)
		inflight.Done()
		return
	}
	d.dispatch(ctx, name, out, func(result error, stored bool) {
		defer inflight.Done()
		switch {
		case result == nil:
			if err := os.RemoveAll(dir); err != nil {
				log.Error("remove delivered snapshot", "error", err)
			}
			d.cfg.Queue.Done(name)
		case !stored && ctx.Err() == nil:
			log.Error("local store write failed; snapshot kept for a retry", "error", result, "retry_in", d.cfg.RetryDelay)
			d.retryLater(ctx, name)
		default:
			log.Info("snapshot not delivered; left in the spool", "error", result)
			d.cfg.Queue.Done(name)
		}
	})
}

// memWorker processes snapshots handed over by Offer until take is
// cancelled.
func (d *Daemon) memWorker(take, work context.Context, inflight *sync.WaitGroup) {
	for {
		select {
		case <-take.Done():
			return
		case m := <-d.mem:
			inflight.Add(1)
			d.memory(work, m, inflight)
		}
	}
}

// memory processes a snapshot held in memory; whatever is not delivered in
// full, or not within SpillAfter, is spilled to the spool.
func (d *Daemon) memory(ctx context.Context, m memSnapshot, inflight *sync.WaitGroup) {
	log := d.log.With("snapshot", m.name)
	var once sync.Once
	// settle releases the snapshot's slot, spilling it first unless it was
	// delivered; the first call wins.
	settle := func(reason string, err error) {
		once.Do(func() {
			defer func() { <-d.memSlots }()
			if reason == "" {
				return
			}
			d.stats.spilled.Add(1)
			if serr := d.cfg.Spill(m.name, m.files); serr != nil {
				log.Error("snapshot LOST: not delivered and not written to the spool", "reason", reason, "error", err, "spill_error", serr)
				return
			}
			log.Warn("snapshot written to the spool", "reason", reason, "error", err)
		})
	}
	out, err := d.process(func() (*engine.Output, error) {
		return d.cfg.Pipeline.ProcessFiles(ctx, m.name, m.files)
	})
	if err != nil {
		if ctx.Err() == nil {
			d.stats.failed.Add(1)
		}
		settle("not processed", err)
		inflight.Done()
		return
	}
	var timer *time.Timer
	if d.cfg.SpillAfter > 0 {
		timer = time.AfterFunc(d.cfg.SpillAfter, func() {
			settle("delivery is taking longer than "+d.cfg.SpillAfter.String(), nil)
		})
	}
	d.dispatch(ctx, m.name, out, func(result error, _ bool) {
		defer inflight.Done()
		if timer != nil {
			timer.Stop()
		}
		if result != nil {
			settle("not delivered", result)
			return
		}
		settle("", nil)
	})
}

// dispatch writes the lines to the local store and hands them to Graphite;
// done is called once, possibly on another goroutine, with nil when every
// line was delivered, and stored false when the local store failed. The
// delivery is awaited on another goroutine so that the worker can go on
// while Graphite acknowledges; the Graphite queue bound provides the
// back-pressure.
func (d *Daemon) dispatch(ctx context.Context, name string, out *engine.Output, done func(result error, stored bool)) {
	d.stats.processed.Add(1)
	for _, p := range out.Problems {
		d.log.Warn("snapshot processed with a problem", "snapshot", name, "problem", p)
	}
	if d.cfg.LocalStore != nil {
		if err := d.cfg.LocalStore.Write(name, out.Lines); err != nil {
			out.Release()
			done(err, false)
			return
		}
	}
	delivery, err := d.cfg.Graphite.Send(ctx, out.Lines, out.Count)
	if err != nil {
		out.Release()
		done(err, true)
		return
	}
	go func() {
		err := delivery.Wait(ctx)
		lines := out.Count
		out.Release()
		if err == nil {
			d.stats.delivered.Add(1)
			d.log.Debug("snapshot delivered", "snapshot", name, "lines", lines)
		}
		done(err, true)
	}()
}

// process runs the pipeline, turning a panic into an error.
func (d *Daemon) process(run func() (*engine.Output, error)) (out *engine.Output, err error) {
	defer func() {
		if v := recover(); v != nil {
			d.stats.panics.Add(1)
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	out, err = run()
	var perr *engine.PanicError
	if errors.As(err, &perr) {
		d.stats.panics.Add(1)
		return nil, fmt.Errorf("%w\n%s", perr, perr.Stack)
	}
	return out, err
}

// retryLater queues name again after RetryDelay. It blocks the caller
// for that long: a local store that cannot be written (a full disk) slows
// the workers down instead of spinning them.
func (d *Daemon) retryLater(ctx context.Context, name string) {
	d.stats.retried.Add(1)
	t := time.NewTimer(d.cfg.RetryDelay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		d.cfg.Queue.Done(name)
	case <-t.C:
		d.cfg.Queue.Retry(name)
	}
}
