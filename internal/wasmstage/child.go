package wasmstage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// The child process side of a stage (see isolate.go for the daemon's).

// childArg and childEnv mark a child process: the program is started again
// (/proc/self/exe) with childArg as its only argument and childEnv=1. A
// program whose main does not call IsChild exits at once on the unknown
// argument, and the stage reports it.
const (
	childArg = "--haproxystats-wasm-stage-child"
	childEnv = "HAPROXYSTATS_WASM_STAGE_CHILD"
)

// File descriptors of the child process.
const (
	childFdRequests = 3
	childFdReplies  = 4
	childFdMemory   = 5
)

// IsChild reports whether this process was started by a WASM stage to run
// its module. Every program that builds WASM stages (with a timeout) must
// call it first thing in main:
//
//	if wasmstage.IsChild() {
//		os.Exit(wasmstage.ChildMain())
//	}
func IsChild() bool {
	return len(os.Args) == 2 && os.Args[1] == childArg && os.Getenv(childEnv) == "1"
}

// ChildMain runs the module of the stage that started this process, until
// the stage closes its end of the control pipe, and returns the exit code.
// Call it only when IsChild reports true.
func ChildMain() int {
	// The daemon decides when this process ends (it closes the pipe or
	// kills it); a Ctrl-C in a terminal or systemd's SIGTERM to the whole
	// control group must not fail a call in flight.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if err := childLimits(); err != nil {
		fmt.Fprintln(os.Stderr, "wasm stage child:", err)
		return 1
	}
	c := &childServer{
		in:  bufio.NewReaderSize(os.NewFile(childFdRequests, "requests"), 64<<10),
		out: os.NewFile(childFdReplies, "replies"),
	}
	err := c.serve()
	if c.host != nil {
		c.host.close()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "wasm stage child:", err)
		return 1
	}
	return 0
}

// childLimits sets the limits that hold for the child's whole life: no
// core file, and SIGXCPU (the soft CPU limit, see setCPUBudget) kills the
// process even when the Go runtime cannot run any goroutine (wasm code
// that never returns to Go holds up a garbage collection forever). The Go
// runtime ignores SIGXCPU unless notified, so its action is set back to
// the kernel's default with a raw rt_sigaction: a zero struct sigaction is
// SIG_DFL, no flags, empty mask, whatever the architecture's layout.
func childLimits() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("setrlimit RLIMIT_CORE: %w", err)
	}
	var act [64]byte
	if _, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGXCPU), uintptr(unsafe.Pointer(&act[0])), 0, 8, 0, 0); errno != 0 {
		return fmt.Errorf("rt_sigaction SIGXCPU: %w", errno)
	}
	return nil
}

// setCPUBudget lets the process use seconds more CPU time from now on; past
// it the kernel sends SIGXCPU, which kills it (childLimits). The daemon
// kills a call at its wall-clock deadline; this limit is what stops a
// runaway module when the daemon itself died without killing it.
func setCPUBudget(seconds uint32) error {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return fmt.Errorf("getrusage: %w", err)
	}
	used := uint64(ru.Utime.Sec) + uint64(ru.Stime.Sec) + 1
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CPU, &lim); err != nil {
		return fmt.Errorf("getrlimit RLIMIT_CPU: %w", err)
	}
	lim.Cur = min(used+uint64(seconds), lim.Max)
	if err := unix.Setrlimit(unix.RLIMIT_CPU, &lim); err != nil {
		return fmt.Errorf("setrlimit RLIMIT_CPU: %w", err)
	}
	return nil
}

// setDataLimit caps the process's private writable memory (Go heap and
// stacks, wazero's tables and compiled code; not the module's memory,
// which is the shared memfd). Builds with the race detector cannot have
// one: its shadow memory is terabytes of such mappings.
func setDataLimit(soft, hard uint64) error {
	if raceEnabled {
		return nil
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_DATA, &lim); err != nil {
		return fmt.Errorf("getrlimit RLIMIT_DATA: %w", err)
	}
	// Never above a limit set from outside (systemd's LimitDATA=, say):
	// raising a hard limit is not allowed.
	hard = min(hard, lim.Max)
	if err := unix.Setrlimit(unix.RLIMIT_DATA, &unix.Rlimit{Cur: min(soft, hard), Max: hard}); err != nil {
		return fmt.Errorf("setrlimit RLIMIT_DATA: %w", err)
	}
	return nil
}

// dataSize returns the process's private writable memory (VmData).
func dataSize() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmData:")); ok {
			v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
			n, err := strconv.ParseUint(string(v), 10, 64)
			return n << 10, err
		}
	}
	return 0, errors.New("no VmData in /proc/self/status")
}

// childServer answers the requests of one stage.
type childServer struct {
	in      *bufio.Reader
	out     *os.File
	host    *host
	mem     *memfdAllocator
	callCPU uint32
	call    uint32 // the call whose log lines are being counted
}

func (c *childServer) serve() error {
	typ, r, err := readMsg(c.in, maxRequestFix+maxModuleSizeLimit)
	if err != nil {
		return err
	}
	if typ != msgStart {
		return fmt.Errorf("first message of type %d, want start: %w", typ, errProtocol)
	}
	if err := c.reply(c.start(r)); err != nil {
		return err
	}
	if c.host == nil {
		return nil // start failed and said so; the daemon kills us anyway
	}
	for {
		typ, r, err := readMsg(c.in, maxRequestFix)
		if err != nil {
			return err
		}
		var w *msgWriter
		switch typ {
		case msgInstantiate:
			w = c.instantiate(r)
		case msgAlloc:
			w = c.alloc(r)
		case msgProcess:
			w = c.process(r)
		default:
			return fmt.Errorf("message of type %d: %w", typ, errProtocol)
		}
		if err := c.reply(w); err != nil {
			return err
		}
	}
}

func (c *childServer) reply(w *msgWriter) error {
	_, err := c.out.Write(w.frame())
	return err
}

func (c *childServer) ok() *msgWriter {
	w := newMsg(msgReply).u8(kindOK)
	if c.host != nil {
		w.u32(uint32(c.host.dropped))
	} else {
		w.u32(0)
	}
	return w
}

func (c *childServer) fail(err error) *msgWriter {
	w := newMsg(msgReply).u8(errorKind(err))
	if c.host != nil {
		w.u32(uint32(c.host.dropped))
	} else {
		w.u32(0)
	}
	msg := err.Error()
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText]
	}
	return w.str(msg)
}

// start sets the limits, maps the module's memory and compiles the module.
func (c *childServer) start(r *msgReader) *msgWriter {
	memMiB := int(r.u32())
	dataLimit := r.u64()
	compileCPU := r.u32()
	c.callCPU = r.u32()
	cacheDir := r.str()
	params := map[string]string{}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		k := r.str()
		params[k] = r.str()
	}
	bin := r.bytes()
	if err := r.done(); err != nil {
		return c.fail(err)
	}
	if memMiB < 1 || memMiB > maxMemoryLimitMiB {
		return c.fail(fmt.Errorf("memory limit %d MiB: %w", memMiB, errProtocol))
	}
	if err := setDataLimit(dataLimit, dataLimit); err != nil {
		return c.fail(err)
	}
	if err := setCPUBudget(compileCPU); err != nil {
		return c.fail(err)
	}
	var err error
	c.mem, err = newMemfdAllocator(childFdMemory, memMiB)
	if err != nil {
		return c.fail(err)
	}
	c.host, err = newHost(context.Background(), bin, hostConfig{
		memoryLimitMiB: memMiB,
		cacheDir:       cacheDir,
		params:         params,
		allocator:      c.mem,
		log:            c.log,
	})
	if err != nil {
		return c.fail(err)
	}
	// What the compiler used goes back to the system, and from now on the
	// process may grow by at most childRunHeadroom: a module's tables and
	// whatever else it makes the runtime allocate stay bounded.
	bin = nil
	debug.FreeOSMemory()
	if used, err := dataSize(); err == nil {
		if err := setDataLimit(min(used+childRunHeadroom, dataLimit), dataLimit); err != nil {
			return c.fail(err)
		}
	}
	return c.ok()
}

func (c *childServer) beginCall(call uint32) error {
	if call != c.call {
		c.call = call
		c.host.beginCall()
	}
	return setCPUBudget(c.callCPU)
}

func (c *childServer) instantiate(r *msgReader) *msgWriter {
	call, first := r.u32(), r.u8() != 0
	if err := r.done(); err != nil {
		return c.fail(err)
	}
	if err := c.beginCall(call); err != nil {
		return c.fail(err)
	}
	cols, err := c.host.instantiate(context.Background(), first)
	if err != nil {
		return c.fail(err)
	}
	w := c.ok().u32(uint32(len(cols)))
	for _, col := range cols {
		w.str(col)
	}
	return w
}

func (c *childServer) alloc(r *msgReader) *msgWriter {
	call, size := r.u32(), r.u32()
	if err := r.done(); err != nil {
		return c.fail(err)
	}
	if err := c.beginCall(call); err != nil {
		return c.fail(err)
	}
	ptr, err := c.host.allocate(context.Background(), int(size))
	if err != nil {
		return c.fail(err)
	}
	return c.ok().u32(ptr)
}

func (c *childServer) process(r *msgReader) *msgWriter {
	call, ptr, size := r.u32(), r.u32(), r.u32()
	if err := r.done(); err != nil {
		return c.fail(err)
	}
	if err := c.beginCall(call); err != nil {
		return c.fail(err)
	}
	packed, err := c.host.process(context.Background(), ptr, int(size))
	if err != nil {
		return c.fail(err)
	}
	return c.ok().u64(packed)
}

// log sends a guest log line to the daemon (the host applied the per-call
// limit already).
func (c *childServer) log(level slog.Level, msg string, truncated bool) {
	t := byte(0)
	if truncated {
		t = 1
	}
	_ = c.reply(newMsg(msgLog).u32(uint32(int32(level))).u8(t).str(msg))
}

// memfdAllocator backs the module's linear memory with the memfd the
// daemon maps too, so that the daemon writes the input and reads the output
// in place. One memory at a time: a new instance's memory replaces the old
// one's (the host closes an instance before it creates the next).
type memfdAllocator struct {
	fd      int
	mapping []byte // limit bytes, MAP_SHARED
	current *memfdMemory
}

func newMemfdAllocator(fd int, limitMiB int) (*memfdAllocator, error) {
	m, err := unix.Mmap(fd, 0, limitMiB<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap memory: %w", err)
	}
	return &memfdAllocator{fd: fd, mapping: m}, nil
}

// Allocate implements experimental.MemoryAllocator.
func (a *memfdAllocator) Allocate(_, max uint64) experimental.LinearMemory {
	// A new memory starts zeroed: drop the previous instance's pages.
	_ = unix.Ftruncate(a.fd, 0)
	m := &memfdMemory{a: a, max: min(max, uint64(len(a.mapping)))}
	a.current = m
	return m
}

// memfdMemory is one instance's memory in the memfd.
type memfdMemory struct {
	a    *memfdAllocator
	max  uint64
	size uint64
}

// Reallocate implements experimental.LinearMemory: it grows the memfd;
// the mapping does not move.
func (m *memfdMemory) Reallocate(size uint64) []byte {
	if m.a.current != m || size > m.max {
		return nil
	}
	if size > m.size {
		if err := unix.Ftruncate(m.a.fd, int64(size)); err != nil {
			return nil
		}
		m.size = size
	}
	return m.a.mapping[:size:size]
}

// Free implements experimental.LinearMemory.
func (m *memfdMemory) Free() {
	if m.a.current == m {
		_ = unix.Ftruncate(m.a.fd, 0)
		m.a.current = nil
	}
}
