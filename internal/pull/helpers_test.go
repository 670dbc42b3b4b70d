package pull

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/spool"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// startInstances starts k haproxy instances that stand for the k processes
// of one HAProxy: the same proxies (backends x servers), each with its own
// stats socket admin<i>.sock in socketDir.
func startInstances(t testing.TB, socketDir string, k, backends, servers int) []*testenv.HAProxy {
	t.Helper()
	closed := testenv.FreePort(t) // nothing listens there; no health checks
	out := make([]*testenv.HAProxy, k)
	for i := range k {
		out[i] = testenv.StartHAProxy(t, testenv.HAProxyConfig{
			StatsSockets: []string{filepath.Join(socketDir, fmt.Sprintf("admin%d.sock", i+1))},
			Body:         testenv.Proxies(testenv.FreePort(t), backends, servers, closed),
		})
	}
	return out
}

// testConfig returns a valid Config pulling socketDir into a fresh spool.
func testConfig(t testing.TB, socketDir string) Config {
	base := t.TempDir()
	return Config{
		SocketDir:    socketDir,
		Retries:      1,
		Timeout:      100 * time.Millisecond,
		Interval:     50 * time.Millisecond,
		PullTimeout:  5 * time.Second,
		PullInterval: 10 * time.Second,
		BufferLimit:  6291456,
		DstDir:       filepath.Join(base, "incoming"),
		TmpDstDir:    filepath.Join(base, "incoming.tmp"),
		Workers:      8,
		QueueSize:    360,
	}
}

func newPuller(t testing.TB, cfg Config, logger *slog.Logger) *Puller {
	t.Helper()
	p, err := New(cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// fakeClock makes Run name each round one second after the previous one, so
// that tests can run rounds every few milliseconds.
func fakeClock(p *Puller) {
	var n atomic.Int64
	base := time.Unix(1_700_000_000, 0)
	p.now = func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Second) }
}

// logs is a concurrency-safe log sink.
type logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger() (*slog.Logger, *logs) {
	l := &logs{}
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})), l
}

// lines returns the log lines containing every one of words.
func (l *logs) lines(words ...string) []string {
	var out []string
	for line := range strings.Lines(l.String()) {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// snapshots lists the snapshot directories of dir, sorted. A missing dir has
// none.
func snapshots(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("read %s: %v", dir, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && spool.IsSnapshotName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// nothingLeft fails the test unless a failed round left nothing in
// dst-dir or tmp-dst-dir.
func nothingLeft(t testing.TB, cfg Config) {
	t.Helper()
	if s := snapshots(t, cfg.DstDir); len(s) != 0 {
		t.Errorf("dst-dir holds %v after a failed round", s)
	}
	if f := files(t, cfg.TmpDstDir); len(f) != 0 {
		t.Errorf("tmp-dst-dir holds %v after a failed round", f)
	}
}

// files lists the names in dir, sorted.
func files(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// waitFor polls cond every 10ms for at most d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hangingSocket listens on a UNIX socket at path, accepts connections, reads
// nothing and never answers. accepted receives one value per connection.
func hangingSocket(t testing.TB, path string) (accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 1000)
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ch
}

// statKeys returns the header line and the set of "pxname,svname" of a show
// stat answer.
func statKeys(t testing.TB, stat []byte) (header string, rows []string) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(stat))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if header == "" {
			header = line
			continue
		}
		f := strings.SplitN(line, ",", 3)
		if len(f) < 3 {
			t.Fatalf("short show stat row %q", line)
		}
		rows = append(rows, f[0]+","+f[1])
	}
	slices.Sort(rows)
	return header, rows
}

// infoLine returns the value of key in a show info answer.
func infoLine(info []byte, key string) string {
	for line := range strings.Lines(string(info)) {
		if v, ok := strings.CutPrefix(line, key+": "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
