//go:build linux

package graphite

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Regression: checkAcks read the send queue, then the bytes written; a
// stream written and finished between the two reads (the goroutine
// descheduled on a loaded machine) counted as acknowledged although the
// peer read none of it, and its snapshot left the spool
// (TestFaultGraphiteKilledWithSnapshotsInFlight failed so under load).
// Here the pause after the ioctl is forced.
func TestAcksCountOnlyBytesWrittenBeforeTheRead(t *testing.T) {
	gate, open := newGate(t)
	rec := startRecorder(t, listenSmallRcvbuf(t, "127.0.0.1:0", 4096), func(r *recorder, idx int, conn net.Conn) {
		<-gate
		r.record(idx, conn)
	})
	t.Cleanup(open)
	cfg := testConfig(rec.ln.Addr().String())
	cfg.WriteTimeout = 5 * time.Second
	var armed atomic.Bool
	inIoctl, resume := make(chan struct{}), make(chan struct{})
	c, _ := startClient(t, cfg, func(c *Client) {
		c.dial = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", cfg.Address)
			if err == nil {
				// Room for the whole of B: its writes return at once.
				err = conn.(*net.TCPConn).SetWriteBuffer(4 << 20)
			}
			return conn, err
		}
		c.unacked = func(conn net.Conn) (int, error) {
			q, err := unacked(conn)
			if armed.CompareAndSwap(true, false) {
				close(inIoctl) // Run is descheduled here...
				<-resume
			}
			return q, err
		}
	})
	armed.Store(true)
	wA := deliver(t, c, batch("a", 10), 64<<10)
	<-inIoctl
	// ... while B is written whole and finished: about 500 KB that the
	// peer, reading nothing through a 4 KiB buffer, cannot acknowledge.
	wB := deliver(t, c, batch("b", 20_000), 64<<10)
	close(resume)
	time.Sleep(200 * time.Millisecond)
	if !pending(wB) {
		t.Fatalf("B delivered while the peer read nothing of it; client stats %+v", c.Stats())
	}
	open()
	waitDelivered(t, c, wA, 10*time.Second)
	waitDelivered(t, c, wB, 10*time.Second)
}

// Once the peer reset the connection, unacked reports an error rather
// than a count: the waiters fail at the next check of the
// acknowledgements, whether or not the connection's reader has noticed
// the reset yet.
func TestUnackedAfterReset(t *testing.T) {
	ln := listenSmallRcvbuf(t, "127.0.0.1:0", 4096)
	accepted := make(chan *net.TCPConn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c.(*net.TCPConn)
		}
		close(accepted)
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	if err := conn.(*net.TCPConn).SetWriteBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(batch("r", 10_000)); err != nil {
		t.Fatal(err)
	}
	if q, err := unacked(conn); err != nil || q == 0 {
		t.Fatalf("unacked while the peer reads nothing = %d, %v; want bytes outstanding", q, err)
	}
	// The peer resets the connection with our bytes unread.
	peer.SetLinger(0)
	peer.Close()
	deadline := time.Now().Add(10 * time.Second)
	for tcpState(t, conn) == tcpEstablished {
		if time.Now().After(deadline) {
			t.Fatal("the reset did not reach the connection within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	q, err := unacked(conn)
	if !errors.Is(err, errNotEstablished) {
		t.Errorf("unacked after a reset = %d, %v; want an error wrapping errNotEstablished", q, err)
	}
}

// tcpState returns conn's TCP state.
func tcpState(t *testing.T, conn net.Conn) uint8 {
	t.Helper()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var state uint8
	var serr error
	if err := raw.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); serr == nil {
			state = info.State
		}
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return state
}

// Regression (found by review): the time of the last acknowledgement was
// the start of the wait for the next snapshot's, so the first check after
// an idle gap longer than WriteTimeout failed a healthy connection whose
// peer had not acknowledged yet (a real round trip, a delayed ACK): every
// snapshot after a pause was sent twice and counted as a failure. The
// peer here acknowledges 20 ms after each write (emulated over the real
// count); snapshots are 500 ms apart, WriteTimeout 200 ms.
func TestIdleThenSlowAcks(t *testing.T) {
	rec := startRecorder(t, listenLoopback(t, "127.0.0.1:0"), nil)
	cfg := testConfig(rec.ln.Addr().String())
	cfg.WriteTimeout = 200 * time.Millisecond
	type seen struct {
		at      time.Time
		written int64
	}
	var (
		mu   sync.Mutex
		hist []seen
		cl   *Client
	)
	c, _ := startClient(t, cfg, func(c *Client) {
		cl = c
		c.unacked = func(conn net.Conn) (int, error) {
			q, err := unacked(conn)
			if err != nil {
				return q, err
			}
			cl.mu.Lock()
			written := cl.conn.written.Load()
			cl.mu.Unlock()
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			if len(hist) == 0 || hist[len(hist)-1].written != written {
				hist = append(hist, seen{now, written})
			}
			var acked int64
			for _, h := range hist {
				if now.Sub(h.at) >= 20*time.Millisecond {
					acked = h.written
				}
			}
			return max(q, int(written-acked)), nil
		}
	})
	for i := range 3 {
		waitDelivered(t, c, deliver(t, c, batch("idle", 10), 64<<10), 5*time.Second)
		if st := c.Stats(); st.Failures != 0 || st.Connects != 1 {
			t.Fatalf("snapshot %d: stats %+v, want no failure on one connection", i, st)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
