package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// File suffixes of the spool layout: `<socket>_info` and `<socket>_stat`.
const (
	InfoSuffix = "_info"
	StatSuffix = "_stat"
)

// File is one file of a snapshot held in memory: the answer of one HAProxy
// process to `show info` (Name ends in InfoSuffix) or `show stat`
// (StatSuffix). Other names are ignored.
type File struct {
	Name string
	Data []byte
}

// ErrNotCSV is wrapped by the FileError of a `*_stat` file whose content is
// not HAProxy CSV (no `# pxname,svname,...` header).
var ErrNotCSV = errors.New("not HAProxy CSV")

// ReadDir reads every `*_info` and `*_stat` file of a snapshot directory.
// Other files (such as `.keep`) and subdirectories are ignored.
func ReadDir(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", dir, err)
	}
	var files []File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, InfoSuffix) || strings.HasSuffix(name, StatSuffix)) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read snapshot file: %w", err)
		}
		files = append(files, File{Name: name, Data: data})
	}
	return files, nil
}

// Parser turns snapshot files into a Snapshot. It keeps proxy and server
// names interned between snapshots, so that steady-state parsing allocates
// nothing per row. A Parser is not safe for concurrent use.
type Parser struct {
	want   map[string]bool // nil: every column
	names  map[string]string
	dotted map[string]string
	slots  []int32
	// Free column memory from released snapshots, reused so that a steady
	// stream of snapshots neither allocates nor page-faults new columns.
	floats [][]float64
	bits   [][]uint64
	rows   *StatTable // row slices of the last released snapshot
}

// maxInterned bounds the name cache; it is emptied when it grows past this.
const maxInterned = 1 << 20

// Slot markers of header fields that are not numeric columns.
const (
	slotSkip int32 = -1 - iota
	slotPx
	slotSv
	slotType
)

// NewParser returns a parser that materialises the named CSV columns
// (`pxname`, `svname` and `type` are always read). A nil columns slice
// materialises every column.
func NewParser(columns []string) *Parser {
	p := &Parser{names: make(map[string]string), dotted: make(map[string]string)}
	if columns != nil {
		p.want = make(map[string]bool, len(columns))
		for _, c := range columns {
			p.want[c] = true
		}
	}
	return p
}

// Parse builds a Snapshot named name from files, processed in file name
// order. Problems with single files are recorded in Snapshot.Problems and
// the rest of the snapshot is still parsed; Parse itself does not fail.
func (p *Parser) Parse(name string, files []File) *Snapshot {
	if len(p.names) > maxInterned {
		clear(p.names)
		clear(p.dotted)
	}
	sorted := make([]File, len(files))
	copy(sorted, files)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	s := &Snapshot{Name: name}
	s.Stats.index = make(map[string]int)
	s.Stats.parser = p
	rows := 0
	for _, f := range sorted {
		if strings.HasSuffix(f.Name, StatSuffix) {
			rows += bytes.Count(f.Data, []byte{'\n'}) + 1
		}
	}
	s.Stats.grow(rows, p.rows)
	p.rows = nil
	defer s.Stats.finish()
	for _, f := range sorted {
		switch {
		case strings.HasSuffix(f.Name, InfoSuffix):
			s.InfoFiles++
			p.parseInfo(&s.Info, strings.TrimSuffix(f.Name, InfoSuffix), f.Data)
		case strings.HasSuffix(f.Name, StatSuffix):
			s.StatFiles++
			if err := p.parseStat(&s.Stats, strings.TrimSuffix(f.Name, StatSuffix), f.Data); err != nil {
				s.Problems = append(s.Problems, &FileError{File: f.Name, Err: err})
				if errors.Is(err, ErrNotCSV) {
					s.Rejected++
				}
			}
		}
	}
	return s
}

// parseInfo adds one `show info` answer to t. Only `Key: value` lines whose
// value is an integer (Python int() syntax) are used; a file without any
// such line adds no row.
func (p *Parser) parseInfo(t *InfoTable, proc string, data []byte) {
	row := -1
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		i := bytes.Index(line, []byte(": "))
		if i < 0 {
			continue
		}
		v, ok := parsePyInt(line[i+2:])
		if !ok {
			continue
		}
		if row < 0 {
			row = len(t.Procs)
			t.Procs = append(t.Procs, proc)
			for k := range t.Keys {
				t.Values[k] = append(t.Values[k], 0)
				t.Has[k] = append(t.Has[k], false)
			}
		}
		k := t.keyIndex(line[:i])
		if k < 0 {
			k = len(t.Keys)
			t.Keys = append(t.Keys, p.intern(line[:i]))
			t.Values = append(t.Values, make([]int64, row+1))
			t.Has = append(t.Has, make([]bool, row+1))
		}
		t.Values[k][row] = v
		t.Has[k][row] = true
	}
}

func (t *InfoTable) keyIndex(key []byte) int {
	for i, k := range t.Keys {
		if k == string(key) {
			return i
		}
	}
	return -1
}

// parseStat adds the rows of one `show stat` answer to t.
func (p *Parser) parseStat(t *StatTable, proc string, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty file skipped")
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		nl = len(data)
	}
	header := bytes.TrimRight(data[:nl], "\r")
	if len(header) == 0 || header[0] != '#' {
		return fmt.Errorf("%w: first line %q", ErrNotCSV, clip(header))
	}
	p.slots = p.slots[:0]
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
			slot = int32(t.column(name))
		}
		seen[name] = true
		p.slots = append(p.slots, slot)
	}
	if !havePx || !haveSv {
		return fmt.Errorf("%w: header %q has no pxname/svname", ErrNotCSV, clip(header))
	}
	procIndex := int32(len(t.Procs))
	t.Procs = append(t.Procs, proc)
	pos := nl + 1
	for pos < len(data) {
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
		row := t.addRow(procIndex)
		typ := int64(-1)
		if bytes.IndexByte(line, '"') >= 0 {
			end = p.parseQuotedRecord(t, row, data, pos, &typ)
		} else {
			p.fields(t, row, line, &typ)
		}
		t.finishRow(row, typ)
		pos = end + 1
	}
	return nil
}

// parseQuotedRecord parses the record of row that starts at data[pos] and
// contains a double quote: the CSV slow path, where a quoted field may hold
// commas, doubled quotes and newlines. It returns the offset of the
// record's terminating newline (or len(data)).
func (p *Parser) parseQuotedRecord(t *StatTable, row int, data []byte, pos int, typ *int64) int {
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
		p.cell(t, row, field, cell, typ)
		if pos >= len(data) || data[pos] == '\n' {
			return pos
		}
		pos++ // the comma
		field++
	}
}

// fields stores the cells of one unquoted record.
func (p *Parser) fields(t *StatTable, row int, line []byte, typ *int64) {
	field, start := 0, 0
	slots := p.slots
	for i := 0; i < len(line); i++ {
		if line[i] != ',' {
			continue
		}
		if field < len(slots) && slots[field] != slotSkip && i > start {
			p.cell(t, row, field, line[start:i], typ)
		}
		field++
		start = i + 1
	}
	if field < len(slots) && slots[field] != slotSkip && len(line) > start {
		p.cell(t, row, field, line[start:], typ)
	}
}

// cell stores one CSV cell of row.
func (p *Parser) cell(t *StatTable, row, field int, cell []byte, typ *int64) {
	if field >= len(p.slots) {
		return
	}
	switch slot := p.slots[field]; slot {
	case slotSkip:
	case slotPx:
		t.Px[row] = p.intern(cell)
		t.PxName[row] = p.dots(t.Px[row])
	case slotSv:
		t.Sv[row] = p.intern(cell)
		t.SvName[row] = p.dots(t.Sv[row])
	case slotType:
		if v, ok := parseNumber(cell); ok {
			*typ = int64(v)
		}
	default:
		if v, ok := parseNumber(cell); ok {
			c := t.cols[slot]
			c.Values[row] = v
			c.null[row>>6] &^= 1 << (uint(row) & 63)
		}
	}
}

func (p *Parser) intern(b []byte) string {
	if s, ok := p.names[string(b)]; ok {
		return s
	}
	s := string(b)
	p.names[s] = s
	return s
}

func (p *Parser) dots(s string) string {
	if strings.IndexByte(s, '.') < 0 {
		return s
	}
	if d, ok := p.dotted[s]; ok {
		return d
	}
	d := strings.ReplaceAll(s, ".", "_")
	p.dotted[s] = d
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
	p.rows = &StatTable{Proc: s.Stats.Proc, Kind: s.Stats.Kind, Px: s.Stats.Px, Sv: s.Stats.Sv, PxName: s.Stats.PxName, SvName: s.Stats.SvName}
	s.Stats.Proc, s.Stats.Kind, s.Stats.Px, s.Stats.Sv, s.Stats.PxName, s.Stats.SvName = nil, nil, nil, nil, nil, nil
}

func (p *Parser) floatSlice(n int) []float64 {
	for i := len(p.floats) - 1; i >= 0; i-- {
		if f := p.floats[i]; cap(f) >= n {
			p.floats[i] = p.floats[len(p.floats)-1]
			p.floats = p.floats[:len(p.floats)-1]
			f = f[:n]
			clear(f)
			return f
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

// grow sizes the row columns for up to rows rows; finish trims them to
// the rows actually parsed.
// The memory of old, when not nil and large enough, is reused.
func (t *StatTable) grow(rows int, old *StatTable) {
	if old != nil && cap(old.Kind) >= rows {
		t.Proc, t.Kind = old.Proc[:rows], old.Kind[:rows]
		t.Px, t.Sv, t.PxName, t.SvName = old.Px[:rows], old.Sv[:rows], old.PxName[:rows], old.SvName[:rows]
		clear(t.Proc)
		clear(t.Kind)
		clear(t.Px)
		clear(t.Sv)
		clear(t.PxName)
		clear(t.SvName)
		return
	}
	t.Proc = make([]int32, rows)
	t.Kind = make([]uint8, rows)
	t.Px = make([]string, rows)
	t.Sv = make([]string, rows)
	t.PxName = make([]string, rows)
	t.SvName = make([]string, rows)
}

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

// column returns the index of the named column, creating it with every
// row null.
func (t *StatTable) column(name string) int {
	if i, ok := t.index[name]; ok {
		return i
	}
	rows := len(t.Kind)
	c := &Column{Name: name, Values: t.parser.floatSlice(rows), null: t.parser.bitSlice((rows + 63) / 64)}
	for i := range c.null {
		c.null[i] = ^uint64(0)
	}
	t.index[name] = len(t.cols)
	t.cols = append(t.cols, c)
	return len(t.cols) - 1
}

func (t *StatTable) addRow(proc int32) int {
	row := t.n
	t.n++
	t.Proc[row] = proc
	return row
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

// parseNumber parses a CSV cell. Empty and non-numeric cells, NaN and
// infinities are reported as absent.
func parseNumber(b []byte) (float64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	if len(b) < 19 {
		neg := b[0] == '-'
		digits := b
		if neg {
			digits = b[1:]
		}
		if len(digits) > 0 {
			var n int64
			ok := true
			for _, c := range digits {
				if c < '0' || c > '9' {
					ok = false
					break
				}
				n = n*10 + int64(c-'0')
			}
			if ok {
				if neg {
					n = -n
				}
				return float64(n), true
			}
		}
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || !(b[0] >= '0' && b[0] <= '9' || b[0] == '-' || b[0] == '+' || b[0] == '.') {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// parsePyInt parses an integer as Python's int() does: surrounding
// whitespace, an optional sign, digits with single underscores between them.
func parsePyInt(b []byte) (int64, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0, false
	}
	neg := false
	if b[0] == '+' || b[0] == '-' {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || b[0] == '_' || b[len(b)-1] == '_' {
		return 0, false
	}
	var n int64
	prevUnderscore := false
	for _, c := range b {
		switch {
		case c == '_':
			if prevUnderscore {
				return 0, false
			}
			prevUnderscore = true
			continue
		case c < '0' || c > '9':
			return 0, false
		}
		prevUnderscore = false
		if n > (math.MaxInt64-int64(c-'0'))/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}
