package builtin

import (
	"math"
	"slices"

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
// objects (keyed by a number made of the rows' name numbers, numbered in
// first-seen order), and per series the sum of the column over the
// object's rows (or over its served rows). It holds what the metrics need
// and nothing per row. Not safe for concurrent use.
type aggregator struct {
	series []series
	// An object's number by key: dense (a slice indexed by the key, -1
	// for none) for keys that are one name number, a map for pairs.
	dense  []int32
	sparse map[uint64]int32
	keys   []uint64
	names  []objectName // per object
	rows   []float64    // per object, its rows
	served []float64    // per object, its rows with lbtot > 0
	sums   [][]float64  // per series, per object
	seen   []bool       // per series: a file of the snapshot has the column

	// Per batch: the selected rows and their objects, and those of them
	// with lbtot > 0.
	sel, obj             []int32
	servedSel, servedObj []int32
}

// objectName is the proxy (or the server alone) and the server of an
// object, as in metric paths.
type objectName struct{ object, server string }

// newAggregator returns an aggregator of the series ss; pairs selects keys
// made of two name numbers.
func newAggregator(ss []series, pairs bool) *aggregator {
	a := &aggregator{series: ss, sums: make([][]float64, len(ss)), seen: make([]bool, len(ss))}
	if pairs {
		a.sparse = make(map[uint64]int32)
	}
	return a
}

func (a *aggregator) reset() {
	if a.sparse != nil {
		clear(a.sparse)
	} else {
		for _, k := range a.keys {
			a.dense[k] = -1
		}
	}
	clear(a.names)
	a.keys, a.names, a.rows, a.served = a.keys[:0], a.names[:0], a.rows[:0], a.served[:0]
	for i := range a.sums {
		a.sums[i] = a.sums[i][:0]
	}
	clear(a.seen)
}

// object returns the number of the object of key k, adding it with the
// names name returns.
func (a *aggregator) object(k uint64, name func() objectName) int32 {
	if a.sparse != nil {
		if i, ok := a.sparse[k]; ok {
			return i
		}
	} else {
		if k >= uint64(len(a.dense)) {
			n := len(a.dense)
			a.dense = append(a.dense, make([]int32, int(k)+1-n+n/2)...)
			for j := n; j < len(a.dense); j++ {
				a.dense[j] = -1
			}
		}
		if i := a.dense[k]; i >= 0 {
			return i
		}
	}
	i := int32(len(a.keys))
	if a.sparse != nil {
		a.sparse[k] = i
	} else {
		a.dense[k] = i
	}
	a.keys = append(a.keys, k)
	a.names = append(a.names, name())
	a.rows = append(a.rows, 0)
	a.served = append(a.served, 0)
	for s := range a.sums {
		a.sums[s] = append(a.sums[s], 0)
	}
	return i
}

// fold adds the rows of b that selectRow returns true for to their
// objects: key gives a row's key, name the names of a new object.
func (a *aggregator) fold(b *engine.StatTable, selectRow func(r int) bool, key func(r int) uint64, name func(r int) objectName) {
	a.sel, a.obj = a.sel[:0], a.obj[:0]
	for r := range b.Rows() {
		if !selectRow(r) {
			continue
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
		for i, r := range sel {
			sums[obj[i]] += vals[r]
		}
	}
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

// emit sends the metrics of object o with the template m (scope and
// names set), and returns how many it sent (NaN included).
func (a *aggregator) emit(o int, m engine.Metric, emit engine.Emitter) int {
	n := 0
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
		m.Name, m.Value = ser.label, v
		emit.Emit(m)
		n++
	}
	return n
}

// Size reports the bytes the aggregator holds.
func (a *aggregator) Size() int64 {
	n := int64(cap(a.keys))*8 + int64(cap(a.names))*32 + int64(len(a.sparse))*16 + int64(cap(a.dense))*4 + int64(cap(a.rows)+cap(a.served))*8
	for _, s := range a.sums {
		n += int64(cap(s)) * 8
	}
	return n + int64(cap(a.sel)+cap(a.obj)+cap(a.servedSel)+cap(a.servedObj))*4
}
