package graphite

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Bounds of the pause between two reads of the send queue while waiting
// for acknowledgements.
const (
	minPoll = 200 * time.Microsecond
	maxPoll = 20 * time.Millisecond
)

// Run owns the connection to Graphite until ctx is done: it connects when
// a stream is wanted (with the retry settings after failures), notices the
// peer closing the connection, and settles the Waiters of finished streams
// as their bytes are acknowledged. When ctx is done it closes the
// connection, fails every Waiter still pending with [ErrClosed] and every
// later Open, and returns nil. Run may be called only once.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running || c.stopped {
		c.mu.Unlock()
		return errors.New("graphite: Run called more than once")
	}
	c.running = true
	c.mu.Unlock()
	defer c.stop()
	poll := minPoll
	for ctx.Err() == nil {
		c.mu.Lock()
		cn := c.conn
		need := cn == nil && c.wanted > 0
		pending := len(c.waiters) > 0
		retryAt := c.retryAt
		c.mu.Unlock()

		var wait time.Duration // 0: no timeout
		var dead <-chan struct{}
		switch {
		case need && time.Now().Before(retryAt):
			wait = time.Until(retryAt)
		case need:
			c.connect(ctx)
			poll = minPoll
			continue
		case cn != nil && pending:
			if c.checkAcks(cn) {
				poll = minPoll
			} else {
				poll = min(2*poll, maxPoll)
			}
			wait, dead = poll, cn.dead
		case cn != nil:
			dead = cn.dead
		}
		var timeout <-chan time.Time
		var t *time.Timer
		if wait > 0 {
			t = time.NewTimer(wait)
			timeout = t.C
		}
		select {
		case <-ctx.Done():
		case <-c.wake:
		case <-dead:
		case <-timeout:
		}
		if t != nil {
			t.Stop()
		}
	}
	return nil
}

// connect makes one connection attempt; on success it starts the reader
// that notices the peer closing the connection and wakes the Open calls.
func (c *Client) connect(ctx context.Context) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	nc, err := c.dial(dctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.failed(fmt.Errorf("connect to %s: %w", c.cfg.Address, err))
		c.mu.Unlock()
		return
	}
	c.connects.Add(1)
	cn := &conn{c: nc, dead: make(chan struct{})}
	go func() {
		var buf [512]byte
		for {
			// Graphite sends nothing; a read returns when the peer closes or
			// resets the connection, or when we close it.
			if _, err := nc.Read(buf[:]); err != nil {
				c.fail(cn, fmt.Errorf("connection to %s closed: %w", c.cfg.Address, err))
				return
			}
		}
	}()
	c.mu.Lock()
	cn.progress = time.Now()
	c.conn = cn
	close(c.connected)
	c.connected = make(chan struct{})
	c.mu.Unlock()
	c.logger.Debug("graphite connected", "local", nc.LocalAddr().String())
}

// checkAcks reads how much of cn the peer acknowledged and settles the
// waiters it covers; it fails cn when nothing was acknowledged for
// WriteTimeout with bytes outstanding. It reports whether the
// acknowledgements advanced.
func (c *Client) checkAcks(cn *conn) bool {
	// written is read before the send queue: a write counts its bytes
	// after the kernel queued them, so every byte counted here is in the
	// queue the ioctl reads, and written - q can only understate what was
	// acknowledged. Read after, it overstated it by whatever was written
	// meanwhile: a stream written and finished in that gap (a goroutine
	// descheduled between the two reads, on a loaded machine) counted as
	// delivered with none of its bytes acknowledged.
	written := cn.written.Load()
	q, err := c.unacked(cn.c)
	if err != nil {
		c.fail(cn, fmt.Errorf("read send queue of connection to %s: %w", c.cfg.Address, err))
		return false
	}
	c.mu.Lock()
	advanced := false
	if acked := written - int64(q); acked > cn.acked {
		cn.acked = acked
		cn.progress = time.Now()
		advanced = true
	}
	n := 0
	for _, w := range c.waiters {
		if w.cn != cn || w.end > cn.acked {
			break
		}
		c.deliveredLines.Add(uint64(w.lines))
		c.deliveredBytes.Add(uint64(w.bytes))
		close(w.done)
		n++
	}
	if n > 0 {
		clear(c.waiters[:n])
		c.waiters = c.waiters[n:]
		c.attempt = 0
		if c.warned {
			c.warned = false
			c.logger.Info("graphite delivery resumed")
		}
	}
	stalled := written > cn.acked && time.Since(cn.progress) > c.cfg.WriteTimeout
	since := time.Since(cn.progress)
	c.mu.Unlock()
	if stalled {
		c.fail(cn, fmt.Errorf("%s acknowledged nothing for %s with %d bytes outstanding",
			c.cfg.Address, since.Round(time.Millisecond), written-cn.acked))
	}
	return advanced
}

// stop closes the connection, fails what waits, and refuses later Opens.
func (c *Client) stop() {
	c.mu.Lock()
	cn := c.conn
	c.conn = nil // closed by the stop, not failed: fail ignores it
	c.stopped = true
	close(c.connected)
	c.connected = make(chan struct{})
	waiters := c.waiters
	c.waiters = nil
	c.mu.Unlock()
	if cn != nil {
		cn.once.Do(func() {
			cn.err = ErrClosed
			close(cn.dead)
			cn.c.Close()
		})
	}
	lines := 0
	for _, w := range waiters {
		lines += w.lines
		w.err = ErrClosed
		close(w.done)
	}
	if len(waiters) > 0 {
		c.logger.Warn("graphite client stopped with undelivered snapshots", "snapshots", len(waiters), "lines", lines)
	}
}
