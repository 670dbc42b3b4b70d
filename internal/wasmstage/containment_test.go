package wasmstage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
)

// The tests of this file feed the stage modules that misbehave in the ways
// docs/ABI.md's "Isolation" section says are contained, and check that
// every call and start-up step ends within its deadline, the process
// running the tests survives, the error names the stage and the file, and
// the next call works.

// containedChild returns the child program for tests that need the child's
// data limit: the test binary itself ("") unless it is built with the race
// detector, which rules the limit out; then a program built without it
// from testdata/child.
func containedChild(t testing.TB) string {
	t.Helper()
	if !raceEnabled {
		return ""
	}
	return goBuild(t, filepath.Join(buildDir, "child", "child"), "", []string{"CGO_ENABLED=0"}, "./testdata/child")
}

// leb encodes v as unsigned LEB128.
func leb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		if v >>= 7; v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// wasmModule returns a module made of the given sections.
func wasmModule(sections ...[]byte) []byte {
	return append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Join(sections, nil)...)
}

// wasmSection returns a section with its id and size.
func wasmSection(id byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return append(append([]byte{id}, leb(uint64(len(b)))...), b...)
}

// oneFunction returns a module with one function () -> () whose body (after
// the local declarations, included in body) is body.
func oneFunction(body []byte) []byte {
	return wasmModule(
		wasmSection(sectionType, leb(1), []byte{0x60, 0, 0}),
		wasmSection(sectionFunction, leb(1), leb(0)),
		wasmSection(sectionCode, leb(1), leb(uint64(len(body))), body),
	)
}

func writeModule(t *testing.T, name string, bin []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".wasm")
	if err := os.WriteFile(path, bin, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// newFails runs New and checks that it fails within bound with an error
// naming the stage and the file and matching want.
func newFails(t *testing.T, opts Options, bound time.Duration, want func(error) bool) error {
	t.Helper()
	opts.Name = "hostile"
	start := time.Now()
	s, err := New(context.Background(), opts, nil)
	elapsed := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatalf("New(%s) succeeded", opts.Module)
	}
	if !strings.Contains(err.Error(), "stage hostile") || !strings.Contains(err.Error(), opts.Module) || !want(err) {
		t.Errorf("New(%s) = %v, want the stage, the file and the expected error", opts.Module, err)
	}
	if elapsed > bound {
		t.Errorf("New(%s) returned after %v, want within %v", opts.Module, elapsed, bound)
	}
	return err
}

// TestSectionCountBombs: modules of 17-28 bytes whose sections declare four
// billion entries, which wazero would allocate before reading any, are
// refused before they reach wazero.
func TestSectionCountBombs(t *testing.T) {
	huge := leb(0xffffffff)
	name := append(leb(4), "name"...)
	tests := []struct {
		name string
		bin  []byte
	}{
		{"types", wasmModule(wasmSection(sectionType, huge, []byte{0x60, 0, 0}))},
		{"imports", wasmModule(wasmSection(sectionImport, huge, []byte("\x00\x00\x00\x00")))},
		{"functions", wasmModule(wasmSection(sectionFunction, huge, []byte{0, 0, 0}))},
		{"tables", wasmModule(wasmSection(sectionTable, huge, []byte{0x70, 0, 0}))},
		{"memories", wasmModule(wasmSection(sectionMemory, huge, []byte{0, 1}))},
		{"globals", wasmModule(wasmSection(sectionGlobal, huge, []byte{0x7f, 0, 0x41, 0, 0x0b}))},
		{"exports", wasmModule(wasmSection(sectionExport, huge, []byte{0, 0, 0}))},
		{"elements", wasmModule(wasmSection(sectionElement, huge, []byte{1, 0, 0}))},
		{"code", wasmModule(wasmSection(sectionCode, huge, []byte{2, 0, 0x0b}))},
		{"data", wasmModule(wasmSection(sectionData, huge, []byte{1, 0}))},
		{"tags", wasmModule(wasmSection(sectionTag, huge, []byte{0, 0}))},
		{"function names", wasmModule(wasmSection(sectionCustom, name, wasmSection(1, huge, []byte{0, 0})))},
		{"local names", wasmModule(wasmSection(sectionCustom, name, wasmSection(2, huge, []byte{0, 0})))},
		{"locals of one function", wasmModule(wasmSection(sectionCustom, name, wasmSection(2, leb(1), leb(0), huge, []byte{0, 0})))},
		{"section past the end", wasmModule([]byte{sectionCode}, leb(1000), []byte{1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.bin) > 28 {
				t.Fatalf("the module is %d bytes, the point is a tiny one", len(tt.bin))
			}
			module := writeModule(t, "bomb", tt.bin)
			for _, timeout := range []time.Duration{time.Second, 0} { // child process and trusted
				newFails(t, Options{Module: module, Timeout: timeout}, 10*time.Second, func(err error) bool {
					return errors.Is(err, errPrecheck)
				})
			}
		})
	}
}

// TestModuleSizeLimit: a 50 MB function takes gigabytes to compile; a file
// over module-size-limit is refused before it is read.
func TestModuleSizeLimit(t *testing.T) {
	body := append(bytes.Repeat([]byte{0x41, 0x00, 0x1a}, 50<<20/3), 0x0b) // i32.const 0, drop; end
	module := writeModule(t, "big", oneFunction(append([]byte{0}, body...)))
	err := newFails(t, Options{Module: module, Timeout: time.Second}, 10*time.Second, func(err error) bool {
		return errors.Is(err, ErrModuleTooLarge) && strings.Contains(err.Error(), "module-size-limit 33554432 bytes")
	})
	t.Log(err)
	small := writeModule(t, "small", oneFunction([]byte{0, 0x0b}))
	newFails(t, Options{Module: small, Timeout: time.Second, ModuleSizeLimitMiB: 1}, 10*time.Second, func(err error) bool {
		return !errors.Is(err, ErrModuleTooLarge) // the limit lets it through to the ABI checks
	})
}

// TestCompileBombs: modules that pass the section checks but make the
// compiler take all the memory or all the time are stopped by the child's
// data limit and the compile-timeout, and the test process never sees them.
func TestCompileBombs(t *testing.T) {
	exe := containedChild(t)
	const n = 100000
	nested := func(open []byte) []byte {
		b := []byte{0} // no locals
		b = append(b, bytes.Repeat(open, n)...)
		b = append(b, bytes.Repeat([]byte{0x0b}, n)...)
		return append(b, 0x0b)
	}
	tests := []struct {
		name string
		bin  []byte
		want func(error) bool
	}{
		// One function declaring 4,294,967,295 locals: 4 GiB allocated
		// and filled one by one while decoding.
		{"four billion locals", oneFunction([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7f, 0x0b}), func(err error) bool {
			return errors.Is(err, ErrMemoryLimit)
		}},
		// 100,000 nested blocks (300 KB): a minute or more of validation.
		{"nested blocks", oneFunction(nested([]byte{0x02, 0x40})), func(err error) bool {
			return errors.Is(err, ErrTimeout) || errors.Is(err, ErrMemoryLimit)
		}},
		// 100,000 nested ifs: minutes and hundreds of MiB.
		{"nested ifs", oneFunction(nested([]byte{0x41, 0x00, 0x04, 0x40})), func(err error) bool {
			return errors.Is(err, ErrTimeout) || errors.Is(err, ErrMemoryLimit)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			module := writeModule(t, "bomb", tt.bin)
			err := newFails(t, Options{Module: module, Timeout: time.Second, CompileTimeout: 2 * time.Second, childExec: exe}, 30*time.Second, tt.want)
			t.Log(err)
		})
	}
}

// TestCompileCanceled: the daemon's stop (its context) ends a start-up
// whose compilation would run for minutes.
func TestCompileCanceled(t *testing.T) {
	b := []byte{0}
	b = append(b, bytes.Repeat([]byte{0x41, 0x00, 0x04, 0x40}, 100000)...)
	b = append(b, bytes.Repeat([]byte{0x0b}, 100001)...)
	module := writeModule(t, "bomb", oneFunction(b))
	// The bomb reaches the child's memory limit after about 300 ms on a
	// quiet machine: the stop comes well before.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	s, err := New(ctx, Options{Name: "hostile", Module: module, Timeout: time.Second, CompileTimeout: time.Hour, childExec: containedChild(t)}, nil)
	if err == nil {
		s.Close()
		t.Fatal("New succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Errorf("New(canceled) = %v, want the context's error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("New returned %v after its context ended", d)
	}
}

// TestLoopFreeRecursion: exponential recursion without a loop is invisible
// to wazero's cancellation checks; the child running it is killed at the
// timeout and the next call gets a fresh instance in a new child.
func TestLoopFreeRecursion(t *testing.T) {
	const timeout = 500 * time.Millisecond
	s := newStage(t, Options{Module: wat(t, "hostile"), Timeout: timeout})
	for range 2 {
		start := time.Now()
		err := s.Process(context.Background(), snap(18), &recorder{})
		if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "hs_process did not return within 500ms") || !strings.Contains(err.Error(), s.opts.Module) {
			t.Fatalf("Process(recursion) = %v, want ErrTimeout naming the file", err)
		}
		if d := time.Since(start); d > timeout+10*time.Second {
			t.Errorf("Process(recursion) returned after %v, timeout %v", d, timeout)
		}
		if c1, c2 := calls(t, s), calls(t, s); c1 != 1 || c2 != 2 {
			t.Errorf("calls = %v, %v after the kill, want 1, 2 (fresh instance)", c1, c2)
		}
	}
}

// TestCloseStopsRunawayCall: Close (the daemon stopping) does not wait for
// a call that would never end, even with a timeout of an hour; neither does
// the caller's context.
func TestCloseStopsRunawayCall(t *testing.T) {
	s, err := New(context.Background(), Options{Name: "x", Module: wat(t, "hostile"), Timeout: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Process(context.Background(), snap(18), &recorder{}) }()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("Process(recursion) succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Process(recursion) still running 10s after Close")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %v", d)
	} else {
		t.Logf("Close took %v", d)
	}

	s = newStage(t, Options{Module: wat(t, "hostile"), Timeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Process(ctx, snap(18), &recorder{}); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Errorf("Process(recursion, canceled) = %v, want the context's error", err)
	}
	if c := calls(t, s); c != 1 {
		t.Errorf("calls = %v after the cancellation, want 1", c)
	}
}

// TestTableGrowth: tables live outside the linear memory, so memory-limit
// does not bound table.grow; the child's data limit does, and the child's
// memory stays within memory-limit plus the documented constant while it
// grows its table until it dies.
func TestTableGrowth(t *testing.T) {
	s := newStage(t, Options{Module: wat(t, "hostile"), Timeout: 30 * time.Second, MemoryLimitMiB: 16, childExec: containedChild(t)})
	pid := s.run.(*isolated).proc.cmd.Process.Pid
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Max data size +([0-9]+) +([0-9]+) +bytes`).FindStringSubmatch(string(limits))
	fi, _ := os.Stat(s.opts.Module)
	compileLimit := uint64(childDataBase + childDataPerByte*fi.Size())
	if m == nil {
		t.Fatalf("the child has no data limit:\n%s", limits)
	}
	if soft, _ := strconv.ParseUint(m[1], 10, 64); soft > compileLimit || soft == 0 {
		t.Errorf("the child's data limit is %d bytes, want at most %d", soft, compileLimit)
	}

	done := make(chan error, 1)
	go func() { done <- s.Process(context.Background(), snap(22), &recorder{}) }()
	var hwm uint64
	deadline := time.After(time.Minute)
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-deadline:
			t.Fatal("Process(table growth) still running after a minute")
		case <-time.After(5 * time.Millisecond):
			hwm = max(hwm, procStatus(pid, "VmHWM"))
		}
	}
	if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), s.opts.Module) {
		t.Fatalf("Process(table growth) = %v, want ErrMemoryLimit naming the file", err)
	}
	exe, _ := os.Stat("/proc/self/exe")
	if s.opts.childExec != "" {
		exe, _ = os.Stat(s.opts.childExec)
	}
	bound := 16<<20 + compileLimit + uint64(exe.Size())
	if hwm > bound {
		t.Errorf("child peak RSS %.1f MiB, want at most %.1f (memory-limit + data limit + program text)", float64(hwm)/(1<<20), float64(bound)/(1<<20))
	}
	t.Logf("%v; child peak RSS at least %.1f MiB", err, float64(hwm)/(1<<20))
	if c := calls(t, s); c != 1 {
		t.Errorf("calls = %v after the child ran out of memory, want 1", c)
	}
}

// TestNameCache: names of an output that is then rejected are not kept,
// and the cache of accepted names is bounded in bytes.
func TestNameCache(t *testing.T) {
	s := newStage(t, Options{Module: wat(t, "hostile"), Timeout: 5 * time.Second, MemoryLimitMiB: 16})
	for i := 1; i <= 12; i++ {
		err := s.Process(context.Background(), snap(i<<16|20), &recorder{})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "metric 60: unknown scope 9") {
			t.Fatalf("Process(names, then a bad record) = %v", err)
		}
		if n, b := len(s.dec.names), s.dec.bytes; n != 0 || b != 0 {
			t.Fatalf("after %d failed calls the name cache holds %d names, %d bytes; want none", i, n, b)
		}
	}
	for i := 1; i <= 12; i++ {
		var r recorder
		if err := s.Process(context.Background(), snap(i<<16|21), &r); err != nil || len(r.metrics) != 60 {
			t.Fatalf("Process(names) = %v, %d metrics; want 60", err, len(r.metrics))
		}
		if n, b := len(s.dec.names), s.dec.bytes; n > maxCachedNames || b > maxCachedNameBytes {
			t.Fatalf("name cache holds %d names, %d bytes; limits %d, %d", n, b, maxCachedNames, maxCachedNameBytes)
		}
	}
}

// TestChildKilledBetweenCalls: a child killed from outside while idle is
// replaced by the next call, with a warning.
func TestChildKilledBetweenCalls(t *testing.T) {
	var logs syncBuffer
	s, err := New(context.Background(), Options{Name: "x", Module: wat(t, "hostile"), Timeout: time.Second}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	calls(t, s)
	p := s.run.(*isolated).proc
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the child did not exit within 10s of SIGKILL")
	}
	if c := calls(t, s); c != 1 {
		t.Errorf("calls = %v after the child was killed, want 1", c)
	}
	if !strings.Contains(logs.String(), "child process died") || !strings.Contains(logs.String(), "stage=x") {
		t.Errorf("no warning naming the stage:\n%s", logs.String())
	}
}

// TestChildWithoutHook: a program whose main does not call IsChild is
// refused with an error that says so.
func TestChildWithoutHook(t *testing.T) {
	exe, err := exec.LookPath("wat2wasm") // any program that refuses an unknown option
	if err != nil {
		t.Skip("SKIPPED: wat2wasm not found; install it with `apt-get install -y wabt`")
	}
	newFails(t, Options{Module: wat(t, "hostile"), Timeout: time.Second, childExec: exe}, 10*time.Second, func(err error) bool {
		return errors.Is(err, ErrCrashed) && strings.Contains(err.Error(), "wasmstage.IsChild")
	})
}

// TestPipelineContainsHostile runs every contained failure through a real
// pipeline: the failed snapshot has Stage<name>Errors 1 and no line of the
// stage, the next one is processed normally.
func TestPipelineContainsHostile(t *testing.T) {
	s := newStage(t, Options{Name: "hostile", Module: wat(t, "hostile"), Timeout: 2 * time.Second, MemoryLimitMiB: 16, childExec: containedChild(t)})
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "lb.haproxy"}}, engine.StageSpec{Name: "hostile", Stage: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []int{18, 19, 1<<16 | 20, 22} {
		for _, tt := range []struct {
			mode   int
			errors string
		}{{mode, "1"}, {0, "0"}} {
			name := strconv.Itoa(tt.mode)
			var buf bytes.Buffer
			out, err := p.ProcessFiles(context.Background(), name, nil, &buf)
			if err != nil {
				t.Fatalf("mode %d: ProcessFiles = %v", tt.mode, err)
			}
			lines := buf.String()
			if want := "lb.haproxy.haproxystats.StagehostileErrors " + tt.errors + " " + name + "\n"; !strings.Contains(lines, want) {
				t.Errorf("mode %d: output lacks %q:\n%s", tt.mode, want, lines)
			}
			if tt.errors == "0" && !strings.Contains(lines, "lb.haproxy.daemon.calls 1 0\n") {
				t.Errorf("after mode %d: output lacks a fresh instance's daemon.calls 1:\n%s", mode, lines)
			}
			if tt.errors == "1" {
				if strings.Contains(lines, "lb.haproxy.daemon.") {
					t.Errorf("mode %d: the stage's lines were sent:\n%s", tt.mode, lines)
				}
				if len(out.Problems) != 1 || !strings.Contains(out.Problems[0].Error(), "stage hostile: module "+s.opts.Module) {
					t.Errorf("mode %d: problems %v, want one naming the stage and the file", tt.mode, out.Problems)
				}
			}
		}
	}
}

// TestProgramStopsDuringRunaway runs the real program (haproxystats-engine
// run) on a snapshot whose WASM stage never returns (loop-free recursion,
// timeout one hour) and checks that SIGTERM ends it at once, its child
// process with it. Before the isolation it ran on forever, SIGTERM or not.
func TestProgramStopsDuringRunaway(t *testing.T) {
	engineBin := goBuild(t, filepath.Join(buildDir, "haproxystats-engine"), "", nil, "../../cmd/haproxystats-engine")
	dir := t.TempDir()
	conf := filepath.Join(dir, "haproxystats.conf")
	text := "[graphite]\nprefix-hostname = false\n[process]\nstages = hostile\n[stage.hostile]\nmodule = " + wat(t, "hostile") + "\ntimeout = 3600\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	snapDir := filepath.Join(dir, "18") // hostile.wat mode 18: recursion
	if err := os.CopyFS(snapDir, os.DirFS(conformance+"/dev4-defaults/incoming/1795507783")); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd := exec.Command(engineBin, "run", "-f", conf, snapDir)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	// Wait for the child process to run the module.
	child := 0
	for deadline := time.Now().Add(30 * time.Second); child == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no child process after 30s; stderr:\n%s", stderr.String())
		}
		child = childOf(cmd.Process.Pid)
	}
	time.Sleep(300 * time.Millisecond) // in the call
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("haproxystats-engine still running 5s after SIGTERM; stderr:\n%s", stderr.String())
	}
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(child, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child)); bytes.Contains(st, []byte(") Z ")) {
			break // a zombie waiting for init: dead
		}
		if time.Now().After(deadline) {
			t.Fatalf("child process %d still running 5s after the program ended", child)
		}
	}
}

// childOf returns the pid of a WASM stage child process of pid, 0 if none.
func childOf(pid int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n))
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		if !bytes.Contains(cmdline, []byte(childArg)) {
			continue
		}
		// stat: pid (comm) state ppid ...
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				return n
			}
		}
	}
	return 0
}
