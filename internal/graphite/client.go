package graphite

import (
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

// ErrClosed is returned by [Client.Send] once [Client.Run] has stopped, and by
// [Delivery.Err] for a batch that Run gave up on when it stopped.
var ErrClosed = errors.New("graphite client stopped")

// ErrPending is returned by [Delivery.Err] while the batch is neither
// delivered nor given up.
var ErrPending = errors.New("graphite delivery pending")

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
	// QueueSize is the most metric lines held in memory: accepted by Send
	// and not yet delivered.
	QueueSize int
	// FlushTimeout bounds the final delivery attempt Run makes after its
	// context is done. Zero means ConnectTimeout + WriteTimeout.
	FlushTimeout time.Duration
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
	if cfg.QueueSize < 1 {
		errs = append(errs, fmt.Errorf("queue size %d is less than 1", cfg.QueueSize))
	}
	if cfg.FlushTimeout < 0 {
		errs = append(errs, fmt.Errorf("flush timeout %s is negative", cfg.FlushTimeout))
	}
	return errors.Join(errs...)
}

// Client delivers batches of metric lines to one Graphite relay. Create it
// with [New], start [Client.Run] once, and hand batches over with
// [Client.Send].
type Client struct {
	cfg    Config
	logger *slog.Logger

	// dial opens a connection; tests replace it.
	dial func(ctx context.Context) (net.Conn, error)
	// unacked returns the bytes written to conn and not yet acknowledged by
	// the peer; tests replace it.
	unacked func(conn net.Conn) (int, error)

	work chan struct{} // capacity 1: queue is not empty

	mu      sync.Mutex
	state   int           // stateNew, stateRunning, stateStopped
	queue   []*Delivery   // accepted, not yet taken by Run
	held    int           // lines accepted and not yet finished
	waiters []*sendWaiter // Send calls waiting for room, first come first served

	delivered      atomic.Uint64
	deliveredLines atomic.Uint64
	deliveredBytes atomic.Uint64
	connects       atomic.Uint64
	failures       atomic.Uint64
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

type sendWaiter struct {
	d     *Delivery
	ready chan struct{} // closed when settled
	err   error         // set before ready is closed; nil means accepted
}

// New validates cfg and returns a client. It starts nothing; call
// [Client.Run]. A nil logger discards the log.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("graphite config: %w", err)
	}
	if cfg.FlushTimeout == 0 {
		cfg.FlushTimeout = cfg.ConnectTimeout + cfg.WriteTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:     cfg,
		logger:  logger.With("graphite", cfg.Address),
		unacked: unacked,
		work:    make(chan struct{}, 1),
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout}
	c.dial = func(ctx context.Context) (net.Conn, error) {
		return dialer.DialContext(ctx, "tcp", cfg.Address)
	}
	return c, nil
}

// Addr returns the configured host:port.
func (c *Client) Addr() string { return c.cfg.Address }

// Send hands over one batch: lines holds n whole lines. It blocks while
// accepting them would hold more than Config.QueueSize lines in memory,
// until there is room or ctx is done; then it returns ctx's error and has
// taken nothing. A batch larger than QueueSize is accepted once nothing else
// is held. Send takes ownership of lines. It returns [ErrClosed] once Run
// has stopped.
func (c *Client) Send(ctx context.Context, lines []byte, n int) (*Delivery, error) {
	if n < 0 {
		return nil, fmt.Errorf("graphite send: negative line count %d", n)
	}
	d := &Delivery{lines: lines, n: n, done: make(chan struct{})}
	if len(lines) == 0 {
		close(d.done) // nothing to deliver
		return d, nil
	}
	c.mu.Lock()
	if c.state == stateStopped {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if len(c.waiters) == 0 && c.fits(n) {
		c.accept(d)
		c.mu.Unlock()
		return d, nil
	}
	w := &sendWaiter{d: d, ready: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()

	select {
	case <-w.ready:
	case <-ctx.Done():
		c.mu.Lock()
		select {
		case <-w.ready:
			// Settled meanwhile: the batch was taken (or the client stopped).
		default:
			for i, x := range c.waiters {
				if x == w {
					c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
					break
				}
			}
			c.admitWaiters() // the next in line may fit now
			c.mu.Unlock()
			return nil, ctx.Err()
		}
		c.mu.Unlock()
	}
	if w.err != nil {
		return nil, w.err
	}
	return d, nil
}

// fits reports whether n more lines may be accepted. c.mu is held.
func (c *Client) fits(n int) bool {
	return c.held == 0 || c.held+n <= c.cfg.QueueSize
}

// accept queues d for Run. c.mu is held.
func (c *Client) accept(d *Delivery) {
	c.queue = append(c.queue, d)
	c.held += d.n
	select {
	case c.work <- struct{}{}:
	default:
	}
}

// admitWaiters accepts waiting batches, in order, while they fit. c.mu is
// held.
func (c *Client) admitWaiters() {
	for len(c.waiters) > 0 && c.fits(c.waiters[0].d.n) {
		w := c.waiters[0]
		c.waiters[0] = nil
		c.waiters = c.waiters[1:]
		c.accept(w.d)
		close(w.ready)
	}
	if len(c.waiters) == 0 {
		c.waiters = nil
	}
}

// take moves every accepted batch to the end of dst and returns it.
func (c *Client) take(dst []*Delivery) []*Delivery {
	c.mu.Lock()
	dst = append(dst, c.queue...)
	clear(c.queue)
	c.queue = c.queue[:0]
	c.mu.Unlock()
	return dst
}

// finish reports d as delivered (err == nil) or given up, and frees its room
// in the queue.
func (c *Client) finish(d *Delivery, err error) {
	if err == nil {
		c.delivered.Add(1)
		c.deliveredLines.Add(uint64(d.n))
		c.deliveredBytes.Add(uint64(len(d.lines)))
	}
	c.mu.Lock()
	c.held -= d.n
	c.admitWaiters()
	c.mu.Unlock()
	d.lines = nil
	d.err = err
	close(d.done)
}

// stop refuses further batches: waiting Send calls return ErrClosed, and the
// batches accepted but not yet taken are appended to dst.
func (c *Client) stop(dst []*Delivery) []*Delivery {
	c.mu.Lock()
	c.state = stateStopped
	for _, w := range c.waiters {
		w.err = ErrClosed
		close(w.ready)
	}
	c.waiters = nil
	dst = append(dst, c.queue...)
	c.queue = nil
	c.mu.Unlock()
	return dst
}

// Stats is a snapshot of a client's counters.
type Stats struct {
	// Held is the number of lines accepted and not yet delivered.
	Held int
	// Delivered, DeliveredLines and DeliveredBytes count delivered batches
	// and their lines and bytes.
	Delivered, DeliveredLines, DeliveredBytes uint64
	// Connects counts connections established.
	Connects uint64
	// Failures counts failed attempts: connect, write, or waiting for
	// acknowledgements.
	Failures uint64
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	held := c.held
	c.mu.Unlock()
	return Stats{
		Held:           held,
		Delivered:      c.delivered.Load(),
		DeliveredLines: c.deliveredLines.Load(),
		DeliveredBytes: c.deliveredBytes.Load(),
		Connects:       c.connects.Load(),
		Failures:       c.failures.Load(),
	}
}

// Delivery reports the fate of one batch handed to [Client.Send].
type Delivery struct {
	lines []byte // owned by Run until done
	n     int
	end   int64 // stream offset after the batch's last byte; owned by Run
	done  chan struct{}
	err   error // set before done is closed
}

// Done returns a channel that is closed when the batch was delivered or
// given up; [Delivery.Err] tells which.
func (d *Delivery) Done() <-chan struct{} { return d.done }

// Err returns nil once the batch was delivered: written and acknowledged by
// the peer's TCP stack. It returns [ErrClosed] if the client stopped before
// that, and [ErrPending] while Done is not closed.
func (d *Delivery) Err() error {
	select {
	case <-d.done:
		return d.err
	default:
		return ErrPending
	}
}

// Wait waits until Done is closed and returns Err, or returns ctx's error
// if ctx is done first.
func (d *Delivery) Wait(ctx context.Context) error {
	select {
	case <-d.done:
		return d.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Lines returns the number of lines in the batch.
func (d *Delivery) Lines() int { return d.n }
