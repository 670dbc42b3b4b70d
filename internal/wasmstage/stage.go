package wasmstage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/haproxystats-go/haproxystats/engine"
)

// Export and import names of docs/ABI.md.
const (
	exportMemory     = "memory"
	exportABIVersion = "hs_abi_version"
	exportAlloc      = "hs_alloc"
	exportProcess    = "hs_process"
	exportColumns    = "hs_columns"
	exportInit       = "hs_init"
	exportInitialize = "_initialize"
	hostModule       = "hs"
	hostLog          = "log"
	wasiModule       = wasi_snapshot_preview1.ModuleName
)

// Guest log limits: lines per call (or per instantiation), bytes per line.
const (
	maxLogLines = 20
	maxLogBytes = 1024
)

const pageSize = 65536

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

type signature struct{ params, results []api.ValueType }

var requiredExports = map[string]signature{
	exportABIVersion: {nil, []api.ValueType{i32}},
	exportAlloc:      {[]api.ValueType{i32}, []api.ValueType{i32}},
	exportProcess:    {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
}

var optionalExports = map[string]signature{
	exportColumns:    {nil, []api.ValueType{i64}},
	exportInit:       {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	exportInitialize: {nil, nil},
}

// Stage runs one WebAssembly module as an engine.Stage.
//
// The module is compiled once by New. One instance of it serves every call:
// calls are serialized, so Process is safe for concurrent use but never runs
// the module on two goroutines at once, and the instance's memory (the
// stage's state) persists from one snapshot to the next. The snapshots
// reach the module in the order the calls take the stage's lock; the
// process daemon hands them over in timestamp order.
//
// A call that traps, exceeds Options.Timeout, runs out of memory, returns a
// malformed buffer or more than Options.MaxMetrics metrics returns an
// error (the pipeline then discards what the stage emitted for that
// snapshot and counts the error); the instance is closed and a fresh one
// is created by the next call, so the module's state is lost. State is also
// lost when the process restarts.
//
// Stage implements engine.Stage, engine.ColumnUser and io.Closer.
type Stage struct {
	opts     Options
	logger   *slog.Logger
	runtime  wazero.Runtime
	cache    wazero.CompilationCache
	compiled wazero.CompiledModule
	columns  []string
	params   []byte // encoded Options.Params, nil without hs_init
	hasInit  bool

	sem    chan struct{} // the lock; a channel so that waiting honours ctx
	inst   *instance     // nil when the next call must instantiate
	closed bool
	enc    encoder
	dec    decoder
}

// instance is one instantiation of the module with the exports it uses.
type instance struct {
	mod     api.Module
	mem     api.Memory
	alloc   api.Function
	process api.Function
	output  *headWriter // guest stdout and stderr
	stack   [2]uint64
}

// callState is what the host functions know about the current call.
type callState struct {
	snapshot string
	logged   int
	dropped  int
}

type callKey struct{}

// New reads and compiles the module of opts, checks its ABI, instantiates
// it (calling _initialize, then hs_init with opts.Params) and asks for its
// columns. Errors name the stage and the module file.
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
	bin, err := os.ReadFile(opts.Module)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", opts.Name, err)
	}
	if !bytes.HasPrefix(bin, []byte("\x00asm")) {
		return nil, fail(errors.New("not a WebAssembly module"))
	}
	s := &Stage{opts: opts, logger: logger.With("stage", opts.Name), sem: make(chan struct{}, 1)}
	ok := false
	defer func() {
		if !ok {
			s.shutdown(context.Background())
		}
	}()

	cfg := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(uint32(opts.MemoryLimitMiB) * (1 << 20 / pageSize)).
		WithCloseOnContextDone(opts.Timeout > 0)
	if opts.CacheDir != "" {
		if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("stage %s: compilation cache: %w", opts.Name, err)
		}
		s.cache, err = wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("stage %s: compilation cache %s: %w", opts.Name, opts.CacheDir, err)
		}
		cfg = cfg.WithCompilationCache(s.cache)
	}
	s.runtime = wazero.NewRuntimeWithConfig(ctx, cfg)
	s.compiled, err = s.runtime.CompileModule(ctx, bin)
	if err != nil {
		return nil, fail(fmt.Errorf("compile: %w", err))
	}
	usesWASI, err := checkModule(s.compiled)
	if err != nil {
		return nil, fail(err)
	}
	_, err = s.runtime.NewHostModuleBuilder(hostModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(s.log), []api.ValueType{i32, i32, i32}, nil).
		WithParameterNames("level", "ptr", "len").
		Export(hostLog).
		Instantiate(ctx)
	if err != nil {
		return nil, fail(fmt.Errorf("host module: %w", err))
	}
	if usesWASI {
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, s.runtime); err != nil {
			return nil, fail(fmt.Errorf("wasi: %w", err))
		}
	}
	_, s.hasInit = s.compiled.ExportedFunctions()[exportInit]
	if len(opts.Params) > 0 && !s.hasInit {
		keys := sortedKeys(opts.Params)
		return nil, fail(fmt.Errorf("[stage.%s] has parameters (%s) but the module does not export %s", opts.Name, strings.Join(keys, ", "), exportInit))
	}
	if s.hasInit {
		s.params = encodeParams(sortedKeys(opts.Params), opts.Params)
	}

	cctx, cancel := s.callContext(ctx)
	defer cancel()
	st := &callState{}
	cctx = context.WithValue(cctx, callKey{}, st)
	defer s.flushLog(st)
	inst, err := s.instantiate(cctx, true)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("start did not finish within %s: %w", opts.Timeout, ErrTimeout)
		}
		return nil, fail(err)
	}
	s.inst = inst
	ok = true
	return s, nil
}

// checkModule checks the exports and imports of a compiled module against
// the ABI and reports whether it imports WASI.
func checkModule(c wazero.CompiledModule) (usesWASI bool, err error) {
	exports := c.ExportedFunctions()
	var missing []string
	for _, name := range sortedKeys(requiredExports) {
		if _, ok := exports[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return false, fmt.Errorf("missing export %s (is it a module for ABI version %d?)", strings.Join(missing, ", "), ABIVersion)
	}
	for name, sig := range requiredExports {
		if err := checkSignature(name, exports[name], sig); err != nil {
			return false, err
		}
	}
	for name, sig := range optionalExports {
		if def, ok := exports[name]; ok {
			if err := checkSignature(name, def, sig); err != nil {
				return false, err
			}
		}
	}
	if _, ok := c.ExportedMemories()[exportMemory]; !ok {
		return false, fmt.Errorf("missing export %q (memory)", exportMemory)
	}
	if len(c.ImportedMemories()) > 0 {
		return false, errors.New("imports a memory; the module must define and export its own")
	}
	for _, def := range c.ImportedFunctions() {
		mod, name, _ := def.Import()
		switch mod {
		case wasiModule:
			usesWASI = true
		case hostModule:
			if name != hostLog {
				return false, fmt.Errorf("imports %s.%s, which the host does not provide (only %s.%s)", mod, name, hostModule, hostLog)
			}
			if err := checkSignature(mod+"."+name, def, signature{[]api.ValueType{i32, i32, i32}, nil}); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("imports %s.%s, which the host does not provide", mod, name)
		}
	}
	return usesWASI, nil
}

func checkSignature(name string, def api.FunctionDefinition, want signature) error {
	if !bytes.Equal(def.ParamTypes(), want.params) || !bytes.Equal(def.ResultTypes(), want.results) {
		return fmt.Errorf("%s has signature %s, want %s", name, sigString(def.ParamTypes(), def.ResultTypes()), sigString(want.params, want.results))
	}
	return nil
}

func sigString(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		var s []string
		for _, t := range ts {
			s = append(s, api.ValueTypeName(t))
		}
		return strings.Join(s, ", ")
	}
	return "(" + names(params) + ") -> (" + names(results) + ")"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// instantiate creates an instance: _initialize, then (first time only) the
// ABI version and column list, then hs_init.
func (s *Stage) instantiate(ctx context.Context, first bool) (*instance, error) {
	out := &headWriter{}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(exportInitialize).
		WithStdout(out).
		WithStderr(out)
	// No WithFS, WithEnv, WithArgs, WithSysWalltime, WithSysNanotime or
	// WithRandSource: no file system, no environment, no arguments, clocks
	// that start at a fixed time and advance 1 ms per reading, and a
	// deterministic random source.
	mod, err := s.runtime.InstantiateModule(ctx, s.compiled, cfg)
	if err != nil {
		return nil, describe("instantiate", err, out)
	}
	inst := &instance{
		mod:     mod,
		mem:     mod.ExportedMemory(exportMemory),
		alloc:   mod.ExportedFunction(exportAlloc),
		process: mod.ExportedFunction(exportProcess),
		output:  out,
	}
	ok := false
	defer func() {
		if !ok {
			inst.close()
		}
	}()
	if first {
		res, err := mod.ExportedFunction(exportABIVersion).Call(ctx)
		if err != nil {
			return nil, describe(exportABIVersion, err, out)
		}
		if v := int32(res[0]); v != ABIVersion {
			return nil, fmt.Errorf("ABI version %d, this host implements version %d", v, ABIVersion)
		}
		if fn := mod.ExportedFunction(exportColumns); fn != nil {
			res, err := fn.Call(ctx)
			if err != nil {
				return nil, describe(exportColumns, err, out)
			}
			if s.columns, err = readColumns(inst.mem, res[0]); err != nil {
				return nil, fmt.Errorf("%s: %w", exportColumns, err)
			}
		}
	}
	if s.hasInit {
		ptr, err := inst.allocate(ctx, len(s.params))
		if err != nil {
			return nil, err
		}
		inst.mem.Write(ptr, s.params)
		res, err := mod.ExportedFunction(exportInit).Call(ctx, uint64(ptr), uint64(len(s.params)))
		if err != nil {
			return nil, describe(exportInit, err, out)
		}
		if rc := int32(res[0]); rc != 0 {
			return nil, fmt.Errorf("%s returned %d%s", exportInit, rc, out.suffix())
		}
	}
	ok = true
	return inst, nil
}

// readColumns reads the space-separated column list hs_columns returned.
func readColumns(mem api.Memory, packed uint64) ([]string, error) {
	ptr, n := uint32(packed>>32), uint32(packed)
	if n == 0 {
		return nil, nil
	}
	if n > maxColumnsBytes {
		return nil, fmt.Errorf("column list of %d bytes, limit %d", n, maxColumnsBytes)
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("column list [%d, %d) outside memory of %d bytes", ptr, uint64(ptr)+uint64(n), mem.Size())
	}
	var cols []string
	seen := map[string]bool{}
	for _, f := range strings.Fields(string(b)) {
		if err := checkName("column", []byte(f)); err != nil || strings.ContainsRune(f, ',') {
			return nil, fmt.Errorf("invalid column name %q", f)
		}
		if !seen[f] {
			seen[f] = true
			cols = append(cols, f)
		}
	}
	if len(cols) > maxColumns {
		return nil, fmt.Errorf("%d columns, limit %d", len(cols), maxColumns)
	}
	return cols, nil
}

// allocate calls hs_alloc and checks the region it returns.
func (inst *instance) allocate(ctx context.Context, size int) (uint32, error) {
	inst.stack[0] = uint64(uint32(size))
	if err := inst.alloc.CallWithStack(ctx, inst.stack[:]); err != nil {
		return 0, describe(exportAlloc, err, inst.output)
	}
	ptr := uint32(inst.stack[0])
	switch {
	case ptr == 0:
		return 0, fmt.Errorf("%s(%d) returned 0: %w", exportAlloc, size, ErrMalformed)
	case ptr%8 != 0:
		return 0, fmt.Errorf("%s(%d) returned %d, not 8-byte aligned: %w", exportAlloc, size, ptr, ErrMalformed)
	case uint64(ptr)+uint64(size) > uint64(inst.mem.Size()):
		return 0, fmt.Errorf("%s(%d) returned %d, outside memory of %d bytes: %w", exportAlloc, size, ptr, inst.mem.Size(), ErrMalformed)
	}
	return ptr, nil
}

func (inst *instance) close() {
	if inst != nil && inst.mod != nil {
		_ = inst.mod.Close(context.Background())
	}
}

// Name reports the stage name.
func (s *Stage) Name() string { return s.opts.Name }

// Columns reports the `show stat` columns the module declared with
// hs_columns; only those are written into its memory.
func (s *Stage) Columns() []string { return append([]string(nil), s.columns...) }

// Process hands snap to the module and emits the metrics it returns. See
// the Stage documentation for what happens on failure.
func (s *Stage) Process(ctx context.Context, snap *engine.Snapshot, emit engine.Emitter) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.sem }()
	if s.closed {
		return ErrClosed
	}
	cctx, cancel := s.callContext(ctx)
	defer cancel()
	st := &callState{snapshot: snap.Name}
	cctx = context.WithValue(cctx, callKey{}, st)
	defer s.flushLog(st)

	if s.inst != nil && s.enc.full() {
		// The string table of the instance (docs/ABI.md 3.2) has grown
		// past its bounds: names churn. Start again with a new instance.
		s.logger.Warn("string table full, re-creating the instance (state lost)", "snapshot", snap.Name, "strings", len(s.enc.strs))
		s.inst.close()
		s.inst = nil
	}
	if s.inst == nil {
		inst, err := s.instantiate(cctx, false)
		if err != nil {
			return s.failed(ctx, nil, err)
		}
		s.inst = inst
		s.enc.reset()
	}
	if err := s.call(cctx, s.inst, snap, emit); err != nil {
		inst := s.inst
		s.inst = nil
		defer inst.close()
		return s.failed(ctx, inst, err)
	}
	return nil
}

func (s *Stage) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opts.Timeout > 0 {
		return context.WithTimeout(ctx, s.opts.Timeout)
	}
	return context.WithCancel(ctx)
}

// call runs one snapshot through the instance.
func (s *Stage) call(ctx context.Context, inst *instance, snap *engine.Snapshot, emit engine.Emitter) error {
	inst.output.reset()
	size, err := s.enc.plan(snap, s.columns)
	if err != nil {
		return err
	}
	if limit := uint64(s.opts.MemoryLimitMiB) << 20; uint64(size) >= limit {
		return fmt.Errorf("input of %d bytes does not fit in memory-limit %d MiB: %w", size, s.opts.MemoryLimitMiB, ErrMemoryLimit)
	}
	ptr, err := inst.allocate(ctx, size)
	if err != nil {
		return err
	}
	buf, ok := inst.mem.Read(ptr, uint32(size))
	if !ok { // allocate checked the bounds
		return fmt.Errorf("input [%d, %d) outside memory: %w", ptr, uint64(ptr)+uint64(size), ErrMalformed)
	}
	s.enc.write(buf, snap)

	inst.stack[0], inst.stack[1] = uint64(ptr), uint64(size)
	if err := inst.process.CallWithStack(ctx, inst.stack[:]); err != nil {
		return describe(exportProcess, err, inst.output)
	}
	packed := inst.stack[0]
	if packed == 0 {
		return nil
	}
	optr, olen := uint32(packed>>32), uint32(packed)
	out, ok := inst.mem.Read(optr, olen)
	if !ok {
		return fmt.Errorf("output [%d, %d) outside memory of %d bytes: %w", optr, uint64(optr)+uint64(olen), inst.mem.Size(), ErrMalformed)
	}
	if _, err := s.dec.decode(out, s.opts.MaxMetrics, emit); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return nil
}

// guestError is a failed call into the module.
type guestError struct {
	fn     string
	err    error
	output string // first line the guest wrote to stdout/stderr
}

func (e *guestError) Error() string {
	msg := e.err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] // wazero appends the wasm stack trace
	}
	if e.output != "" {
		return fmt.Sprintf("%s: %s (guest output %q)", e.fn, msg, e.output)
	}
	return e.fn + ": " + msg
}

func (e *guestError) Unwrap() error { return e.err }

func describe(fn string, err error, out *headWriter) error {
	return &guestError{fn: fn, err: err, output: out.firstLine()}
}

// failed classifies the error of a call; inst is the instance it ran on
// (nil when instantiation failed).
func (s *Stage) failed(parent context.Context, inst *instance, err error) error {
	if perr := parent.Err(); perr != nil {
		return perr
	}
	var ge *guestError
	if !errors.As(err, &ge) {
		return err
	}
	s.logger.Debug("wasm call failed", "error", ge.err)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s did not return within %s: %w", ge.fn, s.opts.Timeout, ErrTimeout)
	}
	if inst != nil && inst.mem != nil {
		// A failed memory.grow is not visible to the host: a trap with the
		// memory close to the limit, or a Go runtime saying so, counts as
		// running out of memory.
		limit := uint64(s.opts.MemoryLimitMiB) << 20
		size := uint64(inst.mem.Size())
		if size+max(limit/8, 1<<20) >= limit || strings.Contains(ge.output, "out of memory") {
			return fmt.Errorf("%w (memory %.1f of %d MiB): %w", ge, float64(size)/(1<<20), s.opts.MemoryLimitMiB, ErrMemoryLimit)
		}
	}
	return fmt.Errorf("%w: %w", ge, ErrTrap)
}

// log is the host function hs.log(level, ptr, len).
func (s *Stage) log(ctx context.Context, mod api.Module, stack []uint64) {
	level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	st, _ := ctx.Value(callKey{}).(*callState)
	if st == nil {
		return
	}
	if st.logged >= maxLogLines {
		st.dropped++
		return
	}
	truncated := n > maxLogBytes
	if truncated {
		n = maxLogBytes
	}
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		st.dropped++
		return
	}
	st.logged++
	attrs := []any{"message", string(b)}
	if st.snapshot != "" {
		attrs = append(attrs, "snapshot", st.snapshot)
	}
	if truncated {
		attrs = append(attrs, "truncated", true)
	}
	s.logger.Log(context.WithoutCancel(ctx), guestLevel(level), "module log", attrs...)
}

func guestLevel(l int32) slog.Level {
	switch {
	case l <= 0:
		return slog.LevelDebug
	case l == 1:
		return slog.LevelInfo
	case l == 2:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (s *Stage) flushLog(st *callState) {
	if st.dropped > 0 {
		attrs := []any{"dropped", st.dropped, "limit", maxLogLines}
		if st.snapshot != "" {
			attrs = append(attrs, "snapshot", st.snapshot)
		}
		s.logger.Warn("module log lines dropped", attrs...)
	}
}

// Close releases the instance, the compiled module and the runtime. It
// waits for a running call to finish. The stage must not be used after.
func (s *Stage) Close() error {
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.shutdown(context.Background())
}

func (s *Stage) shutdown(ctx context.Context) error {
	var errs []error
	s.inst.close()
	s.inst = nil
	if s.runtime != nil {
		errs = append(errs, s.runtime.Close(ctx))
	}
	if s.cache != nil {
		errs = append(errs, s.cache.Close(ctx))
	}
	return errors.Join(errs...)
}

// headWriter keeps the first bytes a guest writes to stdout or stderr
// during a call, to quote them when the call fails (a Go guest prints its
// panic message there).
type headWriter struct {
	buf []byte
}

const maxHead = 512

func (w *headWriter) Write(p []byte) (int, error) {
	if room := maxHead - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (w *headWriter) reset() { w.buf = w.buf[:0] }

func (w *headWriter) firstLine() string {
	b := bytes.TrimSpace(w.buf)
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func (w *headWriter) suffix() string {
	if l := w.firstLine(); l != "" {
		return fmt.Sprintf(" (guest output %q)", l)
	}
	return ""
}

var _ interface {
	engine.Stage
	engine.ColumnUser
} = (*Stage)(nil)
