package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/assemble"
	"github.com/haproxystats-go/haproxystats/internal/cluster"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/snapsource"
	"github.com/haproxystats-go/haproxystats/internal/spool"
	"github.com/haproxystats-go/haproxystats/internal/throttle"
)

// Bounds of the Kafka source.
const (
	// MaxHostViews bounds the pipeline views kept, one per load balancer
	// host (and cluster) seen: beyond it the cache is emptied and the
	// views are made again as snapshots come (a view is a few hundred
	// bytes: the group cache is shared, engine.Paths.WithPrefix).
	MaxHostViews = 4096
	// MaxFailed bounds the snapshots and buckets kept in
	// <consumer-dir>/_failed: the newest ones (by epoch) are kept.
	MaxFailed = 100
	// sourceTick is how often the source looks for buckets that became
	// due by waiting, and forgets what is no longer needed.
	sourceTick = 100 * time.Millisecond
)

// Directories of the Kafka source under [kafka] consumer-dir, next to the
// consumer's <host>/<epoch> snapshots: a name starting with '_' is never a
// host name (snaprecord.CheckHost).
const (
	clusterDirName = "_cluster" // the buckets' files (cluster.Store)
	failedDirName  = "_failed"  // snapshots and buckets set aside
)

// snapshotConsumer is what the Kafka source needs of a
// *snapsource.Consumer (a fake in tests).
type snapshotConsumer interface {
	Run(ctx context.Context) error
	Next(ctx context.Context) (*snapsource.Snapshot, error)
	Done(s *snapsource.Snapshot, delivered bool)
	Live(s *snapsource.Snapshot) bool
	Stats() snapsource.Stats
}

// SourceStats are the Kafka source's counters, cumulative.
type SourceStats struct {
	Snapshots uint64 // host snapshots taken from the consumer
	Failed    uint64 // host snapshots and buckets set aside in _failed
	Buckets   uint64 // bucket emissions handed out
	Moved     uint64 // buckets not sent: their partition moved
	Cluster   cluster.Stats
}

// SourceConfig is the Kafka source's configuration; it comes from the
// validated settings (newKafkaSource).
type SourceConfig struct {
	// Dir is [kafka] consumer-dir.
	Dir string
	// Pipeline and Paths are the assembled pipeline and its paths: each
	// host's snapshots are processed by a view of it with the host's
	// prefix, each cluster's buckets by one with the cluster's.
	Pipeline *engine.Pipeline
	Paths    *engine.Paths
	Graphite config.Graphite
	// Cluster is the cluster of the records that carry none ("" = those
	// are not aggregated), Aggregation the bucket rules.
	Cluster     string
	Aggregation cluster.Config
	Logger      *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// kafkaSource is the Queue of haproxystats-process with [process] source =
// kafka: it hands out the host snapshots of the snapshot consumer (names
// "<host>/<epoch>", directories of the consumer) and the cluster buckets
// due (names "_cluster/<cluster>/<bucket>/view/<bucket>", views of
// cluster.Store), processes each with its own prefix (Processor), sets
// aside what cannot be processed (Failer), and reports a host snapshot to
// the consumer once its own metrics, and the bucket counting it, were
// delivered. Every method is safe for concurrent use; mu serialises the
// aggregator, the store and the items.
type kafkaSource struct {
	cfg   SourceConfig
	c     snapshotConsumer
	log   *slog.Logger
	now   func() time.Time
	warn  throttle.Throttle
	views viewCache

	mu       sync.Mutex
	agg      *cluster.Aggregator
	store    *cluster.Store
	out      map[string]*item     // handed out to a worker (or parked for a retry)
	byID     map[cluster.ID]*item // host snapshots held by the aggregator
	retry    []*item              // host snapshots to hand out again
	nextID   cluster.ID
	ready    chan struct{} // closed once Run opened the store (or failed to)
	wake     chan struct{}
	stopping bool
	st       SourceStats
}

// item is a snapshot handed out: a host snapshot (snap) or a bucket.
type item struct {
	name   string
	dir    string
	snap   *snapsource.Snapshot
	id     cluster.ID  // its member, 0 when it counts in no cluster
	key    cluster.Key // a bucket's
	hosts  int         // a bucket's hosts
	parked bool        // Done(name, false): waiting for Retry
}

// kafkaQueue is the Queue of [process] source = kafka: the consumer of
// [kafka] snapshot-topic in group [kafka] group, and the cluster
// aggregation of the [process] cluster-* options.
func kafkaQueue(s *config.ProcessSettings, built *assemble.Built, logger *slog.Logger) (Queue, error) {
	c, err := snapsource.FromSettings(s.Kafka, s.Process.StopTimeout, logger)
	if err != nil {
		return nil, err
	}
	if !s.Graphite.PrefixHostname {
		logger.Warn("[graphite] prefix-hostname = false with [process] source = kafka: the metrics of every load balancer share the same paths")
	}
	return newKafkaSource(SourceConfig{
		Dir:      s.Kafka.ConsumerDir,
		Pipeline: built.Pipeline,
		Paths:    built.Paths,
		Graphite: s.Graphite,
		Cluster:  s.Process.Cluster,
		Aggregation: cluster.Config{
			Interval:    s.Process.ClusterInterval,
			Wait:        s.Process.ClusterWait,
			Late:        s.Process.ClusterLate,
			HostsExpiry: s.Process.ClusterHostsExpiry,
		},
		Logger: logger,
	}, c, s.Kafka.ConsumerQueueSize)
}

func newKafkaSource(cfg SourceConfig, c snapshotConsumer, queueSize int) (*kafkaSource, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Aggregation.QueueSize = queueSize
	agg, err := cluster.New(cfg.Aggregation)
	if err != nil {
		return nil, err
	}
	s := &kafkaSource{
		cfg:   cfg,
		c:     c,
		log:   cfg.Logger.With("component", "kafka-source"),
		now:   cfg.Now,
		agg:   agg,
		out:   map[string]*item{},
		byID:  map[cluster.ID]*item{},
		ready: make(chan struct{}),
		wake:  make(chan struct{}),
	}
	s.views = viewCache{base: cfg.Pipeline, paths: cfg.Paths, g: cfg.Graphite}
	return s, nil
}

// Dir is the consumer's directory: every name handed out is relative to
// it.
func (s *kafkaSource) Dir() string { return s.cfg.Dir }

// Stats returns the counters.
func (s *kafkaSource) Stats() SourceStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Cluster = s.agg.Stats()
	return st
}

// broadcast wakes the workers waiting in Next. s.mu is held.
func (s *kafkaSource) broadcast() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// Run runs the consumer until ctx ends; meanwhile it makes the buckets
// that became due by waiting known to Next and forgets the buckets no
// longer needed. At the stop it releases what is held, not delivered
// (except what is in flight, released when its Done comes), and returns
// once the consumer stopped: Run's error, if it could not start.
func (s *kafkaSource) Run(ctx context.Context) error {
	store, err := cluster.OpenStore(filepath.Join(s.cfg.Dir, clusterDirName))
	s.mu.Lock()
	s.store = store
	s.stopping = err != nil
	s.mu.Unlock()
	close(s.ready)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- s.c.Run(cctx)
		cancel()
	}()
	tick := time.NewTicker(sourceTick)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-cctx.Done():
			running = false
		case <-tick.C:
			s.tick()
		}
	}
	s.stop()
	err = <-done
	st := s.Stats()
	s.log.Info("kafka source stopped", "host_snapshots", st.Snapshots, "buckets_sent", st.Buckets, "set_aside", st.Failed,
		"moved", st.Moved, "late", st.Cluster.Late, "too_late", st.Cluster.TooLate, "replaced", st.Cluster.Replaced,
		"queue_full", st.Cluster.Forced)
	cs := s.c.Stats()
	s.log.Info("snapshot consumer stopped", "records", cs.Records, "merged", cs.Merged, "rejected", cs.Rejected,
		"delivered", cs.Delivered, "retried", cs.Retried, "dropped", cs.Dropped, "commits", cs.Commits)
	return err
}

// tick forgets what is no longer needed and wakes Next when a bucket is
// due.
func (s *kafkaSource) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, k := range s.agg.Forget(now) {
		if err := s.store.Remove(k); err != nil {
			s.log.Error("cannot remove the files of a bucket", "cluster", k.Cluster, "bucket", k.Bucket, "err", err)
		}
	}
	if s.agg.Due(now) {
		s.broadcast()
	}
}

// stop hands nothing out any more and releases what is held.
func (s *kafkaSource) stop() {
	s.mu.Lock()
	s.stopping = true
	var back []*snapsource.Snapshot
	for _, it := range s.retry {
		back = append(back, s.dropLocked(it))
	}
	s.retry = nil
	for _, it := range s.out {
		if it.snap != nil && it.parked {
			back = append(back, s.dropLocked(it))
		}
	}
	rel := s.agg.Stop()
	s.broadcast()
	s.mu.Unlock()
	for _, snap := range back {
		s.c.Done(snap, false)
	}
	s.release(rel)
}

// dropLocked forgets host item it, whose metrics will not be delivered,
// and returns its snapshot for the consumer. s.mu is held.
func (s *kafkaSource) dropLocked(it *item) *snapsource.Snapshot {
	if it.id != 0 {
		s.agg.Drop(it.id)
		delete(s.byID, it.id)
	}
	delete(s.out, it.name)
	return it.snap
}

// release reports the host snapshots the aggregator released.
func (s *kafkaSource) release(rel []cluster.Release) {
	if len(rel) == 0 {
		return
	}
	type done struct {
		snap      *snapsource.Snapshot
		delivered bool
	}
	var dones []done
	s.mu.Lock()
	for _, r := range rel {
		it := s.byID[r.ID]
		if it == nil {
			continue
		}
		delete(s.byID, r.ID)
		dones = append(dones, done{it.snap, r.Delivered})
	}
	s.mu.Unlock()
	for _, d := range dones {
		s.c.Done(d.snap, d.delivered)
	}
}

// Next hands out a bucket due, a host snapshot to try again, or the next
// snapshot of the consumer, whichever comes first.
func (s *kafkaSource) Next(ctx context.Context) (string, error) {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	for {
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return "", snapsource.ErrClosed
		}
		if name, rel, ok := s.nextBucketLocked(); ok {
			s.mu.Unlock()
			s.release(rel)
			if name != "" {
				return name, nil
			}
			continue
		}
		if len(s.retry) > 0 {
			it := s.retry[0]
			s.retry = s.retry[1:]
			if !s.c.Live(it.snap) {
				snap := s.dropLocked(it)
				s.mu.Unlock()
				s.c.Done(snap, false)
				continue
			}
			it.parked = false
			s.mu.Unlock()
			return it.name, nil
		}
		wake := s.wake
		s.mu.Unlock()

		// Wait for the consumer, or for a bucket that becomes due.
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-wake:
				cancel()
			case <-cctx.Done():
			}
		}()
		snap, err := s.c.Next(cctx)
		cancel()
		switch {
		case err == nil:
			return s.take(snap), nil
		case ctx.Err() != nil:
			return "", ctx.Err()
		case errors.Is(err, context.Canceled):
			continue // woken: a bucket is due
		default:
			return "", err
		}
	}
}

// nextBucketLocked hands out the next bucket due, if any: its view made,
// its item recorded. A bucket whose hosts' partition moved, or whose view
// cannot be made, is not handed out: ok with name "" and the releases.
// s.mu is held.
func (s *kafkaSource) nextBucketLocked() (name string, rel []cluster.Release, ok bool) {
	now := s.now()
	e, ok := s.agg.Next(now)
	if !ok {
		return "", nil, false
	}
	known, live := false, false
	partitions := map[int32]bool{}
	for _, h := range e.Hosts {
		if it := s.byID[h.ID]; it != nil {
			known = true
			live = live || s.c.Live(it.snap)
			partitions[it.snap.Partition] = true
		}
	}
	if len(partitions) > 1 {
		// Records keyed by host (version 1, or pullers without
		// cluster-name): the cluster's hosts spread over partitions,
		// which several processors may own.
		s.warn.Log(s.log, slog.LevelWarn, "partitions "+e.Cluster, "the hosts of a cluster come from several partitions: with several processors each may send the bucket with only its hosts; set [process] cluster-name on the load balancers, whose records are then keyed by the cluster",
			"cluster", e.Cluster, "bucket", e.Bucket, "partitions", len(partitions))
	}
	if known && !live {
		s.st.Moved++
		s.log.Info("cluster bucket not sent: its partition moved to another processor, which sends it", "cluster", e.Cluster, "bucket", e.Bucket)
		rel = s.agg.End(now, e.Key, cluster.Moved)
		if err := s.store.Remove(e.Key); err != nil {
			s.log.Error("cannot remove the files of a bucket", "cluster", e.Cluster, "bucket", e.Bucket, "err", err)
		}
		return "", rel, true
	}
	dir, err := s.store.View(e)
	if err != nil {
		s.st.Failed++
		s.log.Error("cluster bucket not computed: its files cannot be gathered", "cluster", e.Cluster, "bucket", e.Bucket, "err", err)
		return "", s.agg.End(now, e.Key, cluster.Failed), true
	}
	rn, err := filepath.Rel(s.cfg.Dir, dir)
	if err != nil {
		s.st.Failed++
		return "", s.agg.End(now, e.Key, cluster.Failed), true
	}
	s.st.Buckets++
	it := &item{name: rn, dir: dir, key: e.Key, hosts: len(e.Hosts)}
	s.out[rn] = it
	hosts := make([]string, len(e.Hosts))
	for i, h := range e.Hosts {
		hosts[i] = h.Name
	}
	s.log.Debug("cluster bucket due", "cluster", e.Cluster, "bucket", e.Bucket, "why", e.Why, "again", e.Again, "hosts", hosts)
	return rn, nil, true
}

// take records a host snapshot of the consumer and returns its name: in
// its cluster's bucket (the record's cluster, else Config.Cluster), its
// files linked into the bucket.
func (s *kafkaSource) take(snap *snapsource.Snapshot) string {
	name := snap.Host + "/" + snap.Epoch
	it := &item{name: name, dir: snap.Dir, snap: snap}
	clusterName := cmpOr(snap.Cluster, s.cfg.Cluster)
	var rel []cluster.Release
	s.mu.Lock()
	s.st.Snapshots++
	s.out[name] = it
	if epoch, err := strconv.ParseInt(snap.Epoch, 10, 64); clusterName != "" && err == nil {
		s.nextID++
		it.id = s.nextID
		res, err := s.agg.Add(s.now(), cluster.Member{ID: it.id, Cluster: clusterName, Host: snap.Host, Epoch: epoch})
		switch {
		case err != nil: // stopped
			it.id = 0
		case res.Verdict == cluster.TooLate:
			s.byID[it.id] = it
			s.warn.Log(s.log, slog.LevelWarn, "too late "+clusterName+" "+snap.Host, "host snapshot too late for its cluster bucket: only its own metrics are sent",
				"cluster", clusterName, "host", snap.Host, "snapshot", snap.Epoch, "bucket", res.Bucket)
		default:
			s.byID[it.id] = it
			k := cluster.Key{Cluster: clusterName, Bucket: res.Bucket}
			if err := s.store.AddHost(k, snap.Host, snap.Dir); err != nil {
				s.log.Error("host snapshot left out of its cluster bucket: its files cannot be kept", "cluster", clusterName,
					"host", snap.Host, "snapshot", snap.Epoch, "err", err)
				rel = append(rel, s.agg.Exclude(it.id)...)
			}
			if res.Replaced {
				s.log.Info("host snapshot replaces an earlier one of the same host in its cluster bucket", "cluster", clusterName,
					"host", snap.Host, "snapshot", snap.Epoch, "bucket", res.Bucket)
			}
			if res.Verdict == cluster.Late {
				s.log.Info("late host snapshot: its cluster bucket is sent again", "cluster", clusterName,
					"host", snap.Host, "snapshot", snap.Epoch, "bucket", res.Bucket)
			}
			rel = append(rel, res.Releases...)
		}
	}
	if s.agg.Due(s.now()) {
		s.broadcast()
	}
	s.mu.Unlock()
	s.release(rel)
	return name
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Done reports what became of a snapshot handed out: a host snapshot
// delivered is held until its bucket is (then reported to the consumer);
// one not delivered waits for Retry (or, once stopping, goes back to the
// consumer, not delivered); a bucket's outcome goes to the aggregator.
func (s *kafkaSource) Done(name string, delivered bool) {
	s.mu.Lock()
	it := s.out[name]
	if it == nil || it.parked {
		s.mu.Unlock()
		return
	}
	if it.snap == nil {
		delete(s.out, name)
		o := cluster.NotDelivered
		if delivered {
			o = cluster.Delivered
		}
		rel := s.agg.End(s.now(), it.key, o)
		if !delivered && !s.stopping {
			it.parked = true
			s.out[name] = it
		}
		s.mu.Unlock()
		s.release(rel)
		return
	}
	if !delivered {
		if s.stopping {
			snap := s.dropLocked(it)
			s.mu.Unlock()
			s.c.Done(snap, false)
			return
		}
		it.parked = true
		s.mu.Unlock()
		return
	}
	s.hostDoneLocked(it)
}

// hostDoneLocked reports host item it's own metrics delivered (or set
// aside); it unlocks s.mu.
func (s *kafkaSource) hostDoneLocked(it *item) {
	delete(s.out, it.name)
	if it.id == 0 {
		s.mu.Unlock()
		s.c.Done(it.snap, true)
		return
	}
	rel := s.agg.HostDone(it.id)
	if s.agg.Due(s.now()) {
		s.broadcast()
	}
	s.mu.Unlock()
	s.release(rel)
}

// Retry hands a snapshot not delivered out again: a host snapshot from
// this source (before the consumer's newer ones), a bucket when the
// aggregator makes it due again.
func (s *kafkaSource) Retry(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.out[name]
	if it == nil || !it.parked || s.stopping {
		return
	}
	if it.snap == nil {
		delete(s.out, name)
		s.agg.Retry(it.key)
	} else {
		s.retry = append(s.retry, it)
	}
	s.broadcast()
}

// Failed sets aside a snapshot the pipeline cannot process: its directory
// moves to <consumer-dir>/_failed/<host>/<epoch> (a bucket's view to
// _failed/_cluster_<cluster>/<bucket>), of which the newest MaxFailed are
// kept, and it counts as delivered, so that its partition moves on.
func (s *kafkaSource) Failed(name string, err error) {
	s.mu.Lock()
	it := s.out[name]
	if it == nil || it.parked {
		s.mu.Unlock()
		return
	}
	s.st.Failed++
	parent := ""
	if it.snap != nil {
		parent = it.snap.Host
	} else {
		parent = "_cluster_" + it.key.Cluster
	}
	kept := s.setAside(it.dir, parent)
	s.log.Error("snapshot cannot be processed: set aside, counted as delivered so that its partition moves on",
		"snapshot", name, "kept", kept, "err", err)
	if it.snap != nil {
		s.hostDoneLocked(it)
		return
	}
	delete(s.out, name)
	rel := s.agg.End(s.now(), it.key, cluster.Failed)
	s.mu.Unlock()
	s.release(rel)
}

// setAside moves dir to <consumer-dir>/_failed/<parent>/<its name> and
// removes the oldest snapshots set aside beyond MaxFailed; it returns
// where dir went ("" when it could not be moved: it is then removed with
// the snapshot).
func (s *kafkaSource) setAside(dir, parent string) string {
	failed := filepath.Join(s.cfg.Dir, failedDirName)
	dst := filepath.Join(failed, parent, filepath.Base(dir))
	err := os.MkdirAll(filepath.Dir(dst), 0o755)
	if err == nil {
		os.RemoveAll(dst) // the same snapshot set aside before
		err = os.Rename(dir, dst)
	}
	if err != nil {
		s.log.Error("cannot set a snapshot aside", "dir", dir, "to", dst, "err", err)
		return ""
	}
	pruneFailed(failed, MaxFailed, s.log)
	return dst
}

// pruneFailed keeps the newest max snapshot directories (by epoch) of
// dir/<parent>/<epoch>.
func pruneFailed(dir string, max int, log *slog.Logger) {
	type entry struct {
		path  string
		epoch string
	}
	var all []entry
	parents, _ := os.ReadDir(dir)
	for _, p := range parents {
		snaps, _ := os.ReadDir(filepath.Join(dir, p.Name()))
		for _, e := range snaps {
			if spool.IsSnapshotName(e.Name()) {
				all = append(all, entry{filepath.Join(dir, p.Name(), e.Name()), e.Name()})
			}
		}
	}
	if len(all) <= max {
		return
	}
	slices.SortFunc(all, func(a, b entry) int {
		if spool.Less(a.epoch, b.epoch) {
			return -1
		}
		if spool.Less(b.epoch, a.epoch) {
			return 1
		}
		return 0
	})
	for _, e := range all[:len(all)-max] {
		if err := os.RemoveAll(e.path); err != nil {
			log.Error("cannot remove a snapshot set aside", "dir", e.path, "err", err)
		}
		os.Remove(filepath.Dir(e.path)) // its parent, once empty
	}
}

// Process runs the pipeline over a snapshot handed out: a host's with the
// prefix its host would use itself, a bucket's with its cluster's, without
// the per-process lines (they would repeat the hosts' own) and with
// haproxystats.ClusterHosts, the number of hosts it counts.
func (s *kafkaSource) Process(ctx context.Context, name, dir string, w io.Writer) (*engine.Result, error) {
	s.mu.Lock()
	it := s.out[name]
	s.mu.Unlock()
	if it == nil {
		return nil, fmt.Errorf("kafka source: snapshot %s was not handed out", name)
	}
	if it.snap != nil {
		p, err := s.views.host(it.snap.Host)
		if err != nil {
			return nil, err
		}
		return p.ProcessDir(ctx, dir, w)
	}
	p, prefix := s.views.cluster(it.key.Cluster)
	f := &perProcessFilter{w: w, drop: []byte(prefix + ".daemon.process.")}
	res, err := p.ProcessDir(ctx, dir, f)
	if err != nil {
		return res, err
	}
	line := engine.AppendValue([]byte(prefix+".haproxystats.ClusterHosts "), float64(it.hosts))
	line = append(append(append(line, ' '), strconv.FormatInt(it.key.Bucket, 10)...), '\n')
	if _, err := w.Write(line); err != nil {
		return nil, &writeError{err}
	}
	res.Lines += 1 - f.dropped
	res.Bytes += len(line) - f.droppedBytes
	return res, nil
}

// perProcessFilter drops the lines under P.daemon.process. of a cluster
// view: whole lines in, whole lines out.
type perProcessFilter struct {
	w                     io.Writer
	drop                  []byte
	buf                   []byte
	dropped, droppedBytes int
}

func (f *perProcessFilter) Write(p []byte) (int, error) {
	if !bytes.Contains(p, f.drop) {
		return f.w.Write(p)
	}
	f.buf = f.buf[:0]
	for rest := p; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if bytes.HasPrefix(line, f.drop) {
			f.dropped++
			f.droppedBytes += len(line)
			continue
		}
		f.buf = append(f.buf, line...)
	}
	if len(f.buf) > 0 {
		if _, err := f.w.Write(f.buf); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// viewCache holds the pipeline views of the hosts and clusters seen, at
// most MaxHostViews. Safe for concurrent use.
type viewCache struct {
	base  *engine.Pipeline
	paths *engine.Paths
	g     config.Graphite

	mu       sync.Mutex
	hosts    map[string]*engine.Pipeline
	clusters map[string]*engine.Pipeline
}

// host returns the view of host: the prefix the local setup of that host
// would use (prefix-hostname with the host's name).
func (v *viewCache) host(host string) (*engine.Pipeline, error) {
	prefix, err := assemble.Prefix(v.g, host)
	if err != nil {
		return nil, err
	}
	return v.view(&v.hosts, host, prefix), nil
}

// cluster returns the view of a cluster and its prefix.
func (v *viewCache) cluster(name string) (*engine.Pipeline, string) {
	prefix := assemble.ClusterPrefix(v.g, name)
	return v.view(&v.clusters, name, prefix), prefix
}

// view returns the view of key in *m, made with prefix if missing; *m is
// emptied when it holds MaxHostViews.
func (v *viewCache) view(m *map[string]*engine.Pipeline, key, prefix string) *engine.Pipeline {
	v.mu.Lock()
	defer v.mu.Unlock()
	if p := (*m)[key]; p != nil {
		return p
	}
	if *m == nil || len(*m) >= MaxHostViews {
		*m = map[string]*engine.Pipeline{}
	}
	p := v.base.WithPaths(v.paths.WithPrefix(prefix))
	(*m)[key] = p
	return p
}
