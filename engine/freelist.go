package engine

import "sync/atomic"

// freeList keeps up to cap(ch) values for reuse. Unlike sync.Pool it is
// not emptied by the garbage collector: the values it holds are large
// (parsed columns, output buffers) and reusing them is what keeps a busy
// daemon from allocating and page-faulting tens of megabytes per snapshot.
type freeList[T any] struct {
	ch chan T
}

func newFreeList[T any](n int) freeList[T] { return freeList[T]{ch: make(chan T, n)} }

// get returns a kept value, or ok false when there is none.
func (f freeList[T]) get() (v T, ok bool) {
	select {
	case v = <-f.ch:
		return v, true
	default:
		return v, false
	}
}

// put keeps v unless the list is full.
func (f freeList[T]) put(v T) {
	select {
	case f.ch <- v:
	default:
	}
}

// bufferPool recycles byte buffers sized from the last one used, so that
// formatting a snapshot like the previous one never grows a buffer by
// copying.
type bufferPool struct {
	free freeList[[]byte]
	hint atomic.Int64 // length of the last buffer put back
}

func newBufferPool(n int) *bufferPool { return &bufferPool{free: newFreeList[[]byte](n)} }

// get returns an empty buffer with room for the last length plus an eighth.
func (b *bufferPool) get() []byte {
	h := int(b.hint.Load())
	return b.getSize(h + h/8 + 4096)
}

// getSize returns an empty buffer with room for at least size bytes.
// New buffers are rounded up to a whole 256 KiB, so that snapshots whose
// sizes differ by a few bytes (the self-metrics' digits) reuse them.
func (b *bufferPool) getSize(size int) []byte {
	if buf, ok := b.free.get(); ok && cap(buf) >= size {
		return buf[:0]
	}
	const round = 256 << 10
	return make([]byte, 0, (size+round-1)/round*round)
}

// put recycles buf and remembers its length.
func (b *bufferPool) put(buf []byte) {
	if buf == nil {
		return
	}
	b.hint.Store(int64(len(buf)))
	b.free.put(buf[:0])
}
