package snapsource

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// delivery is one snapshot a consumer reported delivered.
type delivery struct {
	host, epoch string
	partition   int32
	consumer    string
}

// worker hands every snapshot of r to got, then reports it delivered,
// until the consumer stops.
func worker(r *running, name string, got func(delivery)) {
	for {
		s, err := r.c.Next(context.Background())
		if err != nil {
			return
		}
		got(delivery{s.Host, s.Epoch, s.Partition, name})
		r.c.Done(s, true)
	}
}

// hostOf names the host of record i of a test with hosts hosts.
func hostOf(i, hosts int) string { return fmt.Sprintf("lb%d", i%hosts) }

// TestTwoConsumersShare: two consumers in one group share the partitions;
// each snapshot is delivered once, by the consumer of its partition.
func TestTwoConsumersShare(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{testTopic}, Partitions: 4})
	a := start(t, testConfig(t, k.Addr()))
	waitAssigned(t, a, 4)
	b := start(t, testConfig(t, k.Addr()))
	deadline := time.Now().Add(time.Minute)
	for {
		pa, pb := a.c.Assigned(), b.c.Assigned()
		if len(pa)+len(pb) == 4 && len(pa) > 0 && len(pb) > 0 && !slices.ContainsFunc(pa, func(p int32) bool { return slices.Contains(pb, p) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions not shared within a minute: %v and %v", pa, pb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var mu sync.Mutex
	var got []delivery
	collect := func(d delivery) { mu.Lock(); got = append(got, d); mu.Unlock() }
	var wg sync.WaitGroup
	wg.Go(func() { worker(a, "a", collect) })
	wg.Go(func() { worker(b, "b", collect) })
	const n, hosts = 40, 8
	var recs []record
	for i := range n {
		recs = append(recs, snap(t, int32(i%4), hostOf(i, hosts), 1800000000+int64(i)))
	}
	produce(t, k.Addr(), recs...)
	deadline = time.Now().Add(time.Minute)
	for {
		mu.Lock()
		m := len(got)
		mu.Unlock()
		if m >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d snapshots delivered within a minute", m, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	owner := map[string][]int32{"a": a.c.Assigned(), "b": b.c.Assigned()}
	a.stop(t)
	b.stop(t)
	wg.Wait()
	seen := map[string]int{}
	per := map[string]int{}
	for _, d := range got {
		seen[d.host+"/"+d.epoch]++
		per[d.consumer]++
		if !slices.Contains(owner[d.consumer], d.partition) {
			t.Errorf("consumer %s (partitions %v) delivered %s/%s of partition %d", d.consumer, owner[d.consumer], d.host, d.epoch, d.partition)
		}
	}
	for i := range n {
		if key := hostOf(i, hosts) + "/" + strconv.Itoa(1800000000+i); seen[key] != 1 {
			t.Errorf("snapshot %s delivered %d times, want once", key, seen[key])
		}
	}
	if per["a"] == 0 || per["b"] == 0 {
		t.Errorf("deliveries per consumer %v: both should have had some", per)
	}
}

func waitAssigned(t testing.TB, r *running, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(r.c.Assigned()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("assigned %v within a minute, want %d partitions; log:\n%s", r.c.Assigned(), n, r.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHelperConsumer is not a test: TestKillMovesPartitions runs it as a
// consumer process. Arguments: broker address, directory, output file. It
// appends "assigned P,P,..." when its partitions change and "delivered
// HOST EPOCH PARTITION" before reporting each snapshot delivered, and runs
// until it is killed or stopped.
func TestHelperConsumer(t *testing.T) {
	args, ok := testenv.HelperArgs()
	if !ok {
		t.Skip("runs only as the consumer process of TestKillMovesPartitions")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	out, err := os.OpenFile(args[2], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, args[0])
	cfg.Dir = args[1]
	c, err := New(cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r := &running{c: c}
	go func() {
		var last string
		for ctx.Err() == nil {
			if a := fmt.Sprint(c.Assigned()); a != last {
				last = a
				fmt.Fprintf(out, "assigned %s\n", strings.Trim(strings.ReplaceAll(a, " ", ","), "[]"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	go worker(r, "", func(d delivery) { fmt.Fprintf(out, "delivered %s %s %d\n", d.host, d.epoch, d.partition) })
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// helperOutput reads a helper's output file: its last assignment and its
// deliveries.
func helperOutput(t testing.TB, path, name string) (assigned []int32, got []delivery) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 1 && fields[0] == "assigned":
			assigned = nil
			if len(fields) == 2 {
				for _, p := range strings.Split(fields[1], ",") {
					n, _ := strconv.Atoi(p)
					assigned = append(assigned, int32(n))
				}
			}
		case len(fields) == 4 && fields[0] == "delivered":
			p, _ := strconv.Atoi(fields[3])
			got = append(got, delivery{fields[1], fields[2], int32(p), name})
		}
	}
	return assigned, got
}

// TestKillMovesPartitions: two consumer processes in one group share the
// partitions while snapshots are produced; one is killed with SIGKILL
// mid-run; its partitions move to the other after the session timeout and
// every snapshot is delivered (those it had delivered without a commit
// again: duplicates, counted).
func TestKillMovesPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a session timeout")
	}
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{testTopic}, Partitions: 4})
	dir := t.TempDir()
	outs := []string{filepath.Join(dir, "p1.out"), filepath.Join(dir, "p2.out")}
	p1 := testenv.StartHelper(t, "TestHelperConsumer", k.Addr(), filepath.Join(dir, "c1"), outs[0])
	testenv.StartHelper(t, "TestHelperConsumer", k.Addr(), filepath.Join(dir, "c2"), outs[1])
	deadline := time.Now().Add(time.Minute)
	var a1, a2 []int32
	for {
		a1, _ = helperOutput(t, outs[0], "p1")
		a2, _ = helperOutput(t, outs[1], "p2")
		if len(a1) > 0 && len(a2) > 0 && len(a1)+len(a2) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two processes did not share the partitions within a minute: %v and %v", a1, a2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	const n, hosts = 120, 8
	killed := false
	for i := range n {
		produce(t, k.Addr(), snap(t, int32(i%4), hostOf(i, hosts), 1800000000+int64(i)))
		if i == 40 {
			if err := p1.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			p1.Wait()
			killed = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !killed {
		t.Fatal("p1 was not killed")
	}
	deadline = time.Now().Add(90 * time.Second)
	for {
		_, got1 := helperOutput(t, outs[0], "p1")
		a2, got2 := helperOutput(t, outs[1], "p2")
		seen := map[string]int{}
		for _, d := range append(got1, got2...) {
			seen[d.host+"/"+d.epoch]++
		}
		missing := 0
		for i := range n {
			if seen[hostOf(i, hosts)+"/"+strconv.Itoa(1800000000+i)] == 0 {
				missing++
			}
		}
		if missing == 0 {
			dups := 0
			for _, c := range seen {
				dups += c - 1
			}
			moved := 0
			for _, d := range got2 {
				if slices.Contains(a1, d.partition) {
					moved++
				}
			}
			t.Logf("p1 (partitions %v) delivered %d before SIGKILL; p2 delivered %d, %d of them from p1's partitions; %d duplicates; p2 now has %v",
				a1, len(got1), len(got2), moved, dups, a2)
			if moved == 0 || len(a2) != 4 {
				t.Errorf("p1's partitions %v did not move to p2 (p2 has %v, delivered %d of theirs)", a1, a2, moved)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d snapshots never delivered within 90 s of the kill; p2 has partitions %v", missing, n, a2)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRevokeMidProcessing: a consumer holds snapshots of every partition,
// one handed out and others waiting, when a second member joins: the
// waiting snapshots of the partitions it loses are dropped, never handed
// out by it; the one handed out is still reported delivered, but that
// commits nothing for a partition it lost; the new member consumes those
// partitions from their committed offsets, and every snapshot is delivered.
func TestRevokeMidProcessing(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{testTopic}, Partitions: 4})
	a := start(t, testConfig(t, k.Addr()))
	waitAssigned(t, a, 4)
	const n, hosts = 16, 4
	var recs []record
	for i := range n {
		recs = append(recs, snap(t, int32(i%4), hostOf(i, hosts), 1800000000+int64(i)))
	}
	produce(t, k.Addr(), recs...)
	deadline := time.Now().Add(time.Minute)
	for a.c.Stats().Snapshots < n {
		if time.Now().After(deadline) {
			t.Fatalf("a consumed %+v within a minute, want %d snapshots", a.c.Stats(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Snapshots handed out, reported only after the rebalance: at least
	// one of each partition.
	var held []*Snapshot
	for parts := map[int32]bool{}; len(parts) < 4; {
		s := a.next(t)
		held = append(held, s)
		parts[s.Partition] = true
	}

	b := start(t, testConfig(t, k.Addr()))
	deadline = time.Now().Add(time.Minute)
	for len(b.c.Assigned()) == 0 || len(a.c.Assigned()) == 4 {
		if time.Now().After(deadline) {
			t.Fatalf("no rebalance within a minute: a has %v, b %v", a.c.Assigned(), b.c.Assigned())
		}
		time.Sleep(20 * time.Millisecond)
	}
	lost := slices.DeleteFunc([]int32{0, 1, 2, 3}, func(p int32) bool { return slices.Contains(a.c.Assigned(), p) })
	if st := a.c.Stats(); st.Dropped == 0 {
		t.Errorf("a lost partitions %v but dropped nothing: %+v", lost, st)
	}
	var mu sync.Mutex
	var got []delivery
	collect := func(d delivery) { mu.Lock(); got = append(got, d); mu.Unlock() }
	for _, s := range held {
		if live := a.c.Live(s); live != slices.Contains(a.c.Assigned(), s.Partition) {
			t.Errorf("Live(%s/%s of partition %d) = %v with partitions %v assigned", s.Host, s.Epoch, s.Partition, live, a.c.Assigned())
		}
		a.c.Done(s, true)
		got = append(got, delivery{s.Host, s.Epoch, s.Partition, "held"})
	}
	var wg sync.WaitGroup
	wg.Go(func() { worker(a, "a", collect) })
	wg.Go(func() { worker(b, "b", collect) })
	deadline = time.Now().Add(time.Minute)
	for {
		mu.Lock()
		seen := map[string]int{}
		for _, d := range got {
			seen[d.host+"/"+d.epoch]++
		}
		mu.Unlock()
		missing := 0
		for i := range n {
			if seen[hostOf(i, hosts)+"/"+strconv.Itoa(1800000000+i)] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d snapshots never delivered", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	aOwns, bOwns := a.c.Assigned(), b.c.Assigned()
	a.stop(t)
	b.stop(t)
	wg.Wait()
	dups := 0
	for _, d := range got {
		if d.consumer == "a" && slices.Contains(lost, d.partition) {
			t.Errorf("a handed out %s/%s of partition %d after losing it", d.host, d.epoch, d.partition)
		}
		if d.consumer == "a" && !slices.Contains(aOwns, d.partition) {
			t.Errorf("a delivered %s/%s of partition %d, not one of its %v", d.host, d.epoch, d.partition, aOwns)
		}
	}
	for _, h := range held {
		if !slices.Contains(lost, h.Partition) {
			continue
		}
		dups++
		if !slices.ContainsFunc(got, func(d delivery) bool { return d.consumer == "b" && d.host == h.Host && d.epoch == h.Epoch }) {
			t.Errorf("snapshot %s/%s of partition %d, held by a when it lost the partition, was not consumed again by b: its Done committed it", h.Host, h.Epoch, h.Partition)
		}
	}
	t.Logf("a kept %v, b took %v; a: %+v; %d snapshots held over the rebalance, %d of lost partitions consumed again by b", aOwns, bOwns, a.c.Stats(), len(held), dups)
}
