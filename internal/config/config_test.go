package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// load parses text as one file named test.conf.
func load(t *testing.T, text string) *Config {
	t.Helper()
	c, err := LoadSources(nil, Source{Name: "test.conf", Data: []byte(text)})
	if err != nil {
		t.Fatalf("LoadSources(%q) error: %v", text, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c, err := Load("", "", nil)
	if err != nil {
		t.Fatalf("Load(\"\", \"\") error: %v", err)
	}
	tests := []struct{ section, option, want string }{
		{"DEFAULT", "loglevel", "info"},
		{"DEFAULT", "retries", "2"},
		{"DEFAULT", "timeout", "1"},
		{"DEFAULT", "interval", "2"},
		{"paths", "base-dir", "/var/lib/haproxystats"},
		{"paths", "loglevel", "info"},
		{"pull", "loglevel", "info"}, // inherited from DEFAULT
		{"pull", "retries", "1"},
		{"pull", "timeout", "0.1"},
		{"pull", "interval", "0.5"},
		{"pull", "pull-timeout", "2"},
		{"pull", "pull-interval", "10"},
		{"pull", "buffer-limit", "6291456"},
		{"pull", "dst-dir", "/var/lib/haproxystats/incoming"},
		{"pull", "tmp-dst-dir", "/var/lib/haproxystats/incoming.tmp"},
		{"pull", "workers", "8"},
		{"pull", "queue-size", "360"},
		{"process", "loglevel", "info"},
		{"process", "src-dir", "/var/lib/haproxystats/incoming"},
		{"process", "workers", "4"},
		{"process", "aggr-server-metrics", "false"},
		{"process", "per-process-metrics", "false"},
		{"process", "calculate-percentages", "false"},
		{"process", "liveness-check-interval", "10"},
		{"graphite", "server", "127.0.0.1"},
		{"graphite", "port", "3002"},
		{"graphite", "retries", "3"},
		{"graphite", "interval", "1.8"},
		{"graphite", "connect-timeout", "1.0"},
		{"graphite", "write-timeout", "1.0"},
		{"graphite", "delay", "10"},
		{"graphite", "backoff", "2"},
		{"graphite", "namespace", "loadbalancers"},
		{"graphite", "prefix-hostname", "true"},
		{"graphite", "fqdn", "true"},
		{"graphite", "queue-size", "1000000"},
		{"graphite", "timeout", "1"}, // from DEFAULT
		{"local-store", "dir", "/var/lib/haproxystats/local-store"},
	}
	for _, tt := range tests {
		got, err := c.Get(tt.section, tt.option)
		if err != nil || got != tt.want {
			t.Errorf("Get(%q, %q) = %q, %v, want %q", tt.section, tt.option, got, err, tt.want)
		}
	}
	unset := []struct{ section, option string }{
		{"pull", "socket-dir"}, {"pull", "servers"},
		{"process", "frontend-metrics"}, {"process", "backend-metrics"}, {"process", "server-metrics"},
		{"process", "exclude-frontends"}, {"process", "exclude-backends"},
		{"graphite", "group-namespace"}, {"graphite", "group-namespace-double-writes"},
	}
	for _, tt := range unset {
		if c.Has(tt.section, tt.option) {
			t.Errorf("Has(%q, %q) = true, want false", tt.section, tt.option)
		}
		if _, err := c.Get(tt.section, tt.option); !errors.Is(err, ErrNoOption) {
			t.Errorf("Get(%q, %q) error = %v, want ErrNoOption", tt.section, tt.option, err)
		}
	}
	if c.HasSection("local-store") {
		t.Errorf("HasSection(%q) = true with no file, want false", "local-store")
	}
	want := []string{"graphite", "paths", "process", "pull"}
	if got := c.Sections(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Sections() = %q, want %q", got, want)
	}
}

func TestGetErrors(t *testing.T) {
	c := load(t, "[extra]\na = 1\n")
	if _, err := c.Get("nosuch", "a"); !errors.Is(err, ErrNoSection) {
		t.Errorf("Get(%q, %q) error = %v, want ErrNoSection", "nosuch", "a", err)
	}
	if _, err := c.Get("extra", "b"); !errors.Is(err, ErrNoOption) {
		t.Errorf("Get(%q, %q) error = %v, want ErrNoOption", "extra", "b", err)
	}
	if got, err := c.Get("extra", "loglevel"); err != nil || got != "info" {
		t.Errorf("Get(%q, %q) = %q, %v, want %q (from DEFAULT)", "extra", "loglevel", got, err, "info")
	}
}

func TestDialect(t *testing.T) {
	tests := []struct {
		name, text, section, option, want string
	}{
		{"option case", "[pull]\nBuffer-LIMIT = 5\n", "pull", "buffer-limit", "5"},
		{"lookup case", "[pull]\nbuffer-limit = 5\n", "pull", "Buffer-Limit", "5"},
		{"colon separator", "[pull]\nbuffer-limit: 7\n", "pull", "buffer-limit", "7"},
		{"first separator wins", "[s]\na : b = c\n", "s", "a", "b = c"},
		{"no space", "[s]\na=b\n", "s", "a", "b"},
		{"comment lines", "# c\n; c\n[s]\n# a = 1\n  ; b\na = 2\n", "s", "a", "2"},
		{"inline # kept", "[s]\na = b # c\n", "s", "a", "b # c"},
		{"inline ; kept", "[s]\na = b ; c\n", "s", "a", "b ; c"},
		{"multi-line", "[s]\na = one\n  two\n\tthree\nb = 1\n", "s", "a", "one\ntwo\nthree"},
		{"multi-line empty lines", "[s]\na = 1\n  b\n\n  c\n\nd = 2\n", "s", "a", "1\nb\n\nc"},
		{"multi-line empty first", "[s]\na =\n  x\n  y\n", "s", "a", "\nx\ny"},
		{"multi-line comment skipped", "[s]\na = 1\n  # c\n  b\n", "s", "a", "1\nb"},
		{"deeper indent continues", "[s]\n  a = 1\n    b = 2\n", "s", "a", "1\nb = 2"},
		{"same indent is an option", "[s]\n  a = 1\n  b = 2\n", "s", "b", "2"},
		{"empty value", "[s]\na =\n", "s", "a", ""},
		{"surrounding space", "[s]\n  a   =   x y   \n", "s", "a", "x y"},
		{"quotes kept", "[s]\na = \"x\"\nb = 'y'\n", "s", "a", `"x"`},
		{"backtick kept", "[s]\na = `x`\n", "s", "a", "`x`"},
		{"triple quote kept", "[s]\na = \"\"\"y\"\"\"\n", "s", "a", `"""y"""`},
		{"backslash kept", "[s]\na = x \\\n  y\n", "s", "a", "x \\\ny"},
		{"quoted key", "[s]\n\"k\" = 1\n", "s", `"k"`, "1"},
		{"dash key", "[s]\n- = 2\n", "s", "-", "2"},
		{"bracket key", "[s]\n[z = 3\n", "s", "[z", "3"},
		{"CRLF", "[s]\r\na = 1\r\nb = 2\r\n", "s", "a", "1"},
		{"BOM", "\uFEFF[s]\na = 1\n", "s", "a", "1"},
		{"no final newline", "[s]\na = 1", "s", "a", "1"},
		{"header comment", "[s] ; x\na = 1\n", "s", "a", "1"},
		{"section name spaces", "[ s ]\na = 1\n", " s ", "a", "1"},
		{"DEFAULT inherited", "[DEFAULT]\nx = 1\n[s]\n", "s", "x", "1"},
		{"DEFAULT overridden", "[DEFAULT]\nx = 1\n[s]\nx = 2\n", "s", "x", "2"},
		{"DEFAULT twice", "[DEFAULT]\na = 1\n[DEFAULT]\nb = 2\n[s]\n", "s", "b", "2"},
		{"DEFAULT loglevel", "[DEFAULT]\nloglevel = debug\n", "pull", "loglevel", "debug"},
		{"section loglevel", "[DEFAULT]\nloglevel = debug\n[pull]\nloglevel = error\n", "pull", "loglevel", "error"},
		{"built-in section beats user DEFAULT", "[DEFAULT]\nretries = 9\n", "pull", "retries", "1"},
		{"user DEFAULT beats built-in DEFAULT", "[DEFAULT]\nretries = 9\n", "paths", "retries", "9"},
		{"sample prefix_hostname is another key", "[graphite]\nprefix_hostname = false\n", "graphite", "prefix-hostname", "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, tt.text)
			got, err := c.Get(tt.section, tt.option)
			if err != nil || got != tt.want {
				t.Errorf("Get(%q, %q) = %q, %v, want %q", tt.section, tt.option, got, err, tt.want)
			}
		})
	}
}

func TestSectionNamesCaseSensitive(t *testing.T) {
	c := load(t, "[Pull]\nworkers = 3\n")
	if got, _ := c.Get("pull", "workers"); got != "8" {
		t.Errorf("Get(%q, %q) = %q, want %q ([Pull] is another section)", "pull", "workers", got, "8")
	}
	if got, _ := c.Get("Pull", "workers"); got != "3" {
		t.Errorf("Get(%q, %q) = %q, want %q", "Pull", "workers", got, "3")
	}
	if !c.HasSection("Pull") || c.HasSection("pull") {
		t.Errorf("HasSection(Pull), HasSection(pull) = %v, %v, want true, false", c.HasSection("Pull"), c.HasSection("pull"))
	}
}

func TestInterpolation(t *testing.T) {
	tests := []struct {
		name, text, section, option, want string
	}{
		{"same section", "[s]\na = x\nb = ${a}/y\n", "s", "b", "x/y"},
		{"from DEFAULT", "[DEFAULT]\na = x\n[s]\nb = ${a}\n", "s", "b", "x"},
		{"option case", "[s]\nb = ${A}\na = 1\n", "s", "b", "1"},
		{"other section", "[t]\na = x\n[s]\nb = ${t:a}\n", "s", "b", "x"},
		{"DEFAULT section", "[s]\nb = ${DEFAULT:a}\n[DEFAULT]\na = 1\n", "s", "b", "1"},
		{"built-in", "[s]\nb = ${paths:base-dir}\n", "s", "b", "/var/lib/haproxystats"},
		{"dollar", "[s]\na = 5$$\n", "s", "a", "5$"},
		{"regex dollar", "[backend-groups]\nabc = _proc1$$\n", "backend-groups", "abc", "_proc1$"},
		{"several", "[s]\na = 1\nb = ${a}${a}$$${a}\n", "s", "b", "11$1"},
		{"recursive", "[t]\ny = ${z}\nz = 3\n[s]\nx = <${t:y}>\n", "s", "x", "<3>"},
		{"recursive same-name in other section", "[t]\ny = ${z}\nz = t\n[s]\nz = s\nx = ${t:y}\n", "s", "x", "t"},
		{"DEFAULT value resolved in section", "[DEFAULT]\nx = ${y}\ny = 1\n[s]\ny = 2\n", "s", "x", "2"},
		{"base-dir override", "[paths]\nbase-dir = /srv\n", "pull", "dst-dir", "/srv/incoming"},
		{"base-dir override tmp", "[paths]\nbase-dir = /srv\n", "pull", "tmp-dst-dir", "/srv/incoming.tmp"},
		{"base-dir override src", "[paths]\nbase-dir = /srv\n", "process", "src-dir", "/srv/incoming"},
		{"base-dir override local-store", "[paths]\nbase-dir = /srv\n", "local-store", "dir", "/srv/local-store"},
		{"depth 10", "[s]\n" + chain(10), "s", "a1", "x$"},
		{"closing brace kept", "[s]\na = 1\nb = ${a}}\n", "s", "b", "1}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, tt.text)
			got, err := c.Get(tt.section, tt.option)
			if err != nil || got != tt.want {
				t.Errorf("Get(%q, %q) = %q, %v, want %q", tt.section, tt.option, got, err, tt.want)
			}
		})
	}
}

// chain returns a1 = ${a2} ... an = x$$, n levels of interpolation.
func chain(n int) string {
	var b strings.Builder
	for i := 1; i < n; i++ {
		b.WriteString("a" + strconv.Itoa(i) + " = ${a" + strconv.Itoa(i+1) + "}\n")
	}
	b.WriteString("a" + strconv.Itoa(n) + " = x$$\n")
	return b.String()
}

func TestInterpolationErrors(t *testing.T) {
	tests := []struct {
		name, text, section, option string
		want                        []string // substrings of the error
	}{
		{"missing option", "[s]\nb = ${nope}\n", "s", "b", []string{"[s] b = ", `"${nope}"`, "${nope}", "no such option"}},
		{"missing section", "[s]\nb = ${t:a}\n", "s", "b", []string{"[s] b = ", "${t:a}", "no such section"}},
		{"missing option elsewhere", "[t]\n[s]\nb = ${t:a}\n", "s", "b", []string{"[s] b = ", "no such option"}},
		{"lone dollar", "[s]\nb = a$b\n", "s", "b", []string{"[s] b = ", `"a$b"`, `"$" must be followed by "$" or "{"`}},
		{"dollar at end", "[s]\nb = 5$\n", "s", "b", []string{"[s] b = ", `"5$"`}},
		{"empty reference", "[s]\nb = ${}\n", "s", "b", []string{"[s] b = ", "bad interpolation reference"}},
		{"unterminated", "[s]\nb = ${a\n", "s", "b", []string{"[s] b = ", "bad interpolation reference"}},
		{"two colons", "[s]\nb = ${a:b:c}\n", "s", "b", []string{"[s] b = ", "more than one ':'"}},
		{"nested names inner", "[t]\ny = $x\n[s]\nb = ${t:y}\n", "s", "b", []string{"[t] y = ", `"$x"`}},
		{"loop", "[s]\nx = ${x}\n", "s", "x", []string{"[s] x = ", "deeper than 10"}},
		{"depth 11", "[s]\n" + chain(11), "s", "a1", []string{"[s] a11 = ", "deeper than 10"}},
		{"bad base-dir", "[paths]\nbase-dir = $HOME\n", "pull", "dst-dir", []string{"[paths] base-dir = ", `"$HOME"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, tt.text)
			got, err := c.Get(tt.section, tt.option)
			if err == nil {
				t.Fatalf("Get(%q, %q) = %q, want an error", tt.section, tt.option, got)
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Errorf("Get(%q, %q) error %v is not an *Error", tt.section, tt.option, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Get(%q, %q) error = %q, want it to contain %q", tt.section, tt.option, err, w)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, text string
		line       int
		want       string
	}{
		{"option before section", "\n# c\na = 1\n", 3, "before the first [section] header"},
		{"garbage", "[s]\na = 1\ngarbage\n", 3, `"garbage"`},
		{"empty name", "[s]\n= 3\n", 2, "empty option name"},
		{"repeated option", "[s]\na = 1\nA = 2\n", 3, `option "a" repeated in section [s] (first at line 2)`},
		{"repeated section", "[s]\n[t]\n[s]\n", 3, "section [s] repeated (first at line 1)"},
		{"repeated DEFAULT option", "[DEFAULT]\na = 1\n[DEFAULT]\na = 2\n", 4, `option "a" repeated`},
		{"unclosed header", "[s]\n[t\n", 2, `"[t"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSources(nil, Source{Name: "bad.conf", Data: []byte(tt.text)})
			var perr *ParseError
			if !errors.As(err, &perr) {
				t.Fatalf("LoadSources(%q) error = %v, want a *ParseError", tt.text, err)
			}
			if perr.File != "bad.conf" || perr.Line != tt.line {
				t.Errorf("LoadSources(%q) error at %s:%d, want bad.conf:%d", tt.text, perr.File, perr.Line, tt.line)
			}
			if !strings.Contains(err.Error(), "parse bad.conf line ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadSources(%q) error = %q, want %q", tt.text, err, tt.want)
			}
		})
	}
}

func TestParseErrorsAll(t *testing.T) {
	_, err := LoadSources(nil, Source{Name: "bad.conf", Data: []byte("[s]\nx\ny\n")})
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("LoadSources error = %v, want both lines 2 and 3", err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	missing := filepath.Join(t.TempDir(), "haproxystats.conf")
	c, err := Load(missing, "", logger)
	if err != nil {
		t.Fatalf("Load(%q) error: %v", missing, err)
	}
	if got, _ := c.Get("pull", "workers"); got != "8" {
		t.Errorf("Get(pull, workers) = %q, want the default %q", got, "8")
	}
	if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), missing) {
		t.Errorf("log = %q, want an info line naming %s", logs.String(), missing)
	}
}

func TestLoadBadFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "haproxystats.conf")
	writeFile(t, file, "[pull]\nworkers = 1\nbroken line\n")
	_, err := Load(file, "", nil)
	if err == nil || !strings.Contains(err.Error(), "parse "+file+" line 3") {
		t.Errorf("Load(%q) error = %v, want it to name the file and line 3", file, err)
	}
}

func TestLoadDir(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "haproxystats.conf")
	writeFile(t, file, "[process]\nworkers = 1\nsrc-dir = /a\n[graphite]\nport = 1\n")
	dir := filepath.Join(root, "conf.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "20-b.conf"), "[process]\nworkers = 3\n")
	writeFile(t, filepath.Join(dir, "10-a.conf"), "[process]\nworkers = 2\nsrc-dir = /b\n[local-store]\n")
	writeFile(t, filepath.Join(dir, "30-c.txt"), "[process]\nworkers = 4\n")
	writeFile(t, filepath.Join(dir, ".40-hidden.conf"), "[process]\nworkers = 5\n")
	if err := os.Mkdir(filepath.Join(dir, "50-dir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}

	c, err := Load(file, dir, nil)
	if err != nil {
		t.Fatalf("Load(%q, %q) error: %v", file, dir, err)
	}
	tests := []struct{ section, option, want string }{
		{"process", "workers", "3"},  // 20-b.conf is read last
		{"process", "src-dir", "/b"}, // 10-a.conf overrides the file
		{"graphite", "port", "1"},    // only in the file
	}
	for _, tt := range tests {
		if got, err := c.Get(tt.section, tt.option); err != nil || got != tt.want {
			t.Errorf("Get(%q, %q) = %q, %v, want %q", tt.section, tt.option, got, err, tt.want)
		}
	}
	if !c.HasSection("local-store") {
		t.Errorf("HasSection(local-store) = false, want true (set in 10-a.conf)")
	}

	if _, err := Load(file, filepath.Join(root, "nope"), nil); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Load with a missing dir: error = %v, want one naming the dir", err)
	}
	// A missing file with a dir is fine.
	c, err = Load(filepath.Join(root, "missing.conf"), dir, nil)
	if err != nil {
		t.Fatalf("Load(missing, %q) error: %v", dir, err)
	}
	if got, _ := c.Get("process", "workers"); got != "3" {
		t.Errorf("Get(process, workers) = %q, want %q", got, "3")
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.conf"), filepath.Join(dir, "b.conf")
	writeFile(t, a, "[process]\nsrc-dir = /a\nworkers = 2\n[graphite]\nprefix-hostname = false\n")
	writeFile(t, b, "[process]\nsrc-dir = /b\n[graphite]\nserver = 10.0.0.1\nport = 2003\n")
	c, err := LoadFiles(nil, a, b)
	if err != nil {
		t.Fatalf("LoadFiles error: %v", err)
	}
	tests := []struct{ section, option, want string }{
		{"process", "src-dir", "/b"},
		{"process", "workers", "2"},
		{"graphite", "prefix-hostname", "false"},
		{"graphite", "server", "10.0.0.1"},
	}
	for _, tt := range tests {
		if got, err := c.Get(tt.section, tt.option); err != nil || got != tt.want {
			t.Errorf("Get(%q, %q) = %q, %v, want %q", tt.section, tt.option, got, err, tt.want)
		}
	}
	if _, err := LoadFiles(nil, a, filepath.Join(dir, "missing.conf")); err == nil {
		t.Errorf("LoadFiles with a missing file: no error")
	}
}

func TestOwnOptions(t *testing.T) {
	c, err := LoadSources(nil,
		Source{Name: "a.conf", Data: []byte("[DEFAULT]\nshared = 1\n[backend-groups]\nZeta = z\nalpha = a\nmid = m\n")},
		Source{Name: "b.conf", Data: []byte("[backend-groups]\nalpha = A\nnew = n\n")},
	)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"zeta", "alpha", "mid", "new"}
	if got := c.OwnOptions("backend-groups"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("OwnOptions(backend-groups) = %q, want %q", got, want)
	}
	if got, _ := c.Get("backend-groups", "alpha"); got != "A" {
		t.Errorf("Get(backend-groups, alpha) = %q, want %q", got, "A")
	}
	if got := c.OwnOptions("frontend-groups"); got != nil {
		t.Errorf("OwnOptions(frontend-groups) = %q, want nil", got)
	}
	if got := c.OwnOptions("pull"); got != nil {
		t.Errorf("OwnOptions(pull) = %q, want nil (built-in options are not own)", got)
	}
}

func TestUnknownLogged(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := LoadSources(logger, Source{Name: "x.conf", Data: []byte("[graphite]\nprefix_hostname = false\n[mystery]\na = 1\n[backend-groups]\nanything = x\n" +
		"[process]\nstages = s1\n[stage.s1]\nmodule = s1.wasm\nthreshold = 3\n")})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"option=prefix_hostname", "section=mystery"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log = %q, want %q", logs.String(), want)
		}
	}
	for _, known := range []string{"anything", "stages", "stage.s1", "threshold"} {
		if strings.Contains(logs.String(), known) {
			t.Errorf("log = %q mentions %s: group options, [process] stages and stage sections and parameters are not unknown", logs.String(), known)
		}
	}
	if got, _ := c.Get("mystery", "a"); got != "1" {
		t.Errorf("Get(mystery, a) = %q, want %q (unknown sections are kept)", got, "1")
	}
}

func TestPrintDefaults(t *testing.T) {
	const pull = `[DEFAULT]
interval = 2
loglevel = info
retries = 2
timeout = 1

[kafka]
client-id = haproxystats
compression = snappy
consumer-dir = ${paths:base-dir}/kafka-incoming
consumer-queue-size = 16
dial-timeout = 10
group = haproxystats-process
interval = 2
loglevel = info
max-buffered-bytes = 33554432
max-record-bytes = 65536
max-snapshot-bytes = 67108864
produce-timeout = 10
request-timeout = 10
retries = 2
retry-backoff = 0.25
retry-backoff-max = 5
session-timeout = 45
snapshot-topic = haproxystats-snapshots
timeout = 1
tls = false
tls-insecure-skip-verify = false
topic = haproxystats-metrics

[pull]
buffer-limit = 6291456
destination = spool
dst-dir = ${paths:base-dir}/incoming
interval = 0.5
kafka-dst-dir = ${paths:base-dir}/kafka-outgoing
loglevel = info
max-answer-size = 268435456
pull-interval = 10
pull-timeout = 2
queue-size = 360
retries = 1
timeout = 0.1
tmp-dst-dir = ${paths:base-dir}/incoming.tmp
workers = 8

`
	const process = `[DEFAULT]
interval = 2
loglevel = info
retries = 2
timeout = 1

[graphite]
backoff = 2
connect-timeout = 1.0
delay = 10
fqdn = true
interval = 1.8
loglevel = info
namespace = loadbalancers
port = 3002
prefix-hostname = true
queue-size = 1000000
retries = 3
server = 127.0.0.1
timeout = 1
write-timeout = 1.0

[kafka]
client-id = haproxystats
compression = snappy
consumer-dir = ${paths:base-dir}/kafka-incoming
consumer-queue-size = 16
dial-timeout = 10
group = haproxystats-process
interval = 2
loglevel = info
max-buffered-bytes = 33554432
max-record-bytes = 65536
max-snapshot-bytes = 67108864
produce-timeout = 10
request-timeout = 10
retries = 2
retry-backoff = 0.25
retry-backoff-max = 5
session-timeout = 45
snapshot-topic = haproxystats-snapshots
timeout = 1
tls = false
tls-insecure-skip-verify = false
topic = haproxystats-metrics

[local-store]
dir = ${paths:base-dir}/local-store
interval = 2
loglevel = info
retries = 2
timeout = 1

[paths]
base-dir = /var/lib/haproxystats
interval = 2
loglevel = info
retries = 2
timeout = 1

[process]
aggr-server-metrics = false
calculate-percentages = false
cluster-interval = ${pull:pull-interval}
cluster-wait = ${cluster-interval}
counters-dir = ${paths:base-dir}/counters
counters-expiry = 3600
interval = 2
liveness-check-interval = 10
loglevel = info
max-file-size = 268435456
memory-budget = 16777216
monotonic-counters = false
per-process-metrics = false
retries = 2
source = spool
src-dir = ${paths:base-dir}/incoming
stage-cache-dir = ${paths:base-dir}/stage-cache
stop-timeout = 10
timeout = 1
workers = 4

`
	for _, tt := range []struct {
		name    string
		include func(string) bool
		want    string
	}{
		{"pull", PullSections, pull},
		{"process", ProcessSections, process},
	} {
		var b bytes.Buffer
		if err := PrintDefaults(&b, tt.include); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("PrintDefaults(%s) =\n%s\nwant\n%s", tt.name, b.String(), tt.want)
		}
	}
}

func TestPrint(t *testing.T) {
	c := load(t, `[DEFAULT]
loglevel = debug
[paths]
base-dir = /srv
[pull]
socket-dir = /run/haproxy
[process]
frontend-metrics = bin bout
[graphite]
prefix-hostname = false
prefix_hostname = false
[backend-groups]
abc = _proc1$$
`)
	const pull = `[DEFAULT]
interval = 2
loglevel = debug
retries = 2
timeout = 1

[pull]
buffer-limit = 6291456
destination = spool
dst-dir = /srv/incoming
interval = 0.5
kafka-dst-dir = /srv/kafka-outgoing
loglevel = debug
max-answer-size = 268435456
pull-interval = 10
pull-timeout = 2
queue-size = 360
retries = 1
socket-dir = /run/haproxy
timeout = 0.1
tmp-dst-dir = /srv/incoming.tmp
workers = 8

`
	const process = `[DEFAULT]
interval = 2
loglevel = debug
retries = 2
timeout = 1

[backend-groups]
abc = _proc1$
interval = 2
loglevel = debug
retries = 2
timeout = 1

[graphite]
backoff = 2
connect-timeout = 1.0
delay = 10
fqdn = true
interval = 1.8
loglevel = debug
namespace = loadbalancers
port = 3002
prefix-hostname = false
prefix_hostname = false
queue-size = 1000000
retries = 3
server = 127.0.0.1
timeout = 1
write-timeout = 1.0

[paths]
base-dir = /srv
interval = 2
loglevel = debug
retries = 2
timeout = 1

[process]
aggr-server-metrics = false
calculate-percentages = false
cluster-interval = 10
cluster-wait = 10
counters-dir = /srv/counters
counters-expiry = 3600
frontend-metrics = bin bout
interval = 2
liveness-check-interval = 10
loglevel = debug
max-file-size = 268435456
memory-budget = 16777216
monotonic-counters = false
per-process-metrics = false
retries = 2
source = spool
src-dir = /srv/incoming
stage-cache-dir = /srv/stage-cache
stop-timeout = 10
timeout = 1
workers = 4

`
	for _, tt := range []struct {
		name    string
		include func(string) bool
		want    string
	}{
		{"pull", PullSections, pull},
		{"process", ProcessSections, process},
	} {
		var b bytes.Buffer
		if err := c.Print(&b, tt.include); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("Print(%s) =\n%s\nwant\n%s", tt.name, b.String(), tt.want)
		}
	}
}

func TestPrintLocalStore(t *testing.T) {
	c := load(t, "[local-store]\n")
	var b bytes.Buffer
	if err := c.Print(&b, func(s string) bool { return s == "local-store" }); err != nil {
		t.Fatal(err)
	}
	want := "[local-store]\ndir = /var/lib/haproxystats/local-store\ninterval = 2\nloglevel = info\nretries = 2\ntimeout = 1\n\n"
	if b.String() != want {
		t.Errorf("Print(local-store) = %q, want %q", b.String(), want)
	}
}

func TestPrintError(t *testing.T) {
	c := load(t, "[process]\nsrc-dir = $x\n")
	var b bytes.Buffer
	err := c.Print(&b, ProcessSections)
	if err == nil || !strings.Contains(err.Error(), "[process] src-dir") {
		t.Errorf("Print error = %v, want one naming [process] src-dir", err)
	}
	if b.Len() != 0 {
		t.Errorf("Print wrote %q on error, want nothing", b.String())
	}
	// pull does not print [process].
	if err := c.Print(&b, PullSections); err != nil {
		t.Errorf("Print(pull) error = %v, want none", err)
	}
}

func TestConcurrentReads(t *testing.T) {
	c := load(t, "[paths]\nbase-dir = /srv\n[pull]\nsocket-dir = /run\n[graphite]\ngroup-namespace = g\ngroup-namespace-double-writes = 1\n[frontend-groups]\na = ^x\n")
	done := make(chan error)
	for range 32 {
		go func() {
			var err error
			for range 50 {
				if _, e := c.Get("pull", "dst-dir"); e != nil {
					err = e
				}
				if _, e := c.ProcessSettings(); e != nil {
					err = e
				}
				if _, e := c.PullSettings(); e != nil {
					err = e
				}
				var b bytes.Buffer
				if e := c.Print(&b, nil); e != nil {
					err = e
				}
				c.Sections()
				c.OwnOptions("frontend-groups")
			}
			done <- err
		}()
	}
	for range 32 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// bomb returns a section whose a1 references a2 fanout times, a2
// references a3 fanout times, ..., down to a<depth> = leaf: a1 expands to
// fanout^(depth-1) copies of leaf.
func bomb(fanout, depth int, leaf string) string {
	var b strings.Builder
	b.WriteString("[s]\n")
	for i := 1; i < depth; i++ {
		b.WriteString("a" + strconv.Itoa(i) + " =")
		for range fanout {
			b.WriteString(" ${a" + strconv.Itoa(i+1) + "}")
		}
		b.WriteString("\n")
	}
	b.WriteString("a" + strconv.Itoa(depth) + " = " + leaf + "\n")
	return b.String()
}

// TestInterpolationBounded: a value that expands beyond MaxValueLen or
// follows more than MaxReferences references is an error naming the option
// read, found without expanding it all.
func TestInterpolationBounded(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		// 16^2 * 301 bytes = 77 KB in 272 references.
		{"long", bomb(16, 3, strings.Repeat("x", 300)), "longer than 65536 bytes"},
		// 16^3 = 4096 references to an empty value: no output at all.
		{"references", bomb(16, 4, ""), "more than 1000 references"},
		// Half a kilobyte that expands to 10 * 8^9 bytes (1.3 GB).
		{"1.3 KB bomb", bomb(8, 10, "xxxxxxxxxx"), "interpolation limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, tt.text)
			got, err := c.Get("s", "a1")
			if err == nil {
				t.Fatalf("Get(s, a1) = %d bytes, want an error", len(got))
			}
			var cerr *Error
			if !errors.As(err, &cerr) || cerr.Section != "s" || cerr.Option != "a1" || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Get(s, a1) error = %v, want an *Error naming [s] a1 and %q", err, tt.want)
			}
			if err := c.Print(io.Discard, nil); err == nil || !strings.Contains(err.Error(), "[s] a1 = ") {
				t.Errorf("Print error = %v, want it to name [s] a1", err)
			}
		})
	}
	// Just under the bound is fine.
	c := load(t, "[s]\nx = "+strings.Repeat("y", 1024)+"\na ="+strings.Repeat(" ${x}", 63)+"\n")
	if got, err := c.Get("s", "a"); err != nil || len(got) != 63*1025-1 {
		t.Errorf("Get(s, a) = %d bytes, %v, want %d bytes", len(got), err, 63*1025-1)
	}
}

// TestInterpolationBoundedInAll: many options, each under MaxValueLen,
// cannot make Print (or the settings) expand more than maxExpansion.
func TestInterpolationBoundedInAll(t *testing.T) {
	var b strings.Builder
	b.WriteString("[s]\nx = " + strings.Repeat("y", 1000) + "\na =" + strings.Repeat(" ${x}", 60) + "\n")
	for i := range 300 { // 300 * 60 KB = 18 MB
		b.WriteString("b" + strconv.Itoa(i) + " = ${a}\n")
	}
	c := load(t, b.String())
	if err := c.Print(io.Discard, nil); err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Errorf("Print error = %v, want the configuration refused as too large", err)
	}
	// One option alone is fine.
	if v, err := c.Get("s", "b1"); err != nil || len(v) != 60*1001-1 {
		t.Errorf("Get(s, b1) = %d bytes, %v", len(v), err)
	}
}

// loadWithin runs Load and fails the test if it has not returned within a
// generous bound (it blocked: a named pipe opened for reading waits for a
// writer forever).
func loadWithin(t *testing.T, file, dir string) (*Config, error) {
	t.Helper()
	type result struct {
		c   *Config
		err error
	}
	r := testenv.ReturnsWithin(t, 30*time.Second, "Load("+file+", "+dir+")", func() result {
		c, err := Load(file, dir, nil)
		return result{c, err}
	})
	return r.c, r.err
}

// TestLoadNotRegular: a *.conf that is not a regular file (named pipe,
// device, socket, link to nothing) is refused, naming it, without
// blocking; a directory or a link to one is skipped.
func TestLoadNotRegular(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"fifo", func(t *testing.T, path string) {
			if err := os.Symlink(testenv.NamedPipe(t), path); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file (named pipe)"},
		{"device", func(t *testing.T, path string) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file (character device)"},
		{"socket", func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, "not a regular file (socket)"},
		{"dangling link", func(t *testing.T, path string) {
			if err := os.Symlink(filepath.Join(filepath.Dir(path), "gone"), path); err != nil {
				t.Fatal(err)
			}
		}, "no such file or directory (a symbolic link to nothing?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A short directory name: a socket path has a length limit.
			dir, err := os.MkdirTemp("", "cfg")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			writeFile(t, filepath.Join(dir, "10-ok.conf"), "[process]\nworkers = 2\n")
			bad := filepath.Join(dir, "20-bad.conf")
			tt.make(t, bad)
			_, err = loadWithin(t, "", dir)
			if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load with %s: error = %v, want one naming %s and %q", tt.name, err, bad, tt.want)
			}
			if tt.name == "dangling link" {
				return
			}
			// The same as the main file.
			_, err = loadWithin(t, bad, "")
			if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%s) error = %v, want one naming it and %q", bad, err, tt.want)
			}
		})
	}
	t.Run("dev null", func(t *testing.T) {
		// /dev/null, or a link to it (masking a file), reads as empty.
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "10-ok.conf"), "[process]\nworkers = 2\n")
		if err := os.Symlink(os.DevNull, filepath.Join(dir, "20-masked.conf")); err != nil {
			t.Fatal(err)
		}
		c, err := loadWithin(t, os.DevNull, dir)
		if err != nil {
			t.Fatalf("Load(%s, a dir with a link to it): %v", os.DevNull, err)
		}
		if v, _ := c.Get("process", "workers"); v != "2" {
			t.Errorf("workers = %q, want 2", v)
		}
	})
	t.Run("directory link", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "10-ok.conf"), "[process]\nworkers = 2\n")
		if err := os.Symlink(t.TempDir(), filepath.Join(dir, "20-dir.conf")); err != nil {
			t.Fatal(err)
		}
		c, err := loadWithin(t, "", dir)
		if err != nil {
			t.Fatalf("Load with a linked directory: %v, want it skipped", err)
		}
		if v, _ := c.Get("process", "workers"); v != "2" {
			t.Errorf("workers = %q, want 2", v)
		}
	})
}

// TestLoadTooLarge: a file over MaxFileSize is refused, naming it and the
// limit, without being read.
func TestLoadTooLarge(t *testing.T) {
	file := filepath.Join(t.TempDir(), "big.conf")
	writeFile(t, file, "[s]\na = "+strings.Repeat("x", MaxFileSize)+"\n")
	for _, load := range []func() error{
		func() error { _, err := Load(file, "", nil); return err },
		func() error { _, err := LoadFiles(nil, file); return err },
	} {
		if err := load(); err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), strconv.Itoa(MaxFileSize)) {
			t.Errorf("load of %d bytes: error = %v, want it to name the file and the limit %d", MaxFileSize+10, err, MaxFileSize)
		}
	}
}

// TestJunkErrorsCapped: a file of junk gives maxErrors errors and a count
// of the rest, each line quoted at most maxExcerpt bytes.
func TestJunkErrorsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("[s]\n")
	for b.Len() < MaxFileSize-2000 {
		b.WriteString(strings.Repeat("junk", 100) + "\n") // 401 bytes a line
	}
	lines := strings.Count(b.String(), "\n") - 1
	_, err := LoadSources(nil, Source{Name: "junk.conf", Data: []byte(b.String())})
	if err == nil {
		t.Fatal("LoadSources(junk) = nil error")
	}
	msg := err.Error()
	if n := strings.Count(msg, "\n") + 1; n != maxErrors+1 {
		t.Errorf("LoadSources(junk) gave %d error lines, want %d", n, maxErrors+1)
	}
	if want := fmt.Sprintf("junk.conf: %d more errors not shown", lines-maxErrors); !strings.Contains(msg, want) {
		t.Errorf("LoadSources(junk) error ends %q, want %q", msg[strings.LastIndexByte(msg, '\n')+1:], want)
	}
	if len(msg) > 20*1024 {
		t.Errorf("LoadSources(junk) error is %d bytes, want a screen or two", len(msg))
	}
}
