package cluster

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The tests drive an Aggregator with a fake clock: every call takes the
// time, and nothing sleeps.

var t0 = time.Unix(1_800_000_000, 0)

func newAgg(t *testing.T, queue int) *Aggregator {
	t.Helper()
	a, err := New(Config{Interval: 10 * time.Second, Wait: 10 * time.Second, Late: 30 * time.Second, HostsExpiry: 50 * time.Second, QueueSize: queue})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ids hands out member IDs.
type ids struct{ n ID }

func (i *ids) add(t *testing.T, a *Aggregator, now time.Time, host string, epoch int64) (ID, Added) {
	t.Helper()
	i.n++
	res, err := a.Add(now, Member{ID: i.n, Cluster: "web", Host: host, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	return i.n, res
}

func next(t *testing.T, a *Aggregator, now time.Time, why string, hosts ...string) Emission {
	t.Helper()
	e, ok := a.Next(now)
	if !ok {
		t.Fatalf("Next at %v: nothing, want a bucket due (%s) with %v; stats %+v", now.Sub(t0), why, hosts, a.Stats())
	}
	var got []string
	for _, h := range e.Hosts {
		got = append(got, h.Name)
	}
	if e.Why != why || !slices.Equal(got, hosts) {
		t.Fatalf("Next = %v due %q with %v, want due %q with %v", e.Key, e.Why, got, why, hosts)
	}
	return e
}

func nothing(t *testing.T, a *Aggregator, now time.Time) {
	t.Helper()
	if a.Due(now) {
		t.Fatalf("Due at %v, want nothing due", now.Sub(t0))
	}
	if e, ok := a.Next(now); ok {
		t.Fatalf("Next at %v = %+v, want nothing", now.Sub(t0), e)
	}
}

func released(t *testing.T, got []Release, want ...Release) {
	t.Helper()
	slices.SortFunc(got, func(x, y Release) int { return int(x.ID) - int(y.ID) })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("released %v, want %v", got, want)
	}
}

// learn sends the first bucket of two hosts, which waits Wait (nothing is
// known of the cluster yet), and returns the time after it.
func learn(t *testing.T, a *Aggregator, i *ids) time.Time {
	t.Helper()
	h1, _ := i.add(t, a, t0, "lb1", 1_800_000_001)
	h2, _ := i.add(t, a, t0.Add(time.Second), "lb2", 1_800_000_004)
	released(t, a.HostDone(h1))
	released(t, a.HostDone(h2))
	nothing(t, a, t0.Add(9*time.Second))
	e := next(t, a, t0.Add(10*time.Second), "wait", "lb1", "lb2")
	if e.Bucket != 1_800_000_000 || e.Again {
		t.Fatalf("first bucket %+v", e)
	}
	released(t, a.End(t0.Add(10*time.Second), e.Key, Delivered), Release{h1, true}, Release{h2, true})
	return t0.Add(10 * time.Second)
}

// TestCompleteWithoutWaiting: once the hosts are known, a bucket is sent
// as soon as every one reported, and a host's snapshot is released only
// when its own metrics and the bucket are both delivered, in either order.
func TestCompleteWithoutWaiting(t *testing.T) {
	a := newAgg(t, 16)
	var i ids
	now := learn(t, a, &i)
	h1, res := i.add(t, a, now, "lb1", 1_800_000_011)
	if res.Verdict != Joined || res.Bucket != 1_800_000_010 {
		t.Fatalf("Add = %+v, want joined to 1800000010", res)
	}
	nothing(t, a, now)
	h2, _ := i.add(t, a, now, "lb2", 1_800_000_019)
	released(t, a.HostDone(h1))
	e := next(t, a, now, "complete", "lb1", "lb2")
	released(t, a.End(now, e.Key, Delivered), Release{h1, true})
	released(t, a.HostDone(h2), Release{h2, true})
	if st := a.Stats(); st.Held != 0 || st.Complete != 1 || st.Waited != 1 || st.Joined != 4 {
		t.Errorf("Stats() = %+v", st)
	}
}

// TestWait: a host expected does not report: the bucket goes out
// cluster-wait after its first snapshot arrived, with the hosts it has.
func TestWait(t *testing.T) {
	a := newAgg(t, 16)
	var i ids
	now := learn(t, a, &i)
	h1, _ := i.add(t, a, now, "lb1", 1_800_000_011)
	released(t, a.HostDone(h1))
	nothing(t, a, now.Add(9*time.Second))
	e := next(t, a, now.Add(10*time.Second), "wait", "lb1")
	released(t, a.End(now.Add(10*time.Second), e.Key, Delivered), Release{h1, true})
}

// TestReplaced: a second snapshot of a host in a bucket replaces the
// first, which is released once its own metrics are delivered, and the
// bucket holds the second.
func TestReplaced(t *testing.T) {
	a := newAgg(t, 16)
	var i ids
	now := learn(t, a, &i)
	old, _ := i.add(t, a, now, "lb1", 1_800_000_011)
	released(t, a.HostDone(old))
	h1, res := i.add(t, a, now, "lb1", 1_800_000_015)
	if !res.Replaced || res.Verdict != Joined {
		t.Fatalf("Add of a second snapshot = %+v, want joined, replaced", res)
	}
	released(t, res.Releases, Release{old, true})
	h2, _ := i.add(t, a, now, "lb2", 1_800_000_012)
	e := next(t, a, now, "complete", "lb1", "lb2")
	if e.Hosts[0].ID != h1 {
		t.Errorf("bucket counts member %d of lb1, want the second, %d", e.Hosts[0].ID, h1)
	}
	released(t, a.End(now, e.Key, Delivered))
	released(t, a.HostDone(h2), Release{h2, true})
	released(t, a.HostDone(h1), Release{h1, true})
	if st := a.Stats(); st.Replaced != 1 || st.Held != 0 {
		t.Errorf("Stats() = %+v", st)
	}
}

// TestLateRecomputes: a host arriving after its bucket was sent, within
// cluster-late, makes it sent again with every host; later than that, it
// counts in no bucket.
func TestLateRecomputes(t *testing.T) {
	a := newAgg(t, 16)
	var i ids
	now := learn(t, a, &i)
	h1, _ := i.add(t, a, now, "lb1", 1_800_000_011)
	released(t, a.HostDone(h1))
	e := next(t, a, now.Add(10*time.Second), "wait", "lb1")
	released(t, a.End(now.Add(10*time.Second), e.Key, Delivered), Release{h1, true})

	late, res := i.add(t, a, now.Add(15*time.Second), "lb2", 1_800_000_012)
	if res.Verdict != Late {
		t.Fatalf("Add after the bucket was sent = %+v, want late", res)
	}
	again := next(t, a, now.Add(15*time.Second), "late", "lb1", "lb2")
	if !again.Again || again.Key != e.Key {
		t.Fatalf("recomputation %+v, want bucket %v again", again, e.Key)
	}
	released(t, a.End(now.Add(16*time.Second), again.Key, Delivered))
	released(t, a.HostDone(late), Release{late, true})

	// cluster-late (30 s) after the second delivery the bucket is
	// forgotten (the first bucket, delivered at now, went 30 s after
	// it); a host of it then counts in none.
	if f := a.Forget(now.Add(45 * time.Second)); len(f) != 1 || f[0].Bucket != 1_800_000_000 {
		t.Fatalf("Forget before cluster-late = %v, want the first bucket only", f)
	}
	if f := a.Forget(now.Add(46 * time.Second)); len(f) != 1 || f[0] != e.Key {
		t.Fatalf("Forget after cluster-late = %v, want %v", f, e.Key)
	}
	tooLate, res := i.add(t, a, now.Add(47*time.Second), "lb3", 1_800_000_013)
	if res.Verdict != TooLate {
		t.Fatalf("Add after the bucket was forgotten = %+v, want too late", res)
	}
	released(t, a.HostDone(tooLate), Release{tooLate, true})
	nothing(t, a, now.Add(100*time.Second))
	if st := a.Stats(); st.Late != 1 || st.TooLate != 1 || st.Again != 1 || st.Forgotten != 2 {
		t.Errorf("Stats() = %+v", st)
	}
}

// TestLateBeyondNewerBuckets: buckets are forgotten once a bucket
// cluster-late newer was sent, however fast the snapshots come (a
// backlog), and an unknown bucket older than the newest sent is too late:
// a bucket of one late host never replaces a complete one.
func TestLateBeyondNewerBuckets(t *testing.T) {
	a := newAgg(t, 16)
	var i ids
	now := learn(t, a, &i)
	for b := int64(1); b <= 3; b++ {
		x, _ := i.add(t, a, now, "lb1", 1_800_000_000+10*b)
		y, _ := i.add(t, a, now, "lb2", 1_800_000_000+10*b)
		a.HostDone(x)
		a.HostDone(y)
		e := next(t, a, now, "complete", "lb1", "lb2")
		released(t, a.End(now, e.Key, Delivered), Release{x, true}, Release{y, true})
	}
	if f := a.Forget(now); len(f) != 1 || f[0].Bucket != 1_800_000_000 {
		t.Fatalf("Forget with buckets 0 to 30 sent = %v, want bucket 0 only (30 s older than the newest)", f)
	}
	if _, res := i.add(t, a, now, "lb3", 1_800_000_005); res.Verdict != TooLate {
		t.Errorf("Add to a forgotten bucket = %+v, want too late", res)
	}
	if _, res := i.add(t, a, now, "lb3", 1_800_000_025); res.Verdict != Late {
		t.Errorf("Add to a bucket kept = %+v, want late", res)
	}
}

// TestUnknownOlderBucketTooLate: after a bucket was sent, a snapshot of an
// older bucket never seen here (sent by the processor that had the
// partition before) counts in none.
func TestUnknownOlderBucketTooLate(t *testing.T) {
	a := newAgg(t, 16)
	var i ids
	learn(t, a, &i)
	if _, res := i.add(t, a, t0.Add(11*time.Second), "lb3", 1_799_999_990); res.Verdict != TooLate {
		t.Errorf("Add of a bucket older than the newest sent = %+v, want too late", res)
	}
}

// TestHostsExpiry: a host is expected while it reported within
// cluster-hosts-expiry before the bucket, not after; a host that reported
// a newer bucket skipped this one and is not waited for.
func TestHostsExpiry(t *testing.T) {
	a := newAgg(t, 16)
	var i ids
	now := learn(t, a, &i)
	// lb2 stops reporting after bucket 0: buckets 10..50 wait for it
	// (within 50 s), bucket 60 does not.
	for b := int64(1); b <= 6; b++ {
		x, _ := i.add(t, a, now, "lb1", 1_800_000_000+10*b)
		a.HostDone(x)
		if b <= 5 {
			nothing(t, a, now)
			next(t, a, now.Add(10*time.Second), "wait", "lb1")
		} else {
			next(t, a, now, "complete", "lb1")
		}
		now = now.Add(10 * time.Second)
		a.End(now, Key{"web", 1_800_000_000 + 10*b}, Delivered)
	}
	// lb2 reports bucket 80 but not 70: bucket 70 of lb1 does not wait
	// for it.
	y, _ := i.add(t, a, now, "lb2", 1_800_000_080)
	a.HostDone(y)
	x, _ := i.add(t, a, now, "lb1", 1_800_000_070)
	a.HostDone(x)
	next(t, a, now, "complete", "lb1")
}

// TestQueueFull: with as many snapshots held as the source allows, none
// can arrive any more: the oldest bucket goes out with what it has at
// once, not after cluster-wait, and its late hosts make it sent again.
func TestQueueFull(t *testing.T) {
	a := newAgg(t, 3)
	var i ids
	now := learn(t, a, &i)
	var held []ID
	for b := int64(1); b <= 3; b++ {
		h, _ := i.add(t, a, now, "lb1", 1_800_000_001+10*b)
		nothing(t, a, now) // its own metrics are not delivered yet
		a.HostDone(h)
		held = append(held, h)
		if b < 3 {
			nothing(t, a, now) // held b of 3
		}
	}
	e := next(t, a, now, "queue full", "lb1")
	if e.Bucket != 1_800_000_010 {
		t.Fatalf("forced bucket %v, want the oldest, 1800000010", e.Key)
	}
	nothing(t, a, now) // one in flight: its delivery makes room
	released(t, a.End(now, e.Key, Delivered), Release{held[0], true})
	nothing(t, a, now)
	// Room again: lb2's snapshot of bucket 10 arrives late.
	h2, res := i.add(t, a, now, "lb2", 1_800_000_012)
	if res.Verdict != Late {
		t.Fatalf("Add = %+v, want late", res)
	}
	a.HostDone(h2)
	next(t, a, now, "late", "lb1", "lb2")
	if st := a.Stats(); st.Forced != 1 {
		t.Errorf("Stats() = %+v, want 1 forced", st)
	}
}

// TestNotDeliveredRetry: a bucket not delivered waits for Retry, then
// goes out again with the hosts it has then; its hosts stay held.
func TestNotDeliveredRetry(t *testing.T) {
	a := newAgg(t, 16)
	var i ids
	now := learn(t, a, &i)
	h1, _ := i.add(t, a, now, "lb1", 1_800_000_011)
	h2, _ := i.add(t, a, now, "lb2", 1_800_000_011)
	a.HostDone(h1)
	a.HostDone(h2)
	e := next(t, a, now, "complete", "lb1", "lb2")
	released(t, a.End(now, e.Key, NotDelivered))
	nothing(t, a, now.Add(time.Hour))
	a.Retry(e.Key)
	e = next(t, a, now, "retry", "lb1", "lb2")
	released(t, a.End(now, e.Key, Failed), Release{h1, true}, Release{h2, true})
	if st := a.Stats(); st.Failed != 1 || st.Delivered != 1 {
		t.Errorf("Stats() = %+v", st)
	}
}

// TestStop: at the stop, held snapshots are released not delivered,
// except those of a bucket in flight, which its End releases, and those
// whose own metrics are still being delivered, which HostDone releases.
func TestStop(t *testing.T) {
	a := newAgg(t, 16)
	var i ids
	now := learn(t, a, &i)
	h1, _ := i.add(t, a, now, "lb1", 1_800_000_011)
	h2, _ := i.add(t, a, now, "lb2", 1_800_000_011)
	a.HostDone(h1)
	a.HostDone(h2)
	e := next(t, a, now, "complete", "lb1", "lb2")
	w1, _ := i.add(t, a, now, "lb1", 1_800_000_021) // waiting for lb2
	a.HostDone(w1)
	w2, _ := i.add(t, a, now, "lb1", 1_800_000_031) // own metrics in flight
	released(t, a.Stop(), Release{w1, false})
	if _, err := a.Add(now, Member{ID: 99, Cluster: "web", Host: "lb9", Epoch: 1}); err == nil {
		t.Error("Add after Stop succeeded")
	}
	nothing(t, a, now.Add(time.Hour))
	released(t, a.End(now, e.Key, Delivered), Release{h1, true}, Release{h2, true})
	released(t, a.HostDone(w2), Release{w2, false})
	if st := a.Stats(); st.Held != 0 {
		t.Errorf("Stats() = %+v, want nothing held", st)
	}
}

// TestClusters: buckets of several clusters are independent, and handed
// out oldest first.
func TestClusters(t *testing.T) {
	a := newAgg(t, 16)
	for n, m := range []Member{{1, "db", "lb3", 1_800_000_020}, {2, "web", "lb1", 1_800_000_010}, {3, "web", "lb2", 1_800_000_030}} {
		if _, err := a.Add(t0, m); err != nil {
			t.Fatal(n, err)
		}
		a.HostDone(m.ID)
	}
	for _, want := range []Key{{"web", 1_800_000_010}, {"db", 1_800_000_020}, {"web", 1_800_000_030}} {
		e, ok := a.Next(t0.Add(time.Minute))
		if !ok || e.Key != want {
			t.Fatalf("Next = %v, %v; want %v", e.Key, ok, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Interval: 1500 * time.Millisecond, Wait: time.Second, HostsExpiry: 2 * time.Second, QueueSize: 1},
		{Interval: time.Second, Wait: 0, HostsExpiry: time.Second, QueueSize: 1},
		{Interval: time.Second, Wait: time.Second, Late: -1, HostsExpiry: time.Second, QueueSize: 1},
		{Interval: 10 * time.Second, Wait: time.Second, HostsExpiry: time.Second, QueueSize: 1},
		{Interval: time.Second, Wait: time.Second, HostsExpiry: time.Second, QueueSize: 0},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// TestExcludeDropMoved: a member excluded from its bucket (its files could
// not be kept) counts in none and is released once its own metrics are
// delivered; a bucket left without members is never sent and is
// forgotten; a bucket whose partition moved is not sent, is forgotten,
// and releases its members not delivered.
func TestExcludeDropMoved(t *testing.T) {
	a := newAgg(t, 16)
	var i ids
	now := learn(t, a, &i)
	x, _ := i.add(t, a, now, "lb1", 1_800_000_011)
	released(t, a.Exclude(x))
	released(t, a.HostDone(x), Release{x, true})
	nothing(t, a, now.Add(time.Hour))
	if f := a.Forget(now.Add(time.Minute)); len(f) != 2 {
		t.Errorf("Forget = %v, want the first bucket and the empty one", f)
	}

	y, _ := i.add(t, a, now, "lb1", 1_800_000_021)
	z, _ := i.add(t, a, now, "lb2", 1_800_000_021)
	a.HostDone(y)
	e := next(t, a, now.Add(time.Minute), "complete", "lb1", "lb2")
	released(t, a.End(now, e.Key, Moved), Release{y, false})
	released(t, a.HostDone(z), Release{z, false})
	if a.lookup(e.Key) != nil {
		t.Errorf("bucket %v kept after it moved", e.Key)
	}

	w, _ := i.add(t, a, now, "lb1", 1_800_000_031)
	a.Drop(w)
	released(t, a.HostDone(w))
	if st := a.Stats(); st.Held != 0 || st.Moved != 1 {
		t.Errorf("Stats() = %+v", st)
	}
}
