package counters

import "github.com/haproxystats-go/haproxystats/internal/spool"

// Sample is what one part (see [Store.Part]) of one snapshot counted: per
// process (a worker, or a plain stats socket) and per object, the value of
// every counter of the part; and, once [Part.Advance] returned, the offset
// to add to each object's sum over the processes.
//
// Processes and objects are numbered densely in the order they are first
// registered in the snapshot ([Sample.Worker], [Sample.Object]), so that
// [Sample.Add] is slice indexing; counters are numbered as in the part's
// counter list. The values of one process and one object are stored once
// ([Sample.Add] adds into them, so rows whose names become equal fold into
// one object), for the processes that have the object only.
//
// A Sample is reused from snapshot to snapshot ([Sample.Reset]): it keeps
// its memory and the object keys it has seen, so a snapshot that looks
// like the previous one allocates nothing. It is not safe for concurrent
// use; a fold owns one.
type Sample struct {
	part *Part
	nc   int // counters per object

	// Object keys, interned across snapshots: intern maps a key to its
	// intern number; inum[i] is its object number in this snapshot when
	// istamp[i] == stamp.
	intern map[string]int32
	ikeys  []string
	istamp []uint32
	inum   []int32
	stamp  uint32

	objects []int32 // object number -> intern number
	workers []sampleWorker
	wnames  map[string]int32 // socket name -> process number
	vals    []float64        // entry × counter: the values of every process and object
	entObj  []int32          // entry -> object number

	offsets []float64 // object × counter, after Advance
	outcome Outcome
	buf     []byte
}

// sampleWorker is one process of a sample.
type sampleWorker struct {
	name spool.SocketName
	slot []int32 // object number -> entry, -1 for none
	ents []int32 // its entries, in the order added
}

// NewSample returns an empty sample for this part, its counters numbered
// as in the list the part was created with.
func (p *Part) NewSample() *Sample {
	return &Sample{
		part:   p,
		nc:     len(p.counters),
		intern: make(map[string]int32),
		wnames: make(map[string]int32),
		stamp:  1,
	}
}

// Counters returns the part's counter names; counter c of Add and Offset
// is Counters()[c]. The slice must not be modified.
func (s *Sample) Counters() []string { return s.part.counters }

// Reset empties the sample for the next snapshot, keeping its memory.
func (s *Sample) Reset() {
	// Intern numbers of keys not seen in the snapshot just ended are
	// dropped when they outnumber the live ones, so that churning objects
	// cannot grow the table without bound.
	if len(s.ikeys) > 2*len(s.objects)+1024 {
		live := make(map[string]int32, len(s.objects))
		keys := make([]string, 0, len(s.objects))
		for _, id := range s.objects {
			live[s.ikeys[id]] = int32(len(keys))
			keys = append(keys, s.ikeys[id])
		}
		s.intern, s.ikeys = live, keys
		s.istamp = make([]uint32, len(keys))
		s.inum = make([]int32, len(keys))
	}
	s.stamp++
	if s.stamp == 0 { // wrapped: no stale stamp may match
		clear(s.istamp)
		s.stamp = 1
	}
	for i := range s.workers {
		w := &s.workers[i]
		for _, e := range w.ents {
			w.slot[s.entObj[e]] = -1
		}
		w.ents = w.ents[:0]
	}
	s.objects = s.objects[:0]
	s.workers = s.workers[:0]
	s.vals, s.entObj = s.vals[:0], s.entObj[:0]
	clear(s.wnames)
	s.offsets = s.offsets[:0]
	s.outcome = 0
}

// Worker registers the process whose files are named socket in the
// snapshot (a socket name as [spool.ParseSocketName] reads it: a master
// CLI's worker, or a plain stats socket) and returns its number; the same
// name returns the same number until Reset.
//
// Every process of the snapshot must be registered, even one without a
// row for this part: a process missing from a sample is taken for gone
// (see the package documentation).
func (s *Sample) Worker(socket string) int {
	if w, ok := s.wnames[socket]; ok {
		return int(w)
	}
	w := len(s.workers)
	if w < cap(s.workers) {
		s.workers = s.workers[:w+1]
	} else {
		s.workers = append(s.workers, sampleWorker{})
	}
	s.workers[w].name = spool.ParseSocketName(socket)
	s.wnames[socket] = int32(w)
	return w
}

// Object registers the object named by names (for example "backend",
// "be1", "srv1": see [Key]) and returns its number; the same names return
// the same number until Reset. Names are compared as given: pass the names
// as they appear in metric paths, so that objects merged in the paths are
// one object here too.
func (s *Sample) Object(names ...string) int {
	s.buf = appendKey(s.buf[:0], names)
	id, ok := s.intern[string(s.buf)]
	if !ok {
		id = int32(len(s.ikeys))
		key := string(s.buf)
		s.intern[key] = id
		s.ikeys = append(s.ikeys, key)
		s.istamp = append(s.istamp, 0)
		s.inum = append(s.inum, 0)
	}
	if s.istamp[id] == s.stamp {
		return int(s.inum[id])
	}
	o := len(s.objects)
	s.istamp[id], s.inum[id] = s.stamp, int32(o)
	s.objects = append(s.objects, id)
	return o
}

// Key returns the key of object o: its names joined by NUL bytes.
func (s *Sample) Key(o int) string { return s.ikeys[s.objects[o]] }

// Objects reports the number of objects registered.
func (s *Sample) Objects() int { return len(s.objects) }

// Workers reports the number of processes registered.
func (s *Sample) Workers() int { return len(s.workers) }

// Add adds v to counter c of object o in process w (numbers returned by
// Worker and Object; c indexes Counters()). Adding, even 0, marks the
// object as present in the process. A NaN counts as 0.
func (s *Sample) Add(w, o, c int, v float64) {
	s.AddAt(s.Entry(w, o), c, v)
}

// Entry returns the entry of object o in process w, the index of their
// values for AddAt, adding it (all counters 0) and so marking the object
// as present in the process. Entries are numbered from 0 in the order
// added, until Reset. A fold that adds column after column looks the
// entries of a batch's rows up once and then calls AddAt.
func (s *Sample) Entry(w, o int) int {
	sw := &s.workers[w]
	if o >= len(sw.slot) {
		n := len(sw.slot)
		sw.slot = append(sw.slot, make([]int32, max(o+1, len(s.objects))-n)...)
		for i := n; i < len(sw.slot); i++ {
			sw.slot[i] = -1
		}
	}
	if e := sw.slot[o]; e >= 0 {
		return int(e)
	}
	e := len(s.entObj)
	sw.slot[o] = int32(e)
	sw.ents = append(sw.ents, int32(e))
	s.entObj = append(s.entObj, int32(o))
	s.vals = append(s.vals, make([]float64, s.nc)...)
	return e
}

// AddAt adds v to counter c of entry e (see Entry). A NaN counts as 0.
func (s *Sample) AddAt(e, c int, v float64) {
	if v == v { // not NaN
		s.vals[e*s.nc+c] += v
	}
}

// Offset returns what to add to the sum over the processes of counter c of
// object o, once Advance returned without error; 0 before.
func (s *Sample) Offset(o, c int) float64 {
	if i := o*s.nc + c; i < len(s.offsets) {
		return s.offsets[i]
	}
	return 0
}

// Offsets returns the offsets of object o, one per counter (nil before
// Advance). The slice belongs to the sample and is valid until Reset.
func (s *Sample) Offsets(o int) []float64 {
	if (o+1)*s.nc > len(s.offsets) {
		return nil
	}
	return s.offsets[o*s.nc : (o+1)*s.nc]
}

// Outcome reports how the last Advance found the offsets.
func (s *Sample) Outcome() Outcome { return s.outcome }

// Key joins object names into the key Sample.Object gives the object:
// the names separated by NUL bytes, e.g. Key("server", "be1", "srv1") is
// "server\x00be1\x00srv1". Names should not hold NUL bytes (HAProxy's
// never do).
func Key(names ...string) string { return string(appendKey(nil, names)) }

func appendKey(b []byte, names []string) []byte {
	for i, n := range names {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, n...)
	}
	return b
}

// Size reports the bytes the sample holds (what a fold adds to its memory
// with monotonic counters): the values of every process and object, the
// interned object keys and the offsets.
func (s *Sample) Size() int64 {
	n := int64(cap(s.vals)+cap(s.offsets))*8 + int64(cap(s.entObj)+cap(s.objects)+cap(s.istamp)+cap(s.inum))*4
	for _, k := range s.ikeys {
		n += int64(len(k)) + 16 + 24 // the key, its header, its map entry
	}
	for _, w := range s.workers[:cap(s.workers)] {
		n += int64(cap(w.slot)+cap(w.ents)) * 4
	}
	return n + int64(cap(s.buf))
}
