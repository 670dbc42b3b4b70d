package wasmstage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Limits of the child process (docs/ABI.md, "Isolation").
const (
	// childDataBase + childDataPerByte × the module's size caps the
	// child's private memory (RLIMIT_DATA) while it compiles the module:
	// the Go runtime and wazero take about 40 MiB, the compiler about 16
	// bytes per byte of module (a 2.7 MB Go module: 155 MiB).
	childDataBase    = 256 << 20
	childDataPerByte = 32
	// childRunHeadroom is how much the child's private memory may grow
	// once the module is compiled.
	childRunHeadroom = 128 << 20
	// childReapTimeout bounds the wait for a killed child to exit.
	childReapTimeout = 5 * time.Second
	// maxChildStderr is how much of the child's stderr is kept, to
	// explain its death.
	maxChildStderr = 4096
	// maxKeptOutput bounds the output copy kept between calls.
	maxKeptOutput = 16 << 20
)

// cpuBudget is the CPU time, in whole seconds, a child may use for a step
// whose wall-clock deadline is d: twice d (the garbage collector runs on
// other threads) plus a second.
func cpuBudget(d time.Duration) uint32 {
	s := math.Ceil(2*d.Seconds()) + 1
	return uint32(min(s, math.MaxUint32))
}

// isolated runs a stage's module in a child process: the running program
// started again with childArg, under the limits of childLimits,
// setDataLimit and setCPUBudget, talking over the protocol of protocol.go.
// The module's memory is a memfd that both processes map: the daemon
// writes the input buffer and reads the output buffer in place.
//
// Each step of a call has a deadline; when it passes, or the caller's
// context ends, the daemon kills the child (SIGKILL): nothing the module
// does can make a call outlast it. A killed or dead child is started again
// by the next call (start), which compiles the module again, from the
// compilation cache.
//
// The stage's lock serializes every method but kill, which may be called
// at any time (by Close) to end a call in flight.
type isolated struct {
	opts     Options
	bin      []byte
	exe      string
	cacheDir string
	tmpCache bool // cacheDir is ours, removed by close
	logf     func(level slog.Level, msg string, truncated bool)
	logger   *slog.Logger

	memfd *os.File
	mem   []byte // the daemon's mapping of memfd, MemoryLimitMiB long
	out   []byte // the last output, copied out of mem

	mu      sync.Mutex // guards proc and closing for kill
	proc    *childProc
	closing bool // kill was called: no new child
	call    uint32
	dropped int
}

// childProc is one child process.
type childProc struct {
	cmd     *exec.Cmd
	req     *os.File // requests, our end
	rep     *os.File // replies, our end
	rd      *bufio.Reader
	stderr  *headWriter
	exited  chan struct{} // closed when the process has been waited for
	waitErr error
	// The child's count of dropped log lines is per call, and every reply
	// carries it: what it said last, and for which call.
	dropped, dropCall uint32
}

// newIsolated prepares the shared memory; the child is started by start.
func newIsolated(opts Options, bin []byte, logf func(slog.Level, string, bool), logger *slog.Logger) (_ *isolated, err error) {
	c := &isolated{opts: opts, bin: bin, exe: opts.childExec, cacheDir: opts.CacheDir, logf: logf, logger: logger}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if c.exe == "" {
		// The running program's file, even when the package manager has
		// replaced it on disk since it started; its path when /proc is
		// not mounted.
		c.exe = "/proc/self/exe"
		if _, err := os.Stat(c.exe); err != nil {
			if c.exe, err = os.Executable(); err != nil {
				return nil, fmt.Errorf("the program's own file, to start the child process: %w", err)
			}
		}
	}
	if c.cacheDir == "" {
		// A restart after a kill compiles the module again: without a
		// configured cache that takes seconds for a Go module.
		if c.cacheDir, err = os.MkdirTemp("", "haproxystats-wasm-"+opts.Name+"-"); err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		c.tmpCache = true
	}
	fd, err := unix.MemfdCreate("wasm-stage-"+opts.Name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	c.memfd = os.NewFile(uintptr(fd), "wasm-stage-memory")
	if c.mem, err = unix.Mmap(fd, 0, opts.MemoryLimitMiB<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("mmap memory: %w", err)
	}
	return c, nil
}

// start starts the child process and has it compile the module, unless
// one is running already, and reports whether it did. Its deadline is
// Options.CompileTimeout.
func (c *isolated) start(ctx context.Context) (bool, error) {
	if p := c.proc; p != nil {
		if !exited(p) {
			return false, nil
		}
		// Died between two calls (killed from outside): start again.
		c.logger.Warn("wasm stage child process died, starting a new one (state lost)", "error", c.deathCause(p))
		c.stopChild()
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.CompileTimeout)
	defer cancel()
	if err := c.spawn(); err != nil {
		return true, err
	}
	keys := sortedKeys(c.opts.Params)
	w := newMsg(msgStart).
		u32(uint32(c.opts.MemoryLimitMiB)).
		u64(uint64(childDataBase + childDataPerByte*len(c.bin))).
		u32(cpuBudget(c.opts.CompileTimeout)).
		u32(cpuBudget(c.opts.Timeout)).
		str(c.cacheDir).
		u32(uint32(len(keys)))
	for _, k := range keys {
		w.str(k).str(c.opts.Params[k])
	}
	w.bytes(c.bin)
	if _, err := c.roundTrip(ctx, "compile", w); err != nil {
		c.stopChild()
		return true, err
	}
	return true, nil
}

func (c *isolated) spawn() error {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start child process: %w", err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return fmt.Errorf("start child process: %w", err)
	}
	p := &childProc{req: reqW, rep: repR, rd: bufio.NewReaderSize(repR, 64<<10), stderr: &headWriter{max: maxChildStderr}, exited: make(chan struct{})}
	cmd := exec.Command(c.exe, childArg)
	cmd.Args[0] = "haproxystats-wasm-stage-" + c.opts.Name
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.ExtraFiles = []*os.File{reqR, repW, c.memfd}
	cmd.Stderr = p.stderr
	cmd.WaitDelay = time.Second
	// Its own process group: a Ctrl-C meant for the daemon in a terminal
	// does not reach it (the daemon ends it). Killed when the daemon dies,
	// however it dies (strictly: when the thread that started it exits,
	// which the Go runtime does only for a goroutine that locked its
	// thread and ended without unlocking it; nothing here does).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		reqR.Close()
		repW.Close()
		reqW.Close()
		repR.Close()
		return ErrClosed
	}
	err = cmd.Start()
	reqR.Close()
	repW.Close()
	if err != nil {
		reqW.Close()
		repR.Close()
		return fmt.Errorf("start child process %s: %w", c.exe, err)
	}
	p.cmd = cmd
	c.proc = p
	c.mu.Unlock()
	// The stage's only goroutine: it reaps the child and ends with it.
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return nil
}

// killChild kills the child process, if any, at once; the call in flight,
// if any, then fails. Safe to call at any time.
func (c *isolated) killChild() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		_ = c.proc.cmd.Process.Kill()
	}
}

// kill kills the child process and makes sure no other is started: the
// stage is closing. Safe to call at any time.
func (c *isolated) kill() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.killChild()
}

// stopChild kills the child, waits (a bounded time) for it to exit and
// frees the module's memory.
func (c *isolated) stopChild() {
	p := c.proc
	if p == nil {
		return
	}
	c.killChild()
	c.mu.Lock()
	c.proc = nil
	c.mu.Unlock()
	p.req.Close()
	p.rep.Close()
	select {
	case <-p.exited:
	case <-time.After(childReapTimeout):
		c.logger.Error("wasm stage child process still running after SIGKILL", "pid", p.cmd.Process.Pid, "waited", childReapTimeout)
	}
	if c.memfd != nil {
		_ = unix.Ftruncate(int(c.memfd.Fd()), 0)
	}
}

// roundTrip sends a request and returns the child's reply, logging the
// log lines that come before it. When ctx ends first, the child is killed
// and ctx's error returned; when the child dies or breaks the protocol,
// it is killed and an error says why. The child is left running only after
// a reply.
func (c *isolated) roundTrip(ctx context.Context, step string, w *msgWriter) (*msgReader, error) {
	p := c.proc
	if p == nil {
		return nil, errors.New("no child process")
	}
	// The kill is this round trip's child's, not whichever c.proc is by
	// the time ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = p.cmd.Process.Kill() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		// Also a deadline on the pipes, should the kill not end the
		// child (a process stuck in the kernel).
		_ = p.req.SetWriteDeadline(d.Add(time.Second))
		_ = p.rep.SetReadDeadline(d.Add(time.Second))
	} else {
		_ = p.req.SetWriteDeadline(time.Time{})
		_ = p.rep.SetReadDeadline(time.Time{})
	}
	fail := func(err error) (*msgReader, error) {
		c.stopChild()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("%s: %w", step, c.deathError(p, err))
	}
	if _, err := p.req.Write(w.frame()); err != nil {
		return fail(err)
	}
	logs := 0
	for {
		typ, r, err := readMsg(p.rd, maxReply)
		if err != nil {
			return fail(err)
		}
		switch typ {
		case msgLog:
			level, truncated, text := slog.Level(int32(r.u32())), r.u8() != 0, r.str()
			if err := r.done(); err != nil {
				return fail(err)
			}
			if logs++; logs > maxLogLines {
				return fail(fmt.Errorf("more than %d log lines: %w", maxLogLines, errProtocol))
			}
			if len(text) > maxLogBytes {
				text, truncated = text[:maxLogBytes], true
			}
			c.logf(level, text, truncated)
		case msgReply:
			if !stop() {
				// ctx ended as the reply came: the kill is under way,
				// and is this call's, not the next one's.
				c.stopChild()
				return nil, ctx.Err()
			}
			kind, dropped := r.u8(), r.u32()
			// The child's count so far in this call: add what is new
			// since its last reply (a call is several round trips, and
			// may span two children).
			if p.dropCall != c.call {
				p.dropCall, p.dropped = c.call, 0
			}
			if dropped > p.dropped {
				c.dropped += int(dropped - p.dropped)
			}
			p.dropped = dropped
			if kind != kindOK {
				msg := r.str()
				if err := r.done(); err != nil {
					return fail(err)
				}
				return nil, newRemoteError(kind, msg)
			}
			return r, r.err
		default:
			return fail(fmt.Errorf("message of type %d: %w", typ, errProtocol))
		}
	}
}

// deathCause describes how the child p ended, from its exit status and the
// first line it wrote to stderr (a Go fatal error).
func (c *isolated) deathCause(p *childProc) string {
	var b strings.Builder
	select {
	case <-p.exited:
		b.WriteString(p.cmd.ProcessState.String())
	default:
		b.WriteString("still running")
	}
	if line := p.stderr.firstLine(); line != "" {
		fmt.Fprintf(&b, ": %q", line)
	}
	return b.String()
}

// deathError is the error of a call whose child process died or broke the
// protocol (ioErr).
func (c *isolated) deathError(p *childProc, ioErr error) error {
	// stopChild has waited for p to exit (a bounded time).
	cause := c.deathCause(p)
	stderr := p.stderr.String()
	switch {
	case errors.Is(ioErr, errProtocol):
		return fmt.Errorf("child process broke the protocol (%v), killed: %w", ioErr, ErrCrashed)
	case strings.Contains(stderr, "out of memory") || strings.Contains(stderr, "cannot allocate memory"):
		return fmt.Errorf("child process ran out of memory (%s): %w", cause, ErrMemoryLimit)
	case exited(p) && signaledWith(p.cmd.ProcessState, syscall.SIGXCPU):
		return fmt.Errorf("child process used up its CPU time (%s): %w", cause, ErrTimeout)
	case strings.Contains(stderr, childArg):
		return fmt.Errorf("child process %s does not run WASM stages (its main must call wasmstage.IsChild): %s: %w", c.exe, cause, ErrCrashed)
	}
	return fmt.Errorf("child process died (%s): %w", cause, ErrCrashed)
}

// exited reports whether p has been waited for.
func exited(p *childProc) bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func signaledWith(ps *os.ProcessState, sig syscall.Signal) bool {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// beginCall starts a new call: the child counts its log lines from here.
func (c *isolated) beginCall() {
	c.call++
	c.dropped = 0
}

func (c *isolated) droppedLogs() int { return c.dropped }

// instantiate has the child replace its module instance by a new one.
func (c *isolated) instantiate(ctx context.Context, first bool) ([]string, error) {
	f := byte(0)
	if first {
		f = 1
	}
	r, err := c.roundTrip(ctx, "instantiate", newMsg(msgInstantiate).u32(c.call).u8(f))
	if err != nil {
		return nil, err
	}
	n := r.u32()
	if n > maxColumns {
		c.stopChild()
		return nil, fmt.Errorf("child process sent %d columns: %w", n, ErrCrashed)
	}
	var cols []string
	for ; n > 0; n-- {
		cols = append(cols, r.str())
	}
	if err := r.done(); err != nil {
		c.stopChild()
		return nil, fmt.Errorf("child process: %w: %w", err, ErrCrashed)
	}
	return cols, nil
}

// input calls hs_alloc(size) in the child and returns where the input
// goes: size bytes of the shared memory.
func (c *isolated) input(ctx context.Context, size int) (uint32, []byte, error) {
	r, err := c.roundTrip(ctx, exportAlloc, newMsg(msgAlloc).u32(c.call).u32(uint32(size)))
	if err != nil {
		return 0, nil, err
	}
	ptr := r.u32()
	if err := r.done(); err != nil {
		c.stopChild()
		return 0, nil, fmt.Errorf("child process: %w: %w", err, ErrCrashed)
	}
	// The child checked the region against the module's memory; check it
	// against what the memfd holds, so that writing it cannot fault.
	if end := uint64(ptr) + uint64(size); end > c.memSize() {
		c.stopChild()
		return 0, nil, fmt.Errorf("child process: input [%d, %d) outside the memory of %d bytes: %w", ptr, end, c.memSize(), ErrCrashed)
	}
	return ptr, c.mem[ptr : int(ptr)+size], nil
}

// process calls hs_process(ptr, size) in the child and returns a copy of
// the output buffer (nil for none), valid until the next call.
func (c *isolated) process(ctx context.Context, ptr uint32, size int) ([]byte, error) {
	r, err := c.roundTrip(ctx, exportProcess, newMsg(msgProcess).u32(c.call).u32(ptr).u32(uint32(size)))
	if err != nil {
		return nil, err
	}
	packed := r.u64()
	if err := r.done(); err != nil {
		c.stopChild()
		return nil, fmt.Errorf("child process: %w: %w", err, ErrCrashed)
	}
	if packed == 0 {
		return nil, nil
	}
	optr, olen := uint32(packed>>32), uint32(packed)
	if end, size := uint64(optr)+uint64(olen), c.memSize(); end > size {
		return nil, fmt.Errorf("output [%d, %d) outside memory of %d bytes: %w", optr, end, size, ErrMalformed)
	}
	// A copy, so that what the decoder checks is what it uses whatever
	// the child does with the shared memory meanwhile; a large buffer is
	// not kept for the next call.
	if cap(c.out) > maxKeptOutput {
		c.out = nil
	}
	if err := protect(func() { c.out = append(c.out[:0], c.mem[optr:optr+olen]...) }); err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	return c.out, nil
}

// memSize returns the size of the module's memory: the memfd's, which is
// what the daemon may touch without a fault.
func (c *isolated) memSize() uint64 {
	var st unix.Stat_t
	if err := unix.Fstat(int(c.memfd.Fd()), &st); err != nil || st.Size < 0 {
		return 0
	}
	return min(uint64(st.Size), uint64(len(c.mem)))
}

// close kills the child and releases the shared memory and the private
// compilation cache.
func (c *isolated) close() error {
	c.stopChild()
	var errs []error
	if c.mem != nil {
		errs = append(errs, unix.Munmap(c.mem))
		c.mem = nil
	}
	if c.memfd != nil {
		errs = append(errs, c.memfd.Close())
		c.memfd = nil
	}
	if c.tmpCache {
		errs = append(errs, os.RemoveAll(c.cacheDir))
		c.tmpCache = false
	}
	return errors.Join(errs...)
}

// protect runs f, which touches memory shared with the child, and turns a
// fault (the child shrank the memfd under us) into an error instead of a
// crash of the daemon.
func protect(f func()) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			if re, ok := v.(interface{ Addr() uintptr }); ok {
				err = fmt.Errorf("fault at %#x in the module's memory: %w", re.Addr(), ErrCrashed)
				return
			}
			panic(v)
		}
	}()
	f()
	return nil
}
