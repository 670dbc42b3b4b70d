package hsabi

// Index gives the distinct keys it is shown dense slots 0, 1, 2, ... in
// order of first appearance: a hash table without allocation per look-up,
// to group rows by object (a proxy ID, a pair of IDs). The zero value is
// ready to use; Reset empties it and keeps its memory.
//
// Go maps work too, but in WebAssembly every map operation is a runtime
// call, which costs several times more under the host's timeout checks; a
// stage that looks up every row should use an Index, or a Grouping when
// it groups rows by (proxy, server).
type Index struct {
	keys  []uint64 // key+1 per bucket, 0 = empty
	slots []int32
	shift uint // 64 - log2(len(keys)); 0 while empty
	n     int
}

// Pair combines two IDs into an Index key.
func Pair(a, b ID) uint64 { return uint64(a)<<32 | uint64(b) }

// Len reports the number of distinct keys.
func (x *Index) Len() int { return x.n }

// Reset removes every key.
func (x *Index) Reset() {
	clear(x.keys)
	x.n = 0
}

// bucket is Fibonacci hashing: the top bits of key times 2^64/φ.
func (x *Index) bucket(key uint64) uint64 { return (key * 0x9E3779B97F4A7C15) >> x.shift }

// Home returns the slot of key when the key sits in its first bucket, the
// common case, or -1. It is small enough to be inlined: in a loop over
// every row, `o := x.Home(k); if o < 0 { o, added = x.Slot(k) }` saves a
// function call per row, which the host's timeout checks make costly.
func (x *Index) Home(key uint64) int {
	if h := x.bucket(key); h < uint64(len(x.keys)) && x.keys[h] == key+1 {
		return int(x.slots[h])
	}
	return -1
}

// Slot returns the slot of key, adding it (with the next free slot, and
// added true) when it is new. Keys must be below 1<<64-1.
func (x *Index) Slot(key uint64) (slot int, added bool) {
	// Fast path, small enough to be inlined: the key is in its bucket.
	if h := x.bucket(key); h < uint64(len(x.keys)) && x.keys[h] == key+1 {
		return int(x.slots[h]), false
	}
	return x.slot(key)
}

func (x *Index) slot(key uint64) (slot int, added bool) {
	if 2*(x.n+1) > len(x.keys) {
		x.grow()
	}
	mask := uint64(len(x.keys) - 1)
	for h := x.bucket(key); ; h = (h + 1) & mask {
		switch x.keys[h] {
		case key + 1:
			return int(x.slots[h]), false
		case 0:
			x.keys[h] = key + 1
			x.slots[h] = int32(x.n)
			x.n++
			return x.n - 1, true
		}
	}
}

// Lookup returns the slot of key, or -1.
func (x *Index) Lookup(key uint64) int {
	if len(x.keys) == 0 {
		return -1
	}
	mask := uint64(len(x.keys) - 1)
	for h := x.bucket(key); ; h = (h + 1) & mask {
		switch x.keys[h] {
		case key + 1:
			return int(x.slots[h])
		case 0:
			return -1
		}
	}
}

func (x *Index) grow() {
	size := max(64, 2*len(x.keys))
	keys, slots := x.keys, x.slots
	x.keys, x.slots = make([]uint64, size), make([]int32, size)
	x.shift = 64
	for s := size; s > 1; s >>= 1 {
		x.shift--
	}
	mask := uint64(size - 1)
	for i, k := range keys {
		if k == 0 {
			continue
		}
		h := x.bucket(k - 1)
		for x.keys[h] != 0 {
			h = (h + 1) & mask
		}
		x.keys[h], x.slots[h] = k, slots[i]
	}
}
