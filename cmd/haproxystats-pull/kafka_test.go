package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/snaprecord"
	"github.com/haproxystats-go/haproxystats/internal/spool"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestPullMastersToKafka runs the command with [pull] destination = kafka
// against HAProxy in master-worker mode (the master-CLI pull) and a kfake
// broker: the rounds are published as snapshot records keyed by [graphite]
// hostname, holding the workers' files; after the stop every committed
// round is either in the topic, once, or still in kafka-dst-dir, and
// dst-dir was never used.
func TestPullMastersToKafka(t *testing.T) {
	master := filepath.Join(testenv.ShortDir(t), "master.sock")
	testenv.StartMasterWorker(t, testenv.MasterWorkerConfig{MasterSockets: []string{master}})
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{"haproxystats-snapshots", "haproxystats-metrics"}, Partitions: 2})
	base := t.TempDir()
	conf := filepath.Join(base, "haproxystats.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[paths]
base-dir = %s
[pull]
masters = unix://%s
pull-interval = 1
pull-timeout = 5
destination = kafka
loglevel = debug
[graphite]
hostname = lb7.example.com
%s`, base, master, k.ConfigSection("haproxystats-metrics"))), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testenv.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-f", conf}, &stdout, &stderr) }()
	for deadline := time.Now().Add(30 * time.Second); strings.Count(stderr.String(), "snapshot published") < 3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 3 snapshots published within 30s:\n%s", stderr.String())
		}
	}
	cancel()
	code := testenv.ReturnsWithin(t, 10*time.Second, "haproxystats-pull after the stop", func() int { return <-done })
	if code != 0 {
		t.Fatalf("exit %d after the stop, want 0\n%s", code, stderr.String())
	}

	committed := regexp.MustCompile(`msg="snapshot committed" snapshot=(\d+)`).FindAllStringSubmatch(stderr.String(), -1)
	left, _ := os.ReadDir(filepath.Join(base, "kafka-outgoing"))
	where := map[string]string{}
	for _, e := range left {
		where[e.Name()] = "spool"
	}
	for _, rec := range testenv.KafkaRecords(t, k.Addr(), "haproxystats-snapshots") {
		r, err := snaprecord.Parse(rec.Value, snaprecord.Limits{})
		if err != nil {
			t.Fatalf("record at %d/%d: %v", rec.Partition, rec.Offset, err)
		}
		if string(rec.Key) != "lb7.example.com" || r.Host != "lb7.example.com" {
			t.Errorf("record of %s: key %q, host %q, want lb7.example.com", r.Epoch, rec.Key, r.Host)
		}
		if where[r.Epoch] != "" {
			t.Errorf("snapshot %s is in the topic and in the %s", r.Epoch, where[r.Epoch])
		}
		where[r.Epoch] = "topic"
		var names []string
		for name := range r.All() {
			names = append(names, name)
		}
		if len(names) != 2 || !spool.ParseSocketName(strings.TrimSuffix(names[0], spool.InfoSuffix)).IsWorker() {
			t.Errorf("record of %s holds %v, want a current worker's _info and _stat", r.Epoch, names)
		}
	}
	var epochs []string
	for _, m := range committed {
		epochs = append(epochs, m[1])
		if where[m[1]] == "" {
			t.Errorf("round %s was committed and is neither in the topic nor in kafka-outgoing", m[1])
		}
	}
	if len(where) != len(epochs) || len(epochs) < 3 {
		t.Errorf("%d committed rounds %v, %d found in the topic or the spool", len(epochs), epochs, len(where))
	}
	if !slices.IsSorted(epochs) {
		t.Errorf("rounds committed out of order: %v", epochs)
	}
	if _, err := os.Stat(filepath.Join(base, "incoming")); !os.IsNotExist(err) {
		t.Errorf("dst-dir exists with destination = kafka: %v", err)
	}
}
