package testenv

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Recorder is a Graphite stand-in on loopback: it accepts connections and
// keeps every byte received on any of them.
type Recorder struct {
	ln   net.Listener
	mu   sync.Mutex
	data bytes.Buffer
	last time.Time
	wg   sync.WaitGroup
}

// NewRecorder listens on 127.0.0.1:port (0 = any free port) and stops in
// t.Cleanup.
func NewRecorder(t testing.TB, port int) *Recorder {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	r := &Recorder{ln: ln, last: time.Now()}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.Close)
	return r
}

func (r *Recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				r.mu.Lock()
				r.data.Write(buf[:n])
				if n > 0 {
					r.last = time.Now()
				}
				r.mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
}

// Close stops listening; connections already accepted are read to their
// end.
func (r *Recorder) Close() { r.ln.Close() }

// Port is the port it listens on.
func (r *Recorder) Port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// Bytes returns a copy of everything received and when the last byte came.
func (r *Recorder) Bytes() ([]byte, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.data.Bytes()...), r.last
}
