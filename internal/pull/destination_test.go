package pull

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// kafkaConfig is testConfig with rounds going to dest, the Kafka spool
// next to the others.
func kafkaConfig(t testing.TB, socketDir, dest string) Config {
	cfg := testConfig(t, socketDir)
	cfg.Destination = dest
	cfg.KafkaDstDir = filepath.Join(filepath.Dir(cfg.DstDir), "kafka-outgoing")
	return cfg
}

// TestDestinationBoth: one round is committed into dst-dir and into
// kafka-dst-dir, the same files (hard links, so written once), and nothing
// stays in the temporary directories.
func TestDestinationBoth(t *testing.T) {
	dir := testenv.ShortDir(t)
	startInstances(t, dir, 2, 3, 2)
	cfg := kafkaConfig(t, dir, config.DestinationBoth)
	p := newPuller(t, cfg, nil)
	if err := p.Round(context.Background(), time.Unix(epoch, 0)); err != nil {
		t.Fatalf("Round: %v", err)
	}
	name := strconv.Itoa(epoch)
	for _, d := range []string{cfg.DstDir, cfg.KafkaDstDir} {
		if got := snapshots(t, d); !slices.Equal(got, []string{name}) {
			t.Fatalf("%s snapshots = %v, want [%s]", d, got, name)
		}
	}
	want := []string{"admin1.sock_info", "admin1.sock_stat", "admin2.sock_info", "admin2.sock_stat"}
	for _, f := range want {
		a, err := os.Stat(filepath.Join(cfg.DstDir, name, f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.Stat(filepath.Join(cfg.KafkaDstDir, name, f))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(a, b) || a.Size() == 0 {
			t.Errorf("%s: the two spools do not share one non-empty file (%d and %d bytes)", f, a.Size(), b.Size())
		}
	}
	if got := files(t, filepath.Join(cfg.DstDir, name)); !slices.Equal(got, want) {
		t.Errorf("snapshot files = %v, want %v", got, want)
	}
	if got := files(t, cfg.TmpDstDir); !slices.Equal(got, []string{"kafka"}) {
		t.Errorf("tmp-dst-dir holds %v, want only the Kafka spool's temporary directory", got)
	}
	if got := files(t, cfg.KafkaTmpDir()); len(got) != 0 {
		t.Errorf("%s holds %v after a committed round", cfg.KafkaTmpDir(), got)
	}
	// Each consumer removes its own copy: the other stays whole.
	if err := os.RemoveAll(filepath.Join(cfg.KafkaDstDir, name)); err != nil {
		t.Fatal(err)
	}
	if got := files(t, filepath.Join(cfg.DstDir, name)); !slices.Equal(got, want) {
		t.Errorf("after the Kafka copy was removed, dst-dir's holds %v", got)
	}
}

// TestDestinationKafka: with destination = kafka, rounds go to
// kafka-dst-dir only; dst-dir is not even created.
func TestDestinationKafka(t *testing.T) {
	dir := testenv.ShortDir(t)
	startInstances(t, dir, 1, 2, 2)
	cfg := kafkaConfig(t, dir, config.DestinationKafka)
	p := newPuller(t, cfg, nil)
	if err := p.Prepare(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := p.Round(context.Background(), time.Unix(epoch+int64(i), 0)); err != nil {
			t.Fatalf("Round %d: %v", i, err)
		}
	}
	if got := snapshots(t, cfg.KafkaDstDir); len(got) != 2 {
		t.Errorf("kafka-dst-dir snapshots = %v, want 2", got)
	}
	if _, err := os.Stat(cfg.DstDir); !os.IsNotExist(err) {
		t.Errorf("dst-dir exists with destination = kafka: %v", err)
	}
}

// TestQueueFullPerSpool: a full spool gets no round while the other one
// still does (with a warning naming the full one); when both are full the
// round is skipped, naming both.
func TestQueueFullPerSpool(t *testing.T) {
	dir := testenv.ShortDir(t)
	startInstances(t, dir, 1, 2, 2)
	cfg := kafkaConfig(t, dir, config.DestinationBoth)
	cfg.QueueSize = 2
	logger, log := newLogger()
	p := newPuller(t, cfg, logger)
	if err := p.Prepare(); err != nil {
		t.Fatal(err)
	}
	// The Kafka spool is full (its broker is down, say).
	for _, s := range []string{"100", "101"} {
		if err := os.Mkdir(filepath.Join(cfg.KafkaDstDir, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Round(context.Background(), time.Unix(epoch, 0)); err != nil {
		t.Fatalf("Round with the Kafka spool full: %v", err)
	}
	if got := snapshots(t, cfg.DstDir); len(got) != 1 {
		t.Errorf("dst-dir snapshots = %v, want the round", got)
	}
	if got := snapshots(t, cfg.KafkaDstDir); !slices.Equal(got, []string{"100", "101"}) {
		t.Errorf("kafka-dst-dir snapshots = %v, want only the two that filled it", got)
	}
	if w := log.lines("level=WARN", "spool full", "kafka-dst-dir "+cfg.KafkaDstDir+" holds 2 snapshots"); len(w) != 1 {
		t.Errorf("want one warning naming the full Kafka spool; log:\n%s", log.String())
	}
	if err := p.Round(context.Background(), time.Unix(epoch+1, 0)); err != nil {
		t.Fatal(err)
	}
	err := p.Round(context.Background(), time.Unix(epoch+2, 0))
	if !errors.Is(err, ErrQueueFull) || !strings.Contains(err.Error(), "dst-dir "+cfg.DstDir) || !strings.Contains(err.Error(), "kafka-dst-dir "+cfg.KafkaDstDir) {
		t.Errorf("Round with both spools full = %v, want ErrQueueFull naming both", err)
	}
}

// TestDestinationSameSecondKafka: an epoch already in the Kafka spool
// discards the round for both spools (ErrSnapshotExists), and the existing
// directory is untouched.
func TestDestinationSameSecondKafka(t *testing.T) {
	dir := testenv.ShortDir(t)
	startInstances(t, dir, 1, 1, 1)
	cfg := kafkaConfig(t, dir, config.DestinationBoth)
	p := newPuller(t, cfg, nil)
	if err := p.Prepare(); err != nil {
		t.Fatal(err)
	}
	name := strconv.Itoa(epoch)
	if err := os.Mkdir(filepath.Join(cfg.KafkaDstDir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := p.Round(context.Background(), time.Unix(epoch, 0)); !errors.Is(err, ErrSnapshotExists) {
		t.Fatalf("Round = %v, want ErrSnapshotExists", err)
	}
	if got := snapshots(t, cfg.DstDir); len(got) != 0 {
		t.Errorf("dst-dir holds %v after a discarded round", got)
	}
	if got := files(t, filepath.Join(cfg.KafkaDstDir, name)); len(got) != 0 {
		t.Errorf("the existing Kafka snapshot was written into: %v", got)
	}
	for _, tmp := range []string{cfg.KafkaTmpDir()} {
		if got := files(t, tmp); len(got) != 0 {
			t.Errorf("%s holds %v after a discarded round", tmp, got)
		}
	}
	if got := snapshots(t, cfg.TmpDstDir); len(got) != 0 {
		t.Errorf("tmp-dst-dir holds %v after a discarded round", got)
	}
}

func TestNewValidatesDestination(t *testing.T) {
	for _, tt := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Destination = "graphite" }, `destination = "graphite": must be spool, kafka or both`},
		{func(c *Config) { c.KafkaDstDir = "" }, "kafka-dst-dir"},
		{func(c *Config) { c.KafkaDstDir = c.DstDir }, "must differ from dst-dir"},
		{func(c *Config) { c.KafkaDstDir = c.TmpDstDir + "/" }, "must differ from tmp-dst-dir"},
		// The Kafka spool's temporary directory, emptied of snapshots at
		// every start, as a spool: its backlog would be deleted.
		{func(c *Config) { c.DstDir = c.TmpDstDir + "/kafka" }, "incoming.tmp/kafka: must differ from /"},
		{func(c *Config) { c.KafkaDstDir = c.TmpDstDir + "/kafka/" }, "incoming.tmp/kafka/: must differ from /"},
	} {
		cfg := kafkaConfig(t, "/run/haproxy", config.DestinationBoth)
		tt.change(&cfg)
		if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", cfg, err, tt.want)
		}
	}
}
