package counters

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The state file: magic, body, CRC-32C (Castagnoli) of magic and body,
// little-endian. Integers are varints (encoding/binary); a string is its
// length then its bytes; a value is a uvarint 2n for a whole number n in
// [0, 2^62), else 1 followed by the 8 bytes of its IEEE 754 bits.
//
//	body     = uvarint(parts) part*
//	part     = string(name) uvarint(nc) string(counter)*nc
//	           varint(t) varint(curFirst)
//	           uvarint(keys) string(key)*keys
//	           uvarint(instances) instance*  uvarint(versions) version*
//	instance = string(key) uvarint(masterPID) varint(seen)
//	           uvarint(objects) (uvarint(key number) varint(lastSeen))*objects
//	           byte(carried: 0 or 1) [rows(objects)]
//	           uvarint(workers) (uvarint(pid) uvarint(missed) rows(objects))*workers
//	version  = varint(first) varint(last) uvarint(keys) string(key)*keys rows(keys)
//	rows(n)  = n × (uvarint(k) (uvarint(counter) value)*k)  k non-zero values, counters ascending
//
// Key numbers index the part's key list; the instances' objects and the
// versions' keys are written compacted (free numbers skipped).
const stateMagic = "HSCNTR\x00\x01"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encoder writes the state file.
type encoder struct {
	b []byte
}

func newEncoder() *encoder { return &encoder{b: append(make([]byte, 0, 4096), stateMagic...)} }

func (e *encoder) begin(parts int) { e.uvarint(uint64(parts)) }

func (e *encoder) finish() []byte {
	return binary.LittleEndian.AppendUint32(e.b, crc32.Checksum(e.b, castagnoli))
}

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

func (e *encoder) value(v float64) {
	if isWhole(v) {
		e.uvarint(uint64(v) << 1)
		return
	}
	e.uvarint(1)
	e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v))
}

// isWhole reports whether v is written as an integer: a whole number in
// [0, 2^62), not -0.
func isWhole(v float64) bool {
	return v >= 0 && v < 1<<62 && v == math.Trunc(v) && !math.Signbit(v)
}

// rows writes the rows of table for the local numbers lids (nil: every row).
func (e *encoder) rows(table []float64, nc int, lids []int32) {
	write := func(row []float64) {
		k := 0
		for _, v := range row {
			if v != 0 {
				k++
			}
		}
		e.uvarint(uint64(k))
		for c, v := range row {
			if v != 0 {
				e.uvarint(uint64(c))
				e.value(v)
			}
		}
	}
	if lids == nil {
		for r := 0; r*nc < len(table); r++ {
			write(table[r*nc : (r+1)*nc])
		}
		return
	}
	for _, l := range lids {
		write(table[int(l)*nc : (int(l)+1)*nc])
	}
}

// part writes one part's state, compacting its numbers.
func (e *encoder) part(st *partState) {
	e.str(st.name)
	e.uvarint(uint64(st.nc))
	for _, c := range st.counters {
		e.str(c)
	}
	e.varint(st.t)
	e.varint(st.curFirst)
	newGid := make([]int32, len(st.keys))
	n := 0
	for g, k := range st.keys {
		newGid[g] = -1
		if k != "" {
			newGid[g] = int32(n)
			n++
		}
	}
	e.uvarint(uint64(n))
	for _, k := range st.keys {
		if k != "" {
			e.str(k)
		}
	}
	e.uvarint(uint64(len(st.insts)))
	var lids []int32
	for _, in := range st.insts {
		e.str(in.key)
		e.uvarint(uint64(in.masterPID))
		e.varint(in.seen)
		lids = lids[:0]
		for l, g := range in.gidOf {
			if g >= 0 {
				lids = append(lids, int32(l))
			}
		}
		e.uvarint(uint64(len(lids)))
		for _, l := range lids {
			e.uvarint(uint64(newGid[in.gidOf[l]]))
			e.varint(in.lastSeen[l])
		}
		if in.carried == nil {
			e.b = append(e.b, 0)
		} else {
			e.b = append(e.b, 1)
			e.rows(in.carried, st.nc, lids)
		}
		e.uvarint(uint64(len(in.workers)))
		for _, w := range in.workers {
			e.uvarint(uint64(w.pid))
			e.uvarint(uint64(w.missed))
			e.rows(w.last, st.nc, lids)
		}
	}
	e.uvarint(uint64(len(st.versions)))
	for _, v := range st.versions {
		e.varint(v.first)
		e.varint(v.last)
		e.uvarint(uint64(len(v.keys)))
		for _, k := range v.keys {
			e.str(k)
		}
		e.rows(v.vals, st.nc, nil)
	}
}

// errCorrupt wraps every decoding error.
var errCorrupt = errors.New("corrupt counters state")

// decoder reads the state file's body; every read is bounds-checked and
// every count is checked against the bytes left before allocating.
//
// Decoding is strict: only what the encoder writes is accepted (minimal
// varints, whole numbers as integers, instances and workers sorted), so a
// state decodes to exactly one encoding.
type decoder struct {
	b       []byte
	off     int
	err     error
	scratch [binary.MaxVarintLen64]byte
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", errCorrupt, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 || n != len(binary.AppendUvarint(d.scratch[:0], v)) {
		d.fail("bad unsigned varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 || n != len(binary.AppendVarint(d.scratch[:0], v)) {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

// count reads a number of items each at least min bytes long.
func (d *decoder) count(what string, min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64((len(d.b)-d.off)/min) {
		d.fail("%s count %d exceeds the %d bytes left", what, n, len(d.b)-d.off)
		return 0
	}
	return int(n)
}

func (d *decoder) str(what string) string {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)-d.off) {
		d.fail("%s length %d exceeds the %d bytes left", what, n, len(d.b)-d.off)
	}
	if d.err != nil {
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("unexpected end")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) value() float64 {
	u := d.uvarint()
	if d.err != nil {
		return 0
	}
	if u&1 == 0 {
		return float64(u >> 1)
	}
	if u != 1 {
		d.fail("bad value tag %d", u)
		return 0
	}
	if len(d.b)-d.off < 8 {
		d.fail("unexpected end in a value")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.off:]))
	d.off += 8
	if math.IsNaN(v) || math.IsInf(v, 0) || isWhole(v) {
		d.fail("value %v", v)
	}
	return v
}

// rows reads n rows of nc values into a new table.
func (d *decoder) rows(n, nc int) []float64 {
	if d.err != nil {
		return nil
	}
	if n > (len(d.b)-d.off) || n*nc > 1<<28 {
		d.fail("%d rows of %d values exceed the bytes left", n, nc)
		return nil
	}
	t := make([]float64, n*nc)
	for r := range n {
		k := d.count("values", 2)
		if k > nc {
			d.fail("%d values in a row of %d counters", k, nc)
		}
		prev := -1
		for range k {
			c := d.uvarint()
			if d.err == nil && (c >= uint64(nc) || int(c) <= prev) {
				d.fail("counter number %d out of order or range", c)
			}
			v := d.value()
			if d.err != nil {
				return nil
			}
			if v == 0 {
				d.fail("zero value written")
				return nil
			}
			t[r*nc+int(c)] = v
			prev = int(c)
		}
		if d.err != nil {
			return nil
		}
	}
	return t
}

// decodeState decodes a state file.
func decodeState(data []byte) ([]*partState, error) {
	if len(data) < len(stateMagic)+4 || string(data[:len(stateMagic)]) != stateMagic {
		return nil, fmt.Errorf("%w: not a counters state file (bad magic or too short)", errCorrupt)
	}
	body := data[:len(data)-4]
	if want, got := binary.LittleEndian.Uint32(data[len(data)-4:]), crc32.Checksum(body, castagnoli); want != got {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", errCorrupt, got, want)
	}
	return decodeBody(body[len(stateMagic):])
}

// decodeBody decodes the part list and checks its consistency.
func decodeBody(body []byte) ([]*partState, error) {
	d := &decoder{b: body}
	nparts := d.count("parts", 8)
	var parts []*partState
	names := make(map[string]bool)
	for range nparts {
		st := d.part()
		if d.err != nil {
			return nil, d.err
		}
		if names[st.name] {
			d.fail("part %q twice", st.name)
			return nil, d.err
		}
		names[st.name] = true
		parts = append(parts, st)
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d bytes after the last part", len(d.b)-d.off)
	}
	if d.err != nil {
		return nil, d.err
	}
	return parts, nil
}

func (d *decoder) part() *partState {
	name := d.str("part name")
	nc := d.count("counters", 1)
	if d.err == nil && (name == "" || nc == 0) {
		d.fail("part %q with %d counters", name, nc)
	}
	counters := make([]string, 0, nc)
	for range nc {
		c := d.str("counter")
		if d.err == nil && (c == "" || slices.Contains(counters, c)) {
			d.fail("part %q: counter %q empty or twice", name, c)
		}
		counters = append(counters, c)
	}
	if d.err != nil {
		return nil
	}
	st := newPartState(name, counters)
	st.t, st.curFirst = d.varint(), d.varint()
	if d.err == nil && (st.t < 0 || st.curFirst < 0 || st.curFirst > st.t || (st.t > 0) != (st.curFirst > 0)) {
		d.fail("part %q: times %d and %d", name, st.t, st.curFirst)
	}
	nkeys := d.count("keys", 1)
	for range nkeys {
		k := d.str("key")
		if d.err != nil {
			return nil
		}
		if _, dup := st.ids[k]; k == "" || dup {
			d.fail("part %q: key %q empty or twice", name, k)
			return nil
		}
		st.gid(k)
	}
	ninst := d.count("instances", 4)
	for range ninst {
		in := d.instance(st, nkeys)
		if d.err != nil {
			return nil
		}
		if n := len(st.insts); n > 0 && st.insts[n-1].key >= in.key {
			d.fail("part %q: instance %q out of order or twice", name, in.key)
			return nil
		}
		st.insts = append(st.insts, in)
	}
	nver := d.count("versions", 3)
	var prevLast int64
	for range nver {
		v := &version{first: d.varint(), last: d.varint()}
		if d.err == nil && (v.first <= prevLast || v.last < v.first || v.last >= st.curFirst) {
			d.fail("part %q: version from %d to %d out of order", name, v.first, v.last)
		}
		prevLast = v.last
		n := d.count("version keys", 1)
		seen := make(map[string]bool, n)
		for range n {
			k := d.str("version key")
			if d.err == nil && (k == "" || seen[k]) {
				d.fail("part %q: version key %q empty or twice", name, k)
			}
			seen[k] = true
			v.keys = append(v.keys, k)
		}
		v.vals = d.rows(n, nc)
		if d.err != nil {
			return nil
		}
		st.versions = append(st.versions, v)
	}
	if d.err != nil {
		return nil
	}
	// Every key must be some instance's object.
	st.collectGids()
	if len(st.freeG) > 0 {
		d.fail("part %q: %d keys no instance has", name, len(st.freeG))
		return nil
	}
	st.totals = st.computeTotals(st.t)
	return st
}

func (d *decoder) instance(st *partState, nkeys int) *instance {
	in := &instance{key: d.str("instance key")}
	if d.err == nil && !(strings.HasPrefix(in.key, "m:") || strings.HasPrefix(in.key, "s:")) || len(in.key) < 3 {
		d.fail("instance key %q", in.key)
	}
	mpid := d.uvarint()
	in.seen = d.varint()
	if d.err == nil && (mpid > maxPID || in.seen <= 0 || in.seen > st.t) {
		d.fail("instance %q: master PID %d, seen at %d", in.key, mpid, in.seen)
	}
	in.masterPID = int(mpid)
	nobj := d.count("objects", 2)
	if d.err != nil {
		return nil
	}
	in.lidOf = fill(in.lidOf, nkeys, -1)
	for l := range nobj {
		g := d.uvarint()
		seen := d.varint()
		if d.err == nil && (g >= uint64(nkeys) || in.lidOf[g] >= 0 || seen <= 0 || seen > in.seen) {
			d.fail("instance %q: object %d (key number %d, seen at %d)", in.key, l, g, seen)
		}
		if d.err != nil {
			return nil
		}
		in.lidOf[g] = int32(l)
		in.gidOf = append(in.gidOf, int32(g))
		in.lastSeen = append(in.lastSeen, seen)
	}
	switch d.byte() {
	case 0:
	case 1:
		in.carried = d.rows(nobj, st.nc)
	default:
		d.fail("instance %q: bad carried flag", in.key)
	}
	nw := d.count("workers", 2)
	for range nw {
		pid, missed := d.uvarint(), d.uvarint()
		if n := len(in.workers); d.err == nil && (pid > maxPID || missed > departedGrace || (n > 0 && uint64(in.workers[n-1].pid) >= pid)) {
			d.fail("instance %q: worker %d (missed %d) invalid, out of order or twice", in.key, pid, missed)
		}
		w := &worker{pid: int(pid), missed: int(missed), last: d.rows(nobj, st.nc)}
		if d.err != nil {
			return nil
		}
		in.workers = append(in.workers, w)
	}
	return in
}

// maxPID is the largest PID accepted (pid_t is 32 bits).
const maxPID = 1<<31 - 1

// writeAtomic replaces dir/name with data: a temporary file in dir,
// written and fsynced, renamed over name, and dir fsynced.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
