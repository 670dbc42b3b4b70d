package process

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/assemble"
	"github.com/haproxystats-go/haproxystats/internal/cluster"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/snapsource"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// fakeConsumer stands for snapsource.Consumer: the test puts snapshots in
// (with their directories), Next hands them out, Done records what the
// source reported.
type fakeConsumer struct {
	mu    sync.Mutex
	queue []*snapsource.Snapshot
	done  map[*snapsource.Snapshot]bool // delivered, by snapshot
	dead  map[int32]bool                // partitions moved away
	wake  chan struct{}
}

func newFakeConsumer() *fakeConsumer {
	return &fakeConsumer{done: map[*snapsource.Snapshot]bool{}, dead: map[int32]bool{}, wake: make(chan struct{})}
}

func (f *fakeConsumer) put(s ...*snapsource.Snapshot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, s...)
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *fakeConsumer) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (f *fakeConsumer) Next(ctx context.Context) (*snapsource.Snapshot, error) {
	for {
		f.mu.Lock()
		if len(f.queue) > 0 {
			s := f.queue[0]
			f.queue = f.queue[1:]
			f.mu.Unlock()
			return s, nil
		}
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

func (f *fakeConsumer) Done(s *snapsource.Snapshot, delivered bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, twice := f.done[s]; twice {
		panic(fmt.Sprintf("Done twice for %s/%s", s.Host, s.Epoch))
	}
	f.done[s] = delivered
	if delivered {
		os.RemoveAll(s.Dir)
	}
}

func (f *fakeConsumer) Live(s *snapsource.Snapshot) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.dead[s.Partition]
}

func (f *fakeConsumer) Stats() snapsource.Stats { return snapsource.Stats{} }

// outcome returns what Done said of s: "delivered", "not delivered" or "".
func (f *fakeConsumer) outcome(s *snapsource.Snapshot) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.done[s]
	switch {
	case !ok:
		return ""
	case d:
		return "delivered"
	}
	return "not delivered"
}

// fakeClock is the source's clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// hostSnapshot writes the files of src whose names are in files (all when
// nil) into <dir>/<host>/<epoch>, as the consumer does, and returns the
// snapshot.
func hostSnapshot(t *testing.T, dir, host, cluster string, epoch int64, src string, files ...string) *snapsource.Snapshot {
	t.Helper()
	sd := filepath.Join(dir, host, strconv.FormatInt(epoch, 10))
	if err := os.MkdirAll(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if files != nil && !slices.Contains(files, e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sd, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &snapsource.Snapshot{Host: host, Cluster: cluster, Epoch: strconv.FormatInt(epoch, 10), Dir: sd}
}

// sourceRig is a daemon whose queue is a kafkaSource over a fake consumer,
// with the pipeline of a corpus case's configuration (plus extra) and a
// destination that keeps every snapshot's lines.
type sourceRig struct {
	dir   string
	fc    *fakeConsumer
	clock *fakeClock
	src   *kafkaSource
	dest  *fakeDest
	stop  func()
	logs  *testenv.Buffer
}

func startSource(t *testing.T, caseName, extra string, stages []engine.StageSpec, queueSize int) *sourceRig {
	t.Helper()
	conf := filepath.Join("..", "..", "testdata", "conformance", caseName, "haproxystats.conf")
	extraFile := filepath.Join(t.TempDir(), "extra.conf")
	if err := os.WriteFile(extraFile, []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFiles(nil, conf, extraFile)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	built, err := assemble.New(cfg, assemble.Options{Dir: filepath.Dir(conf), Hostname: "processor", StageCacheDir: "-", Stages: stages, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { built.Close() })
	s := built.Settings
	r := &sourceRig{dir: t.TempDir(), fc: newFakeConsumer(), clock: &fakeClock{t: time.Unix(1_800_000_000, 0)}, dest: &fakeDest{name: "graphite"}, logs: logs}
	r.src, err = newKafkaSource(SourceConfig{
		Dir: r.dir, Pipeline: built.Pipeline, Paths: built.Paths, Graphite: s.Graphite, Cluster: s.Process.Cluster,
		Aggregation: cluster.Config{Interval: s.Process.ClusterInterval, Wait: s.Process.ClusterWait,
			Late: s.Process.ClusterLate, HostsExpiry: s.Process.ClusterHostsExpiry},
		Logger: logger, Now: r.clock.now,
	}, r.fc, queueSize)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Pipeline: built.Pipeline, Queue: r.src, Destinations: []Destination{r.dest}, Workers: 2,
		StopTimeout: 5 * time.Second, RetryDelay: 10 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("daemon Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("daemon did not stop within 30s")
			}
		})
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	return r
}

// output is what the destination got for a snapshot name, "" if nothing.
func (r *sourceRig) output(name string) string { return r.dest.lines(name) }

// bucketName is the name of a bucket's view.
func bucketName(cluster string, bucket int64) string {
	b := strconv.FormatInt(bucket, 10)
	return filepath.Join(clusterDirName, cluster, b, "view", b)
}

// expectedLines is expected.txt of a corpus case with its prefix
// `namespace.haproxy` replaced by prefix, its timestamps by ts, without
// the lines whose path contains any of drop.
func expectedLines(t *testing.T, caseName, from, prefix, ts string, drop ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "conformance", caseName, "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Split(l, " ")
		if len(f) != 3 || slices.ContainsFunc(drop, func(d string) bool { return strings.Contains(f[0], d) }) {
			continue
		}
		fmt.Fprintf(&b, "%s %s %s\n", prefix+strings.TrimPrefix(f[0], from), f[1], ts)
	}
	return b.Bytes()
}

func mismatches(ms []enginetest.Mismatch) string {
	var b strings.Builder
	for _, m := range ms {
		if m.Counted {
			b.WriteString(m.String() + "\n")
		}
	}
	return b.String()
}

// TestClusterEqualsProcesses: the four processes of dev4 pulled by two
// hosts, two each: each host's lines are those of its own two processes
// under its own prefix, and the cluster bucket is exactly the corpus
// output of the four processes (sums, means, percentiles, percentages),
// under the cluster's prefix, at the bucket's epoch, without the
// per-process lines (each host sends its own) and with ClusterHosts 2.
// The first bucket of a cluster waits cluster-wait; the host snapshots are
// reported delivered only once the bucket is.
func TestClusterEqualsProcesses(t *testing.T) {
	const caseName = "dev4-per-process-percentages"
	r := startSource(t, caseName, "[graphite]\nprefix-hostname = true\n[process]\ncluster-name = web\ncluster-interval = 10\ncluster-wait = 5\n", nil, 16)
	src := filepath.Join("..", "..", "testdata", "conformance", caseName, "incoming", "1795507783")
	a := hostSnapshot(t, r.dir, "lb-a.example.com", "", 1795507783, src, "admin1.sock_info", "admin1.sock_stat", "admin2.sock_info", "admin2.sock_stat")
	b := hostSnapshot(t, r.dir, "lb-b", "web", 1795507786, src, "admin3.sock_info", "admin3.sock_stat", "admin4.sock_info", "admin4.sock_stat")
	r.fc.put(a, b)
	waitFor(t, "both hosts' lines", func() bool {
		return strings.Contains(r.output("lb-a.example.com/1795507783"), "TotalWallClockTime") && strings.Contains(r.output("lb-b/1795507786"), "TotalWallClockTime")
	})
	if got := r.output(bucketName("web", 1795507780)); got != "" || r.fc.outcome(a) != "" || r.fc.outcome(b) != "" {
		t.Fatalf("before cluster-wait: bucket sent (%d bytes) or hosts reported (%q, %q)", len(got), r.fc.outcome(a), r.fc.outcome(b))
	}
	r.clock.add(5 * time.Second)
	waitFor(t, "the cluster bucket", func() bool {
		return strings.Contains(r.output(bucketName("web", 1795507780)), "ClusterHosts")
	})
	waitFor(t, "both hosts reported delivered", func() bool {
		return r.fc.outcome(a) == "delivered" && r.fc.outcome(b) == "delivered"
	})

	want := expectedLines(t, caseName, "loadbalancers.haproxy.", "loadbalancers.web.haproxy.", "1795507780", ".daemon.process.")
	want = append(want, "loadbalancers.web.haproxy.haproxystats.ClusterHosts 2 1795507780\n"...)
	got := r.output(bucketName("web", 1795507780))
	if ms := enginetest.Compare(want, []byte(got), false); mismatches(ms) != "" {
		t.Errorf("cluster bucket differs from the four processes' output:\n%s", mismatches(ms))
	}
	if strings.Contains(got, ".daemon.process.") {
		t.Error("cluster bucket has per-process lines")
	}

	// Each host: what the local setup of that host sends for its two
	// processes.
	extra := filepath.Join(t.TempDir(), "extra.conf")
	if err := os.WriteFile(extra, []byte("[graphite]\nprefix-hostname = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFiles(nil, filepath.Join("..", "..", "testdata", "conformance", caseName, "haproxystats.conf"), extra)
	if err != nil {
		t.Fatal(err)
	}
	for host, files := range map[string][]string{
		"lb-a.example.com/1795507783": {"admin1.sock_info", "admin1.sock_stat", "admin2.sock_info", "admin2.sock_stat"},
		"lb-b/1795507786":             {"admin3.sock_info", "admin3.sock_stat", "admin4.sock_info", "admin4.sock_stat"},
	} {
		local := hostSnapshot(t, t.TempDir(), "local", "", 0, src, files...)
		dir := filepath.Join(filepath.Dir(local.Dir), filepath.Base(host))
		if err := os.Rename(local.Dir, dir); err != nil {
			t.Fatal(err)
		}
		built, err := assemble.New(cfg, assemble.Options{Hostname: filepath.Dir(host), StageCacheDir: "-"})
		if err != nil {
			t.Fatal(err)
		}
		var localOut bytes.Buffer
		if _, err := built.Pipeline.ProcessDir(context.Background(), dir, &localOut); err != nil {
			t.Fatal(err)
		}
		built.Close()
		if ms := enginetest.Compare(enginetest.Normalize(localOut.Bytes()), []byte(r.output(host)), false); mismatches(ms) != "" {
			t.Errorf("%s: the lines from Kafka differ from the local setup's:\n%s", host, mismatches(ms))
		}
		if prefix := "loadbalancers." + strings.ReplaceAll(filepath.Dir(host), ".", "_") + ".haproxy."; !strings.HasPrefix(r.output(host), prefix) {
			t.Errorf("%s: lines do not start with %s: %.80q", host, prefix, r.output(host))
		}
	}
	if st := r.src.Stats(); st.Buckets != 1 || st.Cluster.Waited != 1 || st.Cluster.Held != 0 || st.Snapshots != 2 {
		t.Errorf("Stats() = %+v", st)
	}
}

// corpusSnapshot is the snapshot directory of a one-snapshot corpus case.
func corpusSnapshot(t *testing.T, caseName string) string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("..", "..", "testdata", "conformance", caseName, "incoming", "*"))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("case %s: %v, %v", caseName, dirs, err)
	}
	return dirs[0]
}

// TestLateAndTooLate: a host arriving after its bucket was sent makes it
// sent again with every host, until cluster-late; later, only its own
// lines are sent, and it is reported delivered once they are.
func TestLateAndTooLate(t *testing.T) {
	r := startSource(t, "dev4-defaults", "[graphite]\nprefix-hostname = true\n[process]\ncluster-name = web\ncluster-interval = 10\ncluster-wait = 5\ncluster-late = 20\n", nil, 16)
	src := corpusSnapshot(t, "dev4-defaults")
	a := hostSnapshot(t, r.dir, "lb1", "", 1800000001, src)
	r.fc.put(a)
	waitFor(t, "lb1's lines", func() bool { return strings.Contains(r.output("lb1/1800000001"), "TotalWallClockTime") })
	r.clock.add(5 * time.Second)
	bucket := bucketName("web", 1800000000)
	waitFor(t, "the bucket of lb1", func() bool { return r.fc.outcome(a) == "delivered" })
	if !strings.Contains(r.output(bucket), "loadbalancers.web.haproxy.haproxystats.ClusterHosts 1 1800000000\n") {
		t.Fatalf("bucket sent without ClusterHosts 1:\n%.300s", r.output(bucket))
	}
	first := r.output(bucket)

	b := hostSnapshot(t, r.dir, "lb2", "", 1800000002, src)
	r.fc.put(b)
	waitFor(t, "the bucket sent again with lb2", func() bool {
		return strings.Contains(r.output(bucket), "ClusterHosts 2 1800000000") && r.fc.outcome(b) == "delivered"
	})
	// Two equal hosts: every sum doubles.
	for _, metric := range []string{"frontend.frontend_proc1.stot", "backend.backend1_proc34.server.bck1_proc34_srv1.bin", "backend.backend1_proc34.stot", "daemon.CurrConns"} {
		v1, v2 := lineValue(t, first, "loadbalancers.web.haproxy."+metric), lineValue(t, r.output(bucket), "loadbalancers.web.haproxy."+metric)
		if v2 != 2*v1 || v1 == 0 {
			t.Errorf("%s: %v with lb1, %v with lb1 and lb2; want twice", metric, v1, v2)
		}
	}

	r.clock.add(21 * time.Second)
	waitFor(t, "the bucket forgotten", func() bool { return r.src.Stats().Cluster.Forgotten == 1 })
	c := hostSnapshot(t, r.dir, "lb3", "", 1800000003, src)
	r.fc.put(c)
	waitFor(t, "lb3 reported", func() bool { return r.fc.outcome(c) == "delivered" })
	if !strings.Contains(r.output("lb3/1800000003"), "loadbalancers.lb3.haproxy.") || strings.Contains(r.output(bucket), "ClusterHosts 3") {
		t.Errorf("too late: lb3's own lines %d bytes, bucket %q", len(r.output("lb3/1800000003")), r.output(bucket)[:80])
	}
	if st := r.src.Stats().Cluster; st.Late != 1 || st.TooLate != 1 || st.Again != 1 {
		t.Errorf("Stats().Cluster = %+v", st)
	}
	if !strings.Contains(r.logs.String(), "too late for its cluster bucket") {
		t.Error("too late snapshot not logged")
	}
}

// lineValue returns the value of path in lines.
func lineValue(t *testing.T, lines, path string) float64 {
	t.Helper()
	for _, l := range strings.Split(lines, "\n") {
		if f := strings.Split(l, " "); len(f) == 3 && f[0] == path {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no line of %s", path)
	return 0
}

// TestFailedSetAside: a snapshot the pipeline cannot process (a stage
// panics on it) is moved to _failed/<host>/<epoch> and reported
// delivered, so that its partition moves on; so is a bucket counting it.
// The next snapshots are processed.
func TestFailedSetAside(t *testing.T) {
	poison := engine.StageFunc(func(_ context.Context, s *engine.Snapshot, _ engine.Emitter) error {
		if s.Name == "1800000001" || s.Name == "1800000000" {
			panic("poisonous snapshot")
		}
		return nil
	})
	r := startSource(t, "single-defaults", "[process]\ncluster-wait = 1\n", []engine.StageSpec{{Name: "poison", Stage: poison}}, 16)
	src := corpusSnapshot(t, "single-defaults")
	bad := hostSnapshot(t, r.dir, "lb1", "web", 1800000001, src)
	good := hostSnapshot(t, r.dir, "lb2", "", 1800000012, src)
	r.fc.put(bad, good)
	waitFor(t, "lb2's lines", func() bool { return r.fc.outcome(good) == "delivered" })
	r.clock.add(time.Second)
	waitFor(t, "lb1 reported", func() bool { return r.fc.outcome(bad) == "delivered" })
	for _, dir := range []string{"lb1/1800000001", "_cluster_web/1800000000"} {
		if entries, err := os.ReadDir(filepath.Join(r.dir, failedDirName, dir)); err != nil || len(entries) == 0 {
			t.Errorf("%s not set aside: %v, %v", dir, entries, err)
		}
	}
	if st := r.src.Stats(); st.Failed != 2 {
		t.Errorf("Stats() = %+v, want 2 failed", st)
	}
}

// TestPruneFailed: at most MaxFailed snapshots are kept aside, the newest.
func TestPruneFailed(t *testing.T) {
	dir := t.TempDir()
	for i := range 105 {
		host := fmt.Sprintf("lb%d", i%3)
		if err := os.MkdirAll(filepath.Join(dir, host, strconv.Itoa(1_800_000_000+i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pruneFailed(dir, 100, slog.New(slog.DiscardHandler))
	var left []int
	for _, h := range []string{"lb0", "lb1", "lb2"} {
		entries, _ := os.ReadDir(filepath.Join(dir, h))
		for _, e := range entries {
			n, _ := strconv.Atoi(e.Name())
			left = append(left, n-1_800_000_000)
		}
	}
	slices.Sort(left)
	if len(left) != 100 || left[0] != 5 {
		t.Errorf("kept %d snapshots from %v, want the newest 100 (5..104)", len(left), left[:1])
	}
}

// TestMovedNotSent: a bucket whose hosts' partition moved to another
// processor is not sent; its hosts are reported not delivered (the new
// owner consumes them again).
func TestMovedNotSent(t *testing.T) {
	r := startSource(t, "single-defaults", "[process]\ncluster-name = web\ncluster-wait = 1\n", nil, 16)
	src := corpusSnapshot(t, "single-defaults")
	a := hostSnapshot(t, r.dir, "lb1", "", 1800000001, src)
	a.Partition = 3
	r.fc.put(a)
	waitFor(t, "lb1's lines", func() bool { return strings.Contains(r.output("lb1/1800000001"), "TotalWallClockTime") })
	r.fc.mu.Lock()
	r.fc.dead[3] = true
	r.fc.mu.Unlock()
	r.clock.add(time.Second)
	waitFor(t, "lb1 reported", func() bool { return r.fc.outcome(a) != "" })
	if o := r.fc.outcome(a); o != "not delivered" || r.output(bucketName("web", 1800000000)) != "" {
		t.Errorf("lb1 %s, bucket %q; want not delivered, not sent", o, r.output(bucketName("web", 1800000000)))
	}
}

// TestStopReleasesHeld: at the stop, a host snapshot held for a bucket
// that is not due is reported not delivered (its offset stays; it is
// consumed again after the restart).
func TestStopReleasesHeld(t *testing.T) {
	r := startSource(t, "single-defaults", "[process]\ncluster-name = web\n", nil, 16)
	a := hostSnapshot(t, r.dir, "lb1", "", 1800000001, corpusSnapshot(t, "single-defaults"))
	r.fc.put(a)
	waitFor(t, "lb1's lines", func() bool { return strings.Contains(r.output("lb1/1800000001"), "TotalWallClockTime") })
	if o := r.fc.outcome(a); o != "" {
		t.Fatalf("lb1 reported %s before its bucket", o)
	}
	r.stop()
	if o := r.fc.outcome(a); o != "not delivered" {
		t.Errorf("after the stop lb1 is %q, want not delivered", o)
	}
}

// TestRetryHostSnapshot: a host snapshot whose delivery failed is handed
// out again by the source, and reported once, delivered.
func TestRetryHostSnapshot(t *testing.T) {
	r := startSource(t, "single-defaults", "", nil, 16)
	r.dest.settle = make(chan error, 2)
	r.dest.settle <- fmt.Errorf("connection reset")
	r.dest.settle <- nil
	a := hostSnapshot(t, r.dir, "lb1", "", 1800000001, corpusSnapshot(t, "single-defaults"))
	r.fc.put(a)
	waitFor(t, "lb1 reported", func() bool { return r.fc.outcome(a) != "" })
	if o := r.fc.outcome(a); o != "delivered" {
		t.Errorf("lb1 %s, want delivered", o)
	}
	r.dest.mu.Lock()
	opens := r.dest.opens
	r.dest.mu.Unlock()
	if opens != 2 {
		t.Errorf("destination opened %d times, want 2 (a retry)", opens)
	}
}

// TestViewCacheBounded: one view per host, the same one while cached, at
// most MaxHostViews of them; each with its host's prefix.
func TestViewCacheBounded(t *testing.T) {
	v := viewCache{base: builtinPipeline(t), paths: &engine.Paths{Prefix: "p"},
		g: config.Graphite{Namespace: "lb", PrefixHostname: true, FQDN: true}}
	first, err := v.host("lb1.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := v.host("lb1.example.com"); again != first {
		t.Error("a second view of the same host")
	}
	for i := range MaxHostViews + 10 {
		if _, err := v.host(fmt.Sprintf("h%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.hosts); n > MaxHostViews || n == 0 {
		t.Errorf("%d host views cached, want 1..%d", n, MaxHostViews)
	}
	var out bytes.Buffer
	p, _ := v.host("lb2.fra1")
	if _, err := p.ProcessFiles(context.Background(), "100", []engine.File{{Name: "a_stat", Data: []byte("# pxname,svname,scur,type\nfe,FRONTEND,3,0\n")}}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "lb.lb2_fra1.haproxy.frontend.fe.scur 3 100\n") {
		t.Errorf("view of lb2.fra1 wrote:\n%s", out.String())
	}
}
