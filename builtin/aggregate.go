package builtin

import (
	"context"
	"math"
	"slices"
	"sync/atomic"

	"github.com/haproxystats-go/haproxystats/engine"
)

// series is one metric an aggregator sends per object: a summed column, or
// a column averaged over every row of the object, or over its rows whose
// lbtot is above 0 (the response times).
type series struct {
	column string
	label  string // the metric name: column, or column_x / column_y
	kind   uint8
}

const (
	sum uint8 = iota
	mean
	meanServed
)

// newSeries lists the series of summed, averaged (over every row) and
// times (over rows with lbtot > 0). A name that is both summed and
// averaged is reported twice, as name_x (sum) and name_y (average), the
// column names pandas gave the original's merge.
func newSeries(summed, averaged, times []string) []series {
	avg := slices.Concat(averaged, times)
	var out []series
	for _, name := range summed {
		if slices.ContainsFunc(out, func(s series) bool { return s.column == name }) {
			continue
		}
		label := name
		if slices.Contains(avg, name) {
			label = name + "_x"
		}
		out = append(out, series{name, label, sum})
	}
	for i, list := range [][]string{averaged, times} {
		for _, name := range list {
			label := name
			if slices.Contains(summed, name) {
				label = name + "_y"
			}
			kind := mean
			if i == 1 {
				kind = meanServed
			}
			out = append(out, series{name, label, kind})
		}
	}
	return out
}

// columns returns the columns the series read (and lbtot, which selects
// the rows of the response-time averages).
func columns(ss []series) []string {
	var cols []string
	for _, s := range ss {
		if !slices.Contains(cols, s.column) {
			cols = append(cols, s.column)
		}
	}
	if !slices.Contains(cols, "lbtot") {
		cols = append(cols, "lbtot")
	}
	return cols
}

// aggregator folds the rows of a snapshot into per-object accumulators:
// objects (keyed by a number made of the rows' name numbers), and per
// series the sum of the column over the object's rows (or over its served
// rows). It holds what the metrics need and nothing per row. Not safe for
// concurrent use.
//
// The objects of a load balancer are the same from one snapshot to the
// next, so an object keeps its slot (and its key's entry in the index)
// across snapshots while the name numbers stay valid (the batches'
// NameEpoch): finding a row's object is then a look-up, never an insertion,
// and a snapshot resets only the slots it used.
type aggregator struct {
	series []series
	// A key's slot: dense (a slice indexed by the key, -1 for none) for
	// keys that are one name number, a map for pairs.
	dense  []int32
	sparse map[uint64]int32
	epoch  uint64 // NameEpoch of the keys in the index
	// For pairs, the slot of the n-th row of a file folded last (or -1),
	// and per slot its key: the processes of a load balancer list their
	// rows in the same order, and so does each from one snapshot to the
	// next, so the slot of a file's n-th row is checked before the map is
	// looked up (in the first snapshot too, from its second file on).
	hint []int32
	keys []uint64
	pos  int   // rows folded of the current file
	proc int32 // the current file (StatTable.Proc)

	names  []objectName // per slot
	stamp  []uint32     // per slot, the snapshot that last used it
	gen    uint32       // this snapshot
	order  []int32      // the slots of this snapshot, in first-seen order
	rows   []float64    // per slot, its rows
	served []float64    // per slot, its rows with lbtot > 0
	sums   [][]float64  // per series, per slot
	seen   []bool       // per series: a file of the snapshot has the column

	// Per batch: the selected rows and their slots, and those of them
	// with lbtot > 0.
	sel, obj             []int32
	servedSel, servedObj []int32
	// The labels of the series present, and one object's values.
	labels []string
	values []float64

	// Objects by name, for merges (nil until the first): every slot below
	// named is in it. mhint is, per slot of the aggregator merged last, the
	// slot it went to (checked by name before it is used).
	byName map[objectName]int32
	named  int
	mhint  []int32

	// With monotonic counters (nil without): what the snapshot's
	// processes counted, per slot the object's number in the sample
	// (valid for the slots of this snapshot), and per batch the sample
	// entry of each selected row.
	ctr  *foldCounters
	sobj []int32
	ents []int32

	// Shared by the Folder's aggregators (nil: none to share), and the
	// room for keys the index map was made with (Size).
	size       *sizeHint
	sparseRoom int
}

// sizeHint carries the number of objects of the snapshots a Folder's
// aggregators sent to the aggregators made after them (a new work value:
// in a backlog, the second and third), which then make their slots at once
// instead of growing every per-slot slice by a quarter at a time. It gives
// the smaller of the last two snapshots' numbers (after the first
// snapshot, that one's), and at most maxSizeHint: the memory budget counts
// a new work value at the size of the largest one measured, and one large
// snapshot (a hostile one, or in central processing, where the views of a
// pipeline share its Folders, a larger load balancer's) must not make the
// work values made before it is measured as large. Safe for concurrent
// use.
type sizeHint struct {
	last atomic.Uint64 // the last snapshot's number + 1 in the low 32 bits, the one before's in the high (0: none)
}

// maxSizeHint bounds the objects a new aggregator makes room for.
const maxSizeHint = 1 << 15

// note records the number of objects of a snapshot sent.
func (h *sizeHint) note(n int) {
	v := uint64(min(n, maxSizeHint) + 1)
	for {
		old := h.last.Load()
		if h.last.CompareAndSwap(old, old<<32|v) {
			return
		}
	}
}

// objects returns the number of objects to make room for.
func (h *sizeHint) objects() int {
	if h == nil {
		return 0
	}
	v := h.last.Load()
	last, before := uint32(v), uint32(v>>32)
	if before == 0 {
		before = last
	}
	return max(int(min(last, before))-1, 0)
}

// objectName is the proxy (or the server alone) and the server of an
// object, as in metric paths.
type objectName struct{ object, server string }

// newAggregator returns an aggregator of the series ss; pairs selects keys
// made of two name numbers. cp is the counter part of the series, nil
// without monotonic counters. size is shared by the aggregators of the
// same series, one per Fold (nil: none).
func newAggregator(ss []series, pairs bool, cp *counterPart, size *sizeHint) *aggregator {
	a := &aggregator{series: ss, sums: make([][]float64, len(ss)), seen: make([]bool, len(ss)), size: size}
	if cp != nil {
		a.ctr = cp.newSample()
	}
	n := size.objects()
	if pairs {
		a.sparse = make(map[uint64]int32, n)
		a.sparseRoom = n
		a.hint = make([]int32, 0, n)
	}
	if n > 0 {
		a.makeRoom(n)
	}
	return a
}

// reset starts the snapshot named name; the slots of the last one are
// zeroed, and every slot is forgotten when they have piled up (objects
// churn).
func (a *aggregator) reset(name string) {
	if a.ctr != nil {
		a.ctr.reset(name)
	}
	if len(a.names) > 4*len(a.order)+1024 {
		a.forget()
	}
	if 2*len(a.order) >= len(a.rows) {
		// Most slots were used (the same objects every snapshot): clear
		// every series whole, in order, rather than slot by slot across
		// them (the slots not used are 0 already).
		clear(a.rows)
		clear(a.served)
		for s := range a.sums {
			clear(a.sums[s])
		}
	} else {
		for _, o := range a.order {
			a.rows[o], a.served[o] = 0, 0
			for s := range a.sums {
				a.sums[s][o] = 0
			}
		}
	}
	a.order = a.order[:0]
	a.gen++
	a.pos, a.proc = 0, -1
	clear(a.seen)
}

// forget drops every slot and the index (the keys changed meaning).
func (a *aggregator) forget() {
	if a.sparse != nil {
		clear(a.sparse)
		a.keys = a.keys[:0]
		for i := range a.hint {
			a.hint[i] = -1
		}
	} else {
		for i := range a.dense {
			a.dense[i] = -1
		}
	}
	clear(a.names)
	a.names, a.stamp, a.order, a.rows, a.served = a.names[:0], a.stamp[:0], a.order[:0], a.rows[:0], a.served[:0]
	clear(a.byName)
	a.named = 0
	a.mhint = a.mhint[:0]
	a.sobj = a.sobj[:0]
	for i := range a.sums {
		a.sums[i] = a.sums[i][:0]
	}
}

// object returns the slot of the object of key k, adding it with the names
// name returns, and counts it in this snapshot.
func (a *aggregator) object(k uint64, name func() objectName) int32 {
	var o int32 = -1
	if a.sparse != nil {
		if a.pos < len(a.hint) {
			if h := a.hint[a.pos]; h >= 0 && a.keys[h] == k {
				o = h
			}
		}
		if o < 0 {
			if i, ok := a.sparse[k]; ok {
				o = i
			}
		}
	} else {
		if k >= uint64(len(a.dense)) {
			n := len(a.dense)
			a.dense = append(a.dense, make([]int32, int(k)+1-n+n/2)...)
			for j := n; j < len(a.dense); j++ {
				a.dense[j] = -1
			}
		}
		o = a.dense[k]
	}
	if o < 0 {
		// A merge may have made the object's slot already, without a key.
		nm := name()
		if s, ok := a.byName[nm]; ok {
			o = s
		} else {
			o = a.newSlot(nm)
		}
		if a.sparse != nil {
			a.sparse[k] = o
			a.keys[o] = k
		} else {
			a.dense[k] = o
		}
	}
	if a.sparse != nil {
		if a.pos < len(a.hint) {
			a.hint[a.pos] = o
		} else {
			a.hint = append(a.hint, o)
		}
		a.pos++
	}
	if a.stamp[o] != a.gen {
		a.stamp[o] = a.gen
		a.order = append(a.order, o)
		if a.ctr != nil && a.ctr.sample != nil {
			a.sobj[o] = int32(a.ctr.sample.Object(a.names[o].object, a.names[o].server))
		}
	}
	return o
}

// noKey is the key of a slot that has none (made by merge): no pair of
// name numbers makes it.
const noKey = ^uint64(0)

// newSlot adds a slot, without a key, for the object named nm.
func (a *aggregator) newSlot(nm objectName) int32 {
	o := int32(len(a.names))
	a.names = append(a.names, nm)
	if a.sparse != nil {
		a.keys = append(a.keys, noKey)
	}
	a.stamp = append(a.stamp, a.gen-1)
	a.rows = append(a.rows, 0)
	a.served = append(a.served, 0)
	for s := range a.sums {
		a.sums[s] = append(a.sums[s], 0)
	}
	if a.ctr != nil {
		a.sobj = append(a.sobj, -1)
	}
	if a.byName != nil {
		a.byName[nm] = o
		a.named = len(a.names)
	}
	return o
}

// makeRoom gives a new aggregator's per-slot slices room for n slots.
func (a *aggregator) makeRoom(n int) {
	a.names = make([]objectName, 0, n)
	if a.sparse != nil {
		a.keys = make([]uint64, 0, n)
	}
	a.stamp = make([]uint32, 0, n)
	a.order = make([]int32, 0, n)
	a.rows = make([]float64, 0, n)
	a.served = make([]float64, 0, n)
	for s := range a.sums {
		a.sums[s] = make([]float64, 0, n)
	}
	if a.ctr != nil {
		a.sobj = make([]int32, 0, n)
	}
}

// merge adds to a the objects and sums of b, an aggregator of the same
// series that folded the snapshot's later files, whose name numbers are
// another parser's: objects are matched by name (an object only b saw
// gets a slot without a key; a's own rows find it by name later). Sums
// of integers, which HAProxy's counters are, are exact in any order, so
// the result is what folding b's rows into a would give. Not with
// monotonic counters (the samples are not merged).
func (a *aggregator) merge(b *aggregator) {
	if a.byName == nil {
		a.byName = make(map[objectName]int32, len(a.names))
	}
	for ; a.named < len(a.names); a.named++ {
		a.byName[a.names[a.named]] = int32(a.named)
	}
	for len(a.mhint) < len(b.names) {
		a.mhint = append(a.mhint, -1)
	}
	// The slot of each of b's objects first, then the sums series by
	// series: each series' values of both are read in slot order, not 40
	// series at a time per object.
	a.sel = a.sel[:0]
	for _, ob := range b.order {
		nm := b.names[ob]
		o := a.mhint[ob]
		if o < 0 || int(o) >= len(a.names) || a.names[o] != nm {
			var ok bool
			if o, ok = a.byName[nm]; !ok {
				o = a.newSlot(nm)
			}
			a.mhint[ob] = o
		}
		if a.stamp[o] != a.gen {
			a.stamp[o] = a.gen
			a.order = append(a.order, o)
		}
		a.rows[o] += b.rows[ob]
		a.served[o] += b.served[ob]
		a.sel = append(a.sel, o)
	}
	to := a.sel
	for s := range a.sums {
		if !b.seen[s] {
			continue // b's sums of the series are 0
		}
		dst, src := a.sums[s], b.sums[s]
		for i, ob := range b.order[:len(to)] {
			dst[to[i]] += src[ob]
		}
	}
	for s := range a.seen {
		a.seen[s] = a.seen[s] || b.seen[s]
	}
}

// fold adds the rows of b that selectRow returns true for to their
// objects: key gives a row's key, name the names of a new object.
func (a *aggregator) fold(b *engine.StatTable, selectRow func(r int) bool, key func(r int) uint64, name func(r int) objectName) {
	if b.NameEpoch != a.epoch {
		a.forget()
		a.epoch = b.NameEpoch
	}
	if a.ctr != nil {
		a.ctr.workers(b)
	}
	a.sel, a.obj = a.sel[:0], a.obj[:0]
	for r := range b.Rows() {
		if !selectRow(r) {
			continue
		}
		if p := b.Proc[r]; p != a.proc {
			a.proc, a.pos = p, 0
		}
		o := a.object(key(r), func() objectName { return name(r) })
		a.sel = append(a.sel, int32(r))
		a.obj = append(a.obj, o)
		a.rows[o]++
	}
	if len(a.sel) == 0 {
		return
	}
	// The rows with lbtot > 0, for the response-time averages.
	a.servedSel, a.servedObj = a.servedSel[:0], a.servedObj[:0]
	if c := b.Column("lbtot"); c != nil {
		for i, r := range a.sel {
			if c.Values[r] > 0 {
				o := a.obj[i]
				a.servedSel = append(a.servedSel, r)
				a.servedObj = append(a.servedObj, o)
				a.served[o]++
			}
		}
	}
	for s, ser := range a.series {
		c := b.Column(ser.column)
		if c == nil {
			continue
		}
		a.seen[s] = true
		sums, vals := a.sums[s], c.Values
		sel, obj := a.sel, a.obj
		if ser.kind == meanServed {
			sel, obj = a.servedSel, a.servedObj
		}
		obj = obj[:len(sel)]
		for i, r := range sel {
			sums[obj[i]] += vals[r]
		}
	}
	if a.ctr != nil {
		a.collect(b)
	}
}

// collect adds the counters of the batch's selected rows to the sample,
// per process and object.
func (a *aggregator) collect(b *engine.StatTable) {
	s := a.ctr.sample
	if s == nil {
		return
	}
	a.ents = a.ents[:0]
	for i, r := range a.sel {
		a.ents = append(a.ents, int32(s.Entry(int(a.ctr.procW[b.Proc[r]]), int(a.sobj[a.obj[i]]))))
	}
	for si, ser := range a.series {
		c := a.ctr.cp.of[si]
		if c < 0 {
			continue
		}
		col := b.Column(ser.column)
		if col == nil {
			continue
		}
		vals, ents := col.Values, a.ents[:len(a.sel)]
		for i, r := range a.sel {
			s.AddAt(int(ents[i]), c, vals[r])
		}
	}
}

// advance advances the counter part with the snapshot's sample and adds
// the offsets to the sums of the counters: the values sent never go down
// at a reload. Without monotonic counters it does nothing. An error means
// the offsets are unknown: the stage must fail rather than send the sums.
func (a *aggregator) advance(ctx context.Context, snap *engine.Snapshot) error {
	if a.ctr == nil {
		return nil
	}
	if err := a.ctr.advance(ctx, snap); err != nil {
		return err
	}
	s := a.ctr.sample
	for si := range a.series {
		c := a.ctr.cp.of[si]
		if c < 0 || !a.seen[si] {
			continue
		}
		sums := a.sums[si]
		for _, o := range a.order {
			sums[o] += s.Offset(int(a.sobj[o]), c)
		}
	}
	return nil
}

// present returns the number of series whose column the snapshot had.
func (a *aggregator) present() int {
	n := 0
	for _, ok := range a.seen {
		if ok {
			n++
		}
	}
	return n
}

// emit sends the metrics of every object, with the template m(o) (scope
// and names set), through an ObjectEmitter when emit is one.
func (a *aggregator) emit(emit engine.Emitter, m func(o int) engine.Metric) {
	if a.size != nil {
		a.size.note(len(a.order))
	}
	a.labels, a.values = a.labels[:0], a.values[:0]
	for s, ser := range a.series {
		if a.seen[s] {
			a.labels = append(a.labels, ser.label)
			a.values = append(a.values, 0)
		}
	}
	oe, _ := emit.(engine.ObjectEmitter)
	for _, o := range a.order {
		i := 0
		for s, ser := range a.series {
			if !a.seen[s] {
				continue
			}
			v := a.sums[s][o]
			switch ser.kind {
			case mean:
				v /= a.rows[o]
			case meanServed:
				if a.served[o] == 0 {
					v = math.NaN()
				} else {
					v /= a.served[o]
				}
			}
			a.values[i] = v
			i++
		}
		tmpl := m(int(o))
		if oe != nil {
			oe.EmitObject(tmpl, a.labels, a.values)
			continue
		}
		for i, label := range a.labels {
			tmpl.Name, tmpl.Value = label, a.values[i]
			emit.Emit(tmpl)
		}
	}
}

// Size reports the bytes the aggregator holds.
func (a *aggregator) Size() int64 {
	n := int64(cap(a.stamp)+cap(a.order)+cap(a.hint)+cap(a.mhint))*4 + int64(len(a.byName))*48 + int64(cap(a.keys))*8 + int64(cap(a.names))*32 + int64(max(len(a.sparse), a.sparseRoom))*16 + int64(cap(a.dense))*4 + int64(cap(a.rows)+cap(a.served))*8
	for _, s := range a.sums {
		n += int64(cap(s)) * 8
	}
	n += int64(cap(a.sel)+cap(a.obj)+cap(a.servedSel)+cap(a.servedObj)+cap(a.sobj)+cap(a.ents)) * 4
	if a.ctr != nil && a.ctr.sample != nil {
		n += a.ctr.sample.Size() + int64(cap(a.ctr.procW))*4
	}
	return n
}
