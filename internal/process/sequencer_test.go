package process

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/counters"
	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// runSequenced runs a daemon with a Sequencer over the spool dir: the
// pipeline has the built-in stages with monotonic counters (state in
// memory), a memory budget that lets one snapshot in at a time, and its
// Started hook wired to the daemon, as FromConfig builds it.
func runSequenced(t *testing.T, dir string, seq Sequencer, store *counters.Store, dest *fakeDest) {
	t.Helper()
	var d *Daemon
	p, err := engine.NewPipeline(engine.Config{
		Paths:        &engine.Paths{Prefix: "p"},
		MemoryBudget: 1,
		Started:      func(name string) { d.Started(name) },
	}, builtin.Stages(builtin.Options{Counters: store})...)
	if err != nil {
		t.Fatal(err)
	}
	w, err := spool.NewWatcher(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err = New(Config{Pipeline: p, Queue: w, Destinations: []Destination{dest}, Workers: 3,
		StopTimeout: time.Second, RetryDelay: 10 * time.Millisecond, Sequencer: seq})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30s of the stop")
		}
	})
}

// TestSequencerNoDeadlockUnderMemoryBudget hands snapshots out to three
// workers while the first one is held in its destination's Open until the
// second has been opened: the second must not take the memory budget (one
// snapshot at a time) and then wait in its counter parts for the first,
// which would wait for the budget forever. Every snapshot is delivered.
func TestSequencerNoDeadlockUnderMemoryBudget(t *testing.T) {
	names := []string{"1700000000", "1700000010", "1700000020", "1700000030"}
	dir := spoolWith(t, names...)
	store, err := counters.Open(counters.Options{})
	if err != nil {
		t.Fatal(err)
	}
	secondOpened := make(chan struct{})
	var once sync.Once
	dest := &fakeDest{name: "held", onOpen: func(snapshot string) error {
		switch snapshot {
		case names[1]:
			once.Do(func() { close(secondOpened) })
		case names[0]:
			select {
			case <-secondOpened:
				time.Sleep(50 * time.Millisecond) // let the second one run ahead, if it can
			case <-time.After(5 * time.Second):
			}
		}
		return nil
	}}
	runSequenced(t, dir, store, store, dest)
	waitFor(t, "every snapshot to be delivered and removed", func() bool {
		return !slices.ContainsFunc(names, func(n string) bool { return exists(filepath.Join(dir, n)) })
	})
	for _, n := range names {
		if !strings.Contains(dest.lines(n), "p.frontend.") {
			t.Errorf("snapshot %s: no frontend lines", n)
		}
	}
}

// recordingSequencer records the calls; Done fails once for failDone.
type recordingSequencer struct {
	mu       sync.Mutex
	pending  []int64
	done     []int64
	failDone int64
}

func (r *recordingSequencer) Pending(t int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, t)
}

func (r *recordingSequencer) Done(t int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = append(r.done, t)
	if t == r.failDone {
		r.failDone = 0
		return errors.New("disk full")
	}
	return nil
}

func (r *recordingSequencer) calls() ([]int64, []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pending), slices.Clone(r.done)
}

// TestSequencerCalls checks the daemon's side of the contract: Pending for
// every snapshot handed out, Done once for each, whether the pipeline ran
// or the destination refused the snapshot, and a snapshot whose Done
// failed (state not written) kept in the spool and processed again.
func TestSequencerCalls(t *testing.T) {
	dir := spoolWith(t, "1700000000", "1700000010")
	seq := &recordingSequencer{failDone: 1700000000}
	refused := false
	var mu sync.Mutex
	dest := &fakeDest{name: "d", onOpen: func(snapshot string) error {
		mu.Lock()
		defer mu.Unlock()
		if snapshot == "1700000010" && !refused {
			refused = true
			return errors.New("not now")
		}
		return nil
	}}
	runSequenced(t, dir, seq, nil, dest)
	waitFor(t, "both snapshots to be removed", func() bool {
		return !exists(filepath.Join(dir, "1700000000")) && !exists(filepath.Join(dir, "1700000010"))
	})
	pending, done := seq.calls()
	// Each snapshot was handed out twice: 0 failed its Done, 10 was refused.
	slices.Sort(pending)
	slices.Sort(done)
	want := []int64{1700000000, 1700000000, 1700000010, 1700000010}
	if !slices.Equal(pending, want) || !slices.Equal(done, want) {
		t.Errorf("Pending %v, Done %v, want each %v", pending, done, want)
	}
	dest.mu.Lock()
	opens := dest.opens
	dest.mu.Unlock()
	if opens != 3 { // 0 twice (its first Done failed), 10 once past the refusal
		t.Errorf("destination opened %d times, want 3", opens)
	}
}
