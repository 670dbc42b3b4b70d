package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Commands that haproxystats sends. Any other CLI command works with
// [Client.Command] as well.
const (
	ShowInfo = "show info"
	ShowStat = "show stat"
)

// DefaultBufferLimit is the default of the pull section's buffer-limit.
const DefaultBufferLimit = 6291456

// MaxReadSize bounds the buffer an answer is streamed through, whatever
// BufferLimit says: memory stays bounded however large the answer.
const MaxReadSize = 64 << 10

// ErrEmptyAnswer is returned (wrapped) by [Client.Command] and
// [Client.Stream] when HAProxy closed the connection without sending a
// single byte.
var ErrEmptyAnswer = errors.New("empty answer")

// ErrAnswerTooLarge is returned (wrapped) by [Client.Command] and
// [Client.Stream] when the answer is longer than Client.MaxAnswer.
var ErrAnswerTooLarge = errors.New("answer too large")

// Client sends commands to one HAProxy stats socket or master CLI.
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
	// read, at most MaxReadSize; it does not limit the answer (MaxAnswer
	// does). Not positive means DefaultBufferLimit.
	BufferLimit int
	// MaxAnswer is the longest answer accepted, in bytes: a longer one fails
	// with [ErrAnswerTooLarge] as soon as its byte MaxAnswer+1 arrives. Not
	// positive means no limit.
	MaxAnswer int64
	// HalfClose shuts the sending side of the connection down once the
	// command is sent. A master CLI (haproxy -W -S) needs it: HAProxy 2.6's
	// answers a command and keeps the connection open until the client
	// half-closes or sends "quit", so reading until the server closes would
	// wait for the context's end. A plain stats socket closes by itself.
	HalfClose bool
}

// String names the socket, e.g. "unix /run/haproxy/admin.sock".
func (c *Client) String() string { return c.Network + " " + c.Address }

// ReadSize is the size of the buffer Stream reads through: BufferLimit (or
// DefaultBufferLimit when not positive), at most MaxReadSize.
func (c *Client) ReadSize() int { return ReadSize(c.BufferLimit) }

// ReadSize is the size of the buffer a Client with that BufferLimit
// streams through.
func ReadSize(bufferLimit int) int {
	if bufferLimit <= 0 {
		bufferLimit = DefaultBufferLimit
	}
	return min(bufferLimit, MaxReadSize)
}

// Command connects to the socket (retrying as configured), sends cmd followed
// by a newline, and returns everything HAProxy sends back until it closes the
// connection, at most MaxAnswer bytes. ctx bounds the whole exchange. It
// holds the whole answer in memory: use Stream for answers that may be
// large. Errors are those of Stream.
func (c *Client) Command(ctx context.Context, cmd string) ([]byte, error) {
	var b bytes.Buffer
	if _, err := c.Stream(ctx, cmd, &b, nil); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Stream is Command writing the answer to w as it arrives, through buf
// (len(buf) >= ReadSize(); nil: a buffer of ReadSize() bytes is
// allocated), and returning its length. An empty answer is an error that
// wraps [ErrEmptyAnswer], one longer than MaxAnswer wraps
// [ErrAnswerTooLarge] (its first MaxAnswer bytes have been written to w);
// when ctx ends first, the error wraps ctx's error. Every error names the
// socket and the command; a failed write to w is returned as it is, wrapped.
func (c *Client) Stream(ctx context.Context, cmd string, w io.Writer, buf []byte) (int64, error) {
	n, err := c.stream(ctx, cmd, w, buf)
	if err != nil {
		return n, fmt.Errorf("haproxy %s %s: %q: %w", c.Network, c.Address, cmd, err)
	}
	return n, nil
}

func (c *Client) stream(ctx context.Context, cmd string, w io.Writer, buf []byte) (int64, error) {
	if c.Address == "" {
		return 0, errors.New("empty address")
	}
	if c.Retries < -1 {
		return 0, fmt.Errorf("invalid retries %d", c.Retries)
	}
	size := c.ReadSize()
	if len(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	conn, err := c.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()

	// Interrupt a blocked write or read as soon as ctx is done: a socket
	// that accepts and never answers must not hold the caller.
	stop := context.AfterFunc(ctx, func() {
		conn.SetDeadline(time.Unix(1, 0))
	})
	defer stop()

	if _, err := conn.Write([]byte(cmd + "\n")); err != nil {
		return 0, ioError(ctx, "write", 0, err)
	}
	if c.HalfClose {
		if hc, ok := conn.(interface{ CloseWrite() error }); ok {
			if err := hc.CloseWrite(); err != nil {
				return 0, ioError(ctx, "half-close", 0, err)
			}
		}
	}
	var total int64
	for {
		r, err := conn.Read(buf)
		if r > 0 {
			if c.MaxAnswer > 0 && total+int64(r) > c.MaxAnswer {
				keep := c.MaxAnswer - total
				if _, werr := w.Write(buf[:keep]); werr != nil {
					return total, fmt.Errorf("store answer: %w", werr)
				}
				return c.MaxAnswer, fmt.Errorf("more than %d bytes: %w", c.MaxAnswer, ErrAnswerTooLarge)
			}
			if _, werr := w.Write(buf[:r]); werr != nil {
				return total, fmt.Errorf("store answer after %d bytes: %w", total, werr)
			}
			total += int64(r)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return total, ioError(ctx, "read", total, err)
		}
	}
	if total == 0 {
		return 0, ErrEmptyAnswer
	}
	return total, nil
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
func ioError(ctx context.Context, op string, got int64, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s after %d bytes: %w", op, got, ctx.Err())
	}
	return fmt.Errorf("%s after %d bytes: %w", op, got, err)
}
