package publish

import (
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

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/pull"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// The integration tests: real haproxy instances pulled by internal/pull
// with destination = both (so dst-dir keeps a copy of every round to
// compare with), the publisher built by FromSettings from a configuration
// file, a kfake broker, and a franz-go reader (testenv.KafkaRecords).

const snapshotTopic = "haproxystats-snapshots"

// lb is one load balancer: its haproxy instances, its puller and the
// settings of its publisher.
type lb struct {
	host    string
	cluster string // [process] cluster-name, "" = none
	ps      *config.Pull
	puller  *pull.Puller
	mu      sync.Mutex
	rounds  []string // epochs committed
}

// newLB starts two haproxy instances and reads a configuration that pulls
// them with [pull] destination = both and publishes to k.
func newLB(t *testing.T, k *testenv.Kafka, host string) *lb {
	t.Helper()
	return newClusterLB(t, k, host, "")
}

// newClusterLB is newLB with [process] cluster-name = cluster when not "".
func newClusterLB(t *testing.T, k *testenv.Kafka, host, cluster string) *lb {
	t.Helper()
	sockets := testenv.ShortDir(t)
	closed := testenv.FreePort(t)
	for i := range 2 {
		testenv.StartHAProxy(t, testenv.HAProxyConfig{
			StatsSockets: []string{filepath.Join(sockets, fmt.Sprintf("admin%d.sock", i+1))},
			Body:         testenv.Proxies(testenv.FreePort(t), 3, 2, closed),
		})
	}
	text := fmt.Sprintf("[paths]\nbase-dir = %s\n[pull]\nsocket-dir = %s\ndestination = both\n[graphite]\nhostname = %s\n%ssnapshot-topic = %s\n",
		t.TempDir(), sockets, host, k.ConfigSection("haproxystats-metrics"), snapshotTopic)
	if cluster != "" {
		text += "[process]\ncluster-name = " + cluster + "\n"
	}
	c, err := config.LoadSources(nil, config.Source{Name: "haproxystats.conf", Data: []byte(text)})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.PullSettings()
	if err != nil {
		t.Fatalf("PullSettings of\n%s: %v", text, err)
	}
	p, err := pull.New(pull.ConfigFrom(ps), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Prepare(); err != nil {
		t.Fatal(err)
	}
	if ps.Cluster != cluster {
		t.Fatalf("PullSettings().Cluster = %q, want %q", ps.Cluster, cluster)
	}
	return &lb{host: host, cluster: cluster, ps: ps, puller: p}
}

// publisher starts a publisher of the load balancer's Kafka spool.
func (l *lb) publisher(t *testing.T) *running {
	t.Helper()
	logs := &testenv.Buffer{}
	p, err := FromSettings(l.ps, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("FromSettings: %v", err)
	}
	return &running{p: p, bg: testenv.Background(t, "publisher Run", p.Run), logs: logs}
}

// round runs the round of epoch, which must be committed.
func (l *lb) round(t *testing.T, epoch int64) {
	t.Helper()
	if err := l.puller.Round(context.Background(), time.Unix(epoch, 0)); err != nil {
		t.Fatalf("Round(%d): %v", epoch, err)
	}
	l.mu.Lock()
	l.rounds = append(l.rounds, strconv.FormatInt(epoch, 10))
	l.mu.Unlock()
}

// queued lists the snapshots waiting in the Kafka spool.
func (l *lb) queued(t testing.TB) []string {
	t.Helper()
	return snapshotsIn(t, l.ps.KafkaDstDir)
}

// checkArrived reads the snapshot topic and checks the promise for this
// load balancer: every committed round arrived, as a record keyed by the
// cluster (else the host) holding the host, the cluster and exactly the
// files of the round (dst-dir's copy), all in one partition, first
// occurrences in the order of the rounds, nothing else.
// It returns the number of duplicates (a round that arrived more than
// once).
func (l *lb) checkArrived(t *testing.T, k *testenv.Kafka) (dups int) {
	t.Helper()
	seen := map[string]int{}
	var first []string
	partitions := map[int32]bool{}
	key := l.host
	if l.cluster != "" {
		key = l.cluster
	}
	for _, rec := range testenv.KafkaRecords(t, k.Addr(), snapshotTopic) {
		r := parseRecord(t, rec.Value)
		if r.Host != l.host {
			continue
		}
		if string(rec.Key) != key || r.Cluster != l.cluster {
			t.Errorf("record of %s/%s: key %q, cluster %q; want key %q, cluster %q", r.Host, r.Epoch, rec.Key, r.Cluster, key, l.cluster)
		}
		partitions[rec.Partition] = true
		if seen[r.Epoch]++; seen[r.Epoch] > 1 {
			dups++
			continue
		}
		first = append(first, r.Epoch)
		snap := filepath.Join(l.ps.DstDir, r.Epoch)
		want := dirFiles(t, snap)
		if got := recordFiles(t, rec.Value, l.host, r.Epoch); fmt.Sprint(got) != fmt.Sprint(want) || len(want) != 4 {
			t.Errorf("record of %s holds %d files, not the %d of %s", r.Epoch, len(got), len(want), snap)
		}
	}
	l.mu.Lock()
	rounds := slices.Clone(l.rounds)
	l.mu.Unlock()
	if !slices.Equal(first, rounds) {
		t.Errorf("host %s: snapshots in the topic (first occurrences, in offset order) %v, want the rounds %v", l.host, first, rounds)
	}
	if len(partitions) != 1 {
		t.Errorf("host %s: records in %d partitions, want one", l.host, len(partitions))
	}
	return dups
}

// TestPullToKafka: rounds of two load balancers, pulled from real haproxy
// and published while they are pulled, arrive each exactly once, every
// host's in one partition in order, and leave the Kafka spool; dst-dir
// (destination = both) keeps its own copy.
func TestPullToKafka(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{snapshotTopic, "haproxystats-metrics"}, Partitions: 3})
	lbs := []*lb{newLB(t, k, "lb1.test"), newLB(t, k, "lb2.test")}
	var pubs []*running
	for _, l := range lbs {
		pubs = append(pubs, l.publisher(t))
	}
	for i := range int64(4) {
		for _, l := range lbs {
			l.round(t, 1_800_000_000+i)
		}
	}
	for i, l := range lbs {
		waitEmpty(t, l.ps.KafkaDstDir, pubs[i])
		if dups := l.checkArrived(t, k); dups != 0 {
			t.Errorf("host %s: %d duplicates without a fault", l.host, dups)
		}
		if st := pubs[i].p.Stats(); st.Published != 4 || st.Failures != 0 {
			t.Errorf("host %s: Stats() = %+v, want 4 published", l.host, st)
		}
		if n := len(snapshotsIn(t, l.ps.DstDir)); n != 4 {
			t.Errorf("host %s: dst-dir holds %d snapshots, want its 4 copies", l.host, n)
		}
	}
}

// TestPullToKafkaCluster: with [process] cluster-name, the records of every
// host of the cluster carry it and are keyed by it: the hosts share one
// partition, each host's snapshots in the order of its rounds.
func TestPullToKafkaCluster(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{snapshotTopic, "haproxystats-metrics"}, Partitions: 8})
	lbs := []*lb{newClusterLB(t, k, "lb1.test", "web"), newClusterLB(t, k, "lb2.test", "web"), newClusterLB(t, k, "lb3.test", "web")}
	var pubs []*running
	for _, l := range lbs {
		pubs = append(pubs, l.publisher(t))
	}
	for i := range int64(3) {
		for _, l := range lbs {
			l.round(t, 1_800_000_000+i)
		}
	}
	parts := map[int32]bool{}
	for i, l := range lbs {
		waitEmpty(t, l.ps.KafkaDstDir, pubs[i])
		if dups := l.checkArrived(t, k); dups != 0 {
			t.Errorf("host %s: %d duplicates without a fault", l.host, dups)
		}
	}
	for _, rec := range testenv.KafkaRecords(t, k.Addr(), snapshotTopic) {
		parts[rec.Partition] = true
	}
	if len(parts) != 1 {
		t.Errorf("the hosts of cluster web are in partitions %v, want one", parts)
	}
}

func snapshotsIn(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestBrokerDownAtStart: with the broker down the rounds pile up in the
// Kafka spool, the failed connections are logged, and once it is up every
// round arrives once.
func TestBrokerDownAtStart(t *testing.T) {
	t.Parallel()
	k := testenv.NewKafka(t, testenv.KafkaConfig{Topics: []string{snapshotTopic, "haproxystats-metrics"}})
	l := newLB(t, k, "lb1.test")
	r := l.publisher(t)
	for i := range int64(3) {
		l.round(t, 1_800_000_000+i)
	}
	waitLog(t, r, "kafka: cannot connect to broker")
	if q := l.queued(t); len(q) != 3 || r.p.Stats().Published != 0 {
		t.Fatalf("with the broker down: Kafka spool %v, %+v; want the 3 rounds waiting", q, r.p.Stats())
	}
	k.Start()
	l.round(t, 1_800_000_003)
	waitEmpty(t, l.ps.KafkaDstDir, r)
	if dups := l.checkArrived(t, k); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
}

// TestBrokerKilledMidRun: the broker is killed (SIGKILL, data directory
// kept) while rounds are pulled and published, and started again: every
// round arrives, duplicates counted.
func TestBrokerKilledMidRun(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{snapshotTopic, "haproxystats-metrics"}})
	l := newLB(t, k, "lb1.test")
	r := l.publisher(t)
	for i := range int64(12) {
		switch i {
		case 4:
			k.Kill()
		case 8:
			k.Start()
		}
		l.round(t, 1_800_000_000+i)
		time.Sleep(50 * time.Millisecond) // let the publisher work between rounds
	}
	waitEmpty(t, l.ps.KafkaDstDir, r)
	dups := l.checkArrived(t, k)
	t.Logf("12 rounds, broker killed after 4 and started after 8: %d duplicates; %+v", dups, r.p.Stats())
}

// TestPublisherRestart: the publisher stops (pull restarted) while rounds
// go on, once with the broker up and once with it down and a record in
// flight; the stop is prompt, and the next publisher sends what was left:
// every round arrives.
func TestPublisherRestart(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{snapshotTopic, "haproxystats-metrics"}})
	l := newLB(t, k, "lb1.test")
	r := l.publisher(t)
	l.round(t, 1_800_000_000)
	l.round(t, 1_800_000_001)
	waitEmpty(t, l.ps.KafkaDstDir, r)
	r.stop(t)
	l.round(t, 1_800_000_002)
	l.round(t, 1_800_000_003)

	k.Stop()
	r = l.publisher(t)
	l.round(t, 1_800_000_004)
	waitLog(t, r, "kafka: cannot connect to broker")
	began := time.Now()
	r.stop(t) // a record is in flight, the broker is down
	t.Logf("stop with the broker down took %v (bound: StopTimeout %v)", time.Since(began), StopTimeout)
	if q := l.queued(t); len(q) != 3 {
		t.Fatalf("after a stop with the broker down the Kafka spool holds %v, want the 3 rounds not published", q)
	}
	k.Start()
	r = l.publisher(t)
	waitEmpty(t, l.ps.KafkaDstDir, r)
	if dups := l.checkArrived(t, k); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
}

// TestLargeSnapshotNeedsTopicLimit: the large snapshot (8 x 2.8 MB stat
// files, 22.7 MB as a record, about 1.9 MB with snappy) is refused by a
// broker at Kafka's default message.max.bytes (1048588): it stays in the
// spool, and the error names the setting; with the setting raised it
// arrives.
func TestLargeSnapshotNeedsTopicLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a 22 MB snapshot")
	}
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{snapshotTopic, "haproxystats-metrics"}})
	l := newLB(t, k, "lb1.test")
	epoch := "1800000000"
	if err := testenv.GenerateLarge("../../testdata/conformance/medium-defaults/incoming/1795507862", filepath.Join(l.ps.KafkaDstDir, epoch)); err != nil {
		t.Fatal(err)
	}
	want := dirFiles(t, filepath.Join(l.ps.KafkaDstDir, epoch))
	r := l.publisher(t)
	waitLog(t, r, "max.message.bytes")
	r.stop(t)
	if q := l.queued(t); !slices.Equal(q, []string{epoch}) {
		t.Fatalf("Kafka spool = %v, want the large snapshot kept", q)
	}
	k.RestartWith(testenv.KafkaConfig{Topics: []string{snapshotTopic}, BrokerConfigs: map[string]string{"message.max.bytes": "8388608"}})
	r = l.publisher(t)
	waitEmpty(t, l.ps.KafkaDstDir, r)
	recs := testenv.KafkaRecords(t, k.Addr(), snapshotTopic)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	if got := recordFiles(t, recs[0].Value, l.host, epoch); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the large snapshot's record differs from its files")
	}
	t.Logf("large snapshot: record of %d bytes; %+v", len(recs[0].Value), r.p.Stats())
	if !strings.Contains(r.logs.String(), "snapshot published") {
		t.Errorf("no debug line for the published snapshot")
	}
}
