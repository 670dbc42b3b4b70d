package testenv

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// HelperEnv marks a test binary started by StartHelper: the package's
// helper test runs the program's main instead of testing.
const HelperEnv = "HAPROXYSTATS_HELPER_MAIN"

// StartHelper starts the test binary itself running only the test named
// helper, with HelperEnv set, so that the helper calls the program's main
// with args (os.Args[1:]). The process is killed at the end of the test
// if it is still running.
func StartHelper(t *testing.T, helper string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^" + helper + "$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), HelperEnv+"=1")
	var stderr Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("pid %d logged:\n%s", cmd.Process.Pid, stderr.String())
		}
	})
	return cmd
}

// HelperArgs reports whether this test binary was started by StartHelper
// and, if so, the program arguments it was given.
func HelperArgs() ([]string, bool) {
	if os.Getenv(HelperEnv) != "1" {
		return nil, false
	}
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:], true
		}
	}
	return nil, true
}

// StopsOn waits (at most 20 s) until ready reports true, sends sig to cmd
// and fails t unless the process exits 0 within timeout.
func StopsOn(t *testing.T, cmd *exec.Cmd, sig syscall.Signal, timeout time.Duration, ready func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the program did not get ready within 20s")
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after %v: %v, want exit 0", sig, err)
		}
	case <-time.After(timeout):
		// A Go program prints every goroutine's stack on SIGQUIT: the
		// log of the failed test shows where it hangs.
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("still running %v after %v", timeout, sig)
	}
}
