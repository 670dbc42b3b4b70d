package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/haproxystats-go/haproxystats/internal/snaprecord"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// buildPull builds the haproxystats-pull binary into a temporary
// directory (the Go build cache makes it quick).
func buildPull(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "haproxystats-pull")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", append(args, "../haproxystats-pull")...).CombinedOutput(); err != nil {
		t.Fatalf("build haproxystats-pull: %v\n%s", err, out)
	}
	return bin
}

// loadBalancer is one HAProxy standing for a host, with HTTP traffic
// through it to a real server until the test ends.
func loadBalancer(t *testing.T, server string) (sockets string) {
	t.Helper()
	sockets = testenv.ShortDir(t)
	port := testenv.FreePort(t)
	testenv.StartHAProxy(t, testenv.HAProxyConfig{
		StatsSockets: []string{filepath.Join(sockets, "admin.sock")},
		Body: fmt.Sprintf("defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n"+
			"frontend fe\n    bind 127.0.0.1:%d\n    default_backend be\n\n"+
			"backend be\n    server s1 %s\n    server s2 %s\n", port, server, server),
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		client := &http.Client{Timeout: time.Second}
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		for ctx.Err() == nil {
			if resp, err := client.Get(url); err == nil {
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(15 * time.Millisecond):
			}
		}
	})
	return sockets
}

// sinkLines indexes what a Graphite sink received: path -> timestamp ->
// the values, in the order received on each connection.
type sinkLines map[string]map[int64][]float64

func parseSink(t *testing.T, r *testenv.Recorder) sinkLines {
	t.Helper()
	lines, truncated := r.Lines(0)
	if truncated != 0 {
		t.Fatalf("sink: %d lines truncated", truncated)
	}
	out := sinkLines{}
	for _, l := range lines {
		f := strings.Split(l, " ")
		if len(f) != 3 {
			t.Fatalf("sink: malformed line %q", l)
		}
		v, err1 := strconv.ParseFloat(f[1], 64)
		ts, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("sink: malformed line %q", l)
		}
		if out[f[0]] == nil {
			out[f[0]] = map[int64][]float64{}
		}
		out[f[0]][ts] = append(out[f[0]][ts], v)
	}
	return out
}

var committedRe = regexp.MustCompile(`msg="snapshot committed" snapshot=(\d+)`)

// TestCentralCluster is issue 15's test of central processing: two HAProxy
// instances standing for two load balancers of cluster "web" (their
// [graphite] hostname), pulled by two haproxystats-pull processes that
// publish to Kafka (a kfake broker), consumed by two haproxystats-process
// processes in one consumer group (source = kafka) that send to one
// Graphite sink. Every host snapshot's lines arrive, once (duplicates only
// after the fault, counted); every bucket of 2 s arrives, with every host
// that reported it, and its sums (backend stot, server bin, frontend bin
// and req_tot, daemon CumConns) equal the sums of the hosts' values of
// that bucket. Midway the processor that owns the cluster's partition is
// killed with SIGKILL: the other takes the partition over after the
// session timeout and nothing is lost.
func TestCentralCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of real processes")
	}
	pullBin := buildPull(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(strings.Repeat("x", 512)))
	}))
	t.Cleanup(web.Close)
	server := strings.TrimPrefix(web.URL, "http://")
	hosts := []string{"lb1.example.com", "lb2.example.com"}
	var sockets []string
	for range hosts {
		sockets = append(sockets, loadBalancer(t, server))
	}
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{"haproxystats-snapshots"}, Partitions: 4})
	sink := testenv.StartRecorder(t, testenv.RecorderOptions{})
	kafka := fmt.Sprintf("[kafka]\nbrokers = %s\nretry-backoff = 0.05\nretry-backoff-max = 0.5\nsession-timeout = 6\n", k.Addr())

	// The processing tier.
	var procs []*daemon
	for i := range 2 {
		dir := t.TempDir()
		conf := filepath.Join(dir, "haproxystats.conf")
		text := fmt.Sprintf("[paths]\nbase-dir = %s\n[pull]\npull-interval = 2\n[process]\nsource = kafka\nloglevel = debug\nworkers = 2\ncluster-wait = 4\nstop-timeout = 5\n[graphite]\nserver = 127.0.0.1\nport = %d\n%s",
			dir, sink.Port(), kafka)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, startDaemon(t, dir, "-f", conf))
		waitFor(t, 60*time.Second, fmt.Sprintf("processor %d to join the group", i), func() bool {
			return strings.Contains(procs[i].log.String(), "partitions assigned")
		})
	}
	// The load balancers.
	var pullers []*daemon
	var pullDirs []string
	for i, host := range hosts {
		dir := t.TempDir()
		conf := filepath.Join(dir, "haproxystats.conf")
		text := fmt.Sprintf("[paths]\nbase-dir = %s\n[pull]\nsocket-dir = %s\npull-interval = 2\ndestination = kafka\nloglevel = debug\n[process]\ncluster-name = web\n[graphite]\nhostname = %s\n%s",
			dir, sockets[i], host, kafka)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		pullers = append(pullers, startProgram(t, pullBin, dir, "-f", conf))
		pullDirs = append(pullDirs, dir)
	}

	const clusterHosts = "loadbalancers.web.haproxy.haproxystats.ClusterHosts"
	fullBuckets := func(after int64) int {
		n := 0
		for ts, vs := range parseSink(t, sink)[clusterHosts] {
			if ts > after && slices.Contains(vs, 2) {
				n++
			}
		}
		return n
	}
	waitFor(t, 90*time.Second, "4 buckets with both hosts", func() bool { return fullBuckets(0) >= 4 })

	// Kill the processor that sends the cluster's buckets.
	const sent = `msg="snapshot delivered" snapshot=_cluster/web/`
	owner := -1
	for i, p := range procs {
		if n := strings.Count(p.log.String(), sent); n > 0 {
			if owner >= 0 {
				t.Fatalf("both processors sent buckets of the cluster before the fault")
			}
			owner = i
		}
	}
	if owner < 0 {
		t.Fatal("no processor sent a cluster bucket")
	}
	other := procs[1-owner]
	before := strings.Count(other.log.String(), sent)
	killed := time.Now()
	procs[owner].kill9(t)
	waitFor(t, 90*time.Second, "the other processor to send the cluster's buckets", func() bool {
		return strings.Count(other.log.String(), sent) > before
	})
	t.Logf("killed processor %d; processor %d sent a bucket %v later", owner, 1-owner, time.Since(killed).Round(100*time.Millisecond))
	waitFor(t, 90*time.Second, "4 more buckets with both hosts after the takeover", func() bool {
		return fullBuckets(killed.Unix()+2) >= 4
	})

	// Stop the load balancers; what they committed and published must all
	// arrive.
	want := map[string][]int64{} // host -> epochs published
	for i, p := range pullers {
		p.term(t, 20*time.Second)
		left := map[string]bool{}
		entries, _ := os.ReadDir(filepath.Join(pullDirs[i], "kafka-outgoing"))
		for _, e := range entries {
			left[e.Name()] = true
		}
		for _, m := range committedRe.FindAllStringSubmatch(p.log.String(), -1) {
			if !left[m[1]] {
				e, _ := strconv.ParseInt(m[1], 10, 64)
				want[hosts[i]] = append(want[hosts[i]], e)
			}
		}
		if len(want[hosts[i]]) < 8 {
			t.Fatalf("%s published %d snapshots, want at least 8", hosts[i], len(want[hosts[i]]))
		}
	}
	pathOf := func(host, metric string) string {
		return "loadbalancers." + strings.ReplaceAll(host, ".", "_") + ".haproxy." + metric
	}
	buckets := map[int64]map[string]int64{} // bucket -> host -> its (last) epoch in it
	for host, eps := range want {
		for _, e := range eps {
			b := e - e%2
			if buckets[b] == nil {
				buckets[b] = map[string]int64{}
			}
			buckets[b][host] = max(buckets[b][host], e)
		}
	}
	arrived := func() bool {
		got := parseSink(t, sink)
		for host, eps := range want {
			for _, e := range eps {
				if len(got[pathOf(host, "haproxystats.TotalWallClockTime")][e]) == 0 {
					return false
				}
			}
		}
		for b, hs := range buckets {
			if !slices.Contains(got[clusterHosts][b], float64(len(hs))) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(60 * time.Second)
	for !arrived() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	other.term(t, 20*time.Second)
	got := parseSink(t, sink)

	// Every host snapshot, once (duplicates only after the fault).
	dups := 0
	for host, eps := range want {
		for _, e := range eps {
			n := len(got[pathOf(host, "haproxystats.TotalWallClockTime")][e])
			switch {
			case n == 0:
				t.Errorf("host %s snapshot %d: no lines at the sink", host, e)
			case n > 1:
				dups += n - 1
				if e < killed.Unix()-15 {
					t.Errorf("host %s snapshot %d (15 s before the fault or more) arrived %d times", host, e, n)
				}
			}
		}
	}
	// Every bucket, with every host that reported it, and its sums.
	metrics := []string{"backend.be.stot", "backend.be.server.s1.bin", "backend.be.server.s2.bin", "frontend.fe.bin", "frontend.fe.req_tot", "daemon.CumConns"}
	partial, again, checked := 0, 0, 0
	for b, hs := range buckets {
		ch := got[clusterHosts][b]
		if !slices.Contains(ch, float64(len(hs))) {
			t.Errorf("bucket %d: ClusterHosts %v, want a computation with its %d hosts %v", b, ch, len(hs), hs)
			continue
		}
		again += len(ch) - 1
		for _, v := range ch {
			if v < float64(len(hs)) {
				partial++
			}
		}
		for _, m := range metrics {
			sum := 0.0
			for host, e := range hs {
				vs := got[pathOf(host, m)][e]
				if len(vs) == 0 {
					t.Fatalf("host %s snapshot %d: no %s", host, e, m)
				}
				sum += vs[len(vs)-1]
			}
			vs := got["loadbalancers.web.haproxy."+m][b]
			if !slices.ContainsFunc(vs, func(v float64) bool { return math.Abs(v-sum) <= 1e-9*math.Max(1, math.Abs(sum)) }) {
				t.Errorf("bucket %d %s: cluster values %v, want the sum of its hosts' %v", b, m, vs, sum)
			}
			checked++
		}
	}
	if _, ok := got["loadbalancers.web.haproxy.backend.be.stot"]; !ok || checked == 0 {
		t.Fatal("no cluster sum checked")
	}
	var sumStot float64
	for _, vs := range got["loadbalancers.web.haproxy.backend.be.stot"] {
		sumStot = max(sumStot, vs[len(vs)-1])
	}
	if sumStot == 0 {
		t.Error("no traffic counted: the sums compare zeros")
	}
	t.Logf("%d host snapshots, %d buckets, %d sums checked; %d duplicate host snapshots, %d bucket computations again (late hosts or the takeover), %d partial",
		len(want[hosts[0]])+len(want[hosts[1]]), len(buckets), checked, dups, again, partial)
}

var deliveredRe = regexp.MustCompile(`msg="snapshot delivered" snapshot=lb`)

// TestThroughputFromKafka measures the snapshots per second one processor
// sustains from Kafka: n snapshot records of 4 hosts wait in a kfake topic
// (compressed as a load balancer would send them: snappy for the medium
// snapshot, zstd for the large one), and haproxystats-process (source =
// kafka, one partition, a Graphite stand-in that reads as fast as it can)
// consumes, processes and delivers them; "sustained" is the rate between
// 10% and 90% of the host snapshots delivered. With a cluster, the records
// carry cluster "web" and every bucket of 4 hosts is computed too (one
// bucket per 4 host snapshots; cluster-wait 1 s for the first, which knows
// no host yet), and the run lasts until every bucket is delivered. The
// processor's CPU time, buckets included, is reported. It
// runs only with HAPROXYSTATS_THROUGHPUT=1, without -race:
//
//	HAPROXYSTATS_THROUGHPUT=1 go test -count=1 -run TestThroughputFromKafka -v ./cmd/haproxystats-process/
func TestThroughputFromKafka(t *testing.T) {
	if os.Getenv("HAPROXYSTATS_THROUGHPUT") != "1" {
		t.Skip("set HAPROXYSTATS_THROUGHPUT=1 to measure sustained snapshots per second from Kafka")
	}
	large := filepath.Join(t.TempDir(), "large")
	if err := testenv.GenerateLarge(caseSnapshot(t, "medium-defaults"), large); err != nil {
		t.Fatal(err)
	}
	loadavg, _ := os.ReadFile("/proc/loadavg")
	t.Logf("load average before: %s", strings.TrimSpace(string(loadavg)))
	for _, c := range []struct {
		name, src, codec string
		n                int
	}{
		{"medium", caseSnapshot(t, "medium-defaults"), "snappy", 400},
		{"large", large, "zstd", 32},
	} {
		for _, clusterName := range []string{"", "web"} {
			t.Run(fmt.Sprintf("%s/cluster=%q", c.name, clusterName), func(t *testing.T) {
				k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{"haproxystats-snapshots"},
					BrokerConfigs: map[string]string{"message.max.bytes": strconv.Itoa(64 << 20)}})
				produceSnapshots(t, k.Addr(), c.src, c.codec, clusterName, c.n)
				sink := testenv.StartRecorder(t, testenv.RecorderOptions{Discard: true, ReadSize: 1 << 20})
				dir := t.TempDir()
				conf := filepath.Join(dir, "haproxystats.conf")
				text := fmt.Sprintf("[paths]\nbase-dir = %s\n[process]\nsource = kafka\nloglevel = debug\nworkers = 2\ncluster-wait = 1\n[graphite]\nserver = 127.0.0.1\nport = %d\n[kafka]\nbrokers = %s\nconsumer-queue-size = 16\n",
					dir, sink.Port(), k.Addr())
				if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				p := startDaemon(t, dir, "-f", conf)
				lo, hi := c.n/10, c.n-c.n/10
				var tLo, tHi time.Time
				deadline := start.Add(10 * time.Minute)
				for {
					done := len(deliveredRe.FindAllStringIndex(p.log.String(), -1))
					if done >= lo && tLo.IsZero() {
						tLo = time.Now()
					}
					if done >= hi && tHi.IsZero() {
						tHi = time.Now()
					}
					if done >= c.n && (clusterName == "" || strings.Count(p.log.String(), `snapshot delivered" snapshot=_cluster/`) >= c.n/4) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d of %d snapshots delivered after 10 minutes", done, c.n)
					}
					time.Sleep(20 * time.Millisecond)
				}
				last := time.Now()
				b, lines, _ := sink.Counts()
				hwm := testenv.PeakRSS(t, p.cmd.Process.Pid)
				p.term(t, 30*time.Second)
				total := last.Sub(start)
				cpu := p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
				buckets := strings.Count(p.log.String(), `snapshot delivered" snapshot=_cluster/`)
				t.Logf("%s cluster=%q: %d host snapshots and %d buckets (%d lines, %.1f MB) in %v from start: %.1f host snapshots/s sustained, %.1f overall; CPU %v (%v per host snapshot); peak RSS %.1f MiB",
					c.name, clusterName, c.n, buckets, lines, float64(b)/1e6, total.Round(time.Millisecond),
					float64(hi-lo)/tHi.Sub(tLo).Seconds(), float64(c.n)/total.Seconds(),
					cpu.Round(time.Millisecond), (cpu / time.Duration(c.n)).Round(10*time.Microsecond), float64(hwm)/(1<<20))
			})
		}
	}
	loadavg, _ = os.ReadFile("/proc/loadavg")
	t.Logf("load average after: %s", strings.TrimSpace(string(loadavg)))
}

// produceSnapshots produces n records of the snapshot src: hosts lb1..lb4
// in turn, each host's epochs 10 s apart, compressed with codec.
func produceSnapshots(t *testing.T, addr, src, codec, clusterName string, n int) {
	t.Helper()
	stage := t.TempDir()
	src, err := filepath.Abs(src)
	if err != nil {
		t.Fatal(err)
	}
	var comp kgo.CompressionCodec
	switch codec {
	case "zstd":
		comp = kgo.ZstdCompression()
	default:
		comp = kgo.SnappyCompression()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("haproxystats-snapshots"), kgo.DisableClientMetrics(),
		kgo.ProducerBatchCompression(comp), kgo.ProducerBatchMaxBytes(32<<20), kgo.MaxBufferedBytes(256<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := range n {
		host := fmt.Sprintf("lb%d.example.com", i%4+1)
		epoch := strconv.FormatInt(1_795_000_000+int64(i/4)*10+int64(i%4), 10)
		dir := filepath.Join(stage, epoch)
		if err := os.Symlink(src, dir); err != nil {
			t.Fatal(err)
		}
		v, err := snaprecord.EncodeDir(dir, snaprecord.Origin{Host: host, Cluster: clusterName}, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		key := host
		if clusterName != "" {
			key = clusterName
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: v}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}
