package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	b := newBudget(10)
	newWork := func() *work { return &work{} }
	ctx := context.Background()
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	// Nothing measured yet: one at a time.
	w1, err := b.acquire(ctx, newWork)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.acquire(short(), newWork); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second acquire before any measure = %v, want to wait", err)
	}
	w1.size = 4
	b.release(w1, false)
	// 4 bytes each: two fit in 10, not three (the idle one counts).
	a, _ := b.acquire(ctx, newWork) // the idle one
	c, err := b.acquire(ctx, newWork)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.acquire(short(), newWork); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third acquire = %v, want to wait: 3 x 4 > 10", err)
	}
	a.size, c.size = 4, 4
	b.release(a, false)
	d, err := b.acquire(ctx, newWork)
	if err != nil || d != a {
		t.Fatalf("acquire after a release = %p, %v; want the released one", d, err)
	}
	// A broken one is dropped: its memory no longer counts.
	b.release(d, true)
	b.release(c, false)
	if b.held != 4 || len(b.idle) != 1 {
		t.Errorf("held %d bytes in %d idle, want 4 in 1", b.held, len(b.idle))
	}
	// One call always proceeds, whatever its size.
	big := newBudget(1)
	w, _ := big.acquire(ctx, newWork)
	w.size = 100
	big.release(w, false)
	if _, err := big.acquire(short(), newWork); err != nil {
		t.Fatalf("acquire of the only work over budget = %v, want it", err)
	}
}

func TestBudgetTryAcquire(t *testing.T) {
	// A second work value for the only snapshot in progress, never waiting:
	// the first snapshot gets one (nothing measured yet), and later ones
	// while the budget has room and no other snapshot is being processed.
	b := newBudget(10)
	made := 0
	newWork := func() *work { made++; return &work{} }
	ctx := context.Background()
	if h := b.tryAcquire(newWork); h != nil {
		t.Fatal("a helper with no snapshot in progress")
	}
	w, _ := b.acquire(ctx, newWork)
	h := b.tryAcquire(newWork)
	if h == nil || made != 2 {
		t.Fatalf("no helper for the first snapshot (%d made)", made)
	}
	if b.tryAcquire(newWork) != nil {
		t.Error("a helper while two work values are busy")
	}
	h.size, w.size = 4, 4
	b.release(h, false)
	b.release(w, false)
	// 4 + 4 held, both idle: the two are reused.
	w, _ = b.acquire(ctx, newWork)
	if h2 := b.tryAcquire(newWork); h2 != h || made != 2 {
		t.Fatalf("helper %p (%d made), want the idle %p", h2, made, h)
	}
	b.release(h, true) // broken: dropped
	// 4 held by w, a new one estimated at 4: fits in 10; then 12 does not.
	if h = b.tryAcquire(newWork); h == nil {
		t.Fatal("no helper with room in the budget")
	}
	// A helper of 8 bytes puts the budget over: it is dropped, and no
	// other fits next to w (4 + 8 > 10).
	h.size = 8
	b.release(h, false)
	if len(b.idle) != 0 || b.held != 4 {
		t.Fatalf("held %d bytes, %d idle; want 4, none", b.held, len(b.idle))
	}
	if b.tryAcquire(newWork) != nil {
		t.Error("a helper past the budget")
	}
	b.release(w, false)
}

func TestBudgetNoHelperWhileOthersWait(t *testing.T) {
	// The first snapshot of a backlog: the others wait for memory (nothing
	// measured yet), so it gets no second work value.
	b := newBudget(10)
	newWork := func() *work { return &work{} }
	ctx := context.Background()
	w, _ := b.acquire(ctx, newWork)
	got := make(chan *work, 1)
	go func() {
		o, _ := b.acquire(ctx, newWork)
		got <- o
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		n := b.waiting
		b.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second acquire never waited")
		}
	}
	if b.tryAcquire(newWork) != nil {
		t.Error("a helper while a snapshot waits for memory")
	}
	w.size = 4
	b.release(w, false)
	o := <-got
	if b.waiting != 0 {
		t.Errorf("%d waiting after the wait ended", b.waiting)
	}
	if h := b.tryAcquire(newWork); h == nil {
		t.Error("no helper once nothing waits")
	} else {
		b.release(h, false)
	}
	b.release(o, false)
}
