package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestStopDuringStartup: a stop while the start-up takes long (here
// compiling a WebAssembly stage for seconds) ends the program at once,
// exit 0 with a log line, as a stop afterwards does.
func TestStopDuringStartup(t *testing.T) {
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "incoming"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(base, "haproxystats.conf")
	text := "[paths]\nbase-dir = " + base + "\n" + testenv.SlowStage(t)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.StopsDuringStartup(t, "haproxystats-process", func(ctx context.Context, stdout, stderr io.Writer) int {
		return run(ctx, []string{"-f", conf}, stdout, stderr)
	})
}
