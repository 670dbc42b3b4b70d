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
// names interned between snapshots and recycles the column memory of
// released snapshots, so that steady-state parsing allocates nothing per
// row or field. A Parser is not safe for concurrent use; it parses the
// `*_stat` files of one snapshot on several goroutines itself.
type Parser struct {
	want map[string]bool // nil: every column
	// names interns proxy and server names; one per parsing goroutine.
	names []*interner
	// Free column memory from released snapshots.
	floats [][]float64
	bits   [][]uint64
	rows   *StatTable // row slices of the last released snapshot
}

// maxInterned bounds a name cache; it is emptied when it grows past this.
const maxInterned = 1 << 20

// parallelRows is the snapshot size from which `*_stat` files are parsed
// concurrently.
const parallelRows = 8192

// NewParser returns a parser that materialises the named CSV columns
// (`pxname`, `svname` and `type` are always read). A nil columns slice
// materialises every column.
func NewParser(columns []string) *Parser {
	p := &Parser{names: []*interner{newInterner()}}
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
	for _, n := range p.names {
		n.limit()
	}
	sorted := make([]File, len(files))
	copy(sorted, files)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	s := &Snapshot{Name: name}
	t := &s.Stats
	t.index = make(map[string]int)
	t.parser = p
	var stats []*statFile
	for _, f := range sorted {
		switch {
		case strings.HasSuffix(f.Name, InfoSuffix):
			s.InfoFiles++
			p.parseInfo(&s.Info, strings.TrimSuffix(f.Name, InfoSuffix), f.Data)
		case strings.HasSuffix(f.Name, StatSuffix):
			s.StatFiles++
			sf, err := p.prepare(t, strings.TrimSuffix(f.Name, StatSuffix), f.Data)
			if err != nil {
				s.Problems = append(s.Problems, &FileError{File: f.Name, Err: err})
				if errors.Is(err, ErrNotCSV) {
					s.Rejected++
				}
				continue
			}
			stats = append(stats, sf)
		}
	}
	total := 0
	for _, sf := range stats {
		sf.start = total
		total += sf.rows
	}
	t.grow(total, p.rows)
	p.rows = nil
	t.alloc(p)
	p.fill(t, stats)
	t.compact(stats)
	t.finish()
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
			t.Keys = append(t.Keys, p.names[0].intern(line[:i]))
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
