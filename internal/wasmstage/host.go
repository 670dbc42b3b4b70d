package wasmstage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
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

// host is the part of a stage that runs the module: a wazero runtime, the
// compiled module and its current instance. It runs in the daemon for a
// trusted stage (timeout = 0) and in the child process otherwise (see
// isolate.go); the same code answers in both places. A host is not safe for
// concurrent use: its owner serializes the calls.
//
// Every method that runs guest code closes the instance when it fails, so
// that the next call starts from a fresh one; errors are classified with
// ErrTrap, ErrMemoryLimit and ErrMalformed.
type host struct {
	cfg      hostConfig
	runtime  wazero.Runtime
	cache    wazero.CompilationCache
	compiled wazero.CompiledModule
	hasInit  bool
	params   []byte // encoded hostConfig.params, nil without hs_init
	inst     *instance

	// Guest log lines of the current call (see beginCall).
	logged, dropped int
}

// hostConfig is what a host needs to know about its stage.
type hostConfig struct {
	memoryLimitMiB int
	cacheDir       string
	params         map[string]string
	// allocator backs the module's memory; nil lets wazero allocate it on
	// the Go heap.
	allocator experimental.MemoryAllocator
	// log receives the guest's log lines that pass the per-call limit.
	log func(level slog.Level, msg string, truncated bool)
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

// newHost compiles bin (through the compilation cache of cfg.cacheDir),
// checks its exports and imports against the ABI and provides its imports.
func newHost(ctx context.Context, bin []byte, cfg hostConfig) (_ *host, err error) {
	h := &host{cfg: cfg}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	// No WithCloseOnContextDone: its checks at every loop header of the
	// module cost up to half of a Go stage's time and miss loop-free
	// recursion. A stage with a timeout runs in a child process, which the
	// daemon kills at the deadline; a trusted one has no deadline.
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(uint32(cfg.memoryLimitMiB) * (1 << 20 / pageSize)).
		WithCloseOnContextDone(false)
	if cfg.cacheDir != "" {
		h.cache, err = wazero.NewCompilationCacheWithDir(cfg.cacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", cfg.cacheDir, err)
		}
		rc = rc.WithCompilationCache(h.cache)
	}
	h.runtime = wazero.NewRuntimeWithConfig(ctx, rc)
	h.compiled, err = h.runtime.CompileModule(ctx, bin)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	usesWASI, err := checkModule(h.compiled)
	if err != nil {
		return nil, err
	}
	_, err = h.runtime.NewHostModuleBuilder(hostModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(h.log), []api.ValueType{i32, i32, i32}, nil).
		WithParameterNames("level", "ptr", "len").
		Export(hostLog).
		Instantiate(ctx)
	if err != nil {
		return nil, fmt.Errorf("host module: %w", err)
	}
	if usesWASI {
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, h.runtime); err != nil {
			return nil, fmt.Errorf("wasi: %w", err)
		}
	}
	_, h.hasInit = h.compiled.ExportedFunctions()[exportInit]
	if len(cfg.params) > 0 && !h.hasInit {
		return nil, fmt.Errorf("the section has parameters (%s) but the module does not export %s", strings.Join(sortedKeys(cfg.params), ", "), exportInit)
	}
	if h.hasInit {
		h.params = encodeParams(sortedKeys(cfg.params), cfg.params)
	}
	return h, nil
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

// beginCall starts counting the guest's log lines of a new call.
func (h *host) beginCall() { h.logged, h.dropped = 0, 0 }

// instantiate closes the current instance and creates a new one:
// _initialize, then (first time only) the ABI version and the column list,
// then hs_init. It returns the columns when first.
func (h *host) instantiate(ctx context.Context, first bool) (columns []string, err error) {
	h.closeInstance()
	out := &headWriter{max: maxHead}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(exportInitialize).
		WithStdout(out).
		WithStderr(out)
	// No WithFS, WithEnv, WithArgs, WithSysWalltime, WithSysNanotime or
	// WithRandSource: no file system, no environment, no arguments, clocks
	// that start at a fixed time and advance 1 ms per reading, and a
	// deterministic random source.
	ictx := experimental.WithMemoryAllocator(ctx, h.cfg.allocator)
	mod, err := h.runtime.InstantiateModule(ictx, h.compiled, cfg)
	if err != nil {
		return nil, h.failed(nil, describe("instantiate", err, out))
	}
	inst := &instance{
		mod:     mod,
		mem:     mod.ExportedMemory(exportMemory),
		alloc:   mod.ExportedFunction(exportAlloc),
		process: mod.ExportedFunction(exportProcess),
		output:  out,
	}
	defer func() {
		if err != nil {
			inst.close()
		}
	}()
	if first {
		res, err := mod.ExportedFunction(exportABIVersion).Call(ctx)
		if err != nil {
			return nil, h.failed(inst, describe(exportABIVersion, err, out))
		}
		if v := int32(res[0]); v != ABIVersion {
			return nil, fmt.Errorf("ABI version %d, this host implements version %d", v, ABIVersion)
		}
		if fn := mod.ExportedFunction(exportColumns); fn != nil {
			res, err := fn.Call(ctx)
			if err != nil {
				return nil, h.failed(inst, describe(exportColumns, err, out))
			}
			if columns, err = readColumns(inst.mem, res[0]); err != nil {
				return nil, fmt.Errorf("%s: %w", exportColumns, err)
			}
		}
	}
	if h.hasInit {
		ptr, err := inst.allocate(ctx, len(h.params))
		if err != nil {
			return nil, h.failed(inst, err)
		}
		inst.mem.Write(ptr, h.params)
		res, err := mod.ExportedFunction(exportInit).Call(ctx, uint64(ptr), uint64(len(h.params)))
		if err != nil {
			return nil, h.failed(inst, describe(exportInit, err, out))
		}
		if rc := int32(res[0]); rc != 0 {
			return nil, fmt.Errorf("%s returned %d%s", exportInit, rc, out.suffix())
		}
	}
	h.inst = inst
	return columns, nil
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

// allocate calls hs_alloc and checks the region it returns. On failure
// the instance is closed.
func (h *host) allocate(ctx context.Context, size int) (uint32, error) {
	if h.inst == nil {
		return 0, errNoInstance
	}
	h.inst.output.reset()
	ptr, err := h.inst.allocate(ctx, size)
	if err != nil {
		return 0, h.failedCall(err)
	}
	return ptr, nil
}

// process calls hs_process(ptr, size) and returns its packed result. On
// failure the instance is closed.
func (h *host) process(ctx context.Context, ptr uint32, size int) (uint64, error) {
	inst := h.inst
	if inst == nil {
		return 0, errNoInstance
	}
	inst.stack[0], inst.stack[1] = uint64(ptr), uint64(size)
	if err := inst.process.CallWithStack(ctx, inst.stack[:]); err != nil {
		return 0, h.failedCall(describe(exportProcess, err, inst.output))
	}
	return inst.stack[0], nil
}

// errNoInstance: a call without an instance (a bug of the caller).
var errNoInstance = errors.New("no module instance")

// memory returns the memory of the current instance, nil without one.
func (h *host) memory() api.Memory {
	if h.inst == nil {
		return nil
	}
	return h.inst.mem
}

// failedCall classifies err and closes the instance.
func (h *host) failedCall(err error) error {
	err = h.failed(h.inst, err)
	h.closeInstance()
	return err
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

// closeInstance closes the current instance, if any.
func (h *host) closeInstance() {
	h.inst.close()
	h.inst = nil
}

// close releases the instance, the compiled module and the runtime.
func (h *host) close() error {
	var errs []error
	h.closeInstance()
	if h.runtime != nil {
		errs = append(errs, h.runtime.Close(context.Background()))
	}
	if h.cache != nil {
		errs = append(errs, h.cache.Close(context.Background()))
	}
	return errors.Join(errs...)
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

// failed classifies the error of a call into the module; inst is the
// instance it ran on (nil when instantiation failed). Errors that are not
// a guest's (a malformed allocation, say) are returned as they are.
func (h *host) failed(inst *instance, err error) error {
	var ge *guestError
	if !errors.As(err, &ge) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err // the caller knows its deadline
	}
	if inst != nil && inst.mem != nil {
		// A failed memory.grow is not visible to the host: a trap with the
		// memory close to the limit, or a Go runtime saying so, counts as
		// running out of memory.
		limit := uint64(h.cfg.memoryLimitMiB) << 20
		size := uint64(inst.mem.Size())
		if size+max(limit/8, 1<<20) >= limit || strings.Contains(ge.output, "out of memory") {
			return fmt.Errorf("%w (memory %.1f of %d MiB): %w", ge, float64(size)/(1<<20), h.cfg.memoryLimitMiB, ErrMemoryLimit)
		}
	}
	return fmt.Errorf("%w: %w", ge, ErrTrap)
}

// log is the host function hs.log(level, ptr, len).
func (h *host) log(ctx context.Context, mod api.Module, stack []uint64) {
	level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	if h.logged >= maxLogLines {
		h.dropped++
		return
	}
	truncated := n > maxLogBytes
	if truncated {
		n = maxLogBytes
	}
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		h.dropped++
		return
	}
	h.logged++
	if h.cfg.log != nil {
		h.cfg.log(guestLevel(level), string(b), truncated)
	}
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

// headWriter keeps the first max bytes written to it, to quote them when
// something fails: a guest's stdout and stderr during a call (a Go guest
// prints its panic message there), a child process's stderr (a Go fatal
// error). Safe for concurrent use.
type headWriter struct {
	max int
	mu  sync.Mutex
	buf []byte
}

// maxHead is what a call keeps of its guest's output.
const maxHead = 512

func (w *headWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (w *headWriter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = w.buf[:0]
}

func (w *headWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// firstLine returns the first line that says something: a Go runtime
// prints "fatal error: ..." or "panic: ..." first.
func (w *headWriter) firstLine() string {
	b, _, _ := strings.Cut(strings.TrimSpace(w.String()), "\n")
	return strings.TrimSpace(b)
}

func (w *headWriter) suffix() string {
	if l := w.firstLine(); l != "" {
		return fmt.Sprintf(" (guest output %q)", l)
	}
	return ""
}
