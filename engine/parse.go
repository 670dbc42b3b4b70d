package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync/atomic"
)

// File suffixes of the spool layout: `<socket>_info` and `<socket>_stat`.
const (
	InfoSuffix = "_info"
	StatSuffix = "_stat"
)

// ErrNotCSV is wrapped by the FileError of a `*_stat` file whose content is
// not HAProxy CSV (no `# pxname,svname,...` header).
var ErrNotCSV = errors.New("not HAProxy CSV")

// Reading limits.
const (
	// readSize is the size of the buffer files are read through; a line
	// longer than it is skipped with a problem.
	readSize = 256 << 10
	// maxInfoKeys bounds the distinct `show info` keys of a snapshot.
	maxInfoKeys = 1024
	// maxProblems bounds the problems recorded per snapshot; the rest are
	// counted in one last problem.
	maxProblems = 32
)

// lineReader returns the lines of a file read through a fixed buffer,
// without their "\n" or "\r\n". A line longer than the buffer is reported
// and skipped.
type lineReader struct {
	r      io.Reader
	buf    []byte
	data   []byte // the unread part of buf
	eof    bool
	err    error
	line   int // number of the last line returned
	skip   bool
	tooBig int // lines skipped for their length
}

// reset reads r through buf.
func (lr *lineReader) reset(r io.Reader, buf []byte) {
	*lr = lineReader{r: r, buf: buf}
	lr.data = lr.buf[:0]
}

// next returns the next line, or ok false at the end of the file or on a
// read error (lr.err).
func (lr *lineReader) next() (line []byte, ok bool) {
	for {
		if i := bytes.IndexByte(lr.data, '\n'); i >= 0 {
			line, lr.data = lr.data[:i], lr.data[i+1:]
			if lr.skip { // the end of a line too long for the buffer
				lr.skip = false
				lr.line++
				continue
			}
			lr.line++
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, true
		}
		if lr.eof {
			if len(lr.data) == 0 || lr.skip {
				lr.data = nil
				return nil, false
			}
			line, lr.data = lr.data, nil
			lr.line++
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, true
		}
		if len(lr.data) == len(lr.buf) {
			// No newline in a full buffer: skip the rest of this line.
			if !lr.skip {
				lr.tooBig++
			}
			lr.skip = true
			lr.data = lr.buf[:0]
		}
		// Move the partial line to the front and read more.
		n := copy(lr.buf, lr.data)
		m, err := lr.r.Read(lr.buf[n:])
		lr.data = lr.buf[:n+m]
		if err == io.EOF {
			lr.eof = true
		} else if err != nil {
			lr.err, lr.eof = err, true
			return nil, false
		}
	}
}

// infoParser reads `show info` answers into an InfoTable.
type infoParser struct {
	names *interner
	// text remembers, per row, the keys whose value was not an integer, to
	// tell a dropped cell from a missing key once every file is read.
	text []map[string]string
}

func (ip *infoParser) reset() {
	clear(ip.text)
	ip.text = ip.text[:0]
}

// parse adds one `show info` answer to t. Only `Key: value` lines whose
// value is an integer (Python int() syntax) make columns; a file without
// any such line adds no row.
func (ip *infoParser) parse(t *InfoTable, proc string, lr *lineReader) {
	row := -1
	var text map[string]string
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		i := bytes.Index(line, []byte(": "))
		if i <= 0 {
			continue
		}
		key, raw := line[:i], line[i+2:]
		v, ok := parsePyInt(raw)
		if !ok {
			if len(text) < maxInfoKeys {
				if text == nil {
					text = make(map[string]string)
				}
				text[string(key)] = clip(raw)
			}
			continue
		}
		if row < 0 {
			row = len(t.Procs)
			t.Procs = append(t.Procs, proc)
			for k := range t.Keys {
				t.Values[k] = append(t.Values[k], 0)
				t.Has[k] = append(t.Has[k], false)
				t.Dropped[k] = append(t.Dropped[k], false)
			}
		}
		k := t.keyIndex(key)
		if k < 0 {
			if len(t.Keys) >= maxInfoKeys {
				continue
			}
			k = len(t.Keys)
			t.Keys = append(t.Keys, ip.names.intern(key).raw)
			t.Values = append(t.Values, make([]int64, row+1))
			t.Has = append(t.Has, make([]bool, row+1))
			t.Dropped = append(t.Dropped, make([]bool, row+1))
		}
		t.Values[k][row] = v
		t.Has[k][row] = true
	}
	if row >= 0 {
		ip.text = append(ip.text, text)
	}
}

// finish marks the cells whose key is an integer elsewhere but whose value
// in this row is not, and reports each, naming file, key and value.
func (ip *infoParser) finish(t *InfoTable, problem func(error)) {
	for row, text := range ip.text {
		for k, key := range t.Keys {
			raw, ok := text[key]
			if !ok || t.Has[k][row] {
				continue
			}
			t.Dropped[k][row] = true
			problem(&FileError{File: t.Procs[row] + InfoSuffix,
				Err: fmt.Errorf("key %s: value %q is not an integer; cell dropped", key, raw)})
		}
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

func (t *InfoTable) reset() {
	clear(t.Procs)
	t.Procs = t.Procs[:0]
	t.Keys, t.Values, t.Has, t.Dropped = nil, nil, nil, nil
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

// nameEntry is an interned name, its form in paths, the number of that
// form (id) and its own number (num, its index in interner.raws).
type nameEntry struct {
	raw, path string
	id, num   uint32
}

// interner keeps one copy of every proxy and server name, and its path
// form, across snapshots, and numbers the path forms.
type interner struct {
	names map[string]nameEntry
	raws  []nameEntry       // by num
	ids   map[string]uint32 // path form -> number
	byID  []nameEntry       // by number: the first name of that path form
	epoch uint64            // the numbering's, new when it starts again (nameEpochs)
}

// nameEpochs numbers the name numberings of every interner of the
// process (NameEpoch): a stage that several workers and pipelines share
// can keep what it derived from a table's name numbers per NameEpoch.
var nameEpochs atomic.Uint64

// maxInterned bounds the name cache; it is emptied when it grows past
// this (names that churn without bound).
const maxInterned = 1 << 18

func newInterner() *interner {
	return &interner{names: make(map[string]nameEntry), ids: make(map[string]uint32), epoch: nameEpochs.Add(1)}
}

// limit empties the caches when they grew past maxInterned; called between
// snapshots, as numbers must not change within one.
func (in *interner) limit() {
	if len(in.names) > maxInterned || len(in.ids) > maxInterned {
		clear(in.names)
		clear(in.ids)
		clear(in.raws)
		in.raws = in.raws[:0]
		clear(in.byID)
		in.byID = in.byID[:0]
		in.epoch = nameEpochs.Add(1)
	}
}

// intern returns the entry of b.
func (in *interner) intern(b []byte) nameEntry {
	if e, ok := in.names[string(b)]; ok {
		return e
	}
	return in.add(b)
}

// internString returns the entry of s.
func (in *interner) internString(s string) nameEntry {
	if e, ok := in.names[s]; ok {
		return e
	}
	return in.add([]byte(s))
}

// add interns b, which is not interned yet.
func (in *interner) add(b []byte) nameEntry {
	s := string(b)
	e := nameEntry{raw: s, path: PathName(s)}
	id, ok := in.ids[e.path]
	if !ok {
		id = uint32(len(in.ids))
		in.ids[e.path] = id
	}
	e.id, e.num = id, uint32(len(in.raws))
	in.names[s] = e
	in.raws = append(in.raws, e)
	if !ok {
		in.byID = append(in.byID, e)
	}
	return e
}
