package snapsource

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/kafka"
	"github.com/haproxystats-go/haproxystats/internal/snaprecord"
	"github.com/haproxystats-go/haproxystats/internal/spool"
	"github.com/haproxystats-go/haproxystats/internal/throttle"
)

// Defaults of Config.
const (
	DefaultCommitInterval = time.Second
	// fetchBytes bounds one fetch request per broker (a first record
	// batch larger than this is still returned whole).
	fetchBytes = 1 << 20
	// commitTimeout bounds one commit request.
	commitTimeout = 10 * time.Second
)

// ErrClosed is returned by Next once Run has stopped handing out.
var ErrClosed = errors.New("snapshot source stopped")

// Config is the consumer's configuration; New checks it.
type Config struct {
	// Conn gives the brokers and how to reach them: the connection fields
	// of kafka.Config (kafka.ConnOpts); its producer fields are ignored.
	Conn kafka.Config
	// Topic is [kafka] snapshot-topic, Group [kafka] group.
	Topic, Group string
	// Dir is [kafka] consumer-dir: snapshots are written to
	// <Dir>/<host>/<epoch>. It is the consumer's own.
	Dir string
	// QueueSize bounds the snapshots on disk, handed out or waiting.
	QueueSize int
	// MaxSnapshotBytes is the largest record decoded ([kafka]
	// max-snapshot-bytes).
	MaxSnapshotBytes int64
	// StopTimeout bounds, at a stop, the wait for the snapshots handed out
	// to be reported; > 0.
	StopTimeout time.Duration
	// CommitInterval separates two commits of what was delivered; 0 =
	// DefaultCommitInterval.
	CommitInterval time.Duration
	// SessionTimeout and HeartbeatInterval of the group membership: a
	// member that does not heartbeat for SessionTimeout (a crash) loses
	// its partitions to the others. 0 = the client's defaults (45 s, 3 s).
	SessionTimeout, HeartbeatInterval time.Duration
}

func (cfg *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("snapshot source: "+format, args...))
	}
	if len(cfg.Conn.Brokers) == 0 {
		bad("no broker")
	}
	if cfg.Topic == "" || cfg.Group == "" || cfg.Dir == "" {
		bad("topic %q, group %q and directory %q must all be set", cfg.Topic, cfg.Group, cfg.Dir)
	}
	if cfg.QueueSize < 1 {
		bad("queue size %d must be at least 1", cfg.QueueSize)
	}
	if cfg.MaxSnapshotBytes < 1 || cfg.MaxSnapshotBytes > config.MaxKafkaSnapshotBytes {
		bad("max snapshot bytes %d out of range", cfg.MaxSnapshotBytes)
	}
	if cfg.StopTimeout <= 0 {
		bad("stop timeout %v must be > 0", cfg.StopTimeout)
	}
	if cfg.CommitInterval < 0 || cfg.SessionTimeout < 0 || cfg.HeartbeatInterval < 0 {
		bad("negative interval")
	}
	if cfg.Conn.RetryBackoff <= 0 {
		bad("retry backoff %v must be > 0", cfg.Conn.RetryBackoff)
	}
	return errors.Join(errs...)
}

// Snapshot is one snapshot handed out by Next. Its exported fields are
// read-only; the caller owns Dir until it calls Done.
type Snapshot struct {
	Host string // the load balancer's host name
	// Cluster is the cluster name the record carries (version 2), "" when
	// it carries none (version 1).
	Cluster string
	Epoch   string // the snapshot's epoch, Dir's base name
	Dir     string // <Config.Dir>/<Host>/<Epoch>
	// Partition and Offset are those of the record it came from (the
	// first one, when a duplicate was attached).
	Partition int32
	Offset    int64

	key  string
	refs []ref // the records it stands for
	out  bool  // handed out, Done not called
	done bool
}

// ref is one record a snapshot stands for: its entry in its partition's
// ledger, valid while the partition has the same assignment.
type ref struct {
	p   *partition
	gen uint64
	e   *entry
}

// partition is the state of one assigned partition.
type partition struct {
	id  int32
	gen uint64 // assignment number: refs of another are stale
	// ledger holds the records consumed and not yet committable, in
	// offset order; its delivered prefix is moved to next.
	ledger []*entry
	// next is the offset to commit (the first record not delivered),
	// epoch the leader epoch of the record before it; -1 = nothing to
	// commit yet. committed is what was committed.
	next, committed int64
	epoch           int32
}

type entry struct {
	offset    int64
	epoch     int32
	delivered bool
}

// Stats are a consumer's cumulative counters.
type Stats struct {
	Records   uint64 // records consumed
	Snapshots uint64 // snapshots written out and queued
	Merged    uint64 // records attached to the same snapshot already on disk
	Rejected  uint64 // records that are not snapshots this consumer reads
	Delivered uint64 // snapshots reported delivered
	Retried   uint64 // snapshots reported not delivered (handed out again)
	Dropped   uint64 // snapshots dropped: partition revoked or lost, or the stop
	Commits   uint64 // offset commits that succeeded
	Waiting   int    // snapshots on disk now (handed out or waiting)
}

// Consumer consumes snapshot records. Build it with New or FromSettings;
// run it with Run.
type Consumer struct {
	cfg  Config
	opts []kgo.Opt
	log  *slog.Logger
	warn throttle.Throttle

	started atomic.Bool

	mu                                                                                 sync.Mutex
	parts                                                                              map[int32]*partition
	gen                                                                                uint64
	queue                                                                              []*Snapshot          // waiting, in hand-out order
	onDisk                                                                             map[string]*Snapshot // host/epoch -> snapshot not done
	closing                                                                            bool                 // Run is stopping: nothing handed out
	closed                                                                             bool                 // Run returned: Done commits nothing
	wake                                                                               chan struct{}        // closed and replaced on any change
	nRecords, nSnapshots, nMerged, nRejected, nDelivered, nRetried, nDropped, nCommits uint64
}

// New checks cfg and returns a consumer. It starts nothing. A nil logger
// discards the log.
func New(cfg Config, logger *slog.Logger) (*Consumer, error) {
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = DefaultCommitInterval
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "snapshot-source")
	c := &Consumer{
		cfg:    cfg,
		log:    logger,
		parts:  map[int32]*partition{},
		onDisk: map[string]*Snapshot{},
		wake:   make(chan struct{}),
	}
	// A batch of one record decompresses to a little more than the
	// record; twice the limit leaves room for a batch of two.
	maxBatch := 2*cfg.MaxSnapshotBytes + 1<<20
	c.opts = append(kafka.ConnOpts(cfg.Conn, logger),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		kgo.FetchMaxBytes(fetchBytes),
		kgo.FetchMaxPartitionBytes(fetchBytes),
		kgo.MaxDecompressBatchBytes(int(min(maxBatch, 1<<31-1))),
		kgo.BrokerMaxReadBytes(int32(min(max(100<<20, maxBatch), 1<<31-1))),
	)
	if cfg.SessionTimeout > 0 {
		c.opts = append(c.opts, kgo.SessionTimeout(cfg.SessionTimeout))
	}
	if cfg.HeartbeatInterval > 0 {
		c.opts = append(c.opts, kgo.HeartbeatInterval(cfg.HeartbeatInterval))
	}
	return c, nil
}

// FromSettings builds the consumer of a validated [kafka] section:
// snapshot-topic, group, consumer-dir, consumer-queue-size,
// max-snapshot-bytes, session-timeout (the heartbeat every fifteenth of
// it, as Kafka's defaults of 45 s and 3 s) and the connection options;
// stopTimeout is the daemon's stop timeout. It reads the TLS files now (errors name the
// option); it starts nothing.
func FromSettings(s config.Kafka, stopTimeout time.Duration, logger *slog.Logger) (*Consumer, error) {
	conn, err := kafka.ConfigFromSettings(s)
	if err != nil {
		return nil, err
	}
	return New(Config{
		Conn:              conn,
		Topic:             s.SnapshotTopic,
		Group:             s.Group,
		Dir:               s.ConsumerDir,
		QueueSize:         s.ConsumerQueueSize,
		MaxSnapshotBytes:  int64(s.MaxSnapshotBytes),
		StopTimeout:       stopTimeout,
		SessionTimeout:    s.SessionTimeout,
		HeartbeatInterval: max(s.SessionTimeout/15, 100*time.Millisecond),
	}, logger)
}

// Stats returns the cumulative counters. Safe for concurrent use.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{
		Records: c.nRecords, Snapshots: c.nSnapshots, Merged: c.nMerged, Rejected: c.nRejected,
		Delivered: c.nDelivered, Retried: c.nRetried, Dropped: c.nDropped, Commits: c.nCommits,
		Waiting: len(c.onDisk),
	}
}

// Assigned returns the partitions of the snapshot topic assigned to this
// member now, sorted. Safe for concurrent use.
func (c *Consumer) Assigned() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]int32, 0, len(c.parts))
	for id := range c.parts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// broadcast wakes every waiter. c.mu is held.
func (c *Consumer) broadcast() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// Next returns the next snapshot, waiting until there is one, ctx ends, or
// Run stops handing out (ErrClosed). The caller must call Done with it.
func (c *Consumer) Next(ctx context.Context) (*Snapshot, error) {
	c.mu.Lock()
	for {
		if c.closing {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if len(c.queue) > 0 {
			s := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			s.out = true
			c.mu.Unlock()
			return s, nil
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
		c.mu.Lock()
	}
}

// Done reports what became of s, handed out by Next. delivered = true: the
// snapshot's metrics reached every destination; its directory is removed,
// and its records count as delivered for the commits (unless their
// partition was revoked meanwhile). delivered = false: it is handed out
// again, before newer snapshots, its directory kept; after its partition
// was revoked, or once Run stops, it is dropped instead. Done is called
// once per Next; a second call does nothing.
func (c *Consumer) Done(s *Snapshot, delivered bool) {
	c.mu.Lock()
	if s.done || !s.out {
		c.mu.Unlock()
		return
	}
	s.out = false
	if !delivered && !c.closing && c.live(s) {
		c.nRetried++
		c.queue = append([]*Snapshot{s}, c.queue...)
		c.broadcast()
		c.mu.Unlock()
		return
	}
	if delivered {
		c.nDelivered++
		if !c.closed {
			for _, r := range s.refs {
				if r.p.gen == r.gen && c.parts[r.p.id] == r.p {
					r.e.delivered = true
					r.p.advance()
				}
			}
		}
	} else {
		c.nDropped++
	}
	c.forget(s)
	c.mu.Unlock()
	c.remove(s.Dir)
}

// Live reports whether s, handed out by Next, still stands for a record of
// a partition assigned to this member: false once every partition of its
// records was revoked or lost (its Done then commits nothing, and the new
// owner consumes it again). Safe for concurrent use.
func (c *Consumer) Live(s *Snapshot) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live(s)
}

// live reports whether a record of s still belongs to a partition of this
// member's current assignment. c.mu is held.
func (c *Consumer) live(s *Snapshot) bool {
	for _, r := range s.refs {
		if r.p.gen == r.gen && c.parts[r.p.id] == r.p {
			return true
		}
	}
	return false
}

// forget marks s done and frees its place. c.mu is held.
func (c *Consumer) forget(s *Snapshot) {
	s.done = true
	if c.onDisk[s.key] == s {
		delete(c.onDisk, s.key)
	}
	c.broadcast()
}

// remove removes a snapshot directory, logging a failure.
func (c *Consumer) remove(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		c.log.Error("cannot remove a snapshot directory", "dir", dir, "err", err)
	}
}

// advance moves the delivered prefix of the ledger to next.
func (p *partition) advance() {
	i := 0
	for i < len(p.ledger) && p.ledger[i].delivered {
		p.next, p.epoch = p.ledger[i].offset+1, p.ledger[i].epoch
		i++
	}
	if i > 0 {
		clear(p.ledger[:i])
		p.ledger = p.ledger[i:]
	}
}

// Run consumes until ctx ends; see the package documentation. It returns
// an error only when it cannot start: Dir cannot be cleaned or created, or
// the client cannot be created. Run is called once.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("snapshot source: Run called twice")
	}
	defer func() {
		c.mu.Lock()
		c.closing, c.closed = true, true
		c.broadcast()
		c.mu.Unlock()
	}()
	if err := c.clean(); err != nil {
		return err
	}
	cl, err := kgo.NewClient(c.opts...)
	if err != nil {
		return fmt.Errorf("snapshot source: create client: %w", err)
	}
	c.log.Info("consuming snapshots", "topic", c.cfg.Topic, "group", c.cfg.Group, "dir", c.cfg.Dir, "queue_size", c.cfg.QueueSize)

	commitCtx, stopCommits := context.WithCancel(context.Background())
	var commits sync.WaitGroup
	commits.Go(func() { c.commitLoop(commitCtx, cl) })

	c.poll(ctx, cl)

	// Stop: hand out nothing more, drop what waits, give the snapshots
	// handed out StopTimeout to be reported, commit, leave the group.
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.drop(func(*Snapshot) bool { return false })
	c.waitHandedOut()
	stopCommits()
	commits.Wait()
	c.commit(context.Background(), cl)
	cl.CloseAllowingRebalance()
	c.mu.Lock()
	waiting := len(c.onDisk)
	st := c.nDelivered
	c.mu.Unlock()
	c.log.Info("stopped consuming snapshots", "delivered", st, "still_out", waiting)
	return nil
}

// waitHandedOut waits, at most StopTimeout, until no snapshot is handed
// out.
func (c *Consumer) waitHandedOut() {
	timer := time.NewTimer(c.cfg.StopTimeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		out := len(c.onDisk)
		wake := c.wake
		c.mu.Unlock()
		if out == 0 {
			return
		}
		select {
		case <-wake:
		case <-timer.C:
			c.log.Warn("stop timeout reached with snapshots still being processed; they will be consumed again", "snapshots", out)
			return
		}
	}
}

// clean removes the snapshot and temporary directories an earlier run
// left in <Dir>/<host>/, and creates Dir.
func (c *Consumer) clean() error {
	if err := os.MkdirAll(c.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("snapshot source: create %s: %w", c.cfg.Dir, err)
	}
	hosts, err := os.ReadDir(c.cfg.Dir)
	if err != nil {
		return fmt.Errorf("snapshot source: %w", err)
	}
	for _, h := range hosts {
		if !h.IsDir() || snaprecord.CheckHost(h.Name()) != nil {
			continue
		}
		hostDir := filepath.Join(c.cfg.Dir, h.Name())
		entries, err := os.ReadDir(hostDir)
		if err != nil {
			return fmt.Errorf("snapshot source: %w", err)
		}
		for _, e := range entries {
			if spool.IsSnapshotName(e.Name()) || snaprecord.IsTemp(e.Name()) {
				if err := os.RemoveAll(filepath.Join(hostDir, e.Name())); err != nil {
					return fmt.Errorf("snapshot source: remove what an earlier run left: %w", err)
				}
			}
		}
	}
	return nil
}

// poll consumes until ctx ends or the client is closed.
func (c *Consumer) poll(ctx context.Context, cl *kgo.Client) {
	paused := false
	for {
		room, ok := c.waitRoom(ctx, cl, &paused)
		if !ok {
			return
		}
		fetches := cl.PollRecords(ctx, room)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			return
		}
		closed := false
		fetches.EachError(func(topic string, p int32, err error) {
			var tooLarge *kgo.ErrDecompressTooLarge
			switch {
			case errors.Is(err, kgo.ErrClientClosed):
				closed = true
			case errors.Is(err, context.Canceled):
			case errors.As(err, &tooLarge):
				c.warnf("decompress", "a record batch decompresses to more than twice max-snapshot-bytes: the partition is stopped; raise [kafka] max-snapshot-bytes",
					"topic", topic, "partition", p, "err", err)
			default:
				c.warnf("fetch "+err.Error(), "cannot fetch snapshot records; retrying", "topic", topic, "partition", p, "err", err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) { c.handle(ctx, r) })
		cl.AllowRebalance()
		if closed {
			return
		}
	}
}

// waitRoom waits until fewer than QueueSize snapshots are on disk, pausing
// the fetches meanwhile; it returns the room, or false when ctx ended.
func (c *Consumer) waitRoom(ctx context.Context, cl *kgo.Client, paused *bool) (int, bool) {
	for {
		c.mu.Lock()
		room := c.cfg.QueueSize - len(c.onDisk)
		wake := c.wake
		c.mu.Unlock()
		if room > 0 {
			if *paused {
				cl.ResumeFetchTopics(c.cfg.Topic)
				*paused = false
			}
			return room, true
		}
		if !*paused {
			cl.PauseFetchTopics(c.cfg.Topic)
			*paused = true
			c.log.Debug("consumer queue full: fetching paused", "queue_size", c.cfg.QueueSize)
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-wake:
		}
	}
}

// handle takes one record: a new snapshot written out and queued, a
// duplicate attached to the snapshot on disk, or a rejected record.
func (c *Consumer) handle(ctx context.Context, rec *kgo.Record) {
	c.mu.Lock()
	c.nRecords++
	p := c.parts[rec.Partition]
	if p == nil {
		// Not assigned (cannot happen while rebalances are blocked).
		c.mu.Unlock()
		return
	}
	e := &entry{offset: rec.Offset, epoch: rec.LeaderEpoch}
	p.ledger = append(p.ledger, e)
	c.mu.Unlock()

	r, err := snaprecord.Parse(rec.Value, snaprecord.Limits{MaxBytes: c.cfg.MaxSnapshotBytes})
	if err != nil {
		c.log.Error("skipping a record that is not a snapshot this consumer reads; it stays in the topic",
			"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "key", string(rec.Key), "err", err)
		c.mu.Lock()
		c.nRejected++
		e.delivered = true
		p.advance()
		c.mu.Unlock()
		return
	}
	key := r.Host + "/" + r.Epoch
	c.mu.Lock()
	if s := c.onDisk[key]; s != nil {
		s.refs = append(s.refs, ref{p: p, gen: p.gen, e: e})
		c.nMerged++
		c.mu.Unlock()
		c.log.Debug("duplicate snapshot record attached to the snapshot on disk", "host", r.Host, "snapshot", r.Epoch,
			"partition", rec.Partition, "offset", rec.Offset)
		return
	}
	c.mu.Unlock()

	dir, ok := c.write(ctx, r)
	if !ok {
		return // stopping: the record stays undelivered, not committed
	}
	s := &Snapshot{Host: r.Host, Cluster: r.Cluster, Epoch: r.Epoch, Dir: dir, Partition: rec.Partition, Offset: rec.Offset,
		key: key, refs: []ref{{p: p, gen: p.gen, e: e}}}
	c.mu.Lock()
	c.nSnapshots++
	c.onDisk[key] = s
	c.queue = append(c.queue, s)
	c.broadcast()
	c.mu.Unlock()
}

// write writes the record's files to <Dir>/<host>/<epoch>, retrying after
// a failure (a full disk) with backoff until ctx ends; a directory of that
// name is not on disk (onDisk has none), so one found there is a leftover
// and replaced.
func (c *Consumer) write(ctx context.Context, r *snaprecord.Record) (string, bool) {
	hostDir := filepath.Join(c.cfg.Dir, r.Host)
	wait := c.cfg.Conn.RetryBackoff
	for {
		err := os.MkdirAll(hostDir, 0o755)
		var dir string
		if err == nil {
			dir, err = r.WriteDir(hostDir)
		}
		if errors.Is(err, fs.ErrExist) {
			c.remove(filepath.Join(hostDir, r.Epoch))
			dir, err = r.WriteDir(hostDir)
		}
		if err == nil {
			return dir, true
		}
		c.warnf("write "+hostDir, "cannot write a snapshot to disk; retrying (fetching waits)", "host", r.Host, "snapshot", r.Epoch, "err", err)
		select {
		case <-ctx.Done():
			return "", false
		case <-time.After(wait):
		}
		wait = min(2*wait, max(c.cfg.Conn.RetryBackoffMax, c.cfg.Conn.RetryBackoff))
	}
}

// warnf logs an error at most every throttle.DefaultEvery per key.
func (c *Consumer) warnf(key, msg string, attrs ...any) {
	c.warn.Log(c.log, slog.LevelError, key, "snapshot source: "+msg, attrs...)
}

// onAssigned starts the state of newly assigned partitions.
func (c *Consumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range assigned[c.cfg.Topic] {
		c.gen++
		c.parts[id] = &partition{id: id, gen: c.gen, next: -1, committed: -1}
	}
	if ids := assigned[c.cfg.Topic]; len(ids) > 0 {
		c.log.Info("partitions assigned", "partitions", ids)
	}
}

// onRevoked commits what was delivered of the revoked partitions, before
// they move, and drops their state.
func (c *Consumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	toCommit := c.revoke(revoked[c.cfg.Topic], true)
	if len(toCommit) > 0 {
		c.commitOffsets(ctx, cl, toCommit)
	}
	if ids := revoked[c.cfg.Topic]; len(ids) > 0 {
		c.log.Info("partitions revoked", "partitions", ids)
	}
}

// onLost drops the state of partitions lost without a chance to commit.
func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.revoke(lost[c.cfg.Topic], false)
	if ids := lost[c.cfg.Topic]; len(ids) > 0 {
		c.log.Warn("partitions lost; their snapshots not delivered yet will be consumed again", "partitions", ids)
	}
}

// revoke forgets partitions ids: the snapshots of theirs still waiting are
// dropped (their directories removed), those handed out stay with their
// caller but commit nothing. With commit, it returns the offsets still to
// commit for them.
func (c *Consumer) revoke(ids []int32, commit bool) map[int32]kgo.EpochOffset {
	c.mu.Lock()
	toCommit := map[int32]kgo.EpochOffset{}
	for _, id := range ids {
		p := c.parts[id]
		if p == nil {
			continue
		}
		delete(c.parts, id)
		if commit && p.next > p.committed {
			toCommit[id] = kgo.EpochOffset{Epoch: p.epoch, Offset: p.next}
		}
	}
	c.mu.Unlock()
	c.drop(c.live)
	return toCommit
}

// drop removes from the queue the waiting snapshots keep rejects (it runs
// with c.mu held), and their directories.
func (c *Consumer) drop(keep func(*Snapshot) bool) {
	c.mu.Lock()
	var dropped []*Snapshot
	kept := c.queue[:0]
	for _, s := range c.queue {
		if keep(s) {
			kept = append(kept, s)
		} else {
			dropped = append(dropped, s)
		}
	}
	clear(c.queue[len(kept):])
	c.queue = kept
	for _, s := range dropped {
		c.nDropped++
		c.forget(s)
	}
	c.mu.Unlock()
	for _, s := range dropped {
		c.remove(s.Dir)
	}
}

// commitLoop commits what was delivered every CommitInterval until ctx
// ends.
func (c *Consumer) commitLoop(ctx context.Context, cl *kgo.Client) {
	tick := time.NewTicker(c.cfg.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.commit(ctx, cl)
		}
	}
}

// commit commits, for every assigned partition, the offset up to which
// everything was delivered, when it advanced; each commit is bounded by
// commitTimeout too.
func (c *Consumer) commit(ctx context.Context, cl *kgo.Client) {
	c.mu.Lock()
	toCommit := map[int32]kgo.EpochOffset{}
	for id, p := range c.parts {
		if p.next > p.committed {
			toCommit[id] = kgo.EpochOffset{Epoch: p.epoch, Offset: p.next}
		}
	}
	c.mu.Unlock()
	if len(toCommit) == 0 {
		return
	}
	c.commitOffsets(ctx, cl, toCommit)
}

// commitOffsets commits offsets of the snapshot topic synchronously and
// records what was committed.
func (c *Consumer) commitOffsets(ctx context.Context, cl *kgo.Client, offsets map[int32]kgo.EpochOffset) {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	var failed error
	ok := map[int32]bool{}
	cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{c.cfg.Topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				failed = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						failed = fmt.Errorf("partition %d: %w", p.Partition, err)
						continue
					}
					ok[p.Partition] = true
				}
			}
		})
	if failed != nil {
		c.warnf("commit", "cannot commit the offsets of delivered snapshots; retrying (a restart would consume them again)", "err", failed)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, eo := range offsets {
		if !ok[id] {
			continue
		}
		c.nCommits++
		if p := c.parts[id]; p != nil && eo.Offset > p.committed {
			p.committed = eo.Offset
		}
	}
}
