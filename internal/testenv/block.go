package testenv

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NamedPipe returns the path of a new named pipe that nobody writes to:
// opening it for reading blocks, the way a FIFO placed where a file is
// expected blocks a program that does not check. When the test ends it is
// opened for writing (without blocking) and closed, so that a reader still
// blocked in an abandoned goroutine returns.
func NamedPipe(t testing.TB) string {
	t.Helper()
	path := filepath.Join(ShortDir(t), "fifo")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatalf("mkfifo %s: %v", path, err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	return path
}

// ReturnsWithin runs f and returns its result, failing t if f has not
// returned after limit: it blocks. limit is a bound for a hang, not a
// timing to assert; f's goroutine is abandoned then.
func ReturnsWithin[T any](t testing.TB, limit time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(limit):
		t.Fatalf("%s has not returned after %v: it blocks", what, limit)
		var zero T
		return zero
	}
}

// StopsDuringStartup runs a program's run function and cancels its context
// a moment later, while its start-up blocks (the test arranges that), as
// the stop signal does; it fails t unless run returns within 30 s, exit 0,
// having logged "stopped during start-up".
func StopsDuringStartup(t *testing.T, what string, run func(ctx context.Context, stdout, stderr io.Writer) int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr Buffer // written by the abandoned start-up too
	code := ReturnsWithin(t, 30*time.Second, what+" stopped during start-up", func() int {
		go func() {
			time.Sleep(200 * time.Millisecond) // into the start-up; the test holds either way
			cancel()
		}()
		return run(ctx, &stdout, &stderr)
	})
	if code != 0 {
		t.Errorf("%s: exit %d after a stop during start-up, want 0\n%s", what, code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped during start-up") {
		t.Errorf("%s: no log line for the stop:\n%s", what, stderr.String())
	}
}

// SlowStage writes a WebAssembly stage configuration whose module takes
// seconds to compile (200,000 functions, each a loop), and returns the
// configuration text to add to a haproxystats.conf: a start-up that
// compiles it blocks that long, a legitimate step a stop must cut short.
// The module would fail the ABI checks once compiled; no test gets that
// far.
func SlowStage(t testing.TB) string {
	t.Helper()
	const n = 200_000
	leb := func(b []byte, v int) []byte {
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if v == 0 {
				return append(b, c)
			}
			b = append(b, c|0x80)
		}
	}
	section := func(b []byte, id byte, content []byte) []byte {
		return append(leb(append(b, id), len(content)), content...)
	}
	mod := []byte("\x00asm\x01\x00\x00\x00")
	mod = section(mod, 1, []byte{1, 0x60, 0, 0}) // one type: () -> ()
	funcs := leb(nil, n)
	for range n {
		funcs = append(funcs, 0)
	}
	mod = section(mod, 3, funcs)
	code := leb(nil, n)
	for range n {
		code = append(code, 7, 0, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b) // (loop (br 0))
	}
	mod = section(mod, 10, code)
	path := filepath.Join(t.TempDir(), "slow.wasm")
	if err := os.WriteFile(path, mod, 0o644); err != nil {
		t.Fatal(err)
	}
	return "[process]\nstages = slow\nstage-cache-dir = " + t.TempDir() + "\n[stage.slow]\nmodule = " + path + "\ntimeout = 1\n"
}

// Running is a Run(ctx) function running in a goroutine of the test: see
// Background.
type Running struct {
	what   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Background runs run in a goroutine with a context of its own until Stop,
// which the end of the test calls too (run is then expected to return).
func Background(t testing.TB, what string, run func(context.Context) error) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{what: what, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx)
	}()
	t.Cleanup(func() { r.Stop(t) })
	return r
}

// Stop cancels run's context and returns run's error once it returned,
// failing t if it has not after a minute (a bound for a hang, not a
// timing). Safe to call more than once.
func (r *Running) Stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(time.Minute):
		t.Fatalf("%s has not returned a minute after its context ended: it blocks", r.what)
		return nil
	}
}
