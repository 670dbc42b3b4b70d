package builtin

import (
	"context"
	"fmt"
	"strconv"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/counters"
)

// Counter parts of the built-in stages in the counters store: one per
// aggregation, each with its own state (see internal/counters).
const (
	partDaemon     = "daemon"
	partFrontend   = "frontend"
	partBackend    = "backend"
	partServer     = "server"
	partAggrServer = "aggrserver"
)

// counterPart is a Folder's share of the monotonic counters: the part of
// the store it advances, and the index in the part's counter list of each
// of its series (-1 for a series that is not a summed cumulative counter).
// A nil *counterPart means monotonic counters are off.
type counterPart struct {
	part *counters.Part
	err  error // the part could not be had: every snapshot's stage fails
	of   []int // per series: counter number, or -1
}

// newCounterPart returns the part named name for the summed series of ss
// whose column isCounter reports as cumulative, or nil when store is nil or
// no series is one.
func newCounterPart(store *counters.Store, name string, ss []series, isCounter func(string) bool) *counterPart {
	if store == nil {
		return nil
	}
	cp := &counterPart{of: make([]int, len(ss))}
	var names []string
	for s, ser := range ss {
		cp.of[s] = -1
		if ser.kind == sum && isCounter(ser.column) {
			cp.of[s] = len(names)
			names = append(names, ser.column)
		}
	}
	if len(names) == 0 {
		return nil
	}
	cp.part, cp.err = store.Part(name, names)
	return cp
}

// newSample returns the per-fold state of the part: a fold owns one.
func (cp *counterPart) newSample() *foldCounters {
	fc := &foldCounters{cp: cp}
	if cp.part != nil {
		fc.sample = cp.part.NewSample()
	}
	return fc
}

// foldCounters is what a fold collects for its counter part while reading
// one snapshot: every process's value of every counter of every object,
// in a Sample. Not safe for concurrent use; the fold's goroutine owns it.
type foldCounters struct {
	cp     *counterPart
	sample *counters.Sample
	name   string  // the snapshot
	procW  []int32 // batch process number -> sample process number
}

// reset starts the snapshot named name.
func (fc *foldCounters) reset(name string) {
	fc.name = name
	fc.procW = fc.procW[:0]
	if fc.sample != nil {
		fc.sample.Reset()
	}
}

// workers registers the processes of b not registered yet: b.Procs grows
// over the snapshot and keeps its numbering.
func (fc *foldCounters) workers(b *engine.StatTable) {
	if fc.sample == nil {
		return
	}
	for i := len(fc.procW); i < len(b.Procs); i++ {
		fc.procW = append(fc.procW, int32(fc.sample.Worker(b.Procs[i])))
	}
}

// advance registers the processes of the snapshot's `*_info` files (every
// process must be registered, even one without a row of this part) and
// advances the part: the sample's offsets are then valid. An error means
// the offsets are unknown and the stage must not send its sums.
func (fc *foldCounters) advance(ctx context.Context, snap *engine.Snapshot) error {
	if fc.cp.err != nil {
		return fc.cp.err
	}
	for _, p := range snap.Info.Procs {
		fc.sample.Worker(p)
	}
	t, err := strconv.ParseInt(fc.name, 10, 64)
	if err != nil {
		return fmt.Errorf("monotonic counters: snapshot %q: %w", fc.name, err)
	}
	if _, err := fc.cp.part.Advance(ctx, t, fc.sample); err != nil {
		return fmt.Errorf("monotonic counters: %w", err)
	}
	return nil
}
