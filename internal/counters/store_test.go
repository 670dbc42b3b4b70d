package counters

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// counterNames are the counters of the test part.
var counterNames = []string{"stot", "bin"}

// proc is one process of a test snapshot: its socket name and, per object
// key, its counter values.
type proc struct {
	socket string
	objs   map[string][]float64
}

func wk(master string, mpid, pid int, leaving bool, objs map[string][]float64) proc {
	return proc{spool.WorkerSocketName(master, mpid, pid, leaving), objs}
}

func plain(name string, objs map[string][]float64) proc { return proc{name, objs} }

// obj is a one-object map for proc.
func obj(key string, vals ...float64) map[string][]float64 {
	return map[string][]float64{key: vals}
}

// fillSample loads procs into s (reset first); objects are registered in
// key order.
func fillSample(s *Sample, procs []proc) {
	s.Reset()
	keys := map[string]bool{}
	for _, p := range procs {
		for k := range p.objs {
			keys[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		s.Object(strings.Split(k, "\x00")...)
	}
	for _, p := range procs {
		w := s.Worker(p.socket)
		for _, k := range slices.Sorted(maps.Keys(p.objs)) {
			o := s.Object(strings.Split(k, "\x00")...)
			for c, v := range p.objs[k] {
				s.Add(w, o, c, v)
			}
		}
	}
}

// sent returns what would be sent for key and counter c: the sum over the
// processes plus the offset.
func sent(t *testing.T, s *Sample, procs []proc, key string, c int) float64 {
	t.Helper()
	var sum float64
	for _, p := range procs {
		if v, ok := p.objs[key]; ok {
			sum += v[c]
		}
	}
	for o := range s.Objects() {
		if s.Key(o) == key {
			return sum + s.Offset(o, c)
		}
	}
	t.Fatalf("object %q not in the sample", key)
	return 0
}

// harness drives one part of a store.
type harness struct {
	t     *testing.T
	store *Store
	part  *Part
	s     *Sample
	log   *bytes.Buffer
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	var buf bytes.Buffer
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	st, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	p, err := st.Part("frontend", counterNames)
	if err != nil {
		t.Fatalf("Part: %v", err)
	}
	return &harness{t: t, store: st, part: p, s: p.NewSample(), log: &buf}
}

// step advances snapshot ts with procs and returns what is sent for key,
// per counter.
func (h *harness) step(ts int64, key string, procs ...proc) []float64 {
	h.t.Helper()
	fillSample(h.s, procs)
	h.store.Pending(ts)
	if _, err := h.part.Advance(context.Background(), ts, h.s); err != nil {
		h.t.Fatalf("Advance(%d): %v", ts, err)
	}
	if err := h.store.Done(ts); err != nil {
		h.t.Fatalf("Done(%d): %v", ts, err)
	}
	out := make([]float64, len(counterNames))
	for c := range out {
		out[c] = sent(h.t, h.s, procs, key, c)
	}
	return out
}

func (h *harness) want(ts int64, key string, want []float64, procs ...proc) {
	h.t.Helper()
	if got := h.step(ts, key, procs...); !slices.Equal(got, want) {
		h.t.Errorf("snapshot %d: %s sent %v, want %v\nlog:\n%s", ts, strings.ReplaceAll(key, "\x00", "/"), got, want, h.log)
	}
}

var fe = Key("frontend", "fe1")

func TestReloadCarriesLeavingWorker(t *testing.T) {
	h := newHarness(t, Options{})
	const m = "haproxy-master.sock"
	h.want(100, fe, []float64{10, 1000}, wk(m, 7, 11, false, obj(fe, 10, 1000)))
	// Reload: 11 is leaving, 12 current.
	h.want(110, fe, []float64{17, 1700}, wk(m, 7, 11, true, obj(fe, 15, 1500)), wk(m, 7, 12, false, obj(fe, 2, 200)))
	// 11 exited: its last values are carried.
	h.want(120, fe, []float64{20, 2000}, wk(m, 7, 12, false, obj(fe, 5, 500)))
	h.want(130, fe, []float64{21, 2100}, wk(m, 7, 12, false, obj(fe, 6, 600)))
	// After the grace, 11 is folded into the carried values: same sums.
	h.want(140, fe, []float64{22, 2200}, wk(m, 7, 12, false, obj(fe, 7, 700)))
	in := h.part.st.insts[0]
	if len(in.workers) != 1 || in.workers[0].pid != 12 || in.carried == nil {
		t.Errorf("after the grace: workers %v, carried %v; want only 12, carried set", in.workers, in.carried)
	}
}

func TestTwoReloads(t *testing.T) {
	h := newHarness(t, Options{})
	const m = "m.sock"
	h.want(100, fe, []float64{10, 0}, wk(m, 7, 11, false, obj(fe, 10, 0)))
	h.want(110, fe, []float64{13, 0}, wk(m, 7, 11, true, obj(fe, 12, 0)), wk(m, 7, 12, false, obj(fe, 1, 0)))
	// Second reload while 11 still lingers: 12 leaves too.
	h.want(120, fe, []float64{18, 0}, wk(m, 7, 11, true, obj(fe, 13, 0)), wk(m, 7, 12, true, obj(fe, 3, 0)), wk(m, 7, 13, false, obj(fe, 2, 0)))
	h.want(130, fe, []float64{20, 0}, wk(m, 7, 13, false, obj(fe, 4, 0)))
	for ts := int64(140); ts <= 180; ts += 10 {
		h.want(ts, fe, []float64{20, 0}, wk(m, 7, 13, false, obj(fe, 4, 0)))
	}
	h.want(190, fe, []float64{26, 0}, wk(m, 7, 13, false, obj(fe, 10, 0)))
}

func TestRestartResets(t *testing.T) {
	h := newHarness(t, Options{})
	const m = "m.sock"
	h.want(100, fe, []float64{10, 0}, wk(m, 7, 11, false, obj(fe, 10, 0)))
	h.want(110, fe, []float64{11, 0}, wk(m, 7, 12, false, obj(fe, 1, 0)))
	// New master PID: HAProxy restarted, the sum starts again.
	h.want(120, fe, []float64{3, 0}, wk(m, 8, 21, false, obj(fe, 3, 0)))
	h.want(130, fe, []float64{4, 0}, wk(m, 8, 21, false, obj(fe, 4, 0)))
	if !strings.Contains(h.log.String(), "HAProxy restarted") {
		t.Errorf("no restart logged:\n%s", h.log)
	}
}

func TestClearedCountersReset(t *testing.T) {
	h := newHarness(t, Options{})
	const m = "m.sock"
	other := Key("frontend", "fe2")
	h.want(100, fe, []float64{10, 5}, wk(m, 7, 11, false, map[string][]float64{fe: {10, 5}, other: {1, 1}}))
	h.want(110, fe, []float64{11, 6}, wk(m, 7, 12, false, map[string][]float64{fe: {1, 1}, other: {0, 0}}))
	h.want(120, fe, []float64{13, 8}, wk(m, 7, 12, false, map[string][]float64{fe: {3, 3}, other: {0, 0}}))
	// clear counters all: fe's stot went down; the whole instance (fe2
	// too, whose counters stayed at 0) starts again from its live values.
	procs := []proc{wk(m, 7, 12, false, map[string][]float64{fe: {0, 9}, other: {0, 0}})}
	if got, want := h.step(130, fe, procs...), []float64{0, 9}; !slices.Equal(got, want) {
		t.Errorf("after clear: fe sent %v, want %v", got, want)
	}
	if got := sent(t, h.s, procs, other, 0); got != 0 {
		t.Errorf("after clear: fe2 stot sent %v, want 0", got)
	}
	h.want(140, fe, []float64{2, 10}, wk(m, 7, 12, false, obj(fe, 2, 10)))
	if !strings.Contains(h.log.String(), "counter went down") {
		t.Errorf("no clear logged:\n%s", h.log)
	}
}

func TestPlainSocketRestartShowsAsReset(t *testing.T) {
	h := newHarness(t, Options{})
	h.want(100, fe, []float64{10, 0}, plain("haproxy.sock", obj(fe, 10, 0)))
	h.want(110, fe, []float64{12, 0}, plain("haproxy.sock", obj(fe, 12, 0)))
	h.want(120, fe, []float64{1, 0}, plain("haproxy.sock", obj(fe, 1, 0)))
	h.want(130, fe, []float64{2, 0}, plain("haproxy.sock", obj(fe, 2, 0)))
}

func TestAbsentInstanceKeepsCounting(t *testing.T) {
	h := newHarness(t, Options{})
	a := wk("a.sock", 7, 11, false, obj(fe, 10, 0))
	b := wk("b.sock", 8, 21, false, obj(fe, 5, 0))
	h.want(100, fe, []float64{15, 0}, a, b)
	// b not pulled: it counts with its last values.
	h.want(110, fe, []float64{16, 0}, wk("a.sock", 7, 11, false, obj(fe, 11, 0)))
	// back with the same master PID: it goes on where it was.
	h.want(120, fe, []float64{19, 0}, wk("a.sock", 7, 11, false, obj(fe, 12, 0)), wk("b.sock", 8, 21, false, obj(fe, 7, 0)))
	// A plain socket absent the same way.
	h.want(130, fe, []float64{22, 0}, wk("a.sock", 7, 11, false, obj(fe, 12, 0)), wk("b.sock", 8, 21, false, obj(fe, 7, 0)), plain("c.sock", obj(fe, 3, 0)))
	h.want(140, fe, []float64{22, 0}, wk("a.sock", 7, 11, false, obj(fe, 12, 0)), wk("b.sock", 8, 21, false, obj(fe, 7, 0)))
}

func TestWorkerMissingOnceIsNotCountedTwice(t *testing.T) {
	h := newHarness(t, Options{})
	const m = "m.sock"
	h.want(100, fe, []float64{15, 0}, wk(m, 7, 11, false, obj(fe, 10, 0)), wk(m, 7, 12, false, obj(fe, 5, 0)))
	// 12's file was unusable in this snapshot.
	h.want(110, fe, []float64{16, 0}, wk(m, 7, 11, false, obj(fe, 11, 0)))
	// back: its own values, not its own values plus its carried ones.
	h.want(120, fe, []float64{18, 0}, wk(m, 7, 11, false, obj(fe, 12, 0)), wk(m, 7, 12, false, obj(fe, 6, 0)))
	h.want(130, fe, []float64{18, 0}, wk(m, 7, 11, false, obj(fe, 12, 0)), wk(m, 7, 12, false, obj(fe, 6, 0)))
}

func TestObjectsOfInstancesSum(t *testing.T) {
	// Two instances with the same frontend: the offsets add up; a reset of
	// one shows as a drop of the sum.
	h := newHarness(t, Options{})
	h.want(100, fe, []float64{15, 0}, wk("a", 7, 11, false, obj(fe, 10, 0)), wk("b", 8, 21, false, obj(fe, 5, 0)))
	h.want(110, fe, []float64{17, 0}, wk("a", 7, 12, false, obj(fe, 1, 0)), wk("b", 8, 22, false, obj(fe, 1, 0)))
	h.want(120, fe, []float64{15, 0}, wk("a", 7, 12, false, obj(fe, 2, 0)), wk("b", 9, 31, false, obj(fe, 3, 0)))
}

func TestReplaySameOffsets(t *testing.T) {
	h := newHarness(t, Options{})
	const m = "m.sock"
	snaps := [][]proc{
		{wk(m, 7, 11, false, obj(fe, 10, 0))},
		{wk(m, 7, 12, false, obj(fe, 1, 0))},
		{wk(m, 7, 12, false, obj(fe, 2, 0))},
		{wk(m, 7, 13, false, obj(fe, 1, 0))},
		{wk(m, 7, 13, false, obj(fe, 2, 0))},
	}
	var first [][]float64
	for i, procs := range snaps {
		first = append(first, h.step(int64(100+10*i), fe, procs...))
	}
	for i := len(snaps) - 1; i >= 0; i-- {
		ts := int64(100 + 10*i)
		fillSample(h.s, snaps[i])
		out, err := h.part.Advance(context.Background(), ts, h.s)
		if err != nil || out != Repeated {
			t.Fatalf("replay of %d: %v, %v; want Repeated", ts, out, err)
		}
		if got := []float64{sent(t, h.s, snaps[i], fe, 0), sent(t, h.s, snaps[i], fe, 1)}; !slices.Equal(got, first[i]) {
			t.Errorf("replay of %d sent %v, the first time %v", ts, got, first[i])
		}
	}
	// A snapshot never advanced, between two advanced ones: the offsets of
	// the snapshot before it.
	fillSample(h.s, snaps[1])
	if out, err := h.part.Advance(context.Background(), 115, h.s); err != nil || out != Repeated {
		t.Errorf("replay of 115: %v, %v; want Repeated", out, err)
	}
	// Older than everything kept.
	fillSample(h.s, snaps[0])
	if out, err := h.part.Advance(context.Background(), 50, h.s); err != nil || out != Approximated {
		t.Errorf("replay of 50: %v, %v; want Approximated", out, err)
	}
}

// TestOutOfOrder advances snapshots from many goroutines in random order,
// the daemon's way (Pending in order, Done after), and checks the offsets
// equal those of a sequential run.
func TestOutOfOrder(t *testing.T) {
	const n = 60
	snaps := make([][]proc, n)
	pid, mpid := 100, 7
	count := map[int]float64{}
	var live []int
	live = append(live, pid)
	for i := range n {
		switch {
		case i%17 == 16: // restart
			mpid++
			pid++
			live = []int{pid}
		case i%5 == 4: // reload: the newest becomes leaving, a new one starts
			pid++
			live = append(live, pid)
		}
		if len(live) > 2 && i%3 == 0 { // the oldest leaving worker exits
			live = live[1:]
		}
		var procs []proc
		for j, p := range live {
			count[p] += float64(1 + j)
			procs = append(procs, wk("m", mpid, p, j < len(live)-1, obj(fe, count[p], 2*count[p])))
		}
		procs = append(procs, plain("legacy.sock", obj(fe, float64(i), 0)))
		snaps[i] = procs
	}
	seq := newHarness(t, Options{})
	want := make([][]float64, n)
	for i, procs := range snaps {
		want[i] = seq.step(int64(1000+10*i), fe, procs...)
	}

	con := newHarness(t, Options{})
	for i := range n {
		con.store.Pending(int64(1000 + 10*i))
	}
	got := make([][]float64, n)
	errs := make(chan error, n)
	start := make(chan struct{})
	perm := make([]int, n)
	for i := range perm {
		perm[i] = (i*37 + 11) % n // a fixed shuffle
	}
	done := make(chan int, n)
	for _, i := range perm {
		go func() {
			<-start
			s := con.part.NewSample()
			fillSample(s, snaps[i])
			ts := int64(1000 + 10*i)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := con.part.Advance(ctx, ts, s)
			if err == nil {
				got[i] = []float64{sent(t, s, snaps[i], fe, 0), sent(t, s, snaps[i], fe, 1)}
				err = con.store.Done(ts)
			}
			errs <- err
			done <- i
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		<-done
	}
	for i := range n {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("snapshot %d: concurrent %v, sequential %v", i, got[i], want[i])
		}
	}
}

func TestAdvanceWaitsForPending(t *testing.T) {
	h := newHarness(t, Options{})
	h.store.Pending(100)
	h.store.Pending(110)
	fillSample(h.s, []proc{wk("m", 7, 11, false, obj(fe, 1, 0))})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.part.Advance(ctx, 110, h.s); err == nil || !strings.Contains(err.Error(), "waiting for snapshot 100") {
		t.Fatalf("Advance(110) with 100 pending = %v, want a wait error naming 100", err)
	}
	// 100 failed before advancing: Done releases 110.
	if err := h.store.Done(100); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	if out, err := h.part.Advance(ctx2, 110, h.s); err != nil || out != Advanced {
		t.Fatalf("Advance(110) after Done(100) = %v, %v", out, err)
	}
	// 100 processed again later (a retry): older than the state.
	if out, err := h.part.Advance(ctx2, 100, h.s); err != nil || out != Approximated {
		t.Fatalf("Advance(100) after 110 = %v, %v; want Approximated", out, err)
	}
}

func TestPersistAndCrashReplay(t *testing.T) {
	dir := t.TempDir()
	const m = "m.sock"
	snaps := [][]proc{
		{wk(m, 7, 11, false, obj(fe, 10, 100))},
		{wk(m, 7, 11, true, obj(fe, 12, 120)), wk(m, 7, 12, false, obj(fe, 1, 10))},
		{wk(m, 7, 12, false, obj(fe, 3, 30))},
		{wk(m, 7, 12, false, obj(fe, 4, 40))},
		{wk(m, 7, 12, false, obj(fe, 5, 50))}, // 11 folded into the carried values
		{wk(m, 7, 12, false, obj(fe, 6, 60))},
		{wk(m, 7, 12, false, obj(fe, 7, 70))},
		{wk(m, 7, 13, false, obj(fe, 1, 10))},
		{wk(m, 7, 13, false, obj(fe, 2, 20))},
	}
	ts := func(i int) int64 { return int64(100 + 10*i) }

	// The reference: one store that never stops.
	ref := newHarness(t, Options{})
	want := make([][]float64, len(snaps))
	for i, p := range snaps {
		want[i] = ref.step(ts(i), fe, p...)
	}

	a := newHarness(t, Options{Dir: dir})
	for i := range 6 {
		a.step(ts(i), fe, snaps[i]...) // Done: written
	}
	// Snapshot 6 advanced, then the process crashed before Done(6).
	fillSample(a.s, snaps[6])
	a.store.Pending(ts(6))
	if _, err := a.part.Advance(context.Background(), ts(6), a.s); err != nil {
		t.Fatal(err)
	}

	// Restart: snapshots 1 to 6 are still in the spool.
	b := newHarness(t, Options{Dir: dir})
	for i := 1; i < len(snaps); i++ {
		if got := b.step(ts(i), fe, snaps[i]...); !slices.Equal(got, want[i]) {
			t.Errorf("after restart, snapshot %d sent %v, want %v", i, got, want[i])
		}
	}

	// And a state written after advancing 6 (Done of 6 reached): 6 is a
	// replay from the recorded offsets.
	dir2 := t.TempDir()
	c := newHarness(t, Options{Dir: dir2})
	for i := range 7 {
		c.step(ts(i), fe, snaps[i]...)
	}
	d := newHarness(t, Options{Dir: dir2})
	for i := 1; i < len(snaps); i++ {
		if got := d.step(ts(i), fe, snaps[i]...); !slices.Equal(got, want[i]) {
			t.Errorf("after restart (state at 6), snapshot %d sent %v, want %v", i, got, want[i])
		}
	}
}

func TestCorruptStateFile(t *testing.T) {
	good := t.TempDir()
	h := newHarness(t, Options{Dir: good})
	h.step(100, fe, wk("m", 7, 11, false, obj(fe, 10, 0)))
	h.step(110, fe, wk("m", 7, 12, false, obj(fe, 1, 0)))
	data, err := os.ReadFile(filepath.Join(good, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0x40
	for name, content := range map[string][]byte{
		"garbage":   []byte("not a state file at all"),
		"truncated": data[:len(data)-7],
		"flipped":   flipped,
		"empty":     {},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, StateFile)
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, Options{Dir: dir})
			if !strings.Contains(h.log.String(), path) || !strings.Contains(h.log.String(), "level=ERROR") {
				t.Errorf("log does not name %s at error level:\n%s", path, h.log)
			}
			kept, err := os.ReadFile(path + ".corrupt")
			if err != nil || !bytes.Equal(kept, content) {
				t.Errorf("corrupt file not kept as %s.corrupt: %v", path, err)
			}
			// Starts empty: no offsets, and it writes a good state again.
			h.want(120, fe, []float64{2, 0}, wk("m", 7, 12, false, obj(fe, 2, 0)))
			if _, err := decodeState(mustRead(t, path)); err != nil {
				t.Errorf("state written after a corrupt one: %v", err)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChurnIsBounded(t *testing.T) {
	const expiry = 100 // snapshot seconds: 10 snapshots
	h := newHarness(t, Options{Expiry: expiry})
	for i := range 500 {
		ts := int64(1000 + 10*i)
		objs := map[string][]float64{}
		for j := range 20 { // 20 objects per snapshot, 5 new each time
			objs[Key("frontend", "fe"+strconv.Itoa(5*i+j))] = []float64{1, 1}
		}
		pid := 10 + i/7 // a reload every 7 snapshots
		h.step(ts, fe2(objs), wk("m", 7, pid, false, objs))
	}
	st := h.part.st
	if n := len(st.ids); n > 20*(expiry/10+2) {
		t.Errorf("%d objects known after 500 snapshots of churn, want at most %d", n, 20*(expiry/10+2))
	}
	if n := len(st.keys); n > 2*20*(expiry/10+2) {
		t.Errorf("key table of %d entries", n)
	}
	if n := len(st.versions); n > DefaultMaxVersions {
		t.Errorf("%d versions kept, want at most %d", n, DefaultMaxVersions)
	}
	if n := len(h.s.ikeys); n > 2*20+1024 {
		t.Errorf("sample intern table of %d keys", n)
	}
}

// fe2 returns one key of objs, for step.
func fe2(objs map[string][]float64) string {
	for k := range objs {
		return k
	}
	return ""
}

func TestExpiry(t *testing.T) {
	h := newHarness(t, Options{Expiry: 30})
	other := Key("frontend", "gone")
	h.want(100, fe, []float64{15, 0}, wk("a", 7, 11, false, obj(fe, 10, 0)), wk("b", 8, 21, false, map[string][]float64{fe: {5, 0}, other: {1, 0}}))
	// b absent: frozen until the expiry.
	h.want(110, fe, []float64{16, 0}, wk("a", 7, 11, false, obj(fe, 11, 0)))
	h.want(130, fe, []float64{17, 0}, wk("a", 7, 11, false, obj(fe, 12, 0)))
	h.want(140, fe, []float64{13, 0}, wk("a", 7, 11, false, obj(fe, 13, 0)))
	if _, ok := h.part.st.ids[other]; ok {
		t.Errorf("object of an expired instance still known")
	}
	// A part not advanced for longer than the expiry starts empty.
	h.want(150, fe, []float64{15, 0}, wk("a", 7, 12, false, obj(fe, 1, 0)), wk("a", 7, 11, true, obj(fe, 14, 0)))
	h.want(160, fe, []float64{16, 0}, wk("a", 7, 12, false, obj(fe, 2, 0)))
	h.want(200, fe, []float64{3, 0}, wk("a", 7, 12, false, obj(fe, 3, 0)))
	if !strings.Contains(h.log.String(), "starts empty") {
		t.Errorf("no part reset logged:\n%s", h.log)
	}
}

func TestPartCountersChange(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, Options{Dir: dir})
	h.step(100, fe, wk("m", 7, 11, false, obj(fe, 10, 100)))
	h.step(110, fe, wk("m", 7, 12, false, obj(fe, 1, 10)))
	st, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Part("frontend", []string{"bin", "req_tot"})
	if err != nil {
		t.Fatal(err)
	}
	s := p.NewSample()
	procs := []proc{wk("m", 7, 12, false, obj(fe, 20, 3))}
	fillSample(s, procs)
	if _, err := p.Advance(context.Background(), 120, s); err != nil {
		t.Fatal(err)
	}
	// bin keeps its carried 100; req_tot is new and starts at 0.
	if got := []float64{sent(t, s, procs, fe, 0), sent(t, s, procs, fe, 1)}; !slices.Equal(got, []float64{120, 3}) {
		t.Errorf("after a counter change: %v, want [120 3]", got)
	}
	if _, err := st.Part("frontend", []string{"bin"}); err == nil {
		t.Errorf("Part with other counters for the same name: no error")
	}
}

func TestSampleReuse(t *testing.T) {
	h := newHarness(t, Options{})
	procs := []proc{wk("m", 7, 11, false, map[string][]float64{fe: {1, 2}, Key("frontend", "x"): {3, 4}})}
	fillSample(h.s, procs)
	allocs := testing.AllocsPerRun(20, func() { fillSample(h.s, procs) })
	// fillSample itself allocates for its sorting and splitting; the
	// sample must not add a per-object allocation once warm.
	if allocs > 30 {
		t.Errorf("refilling a warm sample: %v allocations", allocs)
	}
	if h.s.Objects() != 2 || h.s.Workers() != 1 {
		t.Errorf("sample has %d objects and %d workers, want 2 and 1", h.s.Objects(), h.s.Workers())
	}
}

// TestSimulation runs a master-worker HAProxy through random reloads (old
// workers keep counting while they linger), restarts, workers missing from
// a snapshot, and restarts of the store itself from its file, and checks
// after every snapshot that what is sent equals an independent model: the
// sum, over every worker of the current master seen so far, of its last
// values seen. Without restarts, the values sent never decrease.
func TestSimulation(t *testing.T) {
	dir := t.TempDir()
	rng := uint64(42)
	rand := func(n int) int { // xorshift, deterministic
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int(rng % uint64(n))
	}
	type simWorker struct {
		pid         int
		count, seen [2]float64
		exited      bool
	}
	h := newHarness(t, Options{Dir: dir})
	mpid, nextPID := 7, 100
	var workers []*simWorker // of the current master, every one seen
	newWorker := func() { workers = append(workers, &simWorker{pid: nextPID}); nextPID++ }
	newWorker()
	var prev []float64
	for i := range 400 {
		ts := int64(10000 + 10*i)
		restarted := false
		switch r := rand(100); {
		case r < 2: // HAProxy restarted
			mpid++
			workers = nil
			newWorker()
			restarted = true
		case r < 15: // reload
			newWorker()
		}
		for _, w := range workers {
			if !w.exited && w != workers[len(workers)-1] && rand(4) == 0 {
				w.exited = true // an old worker finished its connections
			}
			if !w.exited {
				w.count[0] += float64(rand(5))
				w.count[1] += float64(rand(5000))
			}
		}
		var procs []proc
		for j, w := range workers {
			if w.exited || (j < len(workers)-1 && rand(10) == 0) { // gone, or missing from this snapshot
				continue
			}
			w.seen = w.count
			procs = append(procs, wk("master.sock", mpid, w.pid, j < len(workers)-1, obj(fe, w.count[0], w.count[1])))
		}
		var model [2]float64
		for _, w := range workers {
			model[0] += w.seen[0]
			model[1] += w.seen[1]
		}
		got := h.step(ts, fe, procs...)
		if got[0] != model[0] || got[1] != model[1] {
			t.Fatalf("snapshot %d: sent %v, model %v\nlog:\n%s", i, got, model, h.log)
		}
		if !restarted && prev != nil && (got[0] < prev[0] || got[1] < prev[1]) {
			t.Fatalf("snapshot %d: sent %v after %v without a restart", i, got, prev)
		}
		prev = got
		if rand(20) == 0 { // haproxystats-process restarts
			h = newHarness(t, Options{Dir: dir})
		}
	}
}

// TestConcurrentUse claims, advances and flushes parts from many
// goroutines at once (for -race), some of them read from the state file.
func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	st0, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c", "d"} {
		p, err := st0.Part(name, counterNames)
		if err != nil {
			t.Fatal(err)
		}
		s := p.NewSample()
		fillSample(s, []proc{wk("m", 7, 11, false, obj(fe, 1, 1))})
		if _, err := p.Advance(context.Background(), 100, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := st0.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 64)
	for g := range 16 {
		go func() {
			name := []string{"a", "b", "c", "d"}[g%4]
			p, err := st.Part(name, counterNames)
			if err != nil {
				errs <- err
				return
			}
			s := p.NewSample()
			for i := range 20 {
				ts := int64(110 + 10*i)
				fillSample(s, []proc{wk("m", 7, 11, false, obj(fe, float64(1+i), 1))})
				if _, err := p.Advance(context.Background(), ts, s); err != nil {
					errs <- err
					return
				}
				if err := st.Flush(); err != nil {
					errs <- err
					return
				}
				_ = p.Size()
			}
			errs <- nil
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
