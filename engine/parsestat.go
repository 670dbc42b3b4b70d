package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"unsafe"
)

// batchRows is the number of rows handed to the folds at a time.
const batchRows = 1024

// Slot markers of header fields that are not numeric columns.
const (
	slotSkip int32 = -1 - iota
	slotPx
	slotSv
	slotType
)

// Row classes of the parser: a row's class is known from its svname
// (FRONTEND, BACKEND, anything else: a server or a listener, told apart
// later by the type column), before its other fields are read.
const (
	classFrontend = iota
	classBackend
	classOther
	classes
)

// plan is how the parser reads the fields of the rows of one class of one
// file.
type plan struct {
	slots []int32   // per header field: a batch column index, a slot marker, or slotSkip
	last  int       // the last field that is not slotSkip
	zero  []*Column // batch columns not read in this class: 0 and null
	// wants lists the fields that are not slotSkip, in order.
	wants []want
}

// want is a field a plan reads: into a batch column, or a name or the
// type (col nil, slot the marker).
type want struct {
	field, slot int32
	col         *Column
}

func (pl *plan) build(slots []int32, cols []*Column) {
	pl.slots = slots
	pl.last = -1
	pl.wants = pl.wants[:0]
	for f, slot := range slots {
		if slot == slotSkip {
			continue
		}
		pl.last = f
		var c *Column
		if slot >= 0 {
			c = cols[slot]
		}
		pl.wants = append(pl.wants, want{int32(f), slot, c})
	}
}

// statParser reads `show stat` answers into batches of rows. It is used by
// one goroutine at a time.
type statParser struct {
	want map[string]bool // nil: every column
	// kinds, when not nil, restricts the columns read per row class.
	kinds *[classes]map[string]bool
	names *interner
	batch StatTable

	// Per file, from its header.
	file    string
	all     plan          // every wanted column
	plans   [classes]plan // per class, when kinds is set and the header starts pxname,svname
	byClass bool
	absent  []*Column // batch columns this file does not have
	spare   []*Column // column memory of earlier snapshots
	empty   uint32    // the number of the empty name, of rows without one
	warned  int       // names reported in this snapshot
}

// maxNameWarnings bounds the names with unsafe bytes reported per snapshot.
const maxNameWarnings = 10

// reset prepares a new snapshot: no rows, no columns (a snapshot's
// columns are those its headers name), their memory kept for reuse.
func (sp *statParser) reset() {
	b := &sp.batch
	b.reset()
	sp.spare = append(sp.spare, b.cols...)
	clear(b.cols)
	b.cols = b.cols[:0]
	clear(b.index)
	sp.names.limit()
	sp.empty = sp.names.intern(nil).id
	sp.warned = 0
}

// header checks the first line of one `show stat` answer and maps its
// fields to batch columns. It returns an error (wrapping ErrNotCSV for a
// file that is not HAProxy CSV).
func (sp *statParser) header(file, proc string, line []byte) error {
	if len(line) == 0 || line[0] != '#' {
		return fmt.Errorf("%w: first line %q", ErrNotCSV, clip(line))
	}
	sp.file = file
	var slots []int32
	px, sv := -1, -1
	seen := make(map[string]bool, 128)
	b := &sp.batch
	var names []string
	for i, name := range strings.Split(strings.TrimSpace(string(line[1:])), ",") {
		name = strings.TrimSpace(name)
		slot := slotSkip
		switch {
		case seen[name]:
			// A repeated header name: the first occurrence wins.
		case name == "pxname":
			slot, px = slotPx, i
		case name == "svname":
			slot, sv = slotSv, i
		case name == "type":
			slot = slotType
		case name == "" || (sp.want != nil && !sp.want[name]):
		default:
			sp.column(name)
			slot = int32(b.index[name])
		}
		seen[name] = true
		slots = append(slots, slot)
		names = append(names, name)
	}
	if px < 0 || sv < 0 {
		return fmt.Errorf("%w: header %q has no pxname/svname", ErrNotCSV, clip(line))
	}
	sp.all.build(slots, b.cols)
	sp.all.zero = sp.all.zero[:0]

	b.Procs = append(b.Procs, proc)
	sp.absent = sp.absent[:0]
	for _, c := range b.cols {
		if !seen[c.Name] {
			sp.absent = append(sp.absent, c)
		}
	}
	// Per class, when the stages say which columns they read in rows of
	// each kind and the row's class is known from its first two fields.
	sp.byClass = sp.kinds != nil && px == 0 && sv == 1
	if !sp.byClass {
		return nil
	}
	for k := range classes {
		pl := &sp.plans[k]
		cs := slices.Grow(pl.slots[:0], len(slots))
		for f, slot := range slots {
			if slot >= 0 && !sp.kinds[k][names[f]] {
				slot = slotSkip
			}
			cs = append(cs, slot)
		}
		pl.build(cs, b.cols)
		pl.zero = pl.zero[:0]
		for _, slot := range slots {
			if slot >= 0 && !sp.kinds[k][b.cols[slot].Name] {
				pl.zero = append(pl.zero, b.cols[slot])
			}
		}
	}
	return nil
}

// column returns the batch column name, adding it with room for a batch.
func (sp *statParser) column(name string) *Column {
	b := &sp.batch
	if i, ok := b.index[name]; ok {
		return b.cols[i]
	}
	var c *Column
	if n := len(sp.spare); n > 0 {
		c, sp.spare = sp.spare[n-1], sp.spare[:n-1]
		c.Name, c.Values, c.null = name, c.Values[:0], c.null[:0]
	} else {
		c = &Column{Name: name, Values: make([]float64, 0, batchRows), null: make([]uint64, 0, batchRows/64)}
	}
	if b.index == nil {
		b.index = make(map[string]int)
	}
	b.index[name] = len(b.cols)
	b.cols = append(b.cols, c)
	return c
}

// full reports whether the batch holds batchRows rows.
func (sp *statParser) full() bool { return sp.batch.n >= batchRows }

// row parses one record into the batch. Problems (an unterminated quote, a
// name with unsafe bytes) are reported to problem.
func (sp *statParser) row(line []byte, lineNo int, problem func(error)) {
	b := &sp.batch
	r := b.n
	if r == 0 {
		for _, c := range b.cols {
			c.Values = c.Values[:batchRows]
			c.null = c.null[:batchRows/64]
			for i := range c.null {
				c.null[i] = ^uint64(0)
			}
		}
	}
	b.n++
	b.Proc = append(b.Proc, int32(len(b.Procs)-1))
	b.Kind = append(b.Kind, KindOther)
	b.Px = append(b.Px, "")
	b.Sv = append(b.Sv, "")
	b.PxName = append(b.PxName, "")
	b.SvName = append(b.SvName, "")
	b.PxID = append(b.PxID, sp.empty)
	b.SvID = append(b.SvID, sp.empty)
	for _, c := range sp.absent {
		c.Values[r] = 0
	}
	typ := int64(-1)
	pl := &sp.all
	quoted := !littleEndian || bytes.IndexByte(line, '"') >= 0
	if sp.byClass && !quoted {
		pl = &sp.plans[rowClass(line)]
	}
	for _, c := range pl.zero {
		c.Values[r] = 0
	}
	var field int
	if quoted {
		field = sp.quoted(line, r, &typ, lineNo, problem)
	} else {
		field = sp.fields(line, r, pl, &typ, problem)
	}
	// A short record: the cells it lacks are null, and 0.
	for ; field <= pl.last && field < len(pl.slots); field++ {
		if slot := pl.slots[field]; slot >= 0 {
			b.cols[slot].Values[r] = 0
		}
	}
	switch {
	case b.Sv[r] == "FRONTEND":
		b.Kind[r] = KindFrontend
	case b.Sv[r] == "BACKEND":
		b.Kind[r] = KindBackend
	case typ == 2:
		b.Kind[r] = KindServer
	}
}

// rowClass returns the class of a record that starts `pxname,svname,`.
func rowClass(line []byte) int {
	i := bytes.IndexByte(line, ',')
	if i < 0 {
		return classOther
	}
	sv := line[i+1:]
	if j := bytes.IndexByte(sv, ','); j >= 0 {
		sv = sv[:j]
	}
	switch string(sv) {
	case "FRONTEND":
		return classFrontend
	case "BACKEND":
		return classBackend
	}
	return classOther
}

// fields stores the cells of one unquoted record, as pl says, and returns
// the number of fields read. It walks the record field by field, eight
// bytes at a time: the separators of a word are found at once, a field it
// does not want costs one load, and a wanted cell of up to eight digits is
// parsed with a few multiplications. Fields after the last one to store
// are not looked at.
//
// This is the innermost loop of the program (about 5 million fields and 3
// million numbers per large snapshot), so it reads the record through an
// unsafe pointer, without bounds checks. What keeps every read in bounds:
// line has linePad (8) readable bytes past its end (lineReader), a ','
// is written at line[len(line)] (the newline's place, or padding) so that
// the last field ends like the others, and every load is at an offset <=
// len(line): pos is checked before each field. FuzzParseStat runs this
// code under checkptr (go test -race).
func (sp *statParser) fields(line []byte, r int, pl *plan, typ *int64, problem func(error)) int {
	n := len(line)
	ext := line[: n+linePad : n+linePad]
	ext[n] = ','
	base := unsafe.Pointer(unsafe.SliceData(ext))
	// An unaligned 8-byte load, the first byte lowest (see littleEndian).
	load := func(off int) uint64 { return *(*uint64)(unsafe.Add(base, off)) }
	word, bit := uint(r)>>6, uint64(1)<<(uint(r)&63)
	pos, f := 0, 0
	wants := pl.wants
	for j := range wants {
		wt := &wants[j]
		for f < int(wt.field) { // skip to the wanted field
			if pos > n {
				return f
			}
			m := commas(load(pos))
			if m == 0 { // a field of 8 bytes or more
				pos += 8
				continue
			}
			pos += bits.TrailingZeros64(m)>>3 + 1
			f++
		}
		if pos > n {
			return f
		}
		w := load(pos)
		var l int
		if m := commas(w); m != 0 {
			l = bits.TrailingZeros64(m) >> 3
			if c := wt.col; c != nil && l > 0 {
				// Right-align the l digits in the word and fill the bytes
				// before them with '0'.
				d := w<<(uint(8-l)*8&63) | zeros[l&15]
				if ((d+0x4646464646464646)|(d-0x3030303030303030))&0x8080808080808080 == 0 {
					c.Values[r] = float64(digits8(d))
					c.null[word] &^= bit
					pos += l + 1
					f++
					continue
				}
			}
		} else {
			l = bytes.IndexByte(ext[pos:n+1], ',')
		}
		cell := ext[pos : pos+l]
		if c := wt.col; c != nil {
			setParsed(c, r, cell)
		} else {
			sp.cell(wt.slot, cell, r, typ, problem)
		}
		pos += l + 1
		f++
	}
	return f
}

// littleEndian reports whether the machine stores the lowest byte of a
// word first, as fields assumes; elsewhere records take the quoted path.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// zeros[l] is the ASCII '0' of the 8-l bytes before l right-aligned digits
// (a power-of-two length, so that zeros[l&15] needs no bounds check).
var zeros = [16]uint64{
	0x3030303030303030, 0x30303030303030, 0x303030303030, 0x3030303030,
	0x30303030, 0x303030, 0x3030, 0x30, 0,
}

// digits8 returns the number written by the eight ASCII digits of w, the
// first digit in the lowest byte.
func digits8(w uint64) uint64 {
	w &= 0x0F0F0F0F0F0F0F0F
	w = w * (10<<8 + 1) >> 8
	w = (w & 0x00FF00FF00FF00FF) * (100<<16 + 1) >> 16
	return (w & 0x0000FFFF0000FFFF) * (10000<<32 + 1) >> 32
}

// commas returns the high bit of every byte of w that is a comma.
func commas(w uint64) uint64 {
	const lo7, comma = 0x7f7f7f7f7f7f7f7f, 0x2c2c2c2c2c2c2c2c
	x := w ^ comma // zero bytes where w has a comma
	y := (x & lo7) + lo7
	return ^(y | x | lo7)
}

// setNumber stores cell in row r of c: its number, or 0 and null when it
// is empty or not a number.
func setNumber(c *Column, r int, cell []byte) {
	if len(cell) == 0 || len(cell) >= 19 {
		setParsed(c, r, cell)
		return
	}
	var n uint64
	for _, ch := range cell {
		d := ch - '0'
		if d > 9 {
			setParsed(c, r, cell)
			return
		}
		n = n*10 + uint64(d)
	}
	c.Values[r] = float64(n)
	c.null[r>>6] &^= 1 << (uint(r) & 63)
}

// setParsed is the slow path of setNumber.
func setParsed(c *Column, r int, cell []byte) {
	if v, ok := parseNumber(cell); ok {
		c.Values[r] = v
		c.null[r>>6] &^= 1 << (uint(r) & 63)
	} else {
		c.Values[r] = 0
	}
}

// quoted parses a record holding a double quote: a quoted field may hold
// commas and doubled quotes. HAProxy never puts a newline inside a field,
// so a quote still open at the end of the line ends there, with a problem
// naming file and line.
func (sp *statParser) quoted(line []byte, r int, typ *int64, lineNo int, problem func(error)) int {
	b := &sp.batch
	var buf []byte
	field, pos := 0, 0
	for {
		var cell []byte
		if pos < len(line) && line[pos] == '"' {
			buf = buf[:0]
			pos++
			closed := false
			for pos < len(line) {
				c := line[pos]
				if c == '"' {
					if pos+1 < len(line) && line[pos+1] == '"' {
						buf = append(buf, '"')
						pos += 2
						continue
					}
					pos++
					closed = true
					break
				}
				buf = append(buf, c)
				pos++
			}
			if !closed {
				problem(&FileError{File: sp.file, Err: fmt.Errorf("line %d: quote not closed at the end of the line; the row ends there", lineNo)})
			}
			// Anything between the closing quote and the separator is kept.
			for pos < len(line) && line[pos] != ',' {
				buf = append(buf, line[pos])
				pos++
			}
			cell = buf
		} else {
			end := bytes.IndexByte(line[pos:], ',')
			if end < 0 {
				end = len(line)
			} else {
				end += pos
			}
			cell = line[pos:end]
			pos = end
		}
		if field < len(sp.all.slots) {
			switch slot := sp.all.slots[field]; {
			case slot >= 0:
				setParsed(b.cols[slot], r, cell)
			case slot != slotSkip:
				sp.cell(slot, cell, r, typ, problem)
			}
		}
		field++
		if pos >= len(line) {
			return field
		}
		pos++ // the comma
	}
}

// cell stores a name or the type of row r.
func (sp *statParser) cell(slot int32, cell []byte, r int, typ *int64, problem func(error)) {
	b := &sp.batch
	switch slot {
	case slotPx:
		// The rows of one proxy are consecutive: most lookups are the
		// previous row's name.
		if r > 0 && b.Px[r-1] == string(cell) {
			b.Px[r], b.PxName[r], b.PxID[r] = b.Px[r-1], b.PxName[r-1], b.PxID[r-1]
			return
		}
		e := sp.name(cell, problem)
		b.Px[r], b.PxName[r], b.PxID[r] = e.raw, e.path, e.id
	case slotSv:
		e := sp.name(cell, problem)
		b.Sv[r], b.SvName[r], b.SvID[r] = e.raw, e.path, e.id
	case slotType:
		if v, ok := parseNumber(cell); ok {
			*typ = int64(v)
		}
	}
}

// name interns a proxy or server name, reporting a new one that holds
// bytes the path rule replaces (other than dots).
func (sp *statParser) name(cell []byte, problem func(error)) nameEntry {
	if e, ok := sp.names.names[string(cell)]; ok {
		return e
	}
	e := sp.names.add(cell)
	if needsCare(cell) && sp.warned < maxNameWarnings {
		sp.warned++
		problem(&FileError{File: sp.file, Err: fmt.Errorf("name %q holds bytes outside [A-Za-z0-9_.:-]; written %q in metric paths", e.raw, e.path)})
	}
	return e
}
