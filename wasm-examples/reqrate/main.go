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

// The counters of one snapshot, summed per sample (object and process).
// IDs are stable for the life of the instance, so the samples of the
// previous snapshot are found by key.
type state struct {
	time      int64
	samples   hsabi.Index  // sample key -> sample slot
	sampleKey []uint64     // sample slot -> key
	sampleObj []int32      // sample slot -> object slot
	value     [][2]float64 // sample slot -> counters
	present   [][2]bool    // sample slot -> counter not null
	objects   hsabi.Index  // object key -> object slot
	order     []object     // object slot -> object
	procs     []int        // object slot -> number of processes
}

type object struct {
	kind hsabi.Kind
	px   hsabi.ID
}

// objectKey leaves the low 31 bits for the process ID of a sample key.
func objectKey(kind hsabi.Kind, px hsabi.ID) uint64 {
	return uint64(kind)<<62 | uint64(px)<<31
}

var (
	prev, cur = &state{time: -1}, &state{}
	delta     [][2]float64
	valid     [][2]bool
)

func process(snap *hsabi.Snapshot, out *hsabi.Emitter) error {
	if snap.Time < 0 {
		return nil // not a timestamp
	}
	if prev.time >= 0 && snap.Time <= prev.time {
		hsabi.Logf(hsabi.LevelWarn, "snapshot %s is not newer than %d, ignored", snap.Name, prev.time)
		return nil
	}
	collect(snap, cur)
	if prev.time >= 0 {
		emit(snap, out, float64(snap.Time-prev.time))
	}
	prev, cur = cur, prev
	return nil
}

// collect sums the counters of snap per sample into s.
func collect(snap *hsabi.Snapshot, s *state) {
	t := &snap.Stats
	s.time = snap.Time
	s.samples.Reset()
	s.objects.Reset()
	s.sampleKey, s.sampleObj = s.sampleKey[:0], s.sampleObj[:0]
	s.value, s.present = s.value[:0], s.present[:0]
	s.order, s.procs = s.order[:0], s.procs[:0]
	var cols [2]*hsabi.Column
	for c, name := range counters {
		cols[c] = t.Column(name)
	}
	// One pass over the rows.
	for i, kind := range t.Kind {
		if kind != hsabi.KindFrontend && kind != hsabi.KindBackend {
			continue
		}
		okey := objectKey(kind, t.PxID[i])
		key := okey | uint64(t.ProcIDs[t.Proc[i]])
		slot := s.samples.Home(key) // inlined: no call for samples seen before
		if slot < 0 {
			slot = s.add(key, kind, t.PxID[i])
		}
		for c, col := range cols {
			if v, ok := col.Get(i); ok {
				s.value[slot][c] += v
				s.present[slot][c] = true
			}
		}
	}
}

// add returns the slot of a sample, creating it and its object if new.
func (s *state) add(key uint64, kind hsabi.Kind, px hsabi.ID) int {
	slot, added := s.samples.Slot(key)
	if !added {
		return slot
	}
	o, newObject := s.objects.Slot(objectKey(kind, px))
	if newObject {
		s.order = append(s.order, object{kind, px})
		s.procs = append(s.procs, 0)
	}
	s.procs[o]++
	s.sampleKey = append(s.sampleKey, key)
	s.sampleObj = append(s.sampleObj, int32(o))
	s.value = append(s.value, [2]float64{})
	s.present = append(s.present, [2]bool{})
	return slot
}

// emit sends the rate of every object of cur that can be computed.
func emit(snap *hsabi.Snapshot, out *hsabi.Emitter, seconds float64) {
	delta, valid = delta[:0], valid[:0]
	for o, obj := range cur.order {
		// The same number of processes as before, or no rate.
		p := prev.objects.Lookup(objectKey(obj.kind, obj.px))
		ok := p >= 0 && prev.procs[p] == cur.procs[o]
		delta = append(delta, [2]float64{})
		valid = append(valid, [2]bool{ok, ok})
	}
	for slot, key := range cur.sampleKey {
		o := cur.sampleObj[slot]
		p := prev.samples.Lookup(key)
		for c := range counters {
			switch {
			case !valid[o][c]:
			case p < 0 || !cur.present[slot][c] || !prev.present[p][c] || cur.value[slot][c] < prev.value[p][c]:
				valid[o][c] = false // another process, a null, or a reset
			default:
				delta[o][c] += cur.value[slot][c] - prev.value[p][c]
			}
		}
	}
	for o, obj := range cur.order {
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
