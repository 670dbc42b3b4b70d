package process

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/assemble"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/snaprecord"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestConformanceFromKafka is the per-host promise of central processing:
// every snapshot of every case of the conformance corpus, published as a
// snapshot record of host lb7.fra1.example.com to a kfake broker and
// consumed by haproxystats-process with [process] source = kafka, gives
// exactly the corpus output of the case (compared by the corpus rules)
// with the prefix the local setup of that host sends: prefix-hostname on,
// `<namespace>.lb7_fra1_example_com.haproxy`. (The case's own files set
// prefix-hostname = false, as the original's output was recorded without
// the host; [local-store] is left out, refused with the Kafka source.)
func TestConformanceFromKafka(t *testing.T) {
	cases, err := enginetest.Find(filepath.Join("..", "..", "testdata", "conformance"))
	if err != nil || len(cases) < 25 {
		t.Fatalf("conformance corpus: %d cases, %v", len(cases), err)
	}
	const host = "lb7.fra1.example.com"
	var topics []string
	for i := range cases {
		topics = append(topics, fmt.Sprintf("snapshots-%d", i))
	}
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: topics})
	for i, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			conf, err := os.ReadFile(filepath.Join(c.Dir, "haproxystats.conf"))
			if err != nil {
				t.Fatal(err)
			}
			text := regexp.MustCompile(`(?ms)^\[local-store\].*?(^\[|\z)`).ReplaceAllString(string(conf), "$1")
			extra := fmt.Sprintf("[graphite]\nprefix-hostname = true\n[process]\nsource = kafka\nworkers = 2\n[kafka]\nbrokers = %s\nsnapshot-topic = %s\ngroup = conformance-%d\nconsumer-dir = %s\nretry-backoff = 0.05\n",
				k.Addr(), topics[i], i, t.TempDir())
			cfg, err := config.LoadSources(nil, config.Source{Name: c.Name + ".conf", Data: []byte(text)}, config.Source{Name: "central.conf", Data: []byte(extra)})
			if err != nil {
				t.Fatal(err)
			}
			built, err := assemble.New(cfg, assemble.Options{Dir: c.Dir, ConfigDir: c.Dir, StageCacheDir: "-"})
			if err != nil {
				t.Fatal(err)
			}
			defer built.Close()
			s := built.Settings
			logs := &testenv.Buffer{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			q, err := kafkaQueue(s, built, logger)
			if err != nil {
				t.Fatal(err)
			}
			dest := &fakeDest{name: "graphite"}
			d, err := New(Config{Pipeline: built.Pipeline, Queue: q, Destinations: []Destination{dest}, Workers: s.Process.Workers,
				StopTimeout: 5 * time.Second, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			snaps, err := filepath.Glob(filepath.Join(c.Dir, "incoming", "*"))
			if err != nil || len(snaps) == 0 {
				t.Fatalf("no snapshot: %v", err)
			}
			var recs []*kgo.Record
			for _, dir := range snaps {
				v, err := snaprecord.EncodeDir(dir, snaprecord.Origin{Host: host}, snaprecord.DefaultMaxBytes)
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, &kgo.Record{Topic: topics[i], Key: []byte(host), Value: v})
			}
			produceRecords(t, k.Addr(), recs...)
			bg := testenv.Background(t, "daemon Run", d.Run)
			deadline := time.Now().Add(time.Minute)
			for d.Stats().Delivered < int64(len(snaps)) {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d snapshots delivered within a minute; log:\n%s", d.Stats().Delivered, len(snaps), logs.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := bg.Stop(t); err != nil {
				t.Errorf("daemon Run: %v", err)
			}
			var got []byte
			for _, dir := range snaps {
				got = append(got, dest.lines(host+"/"+filepath.Base(dir))...)
			}
			want, err := os.ReadFile(filepath.Join(c.Dir, "expected.txt"))
			if err != nil {
				t.Fatal(err)
			}
			from := s.Graphite.Namespace + ".haproxy."
			to := s.Graphite.Namespace + "." + strings.ReplaceAll(host, ".", "_") + ".haproxy."
			var rewritten []byte
			for _, l := range strings.Split(string(want), "\n") {
				if strings.HasPrefix(l, from) {
					l = to + strings.TrimPrefix(l, from)
				}
				if l != "" {
					rewritten = append(rewritten, l+"\n"...)
				}
			}
			outcome, _ := os.ReadFile(filepath.Join(c.Dir, "outcome.txt"))
			refFailed := strings.Contains(string(outcome), "worker-crash: yes")
			if ms := enginetest.Compare(rewritten, got, refFailed); mismatches(ms) != "" {
				t.Errorf("lines from Kafka differ from the corpus for host %s:\n%s", host, mismatches(ms))
			}
			if len(got) == 0 {
				t.Error("no output at all")
			}
		})
	}
}

// produceRecords produces recs in order and waits for them.
func produceRecords(t *testing.T, addr string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DisableClientMetrics(), kgo.ProducerBatchMaxBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}
