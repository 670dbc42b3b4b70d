package engine

import (
	"fmt"
	"math/bits"
)

// Snapshot is one snapshot directory (`incoming/<epoch>/`) parsed into
// columnar tables. Its Name is the directory's base name and is used
// verbatim as the timestamp of every metric computed from it.
//
// A Snapshot is read-only for stages: a stage must not modify it and must
// not keep references to it (or to its slices) after Process returns,
// because the pipeline reuses the memory for the next snapshot.
type Snapshot struct {
	// Name is the snapshot directory name (seconds since the epoch).
	Name string
	// Info holds the `show info` answers, one row per process.
	Info InfoTable
	// Stats holds the `show stat` rows of every process.
	Stats StatTable
	// InfoFiles and StatFiles count the `*_info` and `*_stat` files found,
	// whether or not they held usable data.
	InfoFiles, StatFiles int
	// Problems lists files that were skipped, each error naming the file.
	Problems []error
	// Rejected counts the files that were refused as not HAProxy output
	// (a subset of Problems; empty files are skipped but not rejected).
	Rejected int
}

// InfoTable is the daemon part of a snapshot: one row per `*_info` file that
// had at least one `Key: integer` line.
type InfoTable struct {
	// Procs is the socket name of each row (the file name without `_info`).
	Procs []string
	// Keys lists every key seen, in first-seen order.
	Keys []string
	// Values[k][row] is the value of Keys[k] in that row; Has[k][row]
	// reports whether the row carried the key at all.
	Values [][]int64
	Has    [][]bool
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

// Uniform reports whether every row carries every key. The original
// processor could not handle rows with different key sets.
func (t *InfoTable) Uniform() bool {
	for _, has := range t.Has {
		for _, ok := range has {
			if !ok {
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

// StatTable holds the `show stat` rows of every process, concatenated in
// file name order. Columns are found by header name; only the columns the
// pipeline's stages asked for are materialised.
type StatTable struct {
	// Procs lists the socket name of every `*_stat` file that contributed rows.
	Procs []string
	// Proc is, per row, the index into Procs of the file it came from.
	Proc []int32
	// Kind is, per row, one of KindFrontend, KindBackend, KindServer, KindOther.
	Kind []uint8
	// Px and Sv are the raw pxname and svname of every row.
	Px, Sv []string
	// PxName and SvName are Px and Sv with every '.' replaced by '_', the
	// form used in metric paths; rows whose names become equal merge.
	PxName, SvName []string

	cols   []*Column
	index  map[string]int
	n      int     // rows parsed so far
	parser *Parser // where the column memory came from
}

// Rows reports the number of rows.
func (t *StatTable) Rows() int { return t.n }

// Column returns the column with that header name, or nil when no file of
// the snapshot had it or the pipeline did not materialise it.
func (t *StatTable) Column(name string) *Column {
	if i, ok := t.index[name]; ok {
		return t.cols[i]
	}
	return nil
}

// Columns returns the materialised columns in first-seen header order.
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
