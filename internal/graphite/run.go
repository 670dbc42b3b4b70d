package graphite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"time"
)

// chunkSize is the largest single write.
const chunkSize = 128 << 10

// Bounds of the pause between two reads of the send queue while waiting
// for acknowledgements with nothing else to do.
const (
	minPoll = 200 * time.Microsecond
	maxPoll = 20 * time.Millisecond
)

// maxWait caps a computed retry wait (Interval * Backoff^k).
const maxWait = 24 * time.Hour

// Run owns the connection to Graphite and delivers the batches handed to
// Send, retrying as configured for as long as ctx is alive. When ctx is done
// it makes one final delivery attempt bounded by Config.FlushTimeout, closes
// the connection, finishes every batch still undelivered with [ErrClosed],
// and returns nil. Run may be called only once.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.state != stateNew {
		c.mu.Unlock()
		return errors.New("graphite: Run called more than once")
	}
	c.state = stateRunning
	c.mu.Unlock()

	r := &runner{c: c}
	r.loop(ctx)
	r.flush()
	r.close()
	return nil
}

// runner is the state of Run; only Run's goroutine touches it.
type runner struct {
	c *Client

	conn       net.Conn
	dead       chan struct{} // closed by the reader when conn fails
	deadErr    error         // why; set before dead is closed
	readerDone chan struct{}

	pending  []*Delivery // not yet written on conn, in order
	inflight []*Delivery // written on conn, not yet acknowledged, in order
	written  int64       // bytes written on conn
	acked    int64       // bytes of conn acknowledged by the peer
	progress time.Time   // last time a write or an acknowledgement advanced
	poll     time.Duration

	attempt int  // failures in the current round
	warned  bool // a failed round was logged and no batch delivered since
}

// loop delivers batches until ctx is done.
func (r *runner) loop(ctx context.Context) {
	for {
		r.pending = r.c.take(r.pending)
		if ctx.Err() != nil {
			return
		}
		idle, err := r.step(ctx, time.Time{})
		if err != nil {
			r.fail(ctx, err)
			continue
		}
		if len(r.pending) > 0 {
			continue
		}
		var t *time.Timer
		var timeout <-chan time.Time
		if !idle {
			// Waiting for acknowledgements.
			t = time.NewTimer(r.poll)
			timeout = t.C
			r.poll = min(2*r.poll, maxPoll)
		}
		select {
		case <-ctx.Done():
		case <-r.c.work:
		case <-r.dead: // nil without a connection
		case <-timeout: // nil when idle
		}
		if t != nil {
			t.Stop()
		}
	}
}

// step does one unit of work: it confirms acknowledged batches, and
// connects and writes the next batch if there is one. It reports idle when
// nothing is left to deliver. A non-zero deadline bounds writes.
func (r *runner) step(ctx context.Context, deadline time.Time) (idle bool, err error) {
	if r.conn != nil && r.isDead() {
		if len(r.inflight) > 0 {
			return false, fmt.Errorf("connection to %s lost with %d unconfirmed batches: %w",
				r.c.cfg.Address, len(r.inflight), r.deadErr)
		}
		r.c.logger.Debug("graphite connection closed while idle", "err", r.deadErr)
		r.dropConn()
	}
	if len(r.inflight) > 0 {
		if err := r.checkAcks(); err != nil {
			return false, err
		}
	}
	if len(r.pending) > 0 {
		if r.conn == nil {
			if err := r.connect(ctx); err != nil {
				return false, err
			}
		}
		return false, r.write(r.pending[0], deadline)
	}
	if len(r.inflight) > 0 {
		if d := time.Since(r.progress); d > r.c.cfg.WriteTimeout {
			return false, fmt.Errorf("%s acknowledged nothing for %s with %d bytes outstanding",
				r.c.cfg.Address, d.Round(time.Millisecond), r.written-r.acked)
		}
		return false, nil
	}
	return true, nil
}

func (r *runner) isDead() bool {
	select {
	case <-r.dead:
		return true
	default:
		return false
	}
}

// connect opens a connection and starts its reader, which notices the peer
// closing it.
func (r *runner) connect(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, r.c.cfg.ConnectTimeout)
	conn, err := r.c.dial(dctx)
	cancel()
	if err != nil {
		return fmt.Errorf("connect to %s: %w", r.c.cfg.Address, err)
	}
	r.c.connects.Add(1)
	r.conn = conn
	r.written, r.acked = 0, 0
	r.progress = time.Now()
	r.poll = minPoll
	dead, done := make(chan struct{}), make(chan struct{})
	r.dead, r.readerDone = dead, done
	go func() {
		defer close(done)
		var buf [512]byte
		for {
			// Graphite sends nothing; a read returns when the peer closes
			// or resets the connection, or when we close it.
			if _, err := conn.Read(buf[:]); err != nil {
				r.deadErr = err
				close(dead)
				return
			}
		}
	}()
	r.c.logger.Debug("graphite connected", "local", conn.LocalAddr().String())
	return nil
}

// dropConn closes the connection; every batch not confirmed on it goes back
// to the front of the pending list, to be sent again whole.
func (r *runner) dropConn() {
	if r.conn == nil {
		return
	}
	r.conn.Close()
	<-r.readerDone
	r.conn, r.dead, r.readerDone, r.deadErr = nil, nil, nil, nil
	if len(r.inflight) > 0 {
		r.pending = append(r.inflight, r.pending...)
		r.inflight = nil
	}
	r.written, r.acked = 0, 0
}

// write writes d whole in chunks, confirming earlier batches in between, and
// moves it from pending to inflight.
func (r *runner) write(d *Delivery, deadline time.Time) error {
	for off := 0; off < len(d.lines); {
		end := min(off+chunkSize, len(d.lines))
		dl := time.Now().Add(r.c.cfg.WriteTimeout)
		if !deadline.IsZero() && deadline.Before(dl) {
			dl = deadline
		}
		if err := r.conn.SetWriteDeadline(dl); err != nil {
			return fmt.Errorf("set write deadline on connection to %s: %w", r.c.cfg.Address, err)
		}
		n, err := r.conn.Write(d.lines[off:end])
		off += n
		r.written += int64(n)
		if n > 0 {
			r.progress = time.Now()
		}
		if err != nil {
			return fmt.Errorf("write to %s: %w", r.c.cfg.Address, err)
		}
		if r.isDead() {
			return fmt.Errorf("connection to %s lost while writing: %w", r.c.cfg.Address, r.deadErr)
		}
		if len(r.inflight) > 0 {
			if err := r.checkAcks(); err != nil {
				return err
			}
		}
	}
	d.end = r.written
	r.pending[0] = nil
	r.pending = r.pending[1:]
	if len(r.pending) == 0 {
		r.pending = nil
	}
	r.inflight = append(r.inflight, d)
	r.poll = minPoll
	return r.checkAcks()
}

// checkAcks reads how much of the stream the peer acknowledged and finishes
// the batches it covers.
func (r *runner) checkAcks() error {
	q, err := r.c.unacked(r.conn)
	if err != nil {
		return fmt.Errorf("read send queue of connection to %s: %w", r.c.cfg.Address, err)
	}
	if acked := r.written - int64(q); acked > r.acked {
		r.acked = acked
		r.progress = time.Now()
		r.poll = minPoll
	}
	for len(r.inflight) > 0 && r.inflight[0].end <= r.acked {
		d := r.inflight[0]
		r.inflight[0] = nil
		r.inflight = r.inflight[1:]
		r.c.finish(d, nil)
		r.attempt = 0
		if r.warned {
			r.warned = false
			r.c.logger.Info("graphite delivery resumed")
		}
	}
	if len(r.inflight) == 0 {
		r.inflight = nil
	}
	return nil
}

// fail handles a failed attempt: it drops the connection and waits before
// the next attempt as the retry settings say.
func (r *runner) fail(ctx context.Context, err error) {
	r.dropConn()
	r.c.failures.Add(1)
	r.attempt++
	var wait time.Duration
	if r.attempt <= r.c.cfg.Retries {
		wait = backoffWait(r.c.cfg.Interval, r.c.cfg.Backoff, r.attempt-1)
		r.c.logger.Debug("graphite attempt failed", "err", err, "attempt", r.attempt, "retry_in", wait)
	} else {
		wait = r.c.cfg.Delay
		r.c.logger.Warn("graphite delivery failed, pausing", "err", err,
			"attempts", r.attempt, "pause", wait, "held_lines", r.c.Stats().Held)
		r.attempt = 0
		r.warned = true
	}
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// backoffWait returns interval * backoff^k, capped at maxWait.
func backoffWait(interval time.Duration, backoff float64, k int) time.Duration {
	w := float64(interval) * math.Pow(backoff, float64(k))
	if w > float64(maxWait) || math.IsNaN(w) {
		return maxWait
	}
	return time.Duration(w)
}

// flush stops accepting batches and makes one bounded attempt to deliver
// what is left.
func (r *runner) flush() {
	r.pending = r.c.stop(r.pending)
	if len(r.pending) == 0 && len(r.inflight) == 0 {
		return
	}
	deadline := time.Now().Add(r.c.cfg.FlushTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for ctx.Err() == nil {
		idle, err := r.step(ctx, deadline)
		if err != nil {
			r.c.logger.Warn("graphite final flush failed", "err", err)
			return
		}
		if idle {
			return
		}
		if len(r.pending) == 0 {
			t := time.NewTimer(r.poll)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			r.poll = min(2*r.poll, maxPoll)
		}
	}
}

// close closes the connection and gives up on every batch left.
func (r *runner) close() {
	r.dropConn()
	r.pending = r.c.stop(r.pending) // any stragglers
	if n := len(r.pending); n > 0 {
		lines := 0
		for _, d := range r.pending {
			lines += d.n
		}
		r.c.logger.Warn("graphite client stopped with undelivered batches", "batches", n, "lines", lines)
	}
	for _, d := range r.pending {
		r.c.finish(d, ErrClosed)
	}
	r.pending = nil
}
