package publish

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/kafka"
	"github.com/haproxystats-go/haproxystats/internal/snaprecord"
	"github.com/haproxystats-go/haproxystats/internal/spool"
	"github.com/haproxystats-go/haproxystats/internal/throttle"
)

// StopTimeout bounds, at a stop, the wait for the acknowledgement of the
// snapshot in flight (kafka.Config.FlushTimeout of FromSettings' producer);
// haproxystats-pull's systemd unit allows 10 s for the whole stop.
const StopTimeout = 5 * time.Second

// Sender is what the publisher needs of a Kafka producer: a
// *kafka.Producer through [ProducerSender], or a fake in tests.
type Sender interface {
	// Run owns the client until ctx ends, then delivers what is in flight
	// for a bounded time and fails the rest (kafka.Producer.Run).
	Run(ctx context.Context) error
	// Produce sends value as one record (kafka.Producer.Produce).
	Produce(ctx context.Context, snapshot string, value []byte) (Delivery, error)
}

// Delivery is the outcome of one record: Done is closed once Err tells it
// (nil: acknowledged).
type Delivery interface {
	Done() <-chan struct{}
	Err() error
}

// ProducerSender adapts a *kafka.Producer to Sender.
type ProducerSender struct{ *kafka.Producer }

// Produce calls kafka.Producer.Produce.
func (s ProducerSender) Produce(ctx context.Context, snapshot string, value []byte) (Delivery, error) {
	d, err := s.Producer.Produce(ctx, snapshot, value)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Config is the publisher's configuration; New checks it.
type Config struct {
	// Dir is the spool it publishes: [pull] kafka-dst-dir.
	Dir string
	// Host is the host name written into every record:
	// snaprecord.CheckHost.
	Host string
	// Cluster, when set, is the cluster name written into every record
	// (version 2): snaprecord.CheckCluster. The producer keys the records
	// by it instead of the host (FromSettings), so that every host of a
	// cluster goes to one partition.
	Cluster string
	// MaxSnapshotBytes bounds one record before compression ([kafka]
	// max-snapshot-bytes); a larger snapshot is not published.
	MaxSnapshotBytes int64
	// After a failed snapshot, the publisher waits RetryBackoff, then
	// twice as long after each failure in a row, up to RetryBackoffMax,
	// before trying it again.
	RetryBackoff, RetryBackoffMax time.Duration
	// Topic names the snapshot topic in logs.
	Topic string
}

// Publisher sends the snapshots of Config.Dir to Kafka. Build it with New
// or FromSettings; run it with Run.
type Publisher struct {
	cfg    Config
	sender Sender
	log    *slog.Logger

	started                    atomic.Bool
	published, bytes, failures atomic.Uint64
	throttle                   throttle.Throttle // failure kind and snapshot
}

// Stats are a publisher's cumulative counters.
type Stats struct {
	Published uint64 // snapshots acknowledged (then removed from the spool)
	Bytes     uint64 // record bytes of those (before compression)
	Failures  uint64 // attempts that failed (the snapshot stayed)
}

// New checks cfg and returns a publisher sending through sender. It
// touches nothing and starts nothing. A nil logger discards the log.
func New(cfg Config, sender Sender, logger *slog.Logger) (*Publisher, error) {
	var errs []error
	if cfg.Dir == "" {
		errs = append(errs, errors.New("publish: no spool directory"))
	}
	if err := snaprecord.CheckHost(cfg.Host); err != nil {
		errs = append(errs, fmt.Errorf("publish: %w", err))
	}
	if cfg.Cluster != "" {
		if err := snaprecord.CheckCluster(cfg.Cluster); err != nil {
			errs = append(errs, fmt.Errorf("publish: %w", err))
		}
	}
	if cfg.MaxSnapshotBytes < 1 {
		errs = append(errs, fmt.Errorf("publish: max snapshot bytes %d must be > 0", cfg.MaxSnapshotBytes))
	}
	if cfg.RetryBackoff <= 0 || cfg.RetryBackoffMax < cfg.RetryBackoff {
		errs = append(errs, fmt.Errorf("publish: retry backoff %v must be > 0 and at most retry backoff max %v", cfg.RetryBackoff, cfg.RetryBackoffMax))
	}
	if sender == nil {
		errs = append(errs, errors.New("publish: no sender"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{cfg: cfg, sender: sender, log: logger}, nil
}

// FromSettings builds the publisher of haproxystats-pull from validated
// [pull] settings whose destination sends to Kafka: the producer of the
// [kafka] section on snapshot-topic, records of at most max-snapshot-bytes
// carrying the host name (config.ResolveHostname of [graphite] hostname)
// and the cluster ([process] cluster-name, Pull.Cluster), keyed by the
// cluster when there is one, else by the host, stopping within
// StopTimeout. It reads the TLS files now (errors name the
// option); it starts nothing.
func FromSettings(ps *config.Pull, logger *slog.Logger) (*Publisher, error) {
	if !ps.ToKafka() {
		return nil, fmt.Errorf("publish: [pull] destination = %s does not send to Kafka", ps.Destination)
	}
	host, err := config.ResolveHostname(ps.Hostname)
	if err != nil {
		return nil, err
	}
	kc, err := kafka.ConfigFromSettings(ps.Kafka)
	if err != nil {
		return nil, err
	}
	kc.Topic = ps.Kafka.SnapshotTopic
	kc.MaxRecordBytes = ps.Kafka.MaxSnapshotBytes
	// One snapshot in flight at a time: its record is the whole budget.
	kc.MaxBufferedBytes = ps.Kafka.MaxSnapshotBytes
	kc.Key = host
	if ps.Cluster != "" {
		kc.Key = ps.Cluster
	}
	kc.FlushTimeout = StopTimeout
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "kafka-publisher")
	prod, err := kafka.New(kc, logger)
	if err != nil {
		return nil, err
	}
	return New(Config{
		Dir:              ps.KafkaDstDir,
		Host:             host,
		Cluster:          ps.Cluster,
		MaxSnapshotBytes: int64(ps.Kafka.MaxSnapshotBytes),
		RetryBackoff:     ps.Kafka.RetryBackoff,
		RetryBackoffMax:  max(ps.Kafka.RetryBackoffMax, ps.Kafka.RetryBackoff),
		Topic:            kc.Topic,
	}, ProducerSender{prod}, logger)
}

// Stats returns the cumulative counters. Safe for concurrent use.
func (p *Publisher) Stats() Stats {
	return Stats{Published: p.published.Load(), Bytes: p.bytes.Load(), Failures: p.failures.Load()}
}

// Run creates Config.Dir if needed, and publishes its snapshots until ctx
// ends (see the package documentation); it returns nil then. It returns an
// error when the directory cannot be created or watched, or when the
// sender fails to start; either stops the publishing. Run is called once.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("publish: Run called twice")
	}
	if err := os.MkdirAll(p.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("publish: create %s: %w", p.cfg.Dir, err)
	}
	w, err := spool.NewWatcher(p.cfg.Dir, p.log)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var werr, serr error
	wg.Go(func() {
		werr = w.Run(ctx)
		cancel()
	})
	wg.Go(func() {
		serr = p.sender.Run(ctx)
		cancel()
	})
	p.log.Info("publishing snapshots to kafka", "dir", p.cfg.Dir, "topic", p.cfg.Topic, "host", p.cfg.Host, "cluster", p.cfg.Cluster)
	p.loop(ctx, w)
	cancel()
	wg.Wait()
	p.log.Info("stopped publishing snapshots", "published", p.published.Load(), "waiting", w.Queued())
	return errors.Join(werr, serr)
}

// outcome of one attempt at a snapshot.
type outcome int

const (
	published outcome = iota // acknowledged and removed
	vanished                 // the directory went away before
	failed                   // stays; try again after a backoff
	stopped                  // ctx ended: stays for the next start
)

func (p *Publisher) loop(ctx context.Context, w *spool.Watcher) {
	fails := 0
	for {
		name, err := w.Next(ctx)
		if err != nil {
			return // ctx ended, or the watcher stopped
		}
		switch p.publish(ctx, name) {
		case published:
			fails = 0
			w.Done(name, true) // removes the directory
		case vanished:
			fails = 0
			w.Done(name, false)
		case failed:
			p.failures.Add(1)
			fails++
			wait := time.NewTimer(backoff(p.cfg.RetryBackoff, p.cfg.RetryBackoffMax, fails))
			select {
			case <-ctx.Done():
				wait.Stop()
				w.Done(name, false)
				return
			case <-wait.C:
			}
			w.Retry(name)
		case stopped:
			w.Done(name, false)
			return
		}
	}
}

// backoff is first, doubled per failure after the first, at most most.
func backoff(first, most time.Duration, fails int) time.Duration {
	d := first
	for i := 1; i < fails && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// publish encodes and produces snapshot name, and waits for its
// acknowledgement; the caller's Done(name, true) then removes it.
func (p *Publisher) publish(ctx context.Context, name string) outcome {
	dir := filepath.Join(p.cfg.Dir, name)
	value, err := snaprecord.EncodeDir(dir, snaprecord.Origin{Host: p.cfg.Host, Cluster: p.cfg.Cluster}, p.cfg.MaxSnapshotBytes)
	var tooLarge *snaprecord.TooLargeError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.log.Debug("snapshot vanished before it was published", "snapshot", name)
		return vanished
	case errors.As(err, &tooLarge):
		p.logFailure("too-large", name, "snapshot larger than [kafka] max-snapshot-bytes: it stays in the spool and holds the newer ones back; raise max-snapshot-bytes (and the topic's max.message.bytes) and restart",
			"snapshot", name, "bytes", tooLarge.Size, "max_snapshot_bytes", tooLarge.Limit)
		return failed
	case err != nil:
		p.logFailure("encode", name, "cannot read the snapshot; it stays in the spool", "snapshot", name, "err", err)
		return failed
	}
	d, err := p.sender.Produce(ctx, name, value)
	if err != nil {
		if ctx.Err() != nil {
			return stopped
		}
		p.logFailure("produce", name, "cannot produce the snapshot record; it stays in the spool", "snapshot", name, "err", err)
		return failed
	}
	// Not bounded by ctx: at a stop the producer delivers what is in
	// flight for a bounded time, then fails it (Sender.Run).
	<-d.Done()
	if err := d.Err(); err != nil {
		switch {
		case ctx.Err() != nil:
			p.log.Info("snapshot not acknowledged before the stop; it stays in the spool", "snapshot", name, "err", err)
			return stopped
		case errors.Is(err, kerr.MessageTooLarge):
			p.logFailure("message-too-large", name, "the broker refused the snapshot record as too large: raise max.message.bytes of the topic above the compressed record; the snapshot stays in the spool and holds the newer ones back",
				"snapshot", name, "topic", p.cfg.Topic, "bytes", len(value), "err", err)
		default:
			p.logFailure("delivery", name, "snapshot record not acknowledged; it stays in the spool", "snapshot", name, "topic", p.cfg.Topic, "err", err)
		}
		return failed
	}
	p.published.Add(1)
	p.bytes.Add(uint64(len(value)))
	p.log.Debug("snapshot published", "snapshot", name, "bytes", len(value))
	return published
}

// logFailure logs an error, the same kind for the same snapshot at most
// every throttle.DefaultEvery.
func (p *Publisher) logFailure(kind, name, msg string, attrs ...any) {
	p.throttle.Log(p.log, slog.LevelError, kind+" "+name, "kafka publisher: "+msg, attrs...)
}

// RunWith runs pub, when not nil, beside run (the puller's Run) until ctx
// ends, and returns their errors joined: either returning ends the other,
// since a puller without its publisher would only fill the Kafka spool, and
// the reverse would drain it. With pub nil it is run(ctx).
func RunWith(ctx context.Context, pub *Publisher, run func(context.Context) error) error {
	if pub == nil {
		return run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		perr = pub.Run(ctx)
		cancel()
	}()
	rerr := run(ctx)
	cancel()
	<-done
	return errors.Join(rerr, perr)
}
