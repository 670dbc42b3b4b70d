package wasmstage_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/internal/assemble"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

// TestLogNamesStageOnce builds a WASM stage the way the daemons do, from a
// configuration file, and checks that each of the module's log lines names
// the stage once (it read "stage=noisy stage=noisy" when both the daemon
// and the stage added it).
func TestLogNamesStageOnce(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "haproxystats.conf")
	text := "[process]\nstages = noisy\n[stage.noisy]\nmodule = " + wasmstage.WAT(t, "hostile") + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFiles(nil, conf)
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	r, err := assemble.New(cfg, assemble.Options{ConfigDir: dir, StageCacheDir: "-", Hostname: "localhost",
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Pipeline.ProcessFiles(context.Background(), "14", nil, io.Discard); err != nil { // hostile.wat mode 14 logs
		t.Fatal(err)
	}
	lines := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, `msg="module log"`) {
			continue
		}
		lines++
		if n := strings.Count(line, "stage=noisy"); n != 1 {
			t.Errorf("log line names the stage %d times, want once: %s", n, line)
		}
	}
	if lines == 0 {
		t.Errorf("no module log line:\n%s", logs.String())
	}
}
