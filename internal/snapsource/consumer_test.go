package snapsource

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/snaprecord"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestDeliverThenCommit: snapshots are handed out with their files, one
// host's in order; nothing is committed before Done; a partition's commit
// stops at its first snapshot not delivered, and reaches the end once all
// are; each directory goes away with its Done.
func TestDeliverThenCommit(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{testTopic}, Partitions: 2})
	produce(t, k.Addr(),
		snap(t, 0, "lb1", 1800000000), snap(t, 1, "lb2", 1800000000), snap(t, 0, "lb3", 1800000000),
		snap(t, 0, "lb1", 1800000010), snap(t, 1, "lb2", 1800000010), snap(t, 0, "lb3", 1800000010))
	r := start(t, testConfig(t, k.Addr()))
	var got []*Snapshot
	last := map[string]string{}
	for range 6 {
		s := r.next(t)
		checkFiles(t, s)
		if last[s.Host] >= s.Epoch {
			t.Errorf("host %s: snapshot %s handed out after %s", s.Host, s.Epoch, last[s.Host])
		}
		last[s.Host] = s.Epoch
		got = append(got, s)
	}
	if c := committed(t, k.Addr()); len(c) != 0 {
		t.Fatalf("offsets %v committed before any Done", c)
	}
	// Partition 0 holds lb1, lb3, lb1, lb3 at offsets 0..3: deliver all
	// but offset 1 (lb3's first); partition 1 all.
	for _, s := range got {
		if s.Partition == 0 && s.Offset == 1 {
			continue
		}
		r.c.Done(s, true)
		if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
			t.Errorf("%s still there after Done: %v", s.Dir, err)
		}
	}
	waitCommitted(t, k.Addr(), map[int32]int64{0: 1, 1: 2}, r)
	for _, s := range got {
		if s.Partition == 0 && s.Offset == 1 {
			r.c.Done(s, true)
		}
	}
	waitCommitted(t, k.Addr(), map[int32]int64{0: 4, 1: 2}, r)
	if st := r.c.Stats(); st.Records != 6 || st.Snapshots != 6 || st.Delivered != 6 || st.Waiting != 0 {
		t.Errorf("Stats() = %+v", st)
	}
	if d := onDisk(t, r.c.cfg.Dir); len(d) != 0 {
		t.Errorf("consumer directory holds %v after every Done", d)
	}
}

// TestCluster: a version 2 record's cluster is handed out with its
// snapshot; a version 1 record has none.
func TestCluster(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{testTopic}})
	dir := filepath.Join(t.TempDir(), "1800000000")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range testFiles("lb1", 1800000000) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v2, err := snaprecord.EncodeDir(dir, snaprecord.Origin{Host: "lb1", Cluster: "web"}, snaprecord.DefaultMaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	produce(t, k.Addr(), record{partition: 0, host: "web", value: v2}, snap(t, 0, "lb2", 1800000000))
	r := start(t, testConfig(t, k.Addr()))
	for _, want := range []struct{ host, cluster string }{{"lb1", "web"}, {"lb2", ""}} {
		s := r.next(t)
		checkFiles(t, s)
		if s.Host != want.host || s.Cluster != want.cluster || !r.c.Live(s) {
			t.Errorf("snapshot host %q cluster %q live %v, want host %q cluster %q live", s.Host, s.Cluster, r.c.Live(s), want.host, want.cluster)
		}
		r.c.Done(s, true)
	}
	r.stop(t)
}

// TestRestartRedeliversUndelivered: a consumer stops with snapshots handed
// out and never reported; the next member of the group gets exactly the
// snapshots from the first one not delivered.
func TestRestartRedeliversUndelivered(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{testTopic}})
	for e := range int64(5) {
		produce(t, k.Addr(), snap(t, 0, "lb1", 1800000000+e))
	}
	cfg := testConfig(t, k.Addr())
	cfg.StopTimeout = 200 * time.Millisecond
	a := start(t, cfg)
	var out []*Snapshot
	for range 4 {
		out = append(out, a.next(t))
	}
	a.c.Done(out[0], true)
	a.c.Done(out[2], true) // after one not delivered: not committed
	waitCommitted(t, k.Addr(), map[int32]int64{0: 1}, a)
	a.stop(t)
	if !strings.Contains(a.logs.String(), "stop timeout reached with snapshots still being processed") {
		t.Errorf("the stop with snapshots handed out was not logged:\n%s", a.logs.String())
	}
	a.c.Done(out[1], true) // after the stop: commits nothing
	if c := committed(t, k.Addr()); c[0] != 1 {
		t.Fatalf("committed %v after the stop, want 1 for partition 0", c)
	}

	b := start(t, testConfig(t, k.Addr()))
	for _, want := range []string{"1800000001", "1800000002", "1800000003", "1800000004"} {
		s := b.next(t)
		if s.Epoch != want {
			t.Fatalf("the next member got %s, want %s", s.Epoch, want)
		}
		b.c.Done(s, true)
	}
	waitCommitted(t, k.Addr(), map[int32]int64{0: 5}, b)
}

// TestQueueBound: at QueueSize snapshots on disk the consumer stops
// fetching; Done makes room and it goes on.
func TestQueueBound(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{testTopic}})
	var recs []record
	for e := range int64(8) {
		recs = append(recs, snap(t, 0, "lb1", 1800000000+e))
	}
	produce(t, k.Addr(), recs...)
	cfg := testConfig(t, k.Addr())
	cfg.QueueSize = 2
	r := start(t, cfg)
	deadline := time.Now().Add(time.Minute)
	for r.c.Stats().Snapshots < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 2 snapshots consumed within a minute: %+v", r.c.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Look for a while: never more than 2 on disk.
	for range 50 {
		if st := r.c.Stats(); st.Waiting > 2 || st.Snapshots > 2 || len(onDisk(t, cfg.Dir)) > 2 {
			t.Fatalf("with queue size 2: %+v, on disk %v", st, onDisk(t, cfg.Dir))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(r.logs.String(), "fetching paused") {
		t.Errorf("fetching was not paused:\n%s", r.logs.String())
	}
	for i := range 8 {
		s := r.next(t)
		if want := "18000000" + string(rune('0'+i/10)) + string(rune('0'+i%10)); s.Epoch != want {
			t.Errorf("snapshot %d is %s, want %s", i, s.Epoch, want)
		}
		if n := len(onDisk(t, cfg.Dir)); n > 2 {
			t.Errorf("%d snapshots on disk, queue size 2", n)
		}
		r.c.Done(s, true)
	}
	waitCommitted(t, k.Addr(), map[int32]int64{0: 8}, r)
}

// TestRejected: records that are not snapshot records this consumer reads
// (Graphite lines, a newer version, corrupt, above max-snapshot-bytes) are
// logged and committed past; the snapshots around them are handed out.
func TestRejected(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{testTopic}})
	good := encode(t, "lb1", 1800000000)
	v3 := append([]byte(nil), good...)
	v3[4] = 3
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-10] ^= 1
	big := encode(t, "lb1", 1800000001)
	produce(t, k.Addr(),
		record{0, "lb1", []byte("a.b.c 1 1800000000\n")},
		record{0, "lb1", v3},
		record{0, "lb1", corrupt},
		record{0, "lb1", append(big, make([]byte, 4096)...)},
		record{0, "lb1", good})
	cfg := testConfig(t, k.Addr())
	cfg.MaxSnapshotBytes = 4096
	r := start(t, cfg)
	s := r.next(t)
	if s.Epoch != "1800000000" || s.Offset != 4 {
		t.Fatalf("handed out %s at offset %d, want 1800000000 at 4", s.Epoch, s.Offset)
	}
	r.c.Done(s, true)
	waitCommitted(t, k.Addr(), map[int32]int64{0: 5}, r)
	logs := r.logs.String()
	for _, want := range []string{"not a snapshot record", "version 3 is not supported", "checksum", "larger than max-snapshot-bytes"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no log line about %q:\n%s", want, logs)
		}
	}
	if st := r.c.Stats(); st.Rejected != 4 || st.Snapshots != 1 {
		t.Errorf("Stats() = %+v, want 4 rejected, 1 snapshot", st)
	}
}

// TestNotDeliveredHandedOutAgain: Done(false) hands the same snapshot out
// again before newer ones, and commits nothing.
func TestNotDeliveredHandedOutAgain(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{testTopic}})
	produce(t, k.Addr(), snap(t, 0, "lb1", 1800000000), snap(t, 0, "lb1", 1800000010))
	r := start(t, testConfig(t, k.Addr()))
	first := r.next(t)
	for range 2 {
		r.c.Done(first, false)
		again := r.next(t)
		if again != first {
			t.Fatalf("after Done(false) Next gave %s, want %s again", again.Epoch, first.Epoch)
		}
		checkFiles(t, again)
	}
	if c := committed(t, k.Addr()); len(c) != 0 {
		t.Errorf("committed %v with nothing delivered", c)
	}
	r.c.Done(first, true)
	r.c.Done(first, true) // a second Done does nothing
	second := r.next(t)
	if second.Epoch != "1800000010" {
		t.Fatalf("then %s, want 1800000010", second.Epoch)
	}
	r.c.Done(second, true)
	waitCommitted(t, k.Addr(), map[int32]int64{0: 2}, r)
	if st := r.c.Stats(); st.Retried != 2 || st.Delivered != 2 {
		t.Errorf("Stats() = %+v, want 2 retried, 2 delivered", st)
	}
}

// TestDuplicateAttached: a snapshot published twice is one snapshot: the
// second record is attached to the first on disk and committed with it.
func TestDuplicateAttached(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{testTopic}})
	produce(t, k.Addr(), snap(t, 0, "lb1", 1800000000), snap(t, 0, "lb1", 1800000000))
	r := start(t, testConfig(t, k.Addr()))
	s := r.next(t)
	deadline := time.Now().Add(time.Minute)
	for r.c.Stats().Merged != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the duplicate was not attached: %+v", r.c.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.nothingNext(t, 200*time.Millisecond)
	r.c.Done(s, true)
	waitCommitted(t, k.Addr(), map[int32]int64{0: 2}, r)
}

// TestRevokeRules exercises the commit rules of a rebalance without a
// broker: the waiting snapshots of a revoked partition are dropped and
// never handed out; one handed out before stays with its caller and its
// Done commits nothing, even when the partition comes back; a duplicate
// consumed after it came back is attached to it and committed by its Done.
func TestRevokeRules(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:1")
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec := func(p int32, off int64, host string, epoch int64) *kgo.Record {
		return &kgo.Record{Topic: testTopic, Partition: p, Offset: off, LeaderEpoch: 3, Value: encode(t, host, epoch)}
	}
	c.onAssigned(ctx, nil, map[string][]int32{testTopic: {0, 1}})
	c.handle(ctx, rec(0, 0, "lb1", 1800000000))
	c.handle(ctx, rec(0, 1, "lb1", 1800000010))
	c.handle(ctx, rec(1, 0, "lb2", 1800000000))
	out, err := c.Next(ctx)
	if err != nil || out.Host != "lb1" || out.Offset != 0 {
		t.Fatalf("Next = %+v, %v", out, err)
	}
	waiting := c.queue[0].Dir // lb1's second, waiting

	if got := c.revoke([]int32{0}, true); len(got) != 0 {
		t.Errorf("revoke(0) with nothing delivered = %v, want nothing to commit", got)
	}
	if _, err := os.Stat(waiting); !os.IsNotExist(err) {
		t.Errorf("the waiting snapshot of the revoked partition is still on disk: %v", err)
	}
	if _, err := os.Stat(out.Dir); err != nil {
		t.Errorf("the handed-out snapshot was removed under its caller: %v", err)
	}
	next, err := c.Next(ctx)
	if err != nil || next.Host != "lb2" {
		t.Fatalf("Next after revoke = %+v, %v, want lb2's (partition 1)", next, err)
	}
	c.Done(next, true)
	if got := c.revoke([]int32{1}, true); got[1].Offset != 1 || got[1].Epoch != 3 {
		t.Errorf("revoke(1) after its snapshot was delivered = %v, want offset 1, leader epoch 3", got)
	}

	// Partition 0 comes back: the record of the snapshot still handed out
	// is consumed again and attached to it.
	c.onAssigned(ctx, nil, map[string][]int32{testTopic: {0}})
	c.handle(ctx, rec(0, 0, "lb1", 1800000000))
	if st := c.Stats(); st.Merged != 1 || st.Dropped != 1 {
		t.Errorf("Stats() = %+v, want 1 merged, 1 dropped", st)
	}
	c.Done(out, true)
	if got := c.revoke([]int32{0}, true); got[0].Offset != 1 {
		t.Errorf("the handed-out snapshot's Done committed %v, want offset 1 (its record of the new assignment)", got)
	}
	if _, err := os.Stat(out.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still on disk after Done: %v", out.Dir, err)
	}

	// A snapshot of a revoked partition reported not delivered is dropped,
	// not handed out again.
	c.onAssigned(ctx, nil, map[string][]int32{testTopic: {2}})
	c.handle(ctx, rec(2, 0, "lb3", 1800000000))
	s, _ := c.Next(ctx)
	c.revoke([]int32{2}, false)
	c.Done(s, false)
	ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if s, err := c.Next(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next after a revoked snapshot's Done(false) = %+v, %v, want nothing", s, err)
	}
	if d := onDisk(t, cfg.Dir); len(d) != 0 {
		t.Errorf("consumer directory holds %v", d)
	}
}

// TestCleanAtStart: what an earlier run left in the directory (snapshot and
// temporary directories of hosts) is removed at start; other entries stay.
func TestCleanAtStart(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:1")
	for _, d := range []string{"lb1/1800000000", "lb1/" + snaprecord.TempPrefix + "1800000001-123", "lb2/1800000000", "keep/notes", ".hidden/1800000000"} {
		if err := os.MkdirAll(cfg.Dir+"/"+d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.clean(); err != nil {
		t.Fatal(err)
	}
	got := onDisk(t, cfg.Dir)
	if want := []string{".hidden/1800000000", "keep/notes"}; !slices.Equal(got, want) {
		t.Errorf("after clean: %v, want %v", got, want)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{QueueSize: 0, MaxSnapshotBytes: -1}, nil)
	for _, want := range []string{"no broker", "must all be set", "queue size 0", "max snapshot bytes -1", "stop timeout", "retry backoff"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(zero config) = %v, want an error containing %q", err, want)
		}
	}
}

// TestFromSettings: the [kafka] options reach the consumer.
func TestFromSettings(t *testing.T) {
	c, err := config.LoadSources(nil, config.Source{Name: "t.conf", Data: []byte(
		"[kafka]\nbrokers = k1:9092\nsnapshot-topic = snaps\ngroup = central\nconsumer-dir = /srv/in\nconsumer-queue-size = 3\nmax-snapshot-bytes = 2048\n")})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := c.KafkaSettings()
	if err != nil {
		t.Fatal(err)
	}
	src, err := FromSettings(*ks, 7*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := src.cfg
	if got.Topic != "snaps" || got.Group != "central" || got.Dir != "/srv/in" || got.QueueSize != 3 || got.MaxSnapshotBytes != 2048 ||
		got.StopTimeout != 7*time.Second || !slices.Equal(got.Conn.Brokers, []string{"k1:9092"}) || got.CommitInterval != DefaultCommitInterval {
		t.Errorf("FromSettings = %+v", got)
	}
}
