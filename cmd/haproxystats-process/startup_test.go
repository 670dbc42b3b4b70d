package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestStopDuringStartup: a stop while the start-up blocks (here on an
// exclusion file that is a named pipe nobody writes) ends the program at
// once, exit 0 with a log line, as a stop afterwards does.
func TestStopDuringStartup(t *testing.T) {
	base := t.TempDir()
	fifo := filepath.Join(base, "exclude-frontends")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// Let a reader still blocked on the pipe go once the test is over.
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	if err := os.Mkdir(filepath.Join(base, "incoming"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(base, "haproxystats.conf")
	if err := os.WriteFile(conf, []byte("[paths]\nbase-dir = "+base+"\n[process]\nexclude-frontends = "+fifo+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testenv.Buffer // written by the abandoned start-up too
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-f", conf}, &stdout, &stderr) }()
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
		t.Fatal("haproxystats-process has not returned 30 s after a stop during start-up")
	}
}
