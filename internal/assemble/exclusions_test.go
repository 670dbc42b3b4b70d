package assemble

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/config"
)

// TestExclusionFileReadAgain, through the daemons' wiring: the file is
// read again for every snapshot (an edit takes effect at once); a missing
// or unreadable one (a FIFO must not block) is logged naming it, excludes
// nothing, and the snapshot is processed.
func TestExclusionFileReadAgain(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "exclude.txt")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	conf := filepath.Join(dir, "haproxystats.conf")
	if err := os.WriteFile(conf, []byte("[graphite]\nprefix-hostname = false\n[process]\nexclude-backends = "+file+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFiles(nil, conf)
	if err != nil {
		t.Fatal(err)
	}
	built, err := New(cfg, Options{StageCacheDir: "-", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer built.Close()
	p := built.Pipeline
	files := []engine.File{{Name: "a_stat", Data: []byte("# pxname,svname,qcur,scur,lbtot,rtime,weight,act,hrsp_5xx,type,\n" +
		"be1,s1,0,1,10,4,1,1,2,2,\nbe1,BACKEND,0,3,10,4,4,2,2,1,\n" +
		"be2,s1,0,1,10,4,1,1,2,2,\nbe2,BACKEND,0,3,10,4,4,2,2,1,\n")}}
	sent := func(ts string) (be1, be2 bool) {
		t.Helper()
		var out bytes.Buffer
		if _, err := p.ProcessFiles(context.Background(), ts, files, &out); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(out.String(), ".backend.be1."), strings.Contains(out.String(), ".backend.be2.")
	}
	write("be1\n")
	if be1, be2 := sent("100"); be1 || !be2 {
		t.Errorf("excluding be1: be1 sent %v, be2 sent %v", be1, be2)
	}
	write("be2\n")
	if be1, be2 := sent("101"); !be1 || be2 {
		t.Errorf("after the edit excluding be2: be1 sent %v, be2 sent %v", be1, be2)
	}
	os.Remove(file)
	if be1, be2 := sent("102"); !be1 || !be2 {
		t.Errorf("file missing: be1 sent %v, be2 sent %v, want both", be1, be2)
	}
	if !strings.Contains(log.String(), "exclusion file") || !strings.Contains(log.String(), file) {
		t.Errorf("log %q does not name the missing file", log.String())
	}
	if err := syscall.Mkfifo(file, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if be1, be2 := sent("103"); !be1 || !be2 {
			t.Errorf("file a FIFO: be1 sent %v, be2 sent %v, want both", be1, be2)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("an exclusion file that is a FIFO blocked the snapshot")
	}
}
