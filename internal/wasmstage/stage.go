package wasmstage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/haproxystats-go/haproxystats/engine"
)

// Stage runs one WebAssembly module as an engine.Stage.
//
// The module is compiled once by New. With a timeout (the default) it
// runs in a child process that the stage kills when a call outlasts its
// deadline (see docs/ABI.md, "Isolation"); with timeout = 0 it runs in the
// daemon itself, for trusted modules. One instance of the module serves
// every call: calls are serialized, so Process is safe for concurrent use
// by several workers but never runs the module on two goroutines at once,
// and the instance's memory (the stage's state) persists from one snapshot
// to the next. The snapshots reach the module in the order the calls take
// the stage's lock; the process daemon hands them over in timestamp order.
//
// A call that traps, exceeds Options.Timeout, runs out of memory, returns a
// malformed buffer or more than Options.MaxMetrics metrics, or whose child
// process dies, returns an error (the pipeline then discards what the stage
// emitted for that snapshot and counts the error); the instance is
// discarded and a fresh one is created by the next call (with a new child
// process when it was killed), so the module's state is lost. State is
// also lost when the process restarts.
//
// Stage implements engine.Stage, engine.ColumnUser and io.Closer.
type Stage struct {
	opts    Options
	logger  *slog.Logger
	run     runner
	columns []string

	sem      chan struct{} // the lock; a channel so that waiting honours ctx
	closing  atomic.Bool
	closed   bool
	stale    bool   // the next call needs a new instance
	snapshot string // of the call in progress, for the module's log lines
	enc      encoder
	dec      decoder
}

// runner is where the module runs: inProcess or isolated. Its methods but
// kill are called under the stage's lock.
type runner interface {
	// start makes the module ready to instantiate (isolated: a running
	// child that compiled it); a no-op when it is. It reports whether it
	// did something, in which case there is no instance.
	start(ctx context.Context) (bool, error)
	// beginCall starts counting the module's log lines of a new call;
	// droppedLogs reports those dropped since.
	beginCall()
	droppedLogs() int
	// instantiate replaces the module instance by a new one; first reads
	// the ABI version and the column list.
	instantiate(ctx context.Context, first bool) ([]string, error)
	// input calls hs_alloc(size) and returns where to write the input.
	input(ctx context.Context, size int) (uint32, []byte, error)
	// process calls hs_process and returns the output buffer, nil for none.
	process(ctx context.Context, ptr uint32, size int) ([]byte, error)
	// kill ends a call in flight at once, when it can; any goroutine.
	kill()
	close() error
}

// New reads the module of opts, checks it, compiles it and its ABI,
// instantiates it (calling _initialize, then hs_init with opts.Params) and
// asks for its columns. With a timeout, that happens in a new child
// process: compilation within opts.CompileTimeout, the rest within
// opts.Timeout. Errors name the stage and the module file. When ctx ends,
// New stops (killing the child) and returns its error.
func New(ctx context.Context, opts Options, logger *slog.Logger) (*Stage, error) {
	opts = opts.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := checkStageName(opts.Name); err != nil {
		return nil, err
	}
	fail := func(err error) error {
		return fmt.Errorf("stage %s: module %s: %w", opts.Name, opts.Module, err)
	}
	if opts.MemoryLimitMiB > maxMemoryLimitMiB {
		return nil, fail(fmt.Errorf("memory limit %d MiB above %d MiB", opts.MemoryLimitMiB, maxMemoryLimitMiB))
	}
	bin, err := readModule(opts.Module, int64(opts.ModuleSizeLimitMiB)<<20)
	if err != nil {
		if errors.Is(err, ErrModuleTooLarge) {
			return nil, fail(err)
		}
		return nil, fmt.Errorf("stage %s: %w", opts.Name, err)
	}
	if err := checkSections(bin); err != nil {
		return nil, fail(err)
	}
	if opts.CacheDir != "" {
		if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("stage %s: compilation cache: %w", opts.Name, err)
		}
	}
	s := &Stage{opts: opts, logger: logger.With("stage", opts.Name), sem: make(chan struct{}, 1)}
	if opts.Timeout == 0 {
		s.run, err = newInProcess(ctx, opts, bin, s.logModule)
		if err != nil {
			return nil, fail(err)
		}
	} else {
		iso, err := newIsolated(opts, bin, s.logModule, s.logger)
		if err != nil {
			return nil, fail(err)
		}
		s.run = iso
	}
	ok := false
	defer func() {
		if !ok {
			s.run.close()
		}
	}()
	s.run.beginCall()
	defer s.flushLog()
	if _, err := s.run.start(ctx); err != nil {
		return nil, fail(s.stepError(ctx, "compile", err))
	}
	cctx, cancel := s.callContext(ctx)
	defer cancel()
	if s.columns, err = s.run.instantiate(cctx, true); err != nil {
		return nil, fail(s.stepError(ctx, "start", err))
	}
	ok = true
	return s, nil
}

// Name reports the stage name.
func (s *Stage) Name() string { return s.opts.Name }

// Columns reports the `show stat` columns the module declared with
// hs_columns; only those are written into its memory.
func (s *Stage) Columns() []string { return append([]string(nil), s.columns...) }

// NamesByNumber reports true: the input buffer names rows by the engine's
// name numbers (engine.NameNumberer), so a pipeline whose Stages are all
// WASM stages copies no names into its table.
func (s *Stage) NamesByNumber() bool { return true }

// Process hands snap to the module and emits the metrics it returns. See
// the Stage documentation for what happens on failure. When ctx ends
// first, the call is abandoned (its child process killed) and ctx's error
// returned.
func (s *Stage) Process(ctx context.Context, snap *engine.Snapshot, emit engine.Emitter) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.sem }()
	if s.closed || s.closing.Load() {
		return ErrClosed
	}
	s.snapshot = snap.Name
	defer func() { s.snapshot = "" }()
	s.run.beginCall()
	defer s.flushLog()
	if err := s.call(ctx, snap, emit); err != nil {
		s.stale = true
		if perr := ctx.Err(); perr != nil {
			return perr
		}
		return fmt.Errorf("module %s: %w", s.opts.Module, err)
	}
	return nil
}

func (s *Stage) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opts.Timeout > 0 {
		return context.WithTimeout(ctx, s.opts.Timeout)
	}
	return context.WithCancel(ctx)
}

// call runs one snapshot through the module.
func (s *Stage) call(ctx context.Context, snap *engine.Snapshot, emit engine.Emitter) error {
	if started, err := s.run.start(ctx); err != nil {
		return s.stepError(ctx, "compile", err)
	} else if started {
		s.stale = true
	}
	cctx, cancel := s.callContext(ctx)
	defer cancel()
	if !s.stale && s.enc.full() {
		// The string table of the instance (docs/ABI.md 3.2) has grown
		// past its bounds: names churn. Start again with a new instance.
		s.logger.Warn("string table full, re-creating the instance (state lost)", "snapshot", snap.Name, "strings", len(s.enc.strs))
		s.stale = true
	}
	if s.stale {
		if _, err := s.run.instantiate(cctx, false); err != nil {
			return s.stepError(ctx, "instantiate", err)
		}
		s.stale = false
		s.enc.reset()
	}
	size, err := s.enc.plan(snap, s.columns)
	if err != nil {
		return err
	}
	if limit := uint64(s.opts.MemoryLimitMiB) << 20; uint64(size) >= limit {
		return fmt.Errorf("input of %d bytes does not fit in memory-limit %d MiB: %w", size, s.opts.MemoryLimitMiB, ErrMemoryLimit)
	}
	ptr, buf, err := s.run.input(cctx, size)
	if err != nil {
		return s.stepError(ctx, exportAlloc, err)
	}
	if err := protect(func() { s.enc.write(buf, snap) }); err != nil {
		return fmt.Errorf("input: %w", err)
	}
	out, err := s.run.process(cctx, ptr, size)
	if err != nil {
		return s.stepError(ctx, exportProcess, err)
	}
	if out == nil {
		return nil
	}
	if _, err := s.dec.decode(out, s.opts.MaxMetrics, emit); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return nil
}

// stepError turns the deadline of a step into ErrTimeout; parent is the
// caller's context, whose own end is not the module's failure.
func (s *Stage) stepError(parent context.Context, step string, err error) error {
	if parent.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	switch step {
	case "compile":
		return fmt.Errorf("compile did not finish within %s (compile-timeout): %w", s.opts.CompileTimeout, ErrTimeout)
	case "start":
		return fmt.Errorf("start did not finish within %s: %w", s.opts.Timeout, ErrTimeout)
	}
	return fmt.Errorf("%s did not return within %s: %w", step, s.opts.Timeout, ErrTimeout)
}

// logModule logs a line of the module (hs.log) with the snapshot of the
// call in progress.
func (s *Stage) logModule(level slog.Level, msg string, truncated bool) {
	attrs := []any{"message", msg}
	if s.snapshot != "" {
		attrs = append(attrs, "snapshot", s.snapshot)
	}
	if truncated {
		attrs = append(attrs, "truncated", true)
	}
	s.logger.Log(context.Background(), level, "module log", attrs...)
}

func (s *Stage) flushLog() {
	if n := s.run.droppedLogs(); n > 0 {
		attrs := []any{"dropped", n, "limit", maxLogLines}
		if s.snapshot != "" {
			attrs = append(attrs, "snapshot", s.snapshot)
		}
		s.logger.Warn("module log lines dropped", attrs...)
	}
}

// Close kills the stage's child process (ending a call in flight at once)
// and releases the runtime, the compiled module and the shared memory. A
// trusted stage's call in flight cannot be stopped: Close waits for it.
// The stage must not be used after; Close may be called more than once.
func (s *Stage) Close() error {
	s.closing.Store(true)
	s.run.kill()
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.run.close()
}

var _ interface {
	engine.Stage
	engine.ColumnUser
} = (*Stage)(nil)
