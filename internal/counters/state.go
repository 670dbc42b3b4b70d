package counters

import (
	"log/slog"
	"slices"
	"strings"
)

// partState is one part's state. Objects have a part-wide number (gid,
// through keys and ids) and, in each instance that has them, a local one
// (lid), so that an instance's tables are dense over its own objects only.
// Tables are flat: row r of a table is [r*nc, (r+1)*nc).
type partState struct {
	name     string
	counters []string
	nc       int
	zero     []float64 // nc zeros

	t        int64 // last snapshot advanced; 0: none
	curFirst int64 // first snapshot advanced with the current totals

	keys  []string // gid -> key; "" for a free gid
	ids   map[string]int32
	freeG []int32

	insts []*instance // sorted by key

	// totals is the current offset table (gid × counter), the sum over the
	// instances of their contributions; nil when every offset is 0.
	totals, spare []float64
	versions      []*version // superseded offset tables, oldest first

	gidOf []int32 // scratch: sample object -> gid
	order []int   // scratch: sample workers sorted by instance and PID
	used  []bool  // scratch: gids some instance has
}

// instance is one HAProxy instance: a master CLI's workers, or one plain
// stats socket.
type instance struct {
	key       string // "m:" + master name, or "s:" + socket name
	masterPID int    // 0 for a plain socket
	seen      int64  // last snapshot the instance was in

	lidOf    []int32 // gid -> lid, -1 for none; may be shorter than keys
	gidOf    []int32 // lid -> gid, -1 for a free lid
	lastSeen []int64 // lid -> last snapshot a worker had the object
	freeL    []int32

	// carried is what workers that left had counted (lid × counter); nil
	// while every value is 0.
	carried []float64
	workers []*worker // sorted by PID
}

// worker is one process of an instance.
type worker struct {
	pid int
	// missed counts the snapshots in a row in which the instance was
	// present without this worker; 0 for a worker of the last snapshot.
	missed int
	last   []float64 // lid × counter: its values in its last snapshot
	filled int64     // scratch: the snapshot whose values last holds
}

// version is a superseded offset table, in force for the snapshots
// advanced from first to last.
type version struct {
	first, last int64
	keys        []string
	vals        []float64 // len(keys) × nc
	index       map[string]int32
}

func newPartState(name string, counters []string) *partState {
	return &partState{
		name:     name,
		counters: slices.Clone(counters),
		nc:       len(counters),
		zero:     make([]float64, len(counters)),
		ids:      make(map[string]int32),
	}
}

// gid returns the part-wide number of key, adding it.
func (st *partState) gid(key string) int32 {
	if g, ok := st.ids[key]; ok {
		return g
	}
	var g int32
	if n := len(st.freeG); n > 0 {
		g = st.freeG[n-1]
		st.freeG = st.freeG[:n-1]
		st.keys[g] = key
	} else {
		g = int32(len(st.keys))
		st.keys = append(st.keys, key)
	}
	st.ids[key] = g
	return g
}

// instanceKey is the instance a process belongs to.
func instanceKey(w *sampleWorker) string {
	if w.name.IsWorker() {
		return "m:" + w.name.Master
	}
	return "s:" + w.name.Name
}

// findInstance returns the index of key in insts and whether it is there.
func (st *partState) findInstance(key string) (int, bool) {
	return slices.BinarySearchFunc(st.insts, key, func(in *instance, k string) int { return strings.Compare(in.key, k) })
}

// advance applies the sample of snapshot t (newer than st.t) and fills the
// sample's offsets. The rules are in the package documentation.
func (st *partState) advance(t int64, s *Sample, opts Options, log *slog.Logger) {
	nc := st.nc
	if st.t != 0 && t-st.t > opts.Expiry {
		log.Info("counters part not advanced for longer than the expiry: it starts empty", "last_snapshot", st.t, "expiry", opts.Expiry)
		*st = *newPartState(st.name, st.counters)
	}

	// The part-wide numbers of the objects some process has.
	st.gidOf = fill(st.gidOf, s.Objects(), -1)
	for _, o := range s.entObj {
		if st.gidOf[o] < 0 {
			st.gidOf[o] = st.gid(s.Key(int(o)))
		}
	}

	// The processes, grouped by instance.
	st.order = st.order[:0]
	for w := range s.workers {
		st.order = append(st.order, w)
	}
	slices.SortFunc(st.order, func(a, b int) int {
		wa, wb := &s.workers[a], &s.workers[b]
		if c := strings.Compare(instanceKey(wa), instanceKey(wb)); c != 0 {
			return c
		}
		if c := wa.name.MasterPID - wb.name.MasterPID; c != 0 {
			return c
		}
		return wa.name.PID - wb.name.PID
	})
	for i := 0; i < len(st.order); {
		key := instanceKey(&s.workers[st.order[i]])
		j := i + 1
		for j < len(st.order) && instanceKey(&s.workers[st.order[j]]) == key {
			j++
		}
		st.instanceSample(t, key, st.order[i:j], s, opts, log)
		i = j
	}

	// Instances absent from the snapshot keep counting with their last
	// values, until the expiry.
	st.insts = slices.DeleteFunc(st.insts, func(in *instance) bool {
		if in.seen != t && t-in.seen > opts.Expiry {
			log.Info("counters of an instance absent for longer than the expiry are forgotten", "instance", in.key[2:], "last_snapshot", in.seen)
			return true
		}
		return false
	})

	// The new offset table; the one it replaces is kept for replays.
	next := st.computeTotals(t)
	if !equalTables(st.totals, next) || st.t == 0 {
		if st.t != 0 {
			st.pushVersion(opts)
		}
		st.curFirst = t
	}
	st.totals, st.spare = next, st.totals
	st.collectGids()
	st.t = t
	st.trimVersions(t, opts)

	// The sample's offsets.
	s.offsets = fill(s.offsets, s.Objects()*nc, 0)
	if st.totals == nil {
		return
	}
	for o := range s.Objects() {
		g := st.gidOf[o]
		if g < 0 {
			var ok bool
			if g, ok = st.ids[s.Key(o)]; !ok {
				continue
			}
		}
		copy(s.offsets[o*nc:(o+1)*nc], st.totals[int(g)*nc:(int(g)+1)*nc])
	}
}

// instanceSample applies the processes ws (sample process numbers, sorted
// by master PID then PID) of one instance.
func (st *partState) instanceSample(t int64, key string, ws []int, s *Sample, opts Options, log *slog.Logger) {
	nc := st.nc
	first := &s.workers[ws[0]].name
	i, found := st.findInstance(key)
	var in *instance
	switch {
	case !found:
		in = &instance{key: key, masterPID: first.MasterPID}
		st.insts = slices.Insert(st.insts, i, in)
	default:
		in = st.insts[i]
		if in.masterPID != first.MasterPID {
			log.Info("HAProxy restarted (new master PID): its counters start again from 0",
				"instance", key[2:], "master_pid", in.masterPID, "new_master_pid", first.MasterPID)
			st.insts[i] = &instance{key: key, masterPID: first.MasterPID}
			in = st.insts[i]
		}
	}
	in.seen = t

	// Objects, and whether a process counted less than in its last
	// snapshot: the counters were cleared (or a plain socket's process
	// restarted).
	cleared := false
	for _, w := range ws {
		sw := &s.workers[w]
		if sw.name.MasterPID != in.masterPID {
			continue // a second master PID for one master in one snapshot: ignored
		}
		rec := in.worker(sw.name.PID)
		for _, e := range sw.ents {
			o := s.entObj[e]
			l := in.lid(st.gidOf[o], nc, st.zero)
			in.lastSeen[l] = t
			if rec == nil || cleared {
				continue
			}
			vals, last := s.vals[int(e)*nc:(int(e)+1)*nc], rec.last[int(l)*nc:(int(l)+1)*nc]
			for c, v := range vals {
				if v < last[c] {
					cleared = true
					log.Warn("a counter went down (counters cleared, or the process restarted): the instance's counters start again from 0",
						"instance", key[2:], "pid", sw.name.PID, "object", strings.ReplaceAll(s.Key(int(o)), "\x00", "/"),
						"counter", st.counters[c], "was", last[c], "now", v)
					break
				}
			}
		}
	}
	if cleared {
		in.carried = nil
		in.workers = in.workers[:0]
	}

	// The processes present: their values replace their last ones.
	for _, w := range ws {
		sw := &s.workers[w]
		if sw.name.MasterPID != in.masterPID {
			continue
		}
		rec := in.worker(sw.name.PID)
		if rec == nil {
			rec = &worker{pid: sw.name.PID, last: make([]float64, len(in.gidOf)*nc)}
			j, _ := slices.BinarySearchFunc(in.workers, rec.pid, func(w *worker, pid int) int { return w.pid - pid })
			in.workers = slices.Insert(in.workers, j, rec)
		}
		if rec.filled != t {
			clear(rec.last)
			rec.filled = t
		}
		rec.missed = 0
		for _, e := range sw.ents {
			l := int(in.lidOf[st.gidOf[s.entObj[e]]])
			row := rec.last[l*nc : (l+1)*nc]
			for c, v := range s.vals[int(e)*nc : (int(e)+1)*nc] {
				row[c] += v
			}
		}
	}

	// The processes that left: counted with their last values, then
	// folded into the carried values once gone for departedGrace
	// snapshots.
	in.workers = slices.DeleteFunc(in.workers, func(w *worker) bool {
		if w.filled == t {
			return false
		}
		w.missed++
		if w.missed <= departedGrace {
			return false
		}
		in.carry(w.last)
		return true
	})

	// Objects no process has had for longer than the expiry.
	for l, g := range in.gidOf {
		if g >= 0 && t-in.lastSeen[l] > opts.Expiry {
			in.freeLid(int32(l), nc)
		}
	}
}

// worker returns the record of process pid, or nil.
func (in *instance) worker(pid int) *worker {
	i, found := slices.BinarySearchFunc(in.workers, pid, func(w *worker, pid int) int { return w.pid - pid })
	if !found {
		return nil
	}
	return in.workers[i]
}

// lid returns the local number of gid g, adding it (with zero rows).
func (in *instance) lid(g int32, nc int, zero []float64) int32 {
	if int(g) >= len(in.lidOf) {
		n := len(in.lidOf)
		in.lidOf = append(in.lidOf, make([]int32, int(g)+1-n)...)
		for i := n; i < len(in.lidOf); i++ {
			in.lidOf[i] = -1
		}
	}
	if l := in.lidOf[g]; l >= 0 {
		return l
	}
	var l int32
	if n := len(in.freeL); n > 0 {
		l = in.freeL[n-1]
		in.freeL = in.freeL[:n-1]
		in.gidOf[l] = g
	} else {
		l = int32(len(in.gidOf))
		in.gidOf = append(in.gidOf, g)
		in.lastSeen = append(in.lastSeen, 0)
		if in.carried != nil {
			in.carried = append(in.carried, zero...)
		}
		for _, w := range in.workers {
			w.last = append(w.last, zero...)
		}
	}
	in.lidOf[g] = l
	return l
}

// freeLid forgets local object l.
func (in *instance) freeLid(l int32, nc int) {
	in.lidOf[in.gidOf[l]] = -1
	in.gidOf[l] = -1
	in.lastSeen[l] = 0
	if in.carried != nil {
		clear(in.carried[int(l)*nc : (int(l)+1)*nc])
	}
	for _, w := range in.workers {
		clear(w.last[int(l)*nc : (int(l)+1)*nc])
	}
	in.freeL = append(in.freeL, l)
}

// carry adds a leaving worker's last values to the carried ones.
func (in *instance) carry(last []float64) {
	if in.carried == nil {
		in.carried = make([]float64, len(last))
	}
	for i, v := range last {
		in.carried[i] += v
	}
}

// computeTotals returns the offset table after snapshot t, in st.spare's
// memory, or nil when every offset is 0: per object, over the instances
// in key order, the carried values, plus the last values of the workers
// that left (still within their grace) or of every worker of an instance
// absent from snapshot t.
func (st *partState) computeTotals(t int64) []float64 {
	nc := st.nc
	var out []float64
	add := func(in *instance, table []float64) {
		if out == nil {
			out = fill(st.spare, len(st.keys)*nc, 0)
		}
		for l, g := range in.gidOf {
			if g < 0 {
				continue
			}
			dst, src := out[int(g)*nc:(int(g)+1)*nc], table[l*nc:(l+1)*nc]
			for c, v := range src {
				dst[c] += v
			}
		}
	}
	for _, in := range st.insts {
		if in.carried != nil {
			add(in, in.carried)
		}
		for _, w := range in.workers {
			if in.seen != t || w.missed > 0 {
				add(in, w.last)
			}
		}
	}
	if out != nil && allZero(out) {
		return nil
	}
	return out
}

// pushVersion keeps the current offset table, in force from curFirst to
// t, for replays.
func (st *partState) pushVersion(opts Options) {
	nc := st.nc
	v := &version{first: st.curFirst, last: st.t}
	for g := 0; g*nc < len(st.totals); g++ {
		row := st.totals[g*nc : (g+1)*nc]
		if st.keys[g] == "" || allZero(row) {
			continue
		}
		v.keys = append(v.keys, st.keys[g])
		v.vals = append(v.vals, row...)
	}
	st.versions = append(st.versions, v)
}

// trimVersions drops the versions last used before t - Expiry, and the
// oldest beyond MaxVersions.
func (st *partState) trimVersions(t int64, opts Options) {
	drop := 0
	for drop < len(st.versions) && (t-st.versions[drop].last > opts.Expiry || len(st.versions)-drop > opts.MaxVersions) {
		drop++
	}
	if drop > 0 {
		clear(st.versions[:drop])
		st.versions = slices.Delete(st.versions, 0, drop)
	}
}

// collectGids frees the part-wide numbers no instance uses (their rows in
// st.totals are 0, as no instance contributes to them).
func (st *partState) collectGids() {
	st.used = fill(st.used, len(st.keys), false)
	for _, in := range st.insts {
		for _, g := range in.gidOf {
			if g >= 0 {
				st.used[g] = true
			}
		}
	}
	for g, used := range st.used {
		if !used && st.keys[g] != "" {
			delete(st.ids, st.keys[g])
			st.keys[g] = ""
			st.freeG = append(st.freeG, int32(g))
		}
	}
}

// replay fills the sample's offsets for snapshot t, not newer than st.t,
// from the offset table in force then.
func (st *partState) replay(t int64, s *Sample) Outcome {
	nc := st.nc
	s.offsets = fill(s.offsets, s.Objects()*nc, 0)
	fromTotals := func() {
		if st.totals == nil {
			return
		}
		for o := range s.Objects() {
			if g, ok := st.ids[s.Key(o)]; ok {
				copy(s.offsets[o*nc:(o+1)*nc], st.totals[int(g)*nc:(int(g)+1)*nc])
			}
		}
	}
	if t >= st.curFirst || st.t == 0 {
		fromTotals()
		return Repeated
	}
	var v *version
	outcome := Approximated
	for i := len(st.versions) - 1; i >= 0; i-- {
		if st.versions[i].first <= t {
			v = st.versions[i]
			if t <= v.last {
				outcome = Repeated
			}
			break
		}
	}
	if v == nil {
		if len(st.versions) == 0 {
			fromTotals()
			return Approximated
		}
		v = st.versions[0]
	}
	if v.index == nil {
		v.index = make(map[string]int32, len(v.keys))
		for i, k := range v.keys {
			v.index[k] = int32(i)
		}
	}
	for o := range s.Objects() {
		if i, ok := v.index[s.Key(o)]; ok {
			copy(s.offsets[o*nc:(o+1)*nc], v.vals[int(i)*nc:(int(i)+1)*nc])
		}
	}
	return outcome
}

// recount changes the part's counters to counters: values of counters no
// longer listed are dropped, new counters start at 0.
func (st *partState) recount(counters []string) {
	from := make([]int, len(counters))
	for j, c := range counters {
		from[j] = slices.Index(st.counters, c)
	}
	oldNC, nc := st.nc, len(counters)
	remap := func(table []float64) []float64 {
		if table == nil {
			return nil
		}
		rows := len(table) / oldNC
		out := make([]float64, rows*nc)
		for r := range rows {
			for j, i := range from {
				if i >= 0 {
					out[r*nc+j] = table[r*oldNC+i]
				}
			}
		}
		return out
	}
	for _, in := range st.insts {
		in.carried = remap(in.carried)
		for _, w := range in.workers {
			w.last = remap(w.last)
		}
	}
	for _, v := range st.versions {
		v.vals = remap(v.vals)
	}
	st.totals, st.spare = remap(st.totals), nil
	st.counters, st.nc, st.zero = slices.Clone(counters), nc, make([]float64, nc)
	if st.totals != nil && allZero(st.totals) {
		st.totals = nil
	}
}

// fill returns s resized to n, every element v.
func fill[T any](s []T, n int, v T) []T {
	if cap(s) < n {
		s = make([]T, n)
	}
	s = s[:n]
	for i := range s {
		s[i] = v
	}
	return s
}

func allZero(v []float64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// equalTables compares two offset tables, a missing or shorter one
// counting as zeros.
func equalTables(a, b []float64) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	for i, x := range a {
		y := 0.0
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return false
		}
	}
	return true
}
