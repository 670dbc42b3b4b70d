package hsabi

// KindMask selects row kinds for Grouping.Group; see Kinds.
type KindMask uint8

// Kinds returns the mask of the given kinds.
func Kinds(kinds ...Kind) KindMask {
	var m KindMask
	for _, k := range kinds {
		m |= 1 << k
	}
	return m
}

// Grouping assigns the rows of a StatTable to objects: rows with the same
// (proxy, server) pair, one object's rows in every HAProxy process, share
// a slot, numbered from 0 in the order of their first row. HAProxy lists
// the same objects in the same order snapshot after snapshot, and the host
// says so (Snapshot.SameRows): Group then keeps its previous result
// instead of a hash look-up per row, which the host's timeout checks make
// costly in Go (every branch of a Go function is a loop iteration for
// them). The zero value is ready to use; a Grouping is not safe for
// concurrent use (a stage is never called concurrently).
type Grouping struct {
	// Slot is, per row, the row's object, or -1 for rows of other kinds.
	Slot []int32
	// First is, per object, its first row: its PxID, SvID and Kind.
	First []int32

	mask      KindMask
	gen       uint64 // the rows generation grouped, 0 = none
	index     Index
	regrouped int // times Group did not reuse the previous grouping
}

// Group groups the rows of t whose kind is in mask and returns the number
// of objects. Slot and First are valid until the next call.
func (g *Grouping) Group(t *StatTable, mask KindMask) int {
	var gen uint64
	if t.snap != nil {
		gen = t.snap.rowsGen
	}
	if gen != 0 && gen == g.gen && mask == g.mask && len(g.Slot) == len(t.Kind) {
		return len(g.First)
	}
	g.regrouped++
	g.gen, g.mask = gen, mask
	g.index.Reset()
	g.First = g.First[:0]
	if cap(g.Slot) < len(t.Kind) {
		g.Slot = make([]int32, len(t.Kind))
	}
	g.Slot = g.Slot[:len(t.Kind)]
	for i, k := range t.Kind {
		if mask&(1<<k) == 0 {
			g.Slot[i] = -1
			continue
		}
		slot, added := g.index.Slot(Pair(t.PxID[i], t.SvID[i]))
		if added {
			g.First = append(g.First, int32(i))
		}
		g.Slot[i] = int32(slot)
	}
	return len(g.First)
}

// Zeros returns s resized to n zeros, reusing its memory: the per-object
// sums of a Grouping, snapshot after snapshot.
func Zeros(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	s = s[:n]
	clear(s)
	return s
}
