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
