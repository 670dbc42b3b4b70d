package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/bits"
	"strings"
	"sync"
)

// batchRows is the number of rows handed to the folds at a time: a batch's
// columns stay in the processor's caches while the parser writes them.
const batchRows = 256

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
	nums  []used    // the fields stored in batch columns, in order
	names []used    // the fields of slot markers (names, type), in order
}

// used is a field a plan reads and where it goes: a batch column (its
// values, for the parser's innermost loop) or a slot marker.
type used struct {
	field int32
	slot  int32
	vals  *[batchRows]float64 // nil for a slot marker
}

// build makes the plan of slots, whose batch columns are cols.
func (pl *plan) build(slots []int32, cols []*Column) {
	pl.slots = append(pl.slots[:0], slots...) // slots may be the parser's, reused
	pl.last = -1
	pl.nums, pl.names = pl.nums[:0], pl.names[:0]
	for f, slot := range slots {
		switch {
		case slot >= 0:
			// A batch column's values have room for a batch, and keep
			// their memory while the column is in the batch.
			pl.nums = append(pl.nums, used{int32(f), slot, (*[batchRows]float64)(cols[slot].Values[:batchRows])})
		case slot != slotSkip:
			pl.names = append(pl.names, used{field: int32(f), slot: slot})
		default:
			continue
		}
		pl.last = f
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
	// classRows has a bit per row of the batch read with the plan of
	// its class (plans), whose zero columns are made null by settle.
	classRows [classes][batchRows / 64]uint64
	record    int       // records of the file so far
	svCache   *[]uint32 // the file's server name (raw number + 1) per record, from earlier snapshots
	svPrev    *[]uint32 // the svCache of the snapshot's previous file (nil for the first)
	bounds    []int32   // the bounds of the fields of the record being read
	slow      []int32   // the cells of the record read after the others: indexes in the plan's nums

	// Across snapshots.
	// The header line read last and what depends on it alone: its fields'
	// names, whether each repeats an earlier one, and the set of them
	// (every file of a snapshot, and every snapshot, has the same header
	// as a rule); and headerSlots' result, whose memory is reused.
	hdr       []byte
	hdrNames  []string
	hdrRepeat []bool
	hdrSet    map[string]bool
	hdrSlots  []int32
	cache     map[string]*[]uint32 // svCache per socket name
	empty     nameEntry            // the empty name, of rows without one
	warned    int                  // names reported in this snapshot
	reported  *reportedNames       // the pipeline's, shared by its parsers; nil: each new name is reported
}

// maxNameWarnings bounds the names with unsafe bytes reported per snapshot.
const maxNameWarnings = 10

// reset prepares a new snapshot: no rows, no columns (a snapshot's
// columns are those its headers name), their memory kept for reuse.
func (sp *statParser) reset() {
	b := &sp.batch
	b.reset()
	b.dropColumns()
	sp.classRows = [classes][batchRows / 64]uint64{}
	epoch := sp.names.epoch
	sp.names.limit()
	if sp.names.epoch != epoch || len(sp.cache) > 1024 {
		clear(sp.cache) // numbers changed meaning, or sockets churned
	}
	b.NameEpoch, b.names = sp.names.epoch, sp.names
	sp.empty = sp.names.intern(nil)
	sp.warned = 0
}

// header checks the first line of one `show stat` answer and maps its
// fields to batch columns. It returns an error (wrapping ErrNotCSV for a
// file that is not HAProxy CSV).
func (sp *statParser) header(file, proc string, line []byte) error {
	if len(line) == 0 || line[0] != '#' {
		return fmt.Errorf("%w: first line %q", ErrNotCSV, clip(line))
	}
	slots, names, px, sv := sp.headerSlots(line)
	defer sp.boundHeader()
	if px < 0 || sv < 0 {
		return fmt.Errorf("%w: header %q has no pxname/svname", ErrNotCSV, clip(line))
	}
	b := &sp.batch
	sp.file = file
	sp.record = 0
	if sp.cache == nil {
		sp.cache = make(map[string]*[]uint32)
	}
	// The processes of one HAProxy list the same servers in the same
	// order: a file whose own names are not known yet (the first
	// snapshot, a new process) checks those of the file before it.
	sp.svPrev = nil
	if len(b.Procs) > 0 {
		sp.svPrev = sp.svCache
	}
	if sp.svCache = sp.cache[proc]; sp.svCache == nil {
		sp.svCache = new([]uint32)
		sp.cache[proc] = sp.svCache
	}
	sp.all.build(slots, b.cols)
	sp.all.zero = sp.all.zero[:0]
	b.Procs = append(b.Procs, proc)
	sp.absent = sp.absent[:0]
	for _, c := range b.cols {
		if !sp.hdrSet[c.Name] {
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
		cs := pl.slots[:0]
		pl.zero = pl.zero[:0]
		for f, slot := range slots {
			if slot >= 0 && !sp.kinds[k][names[f]] {
				pl.zero = append(pl.zero, b.cols[slot])
				slot = slotSkip
			}
			cs = append(cs, slot)
		}
		pl.build(cs, b.cols)
	}
	return nil
}

// headerSlots maps the fields of header line (which starts with '#') to
// slots, adding the batch columns it names that are wanted, and returns
// the fields' names and the fields of pxname and svname (-1 when absent).
// The slots and names are the parser's until its next call.
func (sp *statParser) headerSlots(line []byte) (slots []int32, names []string, px, sv int) {
	if sp.hdrNames == nil || !bytes.Equal(line, sp.hdr) {
		sp.hdr = append(sp.hdr[:0], line...)
		sp.hdrNames = strings.Split(strings.TrimSpace(string(line[1:])), ",")
		sp.hdrRepeat = make([]bool, len(sp.hdrNames))
		sp.hdrSet = make(map[string]bool, min(len(sp.hdrNames), 1024))
		for i, name := range sp.hdrNames {
			name = strings.TrimSpace(name)
			sp.hdrNames[i], sp.hdrRepeat[i], sp.hdrSet[name] = name, sp.hdrSet[name], true
		}
	}
	px, sv = -1, -1
	slots = sp.hdrSlots[:0]
	for i, name := range sp.hdrNames {
		slot := slotSkip
		switch {
		case sp.hdrRepeat[i]:
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
			slot = int32(sp.batch.index[name])
		}
		slots = append(slots, slot)
	}
	sp.hdrSlots = slots
	return slots, sp.hdrNames, px, sv
}

// columnsOf adds the batch columns that header line would add, before
// header is called for any file: what reading the files before a helper's
// own would have added (see Pipeline.prime).
func (sp *statParser) columnsOf(line []byte) {
	if len(line) > 0 && line[0] == '#' {
		sp.headerSlots(line)
		sp.boundHeader()
	}
}

// maxHeaderKept bounds the header line a parser keeps, with its names,
// from one file to the next (HAProxy's is about 1 KB): a longer one, which
// only broken or hostile input has, is split again at every file rather
// than held by every work value outside the memory budget's count.
const maxHeaderKept = 16 << 10

// boundHeader forgets the header kept when it is past maxHeaderKept (or
// its memory is, from an earlier one); the plans have copied its slots.
func (sp *statParser) boundHeader() {
	if cap(sp.hdr) > maxHeaderKept || cap(sp.hdrSlots) > maxHeaderKept/2 {
		sp.hdr, sp.hdrNames, sp.hdrRepeat, sp.hdrSet, sp.hdrSlots = nil, nil, nil, nil, nil
	}
}

// column returns the batch column name, adding it with room for a batch.
func (sp *statParser) column(name string) *Column {
	b := &sp.batch
	if i, ok := b.index[name]; ok {
		return b.cols[i]
	}
	// Every column of the batch, the kept ones too, has room for a batch.
	c := b.newColumn(name, batchRows)
	if b.index == nil {
		b.index = make(map[string]int)
	}
	b.index[name] = len(b.cols)
	b.cols = append(b.cols, c)
	return c
}

// full reports whether the batch holds batchRows rows.
func (sp *statParser) full() bool { return sp.batch.n >= batchRows }

// setNull makes the cell of row r of c null, and 0.
func setNull(c *Column, r int) {
	c.Values[r] = 0
	c.null[r>>6] |= 1 << (uint(r) & 63)
}

// row parses one record into the batch. Problems (an unterminated quote, a
// name with unsafe bytes) are reported to problem.
//
// The null bits of a batch start clear and are set for the cells that are
// empty, not numbers or not read: most cells hold numbers, and cost no
// write to the bitmap.
func (sp *statParser) row(line []byte, lineNo int, problem func(error)) {
	b := &sp.batch
	r := b.n
	if r == 0 {
		for _, c := range b.cols {
			c.Values = c.Values[:batchRows]
			c.null = c.null[:batchRows/64]
			clear(c.null)
		}
		if sp.byClass {
			// Servers are most rows: the columns they do not read are 0
			// from the start, and settle only marks them null.
			for _, c := range sp.plans[classOther].zero {
				clear(c.Values)
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
	b.PxID = append(b.PxID, sp.empty.id)
	b.SvID = append(b.SvID, sp.empty.id)
	for _, c := range sp.absent {
		setNull(c, r)
	}
	typ := int64(-1)
	pl, class, field := &sp.all, -1, -1
	if sp.all.last+1+slack <= maxFields {
		if sp.byClass {
			class = rowClass(line)
			pl = &sp.plans[class]
		}
		field = sp.fields(line, r, pl, &typ, problem)
	}
	if field < 0 {
		// A double quote in the fields the plan reads, or more fields
		// than the fast path has room for: the general path, which reads
		// every wanted column. (A quote past them changes none of them.)
		pl, class = &sp.all, -1
		field = sp.quoted(line, r, &typ, lineNo, problem)
	}
	if class >= 0 {
		// The columns this class does not read are made null by settle,
		// for the whole batch at once.
		sp.classRows[class][r>>6] |= 1 << (uint(r) & 63)
	}
	// A short record: the cells it lacks are null.
	for ; field <= pl.last && field < len(pl.slots); field++ {
		if slot := pl.slots[field]; slot >= 0 {
			setNull(b.cols[slot], r)
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
	sp.record++
}

// rowClass returns the class of a record that starts `pxname,svname,`.
// The names are short: a plain loop finds the first comma sooner than
// bytes.IndexByte's call and setup.
func rowClass(line []byte) int {
	i := 0
	for i < len(line) && line[i] != ',' {
		i++
	}
	if i == len(line) {
		return classOther
	}
	sv := line[i+1:]
	switch {
	case hasField(sv, "FRONTEND"):
		return classFrontend
	case hasField(sv, "BACKEND"):
		return classBackend
	}
	return classOther
}

// hasField reports whether the first field of s is name.
func hasField(s []byte, name string) bool {
	return len(s) >= len(name) && string(s[:len(name)]) == name && (len(s) == len(name) || s[len(name)] == ',')
}

// settle makes null, and 0, the cells of the columns that the rows of the
// batch did not read for their class (each plan's zero columns): a few
// bit operations per column instead of writes per cell as each row is
// read. (Those of classOther are 0 already: row cleared them whole at
// the batch's first row.) It is called once the batch's rows are read,
// before anything reads the batch.
func (sp *statParser) settle() {
	for k := range sp.classRows {
		rows := &sp.classRows[k]
		if *rows == ([batchRows / 64]uint64{}) {
			continue
		}
		for _, c := range sp.plans[k].zero {
			for w, m := range rows {
				c.null[w] |= m
				if k == classOther {
					continue
				}
				for ; m != 0; m &= m - 1 {
					c.Values[w<<6|bits.TrailingZeros64(m)] = 0
				}
			}
		}
		*rows = [batchRows / 64]uint64{}
	}
}

// fields stores the cells of one record, as pl says, and returns the
// number of fields read, or -1 without storing anything when a double
// quote is in them (the record is for quoted); fields after the last one
// to store are not looked at. scan finds where the fields end; store
// reads the numbers the plan uses, and only those; the other cells it
// uses (empty, not plain numbers, names) are read after. (This is the
// innermost work of the program: about 12 million bytes, 5 million
// fields and 3 million stored cells per large snapshot.)
func (sp *statParser) fields(line []byte, r int, pl *plan, typ *int64, problem func(error)) int {
	if sp.bounds == nil {
		sp.bounds = make([]int32, maxFields)
	}
	if len(sp.slow) < len(pl.nums) {
		sp.slow = make([]int32, len(pl.nums))
	}
	nf := scan(line, sp.bounds, pl.last+1)
	if nf < 0 {
		return -1
	}
	bounds := sp.bounds[:nf+1]
	cols := sp.batch.cols
	slow := sp.slow[:len(pl.nums)]
	k := store(pl.nums, sp.bounds, nf, line, r, slow)
	for _, j := range slow[:k] {
		u := pl.nums[j]
		setParsed(cols[u.slot], r, line[bounds[u.field]+1:bounds[u.field+1]])
	}
	for _, u := range pl.names {
		if int(u.field) < nf {
			sp.cell(u.slot, line[bounds[u.field]+1:bounds[u.field+1]], r, typ, problem)
		}
	}
	return nf
}

// maxFields bounds the fields of a record that the fast path (scan and
// store) reads: a power of two, far above the 100 to 200 fields of HAProxy
// 2.x and 3.x. A header of more takes the general path.
const maxFields = 1024

// Masks of the eight bytes of a word.
const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	commas = ',' * ones
	quotes = '"' * ones
)

// scan finds the bounds of the first want fields of record line, and
// returns how many it found (at most want): field f is
// line[bounds[f]+1:bounds[f+1]], bounds[0] being -1 and every other bound
// the index of a comma or len(line). bounds has maxFields entries, and
// want+slack is at most maxFields: the slots past the last bound found
// are scratch. It returns -1 when one of those fields holds a double
// quote, which may hide commas: the record is then for the general path.
// A quote past them is not looked for (HAProxy quotes text fields such as
// check_desc, which come after the counters).
//
// On amd64 it reads the line sixteen bytes at a time in assembly
// (scanCompress with AVX-512, else scanBlocks), and the rest (under
// sixteen bytes) as scanWords does.
func scan(line []byte, bounds []int32, want int) int {
	return scanUsing(line, bounds, want, scanWay)
}

// slack is how many slots of bounds past want scan may write.
const slack = 17

// The ways of scan: scanWords alone, or after scanBlocks or scanCompress.
const (
	byWords = iota
	byBlocks
	byCompress
)

// scanWay is the fastest way of scan this processor runs.
var scanWay = func() int {
	switch {
	case compress:
		return byCompress
	case blocks:
		return byBlocks
	}
	return byWords
}()

// scanUsing is scan, the way way (for the tests, which check every way
// the processor runs).
func scanUsing(line []byte, bounds []int32, want int, way int) int {
	if want <= 0 || want+slack > maxFields || len(bounds) < maxFields {
		return 0
	}
	b := (*[maxFields]int32)(bounds)
	b[0] = -1
	f, i := 0, 0
	if way != byWords && uint64(len(line)) < 1<<31 {
		if way == byCompress {
			f, i = scanCompress(line, b, want)
		} else {
			f, i = scanBlocks(line, b, want)
		}
		if f >= want {
			return want
		}
	}
	return scanWords(line, b, want, f, i)
}

// scanWords goes on with scan from byte i, f fields found: it reads the
// line eight bytes at a time and finds the commas of a word with a few
// arithmetic operations, without a branch per byte, and looks at no
// digit: store reads the numbers of the fields the plan uses, and no
// others. A word holding a double quote, and the rest of the line, are
// read byte by byte, to tell whether the quote is in a wanted field. It
// calls nothing, which keeps the loop's variables in registers.
func scanWords(line []byte, b *[maxFields]int32, want, f, i int) int {
	// Indexes masked into an array need no bounds checks; f+8 < maxFields.
	for ; i+8 <= len(line); i += 8 {
		w := binary.LittleEndian.Uint64(line[i : i+8])
		if q := w ^ quotes; ^((q&^highs+^uint64(highs))|q)&highs != 0 {
			break
		}
		x := w ^ commas
		// The high bit of each byte that was a comma (exact: no carry
		// crosses a byte).
		m := ^((x&^highs + ^uint64(highs)) | x) & highs
		if m == 0 {
			continue
		}
		// The positions of four commas are written whether the word
		// holds them or not (the extra ones are overwritten later, or
		// are past f), and of four more if it holds more: a loop's exit
		// would be mispredicted at about every word, whose commas vary
		// from one to eight.
		// One bit per byte at most: their count, without the POPCNT
		// feature check of bits.OnesCount64 (and its call).
		n := int((m >> 7) * ones >> 56)
		b[(f+1)&(maxFields-1)] = int32(i + bits.TrailingZeros64(m)>>3)
		m &= m - 1
		b[(f+2)&(maxFields-1)] = int32(i + bits.TrailingZeros64(m)>>3)
		m &= m - 1
		b[(f+3)&(maxFields-1)] = int32(i + bits.TrailingZeros64(m)>>3)
		m &= m - 1
		b[(f+4)&(maxFields-1)] = int32(i + bits.TrailingZeros64(m)>>3)
		m &= m - 1
		if m != 0 {
			b[(f+5)&(maxFields-1)] = int32(i + bits.TrailingZeros64(m)>>3)
			m &= m - 1
			b[(f+6)&(maxFields-1)] = int32(i + bits.TrailingZeros64(m)>>3)
			m &= m - 1
			b[(f+7)&(maxFields-1)] = int32(i + bits.TrailingZeros64(m)>>3)
			m &= m - 1
			b[(f+8)&(maxFields-1)] = int32(i + bits.TrailingZeros64(m)>>3)
		}
		f += n
		if f >= want {
			return want
		}
	}
	for ; i < len(line); i++ {
		switch line[i] {
		case ',':
			f++
			b[f&(maxFields-1)] = int32(i)
			if f == want {
				return f
			}
		case '"':
			return -1
		}
	}
	b[(f+1)&(maxFields-1)] = int32(len(line))
	return f + 1
}

// store stores in row r of their batch columns the fields of nums (of
// the nf that scan bounded in line) that are plain numbers of 1 to 18
// digits, and puts the indexes in nums of the others in slow (to be read
// by setParsed); it returns how many it put there. bounds has maxFields
// entries, slow at least len(nums). On amd64 it is assembly (storeNums),
// elsewhere storeGo.
func store(nums []used, bounds []int32, nf int, line []byte, r int, slow []int32) int {
	if len(bounds) < maxFields || len(slow) < len(nums) {
		return 0
	}
	if asm {
		return storeNums(nums, (*[maxFields]int32)(bounds), nf, line, r, slow)
	}
	return storeGo(nums, bounds, nf, line, r, slow)
}

// storeGo is store in Go. It calls nothing, which keeps its loop's
// variables in registers (and is not inlined into its caller, which calls
// others).
//
//go:noinline
func storeGo(nums []used, bounds []int32, nf int, line []byte, r int, slow []int32) int {
	if len(bounds) < maxFields {
		return 0
	}
	b := (*[maxFields]int32)(bounds)
	r &= batchRows - 1
	k := 0
	for j, u := range nums {
		f := int(u.field)
		if f >= nf {
			break
		}
		start, end := int(b[f&(maxFields-1)])+1, int(b[(f+1)&(maxFields-1)])
		// Most cells are one digit.
		if end-start == 1 && uint(start) < uint(len(line)) {
			if d := line[start] - '0'; d <= 9 {
				u.vals[r] = float64(d)
				continue
			}
		} else if uint(end-start-2) < 17 && start >= 0 && end <= len(line) {
			// 2 to 18 digits: no overflow.
			var n, bad uint64
			for j := start; j < end; j++ {
				d := line[j] - '0'
				n = n*10 + uint64(d)
				bad |= (uint64(d) + 246) >> 8 // 1 when d > 9
			}
			if bad == 0 {
				u.vals[r] = float64(int64(n))
				continue
			}
		}
		slow[k] = int32(j)
		k++
	}
	return k
}

// setParsed stores cell in row r of c: its number, or 0 and null when it
// is empty or not a number.
func setParsed(c *Column, r int, cell []byte) {
	if v, ok := parseNumber(cell); ok {
		c.Values[r] = v
	} else {
		setNull(c, r)
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
		// A file lists the same servers in the same order from snapshot to
		// snapshot: the name of the record at the same place last time is
		// checked first.
		var e nameEntry
		cache := sp.svCache
		if sp.record < len(*cache) {
			if k := (*cache)[sp.record]; k > 0 && sp.names.raws[k-1].raw == string(cell) {
				e = sp.names.raws[k-1]
			} else {
				e = sp.name(cell, problem)
				(*cache)[sp.record] = e.num + 1
			}
		} else {
			if p := sp.svPrev; p != nil && sp.record < len(*p) && (*p)[sp.record] > 0 && sp.names.raws[(*p)[sp.record]-1].raw == string(cell) {
				e = sp.names.raws[(*p)[sp.record]-1]
			} else {
				e = sp.name(cell, problem)
			}
			if sp.record == len(*cache) {
				*cache = append(*cache, e.num+1)
			}
		}
		b.Sv[r], b.SvName[r], b.SvID[r] = e.raw, e.path, e.id
	case slotType:
		if len(cell) == 1 && cell[0]-'0' <= 9 {
			*typ = int64(cell[0] - '0')
		} else if v, ok := parseNumber(cell); ok {
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
	if needsCare(cell) && sp.warned < maxNameWarnings && !sp.reported.has(e.raw) {
		sp.warned++
		problem(&FileError{File: sp.file, Err: &nameWarning{e.raw, e.path}})
	}
	return e
}

// reportedNames remembers the names a pipeline reported as holding bytes
// the path rule replaces: each is reported once, not once per work value
// (the files a work value reads, and whether it reads them as the worker
// or as its helper, change from one snapshot to the next), nor once per
// load balancer in central processing (the views of a pipeline share it).
// A parser asks it only for names new to its interner. A name is added
// once its warning is among a snapshot's problems, not when a parser
// found it: the snapshot's bound may drop that warning (the name may then
// go unreported, as the parser's interner knows it). Two snapshots read at
// once may both report a name. Safe for concurrent use. It keeps a 64-bit
// hash of each name, not the name, and at most maxReportedNames of them,
// forgetting them all past that: a name is then reported again, as after
// a restart.
type reportedNames struct {
	mu   sync.Mutex
	seed maphash.Seed
	seen map[uint64]struct{}
}

const maxReportedNames = 4096

func newReportedNames() *reportedNames {
	return &reportedNames{seed: maphash.MakeSeed()}
}

// has reports whether raw was reported (false for a nil set).
func (r *reportedNames) has(raw string) bool {
	if r == nil {
		return false
	}
	h := maphash.String(r.seed, raw)
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.seen[h]
	return ok
}

// add records raw as reported (nothing for a nil set).
func (r *reportedNames) add(raw string) {
	if r == nil {
		return
	}
	h := maphash.String(r.seed, raw)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil || len(r.seen) >= maxReportedNames {
		r.seen = make(map[uint64]struct{})
	}
	r.seen[h] = struct{}{}
}

// nameWarning reports a name that holds bytes the path rule replaces, the
// first time one of the pipeline's parsers meets it.
type nameWarning struct{ raw, path string }

func (e *nameWarning) Error() string {
	return fmt.Sprintf("name %q holds bytes outside [A-Za-z0-9_.:-]; written %q in metric paths", e.raw, e.path)
}
