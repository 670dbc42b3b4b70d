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

	"github.com/haproxystats-go/haproxystats/internal/assemble"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestPullFourProcesses runs the command against four real HAProxy
// instances standing for four processes, waits for a snapshot, stops it
// the way SIGTERM does, and processes the snapshot with the engine.
func TestPullFourProcesses(t *testing.T) {
	testenv.HAProxyBinary(t)
	sockets := testenv.ShortDir(t)
	serverPort := testenv.FreePort(t) // nothing listens: servers are never checked
	for i := 1; i <= 4; i++ {
		testenv.StartHAProxy(t, testenv.HAProxyConfig{
			StatsSockets: []string{filepath.Join(sockets, fmt.Sprintf("admin%d.sock", i))},
			Global:       fmt.Sprintf("# process %d", i),
			Body:         testenv.Proxies(testenv.FreePort(t), 3, 2, serverPort),
		})
	}
	base := t.TempDir()
	conf := filepath.Join(base, "haproxystats.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[paths]
base-dir = %s
[pull]
socket-dir = %s
pull-interval = 1
pull-timeout = 5
[graphite]
prefix-hostname = false
`, base, sockets)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testenv.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-f", conf}, &stdout, &stderr) }()

	incoming := filepath.Join(base, "incoming")
	var snap string
	for deadline := time.Now().Add(20 * time.Second); snap == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if entries, _ := os.ReadDir(incoming); len(entries) > 0 {
			snap = filepath.Join(incoming, entries[0].Name())
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after cancel, want 0\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("haproxystats-pull did not stop within 10s of SIGTERM")
	}
	if snap == "" {
		t.Fatalf("no snapshot in %s within 20s\n%s", incoming, stderr.String())
	}
	files, _ := filepath.Glob(filepath.Join(snap, "*"))
	if len(files) != 8 {
		t.Fatalf("snapshot %s holds %d files, want 8: %v", snap, len(files), files)
	}
	if tmp, _ := os.ReadDir(filepath.Join(base, "incoming.tmp")); len(tmp) != 0 {
		t.Errorf("incoming.tmp not empty after stop: %v", tmp)
	}

	cfg, err := config.LoadFiles(nil, conf)
	if err != nil {
		t.Fatal(err)
	}
	built, err := assemble.New(cfg, assemble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer built.Close()
	var out bytes.Buffer
	res, err := built.Pipeline.ProcessDir(context.Background(), snap, &out)
	if err != nil {
		t.Fatal(err)
	}
	lines := out.String()
	for _, want := range []string{
		"loadbalancers.haproxy.daemon.CurrConns ",
		"loadbalancers.haproxy.daemon.50PercentileCpuUsagePct ",
		"loadbalancers.haproxy.frontend.fe.stot 0 " + filepath.Base(snap) + "\n",
		"loadbalancers.haproxy.backend.be2.TotalServers 2 ",
		"loadbalancers.haproxy.backend.be0.server.s1.weight 1 ",
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("engine output has no line starting %q", want)
		}
	}
	if len(res.Problems) != 0 {
		t.Errorf("problems processing the pulled snapshot: %v", res.Problems)
	}
}

func TestPullFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-p"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "[pull]\nbuffer-limit = 6291456\n") || strings.Contains(out.String(), "[process]") {
		t.Errorf("-p: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"-v"}, &out, &errb); code != 0 || out.Len() == 0 {
		t.Errorf("-v: exit %d output %q", code, out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(bad, []byte("[pull]\nsocket-dir = /run/haproxy\nbuffer-limit = 0\nservers = tcp://127.0.0.1\n"), 0o644)
	errb.Reset()
	code := run(context.Background(), []string{"-f", bad}, &out, &errb)
	for _, want := range []string{`[pull] buffer-limit = "0"`, `[pull] servers = "tcp://127.0.0.1"`} {
		if code == 0 || !strings.Contains(errb.String(), want) {
			t.Errorf("invalid config: exit %d, stderr %q lacks %q", code, errb.String(), want)
		}
	}
}

// TestHelperMain is not a test: StartHelper runs the program's main in it.
func TestHelperMain(t *testing.T) {
	args, ok := testenv.HelperArgs()
	if !ok {
		t.Skip("runs only as the helper process of TestSignals")
	}
	os.Args = append([]string{"haproxystats-pull"}, args...)
	main()
}

// TestSignals: SIGTERM and SIGHUP both stop the program with exit 0, as
// they did the original (the systemd units and scripts rely on it).
func TestSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			base := t.TempDir()
			conf := filepath.Join(base, "haproxystats.conf")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf("[paths]\nbase-dir = %s\n[pull]\nsocket-dir = %s\npull-interval = 1\n", base, t.TempDir())), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := testenv.StartHelper(t, "TestHelperMain", "-f", conf)
			testenv.StopsOn(t, cmd, sig, 10*time.Second, func() bool {
				_, err := os.Stat(filepath.Join(base, "incoming"))
				return err == nil // created after the handlers are installed
			})
		})
	}
}

// TestStopDuringStartup: a stop before the puller runs ends the program at
// once, exit 0 with a log line, without creating the spool or pulling.
func TestStopDuringStartup(t *testing.T) {
	base := t.TempDir()
	conf := filepath.Join(base, "haproxystats.conf")
	if err := os.WriteFile(conf, []byte("[paths]\nbase-dir = "+base+"\n[pull]\nsocket-dir = "+t.TempDir()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-f", conf}, &stdout, &stderr); code != 0 {
		t.Errorf("exit %d after a stop during start-up, want 0\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped during start-up") {
		t.Errorf("no log line for the stop:\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(base, "incoming")); err == nil {
		t.Error("the spool was created: the puller started after the stop")
	}
}
