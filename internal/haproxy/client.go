package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// Commands that haproxystats sends. Any other CLI command works with
// [Client.Command] as well.
const (
	ShowInfo = "show info"
	ShowStat = "show stat"
)

// DefaultBufferLimit is the read chunk size used when Client.BufferLimit is
// not positive; it is the default of the pull section's buffer-limit.
const DefaultBufferLimit = 6291456

// initialBuffer is the capacity the answer buffer starts with (or
// BufferLimit if that is smaller); the buffer grows as the answer arrives.
const initialBuffer = 64 << 10

// ErrEmptyAnswer is returned (wrapped) by [Client.Command] when HAProxy
// closed the connection without sending a single byte.
var ErrEmptyAnswer = errors.New("empty answer")

// Client sends commands to one HAProxy stats socket.
type Client struct {
	// Network is "unix" or "tcp" (as for [net.Dial]; "tcp4" and "tcp6" work
	// too).
	Network string
	// Address is the socket path for "unix", host:port for "tcp".
	Address string
	// Timeout bounds each connection attempt; 0 means no limit other than the
	// context.
	Timeout time.Duration
	// Retries is the number of connection attempts after the first one: 0
	// means a single attempt, -1 retries until the context is done.
	Retries int
	// Interval is the pause between two connection attempts.
	Interval time.Duration
	// BufferLimit is the largest number of bytes asked from the socket in one
	// read; the answer itself has no size limit. Not positive means
	// DefaultBufferLimit.
	BufferLimit int
}

// String names the socket, e.g. "unix /run/haproxy/admin.sock".
func (c *Client) String() string { return c.Network + " " + c.Address }

// Command connects to the socket (retrying as configured), sends cmd followed
// by a newline, and returns everything HAProxy sends back until it closes the
// connection. ctx bounds the whole exchange. An empty answer is an error that
// wraps [ErrEmptyAnswer]; when ctx ends first, the error wraps ctx's error.
// Every error names the socket and the command.
func (c *Client) Command(ctx context.Context, cmd string) ([]byte, error) {
	out, err := c.command(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("haproxy %s %s: %q: %w", c.Network, c.Address, cmd, err)
	}
	return out, nil
}

func (c *Client) command(ctx context.Context, cmd string) ([]byte, error) {
	if c.Address == "" {
		return nil, errors.New("empty address")
	}
	if c.Retries < -1 {
		return nil, fmt.Errorf("invalid retries %d", c.Retries)
	}
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	// Interrupt a blocked write or read as soon as ctx is done: a socket
	// that accepts and never answers must not hold the caller.
	stop := context.AfterFunc(ctx, func() {
		conn.SetDeadline(time.Unix(1, 0))
	})
	defer stop()

	if _, err := conn.Write([]byte(cmd + "\n")); err != nil {
		return nil, ioError(ctx, "write", 0, err)
	}
	limit := c.BufferLimit
	if limit <= 0 {
		limit = DefaultBufferLimit
	}
	buf := make([]byte, 0, min(limit, initialBuffer))
	for {
		if len(buf) == cap(buf) {
			// Double: append's 1.25x growth for large slices would copy a
			// multi-megabyte answer many times over.
			buf = slices.Grow(buf, cap(buf))
		}
		n, err := conn.Read(buf[len(buf):min(cap(buf), len(buf)+limit)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, ioError(ctx, "read", len(buf), err)
		}
	}
	if len(buf) == 0 {
		return nil, ErrEmptyAnswer
	}
	return buf, nil
}

// connect dials, making 1 + Retries attempts (forever with -1) with Interval
// between them, each bounded by Timeout, all bounded by ctx.
func (c *Client) connect(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: c.Timeout}
	var last error
	for attempt := 1; ; attempt++ {
		conn, err := d.DialContext(ctx, c.Network, c.Address)
		if err == nil {
			return conn, nil
		}
		last = err
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect (%d attempts, last error: %v): %w", attempt, last, ctx.Err())
		}
		if c.Retries >= 0 && attempt > c.Retries {
			return nil, fmt.Errorf("connect (%d attempts): %w", attempt, last)
		}
		if c.Interval > 0 {
			t := time.NewTimer(c.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("connect (%d attempts, last error: %v): %w", attempt, last, ctx.Err())
			case <-t.C:
			}
		}
	}
}

// ioError reports a failed read or write, preferring ctx's error when ctx
// ended (the deadline set by the AfterFunc is what made the I/O fail).
func ioError(ctx context.Context, op string, got int, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s after %d bytes: %w", op, got, ctx.Err())
	}
	return fmt.Errorf("%s after %d bytes: %w", op, got, err)
}
