package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
)

// binary is the haproxystats-process binary built once for the black-box
// tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "haproxystats-process-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "haproxystats-process")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// recorder is a Graphite stand-in on loopback that keeps every byte
// received on every connection.
type recorder struct {
	ln   net.Listener
	mu   sync.Mutex
	data bytes.Buffer
	last time.Time
	wg   sync.WaitGroup
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, last: time.Now()}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				r.mu.Lock()
				r.data.Write(buf[:n])
				if n > 0 {
					r.last = time.Now()
				}
				r.mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
}

func (r *recorder) close() { r.ln.Close() }

func (r *recorder) port() int { return r.ln.Addr().(*net.TCPAddr).Port }

func (r *recorder) bytes() ([]byte, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.data.Bytes()...), r.last
}

// daemon is a running haproxystats-process.
type daemon struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startDaemon(t *testing.T, workdir string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = workdir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, stderr: &stderr, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// stop sends SIGTERM and waits (bounded) for exit code 0.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, d.stderr)
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("no exit within 30s of SIGTERM\n%s", d.stderr)
	}
}

// snapshots lists the snapshot directories left in dir.
func snapshots(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestConformanceDaemon runs the daemon over every corpus case as the
// corpus README prescribes (§6.1): a scratch copy of the case as working
// directory, its configuration plus a second file setting src-dir and
// Graphite, SIGTERM once the spool is empty and Graphite has been quiet
// for a second, then the comparison rules of §6.2-6.3.
func TestConformanceDaemon(t *testing.T) {
	cases, err := enginetest.Find("../../testdata/conformance")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			work := filepath.Join(t.TempDir(), c.Name)
			if err := os.CopyFS(work, os.DirFS(c.Dir)); err != nil {
				t.Fatal(err)
			}
			graphite := newRecorder(t)
			extra := filepath.Join(t.TempDir(), "conf.d")
			os.Mkdir(extra, 0o755)
			os.WriteFile(filepath.Join(extra, "run.conf"), []byte(fmt.Sprintf(
				"[process]\nsrc-dir = %s\n[graphite]\nserver = 127.0.0.1\nport = %d\n",
				filepath.Join(work, "incoming"), graphite.port())), 0o644)
			before := snapshots(t, filepath.Join(work, "incoming"))
			d := startDaemon(t, work, "-f", "haproxystats.conf", "-d", extra)

			deadline := time.Now().Add(60 * time.Second)
			for {
				_, last := graphite.bytes()
				if len(snapshots(t, filepath.Join(work, "incoming"))) == 0 && time.Since(last) > time.Second {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("spool not empty after 60s: %v\n%s", snapshots(t, filepath.Join(work, "incoming")), d.stderr)
				}
				time.Sleep(100 * time.Millisecond)
			}
			d.stop(t)

			got, _ := graphite.bytes()
			expected, err := os.ReadFile(filepath.Join(c.Dir, "expected.txt"))
			if err != nil {
				t.Fatal(err)
			}
			failed := strings.Contains(readFile(t, filepath.Join(c.Dir, "outcome.txt")), "worker-crash: yes")
			for _, m := range enginetest.Compare(expected, got, failed) {
				if m.Counted {
					t.Errorf("%s", m)
				}
			}
			if len(before) == 0 {
				t.Fatal("case has no snapshot")
			}
			// Local store: one file per snapshot, compared without
			// TotalWallClockTime (the original wrote it into the next file).
			want, _ := filepath.Glob(filepath.Join(c.Dir, "expected-local-store", "*.txt"))
			for _, w := range want {
				snap := strings.TrimSuffix(filepath.Base(w), ".txt")
				gotFile, err := os.ReadFile(filepath.Join(work, "local-store", snap, "stats"))
				if err != nil {
					t.Errorf("local store: %v", err)
					continue
				}
				if !bytes.Contains(gotFile, []byte(".haproxystats.TotalWallClockTime ")) {
					t.Errorf("local store %s lacks its own TotalWallClockTime", snap)
				}
				for _, m := range enginetest.Compare(dropTotal(readFile(t, w)), dropTotal(string(gotFile)), failed) {
					if m.Counted {
						t.Errorf("local store %s: %s", snap, m)
					}
				}
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(data)
}

func dropTotal(s string) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		if l != "" && !strings.Contains(l, ".TotalWallClockTime ") {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}
