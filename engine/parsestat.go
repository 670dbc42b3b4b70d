package engine

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// Slot markers of header fields that are not numeric columns.
const (
	slotSkip int32 = -1 - iota
	slotPx
	slotSv
	slotType
)

// statFile is one `*_stat` file between the header phase, which runs in
// file order, and the fill phase, which may run concurrently.
type statFile struct {
	proc  int32
	body  []byte  // the records after the header line
	slots []int32 // per header field: a column index or a slot marker
	// start is the first row of the file's range; rows the number of
	// non-empty lines, exact unless a quoted field spans lines (then an
	// upper bound); got the number of records actually parsed.
	start, rows, got int
	// loWord and hiWord are the null-bitmap words shared with the
	// neighbouring files' ranges, cleared atomically.
	loWord, hiWord int
}

// prepare checks the header of one `show stat` answer, maps its fields to
// columns (registering new ones) and counts its rows.
func (p *Parser) prepare(t *StatTable, proc string, data []byte) (*statFile, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty file skipped")
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		nl = len(data)
	}
	header := bytes.TrimRight(data[:nl], "\r")
	if len(header) == 0 || header[0] != '#' {
		return nil, fmt.Errorf("%w: first line %q", ErrNotCSV, clip(header))
	}
	sf := &statFile{proc: int32(len(t.Procs))}
	var havePx, haveSv bool
	seen := make(map[string]bool, 128)
	for _, name := range strings.Split(strings.TrimSpace(string(header[1:])), ",") {
		name = strings.TrimSpace(name)
		slot := slotSkip
		switch {
		case seen[name]:
			// A repeated header name: the first occurrence wins.
		case name == "pxname":
			slot, havePx = slotPx, true
		case name == "svname":
			slot, haveSv = slotSv, true
		case name == "type":
			slot = slotType
		case name == "" || (p.want != nil && !p.want[name]):
		default:
			slot = int32(t.register(name))
		}
		seen[name] = true
		sf.slots = append(sf.slots, slot)
	}
	if !havePx || !haveSv {
		return nil, fmt.Errorf("%w: header %q has no pxname/svname", ErrNotCSV, clip(header))
	}
	t.Procs = append(t.Procs, proc)
	if nl < len(data) {
		sf.body = data[nl+1:]
	}
	for rest := sf.body; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(line) > 1 || (len(line) == 1 && line[0] != '\r') {
			sf.rows++
		}
	}
	return sf, nil
}

// fill parses the records of every file into its row range, concurrently
// when the snapshot is large enough to be worth it.
func (p *Parser) fill(t *StatTable, files []*statFile) {
	for _, sf := range files {
		if sf.rows > 0 {
			sf.loWord, sf.hiWord = sf.start>>6, (sf.start+sf.rows-1)>>6
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(files))
	if workers < 2 || len(t.Kind) < parallelRows {
		for _, sf := range files {
			p.names[0].fillFile(t, sf)
		}
		return
	}
	for len(p.names) < workers {
		p.names = append(p.names, newInterner())
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func(in *interner) {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(files) {
					return
				}
				in.fillFile(t, files[i])
			}
		}(p.names[w])
	}
	wg.Wait()
}

// fillFile parses the records of one file into rows [start, start+rows).
func (in *interner) fillFile(t *StatTable, sf *statFile) {
	// The table comes uncleared from grow and alloc: each worker zeroes
	// its own rows, in parallel and just before writing them.
	lo, hi := sf.start, sf.start+sf.rows
	clear(t.Proc[lo:hi])
	clear(t.Kind[lo:hi])
	clear(t.Px[lo:hi])
	clear(t.Sv[lo:hi])
	clear(t.PxName[lo:hi])
	clear(t.SvName[lo:hi])
	for _, c := range t.cols {
		clear(c.Values[lo:hi])
	}
	data, pos := sf.body, 0
	for pos < len(data) && sf.got < sf.rows {
		end := bytes.IndexByte(data[pos:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += pos
		}
		line := data[pos:end]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			pos = end + 1
			continue
		}
		row := sf.start + sf.got
		sf.got++
		t.Proc[row] = sf.proc
		typ := int64(-1)
		if bytes.IndexByte(line, '"') >= 0 {
			end = in.quotedRecord(t, sf, row, data, pos, &typ)
		} else {
			in.fields(t, sf, row, line, &typ)
		}
		t.finishRow(row, typ)
		pos = end + 1
	}
}

// fields stores the cells of one unquoted record.
//
// Most cells are small unsigned integers: their value is accumulated while
// looking for the separator, so that they are read once.
func (in *interner) fields(t *StatTable, sf *statFile, row int, line []byte, typ *int64) {
	field, start := 0, 0
	slots := sf.slots
	var n uint64
	digits := true
	for i := 0; i <= len(line); i++ {
		if i < len(line) {
			if c := line[i]; c != ',' {
				d := c - '0'
				n = n*10 + uint64(d)
				digits = digits && d <= 9
				continue
			}
		}
		if field < len(slots) && i > start {
			if slot := slots[field]; slot >= 0 && digits && i-start < 19 {
				in.store(t, sf, row, slot, float64(n))
			} else if slot != slotSkip {
				in.cell(t, sf, row, field, line[start:i], typ)
			}
		}
		field++
		start = i + 1
		n, digits = 0, true
	}
}

// quotedRecord parses the record of row that starts at data[pos] and
// contains a double quote: the CSV slow path, where a quoted field may hold
// commas, doubled quotes and newlines. It returns the offset of the
// record's terminating newline (or len(data)).
func (in *interner) quotedRecord(t *StatTable, sf *statFile, row int, data []byte, pos int, typ *int64) int {
	field := 0
	var buf []byte
	for {
		var cell []byte
		if pos < len(data) && data[pos] == '"' {
			buf = buf[:0]
			pos++
			for pos < len(data) {
				c := data[pos]
				if c == '"' {
					if pos+1 < len(data) && data[pos+1] == '"' {
						buf = append(buf, '"')
						pos += 2
						continue
					}
					pos++
					break
				}
				buf = append(buf, c)
				pos++
			}
			// Anything between the closing quote and the separator is kept.
			for pos < len(data) && data[pos] != ',' && data[pos] != '\n' {
				buf = append(buf, data[pos])
				pos++
			}
			cell = buf
		} else {
			end := pos
			for end < len(data) && data[end] != ',' && data[end] != '\n' {
				end++
			}
			cell = data[pos:end]
			pos = end
		}
		if n := len(cell); n > 0 && cell[n-1] == '\r' && (pos >= len(data) || data[pos] == '\n') {
			cell = cell[:n-1]
		}
		if field < len(sf.slots) && len(cell) > 0 {
			in.cell(t, sf, row, field, cell, typ)
		}
		if pos >= len(data) || data[pos] == '\n' {
			return pos
		}
		pos++ // the comma
		field++
	}
}

// cell stores one non-empty CSV cell of row.
func (in *interner) cell(t *StatTable, sf *statFile, row, field int, cell []byte, typ *int64) {
	switch slot := sf.slots[field]; slot {
	case slotSkip:
	case slotPx:
		// The rows of one proxy are consecutive: most lookups are the
		// previous row's name.
		if row > sf.start && t.Px[row-1] == string(cell) {
			t.Px[row], t.PxName[row] = t.Px[row-1], t.PxName[row-1]
			break
		}
		t.Px[row] = in.intern(cell)
		t.PxName[row] = in.dots(t.Px[row])
	case slotSv:
		t.Sv[row] = in.intern(cell)
		t.SvName[row] = in.dots(t.Sv[row])
	case slotType:
		if v, ok := parseNumber(cell); ok {
			*typ = int64(v)
		}
	default:
		if v, ok := parseNumber(cell); ok {
			in.store(t, sf, row, slot, v)
		}
	}
}

// store sets the cell of row in column slot to v and marks it non-empty.
func (in *interner) store(t *StatTable, sf *statFile, row int, slot int32, v float64) {
	c := t.cols[slot]
	c.Values[row] = v
	w, bit := row>>6, uint64(1)<<(uint(row)&63)
	if w == sf.loWord || w == sf.hiWord {
		// Shared with a neighbouring file parsed concurrently.
		atomic.AndUint64(&c.null[w], ^bit)
	} else {
		c.null[w] &^= bit
	}
}

// interner keeps one copy of every proxy and server name, and their
// dot-replaced form, across snapshots.
type interner struct {
	names  map[string]string
	dotted map[string]string
}

func newInterner() *interner {
	return &interner{names: make(map[string]string), dotted: make(map[string]string)}
}

// limit empties the caches when names churn without bound.
func (in *interner) limit() {
	if len(in.names) > maxInterned {
		clear(in.names)
		clear(in.dotted)
	}
}

func (in *interner) intern(b []byte) string {
	if s, ok := in.names[string(b)]; ok {
		return s
	}
	s := string(b)
	in.names[s] = s
	return s
}

func (in *interner) dots(s string) string {
	if strings.IndexByte(s, '.') < 0 {
		return s
	}
	if d, ok := in.dotted[s]; ok {
		return d
	}
	d := strings.ReplaceAll(s, ".", "_")
	in.dotted[s] = d
	return d
}

// Release hands the column memory of s back to the parser for reuse. The
// caller must not use s afterwards.
func (p *Parser) Release(s *Snapshot) {
	for _, c := range s.Stats.cols {
		if c.Values != nil {
			p.floats = append(p.floats, c.Values[:0])
			p.bits = append(p.bits, c.null[:0])
		}
		c.Values, c.null = nil, nil
	}
	s.Stats.cols = nil
	st := &s.Stats
	p.rows = &StatTable{Proc: st.Proc, Kind: st.Kind, Px: st.Px, Sv: st.Sv, PxName: st.PxName, SvName: st.SvName}
	st.Proc, st.Kind, st.Px, st.Sv, st.PxName, st.SvName = nil, nil, nil, nil, nil, nil
}

func (p *Parser) floatSlice(n int) []float64 {
	for i := len(p.floats) - 1; i >= 0; i-- {
		if f := p.floats[i]; cap(f) >= n {
			p.floats[i] = p.floats[len(p.floats)-1]
			p.floats = p.floats[:len(p.floats)-1]
			return f[:n]
		}
	}
	return make([]float64, n)
}

func (p *Parser) bitSlice(n int) []uint64 {
	for i := len(p.bits) - 1; i >= 0; i-- {
		if b := p.bits[i]; cap(b) >= n {
			p.bits[i] = p.bits[len(p.bits)-1]
			p.bits = p.bits[:len(p.bits)-1]
			return b[:n]
		}
	}
	return make([]uint64, n)
}

// grow sizes the row columns for rows rows, reusing the memory of old
// when it is large enough.
func (t *StatTable) grow(rows int, old *StatTable) {
	if old != nil && cap(old.Kind) >= rows {
		t.Proc, t.Kind = old.Proc[:rows], old.Kind[:rows]
		t.Px, t.Sv, t.PxName, t.SvName = old.Px[:rows], old.Sv[:rows], old.PxName[:rows], old.SvName[:rows]
		return // cleared by fillFile, range by range
	}
	t.Proc = make([]int32, rows)
	t.Kind = make([]uint8, rows)
	t.Px = make([]string, rows)
	t.Sv = make([]string, rows)
	t.PxName = make([]string, rows)
	t.SvName = make([]string, rows)
}

// register returns the index of the named column, adding it without
// storage (alloc provides it once the row count is known).
func (t *StatTable) register(name string) int {
	if i, ok := t.index[name]; ok {
		return i
	}
	t.index[name] = len(t.cols)
	t.cols = append(t.cols, &Column{Name: name})
	return len(t.cols) - 1
}

// alloc gives every registered column storage for all rows, all null.
func (t *StatTable) alloc(p *Parser) {
	rows := len(t.Kind)
	for _, c := range t.cols {
		c.Values = p.floatSlice(rows)
		c.null = p.bitSlice((rows + 63) / 64)
		for i := range c.null {
			c.null[i] = ^uint64(0)
		}
	}
}

// compact closes the gaps left by files that held fewer records than
// lines (a quoted field spanning lines), so that rows are contiguous.
func (t *StatTable) compact(files []*statFile) {
	dst := 0
	for _, sf := range files {
		if sf.start != dst {
			for i := 0; i < sf.got; i++ {
				t.moveRow(sf.start+i, dst+i)
			}
		}
		dst += sf.got
	}
	t.n = dst
}

func (t *StatTable) moveRow(from, to int) {
	t.Proc[to], t.Kind[to] = t.Proc[from], t.Kind[from]
	t.Px[to], t.Sv[to], t.PxName[to], t.SvName[to] = t.Px[from], t.Sv[from], t.PxName[from], t.SvName[from]
	for _, c := range t.cols {
		c.Values[to] = c.Values[from]
		if c.Null(from) {
			c.null[to>>6] |= 1 << (uint(to) & 63)
		} else {
			c.null[to>>6] &^= 1 << (uint(to) & 63)
		}
	}
}

// finish trims the row columns to the rows parsed and clears the null
// bits past the last row.
func (t *StatTable) finish() {
	n := t.n
	t.Proc, t.Kind = t.Proc[:n], t.Kind[:n]
	t.Px, t.Sv, t.PxName, t.SvName = t.Px[:n], t.Sv[:n], t.PxName[:n], t.SvName[:n]
	words := (n + 63) / 64
	for _, c := range t.cols {
		c.Values = c.Values[:n]
		c.null = c.null[:words]
		if n&63 != 0 {
			c.null[words-1] &= 1<<(uint(n)&63) - 1
		}
	}
}

func (t *StatTable) finishRow(row int, typ int64) {
	switch {
	case t.Sv[row] == "FRONTEND":
		t.Kind[row] = KindFrontend
	case t.Sv[row] == "BACKEND":
		t.Kind[row] = KindBackend
	case typ == 2:
		t.Kind[row] = KindServer
	}
}
