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
		// Our send buffer holds the whole snapshot, so every write
		// returns, but the peer reads nothing and its receive buffer is
		// tiny: most of the snapshot sits unacknowledged in our kernel.
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
		w := deliver(t, c, b, 64<<10)

		if written.Load() < int64(len(b)) {
			t.Fatalf("writes accepted %d of %d bytes; the send buffer should hold them all", written.Load(), len(b))
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
			if !pending(w) {
				t.Fatalf("delivered with %d bytes unacknowledged", q)
			}
		}
		open()
		waitDelivered(t, c, w, 10*time.Second)
		if q, err := unacked(tcp.Load()); err != nil || q != 0 {
			t.Errorf("unacked after delivery = %d, %v, want 0", q, err)
		}
		waitSize(t, rec, len(b))
		if got := rec.data(-1); !bytes.Equal(got, b) {
			t.Errorf("received %d bytes, want the %d bytes of the snapshot", len(got), len(b))
		}
		if n := rec.numConns(); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})

	t.Run("write blocks", func(t *testing.T) {
		// Several MiB: neither our send queue nor the peer's receive
		// buffer can take them; the stream's writes wait (within
		// WriteTimeout) for the peer.
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
		time.AfterFunc(500*time.Millisecond, open)
		start := time.Now()
		w := deliver(t, c, b, 64<<10)
		if e := time.Since(start); e < 400*time.Millisecond {
			t.Errorf("7 MiB written in %s while the peer read nothing", e)
		}
		waitDelivered(t, c, w, 10*time.Second)
		waitSize(t, rec, len(b))
		if got := rec.data(-1); !bytes.Equal(got, b) {
			t.Errorf("received %d bytes, want the %d bytes of the snapshot", len(got), len(b))
		}
	})
}

func TestStalledPeerFailsTheSnapshot(t *testing.T) {
	// The first connection is never read: after WriteTimeout without an
	// acknowledgement the snapshot fails with ErrConnectionLost (the
	// client keeps no lines to send again: the caller sends the snapshot
	// again from the spool), and the next one goes on a new connection.
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
	w := deliver(t, c, b, 64<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Wait(ctx); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("Wait = %v, want ErrConnectionLost", err)
	}
	if e := time.Since(start); e < 300*time.Millisecond {
		t.Errorf("failed after %s, before the write timeout could expire", e)
	}
	if c.Stalled(time.Hour) {
		t.Error("Stalled = true with nothing waiting for the lost connection")
	}
	waitDelivered(t, c, deliver(t, c, b, 64<<10), 10*time.Second)
	waitSize(t, rec, len(b))
	if got := rec.data(1); !bytes.Equal(got, b) {
		t.Errorf("second connection received %d bytes, want the whole snapshot of %d", len(got), len(b))
	}
	if f := c.Stats().Failures; f < 1 {
		t.Errorf("Failures = %d, want at least 1", f)
	}
}

func TestRelayRestartMidStream(t *testing.T) {
	// The relay dies in the middle of a large snapshot: the snapshots it
	// acknowledged before are delivered, the large one fails with
	// ErrConnectionLost, and once the relay is back the next ones go on a
	// new connection.
	ln1 := listenSmallRcvbuf(t, "127.0.0.1:0", 64<<10)
	addr := ln1.Addr().String()

	var before [][]byte
	for i := range 5 {
		before = append(before, batch("a"+string(rune('0'+i)), 100))
	}
	sizeA := len(bytes.Join(before, nil))
	closed := make(chan struct{})
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
		waitDelivered(t, c, deliver(t, c, b, 64<<10), 5*time.Second)
	}
	big := batch("big", 70_000) // about 2 MiB
	wBig := deliver(t, c, big, 64<<10)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the first relay never read into the big snapshot")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := wBig.Wait(ctx); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("big snapshot: Wait = %v when the relay died in its middle, want ErrConnectionLost", err)
	}

	rec2 := startRecorder(t, listenLoopback(t, addr), nil)
	waitDelivered(t, c, deliver(t, c, big, 64<<10), 10*time.Second)
	waitSize(t, rec2, len(big))
	got1 := rec1.data(0)
	if !bytes.HasPrefix(append(bytes.Join(before, nil), big...), got1) || len(got1) <= sizeA {
		t.Errorf("first relay received %d bytes, want the first snapshots and a prefix of the big one", len(got1))
	}
	if got2 := rec2.data(-1); !bytes.Equal(got2, big) {
		t.Errorf("second relay received %d bytes, want the big snapshot again, whole (%d bytes)", len(got2), len(big))
	}
}
