package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

const corpus = "../../testdata/conformance"

// TestMain lets this test binary run the WASM stages of its tests: a stage
// with a timeout runs its module in a child process, the running program
// started again.
func TestMain(m *testing.M) {
	if wasmstage.IsChild() {
		os.Exit(wasmstage.ChildMain())
	}
	os.Exit(m.Run())
}

func TestTestCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"test", corpus}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.HasSuffix(out.String(), "25 passed, 0 failed\n") || !strings.Contains(out.String(), "PASS dev4-defaults\n") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestTestCommandFailsAndUpdates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dots-defaults")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(corpus, "dots-defaults"))); err != nil {
		t.Fatal(err)
	}
	exp := filepath.Join(dir, "expected.txt")
	data, _ := os.ReadFile(exp)
	broken := strings.Replace(string(data), "loadbalancers.haproxy.backend.api_v1.bin ", "loadbalancers.haproxy.backend.api_v1.bin 1", 1)
	if err := os.WriteFile(exp, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"test", dir}, &out, &out); code != 1 {
		t.Fatalf("exit %d for a failing case, want 1\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "FAIL "+dir+"\n") || !strings.Contains(out.String(), "value   loadbalancers.haproxy.backend.api_v1.bin") || !strings.HasSuffix(out.String(), "0 passed, 1 failed\n") {
		t.Errorf("output:\n%s", out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"test", "--update", dir}, &out, &out); code != 0 {
		t.Fatalf("--update: exit %d\n%s", code, out.String())
	}
	updated, _ := os.ReadFile(exp)
	if !strings.Contains(string(updated), "loadbalancers.haproxy.backend.api_v1.bin 1815042 ") ||
		!strings.Contains(string(updated), "loadbalancers.haproxy.haproxystats.TotalWallClockTime * ") {
		t.Errorf("--update wrote:\n%s", updated)
	}
	out.Reset()
	if code := run(context.Background(), []string{"test", dir}, &out, &out); code != 0 {
		t.Errorf("the updated case fails:\n%s", out.String())
	}
}

func TestRunCommand(t *testing.T) {
	c := filepath.Join(corpus, "dots-defaults")
	snaps, _ := filepath.Glob(filepath.Join(c, "incoming", "*"))
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"run", "-f", filepath.Join(c, "haproxystats.conf")}, snaps...), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want, _ := os.ReadFile(filepath.Join(c, "expected.txt"))
	// Every expected line except the NaN ones, which are not sent.
	if got, w := strings.Count(out.String(), "\n"), strings.Count(string(want), "\n")-strings.Count(string(want), " nan "); got != w {
		t.Errorf("run printed %d lines, the case expects %d", got, w)
	}
	if _, err := os.Stat(snaps[0]); err != nil {
		t.Errorf("run removed the snapshot: %v", err)
	}
	errb.Reset()
	if code := run(context.Background(), []string{"run", "-f", filepath.Join(t.TempDir(), "none.conf"), "/nonexistent/1"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "/nonexistent/1") {
		t.Errorf("missing snapshot: exit %d, stderr %q", code, errb.String())
	}
}

func TestCheckCommand(t *testing.T) {
	// check refuses what the daemons refuse at start, naming the option,
	// and says when [pull] could not start a puller. It reports an
	// exclusion file that is missing or unreadable, which the daemons log
	// and run without (SPEC §5.4), and never blocks on a named pipe.
	sockets := t.TempDir()
	dir := t.TempDir()
	fifo := testenv.NamedPipe(t)
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("# none\nfe_x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, c := range []struct {
		name, conf string
		code       int
		want       []string
	}{
		{"valid, with a puller", "[pull]\nsocket-dir = " + sockets + "\n", 0, []string{"OK: ", "0 stage(s)"}},
		{"valid, process only", "[graphite]\nserver = 127.0.0.1\n", 0, []string{"OK: ", "note: [pull] sets none of socket-dir, servers and masters"}},
		{"graphite backoff", "[graphite]\nbackoff = 0\n", 1, []string{`[graphite] backoff = "0": must be a finite number > 0`}},
		{"graphite retries", "[graphite]\nretries = -1\n", 1, []string{`[graphite] retries = "-1": must be >= 0`}},
		{"graphite queue size", "[graphite]\nqueue-size = 0\n", 1, []string{"[graphite]", "queue-size"}},
		{"pull timeout", "[pull]\nsocket-dir = " + sockets + "\npull-timeout = -1\n", 1, []string{"[pull] pull-timeout"}},
		{"stage module missing", "[process]\nstages = s1\n[stage.s1]\nmodule = nosuch.wasm\n", 1, []string{"s1", "nosuch.wasm"}},
		{"exclusion file readable", "[process]\nexclude-frontends = " + good + "\n", 0, []string{"OK: "}},
		{"exclusion file missing", "[process]\nexclude-frontends = " + missing + "\n", 1,
			[]string{`[process] exclude-frontends = "` + missing + `"`, "no such file"}},
		{"exclusion file a directory", "[process]\nexclude-backends = " + dir + "\n", 1,
			[]string{`[process] exclude-backends = "` + dir + `"`, "not a regular file (directory)"}},
		{"exclusion file a named pipe", "[process]\nexclude-backends = " + fifo + "\n", 1,
			[]string{`[process] exclude-backends = "` + fifo + `"`, "not a regular file (named pipe)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "haproxystats.conf")
			if err := os.WriteFile(conf, []byte("[paths]\nbase-dir = "+t.TempDir()+"\n"+c.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb testenv.Buffer
			code := testenv.ReturnsWithin(t, 30*time.Second, "check", func() int {
				return run(context.Background(), []string{"check", "-f", conf}, &out, &errb)
			})
			all := out.String() + errb.String()
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s", code, c.code, all)
			}
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
}

// TestTestCommandFindsNested: `test PATH` runs the cases at any depth below
// PATH (as `haproxystats-engine test wasm-examples` must run every
// example's testcase), and never takes what is inside a case, such as a
// directory of its incoming/, for another case.
func TestTestCommandFindsNested(t *testing.T) {
	root := t.TempDir()
	for _, c := range []struct{ src, dst string }{
		{"dots-defaults", "top"},
		{"single-defaults", "a/testcase"},
		{"dev4-defaults", "b/c/d/testcase"},
	} {
		if err := os.CopyFS(filepath.Join(root, c.dst), os.DirFS(filepath.Join(corpus, c.src))); err != nil {
			t.Fatal(err)
		}
	}
	// A configuration inside a case's incoming/ is a snapshot's file, not
	// a case: were it taken for one, it would fail (no expected.txt).
	snaps, _ := filepath.Glob(filepath.Join(root, "top", "incoming", "*"))
	if len(snaps) == 0 {
		t.Fatal("no snapshot in the copied case")
	}
	if err := os.WriteFile(filepath.Join(snaps[0], "haproxystats.conf"), []byte("[process]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"test", root}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	want := "PASS a/testcase\nPASS b/c/d/testcase\nPASS top\n3 passed, 0 failed\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}
