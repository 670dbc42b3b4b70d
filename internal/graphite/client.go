package graphite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by [Client.Open] once [Client.Run] has stopped, and
// by a Waiter whose lines Run gave up on when it stopped.
var ErrClosed = errors.New("graphite client stopped")

// ErrConnectionLost is wrapped by the errors of a Stream, or of its
// Waiter, whose connection failed before every one of its bytes was
// acknowledged: the snapshot must be sent again.
var ErrConnectionLost = errors.New("graphite connection lost")

// Config is the configuration of a [Client]; the "graphite" section of the
// configuration file maps onto it.
type Config struct {
	// Address is host:port of the Graphite relay (see net.JoinHostPort).
	Address string
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration
	// WriteTimeout bounds one write, and the time the peer may take without
	// acknowledging any more of what was written.
	WriteTimeout time.Duration
	// Retries is the number of attempts in one round after the first
	// failure; 0 means every failure ends the round.
	Retries int
	// Interval is the wait after the first failure of a round.
	Interval time.Duration
	// Backoff multiplies the wait after each further failure of the round.
	Backoff float64
	// Delay is the pause after a round in which every attempt failed.
	Delay time.Duration
}

func (cfg *Config) validate() error {
	var errs []error
	if cfg.Address == "" {
		errs = append(errs, errors.New("address is empty"))
	} else if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		errs = append(errs, fmt.Errorf("address %q: %w", cfg.Address, err))
	}
	if cfg.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("connect timeout %s is not positive", cfg.ConnectTimeout))
	}
	if cfg.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("write timeout %s is not positive", cfg.WriteTimeout))
	}
	if cfg.Retries < 0 {
		errs = append(errs, fmt.Errorf("retries %d is negative", cfg.Retries))
	}
	if cfg.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval %s is negative", cfg.Interval))
	}
	if !(cfg.Backoff > 0) || math.IsInf(cfg.Backoff, 0) {
		errs = append(errs, fmt.Errorf("backoff %v is not a positive number", cfg.Backoff))
	}
	if cfg.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay %s is negative", cfg.Delay))
	}
	return errors.Join(errs...)
}

// Client delivers the lines of snapshots to one Graphite relay over one
// TCP connection. Create it with [New], start [Client.Run] once, and hand
// each snapshot's lines over through a [Stream] from [Client.Open].
type Client struct {
	cfg    Config
	logger *slog.Logger
	// dial opens a connection; tests replace it.
	dial func(ctx context.Context) (net.Conn, error)
	// unacked returns the bytes written to conn and not yet acknowledged by
	// the peer; tests replace it.
	unacked func(conn net.Conn) (int, error)

	wmu sync.Mutex // held for each write on the connection

	mu        sync.Mutex
	conn      *conn         // nil when not connected
	wanted    int           // Open calls waiting for a connection
	streams   int           // streams open and not finished
	connected chan struct{} // closed and replaced when a connection is up or Run stops
	waiters   []*waiter     // finished streams not yet acknowledged, by end
	running   bool
	stopped   bool
	attempt   int       // failures in the current round
	retryAt   time.Time // no connection attempt before
	warned    bool      // a failed round was logged and nothing delivered since
	wake      chan struct{}

	deliveredLines, deliveredBytes, written atomic.Uint64
	connects, failures                      atomic.Uint64
}

// conn is one connection and how much of it was written and acknowledged.
type conn struct {
	c        net.Conn
	written  atomic.Int64 // bytes written, by the writers holding wmu
	acked    int64        // bytes acknowledged; Client.mu
	progress time.Time    // last time the acknowledgements advanced, or a write began with nothing outstanding; Client.mu
	dead     chan struct{}
	err      error // why it died; set before dead is closed
	once     sync.Once
}

func (cn *conn) isDead() bool {
	select {
	case <-cn.dead:
		return true
	default:
		return false
	}
}

// New validates cfg and returns a client. It starts nothing; call
// [Client.Run]. A nil logger discards the log.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("graphite config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:       cfg,
		logger:    logger.With("graphite", cfg.Address),
		unacked:   unacked,
		connected: make(chan struct{}),
		wake:      make(chan struct{}, 1),
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout}
	c.dial = func(ctx context.Context) (net.Conn, error) {
		return dialer.DialContext(ctx, "tcp", cfg.Address)
	}
	return c, nil
}

// Name reports "graphite", the destination's name in logs and self-metrics.
func (c *Client) Name() string { return "graphite" }

// Addr returns the configured host:port.
func (c *Client) Addr() string { return c.cfg.Address }

// signal wakes Run.
func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Open starts the delivery of one snapshot's lines. It waits, until ctx is
// done, for a connection: Run makes one, with the retry rules, as soon as
// a stream is wanted. It returns [ErrClosed] once Run has stopped.
func (c *Client) Open(ctx context.Context, snapshot string) (*Stream, error) {
	waiting := false
	defer func() {
		if waiting {
			c.mu.Lock()
			c.wanted--
			c.mu.Unlock()
		}
	}()
	for {
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if cn := c.conn; cn != nil && !cn.isDead() {
			c.streams++
			c.mu.Unlock()
			return &Stream{c: c, cn: cn, ctx: ctx}, nil
		}
		if !waiting {
			waiting = true
			c.wanted++
		}
		ch := c.connected
		c.mu.Unlock()
		c.signal()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Stream carries one snapshot's lines on the connection it was opened on.
// Its methods are called from one goroutine at a time; the streams of
// several snapshots interleave their writes, each a chunk of whole lines.
type Stream struct {
	c     *Client
	cn    *conn
	ctx   context.Context
	lines int
	bytes int
	err   error
	done  bool
}

// Write writes p, whole lines, on the connection, within WriteTimeout (and
// the ctx given to Open: when it is done, the write is cut short). p is not
// kept. A failed write fails the connection: every stream on it must be
// sent again.
func (s *Stream) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	c, cn := s.c, s.cn
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if cn.isDead() {
		s.err = fmt.Errorf("%w: %w", ErrConnectionLost, cn.err)
		return 0, s.err
	}
	c.mu.Lock()
	if cn.written.Load() == cn.acked {
		// Nothing was outstanding: the wait for acknowledgements starts
		// now, not at the last acknowledgement, which may be a snapshot
		// ago (the check after Finish would take a peer that has not
		// acknowledged yet, a millisecond away, for one that acknowledged
		// nothing for WriteTimeout).
		cn.progress = time.Now()
	}
	c.mu.Unlock()
	if err := s.ctx.Err(); err != nil {
		// Nothing written: the connection stays good for other streams.
		s.err = fmt.Errorf("%w: write to %s: %w", ErrConnectionLost, c.cfg.Address, err)
		return 0, s.err
	}
	if err := cn.c.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout)); err != nil {
		c.fail(cn, err)
		s.err = fmt.Errorf("%w: set write deadline: %w", ErrConnectionLost, err)
		return 0, s.err
	}
	// The deadline in the past that cuts the write short is set after the
	// one above, never before it (a ctx done before the write would
	// otherwise race with it and the write would wait out WriteTimeout),
	// and it is settled before Write returns, so that it cannot land on
	// the next stream's write.
	cut := make(chan struct{})
	stop := context.AfterFunc(s.ctx, func() {
		defer close(cut)
		cn.c.SetWriteDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-cut
		}
	}()
	n, err := cn.c.Write(p)
	cn.written.Add(int64(n))
	c.written.Add(uint64(n))
	if err != nil {
		if cerr := s.ctx.Err(); cerr != nil {
			err = cerr
		}
		err = fmt.Errorf("write to %s: %w", c.cfg.Address, err)
		c.fail(cn, err)
		s.err = fmt.Errorf("%w: %w", ErrConnectionLost, err)
		return n, s.err
	}
	s.bytes += n
	s.lines += bytes.Count(p, []byte{'\n'})
	return n, nil
}

// Waiter reports when the lines of a finished stream are delivered.
type Waiter interface {
	Wait(ctx context.Context) error
}

// Finish says every line was written and returns a Waiter that reports
// nil once the peer's TCP stack acknowledged all of them, or an error
// wrapping ErrConnectionLost if the connection failed first.
func (s *Stream) Finish() Waiter {
	s.close()
	if s.err != nil {
		return doneWaiter{s.err}
	}
	if s.bytes == 0 {
		return doneWaiter{}
	}
	c, cn := s.c, s.cn
	w := &waiter{cn: cn, lines: s.lines, bytes: s.bytes, done: make(chan struct{})}
	c.mu.Lock()
	if cn.isDead() {
		c.mu.Unlock()
		return doneWaiter{fmt.Errorf("%w: %w", ErrConnectionLost, cn.err)}
	}
	w.end = cn.written.Load()
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	c.signal()
	return w
}

// Abort abandons the stream; what it wrote stays written (the snapshot is
// sent again later, which Graphite absorbs).
func (s *Stream) Abort() { s.close() }

func (s *Stream) close() {
	if s.done {
		return
	}
	s.done = true
	s.c.mu.Lock()
	s.c.streams--
	s.c.mu.Unlock()
}

// waiter is a finished stream waiting for the acknowledgement of the
// connection's first end bytes.
type waiter struct {
	cn           *conn
	end          int64
	lines, bytes int
	done         chan struct{}
	err          error // set before done is closed
}

func (w *waiter) Wait(ctx context.Context) error {
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// doneWaiter is a Waiter settled at once.
type doneWaiter struct{ err error }

func (w doneWaiter) Wait(context.Context) error { return w.err }

// Stalled reports whether nothing can be delivered now: there is no
// connection while streams want one or wait for acknowledgements, or
// bytes have been outstanding without any acknowledgement for d. The
// daemon stops at once, rather than waiting out its stop timeout, when its
// destinations stall.
func (c *Client) Stalled(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	busy := c.wanted > 0 || c.streams > 0 || len(c.waiters) > 0
	if c.conn == nil || c.conn.isDead() {
		return busy
	}
	cn := c.conn
	return cn.written.Load() > cn.acked && time.Since(cn.progress) > d
}

// Stats is a snapshot of a client's counters, cumulative since New.
type Stats struct {
	// DeliveredLines and DeliveredBytes count what was acknowledged.
	DeliveredLines, DeliveredBytes uint64
	// Written counts bytes written, delivered or not.
	Written uint64
	// Connects counts connections established.
	Connects uint64
	// Failures counts failed attempts: connect, write, or waiting for
	// acknowledgements.
	Failures uint64
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		DeliveredLines: c.deliveredLines.Load(),
		DeliveredBytes: c.deliveredBytes.Load(),
		Written:        c.written.Load(),
		Connects:       c.connects.Load(),
		Failures:       c.failures.Load(),
	}
}

// fail marks cn dead with err: its writers and waiters get
// ErrConnectionLost, and Run makes a new connection after the retry wait
// (a connection the peer closed while nothing was outstanding is not a
// failure).
func (c *Client) fail(cn *conn, err error) {
	cn.once.Do(func() {
		cn.err = err
		close(cn.dead)
		cn.c.Close()
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != cn {
		return
	}
	c.conn = nil
	idle := c.streams == 0 && len(c.waiters) == 0 && cn.written.Load() == cn.acked
	var kept []*waiter
	for _, w := range c.waiters {
		if w.cn == cn {
			w.err = fmt.Errorf("%w: %w", ErrConnectionLost, err)
			close(w.done)
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
	if idle {
		c.logger.Debug("graphite connection closed while idle", "err", err)
		return
	}
	c.failed(err)
}

// failed counts a failed attempt and sets when the next may start, as the
// retry settings say. c.mu is held.
func (c *Client) failed(err error) {
	c.failures.Add(1)
	c.attempt++
	var wait time.Duration
	if c.attempt <= c.cfg.Retries {
		wait = backoffWait(c.cfg.Interval, c.cfg.Backoff, c.attempt-1)
		c.logger.Debug("graphite attempt failed", "err", err, "attempt", c.attempt, "retry_in", wait)
	} else {
		wait = c.cfg.Delay
		c.logger.Warn("graphite delivery failed, pausing", "err", err, "attempts", c.attempt, "pause", wait)
		c.attempt = 0
		c.warned = true
	}
	c.retryAt = time.Now().Add(wait)
}

// maxWait caps a computed retry wait (Interval * Backoff^k).
const maxWait = 24 * time.Hour

// backoffWait returns interval * backoff^k, capped at maxWait.
func backoffWait(interval time.Duration, backoff float64, k int) time.Duration {
	w := float64(interval) * math.Pow(backoff, float64(k))
	if w > float64(maxWait) || math.IsNaN(w) {
		return maxWait
	}
	return time.Duration(w)
}
