package wasmstage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/haproxystats-go/haproxystats/engine"
)

// ABIVersion is the version of docs/ABI.md this host implements; a module's
// hs_abi_version must return it.
const ABIVersion = 1

// Magic numbers at the start of the input and output buffers: "HSI1" and
// "HSO1" read as little-endian uint32.
const (
	inputMagic  = 0x31495348
	outputMagic = 0x314F5348
)

const (
	inputHeaderSize  = 64
	outputHeaderSize = 16
	recordHeaderSize = 16
)

// Output status codes (docs/ABI.md, "Output buffer").
const (
	statusOK    = 0
	statusError = 1
)

// ABI scope codes; they are not engine.Scope values on purpose, so that the
// engine may renumber its scopes without breaking modules.
const (
	abiScopeDaemon     = 1
	abiScopeProcess    = 2
	abiScopeFrontend   = 3
	abiScopeBackend    = 4
	abiScopeServer     = 5
	abiScopeAggrServer = 6
	abiScopePath       = 7
)

// Limits of what a module may declare or return.
const (
	maxColumnsBytes = 64 << 10 // hs_columns list
	maxColumns      = 1024
	maxErrorMessage = 512 // bytes of a guest error message kept
)

// Errors a call can fail with; test with errors.Is.
var (
	// ErrTimeout: the call ran longer than Options.Timeout.
	ErrTimeout = errors.New("timeout")
	// ErrMemoryLimit: the module failed while its memory was at
	// Options.MemoryLimitMiB.
	ErrMemoryLimit = errors.New("memory limit reached")
	// ErrTrap: the module trapped or exited.
	ErrTrap = errors.New("module trapped")
	// ErrMalformed: the output buffer does not follow docs/ABI.md.
	ErrMalformed = errors.New("malformed output")
	// ErrTooManyMetrics: the output holds more than Options.MaxMetrics.
	ErrTooManyMetrics = errors.New("too many metrics")
	// ErrGuest: the module reported an error in its output buffer.
	ErrGuest = errors.New("module reported an error")
	// ErrClosed: the stage was closed.
	ErrClosed = errors.New("stage closed")
	// ErrCrashed: the child process running the module died (other than
	// out of memory or time) or broke the protocol.
	ErrCrashed = errors.New("child process failed")
	// ErrModuleTooLarge: the module file is larger than
	// Options.ModuleSizeLimitMiB.
	ErrModuleTooLarge = errors.New("module too large")
)

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func align8(n int) int { return (n + 7) &^ 7 }

func bitmapWords(rows int) int { return (rows + 63) / 64 }

// encoder lays a snapshot out in the input format of docs/ABI.md. It is
// reused from call to call by one stage, under the stage's lock. Its string
// table lives as long as the module instance: ids are stable, new strings
// are appended, and reset starts again for a new instance.
type encoder struct {
	ids  map[string]uint32
	strs []string
	blob int // bytes of string data

	infoProcs   []uint32
	infoKeys    []uint32
	statProcs   []uint32
	px, sv      []uint32
	cols        []*engine.Column
	colIDs      []uint32
	rows, iRows int

	// The row keys of the statistics section (process table, per-row
	// process, proxy, server and kind) of the instance's previous input,
	// for the same-rows flag; havePrev is false for a new instance.
	prevRows []byte
	havePrev bool

	// The ids of the engine's name numbers, per NameEpoch (see numbering).
	numberings    []numbering
	nextNumbering int

	// Section offsets, computed by plan.
	strOff, infoOff, statOff, size int
}

func (e *encoder) intern(s string) uint32 {
	if id, ok := e.ids[s]; ok {
		return id
	}
	id := uint32(len(e.strs))
	e.ids[s] = id
	e.strs = append(e.strs, s)
	e.blob += len(s)
	return id
}

// numbering is the string id plus one (0: not looked up yet) of every
// name number of one NameEpoch of the engine.
type numbering struct {
	epoch uint64
	ids   []uint32
}

// Bounds of the numberings an encoder keeps: one per worker whose
// snapshots the stage is given, usually; a name number past maxNumber is
// looked up every time.
const (
	maxNumberings = 8
	maxNumber     = 1 << 20
)

// numbering returns the ids kept for the name numbers of epoch, or nil
// for epoch 0 (a table not numbered by the engine's parser).
func (e *encoder) numbering(epoch uint64) *[]uint32 {
	if epoch == 0 {
		return nil
	}
	for i := range e.numberings {
		if e.numberings[i].epoch == epoch {
			return &e.numberings[i].ids
		}
	}
	if len(e.numberings) < maxNumberings {
		e.numberings = append(e.numberings, numbering{epoch: epoch})
		return &e.numberings[len(e.numberings)-1].ids
	}
	nb := &e.numberings[e.nextNumbering%maxNumberings]
	e.nextNumbering++
	nb.epoch = epoch
	clear(nb.ids)
	return &nb.ids
}

// nameID returns the id of the name numbered n in the numbering ids,
// names[row] in st (st.PxName or st.SvName).
func (e *encoder) nameID(ids *[]uint32, n uint32, st *engine.StatTable, names []string, row int) uint32 {
	if int(n) < len(*ids) {
		if v := (*ids)[n]; v > 0 {
			return v - 1
		}
	}
	return e.nameIDMiss(ids, n, st, names, row)
}

// nameIDMiss is nameID for a number not looked up yet: the name is the
// row's, or the number's when the table holds no names.
func (e *encoder) nameIDMiss(ids *[]uint32, n uint32, st *engine.StatTable, names []string, row int) uint32 {
	var name string
	if row < len(names) {
		name = names[row]
	} else {
		name = st.PathName(n)
	}
	id := e.intern(name)
	if n < maxNumber {
		if int(n) >= len(*ids) {
			*ids = append(*ids, make([]uint32, int(n)+1-len(*ids))...)
		}
		(*ids)[n] = id + 1
	}
	return id
}

// flagSameRows is bit 0 of the input header's flags (offset 60).
const flagSameRows = 1

// Bounds of the string table of an instance; past them the instance is
// re-created (see Stage.Process).
const (
	maxStrings     = 1 << 20
	maxStringBytes = 32 << 20
)

// reset forgets the string table, for a new instance.
func (e *encoder) reset() {
	clear(e.ids)
	e.strs, e.blob = e.strs[:0], 0
	e.prevRows, e.havePrev = e.prevRows[:0], false
	e.numberings = e.numberings[:0]
}

// full reports whether the string table has grown past its bounds.
func (e *encoder) full() bool { return len(e.strs) > maxStrings || e.blob > maxStringBytes }

// plan collects the strings and columns of snap and computes the size of
// the input buffer. columns are the column names the module declared.
func (e *encoder) plan(snap *engine.Snapshot, columns []string) (int, error) {
	if e.ids == nil {
		e.ids = make(map[string]uint32)
	}

	info := &snap.Info
	e.iRows = len(info.Procs)
	e.infoProcs = e.infoProcs[:0]
	for _, p := range info.Procs {
		e.infoProcs = append(e.infoProcs, e.intern(p))
	}
	e.infoKeys = e.infoKeys[:0]
	for _, k := range info.Keys {
		e.infoKeys = append(e.infoKeys, e.intern(k))
	}

	st := &snap.Stats
	n := st.Rows()
	n = min(n, len(st.Proc), len(st.Kind))
	// The engine's table holds no name slices when every Stage reads
	// names by number (the Stage is an engine.NameNumberer): a number's
	// name is then StatTable.PathName's.
	byNumber := len(st.PxName) < n || len(st.SvName) < n
	e.rows = n
	e.statProcs = e.statProcs[:0]
	for _, p := range st.Procs {
		e.statProcs = append(e.statProcs, e.intern(p))
	}
	e.px = growU32(e.px, n)
	e.sv = growU32(e.sv, n)
	// A table of the engine's parser numbers its names (PxID, SvID) in a
	// numbering no other shares (NameEpoch): a number's id, looked up
	// once, is kept for the next inputs of that numbering. A table without
	// a NameEpoch (none with rows comes from the engine so) has its names
	// looked up by string, the rows of one proxy being consecutive.
	if ids := e.numbering(st.NameEpoch); ids != nil && len(st.PxID) >= n && len(st.SvID) >= n {
		for i := 0; i < n; i++ {
			e.px[i] = e.nameID(ids, st.PxID[i], st, st.PxName, i)
			e.sv[i] = e.nameID(ids, st.SvID[i], st, st.SvName, i)
		}
	} else if byNumber {
		// Neither names nor a numbering: not a table of the engine's.
		return 0, fmt.Errorf("stat table of %d rows has neither names nor name numbers", n)
	} else {
		var lastPx, lastSv string
		var lastPxID, lastSvID uint32
		for i := 0; i < n; i++ {
			if p := st.PxName[i]; i == 0 || !sameString(p, lastPx) {
				lastPx, lastPxID = p, e.intern(p)
			}
			e.px[i] = lastPxID
			if s := st.SvName[i]; i == 0 || !sameString(s, lastSv) {
				lastSv, lastSvID = s, e.intern(s)
			}
			e.sv[i] = lastSvID
		}
	}

	e.cols, e.colIDs = e.cols[:0], e.colIDs[:0]
	for _, name := range columns {
		c := st.Column(name)
		if c == nil || len(c.Values) < n || len(c.NullBitmap()) < bitmapWords(n) {
			continue
		}
		e.cols = append(e.cols, c)
		e.colIDs = append(e.colIDs, e.intern(name))
	}

	size := inputHeaderSize + len(snap.Name)
	e.strOff = align8(size)
	size = e.strOff
	size = align8(size + 8*len(e.strs) + e.blob)
	e.infoOff = size
	iw := bitmapWords(e.iRows)
	size += align8(4*e.iRows) + align8(4*len(e.infoKeys)) + len(e.infoKeys)*(8*e.iRows+8*iw)
	e.statOff = size
	w := bitmapWords(n)
	size += align8(4*len(e.statProcs)) + 3*align8(4*n) + align8(n) + len(e.cols)*(8+8*n+8*w)
	if size > math.MaxUint32 {
		return 0, fmt.Errorf("snapshot too large for the ABI: %d bytes", size)
	}
	e.size = size
	return size, nil
}

// sameString reports whether a and b are equal, checking first whether they
// share their bytes (interned names).
func sameString(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || unsafe.StringData(a) == unsafe.StringData(b) {
		return true
	}
	return a == b
}

func growU32(s []uint32, n int) []uint32 {
	if cap(s) < n {
		return make([]uint32, n)
	}
	return s[:n]
}

// write fills b (len(b) == the size plan returned) with the input buffer.
func (e *encoder) write(b []byte, snap *engine.Snapshot) {
	le := binary.LittleEndian
	clear(b[:inputHeaderSize])
	le.PutUint32(b[0:], inputMagic)
	le.PutUint32(b[4:], ABIVersion)
	le.PutUint32(b[8:], uint32(e.size))
	le.PutUint32(b[12:], uint32(len(e.strs)))
	ts, err := strconv.ParseInt(snap.Name, 10, 64)
	if err != nil {
		ts = -1
	}
	le.PutUint64(b[16:], uint64(ts))
	le.PutUint32(b[24:], uint32(len(snap.Name)))
	end := copy(b[inputHeaderSize:], snap.Name) + inputHeaderSize
	clear(b[end:e.strOff])
	le.PutUint32(b[28:], uint32(e.iRows))
	le.PutUint32(b[32:], uint32(len(e.infoKeys)))
	le.PutUint32(b[36:], uint32(len(e.statProcs)))
	le.PutUint32(b[40:], uint32(e.rows))
	le.PutUint32(b[44:], uint32(len(e.cols)))
	le.PutUint32(b[48:], uint32(e.strOff))
	le.PutUint32(b[52:], uint32(e.infoOff))
	le.PutUint32(b[56:], uint32(e.statOff))

	// String table: (offset, length) pairs, then the bytes.
	off := e.strOff
	data := off + 8*len(e.strs)
	for _, s := range e.strs {
		le.PutUint32(b[off:], uint32(data))
		le.PutUint32(b[off+4:], uint32(len(s)))
		copy(b[data:], s)
		off += 8
		data += len(s)
	}
	clear(b[data:e.infoOff])

	// Daemon section.
	off = putU32s(b, e.infoOff, e.infoProcs)
	off = putU32s(b, off, e.infoKeys)
	info := &snap.Info
	for k := range e.infoKeys {
		var vals []int64
		var has []bool
		if k < len(info.Values) {
			vals = info.Values[k]
		}
		if k < len(info.Has) {
			has = info.Has[k]
		}
		for r := 0; r < e.iRows; r++ {
			v := int64(0)
			if r < len(vals) {
				v = vals[r]
			}
			le.PutUint64(b[off+8*r:], uint64(v))
		}
		off += 8 * e.iRows
		words := bitmapWords(e.iRows)
		clear(b[off : off+8*words])
		for r := 0; r < e.iRows; r++ {
			if r >= len(has) || !has[r] {
				b[off+r/8] |= 1 << (r % 8)
			}
		}
		off += 8 * words
	}

	// Statistics section.
	st := &snap.Stats
	n := e.rows
	off = putU32s(b, e.statOff, e.statProcs)
	start := off
	for i := 0; i < n; i++ {
		le.PutUint32(b[off+4*i:], uint32(st.Proc[i]))
	}
	off = align8(off + 4*n)
	clear(b[start+4*n : off])
	off = putU32s(b, off, e.px)
	off = putU32s(b, off, e.sv)
	copy(b[off:], st.Kind[:n])
	end = align8(off + n)
	clear(b[off+n : end])
	off = end
	// Flag the rows as those of the previous input when they are: a
	// module may then reuse what it derived from them (docs/ABI.md 3.1).
	rows := b[e.statOff:end]
	var flags uint32
	if e.havePrev && bytes.Equal(rows, e.prevRows) {
		flags |= flagSameRows
	}
	le.PutUint32(b[60:], flags)
	e.prevRows, e.havePrev = append(e.prevRows[:0], rows...), true
	words := bitmapWords(n)
	for i, c := range e.cols {
		le.PutUint32(b[off:], e.colIDs[i])
		le.PutUint32(b[off+4:], 0)
		off += 8
		putF64s(b[off:off+8*n], c.Values[:n])
		off += 8 * n
		putU64s(b[off:off+8*words], c.NullBitmap()[:words])
		if n&63 != 0 {
			// Bits past the last row are zero.
			last := off + 8*(words-1)
			le.PutUint64(b[last:], le.Uint64(b[last:])&(1<<(uint(n)&63)-1))
		}
		off += 8 * words
	}
}

// putU32s writes vals at off, pads with zeros to 8 bytes, and returns the
// offset after the padding.
func putU32s(b []byte, off int, vals []uint32) int {
	if littleEndian && len(vals) > 0 {
		copy(b[off:], unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), 4*len(vals)))
	} else {
		for i, v := range vals {
			binary.LittleEndian.PutUint32(b[off+4*i:], v)
		}
	}
	end := align8(off + 4*len(vals))
	clear(b[off+4*len(vals) : end])
	return end
}

func putF64s(b []byte, vals []float64) {
	if littleEndian && len(vals) > 0 {
		copy(b, unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), 8*len(vals)))
		return
	}
	for i, v := range vals {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
}

func putU64s(b []byte, vals []uint64) {
	if littleEndian && len(vals) > 0 {
		copy(b, unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), 8*len(vals)))
		return
	}
	for i, v := range vals {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
}

// encodeParams lays out the [stage.x] parameters for hs_init: a u32 count,
// then per parameter a u32 key length, the key, a u32 value length, the
// value. keys must be sorted.
func encodeParams(keys []string, params map[string]string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(keys)))
	for _, k := range keys {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(k)))
		b = append(b, k...)
		v := params[k]
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

// decoder turns an output buffer into metrics. Its name cache lets
// consecutive snapshots share the metric and object names instead of
// allocating them again. The cache is bounded in entries and bytes (when
// full it starts again), and keeps nothing of a call that fails: the names
// a failed decode added are removed, so that a module cannot fill the
// daemon's memory with names from outputs that are then rejected.
type decoder struct {
	names map[string]string
	bytes int      // bytes of the cached names
	added []string // names added by the decode in progress
}

// Bounds of the decoder's name cache.
const (
	maxCachedNames     = 1 << 16
	maxCachedNameBytes = 4 << 20
)

func (d *decoder) str(b []byte) string {
	if s, ok := d.names[string(b)]; ok {
		return s
	}
	if d.names == nil || len(d.names) >= maxCachedNames || d.bytes+len(b) > maxCachedNameBytes {
		d.names, d.bytes, d.added = make(map[string]string), 0, d.added[:0]
	}
	s := string(b)
	d.names[s] = s
	d.bytes += len(s)
	d.added = append(d.added, s)
	return s
}

// forget removes the names the decode in progress added.
func (d *decoder) forget() {
	for _, s := range d.added {
		if _, ok := d.names[s]; ok {
			delete(d.names, s)
			d.bytes -= len(s)
		}
	}
	d.added = d.added[:0]
}

// decode validates the output buffer b and emits its metrics. It stops at
// the first problem; what it emitted before is discarded by the pipeline
// because the stage then returns an error.
func (d *decoder) decode(b []byte, maxMetrics int, emit engine.Emitter) (int, error) {
	d.added = d.added[:0]
	n, err := d.records(b, maxMetrics, emit)
	if err != nil {
		d.forget()
	}
	d.added = d.added[:0]
	return n, err
}

func (d *decoder) records(b []byte, maxMetrics int, emit engine.Emitter) (int, error) {
	le := binary.LittleEndian
	if len(b) < outputHeaderSize {
		return 0, fmt.Errorf("%d bytes, shorter than the %d-byte header: %w", len(b), outputHeaderSize, ErrMalformed)
	}
	if m := le.Uint32(b); m != outputMagic {
		return 0, fmt.Errorf("magic %#08x, want %#08x: %w", m, outputMagic, ErrMalformed)
	}
	status, count := le.Uint32(b[4:]), le.Uint32(b[8:])
	if r := le.Uint32(b[12:]); r != 0 {
		return 0, fmt.Errorf("reserved header field %d is not 0: %w", r, ErrMalformed)
	}
	switch status {
	case statusOK:
	case statusError:
		msg := b[outputHeaderSize:]
		if uint64(count) < uint64(len(msg)) {
			msg = msg[:count]
		}
		if len(msg) > maxErrorMessage {
			msg = msg[:maxErrorMessage]
		}
		return 0, fmt.Errorf("%q: %w", msg, ErrGuest)
	default:
		return 0, fmt.Errorf("status %d: %w", status, ErrMalformed)
	}
	if uint64(count) > uint64(maxMetrics) {
		return 0, fmt.Errorf("%d metrics, limit %d: %w", count, maxMetrics, ErrTooManyMetrics)
	}
	if uint64(count)*recordHeaderSize > uint64(len(b)-outputHeaderSize) {
		return 0, fmt.Errorf("%d metrics do not fit in %d bytes: %w", count, len(b), ErrMalformed)
	}
	off := outputHeaderSize
	for i := 0; i < int(count); i++ {
		if len(b)-off < recordHeaderSize {
			return i, fmt.Errorf("metric %d: truncated: %w", i, ErrMalformed)
		}
		h := b[off : off+recordHeaderSize]
		code := h[0]
		ol, sl, nl := int(le.Uint16(h[2:])), int(le.Uint16(h[4:])), int(le.Uint16(h[6:]))
		value := math.Float64frombits(le.Uint64(h[8:]))
		off += recordHeaderSize
		if len(b)-off < ol+sl+nl {
			return i, fmt.Errorf("metric %d: truncated: %w", i, ErrMalformed)
		}
		ob, sb, nb := b[off:off+ol], b[off+ol:off+ol+sl], b[off+ol+sl:off+ol+sl+nl]
		off += ol + sl + nl
		scope, err := checkRecord(code, h[1], ob, sb, nb)
		if err != nil {
			return i, fmt.Errorf("metric %d: %w: %w", i, err, ErrMalformed)
		}
		m := engine.Metric{Scope: scope, Name: d.str(nb), Value: value}
		if ol > 0 {
			m.Object = d.str(ob)
		}
		if sl > 0 {
			m.Server = d.str(sb)
		}
		emit.Emit(m)
	}
	if off != len(b) {
		return int(count), fmt.Errorf("%d bytes after the last metric: %w", len(b)-off, ErrMalformed)
	}
	return int(count), nil
}

// checkRecord validates one output record and maps its scope code. Which
// of object and server a scope needs is fixed; the others must be empty.
func checkRecord(code, reserved byte, object, server, name []byte) (engine.Scope, error) {
	if reserved != 0 {
		return 0, fmt.Errorf("reserved byte %d is not 0", reserved)
	}
	var scope engine.Scope
	var needObject, needServer bool
	switch code {
	case abiScopeDaemon:
		scope = engine.ScopeDaemon
	case abiScopeProcess:
		scope, needObject = engine.ScopeProcess, true
	case abiScopeFrontend:
		scope, needObject = engine.ScopeFrontend, true
	case abiScopeBackend:
		scope, needObject = engine.ScopeBackend, true
	case abiScopeServer:
		scope, needObject, needServer = engine.ScopeServer, true, true
	case abiScopeAggrServer:
		scope, needServer = engine.ScopeAggrServer, true
	case abiScopePath:
		scope = engine.ScopePath
	default:
		return 0, fmt.Errorf("unknown scope %d", code)
	}
	if err := checkField("object", object, needObject); err != nil {
		return 0, err
	}
	if err := checkField("server", server, needServer); err != nil {
		return 0, err
	}
	if err := checkName("name", name); err != nil {
		return 0, err
	}
	if scope == engine.ScopePath {
		if name[0] == '.' || name[len(name)-1] == '.' || containsDoubleDot(name) {
			return 0, fmt.Errorf("path %q has an empty segment", name)
		}
	}
	return scope, nil
}

func checkField(what string, b []byte, need bool) error {
	if !need {
		if len(b) != 0 {
			return fmt.Errorf("%s %q not allowed in this scope", what, b)
		}
		return nil
	}
	return checkName(what, b)
}

// checkName accepts a non-empty, valid UTF-8 name without spaces, control
// characters or DEL, so that no name can break a Graphite line.
func checkName(what string, b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("empty %s", what)
	}
	ascii := true
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("%s %q contains a space or control character", what, b)
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii {
		if !utf8.Valid(b) {
			return fmt.Errorf("%s %q is not valid UTF-8", what, b)
		}
		for _, r := range string(b) {
			if r == 0x85 || r == 0x2028 || r == 0x2029 || (r >= 0x80 && r < 0xa0) {
				return fmt.Errorf("%s %q contains a control character", what, b)
			}
		}
	}
	return nil
}

func containsDoubleDot(b []byte) bool {
	for i := 1; i < len(b); i++ {
		if b[i] == '.' && b[i-1] == '.' {
			return true
		}
	}
	return false
}
