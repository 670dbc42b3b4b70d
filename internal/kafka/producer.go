package kafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/throttle"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Bounds of the stop (see the package documentation).
const (
	// DefaultStallTimeout is Config.StallTimeout when it is 0: the final
	// flush gives up when no record was acknowledged for this long.
	DefaultStallTimeout = 2 * time.Second
	// recordCost is what a record costs against Config.MaxBufferedBytes on
	// top of its key and value: the client's bookkeeping, so that many
	// tiny records are bounded too.
	recordCost = 256
	// batchOverhead is what a record batch holding one record adds to the
	// record's key and value, rounded up.
	batchOverhead = 512
	// defaultBatchMaxBytes is franz-go's (and Kafka's) default bound of a
	// record batch, 1000012 bytes.
	defaultBatchMaxBytes = 1000012
)

// ErrClosed is returned by Open and Write once the producer stopped, and
// reported by the Delivery of records still unacknowledged then.
var ErrClosed = errors.New("kafka producer stopped")

// Config is the producer's configuration; New checks it.
type Config struct {
	Brokers  []string // seed brokers, host:port each; at least one
	Topic    string
	ClientID string
	// Compression of record batches: one of config.Compressions.
	Compression string
	// TLS, when not nil, is used for every broker connection (its
	// ServerName is set to the broker's host when empty).
	TLS *tls.Config
	// SASL, when not nil, authenticates every broker connection.
	SASL *SASL
	// DialTimeout bounds one connection attempt; RequestTimeout bounds a
	// request without a timeout of its own and is added to ProduceTimeout,
	// the broker's bound of a produce request, for a produce request.
	DialTimeout, RequestTimeout, ProduceTimeout time.Duration
	// A failed request or connection is retried after RetryBackoff, then
	// twice as long each time (±20% jitter) up to RetryBackoffMax, forever.
	RetryBackoff, RetryBackoffMax time.Duration
	// MaxRecordBytes bounds a record's value: lines are packed into
	// records up to it and never split.
	MaxRecordBytes int
	// MaxBufferedBytes bounds the records produced and not yet
	// acknowledged (key, value and a fixed cost per record); Write waits
	// for room beyond it.
	MaxBufferedBytes int
	// Key is the key of every record: the host name, so that one load
	// balancer's lines go to one partition, in order. "" = no key (records
	// spread over partitions).
	Key string
	// FlushTimeout bounds the delivery of what is still unacknowledged
	// when Run's context ends (the daemon's stop timeout); > 0.
	FlushTimeout time.Duration
	// StallTimeout ends that final delivery earlier when no record was
	// acknowledged for this long (a broker unreachable); 0 =
	// DefaultStallTimeout.
	StallTimeout time.Duration
}

// SASL is the authentication of every broker connection.
type SASL struct {
	Mechanism string // one of config.SASLMechanisms
	User      string
	Password  string
}

// Producer delivers lines to one Kafka topic. Create it with New, run it
// with Run, and open one Stream per snapshot with Open.
type Producer struct {
	cfg    Config
	opts   []kgo.Opt
	key    []byte
	logger *slog.Logger

	started atomic.Bool
	ready   chan struct{} // closed once Run created client
	client  *kgo.Client   // set before ready is closed
	closing chan struct{} // closed when Run's context ended: Open refuses
	stopped chan struct{} // closed when the final flush ended: writers fail

	mu   sync.Mutex
	held int64         // budget taken by records not yet finished
	room chan struct{} // closed and replaced when budget is released
	// The counters of Stats, changed together under mu so that Stats
	// reads a consistent set.
	records, bytes, lines, errs uint64
	// lastDone is when a record was last finished, or when records
	// started waiting (held went from 0 up), whichever is later: records
	// held and lastDone old mean no progress (Stalled). Unix nanoseconds.
	lastDone atomic.Int64

	refusals throttle.Throttle // lines too long, logged once per path every throttle.DefaultEvery
}

// Stats are a producer's cumulative counters since New.
type Stats struct {
	Records uint64 // records acknowledged by the broker (acks=all)
	Bytes   uint64 // value bytes of those records
	Lines   uint64 // lines in those records
	// Errors counts records that failed (never acknowledged: their
	// snapshot stays in the spool) and lines refused by Write.
	Errors uint64
	// BufferedBytes is the part of MaxBufferedBytes taken now.
	BufferedBytes int64
}

// New checks cfg and returns a producer. It starts nothing: no goroutine,
// no connection, until Run.
func New(cfg Config, logger *slog.Logger) (*Producer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	codec, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	p := &Producer{
		cfg:     cfg,
		logger:  logger,
		ready:   make(chan struct{}),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
		room:    make(chan struct{}),
	}
	if cfg.Key != "" {
		p.key = []byte(cfg.Key)
	}
	batchMax := max(defaultBatchMaxBytes, cfg.MaxRecordBytes+len(cfg.Key)+batchOverhead)
	p.opts = append(ConnOpts(cfg, logger),
		kgo.DefaultProduceTopic(cfg.Topic),
		// Metadata requests ask the broker to create a missing topic, as
		// Kafka's Java producer does; the broker decides
		// (auto.create.topics.enable).
		kgo.AllowAutoTopicCreation(),

		// acks=all is franz-go's default, stated because the no-loss
		// promise rests on it. So are, left at their defaults: idempotent
		// writes (no DisableIdempotentWrite), records retried forever (no
		// RecordRetries) and never timed out (no RecordDeliveryTimeout).
		kgo.RequiredAcks(kgo.AllISRAcks()),

		kgo.ProduceRequestTimeout(cfg.ProduceTimeout),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerBatchMaxBytes(int32(batchMax)),
		// A produce request carries a batch of up to batchMax bytes
		// (before compression, in the worst case): the client's own
		// bound of a request (100 MiB) must not refuse it.
		kgo.BrokerMaxWriteBytes(int32(max(100<<20, batchMax+1<<20))),
		// Murmur2 of the key modulo the partition count, as Kafka's Java
		// producer: one host, one partition.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		// The memory bound is ours (acquire); the client's own limits are
		// set above it so that Produce never blocks on them.
		kgo.MaxBufferedBytes(2*cfg.MaxBufferedBytes),
		kgo.MaxBufferedRecords(cfg.MaxBufferedBytes/recordCost+1),
	)
	return p, nil
}

// ConnOpts returns the client options of cfg's connection fields, the
// ones every client of the [kafka] section shares (the producers and the
// snapshot consumer, internal/snapsource): Brokers, ClientID, TLS, SASL,
// DialTimeout, RequestTimeout, RetryBackoff to RetryBackoffMax, with the
// client's warnings and failed broker connections logged to logger, each
// at most every 30 s. It checks nothing; the fields are those New checks.
func ConnOpts(cfg Config, logger *slog.Logger) []kgo.Opt {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.DialTimeout(cfg.DialTimeout),
		kgo.RequestTimeoutOverhead(cfg.RequestTimeout),
		kgo.RetryBackoffFn(backoff(cfg.RetryBackoff, cfg.RetryBackoffMax)),
		// No KIP-714 client metrics pushed to the brokers: nothing reads
		// them here, and Close would wait up to 1 s for the last push.
		kgo.DisableClientMetrics(),
		kgo.WithLogger(newClientLogger(logger)),
		kgo.WithHooks(&connHook{l: logger}),
	}
	if cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg.TLS))
	}
	if cfg.SASL != nil {
		opts = append(opts, kgo.SASL(cfg.SASL.mechanism()))
	}
	return opts
}

func (cfg *Config) validate() (kgo.CompressionCodec, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("kafka: "+format, args...)) }
	if len(cfg.Brokers) == 0 {
		bad("no broker")
	}
	if cfg.Topic == "" {
		bad("no topic")
	}
	codec, ok := codecs[cfg.Compression]
	if !ok || !slices.Contains(config.Compressions, cfg.Compression) {
		bad("unknown compression %q", cfg.Compression)
	}
	if cfg.SASL != nil && !slices.Contains(config.SASLMechanisms, cfg.SASL.Mechanism) {
		bad("unknown SASL mechanism %q", cfg.SASL.Mechanism)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"dial timeout", cfg.DialTimeout}, {"request timeout", cfg.RequestTimeout},
		{"produce timeout", cfg.ProduceTimeout}, {"retry backoff", cfg.RetryBackoff},
		{"flush timeout", cfg.FlushTimeout}, {"stall timeout", cfg.StallTimeout},
	} {
		if d.v <= 0 {
			bad("%s %v must be > 0", d.name, d.v)
		}
	}
	if cfg.RetryBackoffMax < cfg.RetryBackoff {
		bad("retry backoff max %v is below retry backoff %v", cfg.RetryBackoffMax, cfg.RetryBackoff)
	}
	if cfg.MaxRecordBytes < 1 || cfg.MaxRecordBytes > 1<<30-len(cfg.Key)-batchOverhead {
		bad("max record bytes %d out of range", cfg.MaxRecordBytes)
	}
	if cfg.MaxBufferedBytes < cfg.MaxRecordBytes || cfg.MaxBufferedBytes > 1<<40 {
		bad("max buffered bytes %d must be between max record bytes (%d) and 2^40", cfg.MaxBufferedBytes, cfg.MaxRecordBytes)
	}
	return codec, errors.Join(errs...)
}

var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

func (s *SASL) mechanism() sasl.Mechanism {
	switch s.Mechanism {
	case "PLAIN":
		return plain.Auth{User: s.User, Pass: s.Password}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism()
	default:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism()
	}
}

// backoff returns the wait after the n-th failure in a row: first, doubled
// per failure, ±20% jitter, at most most.
func backoff(first, most time.Duration) func(int) time.Duration {
	return func(fails int) time.Duration {
		d := first
		for i := 1; i < fails && d < most; i++ {
			d *= 2
		}
		d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
		return min(d, most)
	}
}

// Name is "kafka", for logs and self-metrics.
func (p *Producer) Name() string { return "kafka" }

// Run owns the Kafka client: it creates it, serves the streams until ctx
// ends, then delivers what is still unacknowledged for at most
// Config.FlushTimeout, or until nothing was acknowledged for
// Config.StallTimeout, closes the client (every record still
// unacknowledged fails, and with it its stream's Delivery) and returns nil.
// It returns an error only if the client cannot be created. Run is called
// once.
func (p *Producer) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("kafka: Run called twice")
	}
	client, err := kgo.NewClient(p.opts...)
	if err != nil {
		close(p.closing)
		close(p.stopped)
		return fmt.Errorf("kafka: create client: %w", err)
	}
	p.client = client
	close(p.ready)
	<-ctx.Done()
	close(p.closing)
	p.flush()
	close(p.stopped)
	client.Close()
	return nil
}

// flush waits until every produced record is acknowledged or failed, for at
// most FlushTimeout and while records keep being finished at least every
// StallTimeout (counted from the last progress, before the stop too: a
// broker that has been unreachable for StallTimeout is not waited for
// again).
func (p *Producer) flush() {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.FlushTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.client.Flush(ctx) }()
	tick := time.NewTicker(p.cfg.StallTimeout / 10)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				p.logger.Warn("kafka: stop timeout reached with records unacknowledged; their snapshots stay in the spool",
					"records", p.client.BufferedProduceRecords(), "timeout", p.cfg.FlushTimeout)
			}
			return
		case <-tick.C:
			if time.Since(time.Unix(0, p.lastDone.Load())) > p.cfg.StallTimeout {
				cancel()
				<-done
				p.logger.Warn("kafka: nothing acknowledged at stop; giving up, the snapshots stay in the spool",
					"records", p.client.BufferedProduceRecords(), "waited", time.Since(start).Round(time.Millisecond))
				return
			}
		}
	}
}

// Open starts the delivery of the lines of one snapshot (snapshot names it
// in errors). It waits until Run has created the client, or returns ctx's
// error if ctx ends first, or ErrClosed once Run's context ended. It does
// not wait for a broker: records wait in the client (within
// MaxBufferedBytes) until one is reachable. ctx also bounds every wait of
// the stream's Write and Finish for buffer room.
func (p *Producer) Open(ctx context.Context, snapshot string) (*Stream, error) {
	if err := p.waitReady(ctx); err != nil {
		return nil, err
	}
	return &Stream{p: p, ctx: ctx, snapshot: snapshot, d: newDelivery()}, nil
}

// waitReady waits until Run created the client; it fails with ErrClosed
// once the producer stops, or with ctx's error.
func (p *Producer) waitReady(ctx context.Context) error {
	select {
	case <-p.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ready:
	}
	select {
	case <-p.closing:
		return ErrClosed
	default:
		return nil
	}
}

// RecordTooLargeError is a value given to Produce that is larger than
// Config.MaxRecordBytes.
type RecordTooLargeError struct {
	Snapshot string
	Len      int
	Limit    int
}

func (e *RecordTooLargeError) Error() string {
	return fmt.Sprintf("kafka: snapshot %s: record of %d bytes is larger than the limit (%d)", e.Snapshot, e.Len, e.Limit)
}

// Produce sends value as one record, as it is (it is not made of lines and
// never split), keyed like every record of the producer, and returns its
// Delivery: the way to send a snapshot record (internal/publish). value is
// not copied: the caller must not modify it until the Delivery is done. It
// fails with a *RecordTooLargeError for a value longer than
// Config.MaxRecordBytes, with ErrClosed once the producer stopped (or
// before Run), and with ctx's error when ctx ends while it waits for the
// producer to start or for buffer room (Config.MaxBufferedBytes). The
// record is delivered, or fails, as a stream's are.
func (p *Producer) Produce(ctx context.Context, snapshot string, value []byte) (*Delivery, error) {
	if len(value) > p.cfg.MaxRecordBytes {
		p.mu.Lock()
		p.errs++
		p.mu.Unlock()
		return nil, &RecordTooLargeError{Snapshot: snapshot, Len: len(value), Limit: p.cfg.MaxRecordBytes}
	}
	if err := p.waitReady(ctx); err != nil {
		return nil, err
	}
	d := newDelivery()
	if err := p.produce(ctx, snapshot, value, 0, d); err != nil {
		return nil, err
	}
	d.seal(nil)
	return d, nil
}

// produce takes the room of one record in the buffer budget (waiting until
// ctx ends), and hands the record to the client; its outcome goes to d.
// lines is the number of lines it holds, for Stats.
func (p *Producer) produce(ctx context.Context, snapshot string, value []byte, lines int, d *Delivery) error {
	cost := int64(len(value) + len(p.key) + recordCost)
	if err := p.acquire(ctx, cost); err != nil {
		return fmt.Errorf("kafka: snapshot %s: wait for buffer room: %w", snapshot, err)
	}
	d.add()
	what := fmt.Sprintf("record of %d lines", lines)
	if lines == 0 {
		what = fmt.Sprintf("record of %d bytes", len(value))
	}
	r := &kgo.Record{Key: p.key, Value: value}
	// The record's context is not the caller's: franz-go fails every
	// buffered record of a partition when the first one's context ends,
	// which would fail the other snapshots' records too. Records end when
	// acknowledged, or at Run's stop (Close).
	p.client.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		p.finished(cost, len(value), lines, err)
		switch {
		case errors.Is(err, kgo.ErrClientClosed):
			err = fmt.Errorf("kafka: snapshot %s: %s not acknowledged: %w", snapshot, what, ErrClosed)
		case err != nil:
			err = fmt.Errorf("kafka: snapshot %s: %s to topic %s not acknowledged: %w", snapshot, what, p.cfg.Topic, err)
		}
		d.finish(err)
	})
	return nil
}

// Stats returns the cumulative counters, all read at one instant (a record
// is counted in Records, Bytes and Lines at once). Safe for concurrent use.
func (p *Producer) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{
		Records:       p.records,
		Bytes:         p.bytes,
		Lines:         p.lines,
		Errors:        p.errs,
		BufferedBytes: p.held,
	}
}

// acquire takes n bytes of the buffer budget, waiting for room until ctx
// ends or the producer stops. A record larger than the whole budget is let
// in when nothing else is held, so it cannot wait forever.
func (p *Producer) acquire(ctx context.Context, n int64) error {
	for {
		select {
		case <-p.stopped:
			return ErrClosed
		default:
		}
		p.mu.Lock()
		if p.held == 0 || p.held+n <= int64(p.cfg.MaxBufferedBytes) {
			if p.held == 0 {
				// Records start waiting now: no progress is
				// expected of the time before.
				p.lastDone.Store(time.Now().UnixNano())
			}
			p.held += n
			p.mu.Unlock()
			return nil
		}
		room := p.room
		p.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.stopped:
			return ErrClosed
		}
	}
}

// finished accounts for one record the client is done with; it runs in the
// client's promise goroutine and must not block.
func (p *Producer) finished(cost int64, size, lines int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held -= cost
	close(p.room)
	p.room = make(chan struct{})
	p.lastDone.Store(time.Now().UnixNano())
	if err != nil {
		p.errs++
		return
	}
	p.records++
	p.bytes += uint64(size)
	p.lines += uint64(lines)
}

// refuse accounts for a line of snapshot longer than MaxRecordBytes, left
// out of the records: counted in Errors, and logged, naming it, once per
// metric path every throttle.DefaultEvery.
func (p *Producer) refuse(snapshot string, line []byte) {
	p.mu.Lock()
	p.errs++
	p.mu.Unlock()
	path, _, _ := bytes.Cut(line, []byte{' '})
	err := &LineTooLongError{Snapshot: snapshot, Line: string(line[:min(len(line), 120)]), Len: len(line), Limit: p.cfg.MaxRecordBytes}
	p.refusals.Log(p.logger, slog.LevelWarn, string(path), "kafka: line left out of the records (the other destinations get it; raise [kafka] max-record-bytes to produce it)", "error", err)
}

// Stalled reports whether records wait for the brokers and none was
// acknowledged or failed for d, nor did they start waiting within d:
// nothing can be delivered now. A stopping daemon then leaves its
// snapshots in the spool at once instead of waiting out its stop timeout.
func (p *Producer) Stalled(d time.Duration) bool {
	p.mu.Lock()
	held := p.held
	p.mu.Unlock()
	return held > 0 && time.Since(time.Unix(0, p.lastDone.Load())) > d
}
