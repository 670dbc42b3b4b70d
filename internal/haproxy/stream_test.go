package haproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// serve runs handle for every connection to a UNIX socket in a short temp
// dir until the test ends, and returns its path.
func serve(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	path := filepath.Join(testenv.ShortDir(t), "s.sock")
	testenv.ServeUnix(t, path, handle)
	return path
}

// maxWriter records the total written and the largest single write.
type maxWriter struct{ n, max int }

func (w *maxWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	w.max = max(w.max, len(b))
	return len(b), nil
}

// An answer longer than MaxAnswer fails as soon as it passes the limit,
// whatever the socket would still send; exactly MaxAnswer bytes pass.
func TestStreamMaxAnswer(t *testing.T) {
	chunk := []byte(strings.Repeat("x", 32<<10) + "\n")
	endless := serve(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	const limit = 1 << 20
	c := &Client{Network: "unix", Address: endless, Timeout: time.Second, MaxAnswer: limit}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var w maxWriter
	n, err := c.Stream(ctx, ShowStat, &w, nil)
	if !errors.Is(err, ErrAnswerTooLarge) {
		t.Fatalf("Stream from an endless socket = %d, %v, want ErrAnswerTooLarge", n, err)
	}
	if n != limit || w.n != limit {
		t.Errorf("Stream = %d bytes, wrote %d, want exactly the limit %d", n, w.n, limit)
	}
	for _, s := range []string{endless, `"show stat"`, "more than 1048576 bytes"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %s", err, s)
		}
	}

	exact := serve(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte(strings.Repeat("y", limit)))
	})
	c.Address = exact
	if got, err := c.Command(ctx, ShowStat); err != nil || len(got) != limit {
		t.Errorf("Command of exactly MaxAnswer bytes = %d bytes, %v", len(got), err)
	}
	c.MaxAnswer = limit - 1
	if _, err := c.Command(ctx, ShowStat); !errors.Is(err, ErrAnswerTooLarge) {
		t.Errorf("Command of MaxAnswer+1 bytes = %v, want ErrAnswerTooLarge", err)
	}
}

// Stream copies through a buffer of at most MaxReadSize bytes, whatever
// BufferLimit says, and uses the caller's buffer.
func TestStreamBoundedBuffer(t *testing.T) {
	const size = 5 << 20
	path := serve(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte(strings.Repeat("z", size)))
	})
	for _, tt := range []struct{ limit, want int }{{0, MaxReadSize}, {DefaultBufferLimit, MaxReadSize}, {1000, 1000}} {
		c := &Client{Network: "unix", Address: path, Timeout: time.Second, BufferLimit: tt.limit}
		if c.ReadSize() != tt.want {
			t.Errorf("BufferLimit %d: ReadSize = %d, want %d", tt.limit, c.ReadSize(), tt.want)
		}
		var w maxWriter
		n, err := c.Stream(context.Background(), ShowStat, &w, make([]byte, tt.want))
		if err != nil || n != size || w.n != size {
			t.Fatalf("BufferLimit %d: Stream = %d, %v (wrote %d), want %d bytes", tt.limit, n, err, w.n, size)
		}
		if w.max > tt.want {
			t.Errorf("BufferLimit %d: a write of %d bytes, want at most %d", tt.limit, w.max, tt.want)
		}
	}
}

// A failing writer ends the exchange with its error.
func TestStreamWriterFails(t *testing.T) {
	path := serve(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("Name: x\n"))
	})
	boom := errors.New("disk full")
	c := &Client{Network: "unix", Address: path, Timeout: time.Second}
	_, err := c.Stream(context.Background(), ShowInfo, writerFunc(func([]byte) (int, error) { return 0, boom }), nil)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Stream into a failing writer = %v, want %v naming %s", err, boom, path)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// keepOpenMaster behaves as HAProxy 2.6's master CLI: it answers the
// command line and closes only once the client has shut its sending side.
func keepOpenMaster(t *testing.T, answer string) string {
	return serve(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		c.Write([]byte(answer))
		io.Copy(io.Discard, r) // until the client half-closes
	})
}

func TestStreamHalfClose(t *testing.T) {
	path := keepOpenMaster(t, "#<PID> <type>\n1 master\n")
	c := &Client{Network: "unix", Address: path, Timeout: time.Second, HalfClose: true}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := c.Command(ctx, ShowProc)
	if err != nil || string(got) != "#<PID> <type>\n1 master\n" {
		t.Fatalf("Command with HalfClose = %q, %v", got, err)
	}
	if ctx.Err() != nil {
		t.Fatal("Command with HalfClose waited for the context's end")
	}

	// Without it, the answer is there but the server never closes.
	c.HalfClose = false
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := c.Command(short, ShowProc); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Command without HalfClose = %v, want context.DeadlineExceeded", err)
	}
}

// Against Debian's haproxy 2.6 in master-worker mode, over UNIX and TCP:
// show proc lists the worker, its answers come through @!<pid>, an unknown
// PID is ErrWorkerGone, and without a half-close the master keeps the
// connection open.
func TestRealMasterCLI(t *testing.T) {
	dir := testenv.ShortDir(t)
	tcp := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	m := testenv.StartMasterWorker(t, testenv.MasterWorkerConfig{MasterSockets: []string{filepath.Join(dir, "master.sock"), tcp}})
	for _, c := range []*Client{
		{Network: "unix", Address: filepath.Join(dir, "master.sock"), Timeout: time.Second, HalfClose: true},
		{Network: "tcp", Address: tcp, Timeout: time.Second, HalfClose: true},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		answer, err := c.Command(ctx, ShowProc)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		list, err := ParseShowProc(answer)
		if err != nil {
			t.Fatalf("%v: ParseShowProc(%q) = %v", c, answer, err)
		}
		if list.Master.PID != m.MasterPID() || len(list.Workers) != 1 || list.Workers[0].Leaving {
			t.Fatalf("%v: show proc = %+v, want master %d and one current worker", c, list, m.MasterPID())
		}
		pid := list.Workers[0].PID
		for _, cmd := range []string{ShowInfo, ShowStat} {
			got, err := c.Command(ctx, WorkerCommand(pid, cmd))
			if err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			if err := CheckWorkerAnswer(pid, cmd, got); err != nil {
				t.Errorf("%v: %v", c, err)
			}
		}
		if info, _ := c.Command(ctx, WorkerCommand(pid, ShowInfo)); !strings.Contains(string(info), fmt.Sprintf("\nPid: %d\n", pid)) {
			t.Errorf("%v: @!%d show info is not that worker's: %.200q", c, pid, info)
		}
		gone, err := c.Command(ctx, WorkerCommand(99999999, ShowStat))
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if err := CheckWorkerAnswer(99999999, ShowStat, gone); !errors.Is(err, ErrWorkerGone) {
			t.Errorf("%v: answer %q for an unknown PID: CheckWorkerAnswer = %v, want ErrWorkerGone", c, gone, err)
		}
		cancel()

		keep := *c
		keep.HalfClose = false
		short, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
		if _, err := keep.Command(short, ShowProc); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v without HalfClose = %v, want context.DeadlineExceeded (2.6 keeps the connection open)", c, err)
		}
		cancel2()
	}
}

func TestCheckWorkerAnswer(t *testing.T) {
	for _, tt := range []struct {
		cmd, start string
		ok, gone   bool
	}{
		{ShowInfo, "Name: HAProxy\nVersion: 2.6\n", true, false},
		{ShowStat, "# pxname,svname,qcur\n", true, false},
		{ShowStat, "Can't find the target PID matching the prefix '@!12'\n", false, true},
		{ShowInfo, "Permission denied\n\n", false, false},
		{ShowStat, "Name: HAProxy\n", false, false},
		{"show servers state", "anything", true, false},
	} {
		err := CheckWorkerAnswer(12, tt.cmd, []byte(tt.start))
		if (err == nil) != tt.ok || errors.Is(err, ErrWorkerGone) != tt.gone {
			t.Errorf("CheckWorkerAnswer(12, %q, %q) = %v", tt.cmd, tt.start, err)
		}
	}
	if got := WorkerCommand(1234, ShowStat); got != "@!1234 show stat" {
		t.Errorf("WorkerCommand = %q", got)
	}
}
