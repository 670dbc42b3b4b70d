package testenv

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RecorderOptions make a Recorder behave like a slow, stalled or dying
// Graphite relay. The zero value reads everything as fast as it can.
type RecorderOptions struct {
	// Port to listen on, on 127.0.0.1; 0 picks a free one.
	Port int
	// ReadSize is the buffer of one read (default 64 KiB) and ReadPause
	// the pause after each read: a slow relay.
	ReadSize  int
	ReadPause time.Duration
	// NoRead accepts connections and never reads from them: their receive
	// window fills.
	NoRead bool
	// RcvBuf, when not 0, sets SO_RCVBUF on the listening socket (accepted
	// connections inherit it), so that a peer that does not read stops
	// acknowledging soon.
	RcvBuf int
	// CutAfter, when not 0, makes the recorder die once it has read that
	// many bytes in all (see Died).
	CutAfter int64
	// DieAfter, when not 0, makes the recorder die that long after it
	// accepted a connection, having read nothing from it.
	DieAfter time.Duration
	// Discard keeps only the counts, not the bytes.
	Discard bool
	// OnLines, when set, is called with the complete lines of one
	// connection as they arrive, one call at a time.
	OnLines func(lines []byte)
}

// Recorder is a Graphite stand-in on loopback: it accepts connections and
// keeps every byte received on each of them.
type Recorder struct {
	opts RecorderOptions
	ln   net.Listener
	died chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	conns    []*recorderConn
	total    int64 // bytes read on all connections
	newlines int64
	last     time.Time
	dieOnce  sync.Once
	stopOnce sync.Once
}

type recorderConn struct {
	c      net.Conn
	data   bytes.Buffer
	parsed int // bytes of data already handed to OnLines
	ended  bool
}

// NewRecorder listens on 127.0.0.1:port (0 = any free port) and stops in
// t.Cleanup.
func NewRecorder(t testing.TB, port int) *Recorder {
	t.Helper()
	return StartRecorder(t, RecorderOptions{Port: port})
}

// StartRecorder starts a Recorder with options; it stops in t.Cleanup,
// closing the connections still open.
func StartRecorder(t testing.TB, opts RecorderOptions) *Recorder {
	t.Helper()
	lc := net.ListenConfig{}
	if opts.RcvBuf > 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, opts.RcvBuf)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	ln, err := lc.Listen(t.Context(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.Port)))
	if err != nil {
		t.Fatalf("graphite recorder: %v", err)
	}
	if opts.ReadSize == 0 {
		opts.ReadSize = 64 << 10
	}
	r := &Recorder{opts: opts, ln: ln, died: make(chan struct{}), stop: make(chan struct{}), last: time.Now()}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.shutdown)
	return r
}

func (r *Recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		rc := &recorderConn{c: c}
		r.mu.Lock()
		r.conns = append(r.conns, rc)
		r.mu.Unlock()
		r.wg.Add(1)
		go r.serve(rc)
	}
}

func (r *Recorder) serve(rc *recorderConn) {
	defer r.wg.Done()
	defer func() {
		rc.c.Close()
		r.mu.Lock()
		rc.ended = true
		r.mu.Unlock()
	}()
	switch {
	case r.opts.DieAfter > 0:
		select {
		case <-r.stop:
		case <-time.After(r.opts.DieAfter):
			r.die(rc)
		}
		return
	case r.opts.NoRead:
		<-r.stop
		return
	}
	buf := make([]byte, r.opts.ReadSize)
	for {
		n, err := rc.c.Read(buf)
		if n > 0 && r.record(rc, buf[:n]) {
			r.die(rc)
			return
		}
		if err != nil {
			return
		}
		if r.opts.ReadPause > 0 {
			select {
			case <-r.stop:
				return
			case <-time.After(r.opts.ReadPause):
			}
		}
	}
}

// record keeps p and reports whether the recorder must die now.
func (r *Recorder) record(rc *recorderConn, p []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total += int64(len(p))
	r.newlines += int64(bytes.Count(p, []byte{'\n'}))
	r.last = time.Now()
	if !r.opts.Discard {
		rc.data.Write(p)
		if r.opts.OnLines != nil {
			b := rc.data.Bytes()
			if end := bytes.LastIndexByte(b, '\n') + 1; end > rc.parsed {
				r.opts.OnLines(b[rc.parsed:end])
				rc.parsed = end
			}
		}
	}
	return r.opts.CutAfter > 0 && r.total >= r.opts.CutAfter
}

// die resets the connection, losing what was not read yet, and stops
// listening, as when a relay is killed.
func (r *Recorder) die(rc *recorderConn) {
	if tc, ok := rc.c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	rc.c.Close()
	r.ln.Close()
	r.dieOnce.Do(func() { close(r.died) })
}

// Died is closed once the recorder died (CutAfter, DieAfter).
func (r *Recorder) Died() <-chan struct{} { return r.died }

// Close stops listening; connections already accepted are read to their
// end.
func (r *Recorder) Close() { r.ln.Close() }

// shutdown stops listening, closes the connections still open and waits
// for every goroutine.
func (r *Recorder) shutdown() {
	r.ln.Close()
	r.stopOnce.Do(func() { close(r.stop) })
	r.mu.Lock()
	for _, rc := range r.conns {
		if !rc.ended {
			rc.c.Close()
		}
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Port is the port it listens on.
func (r *Recorder) Port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// Bytes returns a copy of everything received, connection after
// connection, and when the last byte came.
func (r *Recorder) Bytes() ([]byte, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b []byte
	for _, rc := range r.conns {
		b = append(b, rc.data.Bytes()...)
	}
	return b, r.last
}

// Counts returns the bytes and newlines read so far, and the connections
// accepted.
func (r *Recorder) Counts() (bytes, lines int64, conns int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total, r.newlines, len(r.conns)
}

// Lines returns the complete lines received on the connections accepted
// from the first-th on (0: all), and how many of those that ended did so
// in the middle of a line (a connection cut mid-stream).
func (r *Recorder) Lines(first int) (lines []string, truncated int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rc := range r.conns[min(first, len(r.conns)):] {
		data := rc.data.String()
		if i := strings.LastIndexByte(data, '\n'); i+1 < len(data) {
			if rc.ended {
				truncated++
			}
			data = data[:i+1]
		}
		for l := range strings.SplitSeq(data, "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	return lines, truncated
}

// Drain waits, at most timeout, until every connection accepted so far was
// read to its end: once the sender has exited, everything it sent is then
// in.
func (r *Recorder) Drain(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		open := 0
		for _, rc := range r.conns {
			if !rc.ended {
				open++
			}
		}
		r.mu.Unlock()
		if open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("graphite recorder: %d connection(s) still open after %v", open, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
