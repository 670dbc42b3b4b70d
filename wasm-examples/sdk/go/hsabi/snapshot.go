package hsabi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// Version is the ABI version this SDK implements.
const Version = 1

const (
	inputMagic      = 0x31495348 // "HSI1"
	inputHeaderSize = 64
	flagSameRows    = 1 // bit 0 of the header's flags
)

// Kind is the kind of a statistics row.
type Kind uint8

// Row kinds, as in docs/ABI.md.
const (
	KindOther    Kind = 0 // listener rows and rows without a usable type
	KindFrontend Kind = 1 // svname FRONTEND
	KindBackend  Kind = 2 // svname BACKEND
	KindServer   Kind = 3 // type 2
)

// ID identifies a string (a proxy, server, process, key or column name)
// for the life of the module instance: the host numbers strings once, so
// the same name has the same ID in every snapshot and IDs can key state
// kept between snapshots. Use Snapshot.Str to get the name back.
type ID uint32

// Snapshot is one snapshot as the host hands it over.
type Snapshot struct {
	// Name is the snapshot name, the timestamp of every metric sent for it.
	Name string
	// Time is Name as seconds since the epoch, or -1 when Name is not an
	// integer.
	Time int64
	// Info holds the `show info` values, one row per HAProxy process.
	Info InfoTable
	// Stats holds the `show stat` rows of every process.
	Stats StatTable
	// SameRows is true when the statistics rows (their processes, kinds,
	// proxy and server IDs, in order) are those of the previous snapshot
	// this instance was given: what a stage derived from them alone, such
	// as a Grouping, still holds. Values may differ.
	SameRows bool

	names []string // ID -> string, the host's string table
	// rowsGen counts the snapshots whose rows differed from the previous
	// one's: equal generations have the same rows.
	rowsGen uint64
}

// Str returns the string of an ID.
func (s *Snapshot) Str(id ID) string { return s.names[id] }

// InfoTable is the daemon part of a snapshot.
type InfoTable struct {
	// Procs is the socket name of each process (row).
	Procs []string
	// Keys lists the `show info` keys with an integer value.
	Keys []string
	// Values[k][row] is the value of Keys[k] for that process; 0 when
	// absent.
	Values [][]int64
	// Nulls[k] is the null bitmap of Keys[k]: bit row%64 of word row/64 is
	// set when the process did not report the key.
	Nulls [][]uint64
}

// Rows reports the number of processes.
func (t *InfoTable) Rows() int { return len(t.Procs) }

// Key returns the index of key in Keys, or -1.
func (t *InfoTable) Key(key string) int {
	for i, k := range t.Keys {
		if k == key {
			return i
		}
	}
	return -1
}

// Value returns the value of key for process row, and whether the process
// reported it.
func (t *InfoTable) Value(key string, row int) (int64, bool) {
	k := t.Key(key)
	if k < 0 || row < 0 || row >= t.Rows() || isSet(t.Nulls[k], row) {
		return 0, false
	}
	return t.Values[k][row], true
}

// StatTable holds the statistics rows. Per-row data is held in flat
// slices of numbers (no string per row): look names up with Px, Sv or
// Snapshot.Str, and group rows by ID.
type StatTable struct {
	// Procs is the socket name of every process that sent rows, and
	// ProcIDs their IDs.
	Procs   []string
	ProcIDs []ID
	// Proc is, per row, the index into Procs of the row's process.
	Proc []uint32
	// Kind is, per row, its kind.
	Kind []Kind
	// PxID and SvID are, per row, the IDs of the proxy and server name,
	// with every '.' replaced by '_' (svname is FRONTEND or BACKEND for
	// those rows).
	PxID, SvID []ID
	// Columns are the columns the stage declared that the snapshot has, in
	// the declared order.
	Columns []Column

	snap *Snapshot
}

// Rows reports the number of rows.
func (t *StatTable) Rows() int { return len(t.Kind) }

// Px returns the proxy name of row i.
func (t *StatTable) Px(i int) string { return t.snap.names[t.PxID[i]] }

// Sv returns the server name of row i.
func (t *StatTable) Sv(i int) string { return t.snap.names[t.SvID[i]] }

// Column returns the named column, or nil when the snapshot does not have
// it (or the stage did not declare it).
func (t *StatTable) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// Column is one numeric `show stat` field over all rows.
type Column struct {
	Name string
	// Values holds one value per row, 0 where the cell is null.
	Values []float64
	// Nulls is the null bitmap: bit row%64 of word row/64 is set when the
	// cell was empty or missing.
	Nulls []uint64
}

// Null reports whether the cell of row i is empty or missing.
func (c *Column) Null(i int) bool { return isSet(c.Nulls, i) }

// Get returns the value of row i and whether it is present. It is safe to
// call on a nil column (absent column): it then reports false.
func (c *Column) Get(i int) (float64, bool) {
	if c == nil || i < 0 || i >= len(c.Values) || c.Null(i) {
		return 0, false
	}
	return c.Values[i], true
}

func isSet(bits []uint64, i int) bool { return bits[i>>6]&(1<<(uint(i)&63)) != 0 }

// ErrInput is wrapped by the errors of Decode.
var ErrInput = errors.New("malformed input buffer")

// reader reads the input buffer with bounds checks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInput)
	}
}

func (r *reader) check(off, n, size int, what string) bool {
	if r.err != nil {
		return false
	}
	if off < 0 || n < 0 || off%size != 0 || n > (len(r.b)-off)/size {
		r.fail("%s: %d items of %d bytes at %d outside %d bytes", what, n, size, off, len(r.b))
		return false
	}
	return true
}

func (r *reader) u32(off int) uint32 {
	if !r.check(off, 1, 4, "u32") {
		return 0
	}
	return binary.LittleEndian.Uint32(r.b[off:])
}

func (r *reader) u32s(off, n int, what string) []uint32 {
	if n == 0 || !r.check(off, n, 4, what) {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&r.b[off])), n)
}

func (r *reader) u64s(off, n int, what string) []uint64 {
	if n == 0 || !r.check(off, n, 8, what) {
		return nil
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&r.b[off])), n)
}

func (r *reader) i64s(off, n int, what string) []int64 {
	if n == 0 || !r.check(off, n, 8, what) {
		return nil
	}
	return unsafe.Slice((*int64)(unsafe.Pointer(&r.b[off])), n)
}

func (r *reader) f64s(off, n int, what string) []float64 {
	if n == 0 || !r.check(off, n, 8, what) {
		return nil
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(&r.b[off])), n)
}

func align8(n int) int { return (n + 7) &^ 7 }

func words(rows int) int { return (rows + 63) / 64 }

// Decode decodes an input buffer (docs/ABI.md, "Input buffer") into s,
// reusing s's slices. b must start at an 8-byte aligned address; the
// slices of s point into b. The host runs on a little-endian machine and so
// does WebAssembly, so the arrays are used in place.
func (s *Snapshot) Decode(b []byte) error {
	r := &reader{b: b}
	if len(b) < inputHeaderSize {
		return fmt.Errorf("%d bytes, shorter than the header: %w", len(b), ErrInput)
	}
	if uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		return fmt.Errorf("buffer not 8-byte aligned: %w", ErrInput)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b); m != inputMagic {
		return fmt.Errorf("magic %#x: %w", m, ErrInput)
	}
	if v := le.Uint32(b[4:]); v != Version {
		return fmt.Errorf("ABI version %d, this SDK implements %d: %w", v, Version, ErrInput)
	}
	if n := le.Uint32(b[8:]); int(n) != len(b) {
		return fmt.Errorf("header says %d bytes, buffer has %d: %w", n, len(b), ErrInput)
	}
	nstr := int(le.Uint32(b[12:]))
	s.Time = int64(le.Uint64(b[16:]))
	nameLen := int(le.Uint32(b[24:]))
	iRows, iKeys := int(le.Uint32(b[28:])), int(le.Uint32(b[32:]))
	sProcs, rows, ncols := int(le.Uint32(b[36:])), int(le.Uint32(b[40:])), int(le.Uint32(b[44:]))
	strOff, infoOff, statOff := int(le.Uint32(b[48:])), int(le.Uint32(b[52:])), int(le.Uint32(b[56:]))
	s.SameRows = le.Uint32(b[60:])&flagSameRows != 0
	if !s.SameRows || s.rowsGen == 0 {
		s.rowsGen++
	}

	// Strings: the host's table only grows, ids are stable; convert the
	// strings that are new since the previous call.
	if nstr < len(s.names) {
		s.names = s.names[:0] // a new table; cannot happen within one instance
	}
	table := r.u32s(strOff, 2*nstr, "string table")
	for i := len(s.names); i < nstr && r.err == nil; i++ {
		off, n := int(table[2*i]), int(table[2*i+1])
		if off > len(b) || n > len(b)-off {
			r.fail("string %d outside the buffer", i)
			break
		}
		s.names = append(s.names, string(b[off:off+n]))
	}
	if r.err != nil {
		s.names = s.names[:0]
		return r.err
	}
	str := func(id uint32) string {
		if int(id) >= nstr {
			r.fail("string id %d of %d", id, nstr)
			return ""
		}
		return s.names[id]
	}
	if nameLen > len(b)-inputHeaderSize {
		return fmt.Errorf("snapshot name of %d bytes: %w", nameLen, ErrInput)
	}
	if name := b[inputHeaderSize : inputHeaderSize+nameLen]; s.Name != string(name) {
		s.Name = string(name)
	}

	// Daemon section.
	off := infoOff
	ids := r.u32s(off, iRows, "info procs")
	s.Info.Procs = s.Info.Procs[:0]
	for _, id := range ids {
		s.Info.Procs = append(s.Info.Procs, str(id))
	}
	off = align8(off + 4*iRows)
	ids = r.u32s(off, iKeys, "info keys")
	s.Info.Keys = s.Info.Keys[:0]
	for _, id := range ids {
		s.Info.Keys = append(s.Info.Keys, str(id))
	}
	off = align8(off + 4*iKeys)
	s.Info.Values, s.Info.Nulls = s.Info.Values[:0], s.Info.Nulls[:0]
	for k := 0; k < iKeys && r.err == nil; k++ {
		s.Info.Values = append(s.Info.Values, r.i64s(off, iRows, "info values"))
		off += 8 * iRows
		s.Info.Nulls = append(s.Info.Nulls, r.u64s(off, words(iRows), "info nulls"))
		off += 8 * words(iRows)
	}

	// Statistics section.
	t := &s.Stats
	t.snap = s
	off = statOff
	ids = r.u32s(off, sProcs, "stat procs")
	t.Procs, t.ProcIDs = t.Procs[:0], t.ProcIDs[:0]
	for _, id := range ids {
		t.Procs = append(t.Procs, str(id))
		t.ProcIDs = append(t.ProcIDs, ID(id))
	}
	off = align8(off + 4*sProcs)
	t.Proc = r.u32s(off, rows, "row procs")
	off = align8(off + 4*rows)
	t.PxID = ids32(r.u32s(off, rows, "row pxname"))
	off = align8(off + 4*rows)
	t.SvID = ids32(r.u32s(off, rows, "row svname"))
	off = align8(off + 4*rows)
	if r.check(off, rows, 1, "row kinds") && rows > 0 {
		t.Kind = unsafe.Slice((*Kind)(unsafe.Pointer(&b[off])), rows)
	} else {
		t.Kind = t.Kind[:0]
	}
	off = align8(off + rows)
	// Row ids and process indexes are not checked one by one (that
	// would cost a pass over the rows): the host writes them correctly, and
	// a wrong one makes Px, Sv or Procs panic, which fails the call.
	t.Columns = t.Columns[:0]
	for c := 0; c < ncols && r.err == nil; c++ {
		name := str(r.u32(off))
		off += 8
		vals := r.f64s(off, rows, "column values")
		off += 8 * rows
		nulls := r.u64s(off, words(rows), "column nulls")
		off += 8 * words(rows)
		t.Columns = append(t.Columns, Column{Name: name, Values: vals, Nulls: nulls})
	}
	if r.err != nil {
		return r.err
	}
	if rows == 0 {
		t.Proc, t.Kind, t.PxID, t.SvID = t.Proc[:0], t.Kind[:0], t.PxID[:0], t.SvID[:0]
	}
	return nil
}

// ids32 converts a slice of string ids in place.
func ids32(u []uint32) []ID {
	if len(u) == 0 {
		return nil
	}
	return unsafe.Slice((*ID)(unsafe.Pointer(&u[0])), len(u))
}
