package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Bounds used by the carbon-c-relay helpers.
const (
	// CarbonRelayStartTimeout bounds the wait for the relay to accept
	// connections.
	CarbonRelayStartTimeout = 10 * time.Second
	// CarbonRelayStopTimeout is how long Stop waits after SIGTERM before
	// SIGKILL.
	CarbonRelayStopTimeout = 5 * time.Second
)

// CarbonRelayBinary returns the path of the carbon-c-relay executable, or
// skips the test with a loud message when it is not installed (fails it
// under CI; see Missing).
func CarbonRelayBinary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("carbon-c-relay")
	if err != nil {
		Missing(t, "SKIPPING INTEGRATION TEST: carbon-c-relay binary not found in PATH; "+
			"install it with `apt-get install carbon-c-relay` (or run .ci/install-deps as root) to run this test")
	}
	return path
}

// CarbonRelay is a carbon-c-relay started by StartCarbonRelay: in the
// foreground, under the test's own user, listening for the Graphite
// plaintext protocol on one loopback TCP port and writing every metric it
// receives to one file (a `file` cluster).
type CarbonRelay struct {
	t    testing.TB
	dir  string
	port int
	out  string
	log  string

	mu sync.Mutex
	p  *process
}

// StartCarbonRelay writes a relay configuration into a new temporary
// directory (listen on 127.0.0.1, one file cluster, `match * send to out
// stop`) and starts `carbon-c-relay -f relay.conf -s -l relay.log` with a
// server queue large enough for a big snapshot. It waits (at most
// CarbonRelayStartTimeout) until the port accepts connections. The process
// is stopped by PID when the test ends. It skips the test when the relay is
// not installed.
//
// Submission mode (-s) keeps the relay's own statistics out of the output
// file, which then holds only what was sent to it.
func StartCarbonRelay(t testing.TB) *CarbonRelay {
	t.Helper()
	bin := CarbonRelayBinary(t)
	r := &CarbonRelay{t: t, dir: t.TempDir()}
	r.out = filepath.Join(r.dir, "out.txt")
	r.log = filepath.Join(r.dir, "relay.log")
	t.Cleanup(r.Stop)
	if err := startOnFreePorts(t, "carbon-c-relay", func() error { return r.start(bin) }); err != nil {
		t.Fatalf("carbon-c-relay did not start: %v; log:\n%s", err, r.Log())
	}
	return r
}

func (r *CarbonRelay) start(bin string) error {
	r.t.Helper()
	r.port = FreePort(r.t)
	conf := filepath.Join(r.dir, "relay.conf")
	text := fmt.Sprintf("listen\n    type linemode\n        127.0.0.1:%d proto tcp\n    ;\n"+
		"cluster out\n    file\n        %s\n    ;\n"+
		"match *\n    send to out\n    stop\n    ;\n", r.port, r.out)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		r.t.Fatalf("write %s: %v", conf, err)
	}
	p, err := startProcess(r.dir, bin, "-f", conf, "-s", "-H", "testenv", "-l", r.log, "-w", "2", "-q", "1000000")
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.p = p
	r.mu.Unlock()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	err = p.waitReady(CarbonRelayStartTimeout, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		r.Stop()
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return nil
}

// Port is the loopback TCP port the relay listens on.
func (r *CarbonRelay) Port() int { return r.port }

// OutputFile is the path of the file cluster's file.
func (r *CarbonRelay) OutputFile() string { return r.out }

// Output returns what the relay wrote to its output file so far (nothing
// when it has not created it yet).
func (r *CarbonRelay) Output() []byte {
	data, err := os.ReadFile(r.out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		r.t.Fatalf("read relay output: %v", err)
	}
	return data
}

// Log returns the relay's log file, and what it wrote on stdout and stderr.
func (r *CarbonRelay) Log() string {
	data, _ := os.ReadFile(r.log)
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(data) + r.p.output()
}

// PID returns the process id, or 0 when stopped.
func (r *CarbonRelay) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.p.pid()
}

// Stop stops the relay by PID: SIGTERM, then SIGKILL if it has not exited
// within CarbonRelayStopTimeout. It is safe to call more than once and is
// called at cleanup.
func (r *CarbonRelay) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil {
		r.p.stop(r.t, CarbonRelayStopTimeout)
	}
}
