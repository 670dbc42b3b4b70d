package pull

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

const epoch = 1_700_000_000

func TestNewValidates(t *testing.T) {
	valid := func() Config { return testConfig(t, "/run/haproxy") }
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error
	}{
		{"nothing to pull", func(c *Config) { c.SocketDir = "" }, []string{"nothing to pull"}},
		{"bad network", func(c *Config) { c.Servers = []Server{{"udp", "x:1", "x:1"}} }, []string{"servers[0] network", `"udp"`}},
		{"empty address", func(c *Config) { c.Servers = []Server{{"unix", "", "a"}} }, []string{"servers[0] address"}},
		{"bad name", func(c *Config) { c.Servers = []Server{{"unix", "/a/b", "a/b"}} }, []string{"servers[0] name"}},
		{"duplicate name", func(c *Config) {
			c.Servers = []Server{{"unix", "/a/x", "x"}, {"unix", "/b/x", "x"}}
		}, []string{"servers[1] name", "servers[0]"}},
		{"retries", func(c *Config) { c.Retries = -2 }, []string{"retries = -2"}},
		{"pull-interval", func(c *Config) { c.PullInterval = 0 }, []string{"pull-interval"}},
		{"pull-timeout", func(c *Config) { c.PullTimeout = -1 }, []string{"pull-timeout"}},
		{"buffer-limit", func(c *Config) { c.BufferLimit = 0 }, []string{"buffer-limit = 0"}},
		{"workers", func(c *Config) { c.Workers = 0 }, []string{"workers = 0"}},
		{"queue-size", func(c *Config) { c.QueueSize = 0 }, []string{"queue-size = 0"}},
		{"same dirs", func(c *Config) { c.TmpDstDir = c.DstDir + "/" }, []string{"tmp-dst-dir", "differ"}},
		{"all at once", func(c *Config) { c.Workers, c.QueueSize, c.DstDir = 0, 0, "" },
			[]string{"workers", "queue-size", "dst-dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.change(&cfg)
			_, err := New(cfg, nil)
			if err == nil {
				t.Fatalf("New(%+v) = nil error, want one mentioning %q", cfg, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New error %q does not contain %q", err, w)
				}
			}
		})
	}
	cfg := valid()
	if _, err := New(cfg, nil); err != nil {
		t.Fatalf("New(valid) = %v", err)
	}
	if _, err := os.Stat(cfg.DstDir); !os.IsNotExist(err) {
		t.Errorf("New touched the file system: stat %s = %v", cfg.DstDir, err)
	}
}

// One round against 4 instances: one snapshot with 8 files holding what each
// instance answers.
func TestRoundFourProcesses(t *testing.T) {
	dir := testenv.ShortDir(t)
	instances := startInstances(t, dir, 4, 5, 3)
	cfg := testConfig(t, dir)
	p := newPuller(t, cfg, nil)

	if err := p.Round(context.Background(), time.Unix(epoch, 0)); err != nil {
		t.Fatalf("Round: %v", err)
	}
	if got, want := snapshots(t, cfg.DstDir), []string{strconv.Itoa(epoch)}; !slices.Equal(got, want) {
		t.Fatalf("dst-dir snapshots = %v, want %v", got, want)
	}
	snap := filepath.Join(cfg.DstDir, strconv.Itoa(epoch))
	var want []string
	for i := range instances {
		want = append(want, fmt.Sprintf("admin%d.sock_info", i+1), fmt.Sprintf("admin%d.sock_stat", i+1))
	}
	if got := files(t, snap); !slices.Equal(got, want) {
		t.Fatalf("snapshot files = %v, want %v", got, want)
	}
	if got := files(t, cfg.TmpDstDir); len(got) != 0 {
		t.Errorf("tmp-dst-dir holds %v after a committed round, want nothing", got)
	}

	for i, h := range instances {
		sock := h.StatsSockets()[0]
		base := filepath.Base(sock)
		info, err := os.ReadFile(filepath.Join(snap, base+"_info"))
		if err != nil {
			t.Fatal(err)
		}
		stat, err := os.ReadFile(filepath.Join(snap, base+"_stat"))
		if err != nil {
			t.Fatal(err)
		}
		liveInfo, err := testenv.Command("unix", sock, "show info", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		liveStat, err := testenv.Command("unix", sock, "show stat", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"Name", "Version"} {
			if got, want := infoLine(info, key), infoLine(liveInfo, key); got != want || got == "" {
				t.Errorf("%s_info %s = %q, haproxy answers %q", base, key, got, want)
			}
		}
		// The file came from this very process.
		if got, want := infoLine(info, "Pid"), strconv.Itoa(h.PID()); got != want {
			t.Errorf("instance %d: %s_info Pid = %q, want %q", i, base, got, want)
		}
		gotHeader, gotRows := statKeys(t, stat)
		wantHeader, wantRows := statKeys(t, liveStat)
		if gotHeader != wantHeader || !strings.HasPrefix(gotHeader, "# pxname,svname,") {
			t.Errorf("%s_stat header = %.60q..., haproxy answers %.60q...", base, gotHeader, wantHeader)
		}
		if !slices.Equal(gotRows, wantRows) || len(gotRows) != 1+5*4 {
			t.Errorf("%s_stat rows = %v, haproxy answers %v", base, gotRows, wantRows)
		}
	}
}

// TCP and UNIX stats sockets together.
func TestRoundTCPAndUnix(t *testing.T) {
	dir := testenv.ShortDir(t)
	port := testenv.FreePort(t)
	tcp := fmt.Sprintf("127.0.0.1:%d", port)
	testenv.StartHAProxy(t, testenv.HAProxyConfig{
		StatsSockets: []string{filepath.Join(dir, "admin.sock"), tcp},
		Body:         testenv.Proxies(testenv.FreePort(t), 2, 2, 9),
	})
	cfg := testConfig(t, dir)
	cfg.Servers = []Server{
		{Network: "tcp", Address: tcp, Name: tcp},
		// The socket-dir socket listed again: pulled once.
		{Network: "unix", Address: filepath.Join(dir, ".", "admin.sock"), Name: "admin.sock"},
	}
	p := newPuller(t, cfg, nil)
	if err := p.Round(context.Background(), time.Unix(epoch, 0)); err != nil {
		t.Fatalf("Round: %v", err)
	}
	snap := filepath.Join(cfg.DstDir, strconv.Itoa(epoch))
	want := []string{tcp + "_info", tcp + "_stat", "admin.sock_info", "admin.sock_stat"}
	slices.Sort(want)
	if got := files(t, snap); !slices.Equal(got, want) {
		t.Fatalf("snapshot files = %v, want %v", got, want)
	}
	for _, f := range want {
		data, err := os.ReadFile(filepath.Join(snap, f))
		if err != nil {
			t.Fatal(err)
		}
		prefix := "Name: HAProxy\n"
		if strings.HasSuffix(f, "_stat") {
			prefix = "# pxname,svname,"
		}
		if !strings.HasPrefix(string(data), prefix) {
			t.Errorf("%s starts %.40q, want %q", f, data, prefix)
		}
	}

	// A server whose spool name collides with another socket of socket-dir.
	other := filepath.Join(testenv.ShortDir(t), "admin.sock")
	hangingSocket(t, other)
	cfg.Servers = []Server{{Network: "unix", Address: other, Name: "admin.sock"}}
	p = newPuller(t, cfg, nil)
	err := p.Round(context.Background(), time.Unix(epoch+1, 0))
	if err == nil || !strings.Contains(err.Error(), "share the spool name") {
		t.Fatalf("Round with colliding names = %v, want a collision error", err)
	}
}

// A socket path in Servers that does not exist: the round fails, nothing
// lands in dst-dir, and Run's log line names the socket.
func TestRoundMissingSocket(t *testing.T) {
	dir := testenv.ShortDir(t)
	startInstances(t, dir, 1, 2, 2)
	missing := filepath.Join(testenv.ShortDir(t), "gone.sock")
	cfg := testConfig(t, dir)
	cfg.Servers = []Server{{Network: "unix", Address: missing, Name: "gone.sock"}}
	cfg.PullInterval = 50 * time.Millisecond
	logger, log := newLogger()
	p := newPuller(t, cfg, logger)

	err := p.Round(context.Background(), time.Unix(epoch, 0))
	var re *RoundError
	if !errors.As(err, &re) {
		t.Fatalf("Round = %v, want a *RoundError", err)
	}
	if got := re.FailedSockets(); !slices.Equal(got, []string{"gone.sock"}) {
		t.Errorf("failed sockets = %v, want [gone.sock]", got)
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name %s", err, missing)
	}
	nothingLeft(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	fakeClock(p)
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, 5*time.Second, "a log line naming gone.sock", func() bool {
		return len(log.lines("level=ERROR", "failed=gone.sock")) > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if s := snapshots(t, cfg.DstDir); len(s) != 0 {
		t.Errorf("dst-dir holds %v, want nothing", s)
	}
	t.Logf("log line: %s", log.lines("level=ERROR")[0])
}

// A socket that accepts and never answers: the round fails within
// pull-timeout and leaves nothing behind.
func TestRoundSocketNeverAnswers(t *testing.T) {
	dir := testenv.ShortDir(t)
	startInstances(t, dir, 2, 2, 2)
	hangingSocket(t, filepath.Join(dir, "hang.sock"))
	cfg := testConfig(t, dir)
	cfg.PullTimeout = 500 * time.Millisecond
	p := newPuller(t, cfg, nil)

	start := time.Now()
	err := p.Round(context.Background(), time.Unix(epoch, 0))
	took := time.Since(start)
	var re *RoundError
	if !errors.As(err, &re) || !slices.Equal(re.FailedSockets(), []string{"hang.sock"}) {
		t.Fatalf("Round = %v, want a *RoundError naming only hang.sock", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Round error %v does not wrap context.DeadlineExceeded", err)
	}
	if took < cfg.PullTimeout || took > cfg.PullTimeout+time.Second {
		t.Errorf("Round took %v, want pull-timeout %v (+1s slack)", took, cfg.PullTimeout)
	}
	nothingLeft(t, cfg)
}

// HAProxy restarted between rounds: the round while it is down fails, the
// next one succeeds.
func TestRoundAcrossHAProxyRestart(t *testing.T) {
	dir := testenv.ShortDir(t)
	h := startInstances(t, dir, 1, 2, 2)[0]
	cfg := testConfig(t, dir)
	cfg.Servers = []Server{{Network: "unix", Address: h.StatsSockets()[0], Name: "admin1.sock"}}
	p := newPuller(t, cfg, nil)
	ctx := context.Background()

	if err := p.Round(ctx, time.Unix(epoch, 0)); err != nil {
		t.Fatalf("Round before restart: %v", err)
	}
	oldPID := h.PID()
	h.Stop()
	if err := p.Round(ctx, time.Unix(epoch+1, 0)); err == nil {
		t.Fatal("Round with haproxy stopped succeeded")
	}
	h.Restart()
	if err := p.Round(ctx, time.Unix(epoch+2, 0)); err != nil {
		t.Fatalf("Round after restart: %v", err)
	}
	want := []string{strconv.Itoa(epoch), strconv.Itoa(epoch + 2)}
	if got := snapshots(t, cfg.DstDir); !slices.Equal(got, want) {
		t.Fatalf("snapshots = %v, want %v", got, want)
	}
	info, err := os.ReadFile(filepath.Join(cfg.DstDir, want[1], "admin1.sock_info"))
	if err != nil {
		t.Fatal(err)
	}
	if got := infoLine(info, "Pid"); got != strconv.Itoa(h.PID()) || got == strconv.Itoa(oldPID) {
		t.Errorf("Pid after restart = %s, want the new process %d (old %d)", got, h.PID(), oldPID)
	}
}

// Two rounds in the same second: the existing snapshot is kept untouched,
// the second round discarded.
func TestRoundSameSecond(t *testing.T) {
	dir := testenv.ShortDir(t)
	startInstances(t, dir, 1, 1, 1)
	cfg := testConfig(t, dir)
	p := newPuller(t, cfg, nil)
	ctx := context.Background()
	if err := p.Round(ctx, time.Unix(epoch, 0)); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(cfg.DstDir, strconv.Itoa(epoch))
	marker := filepath.Join(snap, "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := p.Round(ctx, time.Unix(epoch, 0))
	if !errors.Is(err, ErrSnapshotExists) {
		t.Fatalf("second Round in the same second = %v, want ErrSnapshotExists", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("existing snapshot was replaced: %v", err)
	}
	if f := files(t, cfg.TmpDstDir); len(f) != 0 {
		t.Errorf("tmp-dst-dir holds %v", f)
	}

}

// Run recreates dst-dir when it is removed, and later rounds land in it.
func TestRunRecreatesDstDir(t *testing.T) {
	dir := testenv.ShortDir(t)
	startInstances(t, dir, 2, 2, 2)
	cfg := testConfig(t, dir)
	cfg.PullInterval = 50 * time.Millisecond
	logger, log := newLogger()
	p := newPuller(t, cfg, logger)
	fakeClock(p)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	waitFor(t, 10*time.Second, "a first snapshot", func() bool { return len(snapshots(t, cfg.DstDir)) > 0 })
	// A round may commit into dst-dir while it is being removed; retry.
	waitFor(t, 10*time.Second, "dst-dir to be removed", func() bool {
		return os.RemoveAll(cfg.DstDir) == nil
	})
	waitFor(t, 10*time.Second, "a snapshot in the recreated dst-dir", func() bool {
		return len(snapshots(t, cfg.DstDir)) > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if len(log.lines("level=WARN", "recreated", "dir="+cfg.DstDir)) == 0 {
		t.Errorf("no warning about dst-dir being recreated; log:\n%s", log)
	}
}

// Pulling pauses while dst-dir holds queue-size snapshots, and resumes when
// some are removed.
func TestRunQueueFull(t *testing.T) {
	dir := testenv.ShortDir(t)
	startInstances(t, dir, 2, 2, 2)
	cfg := testConfig(t, dir)
	cfg.PullInterval = 20 * time.Millisecond
	cfg.QueueSize = 3
	logger, log := newLogger()
	p := newPuller(t, cfg, logger)
	fakeClock(p)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	// Watch the count for the whole test: it never exceeds queue-size.
	var maxSeen atomic.Int64
	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-stopWatch:
				return
			default:
			}
			if n := int64(len(snapshots(t, cfg.DstDir))); n > maxSeen.Load() {
				maxSeen.Store(n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	})

	waitFor(t, 10*time.Second, "queue-size snapshots", func() bool { return len(snapshots(t, cfg.DstDir)) >= 3 })
	full := snapshots(t, cfg.DstDir)
	waitFor(t, 10*time.Second, "a queue-full warning", func() bool {
		return len(log.lines("level=WARN", "spool full")) > 0
	})
	time.Sleep(300 * time.Millisecond) // about 15 intervals: no new snapshot
	if got := snapshots(t, cfg.DstDir); !slices.Equal(got, full) {
		t.Fatalf("snapshots changed while the queue was full: %v, then %v", full, got)
	}
	for _, s := range full[:2] {
		if err := os.RemoveAll(filepath.Join(cfg.DstDir, s)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "pulling to resume", func() bool {
		got := snapshots(t, cfg.DstDir)
		return len(got) == 3 && got[2] > full[2]
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	close(stopWatch)
	watch.Wait()
	if m := maxSeen.Load(); m > 3 {
		t.Errorf("dst-dir held %d snapshots, queue-size is 3", m)
	}
}

// A reader polling dst-dir during many rounds never sees a snapshot with
// fewer than all its files, nor an empty file.
func TestRoundAtomicRename(t *testing.T) {
	dir := testenv.ShortDir(t)
	startInstances(t, dir, 4, 20, 5)
	cfg := testConfig(t, dir)
	cfg.QueueSize = 1000
	p := newPuller(t, cfg, nil)
	if err := os.MkdirAll(cfg.DstDir, 0o755); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var (
		wg              sync.WaitGroup
		looks, partials atomic.Int64
		bad             atomic.Value
	)
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				entries, _ := os.ReadDir(cfg.DstDir)
				for _, e := range entries {
					inner, err := os.ReadDir(filepath.Join(cfg.DstDir, e.Name()))
					if err != nil {
						continue
					}
					looks.Add(1)
					complete := len(inner) == 8
					for _, f := range inner {
						if fi, err := f.Info(); err != nil || fi.Size() == 0 {
							complete = false
						}
					}
					if !complete {
						partials.Add(1)
						bad.Store(fmt.Sprintf("%s: %d entries", e.Name(), len(inner)))
					}
				}
			}
		})
	}
	const rounds = 40
	for i := range rounds {
		if err := p.Round(context.Background(), time.Unix(epoch+int64(i), 0)); err != nil {
			t.Errorf("Round %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	if n := len(snapshots(t, cfg.DstDir)); n != rounds {
		t.Errorf("dst-dir holds %d snapshots, want %d", n, rounds)
	}
	if partials.Load() > 0 {
		t.Fatalf("saw %d partial snapshots out of %d looks, e.g. %v", partials.Load(), looks.Load(), bad.Load())
	}
	t.Logf("%d looks at committed snapshots during %d rounds, none partial", looks.Load(), rounds)
}

// Cancelling Run during a round in flight abandons it: nothing committed,
// nothing left in tmp-dst-dir, and Run returns nil promptly.
func TestRunCancelInFlight(t *testing.T) {
	dir := testenv.ShortDir(t)
	startInstances(t, dir, 1, 1, 1)
	accepted := hangingSocket(t, filepath.Join(dir, "hang.sock"))
	cfg := testConfig(t, dir)
	cfg.PullTimeout = 0 // only cancellation ends the round
	p := newPuller(t, cfg, nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the round never reached the hanging socket")
	}
	time.Sleep(50 * time.Millisecond) // let the other answers be written to tmp
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancellation")
	}
	if s := snapshots(t, cfg.DstDir); len(s) != 0 {
		t.Errorf("dst-dir holds %v after a cancelled round", s)
	}
	if f := files(t, cfg.TmpDstDir); len(f) != 0 {
		t.Errorf("tmp-dst-dir holds %v after a cancelled round", f)
	}
}

// Run removes uncommitted snapshots an earlier run left in tmp-dst-dir, and
// fails to start when it cannot create the spool.
func TestRunStart(t *testing.T) {
	cfg := testConfig(t, testenv.ShortDir(t))
	left := filepath.Join(cfg.TmpDstDir, "1699999999")
	if err := os.MkdirAll(left, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(cfg.TmpDstDir, "not-a-snapshot")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := newPuller(t, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("leftover %s still there: %v", left, err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("%s was removed: %v", keep, err)
	}
	if _, err := os.Stat(cfg.DstDir); err != nil {
		t.Errorf("dst-dir not created: %v", err)
	}

	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	cfg.DstDir = filepath.Join(file, "incoming")
	p = newPuller(t, cfg, nil)
	if err := p.Run(context.Background()); err == nil || !strings.Contains(err.Error(), cfg.DstDir) {
		t.Fatalf("Run with dst-dir under a file = %v, want an error naming it", err)
	}
}

// A round with an empty socket-dir finds nothing to pull.
func TestRoundNoSockets(t *testing.T) {
	cfg := testConfig(t, testenv.ShortDir(t))
	p := newPuller(t, cfg, nil)
	if err := p.Round(context.Background(), time.Unix(epoch, 0)); !errors.Is(err, ErrNoSockets) {
		t.Fatalf("Round = %v, want ErrNoSockets", err)
	}
}

// A round that overruns pull-interval skips the grid points it missed
// instead of running rounds back to back.
func TestRunOverrunSkipsGridPoints(t *testing.T) {
	dir := testenv.ShortDir(t)
	l, err := net.Listen("unix", filepath.Join(dir, "slow.sock"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		starts []time.Time
		wg     sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				c.Read(make([]byte, 64))
				time.Sleep(250 * time.Millisecond)
				c.Write([]byte("answer\n"))
			})
		}
	})
	defer func() { l.Close(); wg.Wait() }()

	cfg := testConfig(t, dir)
	cfg.PullInterval = 100 * time.Millisecond
	logger, log := newLogger()
	p := newPuller(t, cfg, logger)
	fakeClock(p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, 10*time.Second, "three committed rounds", func() bool { return len(snapshots(t, cfg.DstDir)) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if len(log.lines("level=WARN", "overran", "skipped=")) == 0 {
		t.Errorf("no warning about skipped rounds; log:\n%s", log)
	}
	mu.Lock()
	defer mu.Unlock()
	// Two connections (info, stat) per round; rounds start >= 250ms apart.
	for i := 2; i+1 < len(starts); i += 2 {
		if gap := starts[i].Sub(starts[i-2]); gap < 250*time.Millisecond {
			t.Errorf("round %d started %v after the previous one, want >= 250ms (overrun skipped)", i/2, gap)
		}
	}
}
