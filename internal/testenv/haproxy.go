// Package testenv starts real programs for integration tests: a foreground
// haproxy with its stats sockets in a short temporary directory, a
// carbon-c-relay writing to a file, a single-node VictoriaMetrics with a
// Graphite listener, a Kafka wire-protocol broker (franz-go's kfake, built
// from ./kafkabroker) read back with kcat; it also provides a Graphite
// stand-in (Recorder) that can be slow, stall or die, and the
// large-snapshot generator.
//
// Everything here takes a testing.TB, fails or skips the test on error, and
// registers its own cleanup: every process it starts is stopped by PID
// (SIGTERM, then SIGKILL after a bound) and every directory it makes is
// removed. Only loopback addresses are used. It imports nothing from the
// project, so that any package's tests can use it, including those of
// internal/haproxy.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds used by the helpers.
const (
	// HAProxyStartTimeout bounds the wait for every stats socket to answer.
	HAProxyStartTimeout = 30 * time.Second
	// HAProxyStopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	HAProxyStopTimeout = 5 * time.Second
	// maxUnixPath is the usable length of sun_path on Linux (108 with the NUL).
	maxUnixPath = 107
)

// HAProxyBinary returns the path of the haproxy executable, or skips the
// test with a loud message when it is not installed (fails it under CI;
// see Missing).
func HAProxyBinary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("haproxy")
	if err != nil {
		Missing(t, "SKIPPING INTEGRATION TEST: haproxy binary not found in PATH; "+
			"install it with `apt-get install haproxy` to run this test")
	}
	return path
}

// ShortDir returns a new empty directory with a short path (os.TempDir()/hsNNN)
// that is removed when the test ends. UNIX socket paths are limited to 107
// bytes, which t.TempDir() exceeds for long test names.
func ShortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hs")
	if err != nil {
		t.Fatalf("short temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment
// ago (the kernel picked it; there is a small window for a race).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// HAProxyConfig describes a haproxy instance to start.
type HAProxyConfig struct {
	// StatsSockets holds one address per "stats socket" line, all at level
	// admin: an absolute path for a UNIX socket (at most 107 bytes, see
	// ShortDir) or "127.0.0.1:PORT" for a TCP one. At least one is needed.
	StatsSockets []string
	// Global holds extra lines for the global section (for instance
	// "nbthread 2"). Never put user, group, chroot or daemon here.
	Global string
	// Body is the rest of the configuration: frontends, backends, listens.
	// Bind only 127.0.0.1. May be empty. See Proxies.
	Body string
}

// HAProxy is a haproxy process started by StartHAProxy, running in the
// foreground (-db) under the test's own user.
type HAProxy struct {
	t    testing.TB
	bin  string
	dir  string
	cfg  string
	conf HAProxyConfig
	mu   sync.Mutex
	p    *process
}

// StartHAProxy writes cfg to a haproxy.cfg in a new temporary directory,
// starts `haproxy -db -f haproxy.cfg`, and waits (at most
// HAProxyStartTimeout) until every stats socket answers "show info". The
// process is stopped by PID when the test ends. It skips the test when
// haproxy is not installed.
func StartHAProxy(t testing.TB, cfg HAProxyConfig) *HAProxy {
	t.Helper()
	bin := HAProxyBinary(t)
	if len(cfg.StatsSockets) == 0 {
		t.Fatal("StartHAProxy: no stats socket")
	}
	for _, s := range cfg.StatsSockets {
		if filepath.IsAbs(s) && len(s) > maxUnixPath {
			t.Fatalf("StartHAProxy: socket path %s is %d bytes, the limit is %d: use ShortDir", s, len(s), maxUnixPath)
		}
	}
	h := &HAProxy{t: t, bin: bin, dir: t.TempDir(), conf: cfg}
	h.cfg = filepath.Join(h.dir, "haproxy.cfg")
	if err := os.WriteFile(h.cfg, []byte(h.render()), 0o644); err != nil {
		t.Fatalf("write %s: %v", h.cfg, err)
	}
	t.Cleanup(h.Stop)
	h.start()
	return h
}

func (h *HAProxy) render() string {
	var b strings.Builder
	b.WriteString("global\n")
	b.WriteString("    nbthread 1\n")
	for _, s := range h.conf.StatsSockets {
		if filepath.IsAbs(s) {
			fmt.Fprintf(&b, "    stats socket %s mode 600 level admin\n", s)
		} else {
			fmt.Fprintf(&b, "    stats socket %s level admin\n", s)
		}
	}
	if h.conf.Global != "" {
		b.WriteString(h.conf.Global)
		b.WriteString("\n")
	}
	b.WriteString(`
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

`)
	b.WriteString(h.conf.Body)
	b.WriteString("\n")
	return b.String()
}

func (h *HAProxy) start() {
	h.t.Helper()
	p, err := startProcess(h.dir, h.bin, "-db", "-f", h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	h.p = p
	h.mu.Unlock()

	deadline := time.Now().Add(HAProxyStartTimeout)
	for _, s := range h.conf.StatsSockets {
		err := p.waitReady(time.Until(deadline), func() error {
			_, err := Command(statsNetwork(s), s, "show info", time.Second)
			return err
		})
		if err != nil {
			h.Stop()
			h.t.Fatalf("haproxy -f %s: stats socket %s: %v; output:\n%s", h.cfg, s, err, p.output())
		}
	}
}

// Stop stops the process by PID: SIGTERM, then SIGKILL if it has not exited
// within HAProxyStopTimeout. It is safe to call more than once and is called
// at cleanup.
func (h *HAProxy) Stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.p != nil {
		h.p.stop(h.t, HAProxyStopTimeout)
	}
}

// Restart stops the process and starts a new one with the same
// configuration, waiting for its stats sockets again.
func (h *HAProxy) Restart() {
	h.t.Helper()
	h.Stop()
	h.start()
}

// PID returns the process id, or 0 when stopped.
func (h *HAProxy) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.p.pid()
}

// ConfigPath returns the path of the haproxy.cfg written for this instance.
func (h *HAProxy) ConfigPath() string { return h.cfg }

// Output returns what the current process wrote on stdout and stderr.
func (h *HAProxy) Output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.p.output()
}

// StatsSockets returns the stats socket addresses, as given.
func (h *HAProxy) StatsSockets() []string { return h.conf.StatsSockets }

// Command sends cmd to the stats socket at address (network "unix" or
// "tcp") and returns the whole answer; timeout bounds the exchange. It is a
// minimal client for tests, independent from the code under test.
func Command(network, address, cmd string, timeout time.Duration) ([]byte, error) {
	return exchange(network, address, cmd, timeout, false)
}

// exchange sends cmd, half-closes when asked to, and reads the answer
// until the server closes.
func exchange(network, address, cmd string, timeout time.Duration, halfClose bool) ([]byte, error) {
	conn, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return nil, fmt.Errorf("write %q to %s: %w", cmd, address, err)
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok && halfClose {
		if err := cw.CloseWrite(); err != nil {
			return nil, fmt.Errorf("half-close %s: %w", address, err)
		}
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		return nil, fmt.Errorf("read %q from %s: %w", cmd, address, err)
	}
	if len(out) == 0 {
		return nil, errors.New("empty answer to " + strconv.Quote(cmd) + " from " + address)
	}
	return out, nil
}

// statsNetwork tells a UNIX socket path from a TCP host:port.
func statsNetwork(address string) string {
	if filepath.IsAbs(address) {
		return "unix"
	}
	return "tcp"
}

// Proxies returns a configuration body with one frontend "fe" bound to
// 127.0.0.1:bindPort and backends be0..be<backends-1>, each with servers
// s0..s<servers-1> pointing at 127.0.0.1:serverPort without health checks
// (so nothing ever connects to them: pass a closed port).
func Proxies(bindPort, backends, servers, serverPort int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "frontend fe\n    bind 127.0.0.1:%d\n    default_backend be0\n\n", bindPort)
	for i := range backends {
		fmt.Fprintf(&b, "backend be%d\n", i)
		for j := range servers {
			fmt.Fprintf(&b, "    server s%d 127.0.0.1:%d\n", j, serverPort)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Buffer is a bytes.Buffer that one goroutine may write (a program's
// output, a logger) while another reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
