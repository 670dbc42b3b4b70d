package graphite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a loopback Graphite that records what each accepted
// connection sends.
type recorder struct {
	ln net.Listener
	// handle serves one connection; nil means record everything.
	handle func(r *recorder, idx int, conn net.Conn)

	mu    sync.Mutex
	conns []*bytes.Buffer
	open  []net.Conn
	wg    sync.WaitGroup
}

// startRecorder serves ln until the test ends.
func startRecorder(t *testing.T, ln net.Listener, handle func(*recorder, int, net.Conn)) *recorder {
	t.Helper()
	r := &recorder{ln: ln, handle: handle}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			idx := len(r.conns)
			r.conns = append(r.conns, new(bytes.Buffer))
			r.open = append(r.open, conn)
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer conn.Close()
				if r.handle != nil {
					r.handle(r, idx, conn)
					return
				}
				r.record(idx, conn)
			}()
		}
	}()
	t.Cleanup(r.stop)
	return r
}

// record appends everything read from conn to connection idx's buffer.
func (r *recorder) record(idx int, conn net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := conn.Read(buf)
		r.mu.Lock()
		r.conns[idx].Write(buf[:n])
		r.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// stop closes the listener and every connection and waits for the
// goroutines.
func (r *recorder) stop() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.open {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// data returns a copy of what connection idx sent, or of everything when idx
// is -1.
func (r *recorder) data(idx int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []byte
	for i, b := range r.conns {
		if idx < 0 || i == idx {
			out = append(out, b.Bytes()...)
		}
	}
	return out
}

func (r *recorder) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, b := range r.conns {
		n += b.Len()
	}
	return n
}

func (r *recorder) numConns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

func listenLoopback(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	return ln
}

// freeAddr returns a loopback address nobody listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln := listenLoopback(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func testConfig(addr string) Config {
	return Config{
		Address:        addr,
		ConnectTimeout: time.Second,
		WriteTimeout:   2 * time.Second,
		Retries:        3,
		Interval:       10 * time.Millisecond,
		Backoff:        2,
		Delay:          50 * time.Millisecond,
		QueueSize:      1_000_000,
	}
}

// startClient runs a client until the test ends.
func startClient(t *testing.T, cfg Config, prepare func(*Client)) (*Client, context.CancelFunc) {
	t.Helper()
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if prepare != nil {
		prepare(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return c, cancel
}

// batch returns n lines tagged with tag.
func batch(tag string, n int) []byte {
	b := make([]byte, 0, n*(len(tag)+32))
	for j := range n {
		b = append(b, "test."...)
		b = append(b, tag...)
		b = append(b, ".l"...)
		b = strconv.AppendInt(b, int64(j), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(j), 10)
		b = append(b, " 1700000000\n"...)
	}
	return b
}

func send(t *testing.T, c *Client, lines []byte, n int) *Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := c.Send(ctx, lines, n)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return d
}

func waitDelivered(t *testing.T, d *Delivery, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := d.Wait(ctx); err != nil {
		t.Fatalf("Delivery.Wait = %v, want nil", err)
	}
}

// waitDeliveredStats is waitDelivered with the client's counters in the
// failure message.
func waitDeliveredStats(t *testing.T, c *Client, d *Delivery, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := d.Wait(ctx); err != nil {
		t.Fatalf("Delivery.Wait = %v, want nil; client stats %+v", err, c.Stats())
	}
}

// waitSize waits until the recorder has read at least n bytes.
func waitSize(t *testing.T, r *recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.size() < n {
		if time.Now().After(deadline) {
			t.Fatalf("recorder has %d bytes, want %d", r.size(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// lineSet counts the lines of data.
func lineSet(data []byte) map[string]int {
	m := make(map[string]int)
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if l != "" {
			m[l]++
		}
	}
	return m
}

// requireLines fails unless every line of want occurs in got.
func requireLines(t *testing.T, got []byte, want ...[]byte) {
	t.Helper()
	have := lineSet(got)
	missing := 0
	for _, w := range want {
		for l := range lineSet(w) {
			if have[l] == 0 {
				if missing < 5 {
					t.Errorf("line %q never arrived", l)
				}
				missing++
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d lines never arrived", missing)
	}
}

func TestNewValidates(t *testing.T) {
	good := testConfig("127.0.0.1:3002")
	if _, err := New(good, nil); err != nil {
		t.Fatalf("New(%+v) = %v, want nil", good, err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"empty address", func(c *Config) { c.Address = "" }, "address is empty"},
		{"no port", func(c *Config) { c.Address = "localhost" }, `address "localhost"`},
		{"connect timeout", func(c *Config) { c.ConnectTimeout = 0 }, "connect timeout"},
		{"write timeout", func(c *Config) { c.WriteTimeout = -1 }, "write timeout"},
		{"retries", func(c *Config) { c.Retries = -1 }, "retries -1"},
		{"interval", func(c *Config) { c.Interval = -1 }, "interval"},
		{"backoff", func(c *Config) { c.Backoff = 0 }, "backoff 0"},
		{"delay", func(c *Config) { c.Delay = -1 }, "delay"},
		{"queue size", func(c *Config) { c.QueueSize = 0 }, "queue size 0"},
		{"flush timeout", func(c *Config) { c.FlushTimeout = -1 }, "flush timeout"},
	}
	for _, tt := range tests {
		cfg := good
		tt.mod(&cfg)
		_, err := New(cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want error containing %q", tt.name, err, tt.want)
		}
	}
	// Every problem is reported at once.
	_, err := New(Config{}, nil)
	for _, want := range []string{"address", "connect timeout", "write timeout", "backoff", "queue size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(Config{}) = %v, want it to mention %q", err, want)
		}
	}
}

func TestBatchesArriveCompleteAndInOrder(t *testing.T) {
	rec := startRecorder(t, listenLoopback(t, "127.0.0.1:0"), nil)
	c, _ := startClient(t, testConfig(rec.ln.Addr().String()), nil)

	var want []byte
	var ds []*Delivery
	for i := range 50 {
		b := batch(fmt.Sprintf("b%d", i), 1+i*37)
		want = append(want, b...)
		ds = append(ds, send(t, c, b, 1+i*37))
	}
	for _, d := range ds {
		waitDelivered(t, d, 5*time.Second)
	}
	waitSize(t, rec, len(want))
	if got := rec.data(-1); !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes, want exactly the %d bytes sent, in order", len(got), len(want))
	}
	if n := rec.numConns(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	st := c.Stats()
	if st.Delivered != 50 || st.DeliveredBytes != uint64(len(want)) || st.Held != 0 {
		t.Errorf("Stats() = %+v, want 50 batches, %d bytes, nothing held", st, len(want))
	}
}

func TestEmptyBatchIsDeliveredAtOnce(t *testing.T) {
	c, err := New(testConfig("127.0.0.1:1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Send(context.Background(), nil, 0)
	if err != nil {
		t.Fatalf("Send(nil) = %v", err)
	}
	if err := d.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
}

func TestConcurrentSenders(t *testing.T) {
	rec := startRecorder(t, listenLoopback(t, "127.0.0.1:0"), nil)
	cfg := testConfig(rec.ln.Addr().String())
	cfg.QueueSize = 2000 // small enough that senders wait for each other
	c, _ := startClient(t, cfg, nil)

	const workers, perWorker = 16, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent [][]byte
	)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				n := 1 + (w*perWorker+i)%300
				b := batch(fmt.Sprintf("w%d.b%d", w, i), n)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				d, err := c.Send(ctx, b, n)
				if err == nil {
					err = d.Wait(ctx)
				}
				cancel()
				if err != nil {
					errs <- fmt.Errorf("worker %d batch %d: %w", w, i, err)
					return
				}
				mu.Lock()
				sent = append(sent, b)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, b := range sent {
		total += len(b)
	}
	waitSize(t, rec, total)
	got := rec.data(-1)
	if len(got) != total {
		t.Fatalf("received %d bytes, want %d", len(got), total)
	}
	// Every batch arrives whole, as one contiguous block: find where each
	// batch's first line is, and compare from there.
	starts := make(map[string]int)
	for off := 0; off < len(got); {
		end := off + bytes.IndexByte(got[off:], '\n') + 1
		if line := got[off:end]; bytes.Contains(line, []byte(".l0 ")) {
			starts[string(line)] = off
		}
		off = end
	}
	for _, b := range sent {
		first := string(b[:bytes.IndexByte(b, '\n')+1])
		off, ok := starts[first]
		if !ok || off+len(b) > len(got) || !bytes.Equal(got[off:off+len(b)], b) {
			t.Fatalf("batch starting %q did not arrive as one block", first)
		}
	}
	if st := c.Stats(); st.Delivered != workers*perWorker || st.Held != 0 {
		t.Errorf("Stats() = %+v, want %d batches delivered, nothing held", st, workers*perWorker)
	}
}

// gatedDial returns a dial function that fails until up is set, then dials
// addr.
func gatedDial(addr string, up *atomic.Bool) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		if !up.Load() {
			return nil, errors.New("graphite is down")
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

func TestQueueSizeBoundsSend(t *testing.T) {
	rec := startRecorder(t, listenLoopback(t, "127.0.0.1:0"), nil)
	cfg := testConfig(rec.ln.Addr().String())
	cfg.QueueSize = 10
	var up atomic.Bool
	c, _ := startClient(t, cfg, func(c *Client) { c.dial = gatedDial(cfg.Address, &up) })

	b6, b5, b4, b3, b25 := batch("six", 6), batch("five", 5), batch("four", 4), batch("three", 3), batch("big", 25)
	d6 := send(t, c, b6, 6)

	// 6 + 5 > 10: Send blocks until its context ends and takes nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	start := time.Now()
	d, err := c.Send(ctx, b5, 5)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || d != nil {
		t.Fatalf("Send over the limit = %v, %v, want nil, context.DeadlineExceeded", d, err)
	}
	if e := time.Since(start); e < 90*time.Millisecond {
		t.Errorf("Send returned after %s, want it to block ~100ms", e)
	}
	if h := c.Stats().Held; h != 6 {
		t.Errorf("held %d lines after a cancelled Send, want 6", h)
	}

	// 6 + 4 fits exactly.
	d4 := send(t, c, b4, 4)

	// Now full: the next two Sends wait, first come first served; the big
	// one (25 > QueueSize) gets in once nothing is held.
	type result struct {
		d   *Delivery
		err error
	}
	r3, r25 := make(chan result, 1), make(chan result, 1)
	go func() {
		d, err := c.Send(context.Background(), b3, 3)
		r3 <- result{d, err}
	}()
	select {
	case r := <-r3:
		t.Fatalf("Send over the limit returned %v, %v at once, want it to block", r.d, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	go func() {
		d, err := c.Send(context.Background(), b25, 25)
		r25 <- result{d, err}
	}()
	time.Sleep(20 * time.Millisecond)
	if h := c.Stats().Held; h != 10 {
		t.Errorf("held %d lines while Graphite is down, want 10", h)
	}

	up.Store(true)
	var ds []*Delivery
	for _, ch := range []chan result{r3, r25} {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("blocked Send = %v, want nil", r.err)
			}
			ds = append(ds, r.d)
		case <-time.After(5 * time.Second):
			t.Fatal("blocked Send did not proceed once Graphite was up")
		}
	}
	for _, d := range append([]*Delivery{d6, d4}, ds...) {
		waitDelivered(t, d, 5*time.Second)
	}
	want := append(append(append(append([]byte{}, b6...), b4...), b3...), b25...)
	waitSize(t, rec, len(want))
	if got := rec.data(-1); !bytes.Equal(got, want) {
		t.Errorf("received %q, want %q (the cancelled batch must not be sent)", got, want)
	}
	if h := c.Stats().Held; h != 0 {
		t.Errorf("held %d lines at the end, want 0", h)
	}
}

func TestGraphiteDownAtStart(t *testing.T) {
	addr := freeAddr(t)
	cfg := testConfig(addr)
	cfg.Retries, cfg.Interval, cfg.Delay = 2, 20*time.Millisecond, 100*time.Millisecond
	c, _ := startClient(t, cfg, nil)

	var want [][]byte
	var ds []*Delivery
	for i := range 10 {
		b := batch(fmt.Sprintf("down%d", i), 100)
		want = append(want, b)
		ds = append(ds, send(t, c, b, 100))
	}
	time.Sleep(300 * time.Millisecond)
	for i, d := range ds {
		if err := d.Err(); !errors.Is(err, ErrPending) {
			t.Fatalf("batch %d: Err() = %v while Graphite is down, want ErrPending", i, err)
		}
	}
	if f := c.Stats().Failures; f < 3 {
		t.Errorf("%d failed attempts in 300ms, want several", f)
	}

	rec := startRecorder(t, listenLoopback(t, addr), nil)
	for _, d := range ds {
		waitDelivered(t, d, 5*time.Second)
	}
	all := bytes.Join(want, nil)
	waitSize(t, rec, len(all))
	if got := rec.data(-1); !bytes.Equal(got, all) {
		t.Errorf("received %d bytes, want the %d bytes sent, in order", len(got), len(all))
	}
}

func TestReconnectAfterIdleRestart(t *testing.T) {
	ln := listenLoopback(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	rec1 := startRecorder(t, ln, nil)
	cfg := testConfig(addr)
	c, _ := startClient(t, cfg, nil)

	b1 := batch("first", 10)
	waitDelivered(t, send(t, c, b1, 10), 5*time.Second)
	waitSize(t, rec1, len(b1))
	rec1.stop() // the relay restarts: listener and connection closed

	rec2 := startRecorder(t, listenLoopback(t, addr), nil)
	var want []byte
	for i := range 5 {
		b := batch(fmt.Sprintf("after%d", i), 10)
		want = append(want, b...)
		waitDelivered(t, send(t, c, b, 10), 5*time.Second)
	}
	waitSize(t, rec2, len(want))
	requireLines(t, rec2.data(-1), want)
	if got := rec1.data(-1); !bytes.Equal(got, b1) {
		t.Errorf("first relay received %q, want %q", got, b1)
	}
}

func TestRetryBackoffTiming(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	cfg.Retries, cfg.Interval, cfg.Backoff, cfg.Delay = 2, 40*time.Millisecond, 2, 200*time.Millisecond
	var (
		mu       sync.Mutex
		attempts []time.Time
	)
	enough := make(chan struct{})
	c, cancel := startClient(t, cfg, func(c *Client) {
		c.dial = func(context.Context) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, time.Now())
			if len(attempts) == 7 {
				close(enough)
			}
			return nil, errors.New("refused")
		}
	})
	d := send(t, c, batch("retry", 1), 1)
	select {
	case <-enough:
	case <-time.After(5 * time.Second):
		t.Fatal("fewer than 7 attempts in 5s")
	}
	cancel()
	// Attempt, 40ms, attempt, 80ms, attempt, round failed: 200ms, ...
	want := []time.Duration{40, 80, 200, 40, 80, 200}
	mu.Lock()
	got := append([]time.Time(nil), attempts...)
	mu.Unlock()
	for i, w := range want {
		w *= time.Millisecond
		gap := got[i+1].Sub(got[i])
		if gap < w-2*time.Millisecond || gap > w+80*time.Millisecond {
			t.Errorf("gap %d between attempts = %s, want about %s", i+1, gap, w)
		}
	}
	if err := d.Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Delivery after stop = %v, want ErrClosed", err)
	}
}

func TestStopGivesUpAndRefuses(t *testing.T) {
	cfg := testConfig(freeAddr(t))
	cfg.FlushTimeout = 200 * time.Millisecond
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	d := send(t, c, batch("lost", 3), 3)
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return within 3s of cancel")
	}
	if err := d.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err() of an undelivered batch after stop = %v, want ErrClosed", err)
	}
	if _, err := c.Send(context.Background(), []byte("x 1 1\n"), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after stop = %v, want ErrClosed", err)
	}
	if err := c.Run(context.Background()); err == nil {
		t.Error("second Run = nil, want an error")
	}
	if h := c.Stats().Held; h != 0 {
		t.Errorf("held %d lines after stop, want 0", h)
	}
}

func TestFinalFlushDelivers(t *testing.T) {
	rec := startRecorder(t, listenLoopback(t, "127.0.0.1:0"), nil)
	cfg := testConfig(rec.ln.Addr().String())
	cfg.Interval, cfg.Retries, cfg.Delay = time.Hour, 0, time.Hour // no retry before the flush
	var up atomic.Bool
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.dial = gatedDial(cfg.Address, &up)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	b := batch("flush", 50)
	d := send(t, c, b, 50)
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Failures == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	up.Store(true)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := d.Err(); err != nil {
		t.Fatalf("Err() after the final flush = %v, want nil", err)
	}
	waitSize(t, rec, len(b))
	if got := rec.data(-1); !bytes.Equal(got, b) {
		t.Errorf("received %q, want %q", got, b)
	}
}

// BenchmarkSend delivers one snapshot of 364,000 lines per iteration through
// a loopback listener that discards them.
func BenchmarkSend(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				io.Copy(io.Discard, conn)
			}()
		}
	}()
	const n = 364_000
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, "loadbalancers.lb-01_example_com.haproxy.backend.be_%d.server.srv_%d.bin %d 1700000000\n",
			i/1000, i%1000, i*12345)
	}
	lines := buf.Bytes()
	c, err := New(testConfig(ln.Addr().String()), nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	b.SetBytes(int64(len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d, err := c.Send(ctx, lines, n)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
