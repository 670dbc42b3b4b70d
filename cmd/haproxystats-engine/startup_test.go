package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestRunPullStopDuringStartup: a stop while the one daemon's start-up
// blocks (here on an exclusion file that is a named pipe nobody writes)
// ends it at once, exit 0 with a log line, as a stop afterwards does.
func TestRunPullStopDuringStartup(t *testing.T) {
	base := t.TempDir()
	fifo := filepath.Join(base, "exclude-backends")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// Let a reader still blocked on the pipe go once the test is over.
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	conf := filepath.Join(base, "haproxystats.conf")
	text := "[paths]\nbase-dir = " + base + "\n[pull]\nsocket-dir = " + t.TempDir() + "\n[process]\nexclude-backends = " + fifo + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testenv.Buffer // written by the abandoned start-up too
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "--pull", "-f", conf}, &stdout, &stderr) }()
	time.Sleep(200 * time.Millisecond) // into the start-up; the test holds either way
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after a stop during start-up, want 0\n%s", code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "stopped during start-up") {
			t.Errorf("no log line for the stop:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run --pull has not returned 30 s after a stop during start-up")
	}
}

// TestCheckStopped: a stop ends check at once, exit 1: nothing was
// validated.
func TestCheckStopped(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "haproxystats.conf")
	if err := os.WriteFile(conf, []byte("[paths]\nbase-dir = "+t.TempDir()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"check", "-f", conf}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "stopped during start-up") {
		t.Errorf("check after a stop: exit %d, stdout %q, stderr %q; want 1 and the stop named", code, out.String(), errb.String())
	}
}
