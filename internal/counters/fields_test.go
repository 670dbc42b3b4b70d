package counters_test

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/haproxystats-go/haproxystats/internal/counters"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// headersDir holds, per HAProxy version, the `show stat` header line
// (<version>.stat) and the fields HAProxy tags C (<version>.counters): see
// its README.md.
const headersDir = "../../testdata/haproxy-headers"

// taggedCounters reads <version>.counters files: the `stat` and `info`
// fields tagged C, per version.
func taggedCounters(t *testing.T) (stat, info map[string][]string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(headersDir, "*.counters"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s/*.counters: %v", headersDir, err)
	}
	stat, info = map[string][]string{}, map[string][]string{}
	for _, f := range files {
		version := strings.TrimSuffix(filepath.Base(f), ".counters")
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			domain, name, ok := strings.Cut(line, " ")
			switch {
			case ok && domain == "stat":
				stat[name] = append(stat[name], version)
			case ok && domain == "info":
				info[name] = append(info[name], version)
			default:
				t.Fatalf("%s line %d: %q is not `stat|info <field>`", f, n+1, line)
			}
		}
	}
	return stat, info
}

// TestCounterTableMatchesSource checks the table against the fields
// HAProxy 2.6 to 3.5 tag C: exactly those, minus WronglyCounters, plus
// WronglyNotCounters.
func TestCounterTableMatchesSource(t *testing.T) {
	stat, info := taggedCounters(t)
	for _, m := range counters.WronglyCounters {
		tagged := stat
		if m.Info {
			tagged = info
		}
		if _, ok := tagged[m.Name]; !ok {
			t.Errorf("WronglyCounters lists %s, which no version tags C: drop it", m.Name)
		}
		delete(tagged, m.Name)
	}
	for _, m := range counters.WronglyNotCounters {
		tagged := stat
		if m.Info {
			tagged = info
		}
		if v, ok := tagged[m.Name]; ok {
			t.Errorf("WronglyNotCounters lists %s, which %v tag C: drop it", m.Name, v)
		}
		tagged[m.Name] = nil
	}
	if want := slices.Sorted(maps.Keys(stat)); !slices.Equal(counters.StatCounters(), want) {
		t.Errorf("stat counters differ from the tagged ones:\n table only: %v\n tagged only: %v", minus(counters.StatCounters(), want), minus(want, counters.StatCounters()))
	}
	if want := slices.Sorted(maps.Keys(info)); !slices.Equal(counters.InfoCounters(), want) {
		t.Errorf("info counters differ from the tagged ones:\n table only: %v\n tagged only: %v", minus(counters.InfoCounters(), want), minus(want, counters.InfoCounters()))
	}
	for _, name := range []string{"stot", "bin", "bout", "req_tot", "hrsp_5xx", "lbtot"} {
		if !counters.IsStatCounter(name) {
			t.Errorf("IsStatCounter(%q) = false", name)
		}
	}
	for _, name := range []string{"scur", "smax", "rate", "qtime", "srid", "status", "weight"} {
		if counters.IsStatCounter(name) {
			t.Errorf("IsStatCounter(%q) = true", name)
		}
	}
	if !counters.IsInfoCounter("CumConns") || counters.IsInfoCounter("CurrConns") || counters.IsInfoCounter("CompressBpsIn") {
		t.Errorf("IsInfoCounter: CumConns %v, CurrConns %v, CompressBpsIn %v", counters.IsInfoCounter("CumConns"), counters.IsInfoCounter("CurrConns"), counters.IsInfoCounter("CompressBpsIn"))
	}
}

// TestTaggedCountersAreColumns checks the testdata against itself: every
// `show stat` field tagged C in a version is a column of its header.
func TestTaggedCountersAreColumns(t *testing.T) {
	stat, _ := taggedCounters(t)
	for name, versions := range stat {
		for _, v := range versions {
			if !slices.Contains(headerColumns(t, v), name) {
				t.Errorf("%s.counters tags %s, not a column of %s.stat", v, name, v)
			}
		}
	}
}

// headerColumns returns the columns of <version>.stat.
func headerColumns(t *testing.T, version string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(headersDir, version+".stat"))
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "# "), ","), ",")
}

// TestCounterTableMatchesHAProxy asks the installed HAProxy (Debian's
// 2.6) for `show stat typed` and `show info typed`: every field it tags C
// is in the table or in WronglyCounters, and every field of the table it
// reports is tagged C or in WronglyNotCounters.
func TestCounterTableMatchesHAProxy(t *testing.T) {
	dir := testenv.ShortDir(t)
	sock := filepath.Join(dir, "s.sock")
	closed := testenv.FreePort(t)
	testenv.StartHAProxy(t, testenv.HAProxyConfig{
		StatsSockets: []string{sock},
		Body: fmt.Sprintf(`frontend fe
    bind 127.0.0.1:%d
    option socket-stats
    default_backend be
backend be
    server checked 127.0.0.1:%d check inter 100ms
    server plain 127.0.0.1:%d
listen li
    mode tcp
    bind 127.0.0.1:%d
    server s 127.0.0.1:%d
`, testenv.FreePort(t), closed, closed, testenv.FreePort(t), closed),
	})
	stat := typedNatures(t, sock, "show stat typed", func(head string) string {
		// F.<iid>.<sid>.<pos>.<name>.<proc>
		parts := strings.Split(head, ".")
		if len(parts) < 6 {
			t.Fatalf("show stat typed: field %q", head)
		}
		return strings.Join(parts[4:len(parts)-1], ".")
	})
	info := typedNatures(t, sock, "show info typed", func(head string) string {
		// <pos>.<name>.<proc>
		_, rest, _ := strings.Cut(head, ".")
		return rest[:strings.LastIndexByte(rest, '.')]
	})
	check := func(domain string, natures map[string]string, isCounter func(string) bool, info bool) {
		if len(natures) < 30 {
			t.Fatalf("%s typed: only %d fields", domain, len(natures))
		}
		for name, tags := range natures {
			tagged := strings.Contains(tags, "C")
			switch {
			case tagged && !isCounter(name) && !mistagged(counters.WronglyCounters, info, name):
				t.Errorf("%s %s is tagged %q by HAProxy but not in the table nor in WronglyCounters", domain, name, tags)
			case !tagged && isCounter(name) && !mistagged(counters.WronglyNotCounters, info, name):
				t.Errorf("%s %s is in the table but tagged %q by HAProxy, and not in WronglyNotCounters", domain, name, tags)
			case tagged && mistagged(counters.WronglyNotCounters, info, name):
				t.Errorf("%s %s is now tagged C by HAProxy: drop it from WronglyNotCounters", domain, name)
			}
		}
	}
	check("show stat", stat, counters.IsStatCounter, false)
	check("show info", info, counters.IsInfoCounter, true)
	for _, name := range []string{"stot", "bin", "chkfail", "hrsp_2xx", "lbtot"} {
		if !strings.Contains(stat[name], "C") {
			t.Errorf("HAProxy does not report %s tagged C (got %q): the test config no longer exercises it", name, stat[name])
		}
	}
}

// typedNatures sends a typed command and returns, per field name, the
// nature letters it was tagged with (over every row).
func typedNatures(t *testing.T, sock, cmd string, name func(head string) string) map[string]string {
	t.Helper()
	out, err := testenv.Command("unix", sock, cmd, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	natures := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		// <head>:<origin><nature><scope>:<type>:<value>
		head, rest, ok := strings.Cut(line, ":")
		if !ok || len(rest) < 3 {
			t.Fatalf("%s: line %q", cmd, line)
		}
		n := name(head)
		if nat := rest[1:2]; !strings.Contains(natures[n], nat) {
			natures[n] += nat
		}
	}
	return natures
}

func mistagged(list []counters.Mistag, info bool, name string) bool {
	return slices.ContainsFunc(list, func(m counters.Mistag) bool { return m.Info == info && m.Name == name })
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// TestHeaderFiles checks the shape of the header lines: one line as
// HAProxy writes it, the static column counts of each version.
func TestHeaderFiles(t *testing.T) {
	static := map[string]int{"2.6": 103, "2.8": 113, "3.0": 113, "3.2": 113, "3.3": 118, "3.4": 118, "3.5": 119}
	for version, want := range static {
		data, err := os.ReadFile(filepath.Join(headersDir, version+".stat"))
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		if !strings.HasPrefix(s, "# pxname,svname,") || !strings.HasSuffix(s, ",\n") || strings.Count(s, "\n") != 1 {
			t.Errorf("%s.stat is not one `# pxname,svname,...,` line", version)
		}
		cols := headerColumns(t, version)
		if got := slices.Index(cols, "-"); got != want {
			t.Errorf("%s.stat: %d columns before `-`, want %d", version, got, want)
		}
		seen := map[string]bool{}
		for _, c := range cols {
			if seen[c] || c == "" {
				t.Errorf("%s.stat: column %q empty or twice", version, c)
			}
			seen[c] = true
		}
	}
}
