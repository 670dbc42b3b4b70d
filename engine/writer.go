package engine

import (
	"bytes"
	"io"
	"math"
	"slices"
	"sync"
	"unsafe"
)

// chunkSize is the size at which a stage's lines are handed to the output:
// the output of a snapshot is never held whole, only a chunk per stage.
const chunkSize = 64 << 10

// output serializes the chunks of the stages of one snapshot into the
// caller's writer. The first write error sticks: later chunks are dropped.
type output struct {
	mu    sync.Mutex
	w     io.Writer
	err   error
	lines int
	bytes int
}

// write hands p, whole lines, to the writer.
func (o *output) write(p []byte, lines int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	if _, err := o.w.Write(p); err != nil {
		o.err = err
		return err
	}
	o.lines += lines
	o.bytes += len(p)
	return nil
}

// failed returns the first write error.
func (o *output) failed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// lineWriter is the Emitter the pipeline hands to a stage: it formats
// every metric into a chunk and hands full chunks to the output. A
// holding writer (for a Stage, whose output is discarded when it fails)
// keeps every line until commit.
type lineWriter struct {
	paths *Paths
	out   *output
	hold  bool

	buf   []byte
	lines int // in buf
	count int // metrics emitted, NaN included
	err   error

	// The group of the last grouped object, and the path prefix of the
	// last object: consecutive metrics of one object reuse both.
	groupKey  objectKey
	group     string
	prefixKey objectKey
	prefix    []byte

	// The path part of each name of the last EmitObject, and " <ts>\n":
	// an aggregator sends the same names for every object of a scope,
	// which are made path parts once rather than once per line.
	names []string
	parts []fixedPart
	tail  []byte
	// The last object's prefix and the tail, for the fixed-size copies.
	prefixPart, tailPart fixedPart
}

// tailCopy is the size of the copy of a line's tail (" <ts>\n") in
// object: a timestamp of up to 14 digits.
const tailCopy = 16

// fixedPart is a piece of a line (an object's prefix, a name's path
// part and the space after it, the line's tail) in a fixed-size array when
// it fits: a line copies it with one move of that size, not a call to
// memmove, whose branches on the size are mispredicted as the lengths of
// the pieces alternate from one copy to the next.
type fixedPart struct {
	fixed [96]byte
	n     int    // bytes of fixed used; 0 when the piece is longer than fixed
	long  []byte // the piece, when it is longer
}

// set makes the part p (kept only when it does not fit the array).
func (f *fixedPart) set(p []byte) {
	f.n, f.long = 0, nil
	if len(p) <= len(f.fixed) {
		f.n = copy(f.fixed[:], p)
	} else {
		f.long = p
	}
}

// appendTo appends the part to b.
func (f *fixedPart) appendTo(b []byte) []byte {
	if f.n == 0 {
		return append(b, f.long...)
	}
	k := len(b)
	if cap(b)-k < len(f.fixed) {
		b = slices.Grow(b, len(f.fixed))
	}
	b = b[:k+len(f.fixed)]
	*(*[len(f.fixed)]byte)(b[k:]) = f.fixed
	return b[:k+f.n]
}

type objectKey struct {
	scope       Scope
	group       string
	object, srv string
}

// same reports whether k and o are the same object; the names of one
// object are usually the same strings (interned), which is checked first.
func (k *objectKey) same(o *objectKey) bool {
	return k.scope == o.scope && sameString(k.object, o.object) && sameString(k.srv, o.srv) && sameString(k.group, o.group)
}

func sameString(a, b string) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

// start prepares w for a snapshot.
func (w *lineWriter) start(paths *Paths, ts string, out *output, hold bool) {
	w.paths, w.out, w.hold = paths, out, hold
	w.buf, w.lines, w.count, w.err = w.buf[:0], 0, 0, nil
	w.groupKey, w.group = objectKey{}, ""
	w.prefixKey, w.prefix = objectKey{}, w.prefix[:0]
	w.tail = append(append(append(w.tail[:0], ' '), ts...), '\n')
	w.tailPart.set(w.tail)
	if cap(w.buf) < chunkSize+1024 && !hold {
		w.buf = make([]byte, 0, chunkSize+1024)
	}
}

// flush hands the buffered lines to the output.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 && w.err == nil {
		if w.hold {
			w.err = w.commitHeld()
		} else {
			w.err = w.out.write(w.buf, w.lines)
		}
	}
	w.buf, w.lines = w.buf[:0], 0
}

// commitHeld writes the held lines in chunks of whole lines.
func (w *lineWriter) commitHeld() error {
	b := w.buf
	for len(b) > 0 {
		n := len(b)
		if n > chunkSize {
			n = bytes.LastIndexByte(b[:chunkSize], '\n') + 1
			if n == 0 { // a line longer than a chunk
				n = bytes.IndexByte(b, '\n') + 1
			}
		}
		if err := w.out.write(b[:n], bytes.Count(b[:n], []byte{'\n'})); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// discard drops the held lines (the stage failed).
func (w *lineWriter) discard() { w.buf, w.lines = w.buf[:0], 0 }

func (w *lineWriter) Emit(m Metric) {
	w.count++
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) || w.err != nil || m.Scope == 0 || int(m.Scope) >= len(sections) {
		return
	}
	if g := w.groupFor(m); g != "" {
		w.line(m, g)
		if !w.paths.DoubleWrites {
			w.chunked()
			return
		}
	}
	w.line(m, "")
	w.chunked()
}

// EmitObject implements ObjectEmitter.
func (w *lineWriter) EmitObject(m Metric, names []string, values []float64) {
	w.count += len(names)
	if w.err != nil || m.Scope == 0 || int(m.Scope) >= len(sections) {
		return
	}
	if g := w.groupFor(m); g != "" {
		w.lines += w.object(m, g, names, values)
		if !w.paths.DoubleWrites {
			w.chunked()
			return
		}
	}
	w.lines += w.object(m, "", names, values)
	w.chunked()
}

// groupFor returns the group of m's object ("" for none, and for scopes
// without groups).
func (w *lineWriter) groupFor(m Metric) string {
	switch m.Scope {
	case ScopeFrontend:
		return w.groupName(0, w.paths.FrontendGroups, m.Object)
	case ScopeBackend, ScopeServer:
		return w.groupName(1, w.paths.BackendGroups, m.Object)
	case ScopeAggrServer:
		return w.groupName(2, w.paths.ServerGroups, m.Server)
	}
	return ""
}

// object appends the lines of one object under group ("" for none) and
// returns their number.
func (w *lineWriter) object(m Metric, group string, names []string, values []float64) int {
	w.setPrefix(m, group)
	if m.Scope == ScopePath {
		n := 0
		for i, v := range values[:len(names)] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			w.buf = w.appendLine(w.buf, m.Scope, names[i], v)
			n++
		}
		return n
	}
	w.nameParts(names)
	// The object's prefix and the line's tail are copied, like the name
	// parts, with fixed-size moves when they fit.
	w.prefixPart.set(w.prefix)
	b, n := w.buf, 0
	parts := w.parts[:len(names)]
	pre, tail := &w.prefixPart, &w.tailPart
	fits := pre.n > 0 && tail.n > 0 && tail.n <= tailCopy
	const room = 2*len(fixedPart{}.fixed) + 1 // and a digit
	for i, v := range values[:len(names)] {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		n++
		p := &parts[i]
		if !fits || p.n == 0 {
			b = pre.appendTo(b)
			b = p.appendTo(b)
			b = AppendValue(b, v)
			b = tail.appendTo(b)
			continue
		}
		// The same as above, written here: three calls per line were
		// about a third of the cost of writing it.
		k := len(b)
		if cap(b)-k < room {
			b = slices.Grow(b, room)
		}
		b = b[:k+room]
		*(*[len(pre.fixed)]byte)(b[k:]) = pre.fixed
		k += pre.n
		*(*[len(p.fixed)]byte)(b[k:]) = p.fixed
		k += p.n
		// Most values are one digit (AppendValue's first case).
		if d := int64(v); d >= 0 && d < 10 && float64(d) == v {
			b[k] = '0' + byte(d)
			b = b[:k+1]
		} else {
			b = AppendValue(b[:k], v)
		}
		k = len(b)
		if cap(b)-k < tailCopy {
			b = slices.Grow(b, tailCopy)
		}
		b = b[:k+tailCopy]
		*(*[tailCopy]byte)(b[k:]) = [tailCopy]byte(tail.fixed[:tailCopy])
		b = b[:k+tail.n]
	}
	w.buf = b
	return n
}

// nameParts makes w.parts the path parts of names (each followed by a
// space), unless they are those of the last call.
func (w *lineWriter) nameParts(names []string) {
	if len(names) == len(w.names) {
		same := true
		for i, n := range names {
			if !sameString(n, w.names[i]) {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	w.names = append(w.names[:0], names...)
	w.parts = slices.Grow(w.parts[:0], len(names))[:len(names)]
	for i, n := range names {
		w.parts[i].set(append(appendName(nil, n), ' '))
	}
}

// appendLine appends the line of metric name of scope, value v, to b
// after the prefix setPrefix made: a free path keeps its dots, every other
// name is one path part.
func (w *lineWriter) appendLine(b []byte, scope Scope, name string, v float64) []byte {
	b = append(b, w.prefix...)
	if scope == ScopePath {
		b = appendPath(b, name)
	} else {
		b = appendName(b, name)
	}
	b = append(b, ' ')
	b = AppendValue(b, v)
	return append(b, w.tail...)
}

// chunked hands a full chunk to the output.
func (w *lineWriter) chunked() {
	if !w.hold && len(w.buf) >= chunkSize {
		w.flush()
	}
}

// groupName returns the group of an object name ("" for none).
func (w *lineWriter) groupName(kind int, groups []Group, name string) string {
	if len(groups) == 0 || w.paths.GroupNamespace == "" {
		return ""
	}
	if w.groupKey.scope != Scope(kind) || !sameString(w.groupKey.object, name) {
		w.groupKey, w.group = objectKey{scope: Scope(kind), object: name}, w.paths.groupOf(kind, groups, PathName(name))
	}
	return w.group
}

var sections = [...]string{
	ScopeDaemon:     "daemon.",
	ScopeProcess:    "daemon.process.",
	ScopeFrontend:   "frontend.",
	ScopeBackend:    "backend.",
	ScopeServer:     "backend.",
	ScopeAggrServer: "server.",
	ScopeSelf:       "haproxystats.",
	ScopePath:       "",
}

// line appends `P[.G.group].<section>[<object>.][server.<srv>.]<name> <value> <ts>\n`.
func (w *lineWriter) line(m Metric, group string) {
	w.setPrefix(m, group)
	w.buf = w.appendLine(w.buf, m.Scope, m.Name, m.Value)
	w.lines++
}

// setPrefix makes w.prefix `P[.G.group].<section>[<object>.][server.<srv>.]`
// for m, unless it is that already.
func (w *lineWriter) setPrefix(m Metric, group string) {
	k := objectKey{m.Scope, group, m.Object, m.Server}
	if m.Scope == ScopeDaemon || m.Scope == ScopeSelf || m.Scope == ScopePath {
		k.object, k.srv = "", ""
	} else if m.Scope == ScopeAggrServer {
		k.object = ""
	}
	if !k.same(&w.prefixKey) || len(w.prefix) == 0 {
		w.prefixKey = k
		b := append(w.prefix[:0], w.paths.Prefix...)
		b = append(b, '.')
		if group != "" {
			b = append(b, w.paths.GroupNamespace...)
			b = append(b, '.')
			b = appendName(b, group)
			b = append(b, '.')
		}
		b = append(b, sections[m.Scope]...)
		if k.object != "" {
			b = appendName(b, k.object)
			b = append(b, '.')
		}
		if k.srv != "" {
			if m.Scope == ScopeServer {
				b = append(b, "server."...)
			}
			b = appendName(b, k.srv)
			b = append(b, '.')
		}
		w.prefix = b
	}
}
