// Package throttle limits how often a repeating message is logged: a
// broker down fails a connection at every retry, a stuck snapshot fails at
// every backoff, and the log should say so once per interval with the
// number of repeats left out, not at every attempt.
//
// A Throttle is safe for concurrent use; its zero value logs each key at
// most every DefaultEvery.
package throttle

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is Throttle.Every when 0.
const DefaultEvery = 30 * time.Second

// maxKeys bounds the keys remembered; beyond it they are all forgotten
// (a repeat is then logged once more).
const maxKeys = 4096

// Throttle remembers when each message (a key) was last let through and
// how many repeats were held back since.
type Throttle struct {
	// Every is the shortest interval between two messages of one key;
	// 0 = DefaultEvery.
	Every time.Duration

	mu   sync.Mutex
	seen map[string]*repeat
}

type repeat struct {
	last    time.Time
	dropped int
}

// Allow reports whether the message of key is to be logged now, and how
// many repeats were held back before it.
func (t *Throttle) Allow(key string) (ok bool, dropped int) {
	every := t.Every
	if every == 0 {
		every = DefaultEvery
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil || len(t.seen) >= maxKeys {
		t.seen = map[string]*repeat{}
	}
	r := t.seen[key]
	now := time.Now()
	if r == nil {
		t.seen[key] = &repeat{last: now}
		return true, 0
	}
	if now.Sub(r.last) < every {
		r.dropped++
		return false, 0
	}
	dropped, r.dropped, r.last = r.dropped, 0, now
	return true, dropped
}

// Log logs msg with attrs at level on l unless a message of key was
// logged less than Every ago; the first one logged after held-back
// repeats carries their number ("repeated").
func (t *Throttle) Log(l *slog.Logger, level slog.Level, key, msg string, attrs ...any) {
	ok, dropped := t.Allow(key)
	if !ok {
		return
	}
	if dropped > 0 {
		attrs = append(attrs, "repeated", dropped)
	}
	l.Log(context.Background(), level, msg, attrs...)
}

// Forget drops key, so that its next message is logged at once; it
// reports whether key was there.
func (t *Throttle) Forget(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.seen[key]
	delete(t.seen, key)
	return ok
}
