package daemon_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/daemon"
	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestRunWithOwnStage runs the daemon with a Go stage of the program's own
// over a corpus snapshot: its lines and self-metrics reach Graphite with
// the built-in ones, and the snapshot leaves the spool.
func TestRunWithOwnStage(t *testing.T) {
	rec := testenv.StartRecorder(t, testenv.RecorderOptions{})
	base := t.TempDir()
	spool := filepath.Join(base, "incoming")
	src := filepath.Join("..", "testdata", "conformance", "dots-defaults", "incoming")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(spool, entries[0].Name()), os.DirFS(filepath.Join(src, entries[0].Name()))); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(base, "haproxystats.conf")
	text := "[paths]\nbase-dir = " + base + "\n[graphite]\nserver = 127.0.0.1\nport = " + itoa(rec.Port()) + "\nprefix-hostname = false\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	backends := engine.StageFunc(func(_ context.Context, s *engine.Snapshot, emit engine.Emitter) error {
		n := 0
		for _, k := range s.Stats.Kind {
			if k == engine.KindBackend {
				n++
			}
		}
		emit.Emit(engine.Metric{Scope: engine.ScopePath, Name: "custom.backend_rows", Value: float64(n)})
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log testenv.Buffer
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{File: conf, Log: &log, Stages: []engine.StageSpec{{Name: "Rows", Stage: backends}}})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(spool, entries[0].Name())); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot not delivered within 20s:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _ := rec.Bytes()
	for _, want := range []string{
		"loadbalancers.haproxy.custom.backend_rows 5 " + entries[0].Name() + "\n",
		"loadbalancers.haproxy.haproxystats.StageRowsErrors 0 ",
		"loadbalancers.haproxy.backend.api_v1.stot ",
	} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("Graphite received no line with %q", want)
		}
	}
	if !strings.Contains(log.String(), "haproxystats-process stopped") {
		t.Errorf("log lacks the stop:\n%s", log.String())
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
