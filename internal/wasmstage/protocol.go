package wasmstage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The control protocol between a stage (the daemon) and its child process,
// over two pipes: requests on the child's fd 3, replies and log lines on
// its fd 4. Every message is a little-endian u32 length, then that many
// bytes: a type byte and its fields. The child answers each request with
// exactly one reply, after any number of log messages. The bulk data, the
// module's input and output buffers, never crosses a pipe: both processes
// map the module's memory (a memfd, the child's fd 5), the daemon writes
// the input where hs_alloc said and reads the output where hs_process said.
const (
	// Requests, daemon to child.
	msgStart       = 1 // u32 memory-limit MiB, u64 compile data limit, u32 compile CPU s, u32 call CPU s, str cache dir, u32 n, n × (str key, str value), bytes module
	msgInstantiate = 2 // u32 call, u8 first
	msgAlloc       = 3 // u32 call, u32 size
	msgProcess     = 4 // u32 call, u32 ptr, u32 size

	// Messages of the child.
	msgLog   = 16 // i32 slog level, u8 truncated, str text
	msgReply = 17 // u8 kind (kindOK or the error's), u32 log lines dropped, then the answer or str message
)

// Kinds of a reply: OK, or the class of its error (one of the sentinel
// errors, or none).
const (
	kindOK = iota
	kindError
	kindTrap
	kindMemory
	kindMalformed
)

// Bounds of a message: a reply is small (at most the column list and an
// error message); a request holds at most the module.
const (
	maxReply      = 1 << 20
	maxRequestFix = 1 << 20 // a start request's bytes besides the module
	maxErrorText  = 4096
)

// msgWriter builds one message.
type msgWriter struct{ b []byte }

func newMsg(typ byte) *msgWriter {
	return &msgWriter{b: append(make([]byte, 4, 64), typ)}
}

func (w *msgWriter) u8(v byte) *msgWriter { w.b = append(w.b, v); return w }
func (w *msgWriter) u32(v uint32) *msgWriter {
	w.b = binary.LittleEndian.AppendUint32(w.b, v)
	return w
}
func (w *msgWriter) u64(v uint64) *msgWriter {
	w.b = binary.LittleEndian.AppendUint64(w.b, v)
	return w
}
func (w *msgWriter) bytes(v []byte) *msgWriter {
	w.u32(uint32(len(v)))
	w.b = append(w.b, v...)
	return w
}
func (w *msgWriter) str(v string) *msgWriter {
	w.u32(uint32(len(v)))
	w.b = append(w.b, v...)
	return w
}

// frame returns the message with its length.
func (w *msgWriter) frame() []byte {
	binary.LittleEndian.PutUint32(w.b, uint32(len(w.b)-4))
	return w.b
}

// readMsg reads one message of at most limit bytes and returns its type
// and fields.
func readMsg(r *bufio.Reader, limit int) (byte, *msgReader, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(h[:])
	if n == 0 || uint64(n) > uint64(limit) {
		return 0, nil, fmt.Errorf("message of %d bytes, limit %d: %w", n, limit, errProtocol)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	return b[0], &msgReader{b: b[1:]}, nil
}

// errProtocol: a message does not follow the protocol.
var errProtocol = errors.New("protocol error")

// msgReader reads the fields of a message; after the first error every
// read returns zero and err holds it.
type msgReader struct {
	b   []byte
	err error
}

func (r *msgReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("truncated message: %w", errProtocol)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *msgReader) u8() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *msgReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *msgReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *msgReader) bytes() []byte { return r.take(int(r.u32())) }

func (r *msgReader) str() string { return string(r.bytes()) }

// done reports the first error, or one if bytes are left over.
func (r *msgReader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the message: %w", len(r.b), errProtocol)
	}
	return r.err
}

// errorKind is the kind of a reply carrying err.
func errorKind(err error) byte {
	switch {
	case errors.Is(err, ErrMemoryLimit):
		return kindMemory
	case errors.Is(err, ErrTrap):
		return kindTrap
	case errors.Is(err, ErrMalformed):
		return kindMalformed
	}
	return kindError
}

// remoteError is an error of the child process: its text, and the
// sentinel error of its kind.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

func newRemoteError(kind byte, msg string) error {
	var sentinel error
	switch kind {
	case kindTrap:
		sentinel = ErrTrap
	case kindMemory:
		sentinel = ErrMemoryLimit
	case kindMalformed:
		sentinel = ErrMalformed
	}
	return &remoteError{msg: msg, kind: sentinel}
}
