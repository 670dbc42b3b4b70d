package engine

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
