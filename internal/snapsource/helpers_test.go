package snapsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/haproxystats-go/haproxystats/internal/kafka"
	"github.com/haproxystats-go/haproxystats/internal/snaprecord"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

const (
	testTopic = "haproxystats-snapshots"
	testGroup = "haproxystats-process"
)

// testFiles are the files of every test snapshot: a small _info and _stat
// whose content names the host and epoch, so that a mix-up shows.
func testFiles(host string, epoch int64) map[string]string {
	return map[string]string{
		"admin.sock_info": fmt.Sprintf("Name: HAProxy\nNode: %s\nUptime_sec: %d\n", host, epoch),
		"admin.sock_stat": fmt.Sprintf("# pxname,svname,scur,\nfe,FRONTEND,%d,\n", epoch%1000),
	}
}

// encode returns the record of host's snapshot of epoch.
func encode(t testing.TB, host string, epoch int64) []byte {
	t.Helper()
	files := testFiles(host, epoch)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	enc, err := snaprecord.NewEncoder(&b, snaprecord.Origin{Host: host}, strconv.FormatInt(epoch, 10), len(names))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := enc.Add(n, int64(len(files[n])), strings.NewReader(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// record is one record to produce: to partition, keyed by host.
type record struct {
	partition int32
	host      string
	value     []byte
}

func snap(t testing.TB, partition int32, host string, epoch int64) record {
	return record{partition: partition, host: host, value: encode(t, host, epoch)}
}

// produce writes recs, in order, to the partitions they name, and waits
// for them to be acknowledged.
func produce(t testing.TB, addr string, recs ...record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(testTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableClientMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, r := range recs {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: r.partition, Key: []byte(r.host), Value: r.value}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// testConfig is a consumer of the test topic at addr writing to a new
// directory, with short commit and group intervals.
func testConfig(t testing.TB, addr string) Config {
	return Config{
		Conn: kafka.Config{Brokers: []string{addr}, ClientID: "snapsource-test", DialTimeout: time.Second,
			RequestTimeout: 5 * time.Second, RetryBackoff: 20 * time.Millisecond, RetryBackoffMax: 250 * time.Millisecond},
		Topic: testTopic, Group: testGroup, Dir: t.TempDir(), QueueSize: 16,
		MaxSnapshotBytes: snaprecord.DefaultMaxBytes, StopTimeout: 5 * time.Second,
		CommitInterval: 50 * time.Millisecond, SessionTimeout: 6 * time.Second, HeartbeatInterval: 300 * time.Millisecond,
	}
}

// running is a consumer running until the end of the test.
type running struct {
	c    *Consumer
	bg   *testenv.Running
	logs *testenv.Buffer
}

func start(t testing.TB, cfg Config) *running {
	t.Helper()
	logs := &testenv.Buffer{}
	c, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &running{c: c, bg: testenv.Background(t, "consumer Run", c.Run), logs: logs}
}

// stop ends Run and waits for it; Run must return nil.
func (r *running) stop(t testing.TB) {
	t.Helper()
	if err := r.bg.Stop(t); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// next waits at most a minute for the next snapshot.
func (r *running) next(t testing.TB) *Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := r.c.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v; stats %+v; log:\n%s", err, r.c.Stats(), r.logs.String())
	}
	return s
}

// nothingNext checks that Next hands nothing out within wait (a bound on
// how long to look, not a timing).
func (r *running) nothingNext(t testing.TB, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if s, err := r.c.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %+v, %v; want nothing", s, err)
	}
}

// checkFiles fails unless s's directory holds the files of its host and
// epoch.
func checkFiles(t testing.TB, s *Snapshot) {
	t.Helper()
	epoch, _ := strconv.ParseInt(s.Epoch, 10, 64)
	want := testFiles(s.Host, epoch)
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		t.Fatalf("snapshot %s/%s: %v", s.Host, s.Epoch, err)
	}
	if len(entries) != len(want) || filepath.Base(s.Dir) != s.Epoch || filepath.Base(filepath.Dir(s.Dir)) != s.Host {
		t.Errorf("snapshot %s/%s at %s holds %d entries, want %d", s.Host, s.Epoch, s.Dir, len(entries), len(want))
	}
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil || string(got) != data {
			t.Errorf("snapshot %s/%s file %s = %q, %v; want %q", s.Host, s.Epoch, name, got, err, data)
		}
	}
}

// committed returns the offsets the group committed for the topic.
func committed(t testing.TB, addr string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DisableClientMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = testGroup
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = testTopic
	rt.Partitions = []int32{0, 1, 2, 3, 4, 5, 6, 7}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("fetch the committed offsets: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("fetch the committed offsets: %v", err)
	}
	out := map[int32]int64{}
	for _, topic := range resp.Topics {
		for _, p := range topic.Partitions {
			if p.Offset >= 0 {
				out[p.Partition] = p.Offset
			}
		}
	}
	return out
}

// waitCommitted waits (at most a minute) until the group's committed
// offsets are want.
func waitCommitted(t testing.TB, addr string, want map[int32]int64, r *running) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := committed(t, addr)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets %v, want %v; stats %+v", got, want, r.c.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hostDirs lists the snapshot directories under the consumer's directory.
func onDisk(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	hosts, _ := os.ReadDir(dir)
	for _, h := range hosts {
		snaps, _ := os.ReadDir(filepath.Join(dir, h.Name()))
		for _, s := range snaps {
			out = append(out, h.Name()+"/"+s.Name())
		}
	}
	return out
}
