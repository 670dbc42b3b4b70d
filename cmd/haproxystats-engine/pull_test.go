package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// waitFor polls cond every 50ms for at most d.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func spoolDirs(t *testing.T, dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestOneDaemon runs `run --pull` against two real HAProxy instances with
// stats sockets and one in master-worker mode (masters): every round is
// committed into the spool and processed from there; while Graphite is
// down the snapshots pile up in the spool, and once it is back every one of
// them is delivered and removed, and later rounds follow.
// startRunPull starts `run --pull -f conf` in the test's process; stop
// stops it and fails the test unless it exits 0 within 30s. The daemon's
// log is in stderr.
func startRunPull(t *testing.T, conf string) (stop func(), stderr *testenv.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stderr = new(testenv.Buffer)
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "--pull", "-f", conf}, stderr, stderr) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("exit %d after stop\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("run --pull did not stop within 30s")
		}
	}, stderr
}

func TestOneDaemon(t *testing.T) {
	testenv.HAProxyBinary(t)
	sockets := testenv.ShortDir(t)
	for i := 1; i <= 2; i++ {
		testenv.StartHAProxy(t, testenv.HAProxyConfig{
			StatsSockets: []string{filepath.Join(sockets, fmt.Sprintf("admin%d.sock", i))},
			Body:         testenv.Proxies(testenv.FreePort(t), 2, 2, testenv.FreePort(t)),
		})
	}
	master := filepath.Join(testenv.ShortDir(t), "master.sock")
	mw := testenv.StartMasterWorker(t, testenv.MasterWorkerConfig{MasterSockets: []string{master}})
	graphitePort := testenv.FreePort(t)
	base := t.TempDir()
	conf := filepath.Join(base, "haproxystats.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`[paths]
base-dir = %s
[pull]
socket-dir = %s
masters = unix://%s
pull-interval = 1
[process]
workers = 1
[graphite]
server = 127.0.0.1
port = %d
prefix-hostname = false
retries = 0
interval = 0.1
delay = 0.2
connect-timeout = 0.2
`, base, sockets, master, graphitePort)), 0o644)
	incoming := filepath.Join(base, "incoming")

	stop, stderr := startRunPull(t, conf)

	// Graphite down: rounds pile up in the spool.
	if !waitFor(15*time.Second, func() bool { return len(spoolDirs(t, incoming)) >= 2 }) {
		t.Fatalf("snapshots do not pile up in the spool while Graphite is down: %v\n%s", spoolDirs(t, incoming), stderr.String())
	}
	spilled := spoolDirs(t, incoming)
	cur, _, err := mw.Workers()
	if err != nil {
		t.Fatal(err)
	}
	worker := fmt.Sprintf("master.sock:master-%d:worker-%d", mw.MasterPID(), cur[0])
	for _, f := range []string{"admin1.sock_info", "admin2.sock_stat", worker + "_info", worker + "_stat"} {
		if _, err := os.Stat(filepath.Join(incoming, spilled[0], f)); err != nil {
			t.Errorf("snapshot %s: %v", spilled[0], err)
		}
	}

	// Graphite up: the spooled snapshots are delivered and removed.
	rec := testenv.NewRecorder(t, graphitePort)
	if !waitFor(20*time.Second, func() bool {
		data, _ := rec.Bytes()
		for _, s := range spilled {
			if !bytes.Contains(data, []byte(".haproxystats.TotalWallClockTime ")) || !bytes.Contains(data, []byte(" "+s+"\n")) {
				return false
			}
		}
		for _, s := range spoolDirs(t, incoming) {
			for _, sp := range spilled {
				if s == sp {
					return false
				}
			}
		}
		return true
	}) {
		t.Fatalf("spilled snapshots %v not delivered and removed; spool now %v\n%s", spilled, spoolDirs(t, incoming), stderr.String())
	}

	// Caught up: later rounds are delivered as they come.
	data, _ := rec.Bytes()
	before := bytes.Count(data, []byte(".haproxystats.TotalWallClockTime "))
	if !waitFor(10*time.Second, func() bool {
		data, _ := rec.Bytes()
		return bytes.Count(data, []byte(".haproxystats.TotalWallClockTime ")) >= before+3
	}) {
		t.Fatalf("no new snapshots delivered after catching up\n%s", stderr.String())
	}
	if dirs := spoolDirs(t, incoming); len(dirs) > 2 {
		t.Errorf("spool holds %v while Graphite keeps up, want at most the rounds in flight", dirs)
	}
	data, _ = rec.Bytes()
	for _, want := range []string{"loadbalancers.haproxy.frontend.fe.stot ", "loadbalancers.haproxy.daemon.50PercentileCpuUsagePct ", "loadbalancers.haproxy.backend.be1.TotalServers 2 "} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("Graphite received no %q line", want)
		}
	}
	stop()
}

// TestHelperMain is not a test: StartHelper runs the program's main in it.
func TestHelperMain(t *testing.T) {
	args, ok := testenv.HelperArgs()
	if !ok {
		t.Skip("runs only as the helper process of TestOneDaemonSignals")
	}
	os.Args = append([]string{"haproxystats-engine"}, args...)
	main()
}

// TestOneDaemonSignals: SIGTERM, SIGHUP and SIGINT stop `run --pull` with
// exit 0, as they stop haproxystats-pull and haproxystats-process.
func TestOneDaemonSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			base := t.TempDir()
			conf := filepath.Join(base, "haproxystats.conf")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf("[paths]\nbase-dir = %s\n[pull]\nsocket-dir = %s\npull-interval = 1\n[graphite]\nport = %d\n",
				base, t.TempDir(), testenv.FreePort(t))), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := testenv.StartHelper(t, "TestHelperMain", "run", "--pull", "-f", conf)
			testenv.StopsOn(t, cmd, sig, 25*time.Second, func() bool {
				_, err := os.Stat(filepath.Join(base, "incoming"))
				return err == nil // created after the handlers are installed
			})
		})
	}
}

// TestOneDaemonRefusesKafkaOnly: [pull] destination = kafka would leave
// the one daemon's processor nothing: refused at start, naming the option.
func TestOneDaemonRefusesKafkaOnly(t *testing.T) {
	base := t.TempDir()
	conf := filepath.Join(base, "haproxystats.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[paths]\nbase-dir = %s\n[pull]\nsocket-dir = %s\ndestination = kafka\n[kafka]\nbrokers = 127.0.0.1:1\n", base, t.TempDir())), 0o644)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"run", "--pull", "-f", conf}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), `[pull] destination = "kafka": the one daemon processes what it pulls`) {
		t.Errorf("run --pull with destination = kafka: exit %d\n%s", code, stderr.String())
	}
}

// TestOneDaemonRefusesKafkaSource: [process] source = kafka is for
// haproxystats-process: the one daemon processes what it pulls.
func TestOneDaemonRefusesKafkaSource(t *testing.T) {
	base := t.TempDir()
	conf := filepath.Join(base, "haproxystats.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[paths]\nbase-dir = %s\n[pull]\nsocket-dir = %s\n[process]\nsource = kafka\n[kafka]\nbrokers = 127.0.0.1:1\n", base, t.TempDir())), 0o644)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"run", "--pull", "-f", conf}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), `[process] source = "kafka": the one daemon processes what it pulls`) {
		t.Errorf("run --pull with source = kafka: exit %d\n%s", code, stderr.String())
	}
}
