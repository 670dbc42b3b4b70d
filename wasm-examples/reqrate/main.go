// Command reqrate is a haproxystats WASM stage: request and session rates
// per frontend and backend, from the counters of consecutive snapshots.
//
// For every frontend and backend it sends
//
//	P.frontend.<frontend>.req_tot_rate   P.backend.<backend>.req_tot_rate
//	P.frontend.<frontend>.stot_rate      P.backend.<backend>.stot_rate
//
// = (counter now - counter in the previous snapshot) / (seconds between the
// two snapshots), the counters summed over the HAProxy processes.
//
// The previous snapshot's counters are kept in the module's memory, so the
// first snapshot after start (or after the host re-created the instance)
// sends nothing. An object is skipped for one interval when any of its
// processes' counters went down (HAProxy reloaded and started counting from
// zero), when its set of processes changed, or when the counter is null. A
// snapshot that is not newer than the previous one is ignored.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o reqrate/reqrate.wasm ./reqrate
// (from wasm-examples/).
package main

import (
	"github.com/haproxystats-go/haproxystats/wasm-examples/sdk/go/hsabi"
)

var (
	counters = []string{"req_tot", "stot"}
	names    = [2]string{"req_tot_rate", "stot_rate"}
)

func init() {
	hsabi.Register(hsabi.Stage{Columns: counters, Process: process})
}

func main() {}

// A sample is one object (a frontend or a backend) in one HAProxy process.
// IDs are stable for the life of the instance, so samples and objects keep
// their slots from one snapshot to the next, and each slot holds the
// counters of the last two snapshots, by parity: the previous snapshot's
// are found without a look-up, and a snapshot whose rows are those of the
// previous one (Snapshot.SameRows) needs no hashing at all.
type object struct {
	kind hsabi.Kind
	px   hsabi.ID
}

// objectKey leaves the low 31 bits for the process ID of a sample key.
func objectKey(kind hsabi.Kind, px hsabi.ID) uint64 {
	return uint64(kind)<<62 | uint64(px)<<31
}

// snapshotState is what one snapshot left, per slot.
type snapshotState struct {
	time    int64
	value   [][2]float64 // sample slot -> counters summed
	present [][2]bool    // sample slot -> counter not null
	seen    []bool       // sample slot -> in this snapshot
	procs   []int32      // object slot -> its samples in this snapshot
	order   []int32      // the objects of this snapshot, in the order of their first row
	sampled []int32      // the samples of this snapshot, in the order of their first row
}

var (
	samples   hsabi.Index // sample key -> sample slot
	objects   hsabi.Index // object key -> object slot
	sampleKey []uint64    // sample slot -> sample key
	sampleObj []int32     // sample slot -> object slot
	objs      []object    // object slot -> object

	states [2]snapshotState // by parity of gen
	gen    int              // snapshots collected; 0: none, no previous

	// The rows of frontends and backends and their sample slots, valid
	// while every call since they were found had the same rows (rowsValid).
	rowIdx, rowSlot []int32
	rowsValid       bool

	delta [][2]float64 // object slot -> counter deltas
	valid [][2]bool    // object slot -> rate computable
)

func process(snap *hsabi.Snapshot, out *hsabi.Emitter) error {
	// SameRows compares with the previous call, whatever this stage did
	// with it: the rows indexed stay valid only while every call has them.
	if !snap.SameRows {
		rowsValid = false
	}
	if snap.Time < 0 {
		return nil // not a timestamp
	}
	if gen > 0 && snap.Time <= states[(gen-1)&1].time {
		hsabi.Logf(hsabi.LevelWarn, "snapshot %s is not newer than %d, ignored", snap.Name, states[(gen-1)&1].time)
		return nil
	}
	cur := &states[gen&1]
	collect(snap, cur)
	if gen > 0 {
		emit(snap, out, cur, &states[(gen-1)&1], float64(snap.Time-states[(gen-1)&1].time))
	}
	compact(cur)
	gen++
	return nil
}

// collect sums the counters of snap per sample into s.
func collect(snap *hsabi.Snapshot, s *snapshotState) {
	t := &snap.Stats
	if !rowsValid {
		index(t)
	}
	s.time = snap.Time
	clear(s.value)
	clear(s.present)
	clear(s.seen)
	clear(s.procs)
	s.order, s.sampled = s.order[:0], s.sampled[:0]
	var cols [2]*hsabi.Column
	for c, name := range counters {
		cols[c] = t.Column(name)
	}
	for k, i := range rowIdx {
		slot := rowSlot[k]
		if !s.seen[slot] {
			s.seen[slot] = true
			s.sampled = append(s.sampled, slot)
			o := sampleObj[slot]
			if s.procs[o] == 0 {
				s.order = append(s.order, o)
			}
			s.procs[o]++
		}
		for c, col := range cols {
			if v, ok := col.Get(int(i)); ok {
				s.value[slot][c] += v
				s.present[slot][c] = true
			}
		}
	}
}

// compact keeps only the samples and objects of cur, the snapshot just
// collected, in new slots, when objects churned (far more slots than cur
// uses): the next snapshot finds cur's counters as before.
func compact(cur *snapshotState) {
	n := samples.Len()
	if n <= 4096 || n <= 4*len(cur.sampled) {
		return
	}
	old, oldKey, oldObj, oldObjs := *cur, sampleKey, sampleObj, objs
	samples.Reset()
	objects.Reset()
	sampleKey, sampleObj, objs, delta, valid = nil, nil, nil, nil, nil
	for p := range states {
		states[p] = snapshotState{time: states[p].time}
	}
	for _, s := range old.sampled {
		o := oldObj[s]
		slot := newSample(oldKey[s], oldObjs[o].kind, oldObjs[o].px)
		cur.value[slot], cur.present[slot], cur.seen[slot] = old.value[s], old.present[s], true
		cur.sampled = append(cur.sampled, int32(slot))
	}
	for _, o := range old.order {
		no := objects.Lookup(objectKey(oldObjs[o].kind, oldObjs[o].px))
		cur.order = append(cur.order, int32(no))
		cur.procs[no] = old.procs[o]
	}
	rowsValid = false
}

// newSample adds the sample of key, of the object (kind, px), and its
// object if new, with empty counters in both states; it returns its slot.
func newSample(key uint64, kind hsabi.Kind, px hsabi.ID) int {
	slot, added := samples.Slot(key)
	if !added {
		return slot
	}
	o, newObject := objects.Slot(objectKey(kind, px))
	if newObject {
		objs = append(objs, object{kind, px})
		for p := range states {
			states[p].procs = append(states[p].procs, 0)
		}
		delta = append(delta, [2]float64{})
		valid = append(valid, [2]bool{})
	}
	sampleKey = append(sampleKey, key)
	sampleObj = append(sampleObj, int32(o))
	for p := range states {
		st := &states[p]
		st.value = append(st.value, [2]float64{})
		st.present = append(st.present, [2]bool{})
		st.seen = append(st.seen, false)
	}
	return slot
}

// index finds the rows of frontends and backends of t and their sample
// slots, adding the samples and objects not seen before.
func index(t *hsabi.StatTable) {
	rowIdx, rowSlot = rowIdx[:0], rowSlot[:0]
	for i, kind := range t.Kind {
		if kind != hsabi.KindFrontend && kind != hsabi.KindBackend {
			continue
		}
		slot := newSample(objectKey(kind, t.PxID[i])|uint64(t.ProcIDs[t.Proc[i]]), kind, t.PxID[i])
		rowIdx = append(rowIdx, int32(i))
		rowSlot = append(rowSlot, int32(slot))
	}
	rowsValid = true
}

// emit sends the rate of every object of cur that can be computed from
// prev.
func emit(snap *hsabi.Snapshot, out *hsabi.Emitter, cur, prev *snapshotState, seconds float64) {
	for _, o := range cur.order {
		// The same number of processes as before, or no rate.
		ok := prev.procs[o] == cur.procs[o]
		delta[o] = [2]float64{}
		valid[o] = [2]bool{ok, ok}
	}
	for _, slot := range cur.sampled {
		o := sampleObj[slot]
		for c := range counters {
			switch {
			case !valid[o][c]:
			case !prev.seen[slot] || !cur.present[slot][c] || !prev.present[slot][c] || cur.value[slot][c] < prev.value[slot][c]:
				valid[o][c] = false // another process, a null, or a reset
			default:
				delta[o][c] += cur.value[slot][c] - prev.value[slot][c]
			}
		}
	}
	for _, o := range cur.order {
		obj := objs[o]
		for c := range counters {
			if !valid[o][c] {
				continue
			}
			if obj.kind == hsabi.KindFrontend {
				out.Frontend(snap.Str(obj.px), names[c], delta[o][c]/seconds)
			} else {
				out.Backend(snap.Str(obj.px), names[c], delta[o][c]/seconds)
			}
		}
	}
}
