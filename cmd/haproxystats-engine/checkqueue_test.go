package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckQueue(t *testing.T) {
	// spool makes a spool with n snapshot directories, plus entries that
	// are not snapshots and must not count, and a configuration pointing
	// [pull] dst-dir at it through ${paths:base-dir} as the defaults do.
	spool := func(t *testing.T, n int) (conf, dst string) {
		t.Helper()
		base := t.TempDir()
		dst = filepath.Join(base, "incoming")
		for i := range n {
			if err := os.MkdirAll(filepath.Join(dst, fmt.Sprint(1700000000+10*i)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		os.MkdirAll(filepath.Join(dst, "not-a-snapshot"), 0o755)
		os.WriteFile(filepath.Join(dst, "1700000001"), nil, 0o644) // a file, not a directory
		conf = filepath.Join(base, "haproxystats.conf")
		if err := os.WriteFile(conf, []byte("[paths]\nbase-dir = "+base+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return conf, dst
	}
	msg := func(dst string, ok, warn int) string {
		return fmt.Sprintf(": Queue location=%s, Thresholds OK=%d WARNING=%d and any higher value is critical\n", dst, ok, warn)
	}
	tests := []struct {
		name  string
		n     int
		flags []string
		code  int
		want  func(dst string) string
	}{
		{"empty", 0, nil, 0, func(d string) string { return "OK: queue size 0" + msg(d, 60, 120) }},
		{"at ok", 60, nil, 0, func(d string) string { return "OK: queue size 60" + msg(d, 60, 120) }},
		{"above ok", 61, nil, 1, func(d string) string { return "WARNING: queue size 61" + msg(d, 60, 120) }},
		{"at warning", 120, nil, 1, func(d string) string { return "WARNING: queue size 120" + msg(d, 60, 120) }},
		{"above warning", 121, nil, 2, func(d string) string { return "CRITICAL: queue size 121" + msg(d, 60, 120) }},
		{"custom ok", 3, []string{"-o", "2", "-w", "5"}, 1, func(d string) string { return "WARNING: queue size 3" + msg(d, 2, 5) }},
		{"custom long", 6, []string{"--ok=2", "--warning=5"}, 2, func(d string) string { return "CRITICAL: queue size 6" + msg(d, 2, 5) }},
		{"ok zero", 0, []string{"-o", "0", "-w", "0"}, 0, func(d string) string { return "OK: queue size 0" + msg(d, 0, 0) }},
		// As in the original: ok above warning leaves no WARNING band.
		{"ok above warning", 3, []string{"-o", "2", "-w", "1"}, 2, func(d string) string { return "CRITICAL: queue size 3" + msg(d, 2, 1) }},
		// Python int() syntax, as the original's int(args['--ok']).
		{"python int", 2, []string{"-o", " 1_0 ", "-w", "+20"}, 0, func(d string) string { return "OK: queue size 2" + msg(d, 10, 20) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, dst := spool(t, tt.n)
			var out, errb bytes.Buffer
			args := append([]string{"check-queue", "-f", conf}, tt.flags...)
			code := run(context.Background(), args, &out, &errb)
			if want := tt.want(dst); code != tt.code || out.String() != want {
				t.Errorf("check-queue %q = %d, %q; want %d, %q (stderr %q)", args[1:], code, out.String(), tt.code, want, errb.String())
			}
		})
	}
}

func TestCheckQueueUnknown(t *testing.T) {
	base := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(base, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missingDir := filepath.Join(base, "nowhere")
	aFile := write("plain-file", "")
	unreadable := filepath.Join(base, "unreadable")
	os.Mkdir(unreadable, 0o000)
	t.Cleanup(func() { os.Chmod(unreadable, 0o755) })
	tests := []struct {
		name string
		args []string
		want string // prefix of stdout
	}{
		{"missing dir", []string{"-f", write("missing.conf", "[pull]\ndst-dir = "+missingDir+"\n")},
			"UNKNOWN: can't check " + missingDir + " due to open " + missingDir + ": no such file or directory\n"},
		{"not a directory", []string{"-f", write("file.conf", "[pull]\ndst-dir = "+aFile+"\n")},
			"UNKNOWN: can't check " + aFile + " due to open " + aFile + ": not a directory\n"},
		{"syntax error", []string{"-f", write("bad.conf", "no section header\n")}, "UNKNOWN: can't load configuration: "},
		{"bad interpolation", []string{"-f", write("interp.conf", "[pull]\ndst-dir = ${nowhere:x}\n")}, "UNKNOWN: can't load configuration: "},
		{"unreadable file", []string{"-f", base}, "UNKNOWN: can't load configuration: "},
		{"bad ok", []string{"-f", write("ok.conf", ""), "-o", "6O"}, `UNKNOWN: --ok "6O": not an integer` + "\n"},
		{"bad warning", []string{"-f", write("ok.conf", ""), "-w", "1.5"}, `UNKNOWN: --warning "1.5": not an integer` + "\n"},
		{"unknown flag", []string{"--nope"}, "UNKNOWN: unknown flag: --nope\n"},
		{"argument", []string{"extra"}, "UNKNOWN: unexpected argument \"extra\"\n"},
	}
	if os.Geteuid() != 0 { // root reads any directory
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{"unreadable dir", []string{"-f", write("unreadable.conf", "[pull]\ndst-dir = "+unreadable+"\n")},
			"UNKNOWN: can't check " + unreadable + " due to open " + unreadable + ": permission denied\n"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"check-queue"}, tt.args...), &out, &errb)
			if code != 3 || !strings.HasPrefix(out.String(), tt.want) || strings.Count(out.String(), "\n") != 1 {
				t.Errorf("check-queue %q = %d, %q; want 3, %q...", tt.args, code, out.String(), tt.want)
			}
		})
	}
}

func TestCheckQueueHelpAndDefaults(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check-queue", "-h"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "-o, --ok <ok>            OK threshold [default: 60]") ||
		!strings.Contains(out.String(), "-w, --warning <warning>  WARNING threshold [default: 120]") {
		t.Errorf("check-queue -h = %d, %q", code, out.String())
	}
	// A missing configuration file means the defaults, as for the daemons:
	// the built-in dst-dir, /var/lib/haproxystats/incoming.
	out.Reset()
	code := run(context.Background(), []string{"check-queue", "-f", filepath.Join(t.TempDir(), "none.conf")}, &out, &errb)
	const dst = "/var/lib/haproxystats/incoming"
	if !strings.Contains(out.String(), " "+dst+" ") && !strings.Contains(out.String(), "="+dst+",") {
		t.Errorf("check-queue with a missing file = %d, %q; want it to check %s", code, out.String(), dst)
	}
}

// TestCheckQueueDestination: with [pull] destination = kafka the check
// counts kafka-dst-dir (dst-dir is not used); with both, the fuller spool.
func TestCheckQueueDestination(t *testing.T) {
	base := t.TempDir()
	fill := func(dir string, n int) {
		for i := range n {
			if err := os.MkdirAll(filepath.Join(base, dir, fmt.Sprint(1700000000+i)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill("incoming", 3)
	fill("kafka-outgoing", 70)
	for _, tt := range []struct {
		dest, dir, out string
		code           int
	}{
		{"spool", "incoming", "OK: queue size 3", 0},
		{"kafka", "kafka-outgoing", "WARNING: queue size 70", 1},
		{"Both", "kafka-outgoing", "WARNING: queue size 70", 1},
	} {
		conf := filepath.Join(base, tt.dest+".conf")
		if err := os.WriteFile(conf, []byte("[paths]\nbase-dir = "+base+"\n[pull]\ndestination = "+tt.dest+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"check-queue", "-f", conf}, &out, &errb)
		want := tt.out + ": Queue location=" + filepath.Join(base, tt.dir) + ","
		if code != tt.code || !strings.HasPrefix(out.String(), want) {
			t.Errorf("check-queue with destination = %s: %d, %q; want %d, %q...", tt.dest, code, out.String(), tt.code, want)
		}
	}
}
