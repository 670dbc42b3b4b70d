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
	Logger     *slog.Logger
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
	}
	var qerr error
	select {
	case qerr = <-qdone:
		// The watcher failed (the spool directory vanished): stop as for a
		// signal, the error is Run's.
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
	if qerr == nil {
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

// snapshot processes one snapshot and hands its lines on; the delivery is
// awaited on another goroutine so that the worker can go on while Graphite
// acknowledges (the Graphite queue bound provides the back-pressure).
func (d *Daemon) snapshot(ctx context.Context, name string, inflight *sync.WaitGroup) {
	dir := filepath.Join(d.cfg.Queue.Dir(), name)
	log := d.log.With("snapshot", name)
	out, err := d.process(ctx, dir)
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
	d.stats.processed.Add(1)
	for _, p := range out.Problems {
		log.Warn("snapshot processed with a problem", "problem", p)
	}
	if d.cfg.LocalStore != nil {
		if err := d.cfg.LocalStore.Write(name, out.Lines); err != nil {
			log.Error("local store write failed; snapshot kept for a retry", "error", err, "retry_in", d.cfg.RetryDelay)
			out.Release()
			d.retryLater(ctx, name, inflight)
			return
		}
	}
	delivery, err := d.cfg.Graphite.Send(ctx, out.Lines, out.Count)
	if err != nil {
		out.Release()
		d.cfg.Queue.Done(name)
		inflight.Done()
		return
	}
	go func() {
		defer inflight.Done()
		err := delivery.Wait(ctx)
		out.Release()
		if err != nil {
			log.Info("snapshot not delivered; left in the spool", "error", err)
			d.cfg.Queue.Done(name)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Error("remove delivered snapshot", "error", err)
		}
		d.stats.delivered.Add(1)
		log.Debug("snapshot delivered", "lines", out.Count)
		d.cfg.Queue.Done(name)
	}()
}

// process runs the pipeline over one snapshot directory, turning a panic
// into an error.
func (d *Daemon) process(ctx context.Context, dir string) (out *engine.Output, err error) {
	defer func() {
		if v := recover(); v != nil {
			d.stats.panics.Add(1)
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	out, err = d.cfg.Pipeline.ProcessDir(ctx, dir)
	var perr *engine.PanicError
	if errors.As(err, &perr) {
		d.stats.panics.Add(1)
		return nil, fmt.Errorf("%w\n%s", perr, perr.Stack)
	}
	return out, err
}

func (d *Daemon) retryLater(ctx context.Context, name string, inflight *sync.WaitGroup) {
	d.stats.retried.Add(1)
	go func() {
		defer inflight.Done()
		t := time.NewTimer(d.cfg.RetryDelay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			d.cfg.Queue.Done(name)
		case <-t.C:
			d.cfg.Queue.Retry(name)
		}
	}()
}
