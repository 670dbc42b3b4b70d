//go:build linux

package graphite

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// listenSmallRcvbuf listens on addr with SO_RCVBUF set to size, which the
// accepted connections inherit: their receive window stays small instead of
// growing with autotuning.
func listenSmallRcvbuf(t *testing.T, addr string, size int) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	return ln
}

// countingConn counts the bytes its writes accepted.
type countingConn struct {
	*net.TCPConn
	written *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// gate is a channel closed once, at the latest when the test ends.
func newGate(t *testing.T) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(open)
	return ch, open
}

func TestNotDeliveredUntilAcknowledged(t *testing.T) {
	t.Run("write returned", func(t *testing.T) {
		// Our send buffer holds the whole batch, so every write returns,
		// but the peer reads nothing and its receive buffer is tiny: most
		// of the batch sits unacknowledged in our kernel.
		gate, open := newGate(t)
		rec := startRecorder(t, listenSmallRcvbuf(t, "127.0.0.1:0", 4096), func(r *recorder, idx int, conn net.Conn) {
			<-gate
			r.record(idx, conn)
		})
		t.Cleanup(open) // runs before the recorder stops
		cfg := testConfig(rec.ln.Addr().String())
		cfg.WriteTimeout = 5 * time.Second
		var (
			written atomic.Int64
			tcp     atomic.Pointer[net.TCPConn]
		)
		c, _ := startClient(t, cfg, func(c *Client) {
			c.dial = func(ctx context.Context) (net.Conn, error) {
				var d net.Dialer
				conn, err := d.DialContext(ctx, "tcp", cfg.Address)
				if err != nil {
					return nil, err
				}
				tc := conn.(*net.TCPConn)
				if err := tc.SetWriteBuffer(4 << 20); err != nil {
					t.Errorf("SetWriteBuffer: %v", err)
				}
				tcp.Store(tc)
				return countingConn{tc, &written}, nil
			}
		})
		b := batch("queued", 40_000) // about 1 MiB
		d := send(t, c, b, 40_000)

		deadline := time.Now().Add(3 * time.Second)
		for written.Load() < int64(len(b)) {
			if time.Now().After(deadline) {
				t.Fatalf("writes accepted %d of %d bytes; the send buffer should hold them all", written.Load(), len(b))
			}
			time.Sleep(time.Millisecond)
		}
		for range 3 {
			time.Sleep(100 * time.Millisecond)
			q, err := unacked(tcp.Load())
			if err != nil {
				t.Fatalf("unacked: %v", err)
			}
			if q == 0 {
				t.Fatal("SIOCOUTQ = 0 while the peer reads nothing; the test's buffers are too large")
			}
			if err := d.Err(); !errors.Is(err, ErrPending) {
				t.Fatalf("Err() = %v with %d bytes unacknowledged, want ErrPending", err, q)
			}
		}
		open()
		waitDeliveredStats(t, c, d, 10*time.Second)
		if q, err := unacked(tcp.Load()); err != nil || q != 0 {
			t.Errorf("unacked after delivery = %d, %v, want 0", q, err)
		}
		waitSize(t, rec, len(b))
		if got := rec.data(-1); !bytes.Equal(got, b) {
			t.Errorf("received %d bytes, want the %d bytes of the batch", len(got), len(b))
		}
		if n := rec.numConns(); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})

	t.Run("write blocks", func(t *testing.T) {
		// Several MiB: neither our send queue nor the peer's receive
		// buffer can take them.
		gate, open := newGate(t)
		rec := startRecorder(t, listenSmallRcvbuf(t, "127.0.0.1:0", 64<<10), func(r *recorder, idx int, conn net.Conn) {
			<-gate
			r.record(idx, conn)
		})
		t.Cleanup(open)
		cfg := testConfig(rec.ln.Addr().String())
		cfg.WriteTimeout = 5 * time.Second
		c, _ := startClient(t, cfg, nil)
		b := batch("blocked", 200_000) // about 7 MiB
		d := send(t, c, b, 200_000)
		time.Sleep(500 * time.Millisecond)
		if err := d.Err(); !errors.Is(err, ErrPending) {
			t.Fatalf("Err() = %v while the peer reads nothing, want ErrPending", err)
		}
		open()
		waitDeliveredStats(t, c, d, 10*time.Second)
		waitSize(t, rec, len(b))
		if got := rec.data(-1); !bytes.Equal(got, b) {
			t.Errorf("received %d bytes, want the %d bytes of the batch", len(got), len(b))
		}
	})
}

func TestStalledPeerIsReplaced(t *testing.T) {
	// The first connection is never read; after WriteTimeout without
	// acknowledgement the client gives up on it and sends the batch again,
	// whole, on a new connection.
	quit, stop := newGate(t)
	rec := startRecorder(t, listenSmallRcvbuf(t, "127.0.0.1:0", 4096), func(r *recorder, idx int, conn net.Conn) {
		if idx == 0 {
			<-quit
			return
		}
		r.record(idx, conn)
	})
	t.Cleanup(stop)
	cfg := testConfig(rec.ln.Addr().String())
	cfg.WriteTimeout = 300 * time.Millisecond
	c, _ := startClient(t, cfg, func(c *Client) {
		c.dial = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", cfg.Address)
			if err == nil {
				conn.(*net.TCPConn).SetWriteBuffer(4 << 20)
			}
			return conn, err
		}
	})
	b := batch("stalled", 40_000)
	start := time.Now()
	d := send(t, c, b, 40_000)
	waitDeliveredStats(t, c, d, 10*time.Second)
	if e := time.Since(start); e < 300*time.Millisecond {
		t.Errorf("delivered after %s, before the write timeout could expire", e)
	}
	waitSize(t, rec, len(b))
	if got := rec.data(1); !bytes.Equal(got, b) {
		t.Errorf("second connection received %d bytes, want the whole batch of %d", len(got), len(b))
	}
	if f := c.Stats().Failures; f < 1 {
		t.Errorf("Failures = %d, want at least 1", f)
	}
}

func TestRelayRestartMidStream(t *testing.T) {
	ln1 := listenSmallRcvbuf(t, "127.0.0.1:0", 64<<10)
	addr := ln1.Addr().String()

	var before [][]byte
	for i := range 5 {
		before = append(before, batch("a"+string(rune('0'+i)), 100))
	}
	sizeA := len(bytes.Join(before, nil))
	closed := make(chan struct{})
	// The first relay reads everything before the big batch and 100 KiB of
	// it, then dies: connection and listener closed.
	rec1 := startRecorder(t, ln1, func(r *recorder, idx int, conn net.Conn) {
		buf := make([]byte, 16<<10)
		read := 0
		for read < sizeA+100<<10 {
			n, err := conn.Read(buf)
			r.mu.Lock()
			r.conns[idx].Write(buf[:n])
			r.mu.Unlock()
			read += n
			if err != nil {
				break
			}
		}
		conn.Close()
		r.ln.Close()
		close(closed)
	})

	cfg := testConfig(addr)
	cfg.Retries, cfg.Interval, cfg.Delay = 3, 10*time.Millisecond, 50*time.Millisecond
	c, _ := startClient(t, cfg, nil)
	for _, b := range before {
		waitDelivered(t, send(t, c, b, 100), 5*time.Second)
	}
	big := batch("big", 70_000) // about 2 MiB
	dBig := send(t, c, big, 70_000)
	var after [][]byte
	var dAfter []*Delivery
	for i := range 5 {
		b := batch("c"+string(rune('0'+i)), 100)
		after = append(after, b)
		dAfter = append(dAfter, send(t, c, b, 100))
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the first relay never read into the big batch")
	}
	if err := dBig.Err(); !errors.Is(err, ErrPending) {
		t.Fatalf("big batch Err() = %v when the relay died in its middle, want ErrPending", err)
	}
	time.Sleep(100 * time.Millisecond) // relay down for a while

	rec2 := startRecorder(t, listenLoopback(t, addr), nil)
	waitDeliveredStats(t, c, dBig, 10*time.Second)
	for _, d := range dAfter {
		waitDelivered(t, d, 5*time.Second)
	}
	rest := append(append([]byte{}, big...), bytes.Join(after, nil)...)
	waitSize(t, rec2, len(rest))

	got1 := rec1.data(0)
	if !bytes.HasPrefix(append(bytes.Join(before, nil), big...), got1) || len(got1) <= sizeA {
		t.Errorf("first relay received %d bytes, want the first batches and a prefix of the big one", len(got1))
	}
	got2 := rec2.data(-1)
	if !bytes.Contains(got2, rest) {
		t.Errorf("second relay received %d bytes, want the big batch and the later ones, whole and in order (%d bytes)",
			len(got2), len(rest))
	}
	requireLines(t, append(got1, got2...), append(before, append([][]byte{big}, after...)...)...)
}
