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

// deliver streams lines on a stream of c in chunks of about chunk bytes,
// cut at line ends, and returns the Waiter.
func deliver(t *testing.T, c *Client, lines []byte, chunk int) Waiter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.Open(ctx, "1700000000")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for len(lines) > 0 {
		n := min(chunk, len(lines))
		if i := bytes.LastIndexByte(lines[:n], '\n'); i >= 0 && n < len(lines) {
			n = i + 1
		}
		if _, err := s.Write(lines[:n]); err != nil {
			s.Abort()
			return doneWaiter{err}
		}
		lines = lines[n:]
	}
	return s.Finish()
}

func waitDelivered(t *testing.T, c *Client, w Waiter, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := w.Wait(ctx); err != nil {
		t.Fatalf("Wait = %v, want nil; client stats %+v", err, c.Stats())
	}
}

// pending reports whether w is still waiting.
func pending(w Waiter) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	return errors.Is(w.Wait(ctx), context.DeadlineExceeded)
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
	for _, want := range []string{"address", "connect timeout", "write timeout", "backoff"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(Config{}) = %v, want it to mention %q", err, want)
		}
	}
}

func TestSnapshotsArriveComplete(t *testing.T) {
	rec := startRecorder(t, listenLoopback(t, "127.0.0.1:0"), nil)
	c, _ := startClient(t, testConfig(rec.ln.Addr().String()), nil)
	var want []byte
	for i := range 50 {
		b := batch(fmt.Sprintf("b%d", i), 1+i*37)
		want = append(want, b...)
		waitDelivered(t, c, deliver(t, c, b, 700), 5*time.Second)
	}
	waitSize(t, rec, len(want))
	if got := rec.data(-1); !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes, want exactly the %d bytes sent, in order", len(got), len(want))
	}
	if n := rec.numConns(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	st := c.Stats()
	if st.DeliveredBytes != uint64(len(want)) || st.Written != uint64(len(want)) || st.DeliveredLines != uint64(bytes.Count(want, []byte{'\n'})) {
		t.Errorf("Stats() = %+v, want %d bytes delivered and written", st, len(want))
	}
}

func TestEmptyStreamIsDeliveredAtOnce(t *testing.T) {
	rec := startRecorder(t, listenLoopback(t, "127.0.0.1:0"), nil)
	c, _ := startClient(t, testConfig(rec.ln.Addr().String()), nil)
	waitDelivered(t, c, deliver(t, c, nil, 100), time.Second)
}

func TestConcurrentStreams(t *testing.T) {
	// Workers stream chunks of whole lines on one connection at once: every
	// line arrives, whole, once.
	rec := startRecorder(t, listenLoopback(t, "127.0.0.1:0"), nil)
	c, _ := startClient(t, testConfig(rec.ln.Addr().String()), nil)
	var mu sync.Mutex
	var all [][]byte
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				b := batch(fmt.Sprintf("w%d-%d", w, i), 500)
				mu.Lock()
				all = append(all, b)
				mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := deliver(t, c, b, 1000).Wait(ctx); err != nil {
					t.Error(err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	total := len(bytes.Join(all, nil))
	waitSize(t, rec, total)
	got := lineSet(rec.data(-1))
	for _, b := range all {
		for l := range lineSet(b) {
			if got[l] != 1 {
				t.Fatalf("line %q arrived %d times", l, got[l])
			}
		}
	}
	if len(got) != bytes.Count(bytes.Join(all, nil), []byte{'\n'}) {
		t.Errorf("%d distinct lines arrived, want %d (a line was cut or mixed)", len(got), bytes.Count(bytes.Join(all, nil), []byte{'\n'}))
	}
}

func TestGraphiteDownAtStart(t *testing.T) {
	// Open waits for a connection, retrying as configured; the snapshot is
	// delivered once the relay is up.
	addr := freeAddr(t)
	cfg := testConfig(addr)
	cfg.Retries, cfg.Interval, cfg.Delay = 2, 20*time.Millisecond, 100*time.Millisecond
	c, _ := startClient(t, cfg, nil)
	opened := make(chan *Stream, 1)
	go func() {
		s, err := c.Open(context.Background(), "1700000000")
		if err != nil {
			t.Error(err)
		}
		opened <- s
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case <-opened:
		t.Fatal("Open returned while Graphite is down")
	default:
	}
	if f := c.Stats().Failures; f < 3 {
		t.Errorf("%d failed attempts in 300ms, want several", f)
	}
	if !c.Stalled(time.Second) {
		t.Error("Stalled = false while a stream waits for a connection that cannot be made")
	}
	rec := startRecorder(t, listenLoopback(t, addr), nil)
	var s *Stream
	select {
	case s = <-opened:
	case <-time.After(5 * time.Second):
		t.Fatal("Open did not return once Graphite was up")
	}
	b := batch("down", 100)
	if _, err := s.Write(b); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, c, s.Finish(), 5*time.Second)
	waitSize(t, rec, len(b))
	if c.Stalled(10 * time.Millisecond) {
		t.Error("Stalled = true with everything acknowledged")
	}
}

func TestOpenGivesUpWithItsContext(t *testing.T) {
	c, _ := startClient(t, testConfig(freeAddr(t)), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Open(ctx, "1700000000"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open = %v, want the context's error", err)
	}
}

func TestReconnectAfterIdleRestart(t *testing.T) {
	ln := listenLoopback(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	rec1 := startRecorder(t, ln, nil)
	cfg := testConfig(addr)
	c, _ := startClient(t, cfg, nil)

	b1 := batch("first", 10)
	waitDelivered(t, c, deliver(t, c, b1, 100), 5*time.Second)
	waitSize(t, rec1, len(b1))
	rec1.stop() // the relay restarts: listener and connection closed

	rec2 := startRecorder(t, listenLoopback(t, addr), nil)
	var want []byte
	deadline := time.Now().Add(5 * time.Second)
	for i := range 5 {
		b := batch(fmt.Sprintf("after%d", i), 10)
		want = append(want, b...)
		for {
			// The first may be written on the closed connection before
			// its close is seen: it then fails and is sent again.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := deliver(t, c, b, 100).Wait(ctx)
			cancel()
			if err == nil {
				break
			}
			if !errors.Is(err, ErrConnectionLost) || time.Now().After(deadline) {
				t.Fatalf("snapshot %d: %v", i, err)
			}
		}
	}
	waitSize(t, rec2, len(want))
	requireLines(t, rec2.data(-1), want)
	if got := rec1.data(-1); !bytes.Equal(got, b1) {
		t.Errorf("first relay received %q, want %q", got, b1)
	}
	if f := c.Stats().Failures; f > 1 {
		t.Errorf("Failures = %d: an idle close is not a failure", f)
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
	opened := make(chan error, 1)
	go func() {
		_, err := c.Open(context.Background(), "1700000000")
		opened <- err
	}()
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
	select {
	case err := <-opened:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Open after stop = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Open did not return after the stop")
	}
}

func TestStopGivesUpAndRefuses(t *testing.T) {
	// A snapshot written but not acknowledged when Run stops reports
	// ErrClosed; Open after the stop too.
	gate, open := newPeerGate(t)
	rec := startRecorder(t, listenLoopback(t, "127.0.0.1:0"), func(r *recorder, idx int, conn net.Conn) {
		<-gate
		r.record(idx, conn)
	})
	t.Cleanup(open)
	c, err := New(testConfig(rec.ln.Addr().String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.unacked = func(net.Conn) (int, error) { return 1, nil } // never acknowledged
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	w := deliver(t, c, batch("lost", 3), 100)
	time.Sleep(50 * time.Millisecond)
	if !pending(w) {
		t.Fatal("delivered although nothing was acknowledged")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return within 3s of cancel")
	}
	if err := w.Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait of an undelivered snapshot after stop = %v, want ErrClosed", err)
	}
	if _, err := c.Open(context.Background(), "1700000000"); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after stop = %v, want ErrClosed", err)
	}
	if err := c.Run(context.Background()); err == nil {
		t.Error("second Run = nil, want an error")
	}
}

func TestWriteCutShortByItsContext(t *testing.T) {
	// A peer that reads nothing: a large write blocks; the context given
	// to Open ends it at once, whatever WriteTimeout says.
	gate, open := newPeerGate(t)
	rec := startRecorder(t, listenLoopback(t, "127.0.0.1:0"), func(r *recorder, idx int, conn net.Conn) { <-gate })
	t.Cleanup(open)
	cfg := testConfig(rec.ln.Addr().String())
	cfg.WriteTimeout = time.Minute
	c, _ := startClient(t, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.Open(ctx, "1700000000")
	if err != nil {
		t.Fatal(err)
	}
	b := batch("blocked", 1_000_000)
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err = s.Write(b)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("Write = %v after %s, want an error soon after the cancel", err, time.Since(start))
	}
	if !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Write = %v, want ErrConnectionLost", err)
	}
}

func TestWriteAfterItsContextEnded(t *testing.T) {
	// A ctx done before Write: the write fails at once, whatever
	// WriteTimeout says, and writes nothing, so the connection stays good
	// for the other streams. Before the fix the cut-short deadline raced
	// with WriteTimeout's and a blocked write waited out the minute.
	rec := startRecorder(t, listenLoopback(t, "127.0.0.1:0"), nil)
	cfg := testConfig(rec.ln.Addr().String())
	cfg.WriteTimeout = time.Minute
	c, _ := startClient(t, cfg, nil)
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := c.Open(ctx, "1700000000")
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		start := time.Now()
		n, err := s.Write(batch("late", 10))
		if !errors.Is(err, ErrConnectionLost) || !errors.Is(err, context.Canceled) || n != 0 {
			t.Fatalf("write %d: Write = %d, %v, want 0 and an error wrapping ErrConnectionLost and context.Canceled", i, n, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("write %d: Write took %s", i, d)
		}
		s.Abort()
	}
	if st := c.Stats(); st.Failures != 0 || st.Written != 0 {
		t.Errorf("Stats = %+v, want no failure and nothing written", st)
	}
	waitDelivered(t, c, deliver(t, c, batch("good", 3), 100), 10*time.Second)
}

// newPeerGate returns a channel closed once, at the latest when the test
// ends.
func newPeerGate(t *testing.T) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(open)
	return ch, open
}

// BenchmarkStream delivers one snapshot of 364,000 lines per iteration,
// in 64 KiB chunks, through a loopback listener that discards them.
func BenchmarkStream(b *testing.B) {
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
		s, err := c.Open(ctx, "1700000000")
		if err != nil {
			b.Fatal(err)
		}
		for rest := lines; len(rest) > 0; {
			k := min(64<<10, len(rest))
			if k < len(rest) {
				k = bytes.LastIndexByte(rest[:k], '\n') + 1
			}
			if _, err := s.Write(rest[:k]); err != nil {
				b.Fatal(err)
			}
			rest = rest[k:]
		}
		if err := s.Finish().Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
