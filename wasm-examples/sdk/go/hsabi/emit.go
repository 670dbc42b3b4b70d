package hsabi

import (
	"encoding/binary"
	"fmt"
	"math"
)

const (
	outputMagic      = 0x314F5348 // "HSO1"
	outputHeaderSize = 16
	statusOK         = 0
	statusError      = 1
)

// Scope says where a metric goes. With the prefix P (`namespace[.host].
// haproxy`) and, for grouped objects, the group namespace G and group g:
type Scope uint8

// Scopes, as in docs/ABI.md.
const (
	ScopeDaemon     Scope = 1 // P.daemon.<name>
	ScopeProcess    Scope = 2 // P.daemon.process.<object>.<name>
	ScopeFrontend   Scope = 3 // P[.G.g].frontend.<object>.<name>
	ScopeBackend    Scope = 4 // P[.G.g].backend.<object>.<name>
	ScopeServer     Scope = 5 // P[.G.g].backend.<object>.server.<server>.<name>
	ScopeAggrServer Scope = 6 // P[.G.g].server.<server>.<name>
	ScopePath       Scope = 7 // P.<name>, name a dotted path
)

// Emitter collects the metrics of one call in the output format of
// docs/ABI.md. The host replaces '.' by '_' in object, server and metric
// names (not in ScopePath names) and applies the prefix and group rules.
type Emitter struct {
	buf   []byte
	count int
	err   error
}

func (e *Emitter) reset() {
	if cap(e.buf) < outputHeaderSize {
		e.buf = make([]byte, outputHeaderSize, 4096)
	}
	e.buf = e.buf[:outputHeaderSize]
	e.count, e.err = 0, nil
}

// Count reports the number of metrics emitted so far in this call.
func (e *Emitter) Count() int { return e.count }

// Emit adds one metric. Fields a scope does not use must be empty. An
// invalid metric makes the whole call fail with an error naming it.
func (e *Emitter) Emit(scope Scope, object, server, name string, value float64) {
	if e.err != nil {
		return
	}
	if len(object) > math.MaxUint16 || len(server) > math.MaxUint16 || len(name) > math.MaxUint16 {
		e.err = fmt.Errorf("metric %.64q: name longer than 65535 bytes", name)
		return
	}
	if e.buf == nil {
		e.reset()
	}
	var h [16]byte
	h[0] = byte(scope)
	binary.LittleEndian.PutUint16(h[2:], uint16(len(object)))
	binary.LittleEndian.PutUint16(h[4:], uint16(len(server)))
	binary.LittleEndian.PutUint16(h[6:], uint16(len(name)))
	binary.LittleEndian.PutUint64(h[8:], math.Float64bits(value))
	e.buf = append(e.buf, h[:]...)
	e.buf = append(e.buf, object...)
	e.buf = append(e.buf, server...)
	e.buf = append(e.buf, name...)
	e.count++
}

// Daemon emits P.daemon.<name>.
func (e *Emitter) Daemon(name string, v float64) { e.Emit(ScopeDaemon, "", "", name, v) }

// Process emits P.daemon.process.<proc>.<name>.
func (e *Emitter) Process(proc, name string, v float64) { e.Emit(ScopeProcess, proc, "", name, v) }

// Frontend emits P.frontend.<frontend>.<name>.
func (e *Emitter) Frontend(frontend, name string, v float64) {
	e.Emit(ScopeFrontend, frontend, "", name, v)
}

// Backend emits P.backend.<backend>.<name>.
func (e *Emitter) Backend(backend, name string, v float64) {
	e.Emit(ScopeBackend, backend, "", name, v)
}

// Server emits P.backend.<backend>.server.<server>.<name>.
func (e *Emitter) Server(backend, server, name string, v float64) {
	e.Emit(ScopeServer, backend, server, name, v)
}

// AggrServer emits P.server.<server>.<name>.
func (e *Emitter) AggrServer(server, name string, v float64) {
	e.Emit(ScopeAggrServer, "", server, name, v)
}

// Path emits P.<path>; path is a dotted path used as is.
func (e *Emitter) Path(path string, v float64) { e.Emit(ScopePath, "", "", path, v) }

// finish writes the header and returns the output buffer; with err set it
// returns an error buffer instead.
func (e *Emitter) finish(err error) []byte {
	if e.buf == nil {
		e.reset()
	}
	if err == nil {
		err = e.err
	}
	le := binary.LittleEndian
	if err != nil {
		msg := err.Error()
		if len(msg) > 512 {
			msg = msg[:512]
		}
		e.buf = append(e.buf[:outputHeaderSize], msg...)
		le.PutUint32(e.buf[0:], outputMagic)
		le.PutUint32(e.buf[4:], statusError)
		le.PutUint32(e.buf[8:], uint32(len(msg)))
		le.PutUint32(e.buf[12:], 0)
		return e.buf
	}
	le.PutUint32(e.buf[0:], outputMagic)
	le.PutUint32(e.buf[4:], statusOK)
	le.PutUint32(e.buf[8:], uint32(e.count))
	le.PutUint32(e.buf[12:], 0)
	return e.buf
}
