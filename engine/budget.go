package engine

import (
	"context"
	"sync"
)

// budget hands out the working memory of snapshots (work values) so that
// the memory held by all of them, busy or kept for reuse, stays within a
// number of bytes. A work value's size is what it held after its last
// snapshot; a new one is counted at the size of the largest seen so far
// (before any was measured, calls proceed one at a time). When a call
// would go past the budget it waits for a work value to be released,
// except that one call always proceeds. Work values beyond the budget are
// dropped for the garbage collector.
type budget struct {
	limit int64 // 0: no limit

	mu      sync.Mutex
	idle    []*work
	held    int64 // sizes of every work value alive, busy or idle
	busy    int
	waiting int // acquire calls waiting for memory
	largest int64
	wake    chan struct{} // closed and replaced when a work value is released
}

// maxIdle bounds the work values kept for reuse without a budget.
const maxIdle = 16

func newBudget(limit int64) *budget {
	return &budget{limit: limit, wake: make(chan struct{})}
}

// acquire returns a work value, waiting while the budget is spent.
func (b *budget) acquire(ctx context.Context, newWork func() *work) (*work, error) {
	for {
		b.mu.Lock()
		if w := b.reuse(); w != nil {
			b.mu.Unlock()
			return w, nil
		}
		// Until a snapshot was measured, one at a time: a first backlog
		// of large snapshots must not start every worker at once.
		if b.limit == 0 || b.busy == 0 || (b.largest > 0 && b.held+b.largest <= b.limit) {
			est := b.reserve()
			b.mu.Unlock()
			return b.make(newWork, est), nil
		}
		wake := b.wake
		b.waiting++
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
		}
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// tryAcquire returns a second work value for a snapshot being processed,
// without waiting, when that snapshot is the only one in progress, no
// other waits for memory (a backlog's snapshots get it first), and the
// budget has room for another (or nothing was measured yet: the first
// snapshot). The caller releases it as any other.
func (b *budget) tryAcquire(newWork func() *work) *work {
	b.mu.Lock()
	if b.busy != 1 || b.waiting > 0 {
		b.mu.Unlock()
		return nil
	}
	if w := b.reuse(); w != nil {
		b.mu.Unlock()
		return w
	}
	if b.limit > 0 && b.largest > 0 && b.held+b.largest > b.limit {
		b.mu.Unlock()
		return nil
	}
	est := b.reserve()
	b.mu.Unlock()
	return b.make(newWork, est)
}

// make returns newWork's work value, counted at est bytes (reserved). When
// newWork panics (a Folder's NewFold), the reservation is taken back
// before the panic goes on: the budget must not count a work value that
// never was.
func (b *budget) make(newWork func() *work, est int64) *work {
	made := false
	defer func() {
		if made {
			return
		}
		b.mu.Lock()
		b.busy--
		b.held -= est
		b.wakeAll()
		b.mu.Unlock()
	}()
	w := newWork()
	w.held = est
	made = true
	return w
}

// reuse hands out the last idle work value, or nil. b.mu is held.
func (b *budget) reuse() *work {
	n := len(b.idle)
	if n == 0 {
		return nil
	}
	w := b.idle[n-1]
	b.idle[n-1] = nil
	b.idle = b.idle[:n-1]
	b.busy++
	return w
}

// reserve counts a new work value, at the size of the largest one
// measured, and returns that size. b.mu is held.
func (b *budget) reserve() int64 {
	b.busy++
	b.held += b.largest
	return b.largest
}

// release takes back w, whose size was just measured (a new one counts
// from zero), and keeps it for reuse unless the budget is spent; a broken
// w (a stage panicked while using it) is dropped.
func (b *budget) release(w *work, broken bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.busy--
	b.held += w.size - w.held
	w.held = w.size
	b.largest = max(b.largest, w.size)
	over := b.limit > 0 && b.held > b.limit && (b.busy > 0 || len(b.idle) > 0)
	if broken || over || len(b.idle) >= maxIdle {
		b.held -= w.held
	} else {
		b.idle = append(b.idle, w)
	}
	b.wakeAll()
}

// wakeAll wakes every acquire waiting for memory. b.mu is held.
func (b *budget) wakeAll() {
	close(b.wake)
	b.wake = make(chan struct{})
}
