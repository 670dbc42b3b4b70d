package testenv

import (
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// process is a program a helper started in the foreground, under the
// test's own user, with its output collected.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait returned
	out  *Buffer       // stdout and stderr
}

// startProcess starts bin with args in dir.
func startProcess(dir, bin string, args ...string) (*process, error) {
	p := &process{name: bin, cmd: exec.Command(bin, args...), done: make(chan struct{}), out: &Buffer{}}
	p.cmd.Dir = dir
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady calls ready every 20ms until it returns nil; it fails when the
// process exits first or timeout passes.
func (p *process) waitReady(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before it was ready: %w", p.name, p.cmd.ProcessState, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v: %w", p.name, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop stops the process by PID: SIGTERM, then SIGKILL if it has not
// exited within timeout. Stopping an exited process does nothing.
func (p *process) stop(t testing.TB, timeout time.Duration) {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(timeout):
	}
	t.Logf("%s pid %d ignored SIGTERM for %v; sending SIGKILL", p.name, p.cmd.Process.Pid, timeout)
	p.kill(t, timeout)
}

// kill kills the process by PID with SIGKILL and waits at most timeout for
// it to exit. Killing an exited process does nothing.
func (p *process) kill(t testing.TB, timeout time.Duration) {
	if p.exited() {
		return
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Errorf("%s pid %d still running after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// pid is the process id, or 0 once it exited.
func (p *process) pid() int {
	if p == nil || p.exited() {
		return 0
	}
	return p.cmd.Process.Pid
}

// output is what it wrote on stdout and stderr.
func (p *process) output() string {
	if p == nil {
		return ""
	}
	return p.out.String()
}

// startOnFreePorts calls start, which takes its ports from FreePort, up to
// three times: another program may take such a port before the process
// listens on it.
func startOnFreePorts(t testing.TB, name string, start func() error) error {
	var err error
	for range 3 {
		if err = start(); err == nil {
			return nil
		}
		t.Logf("%s: %v; trying other ports", name, err)
	}
	return err
}
