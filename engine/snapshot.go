package engine

import (
	"fmt"
	"math/bits"
)

// Snapshot is one snapshot directory (`incoming/<epoch>/`) as the stages
// see it. Its Name is the directory's base name and is used verbatim as the
// timestamp of every metric computed from it.
//
// A Snapshot is read-only for stages: a stage must not modify it and must
// not keep references to it (or to its slices) after it returns, because
// the pipeline reuses the memory for the next snapshot.
type Snapshot struct {
	// Name is the snapshot directory name (seconds since the epoch).
	Name string
	// Info holds the `show info` answers, one row per process.
	Info InfoTable
	// Stats holds the `show stat` rows of every process when a Stage of
	// the pipeline needs them (Folders get the rows batch by batch
	// instead); otherwise it has no rows.
	Stats StatTable
	// InfoFiles and StatFiles count the `*_info` and `*_stat` files found,
	// whether or not they held usable data.
	InfoFiles, StatFiles int
	// Problems lists files, lines and cells that were skipped, each error
	// naming the file.
	Problems []error
	// Rejected counts the files that were refused: not HAProxy CSV, not a
	// regular file, or larger than the size limit (a subset of Problems;
	// empty files are skipped but not rejected).
	Rejected int
}

// InfoTable is the daemon part of a snapshot: one row per `*_info` file that
// had at least one `Key: integer` line.
type InfoTable struct {
	// Procs is the socket name of each row (the file name without `_info`).
	Procs []string
	// Keys lists every key that has an integer value in at least one file,
	// in first-seen order.
	Keys []string
	// Values[k][row] is the value of Keys[k] in that row; Has[k][row]
	// reports whether the row carried the key with an integer value.
	Values [][]int64
	Has    [][]bool
	// Dropped[k][row] reports that the row carried the key with a value
	// that is not an integer (a problem naming file, key and value is
	// recorded): the cell has no value, but the row is not missing the key.
	Dropped [][]bool
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

// Uniform reports whether every row carries every key, with a value or a
// dropped one. The original processor could not handle rows with
// different key sets.
func (t *InfoTable) Uniform() bool {
	for k, has := range t.Has {
		for row, ok := range has {
			if !ok && !t.Dropped[k][row] {
				return false
			}
		}
	}
	return true
}

// Row kinds of a StatTable, from the `svname` and `type` columns.
const (
	KindOther    uint8 = iota // listener rows and rows without a usable type
	KindFrontend              // svname FRONTEND
	KindBackend               // svname BACKEND
	KindServer                // type 2
)

// StatTable holds `show stat` rows: every row of every process for a
// Stage, or one batch of rows of one file for a Fold. Rows are in file name
// order, then in file order. Columns are found by header name; only the
// columns the stages asked for are present.
type StatTable struct {
	// Procs lists the socket name of every `*_stat` file that contributed
	// rows so far.
	Procs []string
	// Proc is, per row, the index into Procs of the file it came from.
	Proc []int32
	// Kind is, per row, one of KindFrontend, KindBackend, KindServer, KindOther.
	Kind []uint8
	// Px and Sv are the raw pxname and svname of every row. In the table
	// of every row (the Snapshot's Stats, which Stages get, and Folds in
	// Finish), Px, Sv, PxName and SvName are empty when every Stage of
	// the pipeline is a NameNumberer (it reads names by PxID, SvID and
	// PathName); the batches a Fold gets in Rows always have them.
	Px, Sv []string
	// PxName and SvName are Px and Sv as they appear in metric paths: every
	// byte outside [A-Za-z0-9_:-] (a '.' among them) replaced by '_' (see
	// PathName). Rows whose names become equal are the same object.
	PxName, SvName []string
	// PxID and SvID number the names of PxName and SvName: rows with
	// equal names have equal numbers and rows with different names
	// different ones. The numbers are small (below the number of distinct
	// names the worker has seen), so that a Fold can index slices with
	// them instead of hashing names, and they keep their meaning from one
	// snapshot to the next as long as NameEpoch is the same (a Fold can
	// keep what it derived from them).
	PxID, SvID []uint32
	// NameEpoch identifies the numbering of PxID and SvID: it changes
	// when the numbering starts again (names churned past a bound), and
	// no two numberings in the process share one, whichever worker or
	// pipeline made them, so that a stage shared by workers can keep per
	// NameEpoch what it derived from the numbers.
	NameEpoch uint64

	names   *interner // of PxID and SvID (PathName); nil for tables made by hand
	noNames bool      // the Stages' table of a pipeline whose Stages are all NameNumberers: Px, Sv, PxName, SvName stay empty
	cols    []*Column
	index   map[string]int
	n       int
	spare   []*Column // the memory of dropped columns, for newColumn
}

// Rows reports the number of rows.
func (t *StatTable) Rows() int { return t.n }

// PathName returns the path name numbered id in PxID and SvID. It is how
// a NameNumberer reads names. It returns "" for a number the table's
// numbering does not have and in a table the engine's parser did not
// make, as for the number of the empty name (rows without one).
func (t *StatTable) PathName(id uint32) string {
	if t.names == nil || int(id) >= len(t.names.byID) {
		return ""
	}
	return t.names.byID[id].path
}

// Column returns the column with that header name, or nil when no file of
// the snapshot had it or no stage asked for it.
func (t *StatTable) Column(name string) *Column {
	if i, ok := t.index[name]; ok {
		return t.cols[i]
	}
	return nil
}

// Columns returns the columns present, in first-seen header order.
func (t *StatTable) Columns() []*Column { return t.cols }

// Column is one numeric CSV field over all rows. Empty cells, cells of rows
// from files without that field and non-numeric cells are null: their
// value is 0, as the original's fillna(0).
type Column struct {
	Name   string
	Values []float64
	null   []uint64
}

// Null reports whether the cell of row i was empty or missing.
func (c *Column) Null(i int) bool { return c.null[i>>6]&(1<<(uint(i)&63)) != 0 }

// NullBitmap returns the null mask, bit i%64 of word i/64 set for row i.
func (c *Column) NullBitmap() []uint64 { return c.null }

// NullCount reports the number of null cells.
func (c *Column) NullCount() int {
	n := 0
	for _, w := range c.null {
		n += bits.OnesCount64(w)
	}
	return n
}

// FileError is a problem with one file of a snapshot.
type FileError struct {
	File string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s: %v", e.File, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// column returns the column named name, adding it (all rows null) when
// absent.
func (t *StatTable) column(name string) *Column {
	if i, ok := t.index[name]; ok {
		return t.cols[i]
	}
	if t.index == nil {
		t.index = make(map[string]int)
	}
	c := t.newColumn(name, 0)
	c.resize(t.n)
	t.index[name] = len(t.cols)
	t.cols = append(t.cols, c)
	return c
}

// newColumn returns an empty column named name, with the memory of one
// that dropColumns kept when there is one, else with room for size rows.
// The caller adds it to t.
func (t *StatTable) newColumn(name string, size int) *Column {
	if k := len(t.spare); k > 0 {
		c := t.spare[k-1]
		t.spare = t.spare[:k-1]
		c.Name, c.Values, c.null = name, c.Values[:0], c.null[:0]
		return c
	}
	return &Column{Name: name, Values: make([]float64, 0, size), null: make([]uint64, 0, (size+63)/64)}
}

// dropColumns removes every column, keeping their memory for newColumn: a
// snapshot's columns are those its headers name.
func (t *StatTable) dropColumns() {
	t.spare = append(t.spare, t.cols...)
	clear(t.cols)
	t.cols = t.cols[:0]
	clear(t.index)
}

// resize makes room for n rows; new rows are null.
func (c *Column) resize(n int) {
	old := len(c.Values)
	c.extend(n)
	clear(c.Values[old:n])
	setBits(c.null, old, n) // only the new rows' bits: none past n
}

// extend makes c n rows long (n at least its length). The new rows'
// values are left as the memory held them, to be written by the caller;
// their null bits are clear, as every bit past the rows is.
func (c *Column) extend(n int) {
	if n <= cap(c.Values) {
		c.Values = c.Values[:n]
	} else {
		v := make([]float64, n, max(n, 2*cap(c.Values)))
		copy(v, c.Values)
		c.Values = v
	}
	words := (n + 63) / 64
	oldWords := len(c.null)
	if words <= cap(c.null) {
		c.null = c.null[:words]
	} else {
		b := make([]uint64, words, max(words, 2*cap(c.null)))
		copy(b, c.null)
		c.null = b
	}
	clear(c.null[oldWords:])
}

// setBits sets bits [from, to) of words, a word at a time.
func setBits(words []uint64, from, to int) {
	for from < to {
		lo := uint(from) & 63
		k := min(to-from, 64-int(lo))
		words[from>>6] |= (^uint64(0) >> (64 - uint(k))) << lo
		from += k
	}
}

// copyBits makes bits [off, off+n) of dst those of bits [0, n) of src, a
// word of src at a time.
func copyBits(dst []uint64, off int, src []uint64, n int) {
	for k := 0; k < n; k += 64 {
		m := ^uint64(0)
		if n-k < 64 {
			m >>= 64 - uint(n-k)
		}
		w := src[k>>6] & m
		at := off + k
		lo := uint(at) & 63
		i := at >> 6
		dst[i] = dst[i]&^(m<<lo) | w<<lo
		if lo != 0 && m>>(64-lo) != 0 {
			dst[i+1] = dst[i+1]&^(m>>(64-lo)) | w>>(64-lo)
		}
	}
}

// truncate empties the table, keeping its memory, its columns and Procs
// (a batch keeps the socket names of the snapshot so far). The names of
// the rows are not cleared: each is a string of a parser's interner, which
// keeps it anyway until its numbering starts again, and the next rows
// overwrite them (clearing them cost a write of 64 bytes per row, on every
// batch and on the table of every snapshot). At worst the memory past the
// rows keeps the names of a numbering that started again until it is
// overwritten: no more names than the table has room for rows.
func (t *StatTable) truncate() {
	t.n = 0
	t.Proc, t.Kind = t.Proc[:0], t.Kind[:0]
	t.Px, t.Sv, t.PxName, t.SvName = t.Px[:0], t.Sv[:0], t.PxName[:0], t.SvName[:0]
	t.PxID, t.SvID = t.PxID[:0], t.SvID[:0]
	for _, c := range t.cols {
		c.Values, c.null = c.Values[:0], c.null[:0]
	}
}

// reset empties the table for a new snapshot.
func (t *StatTable) reset() {
	t.truncate()
	clear(t.Procs)
	t.Procs = t.Procs[:0]
}

// appendRows appends the rows of b, and the values of the columns t has;
// t's Procs must be b's.
func (t *StatTable) appendRows(b *StatTable) {
	t.Procs = b.Procs
	t.NameEpoch, t.names = b.NameEpoch, b.names
	t.Proc = append(t.Proc, b.Proc[:b.n]...)
	t.PxID = append(t.PxID, b.PxID[:b.n]...)
	t.SvID = append(t.SvID, b.SvID[:b.n]...)
	t.appendCells(b)
}

// appendCells appends the kinds, names and cells of b's rows (the values
// of the columns t has, null where b lacks one), after t's process
// numbers and name numbers of them were appended.
func (t *StatTable) appendCells(b *StatTable) {
	n := t.n + b.n
	t.Kind = append(t.Kind, b.Kind[:b.n]...)
	if !t.noNames {
		t.Px = append(t.Px, b.Px[:b.n]...)
		t.Sv = append(t.Sv, b.Sv[:b.n]...)
		t.PxName = append(t.PxName, b.PxName[:b.n]...)
		t.SvName = append(t.SvName, b.SvName[:b.n]...)
	}
	for _, c := range t.cols {
		start := t.n
		src := b.Column(c.Name)
		if src == nil {
			c.resize(n) // null
			continue
		}
		c.extend(n)
		copy(c.Values[start:], src.Values[:b.n])
		copyBits(c.null, start, src.null, b.n)
	}
	t.n = n
}

// idMap maps the name numbers of another interner to those of one, for
// the rows of a helper's table (see Pipeline.merge): per number of the
// other, the number here plus one (0: not looked up yet). It is valid
// for one pair of numberings (epochs, unique in the process).
type idMap struct {
	from, to           *interner
	fromEpoch, toEpoch uint64
	ids                []uint32
}

// id returns the number in m.to of the path name numbered n in m.from.
func (m *idMap) id(n uint32) uint32 {
	if int(n) < len(m.ids) && m.ids[n] > 0 {
		return m.ids[n] - 1
	}
	return m.miss(n)
}

// miss is id for a number not looked up yet: it interns in m.to the
// first name of that path form in m.from (the other table may hold no
// names).
func (m *idMap) miss(n uint32) uint32 {
	if int(n) >= len(m.ids) {
		m.ids = append(m.ids, make([]uint32, int(n)+1-len(m.ids))...)
	}
	v := m.to.internString(m.from.byID[n].raw).id
	m.ids[n] = v + 1
	return v
}

// appendPart appends the rows of o, a table another parser made from the
// snapshot's later files with the interner from (t's parser has to):
// its processes follow procs (every process t's parser read, rows or
// not), and its name numbers become to's. Columns of o that t lacks are
// added (null in t's rows), as are t's columns in o's rows.
func (t *StatTable) appendPart(o *StatTable, procs []string, to, from *interner, m *idMap) {
	if o.n == 0 {
		return
	}
	if m.fromEpoch != from.epoch || m.toEpoch != to.epoch {
		*m = idMap{from: from, to: to, fromEpoch: from.epoch, toEpoch: to.epoch, ids: m.ids[:0]}
	}
	base := int32(len(procs))
	// A new array: procs is a batch's.
	t.Procs = append(procs[:len(procs):len(procs)], o.Procs...)
	t.NameEpoch, t.names = to.epoch, to
	for _, c := range o.cols {
		t.column(c.Name)
	}
	k := len(t.Proc)
	t.Proc = append(t.Proc, o.Proc[:o.n]...)
	t.PxID = append(t.PxID, o.PxID[:o.n]...)
	t.SvID = append(t.SvID, o.SvID[:o.n]...)
	proc, px, sv := t.Proc[k:], t.PxID[k:], t.SvID[k:]
	for r := range o.n {
		proc[r] += base
		px[r] = m.id(px[r])
		sv[r] = m.id(sv[r])
	}
	t.appendCells(o)
}
