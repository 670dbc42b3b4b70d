package testenv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// MasterWorkerConfig describes a haproxy started in master-worker mode
// (haproxy -W -S ...), as HAProxy 2.5 and later are deployed.
type MasterWorkerConfig struct {
	// MasterSockets holds one address per -S option: an absolute path for
	// a UNIX socket (at most 107 bytes, see ShortDir) or "127.0.0.1:PORT".
	// Bind options may follow, comma-separated, as haproxy takes them
	// ("/tmp/x/m.sock,level,user"). At least one is needed.
	MasterSockets []string
	// Nbthread is the workers' thread count; 0 means 2.
	Nbthread int
	// Global holds extra lines for the global section. Never put user,
	// group, chroot or daemon here.
	Global string
	// Body is added after the built-in proxies (see StartMasterWorker).
	// Bind only 127.0.0.1.
	Body string
}

// MasterWorker is a haproxy master process started by StartMasterWorker,
// in the foreground (-W -db) under the test's own user, with its workers.
type MasterWorker struct {
	t    testing.TB
	bin  string
	dir  string
	cfg  string
	conf MasterWorkerConfig

	httpPort, holdPort int
	backend            net.Listener // the hold proxy's server: accepts and holds
	accepted           chan net.Conn
	requests           atomic.Int64

	mu      sync.Mutex
	p       *process
	workers map[int]bool // every worker PID seen, stopped at cleanup if left
	held    []net.Conn
}

// StartMasterWorker writes a haproxy.cfg in a new temporary directory and
// starts `haproxy -W -db -S <each master socket> -f haproxy.cfg`; it waits
// (at most HAProxyStartTimeout) until every master socket lists a current
// worker that answers "show info". Besides cfg.Body the configuration has:
//
//   - frontend "traffic" (HTTP) on HTTPAddr, answering every request 200 itself:
//     see Get and Requests;
//   - listen "hold" (TCP, client and server timeouts of 5 minutes) on a
//     port of its own, whose server is a listener of this helper that
//     accepts and keeps every connection: see Hold.
//
// The master is stopped by PID when the test ends (SIGTERM, which stops its
// workers), and then any worker PID seen that is still a haproxy is killed.
// It skips the test when haproxy is not installed.
func StartMasterWorker(t testing.TB, cfg MasterWorkerConfig) *MasterWorker {
	t.Helper()
	bin := HAProxyBinary(t)
	if len(cfg.MasterSockets) == 0 {
		t.Fatal("StartMasterWorker: no master socket")
	}
	for _, s := range cfg.MasterSockets {
		if addr := masterAddress(s); filepath.IsAbs(addr) && len(addr) > maxUnixPath {
			t.Fatalf("StartMasterWorker: socket path %s is %d bytes, the limit is %d: use ShortDir", addr, len(addr), maxUnixPath)
		}
	}
	if cfg.Nbthread == 0 {
		cfg.Nbthread = 2
	}
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hold backend: %v", err)
	}
	m := &MasterWorker{
		t: t, bin: bin, dir: t.TempDir(), conf: cfg,
		httpPort: FreePort(t), holdPort: FreePort(t),
		backend: backend, accepted: make(chan net.Conn, 100),
		workers: map[int]bool{},
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			m.mu.Lock()
			m.held = append(m.held, c)
			m.mu.Unlock()
			select {
			case m.accepted <- c:
			default:
			}
		}
	})
	t.Cleanup(func() {
		m.Stop()
		backend.Close()
		wg.Wait()
		m.mu.Lock()
		for _, c := range m.held {
			c.Close()
		}
		m.mu.Unlock()
	})
	m.cfg = filepath.Join(m.dir, "haproxy.cfg")
	if err := os.WriteFile(m.cfg, []byte(m.render()), 0o644); err != nil {
		t.Fatalf("write %s: %v", m.cfg, err)
	}
	args := []string{"-W", "-db"}
	for _, s := range cfg.MasterSockets {
		args = append(args, "-S", s)
	}
	args = append(args, "-f", m.cfg)
	p, err := startProcess(m.dir, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.p = p
	m.mu.Unlock()
	for _, s := range m.MasterSockets() {
		if err := p.waitReady(HAProxyStartTimeout, func() error { _, err := m.readyWorker(s, nil); return err }); err != nil {
			m.Stop()
			t.Fatalf("haproxy -W -f %s: master socket %s: %v; output:\n%s", m.cfg, s, err, p.output())
		}
	}
	return m
}

func (m *MasterWorker) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "global\n    nbthread %d\n", m.conf.Nbthread)
	if m.conf.Global != "" {
		b.WriteString(m.conf.Global + "\n")
	}
	fmt.Fprintf(&b, `
defaults
    timeout connect 1s
    timeout client 5s
    timeout server 5s

frontend traffic
    mode http
    bind 127.0.0.1:%d
    http-request return status 200 content-type text/plain string ok

listen hold
    mode tcp
    bind 127.0.0.1:%d
    timeout client 5m
    timeout server 5m
    server hold %s

`, m.httpPort, m.holdPort, m.backend.Addr())
	b.WriteString(m.conf.Body)
	b.WriteString("\n")
	return b.String()
}

// masterAddress is the address of a -S argument, without bind options.
func masterAddress(s string) string {
	addr, _, _ := strings.Cut(s, ",")
	return addr
}

// MasterSockets returns the master socket addresses, without bind options.
func (m *MasterWorker) MasterSockets() []string {
	out := make([]string, len(m.conf.MasterSockets))
	for i, s := range m.conf.MasterSockets {
		out[i] = masterAddress(s)
	}
	return out
}

// MasterPID returns the master's process id, or 0 when stopped.
func (m *MasterWorker) MasterPID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p.pid()
}

// ConfigPath returns the path of the haproxy.cfg written for this instance;
// change it and Reload to load another configuration.
func (m *MasterWorker) ConfigPath() string { return m.cfg }

// Output returns what the master and its workers wrote on stdout and stderr.
func (m *MasterWorker) Output() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p.output()
}

// Workers returns the PIDs of the current and of the leaving (old) workers
// that the first master socket lists.
func (m *MasterWorker) Workers() (current, leaving []int, err error) {
	return m.workersOf(m.MasterSockets()[0])
}

func (m *MasterWorker) workersOf(socket string) (current, leaving []int, err error) {
	out, err := MasterCommand(socket, "show proc", 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	current, leaving, err = parseWorkers(out)
	if err == nil {
		m.mu.Lock()
		for _, pid := range slices.Concat(current, leaving) {
			m.workers[pid] = true
		}
		m.mu.Unlock()
	}
	return current, leaving, err
}

// parseWorkers reads the worker PIDs of a show proc answer; a minimal
// parser for tests, independent from the code under test.
func parseWorkers(out []byte) (current, leaving []int, err error) {
	if !strings.HasPrefix(string(out), "#<PID>") {
		return nil, nil, fmt.Errorf("show proc answered %.80q", out)
	}
	section := ""
	for line := range strings.Lines(string(out)) {
		if s, ok := strings.CutPrefix(line, "#"); ok {
			section = strings.TrimSpace(s)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[1] != "worker" {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, nil, fmt.Errorf("show proc row %q: %v", line, err)
		}
		switch section {
		case "workers":
			current = append(current, pid)
		case "old workers":
			leaving = append(leaving, pid)
		}
	}
	return current, leaving, nil
}

// readyWorker returns the current worker listed by socket that is not in
// not, once it answers show info.
func (m *MasterWorker) readyWorker(socket string, not []int) (int, error) {
	current, _, err := m.workersOf(socket)
	if err != nil {
		return 0, err
	}
	for _, pid := range current {
		if slices.Contains(not, pid) {
			continue
		}
		out, err := MasterCommand(socket, fmt.Sprintf("@!%d show info", pid), 5*time.Second)
		if err != nil {
			return 0, err
		}
		if !strings.HasPrefix(string(out), "Name: ") {
			return 0, fmt.Errorf("worker %d answered show info with %.80q", pid, out)
		}
		return pid, nil
	}
	return 0, fmt.Errorf("no new current worker yet (current %v)", current)
}

// Reload sends SIGUSR2 to the master, as `systemctl reload` does, and
// waits (at most HAProxyStartTimeout) until every master socket lists a new
// current worker that answers; it returns that worker's PID. The former
// worker leaves: it exits at once unless a connection keeps it (Hold).
func (m *MasterWorker) Reload() int {
	m.t.Helper()
	before, _, err := m.Workers()
	if err != nil {
		m.t.Fatalf("reload: %v", err)
	}
	m.mu.Lock()
	p := m.p
	m.mu.Unlock()
	if p.pid() == 0 {
		m.t.Fatal("reload: haproxy is not running")
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		m.t.Fatalf("reload: %v", err)
	}
	var pid int
	for _, s := range m.MasterSockets() {
		err := p.waitReady(HAProxyStartTimeout, func() error {
			var err error
			pid, err = m.readyWorker(s, before)
			return err
		})
		if err != nil {
			m.t.Fatalf("reload: master socket %s: %v; output:\n%s", s, err, p.output())
		}
	}
	return pid
}

// WaitWorkerGone waits (at most timeout) until no master socket lists pid
// and the process has exited; it reports whether it did.
func (m *MasterWorker) WaitWorkerGone(pid int, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		listed := false
		for _, s := range m.MasterSockets() {
			cur, old, err := m.workersOf(s)
			listed = listed || err != nil || slices.Contains(cur, pid) || slices.Contains(old, pid)
		}
		if !listed && !isHAProxy(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// HTTPAddr is the address of frontend "traffic".
func (m *MasterWorker) HTTPAddr() string { return fmt.Sprintf("127.0.0.1:%d", m.httpPort) }

// Get sends one HTTP request to frontend "traffic" on a new connection and
// counts it in Requests when HAProxy answered 200.
func (m *MasterWorker) Get() error {
	c, err := net.DialTimeout("tcp", m.HTTPAddr(), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("GET %s: %w", m.HTTPAddr(), err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200 ") {
		return fmt.Errorf("GET %s: %q", m.HTTPAddr(), status)
	}
	io.Copy(io.Discard, c)
	m.requests.Add(1)
	return nil
}

// Requests returns how many Get calls HAProxy answered with 200.
func (m *MasterWorker) Requests() int64 { return m.requests.Load() }

// HeldConn is a TCP connection through listen "hold" that keeps the
// worker that accepted it alive after a reload, until Close.
type HeldConn struct {
	client, server net.Conn
}

// Close closes both ends, which ends the session in HAProxy.
func (h *HeldConn) Close() {
	h.client.Close()
	h.server.Close()
}

// Hold opens a connection through listen "hold" and waits (at most 5 s)
// until HAProxy connected it to this helper's server, so the current
// worker holds an established session. It is closed at cleanup if not
// before.
func (m *MasterWorker) Hold() *HeldConn {
	m.t.Helper()
	// Drop connections accepted earlier and not claimed.
	for len(m.accepted) > 0 {
		<-m.accepted
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.holdPort), 5*time.Second)
	if err != nil {
		m.t.Fatalf("hold: %v", err)
	}
	m.mu.Lock()
	m.held = append(m.held, c)
	m.mu.Unlock()
	if _, err := c.Write([]byte("x")); err != nil {
		m.t.Fatalf("hold: %v", err)
	}
	select {
	case s := <-m.accepted:
		return &HeldConn{client: c, server: s}
	case <-time.After(5 * time.Second):
		m.t.Fatalf("hold: HAProxy did not connect to the held server within 5s; output:\n%s", m.Output())
		return nil
	}
}

// Stop stops the master by PID (SIGTERM, then SIGKILL after
// HAProxyStopTimeout), then kills every worker seen that is still running.
// It is safe to call more than once and is called at cleanup.
func (m *MasterWorker) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p != nil {
		m.p.stop(m.t, HAProxyStopTimeout)
	}
	for pid := range m.workers {
		for deadline := time.Now().Add(HAProxyStopTimeout); isHAProxy(pid) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if isHAProxy(pid) {
			m.t.Logf("haproxy worker %d outlived its master; sending SIGKILL", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// isHAProxy reports whether pid is a running (not zombie) haproxy.
func isHAProxy(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || !strings.Contains(s[:i], "(haproxy") {
		return false
	}
	return !strings.HasPrefix(s[i+1:], " Z")
}

// MasterCommand sends cmd to a master CLI at address (a UNIX socket path,
// or host:port), shuts the sending side down (HAProxy 2.6's master CLI
// keeps the connection open until then) and returns the whole answer;
// timeout bounds the exchange. It is a minimal client for tests,
// independent from the code under test.
func MasterCommand(address, cmd string, timeout time.Duration) ([]byte, error) {
	return exchange(statsNetwork(address), address, cmd, timeout, true)
}

// ServeUnix listens on a UNIX socket at path and runs handle for every
// connection (with a 30 s deadline, then closed) until the test ends: a
// fake stats socket or master CLI.
func ServeUnix(t testing.TB, path string, handle func(c net.Conn)) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				handle(c)
			})
		}
	})
}
