package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Config bounds the waiting of an Aggregator.
type Config struct {
	// Interval is the width of a bucket ([process] cluster-interval): a
	// snapshot of epoch e counts in bucket e - e%Interval. Whole seconds,
	// >= 1 s.
	Interval time.Duration
	// Wait is how long a bucket waits for its hosts after its first
	// snapshot arrived (cluster-wait); > 0.
	Wait time.Duration
	// Late is how long after its delivery a bucket is still sent again
	// for a host that arrives late (cluster-late); >= 0.
	Late time.Duration
	// HostsExpiry is how long before a bucket a host must have reported
	// to be expected in it (cluster-hosts-expiry); >= Interval.
	HostsExpiry time.Duration
	// QueueSize is how many host snapshots the source lets the
	// aggregator hold at most ([kafka] consumer-queue-size): when that
	// many are held and no bucket is being sent, the oldest bucket
	// waiting is sent with the hosts it has, since no more can arrive.
	QueueSize int
}

func (c Config) validate() error {
	var errs []error
	if c.Interval < time.Second || c.Interval%time.Second != 0 {
		errs = append(errs, fmt.Errorf("cluster: interval %v is not a whole number of seconds >= 1", c.Interval))
	}
	if c.Wait <= 0 {
		errs = append(errs, fmt.Errorf("cluster: wait %v must be > 0", c.Wait))
	}
	if c.Late < 0 {
		errs = append(errs, fmt.Errorf("cluster: late %v must be >= 0", c.Late))
	}
	if c.HostsExpiry < c.Interval {
		errs = append(errs, fmt.Errorf("cluster: hosts expiry %v must be >= the interval %v", c.HostsExpiry, c.Interval))
	}
	if c.QueueSize < 1 {
		errs = append(errs, fmt.Errorf("cluster: queue size %d must be >= 1", c.QueueSize))
	}
	return errors.Join(errs...)
}

// ID is the caller's name for one host snapshot (a member).
type ID uint64

// Member is one host snapshot handed to Add.
type Member struct {
	ID      ID
	Cluster string
	Host    string
	Epoch   int64
}

// Verdict is what Add made of a member.
type Verdict int

const (
	// Joined: the member counts in a bucket not sent yet.
	Joined Verdict = iota
	// Late: the member counts in a bucket sent already, which is sent
	// again with it.
	Late
	// TooLate: the member counts in no bucket (its bucket was sent and
	// forgotten, or a newer one was sent); only its own metrics are sent.
	TooLate
)

func (v Verdict) String() string {
	switch v {
	case Joined:
		return "joined"
	case Late:
		return "late"
	case TooLate:
		return "too late"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Key names a bucket: a cluster and the bucket's epoch (a multiple of the
// interval, the timestamp of its lines).
type Key struct {
	Cluster string
	Bucket  int64
}

func (k Key) String() string { return fmt.Sprintf("%s/%d", k.Cluster, k.Bucket) }

// Host is one host of an Emission and the member that stands for it.
type Host struct {
	Name string
	ID   ID
}

// Emission is a bucket to compute and send: its hosts, in name order.
type Emission struct {
	Key
	Hosts []Host
	// Again is true when the bucket was sent before (a late host).
	Again bool
	// Why says what made it due: "complete" (every host expected
	// reported), "wait" (cluster-wait passed), "queue full" or "late".
	Why string
}

// Outcome is what became of an Emission.
type Outcome int

const (
	// Delivered: every destination has the bucket's lines.
	Delivered Outcome = iota
	// NotDelivered: the bucket is to be sent again (Retry), or the
	// daemon stops.
	NotDelivered
	// Failed: the bucket cannot be processed; it is set aside and counts
	// as delivered, so that its hosts' offsets move on.
	Failed
	// Moved: the partition of the bucket's hosts moved to another
	// processor, which computes the bucket: it is not sent, and is
	// forgotten; its hosts are released not delivered.
	Moved
)

// Release says that the source may report member ID: Delivered when its
// own metrics and the bucket counting it (if any) were delivered, false
// when the daemon stops before that.
type Release struct {
	ID        ID
	Delivered bool
}

// Stats are an Aggregator's counters (cumulative but Buckets and Held).
type Stats struct {
	Joined, Late, TooLate, Replaced uint64 // members by verdict; replaced by a newer one of the same host and bucket
	Complete, Waited, Forced, Again uint64 // emissions by what made them due
	Delivered, Failed, Moved        uint64 // bucket outcomes
	Forgotten                       uint64 // buckets forgotten
	Buckets, Held                   int    // buckets kept, members not released
}

// Aggregator decides, per cluster, which host snapshots count in which
// bucket, when a bucket is complete or has waited enough, and when a host
// snapshot may be reported delivered; see the package documentation. It
// is not safe for concurrent use: the caller serialises every call (and
// its own file work with it).
type Aggregator struct {
	cfg      Config
	interval int64 // seconds
	expiry   int64 // seconds
	clusters map[string]*clusterState
	members  map[ID]*member
	inFlight int
	stopped  bool
	st       Stats
}

type clusterState struct {
	name    string
	hosts   map[string]*hostState
	buckets map[int64]*bucket
	head    int64 // newest bucket sent; 0 = none
}

type hostState struct {
	first, last int64     // buckets (epochs) it counted in
	seen        time.Time // when it last arrived
}

type bucket struct {
	cs      *clusterState
	epoch   int64
	members map[string]*member // host -> the member that counts
	first   time.Time          // first arrival
	gen     uint64             // changes with the members
	sent    bool               // handed out once at least
	retry   bool               // not delivered, Retry called: due
	parked  bool               // not delivered, waiting for Retry
	flight  *flight            // handed out, not ended
	// delivered: an emission was delivered, of gen deliveredGen, at
	// deliveredAt.
	delivered    bool
	deliveredGen uint64
	deliveredAt  time.Time
}

type flight struct {
	gen     uint64
	members []*member
}

type member struct {
	Member
	b           *bucket // nil: counts in no bucket
	hostDone    bool    // its own metrics delivered (or set aside)
	inDelivered bool    // counted in a delivered emission of b
	moved       bool    // its bucket moved to another processor
	released    bool
}

// New checks cfg and returns an empty Aggregator.
func New(cfg Config) (*Aggregator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Aggregator{
		cfg:      cfg,
		interval: int64(cfg.Interval / time.Second),
		expiry:   int64(cfg.HostsExpiry / time.Second),
		clusters: map[string]*clusterState{},
		members:  map[ID]*member{},
	}, nil
}

// Bucket returns the bucket of epoch.
func (a *Aggregator) Bucket(epoch int64) int64 { return epoch - epoch%a.interval }

// Stats returns the counters.
func (a *Aggregator) Stats() Stats {
	st := a.st
	for _, cs := range a.clusters {
		st.Buckets += len(cs.buckets)
	}
	st.Held = len(a.members)
	return st
}

// Added is what Add made of a member.
type Added struct {
	Verdict Verdict
	Bucket  int64 // the bucket of the member's epoch
	// Replaced is true when a snapshot of the same host in the bucket
	// was replaced by this one (it then counts in no bucket).
	Replaced bool
	// Releases are the members that may be reported now (the replaced
	// one, if its own metrics were delivered).
	Releases []Release
}

// Add takes a host snapshot, at now, and says where it counts. Its ID
// must be new. A second snapshot of a host in one bucket replaces the
// first, which then counts in no bucket and is released once its own
// metrics are delivered. The caller reports the member's own metrics with
// HostDone.
func (a *Aggregator) Add(now time.Time, m Member) (Added, error) {
	if _, dup := a.members[m.ID]; dup {
		return Added{}, fmt.Errorf("cluster: member %d added twice", m.ID)
	}
	if a.stopped {
		return Added{}, errors.New("cluster: stopped")
	}
	cs := a.clusters[m.Cluster]
	if cs == nil {
		cs = &clusterState{name: m.Cluster, hosts: map[string]*hostState{}, buckets: map[int64]*bucket{}}
		a.clusters[m.Cluster] = cs
	}
	mb := &member{Member: m}
	a.members[m.ID] = mb
	res := Added{Bucket: a.Bucket(m.Epoch)}
	hs := cs.hosts[m.Host]
	if hs == nil {
		hs = &hostState{first: res.Bucket, last: res.Bucket}
		cs.hosts[m.Host] = hs
	}
	hs.seen = now
	b := cs.buckets[res.Bucket]
	if b == nil && cs.head != 0 && res.Bucket <= cs.head {
		// Not kept, and a bucket as new or newer was sent: whatever
		// this one was (sent and forgotten, or sent by the processor
		// that had the partition before), a bucket of this host alone
		// must not replace it.
		a.st.TooLate++
		res.Verdict = TooLate
		return res, nil
	}
	hs.first, hs.last = min(hs.first, res.Bucket), max(hs.last, res.Bucket)
	if b == nil {
		b = &bucket{cs: cs, epoch: res.Bucket, members: map[string]*member{}, first: now}
		cs.buckets[res.Bucket] = b
	}
	if old := b.members[m.Host]; old != nil {
		old.b = nil
		a.st.Replaced++
		res.Replaced = true
		a.tryRelease(old, &res.Releases)
	}
	b.members[m.Host] = mb
	b.gen++
	mb.b = b
	if b.sent {
		a.st.Late++
		res.Verdict = Late
		return res, nil
	}
	a.st.Joined++
	res.Verdict = Joined
	return res, nil
}

// HostDone says that member id's own metrics were delivered (or that it
// was set aside): it returns what may be released now.
func (a *Aggregator) HostDone(id ID) []Release {
	m := a.members[id]
	if m == nil || m.hostDone {
		return nil
	}
	m.hostDone = true
	var out []Release
	a.tryRelease(m, &out)
	return out
}

// tryRelease releases m, appending to out, when nothing holds it any
// more: its own metrics are delivered, and its bucket's (it counts in
// none, or in a delivered emission); or, once stopped, when no emission
// in flight counts it (then not delivered).
func (a *Aggregator) tryRelease(m *member, out *[]Release) {
	if m.released || !m.hostDone {
		return
	}
	delivered := (m.b == nil && !m.moved) || m.inDelivered
	if !delivered && !m.moved {
		if !a.stopped || (m.b.flight != nil && slices.Contains(m.b.flight.members, m)) {
			return
		}
	}
	m.released = true
	delete(a.members, m.ID)
	*out = append(*out, Release{ID: m.ID, Delivered: delivered})
}

// complete reports whether every host expected in b reported: a host is
// expected when it counted in a bucket before b, within HostsExpiry
// before b, and not in a newer bucket (one host's snapshots arrive in
// order, so a host that reported a newer bucket skipped this one). A
// bucket of a cluster this aggregator saw no host of before (at the
// start, or after a partition moved here) is never complete: it waits.
func (a *Aggregator) complete(b *bucket) bool {
	history := false
	for name, hs := range b.cs.hosts {
		if hs.first >= b.epoch {
			continue
		}
		history = true
		if b.members[name] == nil && hs.last < b.epoch && b.epoch-hs.last <= a.expiry {
			return false
		}
	}
	return history
}

// due says why b is to be sent now, or "".
func (a *Aggregator) due(now time.Time, b *bucket) string {
	switch {
	case b.flight != nil || b.parked || len(b.members) == 0:
		return ""
	case b.delivered:
		if b.gen != b.deliveredGen {
			return "late"
		}
		return ""
	case b.retry:
		return "retry"
	case b.sent:
		return ""
	case a.complete(b):
		return "complete"
	case !now.Before(b.first.Add(a.cfg.Wait)):
		return "wait"
	}
	return ""
}

// pick returns the oldest bucket due now, and why; with every member held
// waiting for a bucket (QueueSize) and none in flight, the oldest bucket
// never sent.
func (a *Aggregator) pick(now time.Time) (*bucket, string) {
	var best *bucket
	why := ""
	older := func(b *bucket) bool {
		return best == nil || cmp.Or(cmp.Compare(b.epoch, best.epoch), cmp.Compare(b.cs.name, best.cs.name)) < 0
	}
	for _, cs := range a.clusters {
		for _, b := range cs.buckets {
			if w := a.due(now, b); w != "" && older(b) {
				best, why = b, w
			}
		}
	}
	if best != nil || a.inFlight > 0 {
		return best, why
	}
	held := 0
	for _, m := range a.members {
		if m.hostDone {
			held++
		}
	}
	if held < a.cfg.QueueSize {
		return nil, ""
	}
	for _, cs := range a.clusters {
		for _, b := range cs.buckets {
			if !b.sent && b.flight == nil && !b.parked && len(b.members) > 0 && older(b) {
				best, why = b, "queue full"
			}
		}
	}
	return best, why
}

// Due reports whether Next has a bucket to hand out at now.
func (a *Aggregator) Due(now time.Time) bool {
	if a.stopped {
		return false
	}
	b, _ := a.pick(now)
	return b != nil
}

// Next hands out the oldest bucket due at now, if any: the caller
// computes it from the files of its hosts and reports the outcome with
// End. A bucket is handed out once at a time.
func (a *Aggregator) Next(now time.Time) (Emission, bool) {
	if a.stopped {
		return Emission{}, false
	}
	b, why := a.pick(now)
	if b == nil {
		return Emission{}, false
	}
	fl := &flight{gen: b.gen}
	e := Emission{Key: Key{Cluster: b.cs.name, Bucket: b.epoch}, Again: b.sent, Why: why}
	for name, m := range b.members {
		fl.members = append(fl.members, m)
		e.Hosts = append(e.Hosts, Host{Name: name, ID: m.ID})
	}
	slices.SortFunc(e.Hosts, func(x, y Host) int { return cmp.Compare(x.Name, y.Name) })
	b.flight = fl
	a.inFlight++
	b.sent, b.retry = true, false
	b.cs.head = max(b.cs.head, b.epoch)
	switch why {
	case "complete":
		a.st.Complete++
	case "wait":
		a.st.Waited++
	case "queue full":
		a.st.Forced++
	default:
		a.st.Again++
	}
	return e, true
}

// End reports the outcome of the emission of bucket k handed out by Next,
// at now, and returns the members that may be reported now. Not
// delivered, the bucket waits for Retry (or the stop).
func (a *Aggregator) End(now time.Time, k Key, o Outcome) []Release {
	b := a.lookup(k)
	if b == nil || b.flight == nil {
		return nil
	}
	fl := b.flight
	b.flight = nil
	a.inFlight--
	var out []Release
	switch o {
	case Moved:
		a.st.Moved++
		delete(b.cs.buckets, b.epoch)
		for _, m := range b.members {
			m.b, m.moved = nil, true
			a.tryRelease(m, &out)
		}
	case Delivered, Failed:
		if o == Failed {
			a.st.Failed++
		} else {
			a.st.Delivered++
		}
		b.delivered, b.deliveredGen, b.deliveredAt = true, fl.gen, now
		for _, m := range fl.members {
			if m.b == b {
				m.inDelivered = true
				a.tryRelease(m, &out)
			}
		}
	default:
		if !a.stopped {
			b.parked = true
		}
		for _, m := range fl.members {
			a.tryRelease(m, &out)
		}
	}
	return out
}

// Exclude takes member id out of its bucket (its files could not be
// kept): it counts in none, and is released once its own metrics are
// delivered (at once if they are: the releases returned).
func (a *Aggregator) Exclude(id ID) []Release {
	m := a.members[id]
	if m == nil {
		return nil
	}
	a.leave(m)
	var out []Release
	a.tryRelease(m, &out)
	return out
}

// Drop forgets member id, whose own metrics will not be delivered (the
// stop): it is not released; the caller reports it not delivered.
func (a *Aggregator) Drop(id ID) {
	m := a.members[id]
	if m == nil {
		return
	}
	a.leave(m)
	m.released = true
	delete(a.members, id)
}

// leave takes m out of its bucket.
func (a *Aggregator) leave(m *member) {
	if b := m.b; b != nil && b.members[m.Host] == m {
		delete(b.members, m.Host)
		b.gen++
	}
	m.b = nil
}

// Retry makes bucket k, not delivered, due again.
func (a *Aggregator) Retry(k Key) {
	if b := a.lookup(k); b != nil && b.parked {
		b.parked, b.retry = false, true
	}
}

func (a *Aggregator) lookup(k Key) *bucket {
	if cs := a.clusters[k.Cluster]; cs != nil {
		return cs.buckets[k.Bucket]
	}
	return nil
}

// Forget drops, at now, what is no longer needed, and returns the
// buckets forgotten (the caller removes their files): a delivered bucket
// once Late passed since its delivery, or once a bucket Late newer was
// sent (a host of it arriving later is then too late); a bucket left
// without members (Drop, Exclude); a host not seen
// for HostsExpiry and Wait; a cluster left with neither.
func (a *Aggregator) Forget(now time.Time) []Key {
	var out []Key
	late := int64((a.cfg.Late + time.Second - 1) / time.Second)
	for name, cs := range a.clusters {
		for epoch, b := range cs.buckets {
			empty := len(b.members) == 0 && b.flight == nil // its members dropped or excluded
			if !empty && (!b.delivered || b.flight != nil || b.parked || b.gen != b.deliveredGen) {
				continue
			}
			if !empty && now.Before(b.deliveredAt.Add(a.cfg.Late)) && epoch > cs.head-late {
				continue
			}
			delete(cs.buckets, epoch)
			a.st.Forgotten++
			out = append(out, Key{Cluster: name, Bucket: epoch})
		}
		for host, hs := range cs.hosts {
			if now.Sub(hs.seen) > a.cfg.HostsExpiry+a.cfg.Wait {
				delete(cs.hosts, host)
			}
		}
		if len(cs.buckets) == 0 && len(cs.hosts) == 0 {
			delete(a.clusters, name)
		}
	}
	slices.SortFunc(out, func(x, y Key) int { return cmp.Or(cmp.Compare(x.Bucket, y.Bucket), cmp.Compare(x.Cluster, y.Cluster)) })
	return out
}

// Stop ends the aggregation: nothing more is handed out or added, and the
// members are released, not delivered, except those of a delivered
// emission (delivered) and those counted in an emission still in flight,
// which End releases. Members whose own metrics are not delivered yet are
// released by HostDone.
func (a *Aggregator) Stop() []Release {
	a.stopped = true
	var out []Release
	for _, m := range a.members {
		a.tryRelease(m, &out)
	}
	slices.SortFunc(out, func(x, y Release) int { return cmp.Compare(x.ID, y.ID) })
	return out
}
