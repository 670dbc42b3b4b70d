package haproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// fakeSocket is a UNIX listener in a short temp dir that answers each
// connection with answer(command) and closes; with answer nil it accepts and
// never answers (until the test ends).
type fakeSocket struct {
	path string
	mu   sync.Mutex
	got  []string
}

func newFakeSocket(t *testing.T, answer func(cmd string) []byte) *fakeSocket {
	t.Helper()
	f := &fakeSocket{path: filepath.Join(testenv.ShortDir(t), "fake.sock")}
	done := make(chan struct{})
	testenv.ServeUnix(t, f.path, func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		f.mu.Lock()
		f.got = append(f.got, line)
		f.mu.Unlock()
		if answer == nil {
			<-done
			return
		}
		c.Write(answer(strings.TrimSuffix(line, "\n")))
	})
	t.Cleanup(func() { close(done) }) // runs before ServeUnix's cleanup
	return f
}

func (f *fakeSocket) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func TestCommandSendsLineAndReadsAllInChunks(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789abcdef\n"), 20000) // 340,000 bytes
	f := newFakeSocket(t, func(string) []byte { return want })
	for _, limit := range []int{1, 7, 4096, 0} {
		c := &Client{Network: "unix", Address: f.path, Timeout: time.Second, BufferLimit: limit}
		if limit == 1 {
			// One byte per read is slow; keep the answer short.
			short := newFakeSocket(t, func(string) []byte { return want[:5000] })
			c.Address = short.path
			got, err := c.Command(context.Background(), ShowStat)
			if err != nil || !bytes.Equal(got, want[:5000]) {
				t.Fatalf("BufferLimit 1: Command = %d bytes, %v; want %d bytes", len(got), err, 5000)
			}
			continue
		}
		got, err := c.Command(context.Background(), ShowStat)
		if err != nil {
			t.Fatalf("BufferLimit %d: Command: %v", limit, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("BufferLimit %d: Command = %d bytes, want %d identical bytes", limit, len(got), len(want))
		}
	}
	for _, line := range f.received() {
		if line != "show stat\n" {
			t.Errorf("socket received %q, want %q", line, "show stat\n")
		}
	}
}

func TestCommandEmptyAnswer(t *testing.T) {
	f := newFakeSocket(t, func(string) []byte { return nil })
	c := &Client{Network: "unix", Address: f.path, Timeout: time.Second}
	_, err := c.Command(context.Background(), ShowInfo)
	if !errors.Is(err, ErrEmptyAnswer) {
		t.Fatalf("Command = %v, want ErrEmptyAnswer", err)
	}
	for _, s := range []string{f.path, `"show info"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}

func TestCommandNeverAnswersHonorsContext(t *testing.T) {
	f := newFakeSocket(t, nil)
	c := &Client{Network: "unix", Address: f.path, Timeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Command(ctx, ShowStat)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Command = %v, want context.DeadlineExceeded", err)
	}
	if took > 2*time.Second {
		t.Fatalf("Command returned after %v, want about 200ms", took)
	}
	if !strings.Contains(err.Error(), f.path) || !strings.Contains(err.Error(), "show stat") {
		t.Errorf("error %q does not name the socket and the command", err)
	}
}

func TestCommandRetries(t *testing.T) {
	missing := filepath.Join(testenv.ShortDir(t), "missing.sock")

	t.Run("bounded", func(t *testing.T) {
		c := &Client{Network: "unix", Address: missing, Retries: 2, Interval: 50 * time.Millisecond}
		start := time.Now()
		_, err := c.Command(context.Background(), ShowInfo)
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "3 attempts") || !strings.Contains(err.Error(), missing) {
			t.Fatalf("Command = %v, want an error naming %s after 3 attempts", err, missing)
		}
		if took < 100*time.Millisecond || took > 2*time.Second {
			t.Fatalf("3 attempts 50ms apart took %v", took)
		}
	})

	t.Run("none", func(t *testing.T) {
		c := &Client{Network: "unix", Address: missing, Retries: 0, Interval: time.Hour}
		_, err := c.Command(context.Background(), ShowInfo)
		if err == nil || !strings.Contains(err.Error(), "1 attempts") {
			t.Fatalf("Command = %v, want a failure after 1 attempt", err)
		}
	})

	t.Run("forever until context", func(t *testing.T) {
		c := &Client{Network: "unix", Address: missing, Retries: -1, Interval: 10 * time.Millisecond}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := c.Command(ctx, ShowInfo)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Command = %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("socket appears", func(t *testing.T) {
		path := filepath.Join(testenv.ShortDir(t), "late.sock")
		ready := make(chan net.Listener, 1)
		go func() {
			time.Sleep(150 * time.Millisecond)
			l, err := net.Listen("unix", path)
			if err != nil {
				ready <- nil
				return
			}
			ready <- l
			c, err := l.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			c.Write([]byte("Name: fake\n"))
			c.Close()
		}()
		c := &Client{Network: "unix", Address: path, Retries: -1, Interval: 20 * time.Millisecond}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := c.Command(ctx, ShowInfo)
		if l := <-ready; l != nil {
			defer l.Close()
		}
		if err != nil || string(got) != "Name: fake\n" {
			t.Fatalf("Command = %q, %v; want %q", got, err, "Name: fake\n")
		}
	})

	t.Run("invalid", func(t *testing.T) {
		c := &Client{Network: "unix", Address: missing, Retries: -2}
		if _, err := c.Command(context.Background(), ShowInfo); err == nil {
			t.Fatal("Command with Retries -2 succeeded, want an error")
		}
	})
}

func TestCommandRealHAProxy(t *testing.T) {
	dir := testenv.ShortDir(t)
	unixSock := filepath.Join(dir, "admin.sock")
	tcpSock := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	testenv.StartHAProxy(t, testenv.HAProxyConfig{
		StatsSockets: []string{unixSock, tcpSock},
		Body:         testenv.Proxies(testenv.FreePort(t), 3, 2, 9),
	})
	for _, c := range []*Client{
		{Network: "unix", Address: unixSock, Timeout: time.Second},
		{Network: "tcp", Address: tcpSock, Timeout: time.Second},
		{Network: "unix", Address: unixSock, Timeout: time.Second, BufferLimit: 100},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		info, err := c.Command(ctx, ShowInfo)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if !bytes.HasPrefix(info, []byte("Name: HAProxy\n")) || !bytes.Contains(info, []byte("\nVersion: ")) {
			t.Errorf("%v show info = %.200q..., want Name and Version lines", c, info)
		}
		stat, err := c.Command(ctx, ShowStat)
		cancel()
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		lines := strings.Split(strings.TrimSpace(string(stat)), "\n")
		if !strings.HasPrefix(lines[0], "# pxname,svname,") {
			t.Errorf("%v show stat header = %.80q, want # pxname,svname,...", c, lines[0])
		}
		// fe FRONTEND + 3 x (2 servers + BACKEND) = 10 rows.
		if got := len(lines) - 1; got != 10 {
			t.Errorf("%v show stat has %d rows, want 10", c, got)
		}
	}
}

func TestCommandConcurrent(t *testing.T) {
	f := newFakeSocket(t, func(cmd string) []byte { return []byte("answer to " + cmd + "\n") })
	c := &Client{Network: "unix", Address: f.path, Timeout: time.Second, Retries: 3, Interval: 10 * time.Millisecond}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			cmd := fmt.Sprintf("show %d", i)
			got, err := c.Command(context.Background(), cmd)
			if err != nil || string(got) != "answer to "+cmd+"\n" {
				t.Errorf("Command(%q) = %q, %v", cmd, got, err)
			}
		})
	}
	wg.Wait()
}
